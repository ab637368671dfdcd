"""The model registry in the store, so that every machine trains, promotes, rolls back and serves the same versions.

``model_versions`` holds each version's manifest entry and the bytes of its files with their sha256; the one
``model_registry`` row names the current version and keeps the others in the manifest's order (previous, rolled
back, rejected), with a revision that grows with each change, logged in ``model_registry_log``. The moves are the
folder registry's own (``artefacts.with_entry``, ``promoted``, ``rolled_back``, ...), applied under a lock on that
row. A change is announced on the PostgreSQL channel ``classifier_model`` (LISTEN/NOTIFY); workers also read the
revision every so often, so a lost notification, or SQLite, costs only time.

Each machine keeps a copy in its models folder: the files of the versions it loaded, written only after their bytes
matched the sha256 the store recorded, and a ``manifest.json`` mirroring the store (what ``train`` compares with).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from classifier.artefacts import (artefact_files, entries, file_sha256, load_model, promoted, pruned,
                                  read_manifest, remove_files, rolled_back, serving_file, trimmed_rejected,
                                  with_entry, write_atomically, write_manifest)
from classifier.errors import Errors, ModelError
from classifier.store.db import sessions
from classifier.store.tables import ModelRegistryLogRow, ModelRegistryRow, ModelVersionRow

CHANNEL = "classifier_model"  # NOTIFY payload: the registry's new revision
REGISTRY_ID = 1
WHERE = "el registro de modelos del almacén"
LISTS = ("previous", "rolled_back", "rejected")
log = logging.getLogger("clasificador")


@dataclass(frozen=True, slots=True)
class Head:
    """The registry's revision and current version (None: no model in the store yet)."""

    revision: int
    current: str | None


@dataclass
class Change:
    """One registry change being made: the manifest before, the one to write (None: nothing changes) and the
    version the log names (None: the new current one)."""

    session: Session
    before: dict
    after: dict | None = None
    version: str | None = None


def _stored_entry(entry: dict) -> dict:
    """A manifest entry as kept in ``model_versions.entry``: the sha256s live in their own columns, once."""
    stored = {k: v for k, v in entry.items() if k != "sha256"}
    if "serving" in entry:
        stored["serving"] = {"artefact": entry["serving"]["artefact"]}
    return stored


