"""Feedback, review queue and export over HTTP, with a real SQLite file that survives a restart."""

from __future__ import annotations

import json
import subprocess
import sys

from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.conftest import KEY, make_settings
from tests.conftest import ROOT

H = {"x-api-key": KEY}
MESSAGES = [
    {"id": "r-1", "channel": "chat", "body": "el reporte de cartera sale con valores raros desde ayer",
     "received_at": "2026-11-24T09:00:00-05:00"},
    {"id": "r-2", "channel": "email", "subject": "Consulta", "body": "¿me ayudan con la configuración del correo?",
     "received_at": "2026-11-25T09:00:00-05:00"},
    {"id": "r-3", "channel": "chat", "body": "la plataforma está caída, nadie puede entrar",
     "received_at": "2026-11-26T09:00:00-05:00"},
]


def classify_all(client) -> list[dict]:
    return [client.post("/v1/classify", json=m).json() for m in MESSAGES]


def test_feedback_endpoints_need_the_key(client):
    assert client.get("/v1/review").status_code == 401
    assert client.get("/v1/review", headers={"x-api-key": "otra"}).status_code == 403
    assert client.get("/v1/feedback/export").status_code == 401


def test_accept_change_escalate_and_conflicts(client):
    a, b, c = classify_all(client)
    r = client.post("/v1/feedback", headers=H, json={"classification_id": a["classification_id"], "agent": "laura",
                                                     "decision": "accept"})
    assert r.status_code == 200 and r.json()["priority"] == a["priority"]
    again = client.post("/v1/feedback", headers=H, json={"classification_id": a["classification_id"],
                                                         "agent": "laura", "decision": "accept"})
    assert again.json()["decision_id"] == r.json()["decision_id"]  # the same decision twice is one decision
    conflict = client.post("/v1/feedback", headers=H, json={"classification_id": a["classification_id"],
                                                            "agent": "pedro", "decision": "change",
                                                            "priority": "media", "reason": "es una consulta"})
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "decision_conflict"
    replaced = client.post("/v1/feedback", headers=H, json={"classification_id": a["classification_id"],
                                                            "agent": "pedro", "decision": "change",
                                                            "priority": "media", "reason": "es una consulta",
                                                            "replaces": True})
    assert replaced.status_code == 200 and replaced.json()["replaces"] == r.json()["decision_id"]
    missing_reason = client.post("/v1/feedback", headers=H, json={"classification_id": b["classification_id"],
                                                                  "agent": "laura", "decision": "change",
                                                                  "priority": "baja"})
    assert missing_reason.status_code == 422
    esc = client.post("/v1/feedback", headers=H, json={"classification_id": c["classification_id"],
                                                       "agent": "laura", "decision": "escalate"})
    assert esc.json()["level"] == "N2" and esc.json()["priority"] == "muy_alta"
    assert esc.json()["response_due"] == "2026-11-26T10:00:00-05:00"  # counted from the original arrival
    unknown = client.post("/v1/feedback", headers=H, json={"classification_id": "nope", "agent": "x",
                                                           "decision": "accept"})
    assert unknown.status_code == 404


def test_review_queue_oldest_first_paginated_and_least_confident(client):
    classify_all(client)
    page = client.get("/v1/review", headers=H, params={"needs_review": "false", "limit": 2}).json()
    everything = client.get("/v1/review", headers=H, params={"limit": 50, "needs_review": "all"}).json()
    assert page["limit"] == 2 and len(page["items"]) <= 2
    received = [i["received_at"] for i in everything["items"]]
    assert received == sorted(received)
    by_conf = client.get("/v1/review", headers=H, params={"order": "least_confident", "needs_review": "all"}).json()
    confidences = [i["confidence"] for i in by_conf["items"]]
    assert confidences == sorted(confidences)


