"""The Spanish text model for the cases rules leave open: one calibrated linear model over n-gram features.

Inputs are ``ModelInput`` objects: the spaCy tokens of the cleaned, folded message (the same tokens the rules
matched) and the ids of the rules that fired. Word n-grams see tokens and rule ids; character n-grams see the
text only, so typos and missing accents still land near the right words. Calibration is a single temperature
fitted on out-of-fold scores and folded into the weights, so serving is one sparse dot product.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from itertools import compress
from pathlib import Path

import joblib
import numpy as np
from scipy.sparse import hstack
from scipy.special import log_softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.exceptions import NotFittedError

from classifier.errors import Errors, ModelError
from classifier.features import BatchScorer

RULE_PREFIX = "regla__"
LIBRARIES = ("scikit-learn", "numpy", "scipy", "spacy", "joblib")


@dataclass(frozen=True, slots=True)
class ModelInput:
    """What the model sees of one message: its tokens (folded) and the rules that fired."""

    tokens: tuple[str, ...]
    rules: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


_WORDISH = re.compile(r"\w")


class _WordMemo(dict):
    """token → has a letter or digit, memoised (tokens repeat across messages, and a dict hit is C speed)."""

    def __missing__(self, token: str) -> bool:
        if len(self) > 500_000:
            self.clear()
        found = self[token] = _WORDISH.search(token) is not None
        return found


_IS_WORD = _WordMemo()


def _is_word(token: str) -> bool:
    return _IS_WORD[token]


def _plain_words(item: ModelInput) -> list[str]:
    return list(compress(item.tokens, map(_IS_WORD.__getitem__, item.tokens)))


def _char_text(item: ModelInput) -> str:
    return item.text


def _identity(value):
    return value


def _softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax in four array operations (scipy's costs ~15 µs per call in its argument checks)."""
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _check_fitted(model, *names: str) -> None:
    """scikit-learn's ``NotFittedError`` without ``check_is_fitted``'s tag look-ups on every call."""
    missing = [name for name in names if not hasattr(model, name)]
    if missing:
        raise NotFittedError(f"This {type(model).__name__} instance is not fitted yet (no {', '.join(missing)}). "
                             "Call 'fit' with appropriate arguments before using this estimator.")


class PriorityModel(ClassifierMixin, BaseEstimator):
    """TF-IDF words + characters → multinomial logistic regression, temperature-calibrated."""

    def __init__(self, *, C=4.0, min_df=2, word_ngrams=(1, 2), char_ngrams=(2, 5), max_iter=3000,
                 calibration_folds=5, random_state=0):
        self.C = C
        self.min_df = min_df
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.max_iter = max_iter
        self.calibration_folds = calibration_folds
        self.random_state = random_state

    def _vectorizers(self):
        words = TfidfVectorizer(analyzer=_identity, preprocessor=None, sublinear_tf=True, min_df=self.min_df,
                                dtype=np.float32)
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(self.char_ngrams), sublinear_tf=True,
                                min_df=self.min_df, dtype=np.float32, lowercase=False)
        return words, chars

    def _word_docs(self, X):
        lo, hi = self.word_ngrams
        docs = []
        for item in X:
            plain = _plain_words(item)
            grams = plain + [RULE_PREFIX + r for r in item.rules]
            for n in range(max(lo, 2), hi + 1):
                grams.extend(map(" ".join, zip(*(plain[k:] for k in range(n)))))
            docs.append(grams)
        return docs

    def _features(self, X, *, fit: bool = False):
        """The TF-IDF matrix through scikit-learn (training; scoring goes through ``BatchScorer``)."""
        if fit:
            self.words_, self.chars_ = self._vectorizers()
            return hstack([self.words_.fit_transform(self._word_docs(X)),
                           self.chars_.fit_transform([_char_text(x) for x in X])]).tocsr()
        return hstack([self.words_.transform(self._word_docs(X)),
                       self.chars_.transform([_char_text(x) for x in X])]).tocsr()

    def _scores(self, X) -> np.ndarray:
        """Linear scores of every head, priority classes first: one batch of array operations."""
        scorer = self.__dict__.get("_scorer")
        if scorer is None:
            if tuple(self.word_ngrams)[1] <= 2:
                scorer = self._scorer = BatchScorer(self, _is_word, RULE_PREFIX)
            else:  # longer word n-grams: scikit-learn's own transform
                scorer = self._scorer = _SlowScorer(self)
        return scorer.scores(X)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_scorer", None)
        return state

    def _linear(self):
        from sklearn.linear_model import LogisticRegression  # training only: serving never imports it

        return LogisticRegression(C=self.C, max_iter=self.max_iter)

    def fit(self, X, y, request_types=None):
        """Fit features and weights on all data; calibrate one temperature on out-of-fold scores.

        ``request_types`` (optional) trains a second linear head over the same features, so one feature pass
        serves both the priority and the request type.
        """
        if not self.C > 0:
            raise ValueError(f"The 'C' parameter of PriorityModel must be > 0. Got {self.C!r} instead.")
        if self.min_df < 1:
            raise ValueError(f"The 'min_df' parameter of PriorityModel must be >= 1. Got {self.min_df!r} instead.")
        X = list(X)
        y = np.asarray(y)
        features = self._features(X, fit=True)
        self.classes_ = np.unique(y)
        self.temperature_ = 1.0
        if self.calibration_folds and self.calibration_folds > 1:
            from scipy.optimize import minimize_scalar
            from sklearn.model_selection import StratifiedKFold

            scores = np.zeros((len(y), len(self.classes_)))
            folds = StratifiedKFold(self.calibration_folds, shuffle=True, random_state=self.random_state)
            for train_idx, held_idx in folds.split(features, y):
                part = self._linear().fit(features[train_idx], y[train_idx])
                scores[held_idx] = part.decision_function(features[held_idx])
            codes = np.searchsorted(self.classes_, y)

            def loss(t: float) -> float:
                return -float(np.mean(log_softmax(scores / t, axis=1)[np.arange(len(y)), codes]))

            self.temperature_ = float(minimize_scalar(loss, bounds=(0.05, 20.0), method="bounded").x)
        final = self._linear().fit(features, y)
        self.coef_ = (final.coef_ / self.temperature_).astype(np.float32)
        self.intercept_ = (final.intercept_ / self.temperature_).astype(np.float32)
        if request_types is not None:
            head = self._linear().fit(features, np.asarray(request_types))
            self.type_classes_ = head.classes_
            self.type_coef_ = head.coef_.astype(np.float32)
            self.type_intercept_ = head.intercept_.astype(np.float32)
        return self

    def predict_with_type(self, X):
        """Priority probabilities and the request type, from one pass over the features."""
        _check_fitted(self, "coef_", "type_coef_")
        X = list(X)
        if not X:
            return np.zeros((0, len(self.classes_))), np.array([], dtype=object)
        scores = self._scores(X)
        k = len(self.classes_)
        return _softmax(scores[:, :k]), self.type_classes_[np.argmax(scores[:, k:], axis=1)]

    def decision_function(self, X):
        _check_fitted(self, "coef_", "intercept_")
        X = list(X)
        if not X:
            return np.zeros((0, len(self.classes_)))
        return self._scores(X)[:, : len(self.classes_)]

    def predict_proba(self, X):
        return _softmax(self.decision_function(X))

    def predict(self, X):
        scores = self.decision_function(X)
        return self.classes_[np.argmax(scores, axis=1)]


