"""``score``, ``evaluate`` and ``data check`` as a user runs them, in a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def run(args: list[str], stdin: str = "", timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "classifier", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def test_score_answers_every_line_in_order_with_model_fields():
    lines = [
        {"id": "a", "channel": "chat", "subject": "", "body": "la plataforma está caída, nadie puede entrar",
         "received_at": "2026-11-25T09:00:00-05:00"},
        {"id": "b", "channel": "email", "subject": "Consulta", "body": "¿Cómo genero los boletines por curso?",
         "received_at": "2026-11-25T09:00:00-05:00", "customer_id": "col-san-martin"},
        {"id": "c", "channel": "fax", "subject": "", "body": "hola"},
        "{broken",
        {"id": "e", "channel": "chat", "subject": "", "body": "hola", "received_at": "2026-11-25T09:00:00"},
        {"id": "f", "channel": "email", "subject": "", "body": "", "received_at": "2026-11-25T09:00:00-05:00"},
        {"id": "g", "channel": "chat", "subject": "", "body": "¿me pueden ayudar con la configuración del correo en el celular nuevo?",
         "received_at": "2026-11-28T10:00:00-05:00"},
        {"id": 8, "channel": "chat", "body": "hola, ¿cómo cambio la clave?", "customer_id": 7, "sender": 12},
    ]
    stdin = "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines) + "\n"
    proc = run(["score"], stdin)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o.get("id") for o in out] == ["a", "b", "c", None, "e", "f", "g", 8]
    assert out[7]["priority"] and out[7]["customer"]["id"] == "7"  # numbers where text is expected are read as text
    a, b, g = out[0], out[1], out[6]
    assert a["priority"] == "muy_alta" and a["source"] == "rule" and a["rules"][0]["evidence"]
    assert a["response_due"] == "2026-11-25T10:00:00-05:00"
    for key in ("confidence", "needs_review", "model_version", "impact", "request_type", "solution_due"):
        assert key in a
    assert b["priority"] == "media" and b["customer"]["id"] == "col-san-martin"
    assert "channel" in out[2]["error"] and "JSON" in out[3]["error"]
    assert "zona horaria" in out[4]["error"] and "nada que clasificar" in out[5]["error"]
    assert g["source"] == "model" and g["model_priority"] == g["priority"]
    assert g["response_due"].startswith("2026-11-30")  # Saturday arrival counts from Monday


def test_evaluate_rules_only_prints_precision_and_coverage(tmp_path):
    proc = run(["evaluate", "--rules-only", "--out", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr
    assert "precisión" in proc.stdout and "cobertura" in proc.stdout
    assert (tmp_path / "evaluation-rules.json").exists()


def test_evaluate_shows_three_systems_and_writes_json_and_png(tmp_path):
    proc = run(["evaluate", "--no-loso", "--out", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr
    for system in ("reglas+baja", "solo modelo", "reglas+modelo", "prueba del corpus", "external.jsonl",
                   "completos llamados muy_baja", "fallas llamadas baja/muy_baja", "exactitud en el resto"):
        assert system in proc.stdout
    report = json.loads((tmp_path / "evaluation.json").read_text("utf-8"))
    combined = report["rules_plus_model"]
    assert combined["macro_f1"] >= 0.88 and combined["per_class"]["muy_alta"]["recall"] >= 0.95
    assert combined["macro_f1"] >= report["model_alone"]["macro_f1"] - 0.01  # rules add evidence and explanations
    assert combined["macro_f1"] > report["rules_with_default"]["macro_f1"]
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert {"prueba del corpus", "external.jsonl"} <= set(report["side_by_side"])


def test_evaluate_reads_a_file_of_labelled_messages_with_extra_fields(tmp_path):
    path = tmp_path / "real.jsonl"
    path.write_text('{"id": "r1", "channel": "chat", "subject": "", "body": "no puedo entrar a mi cuenta", '
                    '"label": "muy_alta", "impact": "un_usuario", "intent": "X", "why": "access"}\n'
                    '{"id": "r2", "channel": "chat", "subject": "", "body": "como cambio la clave", '
                    '"label": "media", "impact": "un_usuario", "intent": "Y", "why": "how-to"}\n', "utf-8")
    proc = run(["evaluate", "--data", str(path), "--out", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "evaluation.json").read_text("utf-8"))["rows"] == 2
    path.write_text('{"id": "r1", "body": "x", "label": "urgente"}\n', "utf-8")
    proc = run(["evaluate", "--data", str(path), "--out", str(tmp_path)])
    assert proc.returncode == 2 and "línea 1: label: valor no permitido: use 'muy_alta'" in proc.stderr


def test_data_check_passes_on_the_corpus_and_prints_counts():
    proc = run(["data", "check"])
    assert proc.returncode == 0, proc.stdout
    assert "OK" in proc.stdout and "muy_alta" in proc.stdout and "parte en test" in proc.stdout


def test_data_check_lists_every_problem_with_its_line(tmp_path):
    good = json.loads((ROOT / "data/corpus.jsonl").read_text("utf-8").splitlines()[0])
    bad = [good, {**good, "label": "urgente"}, "not json", {**good, "id": good["id"]},
           {**good, "id": "x1", "channel": "chat", "subject": "Hola"}]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in bad) + "\n", "utf-8")
    proc = run(["data", "check", str(path), "--profile", "feedback"])
    assert proc.returncode == 1
    for fragment in ("8 problemas:", "línea 2: label: valor no permitido",
                     "línea 3: no es JSON válido (falta un valor en la columna 1)",
                     f"línea 4: el id {good['id']!r} ya se usó en la línea 1",
                     "línea 5: fila: un mensaje de chat no lleva asunto"):
        assert fragment in proc.stdout, proc.stdout
