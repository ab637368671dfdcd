"""Periodic jobs run once however many instances run them: the advisory lock on PostgreSQL, and escalation
idempotent per ticket and level even in a race without the lock (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from uuid6 import uuid7

from api.main import create_app
from classifier.ingest import Message
from classifier.store.db import engine_for, sessions, upgrade
from classifier.store.jobs import escalate, lock_key, purge, run_jobs
from classifier.store.repository import NewClassification, open_tickets, record_escalations, save_classifications
from classifier.store.tables import ClassificationRow, EscalationRow
from tests.api.conftest import KEY, make_settings

NOW = datetime.fromisoformat("2026-11-26T11:00:00-05:00")
LONG_AGO = datetime.fromisoformat("2026-11-02T09:00:00-05:00")  # every priority's response time has passed by NOW
JUST_NOW = datetime.fromisoformat("2026-11-26T10:50:00-05:00")  # none has

pytestmark = pytest.mark.serial  # measures time: `make test` runs it alone


def store_tickets(url: str, due: int, not_due: int) -> set[str]:
    """``due`` open tickets past their response time at NOW and ``not_due`` within it; the due ones' ids."""
    items = []
    for i in range(due + not_due):
        received = LONG_AGO if i < due else JUST_NOW
        priority = ("muy_alta", "alta", "media", "baja")[i % 4]
        items.append(NewClassification(
            message=Message(f"t-{uuid7()}", "chat", "", f"ticket {i}"), id=str(uuid7()), received_at=received,
            priority=priority, source="model", confidence=0.9, needs_review=False, model_priority=priority,
            model_version="t", answer={"priority": priority, "received_at": received.isoformat(),
                                       "request_type": "incidente"}))
    with sessions(url)() as session:
        save_classifications(session=session, items=items)
    return {item.id for item in items[:due]}


def escalated(url: str) -> list[tuple[str, str]]:
    with sessions(url)() as session:
        return [tuple(r) for r in session.execute(select(EscalationRow.classification_id, EscalationRow.level))]


def test_instances_running_the_job_at_once_escalate_each_due_ticket_once(database_url, engine):
    upgrade(database_url)
    due = store_tickets(database_url, due=120, not_due=10)
    barrier = threading.Barrier(4)

    def instance(_):
        barrier.wait()
        with sessions(database_url)() as session:
            return escalate(session=session, sla=engine.sla, now=NOW)

    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(instance, range(4)))
    reported = [i for run in runs for i in run.ids]
    assert sorted(reported) == sorted(due) and sum(run.count for run in runs) == len(due)
    assert sorted(escalated(database_url)) == sorted((i, "N2") for i in due)
    with sessions(database_url)() as session:
        assert due.isdisjoint(t.id for t in open_tickets(session=session))  # at N2 now: no longer proposed
    counts = []
    for moment in (NOW, NOW + timedelta(days=30), NOW + timedelta(days=30)):  # the rest fall due, once
        with sessions(database_url)() as session:
            counts.append(escalate(session=session, sla=engine.sla, now=moment).count)
    assert counts == [0, 10, 0] and len(escalated(database_url)) == len(due) + 10


def test_a_race_without_the_lock_still_escalates_once(database_url, engine):
    """Two instances insert the same escalations, the second while the first has not committed: the second waits
    for the first (the unique pair) and then adds nothing."""
    upgrade(database_url)
    due = store_tickets(database_url, due=5, not_due=0)
    rows = lambda: [dict(id=str(uuid7()), classification_id=i, level="N2", priority="muy_alta",  # noqa: E731
                         previous_priority="alta", response_due=None, solution_due=None, reason="vencido",
                         created_at=datetime.now(timezone.utc)) for i in sorted(due)]
    first = sessions(database_url)()
    assert sorted(record_escalations(session=first, rows=rows())) == sorted(due)
    second_result: list = []

    def second():
        with sessions(database_url)() as session:
            second_result.extend(record_escalations(session=session, rows=rows()))
            session.commit()

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive()  # waiting for the first instance's uncommitted rows
    first.commit()
    first.close()
    thread.join(15)
    assert not thread.is_alive() and second_result == []
    assert sorted(escalated(database_url)) == sorted((i, "N2") for i in due)


def test_a_job_another_instance_holds_is_skipped_on_postgresql(fresh_postgres_url, engine):
    url = fresh_postgres_url
    upgrade(url)
    due = store_tickets(url, due=3, not_due=0)
    with engine_for(url).connect() as other:  # another instance in the middle of both jobs
        other.execute(text("SELECT pg_advisory_lock(:e), pg_advisory_lock(:p)"),
                      {"e": lock_key("escalations"), "p": lock_key("purge")})
        runs = run_jobs(("escalations", "purge"), database_url=url, sla=engine.sla, retention_days=1, now=NOW)
        assert [(r.job, r.ran, r.count) for r in runs] == [("escalations", False, 0), ("purge", False, 0)]
        assert escalated(url) == []
        other.execute(text("SELECT pg_advisory_unlock_all()"))
        other.commit()
    runs = run_jobs(("escalations", "purge"), database_url=url, sla=engine.sla, retention_days=1, now=NOW)
    assert [(r.job, r.ran) for r in runs] == [("escalations", True), ("purge", True)]
    assert runs[0].count == len(due)


def test_purge_as_a_job_drops_old_bodies(database_url, engine):
    upgrade(database_url)
    store_tickets(database_url, due=2, not_due=0)
    with engine_for(database_url).begin() as conn:
        conn.execute(ClassificationRow.__table__.update().values(created_at=datetime.now(timezone.utc)
                                                                 - timedelta(days=400)))
    with sessions(database_url)() as session:
        assert purge(session=session, older_than_days=365).count == 2
    with sessions(database_url)() as session:
        assert session.scalar(select(func.count()).where(ClassificationRow.body.is_not(None))) == 0


def test_the_service_runs_the_jobs_when_told_to(tmp_path):
    settings = make_settings(tmp_path, jobs_every_seconds=0.2)
    with TestClient(create_app(settings)) as client:
        stored = client.post("/v1/classify", json={"id": "viejo-1", "channel": "chat", "received_at":
                                                   "2026-10-01T09:00:00-05:00",
                                                   "body": "No podemos ingresar a la plataforma desde esta mañana."})
        assert stored.status_code == 200
        deadline = time.monotonic() + 5
        while not escalated(settings.database_url):
            assert time.monotonic() < deadline, "the service's job loop escalated nothing"
            time.sleep(0.1)
        assert escalated(settings.database_url) == [(stored.json()["classification_id"], "N2")]
        proposals = client.post("/v1/escalations/check", headers={"x-api-key": KEY}).json()["escalations"]
        assert proposals == []  # moved to N2 already: the check no longer proposes it
