"""Combining rules and model follows the policy's decision order (POLICY §1)."""

from __future__ import annotations

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
