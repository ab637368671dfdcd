"""The text model as it is served: vocabularies, idf and the linear heads' weights as plain arrays.

Training (``text_model.py``) needs scikit-learn; scoring does not. A fitted ``PriorityModel`` exports a
``ServingModel``, saved as an ``.npz`` that loads without pickle (``allow_pickle=False``: the file cannot run
code) and without importing scikit-learn, which alone took a third of a worker's start-up. Scores equal the
estimator's (tested): the same ``char_wb`` n-grams, the same TF-IDF and the same weights.
"""

from __future__ import annotations

import math
import re
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import compress
from pathlib import Path

import numpy as np

from classifier.errors import ModelError
from classifier.features import BatchScorer
from classifier.policy import INCOMPLETE

RULE_PREFIX = "regla__"
FORMAT = 2  # 2: the incomplete-or-not gate and the head's own classes; 1 is still read


@dataclass(frozen=True, slots=True)
class ModelInput:
    """What the model sees of one message: its tokens (folded) and the rules that fired."""

    tokens: tuple[str, ...]
    rules: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


_WORDISH = re.compile(r"\w")


def is_word(token: str) -> bool:
    """Whether a token has a letter, digit or underscore: a word, not punctuation or a symbol (scorers memoise it)."""
    return _WORDISH.search(token) is not None


def plain_words(item: ModelInput, word: Callable[[str], bool] = is_word) -> list[str]:
    """The tokens that are words (not punctuation or symbols): what word n-grams are made of. ``word``: ``is_word``
    or a caller's memo of it (``BoundedMemo(is_word, n).__getitem__``)."""
    return list(compress(item.tokens, map(word, item.tokens)))


