"""The data team's loop end to end, as a user runs it: a real server over HTTP and the command line in subprocesses.

Classify, correct, export, check, retrain with the corrections, read the verdict, list, roll back, promote again,
prune: every exit code asserted and the served version read on ``/readyz``. Training runs on an eighth of the
corpus's groups (``train --data``) so the walkthrough stays near half a minute; the gate and the verdict are the
same code as on the whole corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import ROOT
from tests.servers import post_json, running_server

KEY = "clave-del-recorrido-123"
H = {"x-api-key": KEY}
STAGES = ("preparando datos", "validación cruzada", "entrenando modelo", "evaluando candidato",
          "comparando con el modelo actual", "guardando")
# (message, the priority an agent gives it under POLICY.md)
MESSAGES = [
    ("hoy ningún cajero puede abrir el turno, el punto de venta no inicia en ninguna sede", "muy_alta"),
    ("buenas, el certificado de retención de un proveedor sale con el NIT cortado", "alta"),
    ("¿se puede poner la foto del estudiante en el carné desde la plataforma?", "media"),
    ("les confirmo que ya recibimos la factura de noviembre, gracias", "baja"),
    ("ayuda por favor", "muy_baja"),
    ("el reporte de notas del grado once sale en blanco para un solo profesor desde ayer", "alta"),
]


def small_corpus(path: Path, share: int = 8) -> Path:
    """Every ``share``-th group of the shipped corpus (whole groups, both splits), written to ``path``."""
    lines = (ROOT / "data/corpus.jsonl").read_text("utf-8").splitlines()
    kept = [line for line in lines if line.strip()
            and int(hashlib.sha256(json.loads(line)["group"].encode()).hexdigest(), 16) % share == 0]
    path.write_text("\n".join(kept) + "\n", "utf-8")
    return path


def cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "classifier", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env}, timeout=600)


def get(port: int, path: str, headers: dict | None = None) -> bytes:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as r:
        return r.read()


def served(port: int) -> str:
    """Ask the service to serve the manifest's current model now, and say which version /readyz reports."""
    post_json(port, "/v1/admin/reload", {}, H)
    return json.loads(get(port, "/readyz"))["model_version"]


def current(models: Path) -> str:
    return json.loads((models / "manifest.json").read_text("utf-8"))["current"]["model_version"]


def test_the_data_teams_loop_from_corrections_to_rollback(tmp_path):
    started = time.monotonic()
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models", models, ignore=shutil.ignore_patterns("evaluation*", "*.png"))
    env = {"CLASSIFIER_MODELS_DIR": str(models), "CLASSIFIER_API_KEY": KEY,
           "CLASSIFIER_DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}"}
    shipped = json.loads((models / "manifest.json").read_text("utf-8"))
    original, before = shipped["current"]["model_version"], shipped["previous"][0]["model_version"]

    with running_server(env) as port:
        assert json.loads(get(port, "/readyz"))["model_version"] == original
        # 1. messages arrive; an agent accepts or corrects each suggestion
        for n, (body, label) in enumerate(MESSAGES):
            result = post_json(port, "/v1/classify", {"id": f"w-{n}", "channel": "chat", "body": body}, H)
            assert result["model_version"] == original
            decision = {"decision": "accept"} if result["priority"] == label else {
                "decision": "change", "priority": label, "reason": "corrección del agente"}
            answer = post_json(port, "/v1/feedback", {"classification_id": result["classification_id"],
                                                      "agent": "laura", **decision}, H)
            assert answer["priority"] == label
        # 2. the corrections leave as corpus rows and pass the feedback check
        export = tmp_path / "feedback.jsonl"
        export.write_bytes(get(port, "/v1/feedback/export", H))
        exported = [json.loads(line) for line in export.read_text("utf-8").splitlines()]
        assert sorted(r["label"] for r in exported) == sorted(label for _, label in MESSAGES)
        check = cli(["data", "check", str(export), "--profile", "feedback"], env)
        assert check.returncode == 0, check.stdout + check.stderr

        # 3. retrain with them: named stages on stderr, a verdict on stdout, exit 0 promoted / 3 refused
        corpus = small_corpus(tmp_path / "corpus.jsonl")
        train = cli(["train", "--data", str(corpus), "--with-feedback", str(export)], env)
        assert train.returncode in (0, 3), train.stderr[-1500:]
        positions = [train.stderr.find(f"] {stage}") for stage in STAGES]
        assert -1 not in positions and positions == sorted(positions), train.stderr[-1500:]
        verdict = train.stdout
        candidate = re.search(r"candidato\s+(\d{14}-[0-9a-f]{8})", verdict).group(1)
        assert re.search(rf"actual\s+{original}", verdict)
        for label in ("muy_alta", "alta", "media", "baja", "muy_baja"):
            assert re.search(rf"F1 {label}\s+[01]\.\d{{3}}\s+[01]\.\d{{3}}", verdict), verdict
        assert re.search(r"macro-F1\s+0\.\d{4}\s+0\.\d{4}", verdict) and re.search(
            r"recall muy_alta\s+0\.\d{4}\s+0\.\d{4}", verdict), verdict
        promoted = train.returncode == 0
        report = json.loads((models / candidate / "verdict.json").read_text("utf-8"))
        assert report["promoted"] is promoted and report["current"]["model_version"] == original
        assert report["candidate"]["feedback_used"] == len(MESSAGES)
        if promoted:
            assert "Decisión: promovido" in verdict and not report["refused_because"]
        else:
            assert "Decisión: no promovido" in verdict and report["refused_because"]
            assert all(reason in verdict for reason in report["refused_because"])
        for name in ("confusion_matrix_current.png", "confusion_matrix_candidate.png"):
            png = models / candidate / name
            assert png.read_bytes()[:4] == b"\x89PNG" and str(png) in verdict
        after_train = candidate if promoted else original
        assert current(models) == after_train and served(port) == after_train

        # 4. list, roll back, promote the same version again
        listed = cli(["model", "list"], env)
        assert listed.returncode == 0, listed.stderr
        status = {line.split()[1]: line.split()[0] for line in listed.stdout.splitlines()[1:]}
        assert status[after_train] == "actual"
        assert status[candidate] == ("actual" if promoted else "rechazado")
        rollback = cli(["model", "rollback"], env)
        assert rollback.returncode == 0, rollback.stderr
        back_to = original if promoted else before
        assert current(models) == back_to and served(port) == back_to
        again = cli(["model", "promote", after_train], env)
        assert again.returncode == 0, again.stderr
        assert current(models) == after_train and served(port) == after_train
        # a refused candidate can still be put in service by hand
        override = cli(["model", "promote", candidate], env)
        assert override.returncode == 0 and served(port) == candidate

        # 5. tidy up: the current version, the one rollback needs and the newest stay
        prune = cli(["model", "prune", "--keep", "1"], env)
        assert prune.returncode == 0, prune.stderr
        left = cli(["model", "list"], env).stdout
        assert candidate in left and original in left and before not in left and before in prune.stdout
        assert served(port) == candidate and cli(["model", "rollback"], env).returncode == 0
        assert served(port) == original
    print(f"walkthrough took {time.monotonic() - started:.1f} s")
