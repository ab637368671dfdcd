"""Deadlines for a priority chosen by an agent, counted from the original arrival."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ClassifierDep
from api.schemas import ErrorOut, SlaIn, SlaOut

router = APIRouter(prefix="/v1", tags=["plazos"])


@router.post("/sla", response_model=SlaOut, responses={422: {"model": ErrorOut}},
             summary="Plazos para una prioridad",
             description="Plazos de respuesta y solución en horario hábil, contados desde la llegada original.")
async def sla(item: SlaIn, classifier: ClassifierDep) -> dict:
    result = classifier.policy_engine.sla.deadlines(item.priority, item.received_at, customer_id=item.customer_id,
                                                    sender=item.sender, request_type=item.request_type)
    return result.as_dict(explain=item.explain)