def char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    """scikit-learn's ``char_wb`` analyzer (no lowercasing): n-grams inside words padded with one space."""
    grams: list[str] = []
    for word in text.split():
        padded = f" {word} "
        size = len(padded)
        for n in range(low, high + 1):
            grams.extend(padded[i:i + n] for i in range(max(size - n + 1, 1)))
            if size <= n:  # a short word counts once, as the whole padded word
                break
    return grams


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax in four array operations (scipy's costs ~15 µs per call in its argument checks)."""
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


class LinearHeads:
    """Predictions from ``_scores`` (messages × heads), shared by the fitted estimator and the serving model.

    Heads, in column order: the priority head over ``head_classes_``, the request type over ``type_classes_``, and,
    when the model has one, the gate: one score saying that no request can be identified (``INCOMPLETE``). With a
    gate, the priority head only ranks complete messages and ``P(c) = (1 − P(incomplete))·P(c | complete)``.
    """

    def _ready(self, *, request_type: bool) -> None:
        """Raise if the heads are missing (a fitted estimator checks; a loaded serving model always has them)."""

    @property
    def has_gate(self) -> bool:
        return len(getattr(self, "gate_coef_", ())) > 0

    def _combine(self, scores: np.ndarray) -> np.ndarray:
        """(messages × classes_) probabilities from the heads' scores."""
        k = len(self.head_classes_)
        head = softmax(scores[:, :k])
        if not self.has_gate:
            return head
        incomplete = 1.0 / (1.0 + np.exp(-scores[:, -1]))
        out = np.empty((len(scores), len(self.classes_)))
        out[:, self._head_columns] = head * (1.0 - incomplete)[:, None]
        out[:, self._gate_column] = incomplete
        return out

    @property
    def _head_columns(self) -> list[int]:
        where = {c: i for i, c in enumerate(self.classes_)}
        return [where[c] for c in self.head_classes_]

    @property
    def _gate_column(self) -> int:
        return list(self.classes_).index(INCOMPLETE)

    def predict_with_type(self, X):
        """Priority probabilities and the request type, from one pass over the features."""
        self._ready(request_type=True)
        X = list(X)
        if not X:
            return np.zeros((0, len(self.classes_))), np.array([], dtype=object)
        scores = self._scores(X)
        k, t = len(self.head_classes_), len(self.type_classes_)
        return self._combine(scores), self.type_classes_[np.argmax(scores[:, k:k + t], axis=1)]

    def predict_one(self, x) -> tuple[list[float], str]:
        """One message's priority probabilities (in ``classes_`` order) and request type: ``predict_with_type``
        in plain Python past the scores, where array calls on a dozen numbers cost more than the arithmetic."""
        self._ready(request_type=True)
        scores = self._scores([x])[0].tolist()
        k, t = len(self.head_classes_), len(self.type_classes_)
        top = max(scores[:k])
        exps = [math.exp(s - top) for s in scores[:k]]
        total = sum(exps)
        types = scores[k:k + t]
        kind = str(self.type_classes_[max(range(len(types)), key=types.__getitem__)])
        if not self.has_gate:
            return [e / total for e in exps], kind
        gate = scores[-1]
        incomplete = 1.0 / (1.0 + math.exp(-gate)) if gate > -500 else 0.0
        out = [0.0] * len(self.classes_)
        for column, e in zip(self._head_columns, exps):
            out[column] = e / total * (1.0 - incomplete)
        out[self._gate_column] = incomplete
        return out, kind

    def predict_proba(self, X) -> np.ndarray:
        self._ready(request_type=False)
        X = list(X)
        if not X:
            return np.zeros((0, len(self.classes_)))
        return self._combine(self._scores(X))

    def predict(self, X) -> np.ndarray:
        probs = self.predict_proba(X)  # first: it raises NotFittedError before classes_ is looked up
        return self.classes_[np.argmax(probs, axis=1)]


@dataclass(eq=False)
class ServingModel(LinearHeads):
    """Priority probabilities and request type of ``ModelInput`` objects, from exported weights."""

    classes_: np.ndarray
    type_classes_: np.ndarray
    word_vocabulary: dict[str, int]
    char_vocabulary: dict[str, int]
    word_idf: np.ndarray
    char_idf: np.ndarray
    coef_: np.ndarray  # (classes, words + chars), calibration already folded in
    intercept_: np.ndarray
    type_coef_: np.ndarray
    type_intercept_: np.ndarray
    char_ngrams: tuple[int, int]
    head_classes_: np.ndarray | None = None  # the priority head's classes (all of ``classes_`` without a gate)
    gate_coef_: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    gate_intercept_: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    _scorer: BatchScorer | None = field(default=None, repr=False)  # built on first use; owns the scoring memos
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.head_classes_ is None:
            self.head_classes_ = self.classes_

    def char_analyzer(self, text: str) -> list[str]:
        return char_wb_ngrams(text, *self.char_ngrams)

    def _scores(self, X) -> np.ndarray:
        """(messages × heads) linear scores, priority classes first, then request types."""
        if self._scorer is None:
            with self._lock:
                if self._scorer is None:
                    self._scorer = BatchScorer(self, is_word, RULE_PREFIX)
        return self._scorer.scores(X)

    # ------------------------------------------------------------------------------------------ the file

    def save(self, path: Path) -> None:
        """One compressed ``.npz`` of plain arrays (terms listed in column order)."""
        np.savez_compressed(
            path, format=np.array(FORMAT), classes=self.classes_.astype(str),
            type_classes=self.type_classes_.astype(str), word_terms=_terms(self.word_vocabulary),
            char_terms=_terms(self.char_vocabulary), word_idf=self.word_idf, char_idf=self.char_idf,
            coef=self.coef_, intercept=self.intercept_, type_coef=self.type_coef_,
            type_intercept=self.type_intercept_, char_ngrams=np.array(self.char_ngrams),
            head_classes=self.head_classes_.astype(str), gate_coef=self.gate_coef_, gate_intercept=self.gate_intercept_)

    @classmethod
    def load(cls, path: Path) -> "ServingModel":
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["format"])
                if version not in (1, FORMAT):
                    raise ModelError(f"{path}: formato de servicio {version}; este código lee 1 y {FORMAT}")
                gated = {} if version == 1 else dict(
                    head_classes_=data["head_classes"].astype(object), gate_coef_=data["gate_coef"],
                    gate_intercept_=data["gate_intercept"])
                return cls(**gated,
                    classes_=data["classes"].astype(object), type_classes_=data["type_classes"].astype(object),
                    word_vocabulary={t: i for i, t in enumerate(data["word_terms"].tolist())},
                    char_vocabulary={t: i for i, t in enumerate(data["char_terms"].tolist())},
                    word_idf=data["word_idf"], char_idf=data["char_idf"], coef_=data["coef"],
                    intercept_=data["intercept"], type_coef_=data["type_coef"],
                    type_intercept_=data["type_intercept"], char_ngrams=tuple(int(n) for n in data["char_ngrams"]))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise ModelError(f"{path}: no es un modelo de servicio ({exc})") from exc


def _terms(vocabulary: dict[str, int]) -> np.ndarray:
    terms = [""] * len(vocabulary)
    for term, column in vocabulary.items():
        terms[column] = term
    return np.array(terms, dtype=str)
