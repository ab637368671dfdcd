"""Dependencies: settings, the loaded classifier, database sessions and the API key check.

They are ``async`` on purpose: scoring is short CPU work, and running it on the event loop avoids a thread
hop and GIL contention per request (a sync dependency would run in FastAPI's thread pool).
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.group_commit import GroupCommit
from api.metrics import record
from api.session import COOKIE, session_agent
from classifier.artefacts import load_model, read_manifest
from classifier.errors import ModelError
from classifier.ingest import Message
from classifier.pipeline import Classifier
from classifier.settings import Settings
from classifier.store.db import sessions

async def app_settings(request: Request) -> Settings:
    """The settings the app was created with (kept in ``app.state``, read without a thread hop)."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(app_settings)]
log = logging.getLogger("clasificador")


class ApiError(Exception):
    """An HTTP error in the API's one error shape."""

    def __init__(self, status: int, code: str, message: str, fields: list[dict] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []


MODEL_CHECK_SECONDS = 2.0


def reload_model(state, *, force: bool = False) -> bool:
    """Serve the manifest's current model if it changed (checked by file time, then version); True if swapped.

    Every worker runs this for itself, so a promotion or a rollback reaches all workers of a service within
    seconds; requests already running finish with the model they started with.
    """
    settings: Settings = state.settings
    manifest = Path(settings.models_dir) / "manifest.json"
    try:
        mtime = manifest.stat().st_mtime
    except OSError:
        return False
    if not force and mtime == getattr(state, "manifest_mtime", None):
        return False
    state.manifest_mtime = mtime
    entry = read_manifest(settings.models_dir)["current"]
    classifier: Classifier = state.classifier
    if entry["model_version"] == classifier.model_version:
        return False
    candidate = classifier.with_model(load_model(settings.models_dir, entry))
    try:
        candidate.warm_up()  # builds its tables now, and a model that cannot score is never swapped in
    except Exception as exc:
        raise ModelError(f"model {entry['model_version']} failed its warm-up: {exc}") from exc
    state.classifier = candidate
    log.info("model reloaded", extra={"route": entry["model_version"]})
    return True


async def get_classifier(request: Request) -> Classifier:
    state = request.app.state
    if getattr(state, "classifier", None) is None:
        raise ApiError(503, "not_ready", "El modelo y las reglas aún no están cargados.")
    now = time.monotonic()
    if now - getattr(state, "model_checked", 0.0) > MODEL_CHECK_SECONDS:
        state.model_checked = now
        try:
            reload_model(state)
        except ModelError as exc:  # keep serving the verified model in memory
            log.error("model reload refused", extra={"route": str(exc)[:200]})
    return state.classifier


ClassifierDep = Annotated[Classifier, Depends(get_classifier)]


async def get_session(settings: SettingsDep):
    session = sessions(settings.database_url)()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def check_key(request: Request, settings: Settings) -> None:
    """401 without a key, 403 with a wrong one, 503 when the service has none configured."""
    if not settings.api_key:
        raise ApiError(503, "api_key_not_configured",
                       "Este servicio no tiene clave configurada (CLASSIFIER_API_KEY): el recurso está deshabilitado.")
    given = request.headers.get("x-api-key")
    if not given:
        if session_agent(settings.api_key, request.cookies.get(COOKIE)) is not None:
            return
        raise ApiError(401, "api_key_missing", "Falta la cabecera X-API-Key.")
    if not hmac.compare_digest(given.encode("utf-8"), settings.api_key.encode("utf-8")):
        raise ApiError(403, "api_key_invalid", "La clave X-API-Key no es válida.")


async def require_key(request: Request, settings: SettingsDep) -> None:
    check_key(request, settings)


@dataclass(frozen=True, slots=True)
class Scoring:
    """What the classify endpoints need: the current classifier, the turn groups that score and store, and the
    settings."""

    classifier: Classifier
    groups: GroupCommit
    settings: Settings

    async def classify_and_store(self, messages: list[Message], extra: list[dict] | None = None) -> list[dict]:
        """Stored results for messages already seen (same id), new classifications for the rest, in order, each
        stored before it is returned, with ``duplicate`` saying which is which."""
        known = self.groups.stored([m.id for m in messages if m.id])
        out: list[dict | None] = [{**known[m.id], "duplicate": True} if m.id in known else None for m in messages]
        todo = [i for i, stored in enumerate(out) if stored is None]
        saved = await self.groups.classify_and_store(self.classifier, [messages[i] for i in todo],
                                                     [extra[i] for i in todo] if extra else None)
        for i, (stored, created) in zip(todo, saved):
            out[i] = {**stored, "duplicate": not created}
            if created:
                record(stored)
        return out  # type: ignore[return-value]


async def scoring(request: Request) -> Scoring:
    """The classify endpoints' one dependency (FastAPI spends ~15 µs on each per request): the key check, open
    unless CLASSIFIER_CLASSIFY_REQUIRE_KEY=true, then the classifier and the store."""
    settings: Settings = request.app.state.settings
    if settings.classify_require_key:
        check_key(request, settings)
    return Scoring(await get_classifier(request), request.app.state.group_commit, settings)


ScoringDep = Annotated[Scoring, Depends(scoring)]
