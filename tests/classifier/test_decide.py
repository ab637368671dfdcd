"""Combining rules and model follows the policy's decision order (POLICY §1)."""

from __future__ import annotations

import pytest

from classifier.clean import clean
from classifier.decide import ModelView, decide
from classifier.rule_engine import RuleEngine
from tests.conftest import ROOT

ENGINE = RuleEngine.from_dir(ROOT / "rules/prioridad")


def view(priority, confidence):
    rest = (1 - confidence) / 4
    probs = {p: rest for p in ("muy_alta", "alta", "media", "baja", "muy_baja")}
    probs[priority] = confidence
    return ModelView(priority, confidence, probs)


def rules(text):
    return ENGINE.match(clean("", text))


def test_incomplete_is_never_ranked_by_the_model():
    d = decide(rules("hola"), view("muy_alta", 0.99), review_below=0.6, model_raises_at=0.8)
    assert d.priority == "muy_baja" and d.source == "rule" and not d.needs_review


def test_rule_decides_and_disagreeing_model_sends_to_review():
    d = decide(rules("¿Cómo cambio mi contraseña?"), view("baja", 0.7), review_below=0.6)
    assert d.priority == "media" and d.source == "rule" and d.needs_review


def test_model_decides_when_no_rule_is_decisive_and_flags_low_confidence():
    d = decide(rules("el reporte de cartera sale raro desde ayer"), view("alta", 0.55), review_below=0.6)
    assert d.source == "model" and d.priority == "alta" and d.needs_review
    d = decide(rules("el reporte de cartera sale raro desde ayer"), view("alta", 0.9), review_below=0.6)
    assert not d.needs_review


def test_confident_model_raises_a_rule_priority_but_never_lowers_it():
    raised = decide(rules("Al generar el boletín sale un error"), view("muy_alta", 0.9), review_below=0.6,
                    model_raises_at=0.8)
    assert raised.priority == "muy_alta" and raised.needs_review
    kept = decide(rules("Al generar el boletín sale un error"), view("baja", 0.99), review_below=0.6,
                  model_raises_at=0.8)
    assert kept.priority == "alta" and kept.source == "rule"


def test_without_model_the_policy_default_is_baja():
    d = decide(rules("quisiera información de precios del módulo de nómina"), None, review_below=0.6)
    assert d.priority == "baja" and d.source == "default"


def test_rules_that_recognise_a_failure_decide_it_whatever_the_model_says():
    for text in ("me rechazan la tarjeta cuando pago en el supermercado",
                 "la tarjeta de mi banco no está funcionando, es urgente"):
        d = decide(rules(text), view("muy_baja", 0.9), review_below=0.6)
        assert d.priority == "alta" and d.source == "rule"


@pytest.mark.parametrize("text, words, priority", [
    ("necesito el certificado de retención", "certificado", "baja"),
    ("sería bueno que la app tuviera modo oscuro", "sería bueno", "media"),
    ("quisiera saber más sobre los planes", "saber más sobre", "baja"),
])
def test_model_calling_incomplete_a_message_with_a_recognised_request_sends_it_to_review(text, words, priority):
    """POLICY §1: muy_baja means no request can be identified; a rule that recognised one contradicts the model.
    What was recognised is ranked (not the slowest deadlines), an agent reviews it, the customer is asked for details."""
    d = decide(rules(text), view("muy_baja", 0.95), review_below=0.6)
    assert d.priority == priority and d.source == "model" and d.needs_review and d.asks_details
    assert any("incompleto" in r and words in r for r in d.review_reasons)


def test_incomplete_view_of_a_message_no_rule_recognises_is_kept_and_asks_for_details():
    d = decide(rules("hola, es sobre lo de la matrícula del colegio"), view("muy_baja", 0.95), review_below=0.6)
    assert d.priority == "muy_baja" and not d.needs_review and d.asks_details
    unsure = decide(rules("hola, es sobre lo de la matrícula del colegio"), view("muy_baja", 0.4), review_below=0.6)
    assert unsure.needs_review