def test_export_is_corpus_format_and_passes_the_feedback_check(client, tmp_path):
    a, b, c = classify_all(client)
    client.post("/v1/feedback", headers=H, json={"classification_id": b["classification_id"], "agent": "laura",
                                                 "decision": "change", "priority": "media", "reason": "cómo hacer"})
    client.post("/v1/feedback", headers=H, json={"classification_id": c["classification_id"], "agent": "laura",
                                                 "decision": "accept"})
    r = client.get("/v1/feedback/export", headers=H)
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert {x["label"] for x in lines} == {"media", "muy_alta"}
    assert all(x["source"] == "agent-feedback" and x["split"] == "train" for x in lines)
    path = tmp_path / "feedback.jsonl"
    path.write_text(r.text, "utf-8")
    proc = subprocess.run([sys.executable, "-m", "classifier", "data", "check", str(path), "--profile", "feedback"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout


def test_an_escalation_is_not_exported_as_a_label(client):
    """Escalating raises the handling priority (POLICY §6); the export keeps what the agent said the message is."""
    a, b, c = classify_all(client)
    client.post("/v1/feedback", headers=H, json={"classification_id": b["classification_id"], "agent": "laura",
                                                 "decision": "change", "priority": "media", "reason": "cómo hacer"})
    client.post("/v1/feedback", headers=H, json={"classification_id": b["classification_id"], "agent": "laura",
                                                 "decision": "escalate", "replaces": True})
    client.post("/v1/feedback", headers=H, json={"classification_id": c["classification_id"], "agent": "laura",
                                                 "decision": "escalate"})
    lines = {x["id"]: x for x in map(json.loads, client.get("/v1/feedback/export", headers=H).text.splitlines())}
    assert lines[b["classification_id"]]["label"] == "media"  # the change, not the escalated "alta"
    assert c["classification_id"] not in lines                 # escalated only: no label


def test_records_survive_a_restart(tmp_path, database_url):
    settings = make_settings(tmp_path, database_url=database_url)
    with TestClient(create_app(settings)) as first:
        a = first.post("/v1/classify", json=MESSAGES[0]).json()
        first.post("/v1/feedback", headers=H, json={"classification_id": a["classification_id"], "agent": "laura",
                                                    "decision": "change", "priority": "alta", "reason": "falla"})
    with TestClient(create_app(settings)) as second:
        again = second.post("/v1/classify", json=MESSAGES[0]).json()
        assert again["classification_id"] == a["classification_id"] and again["duplicate"] is True
        exported = [json.loads(x) for x in second.get("/v1/feedback/export", headers=H).text.splitlines()]
        assert exported and exported[0]["label"] == "alta" and exported[0]["id"] == a["classification_id"]


def test_escalation_check_proposes_n2_for_overdue_n1_tickets(client):
    a, b, c = classify_all(client)
    r = client.post("/v1/escalations/check", headers=H, params={"now": "2026-11-26T11:00:00-05:00"})
    found = {e["classification_id"]: e for e in r.json()["escalations"]}
    assert c["classification_id"] in found  # muy_alta received 09:00, one business hour: overdue at 11:00
    assert found[c["classification_id"]]["proposed_level"] == "N2"
    client.post("/v1/feedback", headers=H, json={"classification_id": c["classification_id"], "agent": "laura",
                                                 "decision": "escalate"})
    r = client.post("/v1/escalations/check", headers=H, params={"now": "2026-11-26T11:00:00-05:00"})
    assert c["classification_id"] not in {e["classification_id"] for e in r.json()["escalations"]}


def test_quality_counts_acceptances_changes_and_review_share(client):
    a, b, c = classify_all(client)
    client.post("/v1/feedback", headers=H, json={"classification_id": c["classification_id"], "agent": "laura",
                                                 "decision": "accept"})
    client.post("/v1/feedback", headers=H, json={"classification_id": b["classification_id"], "agent": "laura",
                                                 "decision": "change", "priority": "baja", "reason": "informativo"})
    rows = client.get("/v1/quality", headers=H).json()["rows"]
    assert sum(r["classified"] for r in rows) == 3 and sum(r["reviewed"] for r in rows) == 2
    accepted = next(r for r in rows if r["priority"] == c["priority"])
    assert accepted["accepted"] >= 1 and accepted["acceptance_rate"] is not None
    changed = next(r for r in rows if r["priority"] == b["priority"])
    assert changed["changed_to"].get("baja") == 1
