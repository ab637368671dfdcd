"""The retraining round trip: corrections in, candidate trained and compared, reload served, rollback."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.conftest import KEY, make_settings
from tests.conftest import ROOT
from tests.test_walkthrough import small_corpus

H = {"x-api-key": KEY}
NEW_MESSAGES = [
    ("fb-1", "buenas, el certificado de retención de un proveedor sale con el NIT cortado", "alta"),
    ("fb-2", "¿se puede poner la foto del estudiante en el carné desde la plataforma?", "media"),
    ("fb-3", "les confirmo que ya recibimos la factura de noviembre, gracias", "baja"),
    ("fb-4", "hoy ningún cajero puede abrir el turno, el punto de venta no inicia", "muy_alta"),
]


def run(args, models_dir):
    env = {**os.environ, "CLASSIFIER_MODELS_DIR": str(models_dir)}
    return subprocess.run([sys.executable, "-m", "classifier", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=600)


def verdict_of(proc, models_dir) -> dict:
    """The verdict ``train`` wrote beside its candidate (the one it names on stdout)."""
    path = re.search(r"Detalle: (\S+verdict\.json)", proc.stdout).group(1)
    assert Path(path).parent.parent == models_dir
    return json.loads(Path(path).read_text("utf-8"))


def test_corrections_in_model_out_metrics_compared_reload_and_rollback(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models", models, ignore=shutil.ignore_patterns("evaluation*", "*.png"))
    corpus = small_corpus(tmp_path / "corpus.jsonl")  # an eighth of the groups: the same code, a fraction of the time
    # the background manifest check (api/deps.py watch_model) is kept out of the way: this test drives admin/reload
    settings = make_settings(tmp_path, models_dir=models, model_check_seconds=3600)
    with TestClient(create_app(settings)) as client:
        original = client.get("/readyz").json()["model_version"]
        for message_id, body, label in NEW_MESSAGES:
            result = client.post("/v1/classify", headers=H,
                                 json={"id": message_id, "channel": "chat", "body": body}).json()
            decision = {"decision": "accept"} if result["priority"] == label else {
                "decision": "change", "priority": label, "reason": "corrección del agente"}
            r = client.post("/v1/feedback", headers=H, json={"classification_id": result["classification_id"],
                                                             "agent": "laura", **decision})
            assert r.status_code == 200
        export = tmp_path / "feedback.jsonl"
        export.write_text(client.get("/v1/feedback/export", headers=H).text, "utf-8")
        assert len(export.read_text("utf-8").splitlines()) == len(NEW_MESSAGES)

        proc = run(["train", "--data", str(corpus), "--with-feedback", str(export)], models)
        out = verdict_of(proc, models)
        assert proc.returncode == (0 if out["promoted"] else 3), proc.stderr[-800:]  # a refused candidate is not 0
        assert out["gated"] and out["candidate"]["feedback_used"] == len(NEW_MESSAGES)
        assert out["current"]["model_version"] == original
        assert out["promoted"] == (out["candidate"]["macro_f1"] >= out["current"]["macro_f1"]
                                   and out["candidate"]["recall_muy_alta"]
                                   >= out["current"]["recall_muy_alta"] - 0.01)
        assert out["promoted"] or "Decisión: no promovido" in proc.stdout
        manifest = json.loads((models / "manifest.json").read_text("utf-8"))
        expected = out["candidate"]["model_version"] if out["promoted"] else original
        assert manifest["current"]["model_version"] == expected

        proc = run(["train", "--data", str(corpus)], models)  # a plain retrain always becomes current
        assert proc.returncode == 0, proc.stderr[-800:]
        plain = verdict_of(proc, models)
        newest = plain["candidate"]["model_version"]
        assert plain["promoted"] and not plain["gated"] and plain["current"]["model_version"] == expected
        assert "Decisión: promovido (sin --with-feedback" in proc.stdout
        reloaded = client.post("/v1/admin/reload", headers=H).json()
        assert reloaded == {"reloaded": True, "model_version": newest}
        classified = client.post("/v1/classify", headers=H, json={"channel": "chat", "body": "hola"}).json()
        assert classified["model_version"] == newest

        proc = run(["model", "rollback"], models)
        assert proc.returncode == 0, proc.stderr
        back = client.post("/v1/admin/reload", headers=H).json()["model_version"]
        assert back == expected and back != newest
        assert client.post("/v1/admin/reload").status_code == 401


def test_a_verified_model_that_cannot_score_is_refused_and_the_current_one_keeps_serving(tmp_path):
    from classifier.artefacts import file_sha256, load_model, write_manifest

    models = tmp_path / "models"
    shutil.copytree(ROOT / "models", models, ignore=shutil.ignore_patterns("evaluation*", "*.png"))
    served = load_model(models).model
    served.coef_ = served.coef_[:, :-7]  # weights that no longer fit the vocabulary: hashes fine, scoring fails
    served.save(models / "broken.npz")
    manifest = json.loads((models / "manifest.json").read_text("utf-8"))
    original = manifest["current"]["model_version"]
    broken = {**manifest["current"], "model_version": "broken",
              "serving": {"artefact": "broken.npz", "sha256": file_sha256(models / "broken.npz")}}
    with TestClient(create_app(make_settings(tmp_path, models_dir=models, model_check_seconds=3600))) as client:
        write_manifest(models, {**manifest, "current": broken, "previous": [manifest["current"]]})
        r = client.post("/v1/admin/reload", headers=H)
        assert r.status_code == 409 and "falló al calentar" in r.json()["error"]["message"]
        result = client.post("/v1/classify", headers=H, json={"channel": "chat", "body": "no abre la plataforma"})
        assert result.status_code == 200 and result.json()["model_version"] == original


@pytest.mark.parametrize("candidate, refused", [
    ({"macro_f1": 0.91, "recall_muy_alta": 0.97}, []),
    ({"macro_f1": 0.90, "recall_muy_alta": 0.965}, []),            # within the recall tolerance
    ({"macro_f1": 0.95, "recall_muy_alta": 0.78}, ["muy_alta"]),   # better on average, misses outages: refused
    ({"macro_f1": 0.89, "recall_muy_alta": 0.97}, ["macro-F1"]),
])
def test_the_promotion_gate_looks_at_macro_f1_and_muy_alta_recall(candidate, refused):
    from classifier.policy import RetrainingConfig
    from classifier.training import promotion_refusals

    reasons = promotion_refusals(candidate, {"macro_f1": 0.90, "recall_muy_alta": 0.97}, RetrainingConfig())
    assert len(reasons) == len(refused) and all(word in r for word, r in zip(refused, reasons))


def test_model_list_promote_and_rejected_candidates_pruned(tmp_path):
    """A rolled-back version stays listed and can be promoted again; only the newest refused candidates keep files."""
    from classifier.artefacts import load_estimator, read_manifest, save_model

    models = tmp_path / "models"
    shutil.copytree(ROOT / "models", models, ignore=shutil.ignore_patterns("evaluation*", "*.png"))
    bundle = {"priority": load_estimator(models)}
    rejected = []
    for i in range(3):
        entry = save_model(models, bundle, training_data_sha256=f"{i:08d}" * 8, metrics={"macro_f1": 0.5 + i / 100},
                           params={}, promote=False, keep_rejected=2)
        rejected.append(entry)
    manifest = read_manifest(models)
    assert [e["model_version"] for e in manifest["rejected"]] == [e["model_version"] for e in rejected[:0:-1]]
    assert not (models / rejected[0]["artefact"]).exists() and (models / rejected[2]["artefact"]).exists()

    current = manifest["current"]["model_version"]
    listed = run(["model", "list"], models)
    assert listed.returncode == 0 and current in listed.stdout and rejected[2]["model_version"] in listed.stdout
    assert run(["model", "promote", rejected[2]["model_version"]], models).returncode == 0
    assert read_manifest(models)["current"]["model_version"] == rejected[2]["model_version"]
    assert run(["model", "rollback"], models).returncode == 0
    after = read_manifest(models)
    assert after["current"]["model_version"] == current
    assert rejected[2]["model_version"] in run(["model", "list"], models).stdout  # rolled back, still listed
    missing = run(["model", "promote", "no-such-version"], models)
    assert missing.returncode == 2 and "model list" in missing.stderr
