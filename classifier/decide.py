"""Combining rules and model in the policy's decision order, with confidence and the review flag."""

from __future__ import annotations

from dataclasses import dataclass

from classifier.policy import DECISION_ORDER, DEFAULT_PRIORITY, FAILURES, INCOMPLETE
from classifier.rule_engine import RuleResult


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
    asks_details: bool = False  # the acknowledgement asks the customer what is missing (POLICY §1, muy_baja)



def model_view(probabilities: dict[str, float], request_type: str | None = None, *,
               incomplete_at: float = 0.5) -> ModelView:
    """The model's most likely priority, but ``muy_baja`` only when it is at least ``incomplete_at`` sure that no
    request can be identified (incomplete messages are rarer in traffic than in the corpus); otherwise the most
    likely complete priority."""
    best = max(probabilities, key=probabilities.__getitem__)
    if best == INCOMPLETE and probabilities[best] < incomplete_at:
        best = max((c for c in probabilities if c != INCOMPLETE), key=probabilities.__getitem__)
    return ModelView(best, probabilities[best], probabilities, request_type)


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
            return Decision(priority, "rule", rule_confidence, False, (), "incompleto", asks_details=True)
        confidence = rule_confidence
        if (model is not None and model.confidence >= model_raises_at and model.priority != INCOMPLETE
                and DECISION_ORDER.index(model.priority) < DECISION_ORDER.index(priority)):
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
    if model.priority == INCOMPLETE:
        # Incomplete means no request can be identified (POLICY §1). When a rule recognised one, the model's view is
        # contradicted: rank what was recognised (the slowest deadlines would wrong a customer with a clear request),
        # send it to an agent, and still ask the customer for the details.
        seen = [h for h in rules.hits if h.priority != INCOMPLETE] + list(rules.suppressed)
        if seen:
            live = [h for h in seen if h.suppressed_by is None]
            complete = {p: v for p, v in model.probabilities.items() if p != INCOMPLETE}
            priority = min((h.priority for h in live), key=DECISION_ORDER.index) if live else max(complete, key=complete.get)
            words = ", ".join(f"«{e.text}»" for h in seen[:2] for e in h.evidence[:1])
            reason = (f"El modelo ve el mensaje incompleto ({model.confidence:.0%}), pero se reconoce una solicitud o "
                      f"una falla ({words}): se propone {priority}; confirme la prioridad.")
            return Decision(priority, "model", round(model.probabilities.get(priority, 0.0), 4), True, (reason,),
                            _default_type(priority), asks_details=True)
        return Decision(INCOMPLETE, "model", round(model.confidence, 4), model.confidence < review_below,
                        _low(model, review_below), "incompleto", asks_details=True)
    reasons.extend(_low(model, review_below))
    fired = [h for h in rules.hits if h.priority == model.priority and h.request_type]
    request_type = fired[0].request_type if fired else (model.request_type or _default_type(model.priority))
    return Decision(model.priority, "model", round(model.confidence, 4), bool(reasons), tuple(reasons), request_type)


def _low(model: ModelView, review_below: float) -> tuple[str, ...]:
    if model.confidence >= review_below:
        return ()
    return (f"Confianza del modelo {model.confidence:.0%} por debajo del umbral {review_below:.0%}.",)


def _default_type(priority: str) -> str:
    if priority in FAILURES:
        return "incidente"
    return {INCOMPLETE: "incompleto", DEFAULT_PRIORITY: "otro"}.get(priority, "consulta")