class _SlowScorer:
    """``BatchScorer``'s interface over scikit-learn's ``transform``, for settings the fast path does not cover."""

    def __init__(self, model: PriorityModel):
        self.model = model

    def scores(self, X) -> np.ndarray:
        features = self.model._features(X)
        heads = [features @ self.model.coef_.T + self.model.intercept_]
        if getattr(self.model, "type_coef_", None) is not None:
            heads.append(features @ self.model.type_coef_.T + self.model.type_intercept_)
        return np.hstack(heads)


# ---------------------------------------------------------------------------------------------- persistence

def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str | None]:
    versions = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    return versions


@dataclass
class LoadedModel:
    """A verified model and its manifest entry."""

    model: PriorityModel
    manifest: dict

    @property
    def version(self) -> str:
        return self.manifest["model_version"]


def save_model(models_dir: Path, bundle: dict, *, training_data_sha256: str, metrics: dict, params: dict,
               promote: bool = True) -> dict:
    """Write ``priority-<version>.joblib``; with ``promote`` make it current in ``manifest.json``. Earlier models are
    kept (``previous``, newest first) so ``model rollback`` can restore them."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    version = f"{datetime.now(timezone.utc):%Y%m%d%H%M%S}-{training_data_sha256[:8]}"
    artefact = models_dir / f"priority-{version}.joblib"
    joblib.dump(bundle, artefact, compress=3)
    entry = {
        "model_version": version,
        "artefact": artefact.name,
        "sha256": file_sha256(artefact),
        "training_data_sha256": training_data_sha256,
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "libraries": library_versions(),
        "params": params,
        "metrics": metrics,
    }
    manifest_path = models_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text("utf-8")) if manifest_path.exists() else {}
    if promote:
        previous = [manifest["current"], *manifest.get("previous", [])] if "current" in manifest else []
        manifest = {**manifest, "current": entry, "previous": previous}
    else:
        manifest = {**manifest, "rejected": [entry, *manifest.get("rejected", [])]}
    write_manifest(models_dir, manifest)
    return entry


def write_manifest(models_dir: Path, manifest: dict) -> None:
    """Replace ``manifest.json`` atomically (readers never see half a file)."""
    path = Path(models_dir) / "manifest.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")
    tmp.replace(path)


def rollback(models_dir: Path) -> dict:
    """Make the previous model current again; the rolled-back one is kept under ``rolled_back``."""
    manifest = read_manifest(models_dir)
    previous = manifest.get("previous", [])
    if not previous:
        raise ModelError("no previous model to roll back to")
    load_model(models_dir, previous[0])  # refuse to switch to an artefact that fails its check
    manifest = {**manifest, "current": previous[0], "previous": previous[1:],
                "rolled_back": [manifest["current"], *manifest.get("rolled_back", [])]}
    write_manifest(models_dir, manifest)
    return manifest["current"]


def read_manifest(models_dir: Path) -> dict:
    path = Path(models_dir) / "manifest.json"
    if not path.exists():
        raise ModelError(Errors.M302.format(file=path))
    return json.loads(path.read_text("utf-8"))


def load_model(models_dir: Path, entry: dict | None = None) -> LoadedModel:
    """Load the current (or given) artefact only if its sha256 matches the manifest."""
    entry = entry or read_manifest(models_dir)["current"]
    path = Path(models_dir) / entry["artefact"]
    if not path.exists():
        raise ModelError(Errors.M303.format(file=path))
    actual = file_sha256(path)
    if actual != entry["sha256"]:
        raise ModelError(Errors.M301.format(file=path, actual=actual[:12], expected=entry["sha256"][:12]))
    bundle = joblib.load(path)
    return LoadedModel(bundle["priority"], entry)


def versions_match(entry: dict) -> bool:
    """True when the libraries that pickled the model are the ones installed now."""
    now = library_versions()
    return all(entry.get("libraries", {}).get(lib) == now.get(lib) for lib in ("scikit-learn", "numpy", "scipy"))
