"""Periodic jobs (escalation check, retention purge) that run once however many instances run them.

On PostgreSQL each job takes a transaction-level advisory lock (``pg_try_advisory_xact_lock``): an instance that
finds it taken skips the job this time, since another one is running it. Escalation is also idempotent on its own:
one row per ticket and level (a unique pair, ``INSERT … ON CONFLICT DO NOTHING``), so a race without the lock, or
SQLite (one machine, no advisory locks), still escalates each ticket once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from uuid6 import uuid7

from classifier.calendar import parse_instant
from classifier.sla import EscalationCheck, SlaEngine
from classifier.store.db import sessions, typed_store_errors
from classifier.store.repository import OpenTicket, open_tickets, purge_bodies, record_escalations

JOBS = ("escalations", "purge")


def lock_key(job: str) -> int:
    """The job's advisory lock: a signed 64-bit number from its name, the same on every machine."""
    return int.from_bytes(hashlib.sha256(f"clasificador:{job}".encode()).digest()[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class JobRun:
    """What one instance did with one job: ``ran`` False when another instance held its lock."""

    job: str
    ran: bool
    count: int = 0  # tickets escalated, or message bodies purged
    ids: tuple[str, ...] = ()  # the classifications escalated by this run


def _locked(session: Session, job: str) -> bool:
    """Take the job's lock for this transaction (PostgreSQL); False when another instance holds it."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(lock_key(job)))))


def due_escalations(*, session: Session, sla: SlaEngine, now: datetime) -> Iterator[tuple[OpenTicket, EscalationCheck]]:
    """Tickets still at level 1 whose response time has passed at ``now`` (POLICY §6), with the check that says
    to which level and priority they go."""
    level = sla.policy.support.first_level
    for ticket in open_tickets(session=session):
        check = sla.escalation(ticket.priority, parse_instant(ticket.received_at), level=level, now=now,
                               customer_id=ticket.customer_id, sender=ticket.sender, request_type=ticket.request_type)
        if check.escalate:
            yield ticket, check


def escalate(*, session: Session, sla: SlaEngine, now: datetime, lock: bool = True) -> JobRun:
    """Record every due escalation once (the job); with ``lock`` only while holding the job's advisory lock."""
    with typed_store_errors(session):
        if lock and not _locked(session, "escalations"):
            session.rollback()
            return JobRun("escalations", ran=False)
        created = datetime.now(timezone.utc)
        rows = [dict(id=str(uuid7()), classification_id=ticket.id, level=check.proposed_level,
                     priority=check.proposed.priority, previous_priority=ticket.priority,
                     response_due=check.proposed.response_due, solution_due=check.proposed.solution_due,
                     reason=check.reason, created_at=created)
                for ticket, check in due_escalations(session=session, sla=sla, now=now)]
        escalated = record_escalations(session=session, rows=rows)
        session.commit()
    return JobRun("escalations", ran=True, count=len(escalated), ids=tuple(escalated))


def purge(*, session: Session, older_than_days: int, lock: bool = True) -> JobRun:
    """Retention (``db purge``) as a job: message bodies older than ``older_than_days`` dropped, once."""
    with typed_store_errors(session):
        if lock and not _locked(session, "purge"):
            session.rollback()
            return JobRun("purge", ran=False)
    return JobRun("purge", ran=True, count=purge_bodies(session=session, older_than_days=older_than_days))


def run_jobs(names: tuple[str, ...], *, database_url: str, sla: SlaEngine, retention_days: int,
             now: datetime | None = None) -> list[JobRun]:
    """Run the named jobs, each in its own transaction and under its own lock (``python -m classifier jobs run``
    and the service's loop)."""
    out = []
    for name in names:
        with sessions(database_url)() as session:
            if name == "escalations":
                out.append(escalate(session=session, sla=sla, now=now or datetime.now(sla.calendar.tz)))
            elif name == "purge":
                out.append(purge(session=session, older_than_days=retention_days))
            else:
                raise ValueError(f"tarea desconocida {name!r}; las tareas son: {', '.join(JOBS)}")
    return out
