"""Engine and sessions from a database URL; SQLite files get WAL mode and a busy timeout."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from pydantic_core import to_json
from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at each commit against crashes of the process
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run in a background thread, not in a request
    cursor.close()


_checkpointers: dict[str, threading.Thread] = {}


def _checkpoint_loop(path: str, every: float) -> None:
    while True:
        time.sleep(every)
        try:
            with sqlite3.connect(path, timeout=10) as conn:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            continue


def start_checkpointer(url: str, every: float = 5.0) -> None:
    """Copy the SQLite WAL into the database every few seconds, off the request path (one thread per file)."""
    if not url.startswith("sqlite:///") or url in _checkpointers:
        return
    path = url.removeprefix("sqlite:///")
    thread = threading.Thread(target=_checkpoint_loop, args=(path, every), daemon=True, name="wal-checkpoint")
    thread.start()
    _checkpointers[url] = thread


def _json(value) -> str:
    """JSON columns written by pydantic-core's serializer: the stored result is ~1.5 KB, a third of the time of
    the standard library's ``json.dumps`` (read back with ``json.loads`` as before)."""
    return to_json(value).decode("utf-8")


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per URL per process (each worker has its own)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) not in ("", ":memory:"):
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 10}, json_serializer=_json)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, json_serializer=_json)


@lru_cache(maxsize=8)
def sessions(url: str) -> sessionmaker[Session]:
    """One session factory per URL per process."""
    return sessionmaker(bind=engine_for(url), expire_on_commit=False)


def alembic_config(url: str):
    from alembic.config import Config  # imported only to migrate: workers that serve never need it

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Apply every migration up to the newest (creates a SQLite file on first run)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


# ---------------------------------------------------------------------------------------------- store faults

# SQLSTATE classes (PostgreSQL) that say the server cannot take writes now, not that a row is wrong: connection
# (08), read-only transaction (25), insufficient resources such as a full disk (53), operator intervention (57),
# system error (58); and 42501, a role without the privilege to write.
UNAVAILABLE_SQLSTATES = ("08", "25", "53", "57", "58", "42501")


class StoreUnavailable(Exception):
    """The store cannot serve now (read-only, full, locked or unreachable): the request may be retried later.

    Its message names the driver's error class and text only, never the statement or its parameters (bodies)."""


def cannot_serve(exc: DBAPIError) -> bool:
    """A database error about the store itself rather than about one statement's values: SQLite's operational
    errors (read-only file, disk full, locked, I/O) and PostgreSQL's by SQLSTATE class."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate:
        return sqlstate.startswith(UNAVAILABLE_SQLSTATES)
    return isinstance(exc, (OperationalError, InterfaceError))


@contextmanager
def typed_store_errors(bind: Connection | Session | None = None) -> Iterator[None]:
    """Raise ``StoreUnavailable`` for database errors that ``cannot_serve``; ``bind``'s connection is discarded,
    so that one opened while the store refused writes (a SQLite file opened read-only) is not reused after the
    fault is repaired."""
    try:
        yield
    except DBAPIError as exc:
        if not cannot_serve(exc):
            raise
        if bind is not None:
            try:
                bind.invalidate()
            except Exception:  # the connection may be gone already: nothing left to discard
                pass
        first_line = str(exc.orig).splitlines()[0] if str(exc.orig) else ""
        raise StoreUnavailable(f"{type(exc.orig).__name__}: {first_line[:200]}") from exc


class WriteHealth:
    """Whether this process's writes reach the store: the last write's outcome, set by every write path, and
    what /readyz reports.

    A not-ready instance gets no traffic, so nothing would ever find the store repaired: ``hold_seconds`` after a
    failed write, ``recheck`` tries a write that changes nothing (an UPDATE of no row starts a write transaction,
    which a read-only, locked or unreachable store refuses). A full disk may still take that probe: the instance
    is then ready again until a real write fails, at most once per ``hold_seconds``."""

    PROBE = text("UPDATE classifications SET version = version WHERE id = ''")

    def __init__(self, database_url: str, hold_seconds: float = 5.0):
        self.database_url = database_url
        self.hold_seconds = hold_seconds
        self.failure: str | None = None
        self.failed_at = 0.0
        self._checking = threading.Lock()

    @property
    def writable(self) -> bool:
        return self.failure is None

    def succeeded(self) -> None:
        self.failure = None

    def failed(self, reason: str) -> None:
        self.failure, self.failed_at = reason, time.monotonic()

    @contextmanager
    def watch(self) -> Iterator[None]:
        """Record the outcome of the writes inside: ``StoreUnavailable`` marks failure, completion success."""
        try:
            yield
        except StoreUnavailable as exc:
            self.failed(str(exc))
            raise
        self.succeeded()

    def recheck(self) -> bool:
        """Writable now? Blocking (run it off the event loop); probes only once ``hold_seconds`` have passed since
        the last failed write, one probe at a time."""
        if self.writable or time.monotonic() - self.failed_at < self.hold_seconds:
            return self.writable
        if not self._checking.acquire(blocking=False):
            return self.writable
        try:
            with self.watch(), typed_store_errors():  # connecting may fail too (a server down)
                with engine_for(self.database_url).connect() as conn, typed_store_errors(conn):
                    conn.execute(self.PROBE)
                    conn.rollback()
        except StoreUnavailable:
            pass
        finally:
            self._checking.release()
        return self.writable
