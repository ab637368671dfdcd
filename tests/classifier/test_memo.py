"""Memos have one shape (``BoundedMemo``), a size they never pass, and an owner each: two owners share nothing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from classifier.artefacts import load_model
from classifier.clean import Cleaner, cleaner, spanish
from classifier.features import BatchScorer
from classifier.memo import BoundedMemo
from classifier.serving import RULE_PREFIX, ModelInput, ServingModel, is_word
from tests.conftest import ROOT


@given(size=st.integers(1, 8), keys=st.lists(st.integers(0, 40), max_size=200))
def test_a_memo_never_holds_more_than_its_size(size, keys):
    memo = BoundedMemo(lambda key: key * 2, size)
    for key in keys:
        assert memo[key] == key * 2
        assert len(memo) <= size


def test_get_or_compute_returns_the_computed_value_and_computes_once_per_key():
    calls = []

    def compute(key: str) -> int:
        calls.append(key)
        return len(key)

    memo = BoundedMemo(compute, 10)
    assert memo["plataforma"] == 10 and memo["no"] == 2
    assert list(map(memo.__getitem__, ["no", "plataforma", "no"])) == [2, 10, 2]
    assert calls == ["plataforma", "no"]


def test_a_full_memo_starts_over_and_computes_again():
    memo = BoundedMemo(str.upper, 2)
    memo["a"], memo["b"], memo["c"]
    assert dict(memo) == {"c": "C"} and memo["a"] == "A"


def test_a_memo_needs_room_for_one_entry():
    with pytest.raises(ValueError, match="at least one"):
        BoundedMemo(str.upper, 0)


def _model() -> ServingModel:
    return load_model(ROOT / "models").model


_PROBE = [ModelInput(("la", "plataforma", "no", "abre", "para", "ningun", "docente"), ("caida_total",)),
          ModelInput(("¿", "como", "descargo", "el", "informe", "?")), ModelInput(("xyzzy", "qwerty", "plataforma"))]


def test_two_serving_models_do_not_share_memos():
    first, second = _model(), _model()
    first._scores(_PROBE[:1])
    first._scores(_PROBE)
    a, b = first._scorer, second._scorer
    assert b is None  # built with its model, on first use
    second._scores(_PROBE[1:2])
    b = second._scorer
    assert a.char_columns is not b.char_columns and a.is_word is not b.is_word and a.tokens is not b.tokens
    assert "plataforma" in a.char_columns and "plataforma" not in b.char_columns
    assert "xyzzy" in a.tokens.ids and "xyzzy" not in b.tokens.ids


def test_two_cleaners_do_not_share_memos_and_tokenise_alike():
    mine = Cleaner(lexeme_memo=50)
    assert mine.lexemes is not cleaner().lexemes and mine.nlp is not spanish()
    text = "RE: urgente\nLa plataforma no abre. ¿Qué pasa?"
    ours, shared = mine.clean("", text), cleaner().clean("", text)
    assert ours.tokens == shared.tokens and ours.flags == shared.flags and ours.sentences == shared.sentences
    assert ours.lexemes is mine.lexemes and shared.lexemes is cleaner().lexemes
    assert 0 < len(mine.lexemes) <= 50
    mine.clean("", " ".join(f"palabra{i}" for i in range(200)))
    assert len(mine.lexemes) <= 50


def test_scorer_memos_keep_their_bounds_and_the_scores():
    model = _model()
    small = BatchScorer(model, is_word, RULE_PREFIX, max_tokens=10, max_single_tokens=3)
    inputs = _PROBE + [ModelInput(tuple(f"token{i}" for i in range(j, j + 20))) for j in range(0, 100, 20)]
    for k in range(3):  # the vocabulary alone is past 10 tokens: the table starts over before every batch
        batch = [ModelInput(tuple(f"nuevo{k}_{i}" for i in range(20)))] + inputs
        assert np.array_equal(small.scores(batch), model._scores(batch))
        fresh = BatchScorer(model, is_word, RULE_PREFIX, max_tokens=10)
        fresh.scores(batch)
        assert len(small.tokens.ids) == len(fresh.tokens.ids)  # what one batch adds to the vocabulary, no more
    single = np.vstack([small.scores([x]) for x in inputs])
    assert np.array_equal(single, np.vstack([model._scores([x]) for x in inputs]))
    assert len(small.char_columns) <= 3 and len(small.is_word) <= 3
