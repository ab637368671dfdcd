"""Agents' decisions on suggested priorities, the review queue and the export for retraining.

Every route needs the agent role (an agent or admin key, or a review page session); reload, export and the
escalation check need admin. Under a session, a decision is the session's agent's. Routes that read or write the
store are plain ``def``: FastAPI runs them in its thread pool, so a long report never holds up the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from itertools import islice
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic_core import to_json

from api.deps import (AgentDep, ApiError, ClassifierDep, ReportSlot, SessionDep, reload_model, require_admin,
                      require_agent)
from api.schemas import ErrorOut, FeedbackIn, FeedbackOut, ReviewPage
from classifier.calendar import parse_instant
from classifier.errors import ModelError
from classifier.policy import FAILURES, INCOMPLETE
from classifier.store.repository import (DecisionConflict, Labelled, get_classification, labelled, open_tickets,
                                         quality, record_decision, review_queue)

router = APIRouter(prefix="/v1", tags=["revisión"], dependencies=[Depends(require_agent)])
ADMIN = [Depends(require_admin)]
KEYED = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 503: {"model": ErrorOut}}


@router.post("/feedback", response_model=FeedbackOut, responses={**KEYED, 404: {"model": ErrorOut},
                                                                   409: {"model": ErrorOut}, 422: {"model": ErrorOut}},
             summary="Registrar la decisión de un agente",
             description="accept (acepta la prioridad sugerida), change (otra prioridad, con razón) o escalate (nivel "
                         "N2 y un paso más de prioridad). Los plazos se recalculan desde la llegada original.")
def feedback(item: FeedbackIn, request: Request, classifier: ClassifierDep, session: SessionDep,
             caller: AgentDep) -> dict:
    if caller.agent is not None and item.agent != caller.agent:
        raise ApiError(403, "agent_mismatch", f"La sesión es de {caller.agent}: no puede registrar decisiones a "
                                              "nombre de otro agente.")
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
        with request.app.state.store_health.watch():
            decision, _ = record_decision(session=session, classification=row, agent=item.agent,
                                          decision=item.decision, priority=priority, level=level, reason=item.reason,
                                          replaces=item.replaces)
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
            dependencies=[ReportSlot],
            description="Sin decisión de un agente; los más antiguos primero, o los de menor confianza primero "
                        "(order=least_confident: cada corrección enseña más al modelo).")
def review(session: SessionDep,
           needs_review: Literal["true", "false", "all"] = Query("true", description="true, false o all."),
           order: Literal["oldest", "least_confident"] = Query("oldest"),
           limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000_000)) -> dict:
    flag = None if needs_review == "all" else needs_review == "true"
    rows, total = review_queue(session=session, needs_review=flag, order=order, limit=limit, offset=offset)
    items = [{"classification_id": r.id, "message_id": r.message_id, "received_at": r.result["received_at"],
              "channel": r.channel, "subject": r.subject, "body": r.body, "priority": r.priority,
              "confidence": r.confidence, "needs_review": r.needs_review, "result": r.result} for r in rows]
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@router.get("/feedback/export", responses={**KEYED, 200: {"content": {"application/x-ndjson": {}}}},
            dependencies=[*ADMIN, ReportSlot],
            summary="Mensajes revisados en el formato del corpus (JSON Lines)",
            description="label = prioridad que el agente aceptó o eligió (una escalación no es una etiqueta), source = agent-feedback, group = id de la clasificación, "
                        "split = train. Pasa `python -m classifier data check --profile feedback`.")
def export(session: SessionDep) -> StreamingResponse:
    return StreamingResponse(_export_lines(labelled(session=session)), media_type="application/x-ndjson")


EXPORT_CHUNK = 500  # lines per piece sent: one thread-pool hop per piece, not per line


def _export_lines(rows: Iterator[Labelled]) -> Iterator[str]:
    """Corpus lines for the labelled messages, read from the store as they are sent."""
    lines = (_export_line(row) for row in rows if row.body is not None or row.subject)  # else purged by retention
    while piece := "".join(islice(lines, EXPORT_CHUNK)):
        yield piece


def _export_line(row: Labelled) -> str:
    label = row.label
    return json.dumps({
        "id": row.id,
        "channel": row.channel,
        "subject": (row.subject or "") if row.channel == "email" else "",
        "body": row.body or "",
        "label": label,
        "impact": (row.impact or "desconocido") if label in FAILURES else "desconocido",
        "request_type": "incompleto" if label == INCOMPLETE else (row.request_type or "otro"),
        "product": "general",
        "source": "agent-feedback",
        "group": row.id,
        "split": "train",
    }, ensure_ascii=False) + "\n"


@router.post("/escalations/check", summary="Tickets en N1 con el tiempo de respuesta vencido",
             description="Propone N2 con la prioridad un paso más alta y los plazos recalculados desde la llegada "
                         "original. Un escalamiento aceptado se registra con POST /v1/feedback (decision=escalate).",
             responses=KEYED, dependencies=[*ADMIN, ReportSlot])
def escalations_check(classifier: ClassifierDep, session: SessionDep,
                      now: str | None = Query(None, description="Momento de la revisión (ISO 8601 con zona); "
                                                                "por defecto, ahora.")) -> Response:
    engine = classifier.policy_engine
    moment = parse_instant(now) if now else datetime.now(engine.calendar.tz)
    proposals = []
    for ticket in open_tickets(session=session):
        check = engine.sla.escalation(ticket.priority, parse_instant(ticket.received_at), level="N1", now=moment,
                                      customer_id=ticket.customer_id, sender=ticket.sender,
                                      request_type=ticket.request_type)
        if check.escalate:
            proposals.append({"classification_id": ticket.id, "message_id": ticket.message_id, **check.as_dict()})
    # Serialised here, in the thread pool: thousands of proposals are megabytes of JSON, too long for the event loop
    return Response(to_json({"now": moment.isoformat(), "escalations": proposals}), media_type="application/json")


@router.post("/admin/reload", summary="Servir el modelo vigente del manifiesto", responses=KEYED,
             dependencies=ADMIN,
             description="Cambia al modelo promovido (o restaurado con `model rollback`) sin cortar peticiones; los "
                         "demás workers lo toman solos al revisar el manifiesto.")
async def admin_reload(request: Request) -> dict:
    try:
        swapped = reload_model(request.app.state, force=True)
    except ModelError as exc:
        raise ApiError(409, "model_refused", str(exc)) from None
    return {"reloaded": swapped, "model_version": request.app.state.classifier.model_version}


@router.get("/quality", summary="Calidad del modelo según los agentes, por semana y prioridad", responses=KEYED,
            dependencies=[ReportSlot],
            description="Cuántas sugerencias aceptaron los agentes, a qué prioridad las cambiaron y qué parte se "
                        "envió a revisión: la precisión en vivo del modelo.")
def quality_report(session: SessionDep, weeks: int = Query(12, ge=1, le=104)) -> dict:
    return quality(session=session, weeks=weeks)
