"""The serving model: scikit-learn's n-grams without scikit-learn, a pickle-free file, and a worker that never
imports scikit-learn."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from classifier.artefacts import add_serving_file, load_estimator, load_model
from classifier.errors import ModelError
from classifier.serving import ModelInput, ServingModel, char_wb_ngrams
from tests.conftest import ROOT

_TEXT = st.lists(st.sampled_from(list("abñé ü1.,¿?-\n\t\u00a0") + ["  ", "ción", "plataforma"]), max_size=20).map("".join)


@pytest.mark.parametrize("ngrams", [(2, 5), (1, 3), (3, 3)])
@settings(max_examples=150, deadline=None)
@given(text=_TEXT)
def test_char_ngrams_equal_scikit_learns_char_wb_analyzer(ngrams, text):
    analyzer = TfidfVectorizer(analyzer="char_wb", ngram_range=ngrams, lowercase=False).build_analyzer()
    assert char_wb_ngrams(text, *ngrams) == analyzer(text)


def test_the_file_round_trip_keeps_every_score(tmp_path):
    served = load_model(ROOT / "models").model
    served.save(tmp_path / "copy.npz")
    again = ServingModel.load(tmp_path / "copy.npz")
    probe = [ModelInput(("la", "plataforma", "no", "abre", "para", "ningun", "docente"), ("caida_total",)),
             ModelInput(("hola",)), ModelInput(())]
    assert np.array_equal(again._scores(probe), served._scores(probe))
    assert list(again.classes_) == list(served.classes_)


@pytest.mark.parametrize("content", [b"not a zip", b"PK\x03\x04" + b"\x00" * 40, "truncated"])
def test_a_file_that_is_not_a_serving_model_is_a_clear_error(tmp_path, content):
    if content == "truncated":
        content = (ROOT / "models" / json.loads((ROOT / "models/manifest.json").read_text("utf-8"))["current"]
                   ["serving"]["artefact"]).read_bytes()[:5000]
    (tmp_path / "x.npz").write_bytes(content)
    with pytest.raises(ModelError, match="no es un modelo de servicio"):
        ServingModel.load(tmp_path / "x.npz")


def test_a_version_saved_before_serving_files_loads_its_estimator_and_can_get_one(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models", models)
    manifest = json.loads((models / "manifest.json").read_text("utf-8"))
    legacy = {k: v for k, v in manifest["current"].items() if k != "serving"}
    (models / legacy["artefact"]).with_suffix(".npz").unlink()
    assert type(load_model(models, legacy).model).__name__ == "PriorityModel"
    upgraded = add_serving_file(models, legacy)
    assert upgraded["serving"] == manifest["current"]["serving"]  # the same bytes as the shipped export
    assert isinstance(load_model(models, upgraded).model, ServingModel)
    assert load_estimator(models, upgraded).classes_.tolist() == load_model(models).model.classes_.tolist()


def test_a_worker_loads_and_scores_without_importing_scikit_learn():
    code = ("import sys; from api.main import create_app; from classifier.pipeline import Classifier; "
            "from classifier.settings import get_settings; from classifier.ingest import Message; "
            "c = Classifier.load(get_settings()); "
            "r = c.classify(Message(None, 'chat', '', 'No abre la plataforma para ningún docente')); "
            "print(r.decision.priority, sorted(m for m in ('sklearn', 'joblib', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "[]", out.stdout


@pytest.mark.parametrize("loader", [load_model, load_estimator], ids=["serving", "estimator"])
def test_one_message_predictions_equal_the_batch_ones(loader):
    loaded = loader(ROOT / "models")
    model = getattr(loaded, "model", loaded)
    inputs = [ModelInput(()), ModelInput(("la", "plataforma", "no", "carga", "la", "la")),
              ModelInput(("no", "puedo", "ingresar", "."), ("acceso_bloqueado",)),
              ModelInput(("¿", "cómo", "descargo", "el", "informe", "?")), ModelInput(("xyzzy", "qwerty"))]
    probs, types = model.predict_with_type(inputs)
    for x, row, request_type in zip(inputs, probs, types):
        one, one_type = model.predict_one(x)
        assert np.allclose(one, row) and one_type == request_type
