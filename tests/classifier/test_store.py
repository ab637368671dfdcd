"""The store: concurrent writers lose nothing, retention purges bodies but keeps labels."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from uuid6 import uuid7

from classifier.ingest import Message
from classifier.store.db import sessions, upgrade
from classifier.store.repository import NewClassification, purge_bodies, save_classification
from classifier.store.tables import ClassificationRow
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
    assert proc.returncode == 0 and "0 message bodies" in proc.stdout
