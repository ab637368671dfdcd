"""The FastAPI application: routers, the one error shape, and loading rules and model once per worker."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import traceback
from contextlib import asynccontextmanager, suppress
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import ApiError, background_tasks, mirror_registry, model_watch
from api.group_commit import GroupCommit
from api.guard import GuardMiddleware
from api.headers import SecurityHeadersMiddleware
from classifier.messages import field_message
from api.routes import classify, health, page, policy, review, sla
from classifier.errors import ClassifierError, InputError
from classifier.pipeline import Classifier
from classifier.process import settle
from classifier.settings import Settings, get_settings
from classifier.store.db import StoreUnavailable, WriteHealth, start_checkpointer, upgrade

log = logging.getLogger("clasificador")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per log line; message bodies and keys are never among the fields. An exception gives its
    type and the frames of its traceback, not its message, which may quote what a client sent."""

    FIELDS = ("request_id", "method", "route", "status", "ms", "error", "model_version")

    def format(self, record: logging.LogRecord) -> str:
        data = {"level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        data.update({k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)})
        if record.exc_info and record.exc_info[0] is not None:
            data.setdefault("error", record.exc_info[0].__name__)
            data["traceback"] = "".join(traceback.format_tb(record.exc_info[2]))
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


def _is_json(content_type: str | None) -> bool:
    """``application/json`` or ``application/*+json``, with or without parameters (as FastAPI reads a body)."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _not_json_message(cause: ValueError) -> str:
    """Why a body FastAPI could not parse is not JSON (Python refuses integers over its digit limit, say)."""
    if "integer string conversion" in str(cause):
        return f"El cuerpo no es JSON válido: tiene un número de más de {sys.get_int_max_str_digits()} cifras."
    return "El cuerpo no es JSON válido."


# Starlette's own errors (unknown path, wrong method), in Spanish.
_HTTP_ERRORS = {404: ("not_found", "No existe ese recurso."),
                405: ("method_not_allowed", "Ese método HTTP no está permitido en este recurso.")}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        configure_logging()
        if settings.auto_migrate:
            upgrade(settings.database_url)
        app.state.model_refused = None
        app.state.model_watch = model_watch(settings)
        mirror_registry(app.state)  # store registry: its current version first copied (verified) into models_dir
        app.state.classifier = Classifier.load(settings)
        app.state.classifier.warm_up()
        start_checkpointer(settings.database_url)
        settle()
        tasks = background_tasks(app.state)  # model watcher, the store's notifications, periodic jobs
        log.info("ready", extra={"route": "startup"})
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError):
                    await task

    app = FastAPIOffline(  # /docs with Swagger UI files served by the app itself: no CDN, works offline
        redoc_url=None,
        title="Clasificador de prioridad de mensajes de soporte",
        version="1.0",
        description="Prioridad, razones, impacto y plazos (horario hábil de Colombia) para cada mensaje de soporte, "
                    "según la política de servicio al cliente (rules/policy.yaml).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.report_slots = threading.BoundedSemaphore(settings.report_concurrency)  # see api.deps.report_slot
    app.state.store_health = WriteHealth(settings.database_url,  # set by every write, read by /readyz
                                         hold_seconds=settings.store_retry_after_seconds)
    app.state.group_commit = GroupCommit(settings.database_url, store_bodies=settings.store_bodies,
                                          grouped=settings.group_commit, health=app.state.store_health)
    for router in (classify.router, sla.router, policy.router, review.router, page.router, health.router):
        app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        content_type = request.headers.get("content-type")
        if ((content_type or isinstance(exc.body, bytes)) and not _is_json(content_type)
                and any(tuple(err.get("loc", ()))[:1] == ("body",) for err in errors)):  # FastAPI only reads JSON
            return _error(415, "unsupported_media_type",
                          "Envíe el cuerpo en JSON con Content-Type: application/json.", request)
        fields = []
        for err in errors:
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
            message = field_message(err)
            if err.get("type") == "json_invalid":
                return _error(400, "invalid_json", f"El cuerpo no es JSON válido: {err.get('ctx', {}).get('error', '')}"
                              .strip(), request)
            fields.append({"field": ".".join(loc) or "body", "message": message})
        return _error(422, "invalid_request", "La petición no es válida.", request, fields)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        response = _error(exc.status, exc.code, exc.message, request, exc.fields)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, exc: StoreUnavailable):
        log.warning("store unavailable", extra={"route": request.url.path, "error": str(exc)})
        request.app.state.store_health.failed(str(exc))  # reads too: a store that cannot be reached is not ready
        response = _error(503, "store_unavailable", "El almacén de datos no acepta escrituras o no responde en este "
                                                    "momento; reintente en unos segundos.", request)
        response.headers["Retry-After"] = str(settings.store_retry_after_seconds)
        return response

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError):
        return _error(422, "invalid_message", str(exc), request)

    @app.exception_handler(ClassifierError)
    async def classifier_error(request: Request, exc: ClassifierError):
        return _error(422, "cannot_process", str(exc), request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):  # FastAPI failed to parse a JSON body
            return _error(400, "invalid_json", _not_json_message(exc.__cause__), request)
        code, message = _HTTP_ERRORS.get(exc.status_code, ("http_error", str(exc.detail)))
        if exc.detail and exc.detail != HTTPStatus(exc.status_code).phrase:  # a route's own words are kept
            message = str(exc.detail)
        return _error(exc.status_code, code, message, request)

    # An unexpected error (500) is answered, logged and counted by GuardMiddleware, which knows the request id.
    app.add_middleware(GuardMiddleware, max_body_bytes=settings.max_body_bytes, max_json_depth=settings.max_json_depth)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: the guard's own refusals get the headers too
    return app


def app_factory() -> FastAPI:
    """For ``uvicorn --factory api.main:app_factory``."""
    return create_app()
