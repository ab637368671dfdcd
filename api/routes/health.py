"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.metrics import REGISTRY

router = APIRouter(tags=["operación"])


@router.get("/healthz", summary="El proceso está vivo")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", summary="Reglas y modelo cargados, y el almacén acepta escrituras")
async def readyz(request: Request):
    classifier = getattr(request.app.state, "classifier", None)
    if classifier is None or classifier.model is None:
        return JSONResponse({"status": "not_ready"}, status_code=503)
    health = request.app.state.store_health  # while writes fail, a probe write (in a thread) says when they work
    if not health.writable and not await run_in_threadpool(health.recheck):
        return JSONResponse({"status": "not_ready", "reason": "store_unavailable"}, status_code=503)
    state = request.app.state  # the registry served from, and a newer model refused by its checks, if any
    return {"status": "ready", "model_version": classifier.model_version, "rules": len(classifier.rules.rules),
            "model_registry": state.model_watch.status(), "model_refused": state.model_refused}


@router.get("/metrics", summary="Métricas Prometheus", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
