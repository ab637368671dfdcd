"""Dependencies: settings, the loaded classifier, database sessions and the API key check.

They are ``async`` on purpose: scoring is short CPU work, and running it on the event loop avoids a thread
hop and GIL contention per request (a sync dependency would run in FastAPI's thread pool).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from classifier.service import Classifier
from classifier.settings import Settings
from classifier.store.db import sessions

async def app_settings(request: Request) -> Settings:
    """The settings the app was created with (kept in ``app.state``, read without a thread hop)."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(app_settings)]


class ApiError(Exception):
    """An HTTP error in the API's one error shape."""

    def __init__(self, status: int, code: str, message: str, fields: list[dict] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []


async def get_classifier(request: Request) -> Classifier:
    classifier = getattr(request.app.state, "classifier", None)
    if classifier is None:
        raise ApiError(503, "not_ready", "El modelo y las reglas aún no están cargados.")
    return classifier


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
        raise ApiError(401, "api_key_missing", "Falta la cabecera X-API-Key.")
    if not hmac.compare_digest(given.encode("utf-8"), settings.api_key.encode("utf-8")):
        raise ApiError(403, "api_key_invalid", "La clave X-API-Key no es válida.")


async def require_key(request: Request, settings: SettingsDep) -> None:
    check_key(request, settings)


async def classify_key(request: Request, settings: SettingsDep) -> None:
    """The classify endpoints are open unless CLASSIFIER_CLASSIFY_REQUIRE_KEY=true."""
    if settings.classify_require_key:
        check_key(request, settings)
