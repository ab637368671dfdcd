"""Agents' decisions on suggested priorities, the review queue and the export for retraining.

Every route needs the agent role (an agent or admin key, or a review page session); reload, export and the
escalation check need admin. Under a session, a decision is the session's agent's. Routes that read or write the
store are plain ``def``: FastAPI runs them in its thread pool, so a long report never holds up the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import islice
from typing import Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic_core import to_json

from api.deps import (AgentDep, ApiError, ClassifierDep, ReportSlot, SessionDep, reload_model, require_admin,
                      require_agent)
from api.schemas import ErrorOut, FeedbackIn, FeedbackOut, Priority, ReviewPage, UndoIn, UndoOut, WaitingOut
from classifier.calendar import parse_instant
from classifier.errors import ModelError
from classifier.pipeline import Classifier
from classifier.policy import FAILURES, INCOMPLETE
from classifier.store.jobs import due_escalations
from classifier.store.repository import (DecisionConflict, Labelled, UndoRefused, current_decision,
                                         get_classification, labelled, quality, record_decision,
                                         undo_decision)
from classifier.store.review_queue import CustomerMatch, QueueFilter, queue_page, response_clock, waiting_counts

router = APIRouter(prefix="/v1", tags=["revisión"], dependencies=[Depends(require_agent)])
ADMIN = [Depends(require_admin)]
KEYED = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 503: {"model": ErrorOut}}


def undo_window(request: Request) -> timedelta:
    """How long an agent may withdraw their own decision (``CLASSIFIER_REVIEW_UNDO_SECONDS``)."""
    return timedelta(seconds=request.app.state.settings.review_undo_seconds)


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
    else:  # one step above the ticket's current priority (the agent's decision, else the suggestion)
        current = current_decision(session=session, classification_id=row.id)
        priority = item.priority or policy.raised(current.priority if current else row.priority)
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
            "undo_until": (decision.created_at + undo_window(request)).isoformat(),
            "response_due": sla.as_dict()["response_due"], "solution_due": sla.as_dict()["solution_due"]}


@router.post("/feedback/{decision_id}/undo", response_model=UndoOut,
             responses={**KEYED, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
             summary="Deshacer una decisión propia en el primer minuto",
             description="Retira la decisión (que debe ser la vigente y del mismo agente, tomada hace menos de un "
                         "minuto): vuelve a regir la anterior, o el mensaje vuelve a la cola. La decisión retirada "
                         "queda en el historial y no se exporta para reentrenar.")
def undo(item: UndoIn, request: Request, session: SessionDep, caller: AgentDep,
         decision_id: str = Path(max_length=36)) -> dict:
    if caller.agent is not None and item.agent != caller.agent:
        raise ApiError(403, "agent_mismatch", f"La sesión es de {caller.agent}: no puede deshacer decisiones a "
                                              "nombre de otro agente.")
    try:
        with request.app.state.store_health.watch():
            undone, current = undo_decision(session=session, decision_id=decision_id, agent=item.agent,
                                            within=undo_window(request))
    except UndoRefused as exc:
        raise _undo_refused(exc, decision_id) from None
    return {"undone_decision_id": undone.id, "classification_id": undone.classification_id,
            "current": None if current is None else {"decision_id": current.id, "agent": current.agent,
                                                     "decision": current.decision, "priority": current.priority,
                                                     "level": current.level}}


def _undo_refused(exc: UndoRefused, decision_id: str) -> ApiError:
    if exc.reason == "not_found":
        return ApiError(404, "decision_not_found", f"No existe la decisión {decision_id}.")
    if exc.reason == "agent":
        return ApiError(403, "agent_mismatch", "Solo quien tomó la decisión puede deshacerla.")
    if exc.reason == "superseded":
        return ApiError(409, "decision_superseded", "Esa decisión ya no es la vigente: otra la reemplazó.")
    return ApiError(409, "undo_expired", "Pasó el minuto para deshacer la decisión: tome una nueva que la "
                                         "reemplace (replaces=true).")


TriState = Literal["true", "false", "all"]


def tri_state(value: str) -> bool | None:
    """"true", "false" or "all" (None: either)."""
    return None if value == "all" else value == "true"


def customer_match(classifier: Classifier, customer_id: str | None) -> CustomerMatch | None:
    """The customer filter: a customer of data/customers.yaml with its domains, or just an id."""
    if not customer_id:
        return None
    known = classifier.policy_engine.customers.by_id(customer_id)
    return CustomerMatch.of(known) if known is not None else CustomerMatch(customer_id)


@router.get("/review", response_model=ReviewPage, responses=KEYED, summary="Cola de revisión con filtros",
            dependencies=[ReportSlot],
            description="Por defecto, los mensajes sin decisión vigente que el clasificador envió a revisión, los "
                        "más antiguos primero. order=least_confident pone primero los de menor confianza (cada "
                        "corrección enseña más al modelo); closest_to_breach, los de plazo de respuesta más "
                        "cercano (contado ahora en horario hábil desde la llegada, con la prioridad vigente).")
def review(session: SessionDep, classifier: ClassifierDep,
           needs_review: TriState = Query("true", description="true, false o all."),
           state: Literal["waiting", "decided", "all"] = Query("waiting", description="waiting (sin decisión "
                                                                                      "vigente), decided o all."),
           priority: Priority | None = Query(None, description="Prioridad vigente."),
           channel: Literal["email", "chat"] | None = Query(None),
           customer: str | None = Query(None, max_length=128, description="Id del cliente (data/customers.yaml)."),
           overdue: TriState = Query("all", description="true: plazo de respuesta vencido; false: a tiempo."),
           q: str | None = Query(None, max_length=200, description="Palabras del asunto, el cuerpo o el remitente."),
           order: Literal["oldest", "least_confident", "closest_to_breach"] = Query("oldest"),
           limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000_000)) -> dict:
    filters = QueueFilter(state=state, needs_review=tri_state(needs_review), priority=priority, channel=channel,
                          customer=customer_match(classifier, customer), overdue=tri_state(overdue),
                          search=QueueFilter.terms(q), order=order)
    engine = classifier.policy_engine
    clock = response_clock(engine.sla, datetime.now(engine.calendar.tz))
    page = queue_page(session=session, filters=filters, clock=clock, limit=limit, offset=offset)
    items = [{"classification_id": r.id, "message_id": r.message_id, "received_at": r.result["received_at"],
              "channel": r.channel, "subject": r.subject, "body": r.body, "priority": r.priority,
              "confidence": r.confidence, "needs_review": r.needs_review, "result": r.result,
              "decision": None if d is None else {"decision_id": d.id, "agent": d.agent, "decision": d.decision,
                                                  "priority": d.priority, "level": d.level}}
             for r, d in ((row.classification, row.decision) for row in page.rows)]
    return {"total": page.total, "limit": limit, "offset": offset, "items": items}


@router.get("/review/waiting", response_model=WaitingOut, responses=KEYED, dependencies=[ReportSlot],
            summary="Cuántos mensajes esperan (para el contador en vivo de la consola)")
def waiting(session: SessionDep,
            since: datetime | None = Query(None, description="Cuenta también los que llegaron después (ISO 8601 "
                                                              "con zona).")) -> dict:
    if since is not None and since.tzinfo is None:
        raise ApiError(422, "invalid_request", "La petición no es válida.",
                       [{"field": "since", "message": "debe incluir la zona horaria"}])
    counts = waiting_counts(session=session, since=since)
    return {"waiting": counts.total, "needs_review": counts.needs_review, "new": counts.new}


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
    proposals = [{"classification_id": ticket.id, "message_id": ticket.message_id, **check.as_dict()}
                 for ticket, check in due_escalations(session=session, sla=engine.sla, now=moment)]
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
