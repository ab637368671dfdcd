"""The text model follows scikit-learn conventions, is reproducible, and refuses tampered artefacts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from classifier.corpus import load_rows
from classifier.errors import ModelError
from classifier.model_input import ModelInputBuilder
from classifier.rule_engine import RuleEngine
from classifier.artefacts import load_estimator, load_model, save_model
from classifier.serving import ModelInput
from classifier.text_model import PriorityModel
from classifier.training import fit_bundle, prepare
from tests.conftest import ROOT

# What training reads a message with: the rules, and the model input built beside them.
READERS = (RuleEngine.from_dir(ROOT / "rules/prioridad"), ModelInputBuilder.beside_rules(ROOT / "rules/prioridad"))


@pytest.fixture(scope="module")
def sample():
    rows = [r for r in load_rows(ROOT / "data/corpus.jsonl") if r.split == "train"][::5]
    prepared = prepare(rows, *READERS)
    return [p[0] for p in prepared], rows


def test_constructor_only_stores_parameters():
    model = PriorityModel(C=2.0, min_df=1)
    assert model.get_params()["C"] == 2.0 and clone(model).get_params()["min_df"] == 1
    assert not hasattr(model, "coef_")


def test_invalid_parameter_fails_at_fit(sample):
    inputs, rows = sample
    with pytest.raises(ValueError, match="'C' parameter"):
        PriorityModel(C=0).fit(inputs, [r.label for r in rows])


def test_predict_before_fit_raises(sample):
    with pytest.raises(NotFittedError):
        PriorityModel().predict(sample[0][:2])


def test_same_data_and_seed_give_the_same_model(sample):
    inputs, rows = sample
    labels = [r.label for r in rows]
    a = PriorityModel(random_state=3).fit(inputs, labels).predict_proba(inputs[:50])
    b = PriorityModel(random_state=3).fit(inputs, labels).predict_proba(inputs[:50])
    assert np.allclose(a, b)
    assert np.allclose(a.sum(axis=1), 1.0)


@pytest.mark.parametrize("tampered", ["serving", "estimator"])
def test_tampered_artefact_is_refused(sample, tmp_path, tampered):
    inputs, rows = sample
    bundle = fit_bundle(inputs, rows, {"C": 4.0, "min_df": 2, "word_ngrams": [1, 2], "char_ngrams": [2, 5],
                                       "random_state": 0, "calibration_folds": 0})
    entry = save_model(tmp_path, bundle, training_data_sha256="0" * 64, metrics={}, params={})
    assert load_model(tmp_path).version == entry["model_version"]
    assert isinstance(load_estimator(tmp_path), PriorityModel)
    name = entry["serving"]["artefact"] if tampered == "serving" else entry["artefact"]
    artefact = tmp_path / name
    data = bytearray(artefact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artefact.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="no coincide con su manifiesto"):
        load_model(tmp_path) if tampered == "serving" else load_estimator(tmp_path)


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="no hay manifiesto de modelos"):
        load_model(tmp_path)


def test_shipped_model_loads_and_its_hash_matches():
    manifest = json.loads((ROOT / "models/manifest.json").read_text("utf-8"))
    loaded = load_model(ROOT / "models")
    assert loaded.version == manifest["current"]["model_version"]
    assert manifest["current"]["metrics"]["macro_f1"] >= 0.88


def _reference_scores(model, inputs):
    """Scores through scikit-learn's own ``transform`` (the slow path the batch scorer replaces)."""
    features = model._features(inputs)
    heads = [features @ model.coef_.T + model.intercept_, features @ model.type_coef_.T + model.type_intercept_]
    if len(model.gate_coef_):
        heads.append(features @ model.gate_coef_.T + model.gate_intercept_)
    return np.hstack(heads)


def test_batch_scorer_equals_scikit_learn_transform(sample):
    inputs, rows = sample
    model = PriorityModel(calibration_folds=0).fit(inputs, [r.label for r in rows],
                                                   request_types=[r.request_type for r in rows])
    # Unseen messages too: new tokens, no tokens at all, rule ids the model never saw, punctuation only.
    others = [r for r in load_rows(ROOT / "data/corpus.jsonl") if r.split == "test"][:200]
    unseen = prepare(others, *READERS)
    extra = [ModelInput(()), ModelInput(("¿", "?", "...")), ModelInput(("xyzzy", "plataforma", "caida"), ("nueva",)),
             ModelInput(("regla__caida_total", "no", "abre"), ("caida_total",))]
    probe = inputs[:300] + [p[0] for p in unseen] + extra
    assert np.allclose(model._scores(probe), _reference_scores(model, probe), atol=1e-4)
    single = np.vstack([model._scores([x]) for x in probe[-60:]])
    assert np.allclose(single, _reference_scores(model, probe[-60:]), atol=1e-4)
    probs, types = model.predict_with_type(probe)
    assert np.allclose(probs.sum(axis=1), 1.0) and len(types) == len(probe)


def test_word_trigrams_fall_back_to_scikit_learns_transform(sample):
    inputs, rows = sample
    model = PriorityModel(word_ngrams=(1, 3), calibration_folds=0).fit(inputs[:300], [r.label for r in rows[:300]])
    probs = model.predict_proba(inputs[:20])
    assert probs.shape == (20, len(model.classes_)) and np.allclose(probs.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="unigrams and bigrams only"):
        model.serving()


def test_shipped_serving_model_scores_equal_its_estimators_transform():
    served, estimator = load_model(ROOT / "models").model, load_estimator(ROOT / "models")
    rows = [r for r in load_rows(ROOT / "data/corpus.jsonl") if r.split == "test"][:300]
    inputs = [p[0] for p in prepare(rows, *READERS)]
    reference = _reference_scores(estimator, inputs)
    assert np.allclose(served._scores(inputs), reference, atol=1e-4)
    assert np.allclose(np.vstack([served._scores([x]) for x in inputs[:50]]), reference[:50], atol=1e-4)
