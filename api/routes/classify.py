"""Classification endpoints: one message, a batch, and a raw RFC 822 e-mail."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError

from api.deps import ApiError, Scoring, ScoringDep
from api.metrics import record
from api.schemas import BatchIn, BatchOut, ClassificationOut, ErrorOut, MessageIn
from classifier.calendar import parse_instant
from classifier.errors import InputError
from classifier.ingest import Message, message_from_rfc822, storable

router = APIRouter(prefix="/v1", tags=["clasificación"])
ERRORS = {400: {"model": ErrorOut}, 401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 413: {"model": ErrorOut},
          415: {"model": ErrorOut}, 422: {"model": ErrorOut}, 503: {"model": ErrorOut}}


def to_message(item: MessageIn, now: datetime) -> Message:
    if not item.subject.strip() and not item.body.strip():
        raise InputError("subject and body are both empty: there is nothing to classify")
    return Message((item.id or "").strip() or None, item.channel, item.subject, item.body, item.received_at or now,
                   item.customer_id, item.sender)


async def classify_and_store(scoring: Scoring, messages: list[Message], extra: list[dict] | None = None) -> list[dict]:
    """Stored results for messages already seen (same id), new classifications for the rest, in order; the new
    ones are scored and stored with those of the other requests of this event-loop turn (``GroupCommit``)."""
    known = scoring.store.stored([m.id for m in messages if m.id])
    out: list[dict | None] = [None] * len(messages)
    todo: list[int] = []
    for i, m in enumerate(messages):
        if m.id in known:
            out[i] = {**known[m.id], "duplicate": True}
        else:
            todo.append(i)
    saved = await scoring.store.classify(scoring.classifier, [messages[i] for i in todo],
                                         [extra[i] for i in todo] if extra else None)
    for i, (stored, created) in zip(todo, saved):
        out[i] = {**stored, "duplicate": not created}
        if created:
            record(stored)
    return out  # type: ignore[return-value]


@router.post("/classify", response_model=ClassificationOut, responses=ERRORS,
             summary="Clasificar un mensaje", description="Prioridad, razones, impacto y plazos de un mensaje.")
async def classify(item: MessageIn, scoring: ScoringDep) -> dict:
    now = datetime.now(scoring.classifier.policy_engine.calendar.tz)
    return (await classify_and_store(scoring, [to_message(item, now)]))[0]


@router.post("/classify/batch", response_model=BatchOut, responses=ERRORS,
             summary="Clasificar varios mensajes",
             description="Resultados en el mismo orden; un mensaje inválido se informa en su lugar sin afectar a "
                         "los demás. Por encima del límite configurado, 413.")
async def classify_batch(batch: BatchIn, scoring: ScoringDep) -> dict:
    limit = scoring.settings.batch_limit
    if len(batch.messages) > limit:
        raise ApiError(413, "batch_too_large", f"El lote tiene {len(batch.messages)} mensajes; el límite es {limit}.")
    now = datetime.now(scoring.classifier.policy_engine.calendar.tz)
    results: list[dict | None] = [None] * len(batch.messages)
    valid: list[tuple[int, Message]] = []
    for i, raw in enumerate(batch.messages):
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            valid.append((i, to_message(MessageIn.model_validate(raw), now)))
        except ValidationError as exc:
            fields = [{"field": ".".join(str(p) for p in e["loc"]) or "item", "message": e["msg"]}
                      for e in exc.errors()]
            results[i] = {"index": i, "id": storable(raw_id) if isinstance(raw_id, str) else None,
                          "error": {"code": "invalid_message", "message": "Mensaje inválido.", "fields": fields}}
        except InputError as exc:
            results[i] = {"index": i, "id": storable(raw_id) if isinstance(raw_id, str) else None,
                          "error": {"code": "invalid_message", "message": str(exc), "fields": []}}
    stored = await classify_and_store(scoring, [m for _, m in valid])
    for (i, _), result in zip(valid, stored):
        results[i] = result
    return {"results": results}


@router.post("/classify/email", response_model=ClassificationOut, responses=ERRORS,
             summary="Clasificar un correo RFC 822",
             description="Cuerpo `message/rfc822` tal como lo recibe la pasarela. La hora de llegada es la de la "
                         "pasarela (`X-Received-At` o `received_at`), si no la del `Received:` más reciente, si no "
                         "la del `Date`; el resultado dice cuál se usó.",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "message/rfc822": {"schema": {"type": "string", "format": "binary"}}}}})
async def classify_email(request: Request, scoring: ScoringDep,
                         received_at: str | None = Query(None, description="Llegada según la pasarela (ISO 8601 "
                                                                            "con zona horaria).")) -> dict:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("message/rfc822", "text/plain", "application/octet-stream"):
        raise ApiError(415, "unsupported_media_type", "Envíe el correo con Content-Type: message/rfc822.")
    raw = await request.body()
    now = datetime.now(scoring.classifier.policy_engine.calendar.tz)
    gateway = parse_instant(received_at) if received_at else None
    parsed = message_from_rfc822(raw, received_at=gateway, gateway_received=request.headers.get("x-received-at"))
    message = parsed.message
    if message.received_at is None:
        message = Message(message.id, message.channel, message.subject, message.body, now, message.customer_id,
                          message.sender)
    extra = [{"received_at_source": parsed.received_source, "attachments": parsed.attachments}]
    return (await classify_and_store(scoring, [message], extra))[0]
