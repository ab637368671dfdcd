"""The scoring flow, top to bottom: message → cleaned text → rule hits and model scores → decision → impact →
deadlines → a typed ``Classification``. Loading (``config.py``, ``artefacts.py``) and process tuning
(``process.py``) live apart; this module never trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from classifier.ack import acknowledgement
from classifier.artefacts import LoadedModel, load_model, read_manifest
from classifier.clean import CleanText, clean
from classifier.config import PolicyEngine, load_policy_engine
from classifier.decide import Decision, ModelView, decide, model_view
from classifier.errors import ModelError
from classifier.impact import ImpactResult
from classifier.ingest import Message
from classifier.model_input import ModelInputBuilder
from classifier.policy import FAILURES
from classifier.rule_engine import RuleEngine, RuleResult
from classifier.settings import Settings
from classifier.sla import SlaResult

ONE_BY_ONE = 8  # up to this many messages the model scores each alone: faster than the batch path (bench text)

@dataclass(frozen=True)
class Classification:
    """Everything the service says about one message."""

    message: Message
    text: CleanText
    rules: RuleResult
    model: ModelView | None
    decision: Decision
    impact: ImpactResult
    sla: SlaResult
    model_version: str | None
    acknowledgement: str = ""

    def as_dict(self) -> dict:
        sla = self.sla.as_dict()
        d = self.decision
        return {
            "id": self.message.id,
            "priority": d.priority,
            "priority_name": sla["priority_name"],
            "source": d.source,
            "confidence": d.confidence,
            "needs_review": d.needs_review,
            "review_reasons": list(d.review_reasons),
            "model_priority": self.model.priority if self.model else None,
            "model_confidence": round(self.model.confidence, 4) if self.model else None,
            "model_version": self.model_version,
            "impact": self.impact.scope,
            "impact_evidence": self.impact.evidence,
            "request_type": d.request_type,
            "rules": [h.as_dict() for h in self.rules.hits],
            "suppressed_rules": [h.as_dict() for h in self.rules.suppressed],
            "received_at": sla["received_at"],
            "response_due": sla["response_due"],
            "solution_due": sla["solution_due"],
            "committed": sla["committed"],
            "reason": sla["reason"],
            "level": sla["level"],
            "handled_by": sla["handled_by"],
            "customer": sla["customer"],
            "truncated": self.text.truncated,
            "noise_removed": list(self.text.removed),
            "acknowledgement": self.acknowledgement,
        }


class Classifier:
    """The whole flow: clean → rules + model → decision → deadlines."""

    def __init__(self, policy_engine: PolicyEngine, rules: RuleEngine, model: LoadedModel | None,
                 model_input: ModelInputBuilder | None = None):
        self.policy_engine = policy_engine
        self.rules = rules
        self.model = model
        self.model_input = model_input or ModelInputBuilder()
        self.decision = policy_engine.policy.decision
        self.max_chars = policy_engine.policy.decision.max_chars

    @classmethod
    def load(cls, settings: Settings, *, require_model: bool = True) -> "Classifier":
        """Load policy, rules and the verified current model (a missing or unreadable model is a ``ModelError``
        naming ``python -m classifier train``: serving never trains)."""
        policy_engine = load_policy_engine(settings)
        rules = RuleEngine.from_dir(settings.rules_dir)
        model = None
        try:
            model = load_model(settings.models_dir, read_manifest(settings.models_dir)["current"])
        except ModelError:
            if require_model:
                raise
        return cls(policy_engine, rules, model, ModelInputBuilder.beside_rules(settings.rules_dir))

    def warm_up(self) -> None:
        """Score one message so the per-process tables (the model's token table, tokenizer caches) are built at
        start-up, before ``settle()`` freezes them, rather than during the first customer's request (~0.25 s)."""
        self.classify(Message(None, "chat", "", "Buenos días, no puedo ingresar a la plataforma."))

    def with_model(self, model: LoadedModel) -> "Classifier":
        """The same policy and rules with another (verified) model: what a reload swaps in."""
        return Classifier(self.policy_engine, self.rules, model, self.model_input)

    @property
    def model_version(self) -> str | None:
        return self.model.version if self.model else None

    def analyse(self, messages: list[Message]) -> list[tuple[CleanText, RuleResult, ModelView | None]]:
        """Clean, match and score a batch (the model scores every message, in one call)."""
        cleaned = [clean(m.subject, m.body, max_chars=self.max_chars) for m in messages]
        matched = [self.rules.match(c) for c in cleaned]
        views: list[ModelView | None] = [None] * len(messages)
        if self.model is not None and messages:
            model = self.model.model
            inputs = [self.model_input(c, r) for c, r in zip(cleaned, matched)]
            if len(inputs) <= ONE_BY_ONE:  # the API's case: a request, or the requests of one event-loop turn
                rows, types = map(list, zip(*map(model.predict_one, inputs)))
            else:
                probs, types = model.predict_with_type(inputs)
                rows = probs.tolist()
            classes = [str(c) for c in model.classes_]
            incomplete_at = self.decision.incomplete_at
            for i, row in enumerate(rows):
                views[i] = model_view(dict(zip(classes, row)), str(types[i]), incomplete_at=incomplete_at)
        return list(zip(cleaned, matched, views))

    def classify_many(self, messages: list[Message], *, now: datetime | None = None) -> list[Classification]:
        """The flow for a batch, one step at a time over the whole batch (each step's code stays hot in the CPU's
        caches, as ``analyse`` does for cleaning, rules and the model)."""
        now = now or datetime.now(self.policy_engine.calendar.tz)
        analysed = self.analyse(messages)
        thresholds = self.decision
        decisions = [decide(rules, view, review_below=thresholds.review_below_confidence,
                            rule_confidence=thresholds.rule_confidence, model_raises_at=thresholds.model_raises_rule_at)
                     for _, rules, view in analysed]
        impacts = [self._impact(decision, text, rules) for decision, (text, rules, _) in zip(decisions, analysed)]
        deadlines = self.policy_engine.sla.deadlines
        slas = [deadlines(decision.priority, message.received_at or now, customer_id=message.customer_id,
                          sender=message.sender, product=message.product, request_type=decision.request_type)
                for message, decision in zip(messages, decisions)]
        calendar = self.policy_engine.calendar
        acks = [acknowledgement(sla, calendar, ask_details=decision.asks_details)
                for sla, decision in zip(slas, decisions)]
        return [Classification(message, text, rules, view, decision, impact, sla, self.model_version, ack)
                for message, (text, rules, view), decision, impact, sla, ack
                in zip(messages, analysed, decisions, impacts, slas, acks)]

    def _impact(self, decision: Decision, text: CleanText, rules: RuleResult) -> ImpactResult:
        """The reach of a failure (the rules' when they found one, else looked for now); unknown for the rest."""
        if decision.priority not in FAILURES:
            return ImpactResult.unknown()
        return rules.impact if rules.impact is not None else self.rules.impact.find(text, rules.impact_cues)

    def classify(self, message: Message, *, now: datetime | None = None) -> Classification:
        return self.classify_many([message], now=now)[0]
