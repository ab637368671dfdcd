"""Classification endpoints: one message, a batch, and a raw RFC 822 e-mail."""

from __future__ import annotations

from datetime import datetime
from functools import partial

import anyio
from fastapi import APIRouter, Query, Request
from pydantic import ValidationError

from api.deps import ApiError, Scoring, ScoringDep
from classifier.messages import field_message
from api.schemas import BatchIn, BatchOut, ClassificationOut, ErrorOut, MessageIn
from classifier.calendar import parse_instant
from classifier.errors import InputError
from classifier.ingest import EmailLimitError, EmailLimits, Message, message_from_rfc822, storable

router = APIRouter(prefix="/v1", tags=["clasificación"])
ERRORS = {400: {"model": ErrorOut}, 401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 409: {"model": ErrorOut},
          413: {"model": ErrorOut}, 415: {"model": ErrorOut}, 422: {"model": ErrorOut}, 503: {"model": ErrorOut}}


def to_message(item: MessageIn, now: datetime, products: list[str]) -> Message:
    if not item.subject.strip() and not item.body.strip():
        raise InputError("el asunto y el cuerpo están vacíos: no hay nada que clasificar")
    if item.product is not None and item.product not in products:
        raise InputError(f"producto desconocido {item.product!r}: use uno de {', '.join(products)}")
    return Message((item.id or "").strip() or None, item.channel, item.subject, item.body, item.received_at or now,
                   item.customer_id, item.sender, item.product)


@router.post("/classify", response_model=ClassificationOut, responses=ERRORS,
             summary="Clasificar un mensaje",
             description="Prioridad, razones, impacto y plazos de un mensaje. Repetir el id con el mismo mensaje "
                         "devuelve la clasificación guardada (`duplicate`); con otro contenido, 409 `id_conflict`.")
async def classify(item: MessageIn, scoring: ScoringDep) -> dict:
    now = datetime.now(scoring.classifier.policy_engine.calendar.tz)
    products = scoring.classifier.policy_engine.policy.product_ids
    return (await scoring.classify_and_store([to_message(item, now, products)]))[0]


@router.post("/classify/batch", response_model=BatchOut, responses=ERRORS,
             summary="Clasificar varios mensajes",
             description="Resultados en el mismo orden; un mensaje inválido, o con el id de otro mensaje "
                         "(`id_conflict`), se informa en su lugar sin afectar a los demás. Por encima del límite "
                         "configurado, 413.")
async def classify_batch(batch: BatchIn, scoring: ScoringDep) -> dict:
    limit = scoring.settings.batch_limit
    if len(batch.messages) > limit:
        raise ApiError(413, "batch_too_large", f"El lote tiene {len(batch.messages)} mensajes; el límite es {limit}.")
    now = datetime.now(scoring.classifier.policy_engine.calendar.tz)
    products = scoring.classifier.policy_engine.policy.product_ids
    results: list[dict | None] = [None] * len(batch.messages)
    valid: list[tuple[int, Message]] = []
    for i, raw in enumerate(batch.messages):
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            valid.append((i, to_message(MessageIn.model_validate(raw), now, products)))
        except ValidationError as exc:
            fields = [{"field": ".".join(str(p) for p in e["loc"]) or "item", "message": field_message(e)}
                      for e in exc.errors()]
            results[i] = {"index": i, "id": storable(raw_id) if isinstance(raw_id, str) else None,
                          "error": {"code": "invalid_message", "message": "Mensaje inválido.", "fields": fields}}
        except InputError as exc:
            results[i] = {"index": i, "id": storable(raw_id) if isinstance(raw_id, str) else None,
                          "error": {"code": "invalid_message", "message": str(exc), "fields": []}}
    stored = await scoring.classify_and_store([m for _, m in valid], in_place=True)
    for (i, _), result in zip(valid, stored):
        results[i] = {"index": i, **result} if "error" in result else result
    return {"results": results}


def _email_parsers(request: Request, scoring: Scoring) -> anyio.CapacityLimiter:
    """The threads this app may parse e-mails in at once (CLASSIFIER_EMAIL_PARSE_THREADS), made on first use."""
    state = request.app.state
    if getattr(state, "email_parsers", None) is None:
        state.email_parsers = anyio.CapacityLimiter(scoring.settings.email_parse_threads)
    return state.email_parsers


@router.post("/classify/email", response_model=ClassificationOut, responses=ERRORS,
             summary="Clasificar un correo RFC 822",
             description="Cuerpo `message/rfc822` tal como lo recibe la pasarela. La hora de llegada es la de la "
                         "pasarela (`X-Received-At` o `received_at`), si no la del `Received:` más reciente, si no "
                         "la del `Date`; el resultado dice cuál se usó. Un correo que excede un límite "
                         "(`CLASSIFIER_EMAIL_MAX_*`: bytes, palabras codificadas o direcciones de un encabezado, "
                         "encabezados, partes MIME, anidamiento) recibe 413 `email_too_large` sin ser analizado.",
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
    parse = partial(message_from_rfc822, raw, received_at=gateway, limits=EmailLimits.from_settings(scoring.settings),
                    gateway_received=request.headers.get("x-received-at"))
    try:  # in a thread: even a large e-mail within the limits leaves the event loop (and /healthz) free
        parsed = await anyio.to_thread.run_sync(parse, limiter=_email_parsers(request, scoring))
    except EmailLimitError as exc:
        raise ApiError(413, "email_too_large", str(exc)) from None
    message = parsed.message
    if message.received_at is None:
        message = Message(message.id, message.channel, message.subject, message.body, now, message.customer_id,
                          message.sender)
    extra = [{"received_at_source": parsed.received_source, "attachments": parsed.attachments}]
    return (await scoring.classify_and_store([message], extra))[0]
