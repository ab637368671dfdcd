"""ASGI middleware: request id, body size limit, JSON depth and UTF-8 checks, latency metrics, logs without bodies,
and the 500 for an unexpected error.

Checking the raw body here, before FastAPI parses it, gives every endpoint the same 4xx for bodies that are too
large, too deeply nested or not UTF-8, instead of a parser crash. An unexpected error is answered here too, in the
one error shape with the request id, logged and counted, and the connection stays open for the next request.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from starlette.routing import Match

try:
    from fastapi.routing import iter_route_contexts
except ImportError:  # FastAPI before included routers stayed one route: app.routes is already flat
    def iter_route_contexts(routes):
        return routes

from api.metrics import LATENCY, REQUESTS

log = logging.getLogger("clasificador.http")
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(rb"[\[\]{}]")
UNMATCHED = "unmatched"  # the one label of paths no route serves, so /metrics has a bounded set of series
INTERNAL_ERROR = "Error interno; el equipo fue notificado."


def json_depth(body: bytes) -> int:
    """Deepest nesting of arrays and objects, ignoring brackets inside strings."""
    if body.count(b"[") + body.count(b"{") <= 1:
        return body.count(b"[") + body.count(b"{")
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b'""', body)):
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _error(status: int, code: str, message: str, request_id: str) -> tuple[int, bytes]:
    body = {"error": {"code": code, "message": message, "fields": []}, "request_id": request_id}
    return status, json.dumps(body, ensure_ascii=False).encode("utf-8")


class GuardMiddleware:
    def __init__(self, app, *, max_body_bytes: int, max_json_depth: int):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", request_id):
            request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        target = {k: scope.get(k, "") for k in ("type", "method", "path", "root_path")}  # routing changes the scope
        started = time.perf_counter()
        status: int | None = None  # the response's, once it starts

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", request_id.encode())]
            await send(message)

        problem = None
        body = b""
        if scope["method"] in ("POST", "PUT", "PATCH"):
            length = headers.get("content-length")
            if length and length.isdigit() and int(length) > self.max_body_bytes:
                problem = _error(413, "body_too_large",
                                 f"El cuerpo supera el límite de {self.max_body_bytes} bytes.", request_id)
            else:
                chunks, size, more = [], 0, True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        problem = _error(413, "body_too_large",
                                         f"El cuerpo supera el límite de {self.max_body_bytes} bytes.", request_id)
                        break
                    chunks.append(chunk)
                    more = message.get("more_body", False)
                body = b"".join(chunks)
                ctype = headers.get("content-type", "")
                if problem is None and ("json" in ctype or not ctype) and body:
                    try:
                        body.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        problem = _error(400, "invalid_utf8", f"El cuerpo no es UTF-8 válido (byte {exc.start}).",
                                         request_id)
                    else:
                        if json_depth(body) > self.max_json_depth:
                            problem = _error(400, "json_too_deep",
                                             f"El JSON anida más de {self.max_json_depth} niveles.", request_id)
        failed = False
        try:
            if problem is not None:
                await _send_json(send_with_id, *problem)
            else:
                replayed = False

                async def replay():
                    nonlocal replayed
                    if not replayed:
                        replayed = True
                        return {"type": "http.request", "body": body, "more_body": False}
                    return await receive()

                await self.app(scope, replay if scope["method"] in ("POST", "PUT", "PATCH") else receive,
                               send_with_id)
        except Exception:
            failed = True
            log.exception("unexpected error", extra={"request_id": request_id, "method": scope["method"],
                                                     "route": route_label(scope, target)})
            if status is not None:  # part of the response is out: only closing the connection tells the client
                _record(scope, target, request_id, 500, started)
                raise
            await _send_json(send_with_id, *_error(500, "internal_error", INTERNAL_ERROR, request_id))
        _record(scope, target, request_id, 500 if failed or status is None else status, started)


def _record(scope, target: dict, request_id: str, status: int, started: float) -> None:
    """Count the request in /metrics and log it (5xx at error level), by route template, without its body."""
    elapsed = time.perf_counter() - started
    route = route_label(scope, target)
    REQUESTS.labels(scope["method"], route, str(status)).inc()
    LATENCY.labels(route).observe(elapsed)
    log.log(logging.ERROR if status >= 500 else logging.INFO, "request",
            extra={"request_id": request_id, "method": scope["method"], "route": route, "status": status,
                   "ms": round(elapsed * 1000, 2)})


async def _send_json(send, status: int, payload: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


def route_label(scope, target: dict) -> str:
    """The template of the route that served the request (``/v1/review/{id}/decision``), one series per route in
    /metrics; ``unmatched`` for paths no route serves. Routing leaves an API route in the scope; a mount, or a
    request refused before routing (413, say), is matched here on ``target``, the request as it arrived."""
    route = scope.get("route")
    if route is None and "app" in scope:
        route = next((r for r in iter_route_contexts(scope["app"].routes) if r.matches(target)[0] != Match.NONE), None)
    return (getattr(route, "path_format", None) or UNMATCHED) if route is not None else UNMATCHED
