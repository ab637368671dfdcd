"""Dependencies: settings, the loaded classifier, database sessions, and who may call (API key or session, by role).

They are ``async`` on purpose: scoring is short CPU work, and running it on the event loop avoids a thread
hop and GIL contention per request (a sync dependency would run in FastAPI's thread pool).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.group_commit import GroupCommit
from api.keys import ENV, KeyMatch, Role, keyring
from api.metrics import record
from api.session import COOKIE, CSRF_HEADER, ReviewSession, csrf_valid, find_session
from classifier.artefacts import ManifestWatch, load_model
from classifier.errors import ModelError
from classifier.ingest import Message
from classifier.pipeline import Classifier
from classifier.settings import Settings
from classifier.store.db import sessions, typed_store_errors
from classifier.store.repository import IdConflict

if TYPE_CHECKING:
    from classifier.store.registry import StoreWatch


async def app_settings(request: Request) -> Settings:
    """The settings the app was created with (kept in ``app.state``, read without a thread hop)."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(app_settings)]
log = logging.getLogger("clasificador")


class ApiError(Exception):
    """An HTTP error in the API's one error shape."""

    def __init__(self, status: int, code: str, message: str, fields: list[dict] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []
        self.headers = headers or {}


def model_watch(settings: Settings) -> ManifestWatch | StoreWatch:
    """Where this worker learns of promotions and rollbacks: the store's registry or the models folder's manifest
    (``CLASSIFIER_MODEL_REGISTRY``)."""
    if settings.model_registry_in_store:
        from classifier.store.registry import StoreRegistry, StoreWatch

        return StoreWatch(StoreRegistry(settings.database_url, settings.models_dir))
    return ManifestWatch(settings.models_dir)


def mirror_registry(state) -> None:
    """At start-up, with the store registry: its current version copied and verified into the models folder, so
    that the worker starts with it. A refused version is reported and the folder's own model serves; a store
    without a model, or not reachable, leaves the folder as it is."""
    watch = state.model_watch
    if watch.source != "store":
        return
    try:
        if watch.changed(force=True) is None:
            log.warning("model registry in the store has no model yet: serving the models folder "
                        "(python -m classifier model export-to-store)")
    except ModelError as exc:
        refused(state, exc)
    except Exception as exc:  # the store may be down at start-up: the folder's copy serves meanwhile
        log.error("model registry not read at start-up", extra={"error": type(exc).__name__})


def load_current_model(state, *, force: bool = False) -> Classifier | None:
    """The registry's current model, verified and warmed up, when it differs from the one served; None when
    nothing changed. Reads files (or the store) and scores one message: run it off the event loop."""
    entry = state.model_watch.changed(force=force)
    if entry is None:
        return None
    classifier: Classifier = state.classifier
    if entry["model_version"] == classifier.model_version:
        state.model_refused = None  # back to what is served: nothing stays refused
        return None
    candidate = classifier.with_model(load_model(state.settings.models_dir, entry))
    try:
        candidate.warm_up()  # builds its tables now, and a model that cannot score is never swapped in
    except Exception as exc:
        raise ModelError(f"el modelo {entry['model_version']} falló al calentar (primer mensaje de prueba): {exc}") from exc
    return candidate


def serve_model(state, candidate: Classifier) -> None:
    """Swap the candidate in; requests already running finish with the model they started with."""
    state.classifier = candidate
    state.model_refused = None
    log.info("model reloaded", extra={"model_version": candidate.model_version})


def refused(state, exc: ModelError) -> None:
    """A model that failed its checks: logged, shown on /readyz; the one in memory keeps serving."""
    reason = str(exc)[:300]
    log.error("model reload refused", extra={"error": reason})
    state.model_refused = {"reason": reason, "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def reload_model(state, *, force: bool = False) -> bool:
    """Load and serve the registry's current model now if it changed; True if swapped."""
    candidate = load_current_model(state, force=force)
    if candidate is not None:
        serve_model(state, candidate)
    return candidate is not None


def _candidate(state) -> Classifier | None:
    """``load_current_model``, dropping a candidate the registry no longer names once loaded (checked again)."""
    candidate = load_current_model(state)
    if candidate is not None and state.model_watch.current_version() != candidate.model_version:
        state.model_watch.forget()
        return None
    return candidate


async def _next_check(state, interval: float) -> None:
    """Wait for the next look at the registry: a notification from the store, else ``interval`` seconds (or, while
    notifications are connected, CLASSIFIER_MODEL_REGISTRY_POLL_SECONDS, for one lost with a connection)."""
    notified: asyncio.Event | None = getattr(state, "model_notified", None)
    if notified is None or not state.model_watch.listening:
        await asyncio.sleep(interval)
    else:
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(notified.wait(), state.settings.model_registry_poll_seconds)
    if notified is not None:
        notified.clear()


async def watch_model(state, interval: float) -> None:
    """Serve the registry's current model whenever it changes, with or without traffic, so a promotion or a
    rollback reaches every worker within about ``interval`` seconds plus the load (at once when the store
    notifies).

    Loading runs in a thread, so requests go on meanwhile; a refused model is logged and the one in memory keeps
    serving. A candidate the registry no longer names by the time it is loaded is dropped and checked again."""
    while True:
        await _next_check(state, interval)
        try:
            candidate = await asyncio.to_thread(_candidate, state)
        except ModelError as exc:  # keep serving the verified model in memory
            refused(state, exc)
            continue
        except Exception:  # the watcher must outlive a bad check (a manifest edited by hand, a store restarting)
            log.exception("model check failed")
            continue
        if candidate is not None:
            serve_model(state, candidate)


def background_tasks(state) -> list[asyncio.Task]:
    """The worker's background tasks: the model watcher, the store's notifications (PostgreSQL) and, when
    CLASSIFIER_JOBS_EVERY_SECONDS is set, the periodic jobs."""
    settings: Settings = state.settings
    state.model_watcher = asyncio.create_task(watch_model(state, settings.model_check_seconds))
    tasks = [state.model_watcher]
    watch = state.model_watch
    if watch.source == "store" and settings.database_url.startswith("postgresql"):
        state.model_notified = asyncio.Event()
        tasks.append(asyncio.create_task(watch.listen(state.model_notified.set)))
    if settings.jobs_every_seconds > 0:
        tasks.append(asyncio.create_task(run_jobs_periodically(state, settings.jobs_every_seconds)))
    return tasks


async def run_jobs_periodically(state, every: float) -> None:
    """Every ``every`` seconds, the escalation and purge jobs in a thread; each runs on one instance at a time
    (``classifier/store/jobs.py``)."""
    from classifier.store.jobs import JOBS, run_jobs

    settings: Settings = state.settings
    while True:
        await asyncio.sleep(every)
        try:
            runs = await asyncio.to_thread(run_jobs, JOBS, database_url=settings.database_url,
                                           sla=state.classifier.policy_engine.sla,
                                           retention_days=settings.retention_days)
        except Exception:  # a store restarting must not end the loop
            log.exception("periodic jobs failed")
            continue
        for run in runs:
            if run.count:
                log.info(f"job {run.job}: {run.count}", extra={"route": f"job:{run.job}"})


async def get_classifier(request: Request) -> Classifier:
    """The classifier this worker serves (``watch_model`` keeps it current)."""
    classifier = getattr(request.app.state, "classifier", None)
    if classifier is None:
        raise ApiError(503, "not_ready", "El modelo y las reglas aún no están cargados.")
    return classifier


ClassifierDep = Annotated[Classifier, Depends(get_classifier)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    """A database session for one request. A plain generator: FastAPI opens and closes it in its thread pool, off
    the event loop (routes that use it are plain ``def`` too). Errors that say the store cannot serve (read-only,
    full, unreachable) become ``StoreUnavailable``: a 503, not a 500."""
    session = sessions(settings.database_url)()
    try:
        with typed_store_errors(session):
            yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


@contextmanager
def report_turn(request: Request) -> Iterator[None]:
    """Wait for one of the worker's report slots (CLASSIFIER_REPORT_CONCURRENCY, default 1), blocking the calling
    thread, never the event loop. A report is Python work over many rows: several at once on one process do not
    finish sooner, they only take more turns at the interpreter lock from the event loop, and /healthz and every
    classification wait for each turn."""
    with request.app.state.report_slots:
        yield


def report_slot(request: Request) -> Iterator[None]:
    """``report_turn`` for a whole request (a streamed answer keeps its slot until it is sent)."""
    with report_turn(request):
        yield


ReportSlot = Depends(report_slot)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a request: an API key (``agent`` None: the body names the agent) or a review page session."""

    roles: frozenset[str]
    session: ReviewSession | None = None

    @property
    def agent(self) -> str | None:
        return self.session.agent if self.session else None


def _missing() -> ApiError:
    return ApiError(401, "api_key_missing", "Falta la cabecera X-API-Key (o una sesión de la página de revisión).")


def _forbidden(role: str) -> ApiError:
    return ApiError(403, "role_forbidden", f"La credencial no tiene el rol «{role}» que exige este recurso.")


def check_key(request: Request, settings: Settings, role: Role, *, required: bool = True) -> KeyMatch | None:
    """The request's X-API-Key if it grants ``role`` (constant-time match against every configured key).

    503 when no configured key has the role, 403 for an unknown key or one without the role, 401 without the
    header (None instead when not ``required``).
    """
    keys = keyring(settings)
    if not keys.grants(role):
        raise ApiError(503, "api_key_not_configured",
                       f"Este servicio no tiene clave configurada para el rol «{role}» (CLASSIFIER_API_KEY o "
                       f"{ENV[role]}): el recurso está deshabilitado.")
    given = request.headers.get("x-api-key")
    if given is None:
        if required:
            raise _missing()
        return None
    match = keys.match(given)
    if match is None:
        raise ApiError(403, "api_key_invalid", "La clave X-API-Key no es válida.")
    if role not in match.roles:
        raise _forbidden(role)
    return match


def authorize(request: Request, settings: Settings, db: Session, role: Role) -> Principal:
    """By X-API-Key, else by the review page's session cookie, checked in the store (revoked, expired or opened
    with a key no longer configured: 401); a session's requests that change state must carry its CSRF token."""
    match = check_key(request, settings, role, required=False)
    if match is not None:
        return Principal(match.roles)
    session = find_session(db=db, token=request.cookies.get(COOKIE), keys=keyring(settings))
    if session is None:
        raise _missing()
    if role not in session.roles:
        raise _forbidden(role)
    if request.method not in SAFE_METHODS and not csrf_valid(session, request.headers.get(CSRF_HEADER)):
        raise ApiError(403, "csrf_invalid", "Falta el token CSRF de la sesión (cabecera X-CSRF-Token) o no "
                                            "corresponde a ella.")
    return Principal(session.roles, session)


def require_agent(request: Request, settings: SettingsDep, db: SessionDep) -> Principal:  # reads: thread pool
    return authorize(request, settings, db, "agent")


def require_admin(request: Request, settings: SettingsDep, db: SessionDep) -> Principal:  # reads: thread pool
    return authorize(request, settings, db, "admin")


AgentDep = Annotated[Principal, Depends(require_agent)]


@dataclass(frozen=True, slots=True)
class Scoring:
    """What the classify endpoints need: the current classifier, the turn groups that score and store, and the
    settings."""

    classifier: Classifier
    groups: GroupCommit
    settings: Settings

    async def classify_and_store(self, messages: list[Message], extra: list[dict] | None = None, *,
                                 in_place: bool = False) -> list[dict]:
        """Stored results for messages already seen (same id and same content), new classifications for the rest,
        in order, each stored before it is returned, with ``duplicate`` saying which is which.

        An id stored for another message is a conflict: 409 ``id_conflict``, or with ``in_place`` (a batch) an
        error entry ``{"id", "error"}`` in its place; either way nothing of the stored result is shown."""
        known = self.groups.stored([m.id for m in messages if m.id])
        out: list[dict | IdConflict | None] = [None] * len(messages)
        for i, m in enumerate(messages):
            if m.id in known:
                out[i] = {**known[m.id].result, "duplicate": True} if known[m.id].is_for(m) else IdConflict(m.id)
        todo = [i for i, stored in enumerate(out) if stored is None]
        saved = await self.groups.classify_and_store(self.classifier, [messages[i] for i in todo],
                                                     [extra[i] for i in todo] if extra else None)
        for i, outcome in zip(todo, saved):
            if isinstance(outcome, IdConflict):
                out[i] = outcome
                continue
            stored, created = outcome
            out[i] = {**stored, "duplicate": not created}
            if created:
                record(stored)
        for i, outcome in enumerate(out):
            if isinstance(outcome, IdConflict):
                error = id_conflict()
                if not in_place:
                    raise error
                out[i] = {"id": outcome.message_id, "error": {"code": error.code, "message": error.message,
                                                              "fields": error.fields}}
        return out  # type: ignore[return-value]


def id_conflict() -> ApiError:
    """409 for a message id already stored for a different message; says nothing of that message."""
    return ApiError(409, "id_conflict", "Este id ya corresponde a otro mensaje con un contenido distinto; envíe este "
                                        "mensaje con un id propio.",
                    [{"field": "id", "message": "ya usado por otro mensaje"}])


async def scoring(request: Request) -> Scoring:
    """The classify endpoints' one dependency (FastAPI spends ~15 µs on each per request): a gateway key once any
    key is configured (unless CLASSIFIER_CLASSIFY_REQUIRE_KEY=false), then the classifier and the store."""
    settings: Settings = request.app.state.settings
    if settings.classify_require_key and keyring(settings).configured:
        check_key(request, settings, "gateway")
    return Scoring(await get_classifier(request), request.app.state.group_commit, settings)


ScoringDep = Annotated[Scoring, Depends(scoring)]
