"""Combining rules and model in the policy's decision order, with confidence and the review flag."""

from __future__ import annotations

from dataclasses import dataclass

from classifier.rule_engine import RuleResult

INCOMPLETE = "muy_baja"
DEFAULT_PRIORITY = "baja"  # POLICY §1: every complete message that fits no other label
FAILURE_PRIORITIES = ("muy_alta", "alta")


@dataclass(frozen=True, slots=True)
class ModelView:
    """What the text model thinks of a message."""

    priority: str
    confidence: float
    probabilities: dict[str, float]
    request_type: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    priority: str
    source: str           # "rule" | "model" | "default"
    confidence: float
    needs_review: bool
    review_reasons: tuple[str, ...]
    request_type: str


ORDER = ("muy_baja", "muy_alta", "alta", "media", "baja")  # the policy's decision order


def decide(rules: RuleResult, model: ModelView | None, *, review_below: float, rule_confidence: float = 0.95,
           model_raises_at: float = 1.01) -> Decision:
    """Rules first where decisive (incomplete first of all), the model otherwise, ``baja`` without a model.

    A rule settles that a criterion holds, not that no earlier one does: a model confident (``model_raises_at``)
    that an earlier criterion in the decision order holds (an outage, not just a failing function) raises the
    priority. It never lowers what a rule found.
    """
    reasons: list[str] = []
    if rules.priority is not None:
        priority = rules.priority
        request_type = rules.request_type or "otro"
        if priority == INCOMPLETE:
            # A request that cannot be identified is never ranked by the model (POLICY §1 decision order).
            return Decision(priority, "rule", rule_confidence, False, (), "incompleto")
        confidence = rule_confidence
        if (model is not None and model.confidence >= model_raises_at and model.priority != INCOMPLETE
                and ORDER.index(model.priority) < ORDER.index(priority)):
            reason = (f"Las reglas indican {priority} ({rules.deciding.rule_id}); el modelo, con "
                      f"{model.confidence:.0%} de confianza, ve un criterio anterior de la política: {model.priority}.")
            return Decision(model.priority, "model", round(model.confidence, 4), True, (reason,),
                            model.request_type or _default_type(model.priority))
        if model is not None:
            confidence = max(rule_confidence, model.probabilities.get(priority, 0.0))
            if model.priority != priority:
                reasons.append(f"El modelo sugiere {model.priority} ({model.confidence:.0%}) y las reglas {priority}.")
        return Decision(priority, "rule", round(confidence, 4), bool(reasons), tuple(reasons), request_type)
    if model is None:
        return Decision(DEFAULT_PRIORITY, "default", 0.0, True, ("Sin modelo: prioridad por defecto.",), "otro")
    if model.confidence < review_below:
        reasons.append(f"Confianza del modelo {model.confidence:.0%} por debajo del umbral {review_below:.0%}.")
    fired = [h for h in rules.hits if h.priority == model.priority and h.request_type]
    request_type = fired[0].request_type if fired else (model.request_type or _default_type(model.priority))
    return Decision(model.priority, "model", round(model.confidence, 4), bool(reasons), tuple(reasons), request_type)


def _default_type(priority: str) -> str:
    return {"muy_alta": "incidente", "alta": "incidente", "media": "consulta", "baja": "otro",
            "muy_baja": "incompleto"}[priority]
