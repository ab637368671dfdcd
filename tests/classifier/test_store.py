"""The store: concurrent writers lose nothing, retention purges bodies but keeps labels, and the reports computed in
SQL equal a plain loop over every row."""

from __future__ import annotations

import json
import multiprocessing
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from uuid6 import uuid7

from classifier.ingest import Message
from classifier.store.db import engine_for, sessions, upgrade
from classifier.store.repository import (NewClassification, labelled, open_tickets, purge_bodies, quality,
                                         review_queue, save_classification)
from classifier.store.tables import ClassificationRow, DecisionRow
from tests.conftest import ROOT


def _item(message: Message, i: int) -> NewClassification:
    return NewClassification(message=message, id=str(uuid7()),
                             received_at=datetime.fromisoformat("2026-11-25T09:00:00-05:00"),
                             priority="alta", source="model", confidence=0.8, needs_review=False, model_priority="alta",
                             model_version="t", answer={"priority": "alta", "n": i})


def _writer(url: str, worker: int, count: int) -> None:
    factory = sessions(url)
    for i in range(count):
        with factory() as session:
            save_classification(session=session, item=_item(Message(f"w{worker}-{i}", "chat", "", f"texto {i}"), i))
        if i % 10 == 0:  # the same id from every process: stored once
            with factory() as session:
                save_classification(session=session, item=_item(Message("shared", "chat", "", "x"), i))


def test_several_processes_write_at_once_and_lose_nothing(database_url):
    url = database_url
    upgrade(url)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, w, 60)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with sessions(url)() as session:
        assert session.scalar(select(func.count()).select_from(ClassificationRow)) == 4 * 60 + 1


def test_retention_purges_old_bodies_and_keeps_labels(database_url):
    url = database_url
    upgrade(url)
    with sessions(url)() as session:
        old, _ = save_classification(session=session, item=_item(Message("old", "chat", "", "datos personales"), 1))
        new, _ = save_classification(session=session, item=_item(Message("new", "chat", "", "reciente"), 2))
        session.execute(ClassificationRow.__table__.update().where(ClassificationRow.id == old["classification_id"])
                        .values(created_at=datetime.now(timezone.utc) - timedelta(days=400)))
        session.commit()
        assert purge_bodies(session=session, older_than_days=365) == 1
        rows = {r.message_id: r for r in session.scalars(select(ClassificationRow))}
    assert rows["old"].body is None and rows["old"].body_purged_at is not None and rows["old"].priority == "alta"
    assert rows["old"].content_hash is None and rows["new"].content_hash  # a digest could confirm a guessed text
    assert "datos personales" not in json.dumps(rows["old"].result)
    assert rows["new"].body == "reciente"