def _entry(stored: dict, serving_sha256: str | None, estimator_sha256: str) -> dict:
    """The manifest entry of a stored version, with the sha256s its bytes must match."""
    entry = {**stored, "sha256": estimator_sha256}
    if "serving" in stored:
        entry["serving"] = {**stored["serving"], "sha256": serving_sha256}
    return entry


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class StoreRegistry:
    """The registry in the database at ``database_url``; ``models_dir`` is this machine's verified copy."""

    def __init__(self, database_url: str, models_dir: Path):
        self.database_url = database_url
        self.models_dir = Path(models_dir)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with sessions(self.database_url)() as session:
            yield session

    # ------------------------------------------------------------------------------------------------ reading

    def head(self) -> Head | None:
        """Revision and current version, in one small query (what workers poll); None before the first version."""
        with self._session() as session:
            row = session.execute(select(ModelRegistryRow.revision, ModelRegistryRow.current)
                                  .where(ModelRegistryRow.id == REGISTRY_ID)).first()
        return Head(*row) if row else None

    def manifest(self) -> dict:
        """The registry as a manifest dict (entries without bytes); empty when no version is stored."""
        with self._session() as session:
            row = session.get(ModelRegistryRow, REGISTRY_ID)
            return self._manifest(session, row) if row else {}

    def list(self) -> list[tuple[str, dict]]:
        """(status, entry) for every version, current first (``model list``)."""
        return entries(self.manifest())

    @staticmethod
    def _manifest(session: Session, row: ModelRegistryRow) -> dict:
        names = [row.current, *row.previous, *row.rolled_back, *row.rejected]
        found = {version: _entry(stored, serving_sha, estimator_sha) for version, stored, serving_sha, estimator_sha
                 in session.execute(select(ModelVersionRow.version, ModelVersionRow.entry,
                                           ModelVersionRow.serving_sha256, ModelVersionRow.estimator_sha256)
                                    .where(ModelVersionRow.version.in_([n for n in names if n])))}
        manifest: dict = {"current": found[row.current]} if row.current else {}
        for key in LISTS:
            if listed := [found[v] for v in getattr(row, key) if v in found]:
                manifest[key] = listed
        return manifest

    def _fetch(self, session: Session, entry: dict) -> Path:
        """The file a worker loads for ``entry``, in the models folder: kept if a copy with the right sha256 is
        there, else read from the store and written only when its bytes match the sha256 recorded with them."""
        name, expected = serving_file(entry)
        path = self.models_dir / name
        if path.exists() and file_sha256(path) == expected:
            return path
        column = ModelVersionRow.serving if "serving" in entry else ModelVersionRow.estimator
        data = session.scalar(select(column).where(ModelVersionRow.version == entry["model_version"]))
        if data is None:
            raise ModelError(Errors.M303.format(file=f"{name} ({WHERE})"))
        actual = _sha256(data)
        if actual != expected:
            raise ModelError(Errors.M301.format(file=f"{name} ({WHERE})", actual=actual[:12], expected=expected[:12]))
        self.models_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)
        return path

    def materialise(self) -> tuple[Head | None, dict | None]:
        """Copy the store's current version into the models folder (verified) and mirror the registry in its
        ``manifest.json``; the head read and the current entry (None: the store has no model yet). A current
        version whose bytes fail their check raises ``ModelError`` and changes nothing on disk."""
        with self._session() as session:
            row = session.get(ModelRegistryRow, REGISTRY_ID)
            if row is None or row.current is None:
                return (Head(row.revision, None) if row else None), None
            manifest = self._manifest(session, row)
            self._fetch(session, manifest["current"])
            head = Head(row.revision, row.current)
        write_manifest(self.models_dir, manifest)
        return head, manifest["current"]

    # ------------------------------------------------------------------------------------------------ writing

    @contextmanager
    def _change(self, action: str) -> Iterator[Change]:
        """A registry change in one transaction: the registry row locked (created on first use) and the manifest it
        holds; when the caller set ``after``, that manifest is written, the revision raised, the change logged and
        announced (PostgreSQL delivers the notification at commit), and versions it no longer names deleted."""
        with self._session() as session:
            row = self._locked_row(session)
            change = Change(session, self._manifest(session, row))
            yield change
            if change.after is None:
                session.rollback()
                return
            manifest = change.after
            row.current = manifest["current"]["model_version"] if "current" in manifest else None
            for key in LISTS:
                setattr(row, key, [e["model_version"] for e in manifest.get(key, [])])
            row.revision += 1
            row.changed_at = datetime.now(timezone.utc)
            session.add(ModelRegistryLogRow(revision=row.revision, action=action,
                                            version=row.current if change.version is None else change.version,
                                            host=socket.gethostname()[:255], at=row.changed_at))
            named = [e["model_version"] for _, e in entries(manifest)]
            session.flush()
            session.execute(delete(ModelVersionRow).where(ModelVersionRow.version.not_in(named)))
            if session.get_bind().dialect.name == "postgresql":
                session.execute(select(func.pg_notify(CHANNEL, str(row.revision))))
            session.commit()

    @staticmethod
    def _locked_row(session: Session) -> ModelRegistryRow:
        query = select(ModelRegistryRow).where(ModelRegistryRow.id == REGISTRY_ID).with_for_update()
        row = session.scalar(query)
        if row is None:
            try:
                with session.begin_nested():
                    session.add(ModelRegistryRow(id=REGISTRY_ID, current=None, previous=[], rolled_back=[],
                                                 rejected=[], revision=0, changed_at=datetime.now(timezone.utc)))
            except IntegrityError:  # another machine created it meanwhile
                pass
            row = session.scalar(query)
        return row

    def _add_version(self, session: Session, models_dir: Path, entry: dict) -> None:
        """Store a version's files from ``models_dir`` (each checked against ``entry`` first) unless stored."""
        if session.get(ModelVersionRow, entry["model_version"]) is not None:
            return
        data = {}
        for name, expected in artefact_files(entry):
            path = Path(models_dir) / name
            if not path.exists():
                raise ModelError(Errors.M303.format(file=path))
            data[name] = path.read_bytes()
            actual = _sha256(data[name])
            if actual != expected:
                raise ModelError(Errors.M301.format(file=path, actual=actual[:12], expected=expected[:12]))
        serving = entry.get("serving", {}).get("artefact")
        session.add(ModelVersionRow(version=entry["model_version"], entry=_stored_entry(entry),
                                    serving=data.get(serving), serving_sha256=entry["serving"]["sha256"]
                                    if serving else None, estimator=data[entry["artefact"]],
                                    estimator_sha256=entry["sha256"], created_at=datetime.now(timezone.utc)))
        session.flush()  # before the registry row names it

    def _verified_here(self, session: Session, entry: dict) -> None:
        """Refuse to make ``entry`` current unless its bytes match and it loads (copied to the models folder)."""
        self._fetch(session, entry)
        load_model(self.models_dir, entry)

    def export_files(self, models_dir: Path) -> tuple[list[str], str | None]:
        """Move a folder registry into an empty store registry: every version of its manifest (files checked) and
        its order. Returns (versions stored, the store's current version before: set when nothing was done)."""
        manifest = read_manifest(models_dir)
        with self._change("exported") as change:
            if "current" in change.before:
                return [], change.before["current"]["model_version"]
            for _, entry in entries(manifest):
                self._add_version(change.session, models_dir, entry)
            change.after = manifest
        return [e["model_version"] for _, e in entries(manifest)], None

    def promote(self, version: str) -> dict:
        """``model promote``: the version made current after its bytes are checked and it loads."""
        with self._change("promoted") as change:
            after, entry = promoted(change.before, version, where=WHERE)
            if after is not change.before:
                self._verified_here(change.session, entry)
                change.after = after
        return entry

    def rollback(self) -> dict:
        """``model rollback``: the previous version current again, checked first."""
        with self._change("rolled_back") as change:
            after, entry = rolled_back(change.before, where=WHERE)
            self._verified_here(change.session, entry)
            change.after = after
        return entry

    def prune(self, keep: int) -> list[tuple[str, dict, list[str]]]:
        """``model prune``: versions beyond the current, the previous and the ``keep`` newest leave the store, and
        their files this machine's folder."""
        with self._change("pruned") as change:
            after, removed = pruned(change.before, keep)
            if removed:
                change.after = after
        if removed and (self.models_dir / "manifest.json").exists():
            write_manifest(self.models_dir, after)
        return [(where, e, remove_files(self.models_dir, e, after)) for where, e in removed]

    def checkout(self) -> None:
        """Before ``train``: the models folder mirrors the store, with the current version to compare against. A
        folder with versions of its own and an empty store registry is refused: export it first."""
        head, _ = self.materialise()
        if (head is None or head.current is None) and (self.models_dir / "manifest.json").exists():
            raise ModelError(f"{WHERE} está vacío y {self.models_dir} tiene versiones: páselas al almacén con "
                             "`python -m classifier model export-to-store` antes de entrenar")

    def publish(self, version: str, *, promote: bool, keep_rejected: int | None) -> None:
        """After ``train``: the candidate ``version`` (saved in the models folder) joins the store, current or
        rejected as ``train`` decided; then the folder mirrors the store again."""
        local = {e["model_version"]: e for _, e in entries(read_manifest(self.models_dir))}
        with self._change("trained" if promote else "rejected") as change:
            manifest = change.before
            if version in local:
                self._add_version(change.session, self.models_dir, local[version])
                manifest = with_entry(manifest, local[version], promote=promote)
            if not promote and keep_rejected is not None:
                manifest, _ = trimmed_rejected(manifest, keep_rejected)
            change.after, change.version = manifest, version
        self.materialise()


