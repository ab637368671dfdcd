"""Review page session records and failed logins in the store; functions take keyword-only arguments and a session.

Times are UTC. SQLite hands datetimes back without a zone, PostgreSQL with one: ``_utc`` makes them comparable.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from classifier.store.tables import LoginFailureRow, ReviewSessionRow


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _text(value: str, length: int) -> str:
    """What a failed login names, as both stores can hold and compare it (PostgreSQL text refuses NUL)."""
    return value.replace("\x00", "\ufffd")[:length]


def create_session(*, session: Session, id_hash: str, agent: str, role: str, key_id: str, seconds: int,
                   now: datetime | None = None) -> ReviewSessionRow:
    """Store a new session (and drop the ones that ended, so the table stays small)."""
    now = now or datetime.now(timezone.utc)
    session.execute(delete(ReviewSessionRow).where(or_(ReviewSessionRow.expires_at < now,
                                                       ReviewSessionRow.revoked_at.is_not(None))))
    row = ReviewSessionRow(id=id_hash, agent=agent, role=role, key_id=key_id, created_at=now,
                           expires_at=now + timedelta(seconds=seconds), revoked_at=None)
    session.add(row)
    session.commit()
    return row


def live_session(*, session: Session, id_hash: str, now: datetime | None = None) -> ReviewSessionRow | None:
    """The session with this id digest if it is neither revoked nor expired."""
    row = session.get(ReviewSessionRow, id_hash)
    if row is None or row.revoked_at is not None or _utc(row.expires_at) <= (now or datetime.now(timezone.utc)):
        return None
    return row


def revoke_session(*, session: Session, id_hash: str) -> bool:
    """End a session at once; True if one was open."""
    done = session.execute(update(ReviewSessionRow).where(ReviewSessionRow.id == id_hash,
                                                          ReviewSessionRow.revoked_at.is_(None))
                           .values(revoked_at=datetime.now(timezone.utc)))
    session.commit()
    return bool(done.rowcount)


def record_login_failure(*, session: Session, address: str, agent: str, now: datetime | None = None) -> None:
    session.add(LoginFailureRow(address=_text(address, 64), agent=_text(agent, 128),
                                failed_at=now or datetime.now(timezone.utc)))
    session.commit()


def login_blocked_for(*, session: Session, address: str, agent: str, max_failures: int, window_seconds: int,
                      now: datetime | None = None) -> int:
    """Seconds until a login from this address or for this agent may be tried again (0: now).

    Blocked when either has ``max_failures`` failures within the last ``window_seconds``; the wait lasts until
    enough of them leave the window. Failures older than the window are deleted here.
    """
    now = now or datetime.now(timezone.utc)
    window = timedelta(seconds=window_seconds)
    session.execute(delete(LoginFailureRow).where(LoginFailureRow.failed_at < now - window))
    session.commit()
    wait = 0.0
    for column, value in ((LoginFailureRow.address, _text(address, 64)), (LoginFailureRow.agent, _text(agent, 128))):
        times = session.scalars(select(LoginFailureRow.failed_at).where(column == value)
                                .order_by(LoginFailureRow.failed_at.desc()).limit(max_failures)).all()
        if len(times) >= max_failures:  # the oldest of the last max_failures must leave the window first
            wait = max(wait, (_utc(times[-1]) + window - now).total_seconds())
    return max(1, int(wait + 0.999)) if wait > 0 else 0
