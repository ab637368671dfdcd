"""Request and response schemas of the HTTP API (pydantic), with Spanish examples for the OpenAPI page."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from classifier.calendar import require_aware
from classifier.ingest import ID_LENGTH
from classifier.policy import PRIORITIES

Priority = Literal[PRIORITIES]  # type: ignore[valid-type]

EXAMPLE_MESSAGE = {
    "id": "<CAFx1234@mail.colegiosanmartin.edu.co>",
    "channel": "email",
    "subject": "Plataforma caída",
    "body": "Buenos días, desde las 7 a. m. ningún docente puede ingresar a la plataforma para subir notas. "
            "Quedo atenta.\n\nMarta Lucía Gómez\nCoordinadora académica",
    "received_at": "2026-11-25T09:12:00-05:00",
    "sender": "coordinacion@sanmartin.edu.co",
}


def _aware(value: datetime | None) -> datetime | None:
    if value is not None:
        require_aware(value)  # InputError is a ValueError: pydantic reports it on the field
    return value


def _no_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("no puede contener el carácter NUL (U+0000)")
    return value


class MessageIn(BaseModel):
    """One message from the e-mail gateway or the chat."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [EXAMPLE_MESSAGE]})
    id: str | None = Field(None, max_length=ID_LENGTH, description="Id del mensaje (Message-ID); repetirlo no "
                                                              "crea una segunda clasificación.")
    channel: Literal["email", "chat"] = Field(description="Canal: email o chat.")
    subject: str = Field("", max_length=2000, description="Asunto (vacío en el chat).")
    body: str = Field("", description="Cuerpo del mensaje tal como llegó.")
    received_at: datetime | None = Field(None, description="Llegada, ISO 8601 con zona horaria; por defecto, "
                                                           "el momento en que se recibe la petición.")
    customer_id: str | None = Field(None, max_length=128, description="Id del cliente en data/customers.yaml.")
    sender: str | None = Field(None, max_length=ID_LENGTH, description="Remitente; su dominio identifica al cliente.")
    product: str | None = Field(None, max_length=64, description="Producto (ids en `GET /v1/policy`): decide si lo "
                                                                 "atiende un distribuidor (POLÍTICA §5).")

    _check_aware = field_validator("received_at")(classmethod(lambda cls, v: _aware(v)))


class EvidenceOut(BaseModel):
    text: str
    start: int
    end: int
    field: Literal["subject", "body"]


class RuleOut(BaseModel):
    id: str
    priority: Priority
    description: str
    decisive: bool
    evidence: list[EvidenceOut]
    suppressed_by: str | None = None


class CustomerOut(BaseModel):
    id: str | None
    name: str | None
    known: bool
    matched_by: str | None


class HandledByOut(BaseModel):
    kind: Literal["empresa", "distribuidor"]
    name: str
    channels: list[str]
    products: list[str]


class ClassificationOut(BaseModel):
    """The full scoring result, one flat object."""

    classification_id: str | None = Field(None, description="Id de la clasificación en el almacén.")
    id: str | None = Field(description="Id del mensaje recibido.")
    priority: Priority
    priority_name: str
    source: Literal["rule", "model", "default"]
    confidence: float
    needs_review: bool
    review_reasons: list[str]
    model_priority: Priority | None
    model_confidence: float | None
    model_version: str | None
    impact: Literal["un_usuario", "grupo_menor_20", "grupo_20_o_mas", "varios_clientes", "desconocido"]
    impact_evidence: str | None
    request_type: str
    rules: list[RuleOut]
    suppressed_rules: list[RuleOut]
    received_at: str
    response_due: str | None
    solution_due: str | None
    committed: bool
    reason: str
    level: str
    handled_by: HandledByOut
    customer: CustomerOut
    truncated: bool
    noise_removed: list[str]
    acknowledgement: str
    received_at_source: str | None = Field(None, description="gateway, received_header, date_header o arrival.")
    attachments: int | None = None
    duplicate: bool = Field(False, description="True si el id ya estaba clasificado y se devuelve esa clasificación.")


