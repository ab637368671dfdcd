"""Every rule's own examples (``examples.match`` / ``examples.no_match`` in rules/prioridad/*.yaml) hold."""

from __future__ import annotations

import pytest

from classifier.clean import clean
from classifier.rule_engine import RuleEngine
from tests.conftest import ROOT

ENGINE = RuleEngine.from_dir(ROOT / "rules/prioridad")
CASES = [(rule.spec.id, text, True) for rule in ENGINE.rules.values() for text in rule.spec.examples.match] + [
    (rule.spec.id, text, False) for rule in ENGINE.rules.values() for text in rule.spec.examples.no_match]


def test_every_rule_has_positive_and_negative_examples():
    for rule in ENGINE.rules.values():
        assert rule.spec.examples.match, f"{rule.spec.id} has no positive example"
        assert rule.spec.examples.no_match, f"{rule.spec.id} has no negative example"


@pytest.mark.parametrize(("rule_id", "text", "should_fire"), CASES, ids=[f"{c[0]}:{c[1][:30]}" for c in CASES])
def test_rule_example(rule_id, text, should_fire):
    fired = ENGINE.match(clean("", text)).fired_ids
    assert (rule_id in fired) is should_fire, fired
