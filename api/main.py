"""The FastAPI application: routers, the one error shape, and loading rules and model once per worker."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import ApiError
from api.group_commit import GroupCommit
from api.guard import GuardMiddleware
from api.messages import field_message
from api.routes import classify, health, page, policy, review, sla
from classifier.errors import ClassifierError, InputError
from classifier.pipeline import Classifier
from classifier.process import settle
from classifier.settings import Settings, get_settings
from classifier.store.db import start_checkpointer, upgrade

log = logging.getLogger("clasificador")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per log line; message bodies and keys are never among the fields."""

    FIELDS = ("request_id", "method", "route", "status", "ms")

    def format(self, record: logging.LogRecord) -> str:
        data = {"level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        data.update({k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)})
        return json.dumps(data, ensure_ascii=False)


def configure_logging() -> None:
    root = logging.getLogger("clasificador")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLogFormatter())
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False


def _error(status: int, code: str, message: str, request: Request, fields: list[dict] | None = None) -> JSONResponse:
    request_id = request.scope.get("state", {}).get("request_id")
    return JSONResponse({"error": {"code": code, "message": message, "fields": fields or []},
                         "request_id": request_id}, status_code=status)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        configure_logging()
        if settings.auto_migrate:
            upgrade(settings.database_url)
        app.state.classifier = Classifier.load(settings)
        app.state.classifier.warm_up()
        app.state.manifest_mtime = None
        app.state.model_checked = time.monotonic()
        start_checkpointer(settings.database_url)
        settle()
        log.info("ready", extra={"route": "startup"})
        yield

    app = FastAPI(
        title="Clasificador de prioridad de mensajes de soporte",
        version="1.0",
        description="Prioridad, razones, impacto y plazos (horario hábil de Colombia) para cada mensaje de soporte "
                    "de SIEMPRE.NET S.A.S., según su política de servicio al cliente.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.group_commit = GroupCommit(settings.database_url, store_bodies=settings.store_bodies,
                                          grouped=settings.group_commit)
    for router in (classify.router, sla.router, policy.router, review.router, page.router, health.router):
        app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        fields = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
            message = field_message(err)
            if err.get("type") == "json_invalid":
                return _error(400, "invalid_json", f"El cuerpo no es JSON válido: {err.get('ctx', {}).get('error', '')}"
                              .strip(), request)
            fields.append({"field": ".".join(loc) or "body", "message": message})
        return _error(422, "invalid_request", "La petición no es válida.", request, fields)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return _error(exc.status, exc.code, exc.message, request, exc.fields)

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError):
        return _error(422, "invalid_message", str(exc), request)

    @app.exception_handler(ClassifierError)
    async def classifier_error(request: Request, exc: ClassifierError):
        return _error(422, "cannot_process", str(exc), request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error", extra={"route": request.url.path})
        return _error(500, "internal_error", "Error interno; el equipo fue notificado.", request)

    app.add_middleware(GuardMiddleware, max_body_bytes=settings.max_body_bytes, max_json_depth=settings.max_json_depth)
    return app


def app_factory() -> FastAPI:
    """For ``uvicorn --factory api.main:app_factory``."""
    return create_app()