def test_retention_command(tmp_path):
    url = f"sqlite:///{tmp_path / 'cmd.sqlite3'}"
    proc = subprocess.run([sys.executable, "-m", "classifier", "db", "upgrade"], capture_output=True, text=True,
                          cwd=ROOT, env={"CLASSIFIER_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "classifier", "db", "purge", "--days", "30"], capture_output=True,
                          text=True, cwd=ROOT, env={"CLASSIFIER_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
                          timeout=120)
    assert proc.returncode == 0 and "0 cuerpos de mensaje" in proc.stdout


# ---------------------------------------------------------------------------------------------- reports in SQL

def _filled(url: str, seed: int) -> None:
    """Classifications over two years (ISO week 1 of 2026 starts on 29 December 2025), a third with one or more
    decisions, only the newest current."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    moments = [now - timedelta(seconds=rng.random() * timedelta(weeks=104).total_seconds()) for _ in range(400)]
    moments += [datetime(2025, 12, 28, 23, 59, 59, tzinfo=timezone.utc), datetime(2025, 12, 29, 0, 0, 1,
                                                                                 tzinfo=timezone.utc)]
    priorities = ("muy_alta", "alta", "media", "baja", "muy_baja")
    classifications, decisions = [], []
    for i, created in enumerate(moments):
        received = created - timedelta(minutes=rng.randrange(0, 600))
        row_id = str(uuid7())
        classifications.append(dict(
            id=row_id, message_id=f"m-{i}", channel=rng.choice(("chat", "email")), subject=rng.choice(("", "Asunto")),
            body=None if i % 17 == 0 else f"texto {i}", sender=None, customer_id=None, received_at=received,
            created_at=created, priority=rng.choice(priorities), source="model", confidence=round(rng.random(), 2),
            needs_review=rng.random() < 0.4, model_priority=None, model_version="t", version=1,
            result={"received_at": received.isoformat(), "impact": rng.choice(("un_usuario", "desconocido")),
                    "request_type": rng.choice(("falla", "consulta", "otro"))}))
        for k in range(rng.choice((0, 0, 1, 2, 3))):
            decisions.append(dict(
                id=str(uuid7()), classification_id=row_id, agent="laura",
                decision=rng.choice(("accept", "change", "escalate")), priority=rng.choice(priorities),
                suggested_priority="media", level=rng.choice(("N1", "N2")), reason=None, replaces=None,
                current=False, created_at=created + timedelta(minutes=10 * (k + 1))))
        if decisions and decisions[-1]["classification_id"] == row_id:
            decisions[-1]["current"] = True
    with engine_for(url).begin() as conn:
        conn.execute(ClassificationRow.__table__.insert(), classifications)
        conn.execute(DecisionRow.__table__.insert(), decisions)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment


def _reference_quality(session, weeks: int) -> dict:
    """The quality report as a Python loop over every row (how it was computed before it moved into SQL)."""
    since = datetime.now(timezone.utc) - timedelta(weeks=weeks)
    rows = session.execute(
        select(ClassificationRow.created_at, ClassificationRow.priority, ClassificationRow.needs_review,
               DecisionRow.decision, DecisionRow.priority)
        .outerjoin(DecisionRow, (DecisionRow.classification_id == ClassificationRow.id) & DecisionRow.current.is_(True))
        .where(ClassificationRow.created_at >= since)).all()
    table: dict = {}
    for created, suggested, review, decision, final in rows:
        year, week, _ = _utc(created).isocalendar()
        cell = table.setdefault((f"{year}-W{week:02d}", suggested), {
            "week": f"{year}-W{week:02d}", "priority": suggested, "classified": 0, "sent_to_review": 0,
            "reviewed": 0, "accepted": 0, "changed_to": {}})
        cell["classified"] += 1
        cell["sent_to_review"] += bool(review)
        if decision is not None:
            cell["reviewed"] += 1
            if final == suggested:
                cell["accepted"] += 1
            else:
                cell["changed_to"][final] = cell["changed_to"].get(final, 0) + 1
    out = []
    for cell in sorted(table.values(), key=lambda c: (c["week"], c["priority"])):
        cell["acceptance_rate"] = round(cell["accepted"] / cell["reviewed"], 4) if cell["reviewed"] else None
        cell["review_share"] = round(cell["sent_to_review"] / cell["classified"], 4)
        out.append(cell)
    return {"weeks": weeks, "rows": out}


def test_reports_in_sql_equal_a_loop_over_every_row(database_url):
    upgrade(database_url)
    _filled(database_url, seed=3)
    with sessions(database_url)() as session:
        for weeks in (1, 8, 53, 104):
            assert quality(session=session, weeks=weeks) == _reference_quality(session, weeks)

        decided = {d.classification_id for d in session.scalars(select(DecisionRow))}
        everything = session.scalars(select(ClassificationRow)).all()
        for flag in (True, False, None):
            waiting = [c for c in everything if c.id not in decided and flag in (None, c.needs_review)]
            for order, key in (("oldest", lambda c: (_utc(c.received_at), c.id)),
                               ("least_confident", lambda c: (c.confidence, _utc(c.received_at), c.id))):
                expected = [c.id for c in sorted(waiting, key=key)]
                for offset in (0, 7, len(expected) - 3):
                    rows, total = review_queue(session=session, needs_review=flag, order=order, limit=10,
                                               offset=offset)
                    assert total == len(expected) and [r.id for r in rows] == expected[offset:offset + 10]

        latest: dict = {}
        for d in sorted(session.scalars(select(DecisionRow).where(DecisionRow.decision.in_(("accept", "change")))),
                        key=lambda d: _utc(d.created_at)):
            latest[d.classification_id] = d
        by_id = {c.id: c for c in everything}
        expected = [(c.id, c.channel, c.subject, c.body, latest[c.id].priority, c.result["impact"],
                     c.result["request_type"])
                    for c in sorted((by_id[i] for i in latest), key=lambda c: (_utc(c.created_at), c.id))]
        assert [tuple(row) for row in labelled(session=session)] == expected

        current = {d.classification_id: d for d in session.scalars(select(DecisionRow).where(DecisionRow.current))}
        expected = [(c.id, current[c.id].priority if c.id in current else c.priority, c.result["received_at"],
                     c.result["request_type"])
                    for c in sorted(everything, key=lambda c: (_utc(c.received_at), c.id))
                    if c.id not in current or current[c.id].level != "N2"]
        assert [(t.id, t.priority, t.received_at, t.request_type) for t in open_tickets(session=session)] == expected
