"""Agents' decisions on suggested priorities, the review queue and the export for retraining (keyed)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import ApiError, ClassifierDep, SessionDep, reload_model, require_key
from api.schemas import ErrorOut, FeedbackIn, FeedbackOut, ReviewPage
from classifier.calendar import parse_instant
from classifier.errors import ModelError
from classifier.policy import FAILURES, INCOMPLETE
from classifier.store.repository import (DecisionConflict, get_classification, open_tickets, quality,
                                         record_decision, review_queue, reviewed)

router = APIRouter(prefix="/v1", tags=["revisión"], dependencies=[Depends(require_key)])
KEYED = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 503: {"model": ErrorOut}}


@router.post("/feedback", response_model=FeedbackOut, responses={**KEYED, 404: {"model": ErrorOut},
                                                                   409: {"model": ErrorOut}, 422: {"model": ErrorOut}},
             summary="Registrar la decisión de un agente",
             description="accept (acepta la prioridad sugerida), change (otra prioridad, con razón) o escalate (nivel "
                         "N2 y un paso más de prioridad). Los plazos se recalculan desde la llegada original.")
async def feedback(item: FeedbackIn, classifier: ClassifierDep, session: SessionDep) -> dict:
    row = get_classification(session=session, classification_id=item.classification_id)
    if row is None:
        raise ApiError(404, "classification_not_found", f"No existe la clasificación {item.classification_id}.")
    policy = classifier.policy_engine.policy
    level = policy.support.first_level
    if item.decision == "accept":
        priority = row.priority
    elif item.decision == "change":
        if item.priority is None or not (item.reason or "").strip():
            raise ApiError(422, "invalid_request", "Para cambiar la prioridad indique priority y reason.",
                           [{"field": "priority" if item.priority is None else "reason", "message": "obligatorio"}])
        priority = item.priority
    else:
        priority = item.priority or policy.raised(row.priority)
        level = policy.support.escalation_level
    try:
        decision, _ = record_decision(session=session, classification=row, agent=item.agent, decision=item.decision,
                                      priority=priority, level=level, reason=item.reason, replaces=item.replaces)
    except DecisionConflict as exc:
        raise ApiError(409, "decision_conflict",
                       f"Ya hay una decisión ({exc.current.decision}, {exc.current.priority}) de {exc.current.agent}; "
                       "envíe replaces=true para reemplazarla.") from None
    sla = classifier.policy_engine.sla.deadlines(priority, parse_instant(row.result["received_at"]),
                                                 customer_id=row.customer_id, sender=row.sender,
                                                 request_type=row.result.get("request_type"), level=level)
    return {"decision_id": decision.id, "classification_id": row.id, "agent": decision.agent,
            "decision": decision.decision, "priority": decision.priority,
            "suggested_priority": decision.suggested_priority, "level": decision.level, "reason": decision.reason,
            "replaces": decision.replaces, "created_at": decision.created_at.isoformat(),
            "response_due": sla.as_dict()["response_due"], "solution_due": sla.as_dict()["solution_due"]}


@router.get("/review", response_model=ReviewPage, responses=KEYED, summary="Mensajes que esperan revisión",
            description="Sin decisión de un agente; los más antiguos primero, o los de menor confianza primero "
                        "(order=least_confident: cada corrección enseña más al modelo).")
async def review(session: SessionDep,
                 needs_review: Literal["true", "false", "all"] = Query("true", description="true, false o all."),
                 order: Literal["oldest", "least_confident"] = Query("oldest"),
                 limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0)) -> dict:
    flag = None if needs_review == "all" else needs_review == "true"
    rows, total = review_queue(session=session, needs_review=flag, order=order, limit=limit, offset=offset)
    items = [{"classification_id": r.id, "message_id": r.message_id, "received_at": r.result["received_at"],
              "channel": r.channel, "subject": r.subject, "body": r.body, "priority": r.priority,
              "confidence": r.confidence, "needs_review": r.needs_review, "result": r.result} for r in rows]
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@router.get("/feedback/export", responses={**KEYED, 200: {"content": {"application/x-ndjson": {}}}},
            summary="Mensajes revisados en el formato del corpus (JSON Lines)",
            description="label = prioridad que el agente aceptó o eligió (una escalación no es una etiqueta), source = agent-feedback, group = id de la clasificación, "
                        "split = train. Pasa `python -m classifier data check --profile feedback`.")
async def export(session: SessionDep) -> StreamingResponse:
    lines = []
    for row, decision in reviewed(session=session):
        if row.body is None and not row.subject:
            continue  # body purged by retention: no longer usable for training
        label = decision.priority
        result = row.result
        lines.append(json.dumps({
            "id": row.id,
            "channel": row.channel,
            "subject": (row.subject or "") if row.channel == "email" else "",
            "body": row.body or "",
            "label": label,
            "impact": result.get("impact", "desconocido") if label in FAILURES else "desconocido",
            "request_type": "incompleto" if label == INCOMPLETE else result.get("request_type", "otro"),
            "product": "general",
            "source": "agent-feedback",
            "group": row.id,
            "split": "train",
        }, ensure_ascii=False) + "\n")
    return StreamingResponse(iter(lines), media_type="application/x-ndjson")


@router.post("/escalations/check", summary="Tickets en N1 con el tiempo de respuesta vencido",
             description="Propone N2 con la prioridad un paso más alta y los plazos recalculados desde la llegada "
                         "original. Un escalamiento aceptado se registra con POST /v1/feedback (decision=escalate).",
             responses=KEYED)
async def escalations_check(classifier: ClassifierDep, session: SessionDep,
                            now: str | None = Query(None, description="Momento de la revisión (ISO 8601 con zona); "
                                                                      "por defecto, ahora.")) -> dict:
    engine = classifier.policy_engine
    moment = parse_instant(now) if now else datetime.now(engine.calendar.tz)
    proposals = []
    for row, decision in open_tickets(session=session):
        priority = decision.priority if decision is not None else row.priority
        check = engine.sla.escalation(priority, parse_instant(row.result["received_at"]), level="N1", now=moment,
                                      customer_id=row.customer_id, sender=row.sender,
                                      request_type=row.result.get("request_type"))
        if check.escalate:
            proposals.append({"classification_id": row.id, "message_id": row.message_id, **check.as_dict()})
    return {"now": moment.isoformat(), "escalations": proposals}


@router.post("/admin/reload", summary="Servir el modelo vigente del manifiesto", responses=KEYED,
             description="Cambia al modelo promovido (o restaurado con `model rollback`) sin cortar peticiones; los "
                         "demás workers lo toman solos al revisar el manifiesto.")
async def admin_reload(request: Request) -> dict:
    try:
        swapped = reload_model(request.app.state, force=True)
    except ModelError as exc:
        raise ApiError(409, "model_refused", str(exc)) from None
    return {"reloaded": swapped, "model_version": request.app.state.classifier.model_version}


@router.get("/quality", summary="Calidad del modelo según los agentes, por semana y prioridad", responses=KEYED,
            description="Cuántas sugerencias aceptaron los agentes, a qué prioridad las cambiaron y qué parte se "
                        "envió a revisión: la precisión en vivo del modelo.")
async def quality_report(session: SessionDep, weeks: int = Query(12, ge=1, le=104)) -> dict:
    return quality(session=session, weeks=weeks)