class StoreWatch:
    """A worker's view of the store registry: the current entry, copied and verified into the models folder,
    whenever the registry's revision changed since the last look; told of changes by LISTEN/NOTIFY."""

    source = "store"

    def __init__(self, registry: StoreRegistry):
        self.registry = registry
        self.head: Head | None = None
        self.listening = False

    def changed(self, *, force: bool = False) -> dict | None:
        """The current entry when the revision moved (or ``force``); None when it did not or the store has no
        model. A version whose bytes fail their check raises ``ModelError`` once per revision."""
        head = self.registry.head()
        if head is None or head.current is None:
            self.head = head
            return None
        if not force and head == self.head:
            return None
        self.head = head  # a refused revision is not fetched again until the registry changes
        self.head, entry = self.registry.materialise()
        return entry

    def current_version(self) -> str | None:
        head = self.registry.head()
        return head.current if head else None

    def forget(self) -> None:
        self.head = None

    def status(self) -> dict:
        return {"source": self.source, "revision": self.head.revision if self.head else None,
                "current": self.head.current if self.head else None, "listening": self.listening}

    async def listen(self, on_change: Callable[[], None], *, retry_seconds: float = 5.0) -> None:
        """Forever: LISTEN on the registry's channel and call ``on_change`` at each notification (and once on each
        connection, for what happened while not listening); reconnect after ``retry_seconds`` when it drops."""
        import psycopg

        conninfo = make_url(self.registry.database_url).set(drivername="postgresql").render_as_string(
            hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    on_change()
                    async for _ in conn.notifies():
                        on_change()
            except (psycopg.Error, OSError) as exc:
                log.warning("model registry notifications lost", extra={"error": type(exc).__name__})
            finally:
                self.listening = False
            await asyncio.sleep(retry_seconds)