class BatchIn(BaseModel):
    """Up to the configured limit of messages; each is validated on its own."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"messages": [EXAMPLE_MESSAGE]}]})
    messages: list[Any] = Field(description="Mensajes con el mismo formato de /v1/classify.")


class ItemError(BaseModel):
    index: int
    id: str | None
    error: "ErrorBody"


class BatchOut(BaseModel):
    results: list[ClassificationOut | ItemError]


class SlaIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"priority": "alta", "received_at": "2026-11-27T16:30:00-05:00", "customer_id": "col-san-martin"}]})
    priority: Priority
    received_at: datetime
    customer_id: str | None = Field(None, max_length=128)
    sender: str | None = Field(None, max_length=ID_LENGTH)
    request_type: str | None = Field(None, max_length=32)
    explain: bool = False

    _check_aware = field_validator("received_at")(classmethod(lambda cls, v: _aware(v)))


class SlaOut(BaseModel):
    priority: Priority
    priority_name: str
    received_at: str
    service_starts: str
    response_due: str | None
    solution_due: str | None
    committed: bool
    reason: str
    customer: CustomerOut
    handled_by: HandledByOut
    level: str
    explanation: dict | None = None


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: list[FieldError] = []


class ErrorOut(BaseModel):
    """The one error shape of every endpoint."""

    error: ErrorBody
    request_id: str | None = None


ItemError.model_rebuild()
BatchOut.model_rebuild()


class FeedbackIn(BaseModel):
    """An agent's decision on a suggested priority."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"classification_id": "9e35b7e1-72a4-47a1-a413-53d761e9ed8a", "agent": "laura.gomez", "decision": "change",
         "priority": "alta", "reason": "Falla en una función para un solo usuario; la plataforma sí carga."}]})
    classification_id: str = Field(min_length=1, max_length=36)
    agent: str = Field(min_length=1, max_length=128, description="Quién decide.")
    decision: Literal["accept", "change", "escalate"]
    priority: Priority | None = Field(None, description="Obligatoria al cambiar la prioridad.")
    reason: str | None = Field(None, max_length=2000, description="Obligatoria al cambiar la prioridad.")
    replaces: bool = Field(False, description="True para reemplazar una decisión anterior sobre el mismo mensaje.")

    _check_text = field_validator("classification_id", "agent", "reason")(classmethod(lambda cls, v: _no_nul(v)))


class FeedbackOut(BaseModel):
    decision_id: str
    classification_id: str
    agent: str
    decision: str
    priority: Priority
    suggested_priority: Priority
    level: str
    reason: str | None
    replaces: str | None
    created_at: str
    undo_until: str | None = Field(None, description="Hasta cuándo puede deshacerla quien la tomó.")
    response_due: str | None
    solution_due: str | None


class UndoIn(BaseModel):
    """Who withdraws a decision (the agent who made it)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"agent": "laura.gomez"}]})
    agent: str = Field(min_length=1, max_length=128)

    _check_text = field_validator("agent")(classmethod(lambda cls, v: _no_nul(v)))


class CurrentDecisionOut(BaseModel):
    decision_id: str
    agent: str
    decision: str
    priority: Priority
    level: str


class UndoOut(BaseModel):
    undone_decision_id: str
    classification_id: str
    current: CurrentDecisionOut | None = Field(description="La decisión que vuelve a regir, o null: el mensaje "
                                                           "vuelve a la cola.")


class WaitingOut(BaseModel):
    waiting: int = Field(description="Mensajes sin decisión vigente.")
    needs_review: int = Field(description="De ellos, los que el clasificador envió a revisión.")
    new: int = Field(0, description="De ellos, los clasificados después de `since`.")


class ReviewItem(BaseModel):
    classification_id: str
    message_id: str | None
    received_at: str
    channel: str
    subject: str | None
    body: str | None
    priority: Priority
    confidence: float
    needs_review: bool
    result: dict
    decision: CurrentDecisionOut | None = None


class ReviewPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[ReviewItem]
