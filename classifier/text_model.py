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
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from itertools import chain, compress
from pathlib import Path

import joblib
import numpy as np
from scipy.sparse import csr_matrix, hstack
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from classifier.errors import Errors, ModelError

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


def _word_terms(item: ModelInput) -> list[str]:
    return _plain_words(item) + [RULE_PREFIX + r for r in item.rules]


def _char_text(item: ModelInput) -> str:
    return item.text


def _identity(value):
    return value


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
        if fit:
            self.words_, self.chars_ = self._vectorizers()
            return hstack([self.words_.fit_transform(self._word_docs(X)),
                           self.chars_.fit_transform([_char_text(x) for x in X])]).tocsr()
        return self._fast_features(X)

    def _reference_features(self, X):
        """The same matrix through scikit-learn's own ``transform`` (slow; kept to test the fast path)."""
        return hstack([self.words_.transform(self._word_docs(X)),
                       self.chars_.transform([_char_text(x) for x in X])]).tocsr()

    def _fast_features(self, X):
        """TF-IDF rows built from per-word caches: ``char_wb`` n-grams never cross a word, so each word's n-gram
        counts are computed once; a message's counts are then (message × word counts) @ (word × n-gram counts)."""
        word_block = _tfidf_rows(self._word_counts(X), self.words_.idf_)
        char_block = _tfidf_rows(self._char_counts(X), self.chars_.idf_)
        return hstack([word_block, char_block], format="csr")

    def _word_counts(self, X):
        """Word n-gram counts, one row per message, each column once per row (no sorting needed)."""
        vocab = self.words_.vocabulary_
        indptr, indices, data = [0], [], []
        for grams in self._word_docs(X):
            counts = Counter(map(vocab.get, grams))
            counts.pop(None, None)
            indices.extend(counts.keys())
            data.extend(counts.values())
            indptr.append(len(indices))
        return csr_matrix((np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int32),
                           np.asarray(indptr)), shape=(len(X), len(vocab)))

    def _char_counts(self, X):
        """Character n-gram counts: distinct words of the batch × their cached n-gram counts."""
        vocab = self.chars_.vocabulary_
        per_message = [item.text.split() for item in X]
        distinct = list(dict.fromkeys(chain.from_iterable(per_message)))
        ids = dict(zip(distinct, range(len(distinct))))
        indices = np.fromiter(map(ids.__getitem__, chain.from_iterable(per_message)), dtype=np.int32)
        indptr = np.zeros(len(X) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, per_message), dtype=np.int64, count=len(X)), out=indptr[1:])
        docs = csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(X), len(distinct)))
        rows = list(map(self._word_ngrams, distinct))
        word_indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        if rows:
            np.cumsum(np.fromiter((len(r[0]) for r in rows), dtype=np.int64, count=len(rows)), out=word_indptr[1:])
            words = csr_matrix((np.concatenate([r[1] for r in rows]), np.concatenate([r[0] for r in rows]),
                                word_indptr), shape=(len(rows), len(vocab)))
        else:
            words = csr_matrix((0, len(vocab)), dtype=np.float32)
        return docs @ words

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_char_cache", None)
        state.pop("_char_analyzer", None)
        state.pop("_heads", None)
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
        check_is_fitted(self, ["coef_", "type_coef_"])
        X = list(X)
        if not X:
            return np.zeros((0, len(self.classes_))), np.array([], dtype=object)
        if len(X) <= 4:
            coef_t, type_t = self._heads_t()
            rows = [self._one_row(x) for x in X]
            scores = np.array([vals @ coef_t[cols] + self.intercept_ for cols, vals in rows])
            type_scores = np.array([vals @ type_t[cols] + self.type_intercept_ for cols, vals in rows])
        else:
            features = self._features(X)
            scores = features @ self.coef_.T + self.intercept_
            type_scores = features @ self.type_coef_.T + self.type_intercept_
        return softmax(scores, axis=1), self.type_classes_[np.argmax(type_scores, axis=1)]

    def decision_function(self, X):
        check_is_fitted(self, ["coef_", "intercept_"])
        X = list(X)
        if len(X) <= 4:  # one message (the API): a gather and a dot instead of sparse matrices
            coef_t, _ = self._heads_t()
            rows = [self._one_row(x) for x in X]
            return np.array([vals @ coef_t[cols] + self.intercept_ for cols, vals in rows]).reshape(len(X), -1)
        features = self._features(X)
        return features @ self.coef_.T + self.intercept_

    def _one_row(self, item: ModelInput) -> tuple[np.ndarray, np.ndarray]:
        """(feature columns, TF-IDF values) of one message, without sparse-matrix machinery."""
        word_vocab = self.words_.vocabulary_
        counts: dict[int, int] = {}
        for j in map(word_vocab.get, self._word_docs([item])[0]):
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        cols_w = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        vals_w = _sublinear_l2(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)),
                               self.words_.idf_[cols_w])
        idx, cnt = [], []
        for word in item.text.split():
            columns, counts = self._word_ngrams(word)
            idx.append(columns)
            cnt.append(counts)
        if idx:
            cols_c, inverse = np.unique(np.concatenate(idx), return_inverse=True)
            vals_c = _sublinear_l2(np.bincount(inverse, weights=np.concatenate(cnt)), self.chars_.idf_[cols_c])
        else:
            cols_c, vals_c = np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate([cols_w, cols_c.astype(np.int64) + len(word_vocab)]), np.concatenate([vals_w, vals_c])

    def _word_ngrams(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        """(columns, counts) of one word's ``char_wb`` n-grams, computed once per distinct word and cached."""
        cache = self.__dict__.setdefault("_char_cache", {})
        entry = cache.get(word)
        if entry is None:
            if len(cache) > 200_000:
                cache.clear()
            analyzer = self.__dict__.get("_char_analyzer") or self.__dict__.setdefault(
                "_char_analyzer", self.chars_.build_analyzer())
            vocab = self.chars_.vocabulary_
            found: dict[int, int] = {}
            for gram in analyzer(word):
                j = vocab.get(gram)
                if j is not None:
                    found[j] = found.get(j, 0) + 1
            entry = cache[word] = (np.fromiter(found.keys(), dtype=np.int32, count=len(found)),
                                   np.fromiter(found.values(), dtype=np.float32, count=len(found)))
        return entry

    def _heads_t(self):
        heads = self.__dict__.get("_heads")
        if heads is None:
            heads = self._heads = (np.ascontiguousarray(self.coef_.T),
                                   np.ascontiguousarray(self.type_coef_.T) if hasattr(self, "type_coef_") else None)
        return heads

    def predict_proba(self, X):
        return softmax(self.decision_function(X), axis=1)

    def predict(self, X):
        scores = self.decision_function(X)
        return self.classes_[np.argmax(scores, axis=1)]


def _sublinear_l2(counts: np.ndarray, idf: np.ndarray) -> np.ndarray:
    """Sublinear TF times IDF, L2-normalised: one row of ``TfidfVectorizer(sublinear_tf=True)``."""
    if not len(counts):
        return counts
    vals = (1.0 + np.log(counts)) * idf
    return vals / (np.sqrt(np.dot(vals, vals)) or 1.0)


def _tfidf_rows(counts, idf: np.ndarray):
    """Sublinear TF-IDF with L2-normalised rows, as ``TfidfVectorizer(sublinear_tf=True)`` computes it.

    ``counts`` must hold each column at most once per row (its indices need not be sorted)."""
    counts = counts.tocsr()
    values = (1.0 + np.log(counts.data)) * idf[counts.indices]
    lengths = np.diff(counts.indptr)
    squares = np.bincount(np.repeat(np.arange(counts.shape[0]), lengths), weights=values * values,
                          minlength=counts.shape[0])
    norms = np.sqrt(squares)
    norms[norms == 0] = 1.0
    counts.data = (values / np.repeat(norms, lengths)).astype(np.float32)
    return counts


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
