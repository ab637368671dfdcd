"""/v1/sla, /v1/policy, /v1/calendar.ics, /healthz, /readyz and /metrics over HTTP."""

from __future__ import annotations

import icalendar


def test_sla_counts_from_the_original_arrival(client):
    r = client.post("/v1/sla", json={"priority": "alta", "received_at": "2026-11-27T16:30:00-05:00", "explain": True})
    body = r.json()
    assert r.status_code == 200 and body["response_due"] == "2026-11-30T10:30:00-05:00"
    assert body["explanation"]["response"][0]["date"] == "2026-11-27"


def test_sla_rejects_unknown_priority_and_naive_time(client):
    assert client.post("/v1/sla", json={"priority": "urgente", "received_at": "2026-11-27T16:30:00-05:00"}
                       ).status_code == 422
    r = client.post("/v1/sla", json={"priority": "alta", "received_at": "2026-11-27T16:30:00"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "received_at"


def test_policy_lists_tables_hours_and_upcoming_holidays(client):
    body = client.get("/v1/policy", params={"days": 400}).json()
    assert [p["label"] for p in body["priorities"]] == ["muy_alta", "alta", "media", "baja", "muy_baja"]
    assert body["weekly_hours"]["mon-fri"] == [["07:00", "12:00"], ["14:00", "17:00"]]
    assert body["upcoming"]["holidays"]


def test_calendar_feed_is_icalendar(client):
    r = client.get("/v1/calendar.ics")
    assert r.headers["content-type"].startswith("text/calendar")
    assert icalendar.Calendar.from_ical(r.content).walk("VEVENT")


def test_health_ready_and_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model_version"]
    client.post("/v1/classify", json={"channel": "chat", "body": "hola"})
    text = client.get("/metrics").text
    assert "clasificador_requests_total" in text and "clasificador_priorities_total" in text
    assert "clasificador_request_seconds_bucket" in text


def test_request_id_is_echoed(client):
    r = client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
