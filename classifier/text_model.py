"""The Spanish text model for the cases rules leave open: one calibrated linear model over n-gram features.

Inputs are ``ModelInput`` objects: the spaCy tokens of the cleaned, folded message (the same tokens the rules
matched) and the ids of the rules that fired. Word n-grams see tokens and rule ids; character n-grams see the
text only, so typos and missing accents still land near the right words. Calibration is a single temperature
fitted on out-of-fold scores and folded into the weights. Serving uses the exported arrays (``serving.py``), so a
worker never imports scikit-learn.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import hstack
from scipy.special import log_softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer

from classifier.policy import INCOMPLETE
from classifier.serving import RULE_PREFIX, LinearHeads, ModelInput, ServingModel, plain_words


def _char_text(item: ModelInput) -> str:
    return item.text


def _identity(value):
    return value


def _check_fitted(model, *names: str) -> None:
    """scikit-learn's ``NotFittedError`` without ``check_is_fitted``'s tag look-ups on every call."""
    missing = [name for name in names if not hasattr(model, name)]
    if missing:
        raise NotFittedError(f"This {type(model).__name__} instance is not fitted yet (no {', '.join(missing)}). "
                             "Call 'fit' with appropriate arguments before using this estimator.")


class PriorityModel(LinearHeads, ClassifierMixin, BaseEstimator):
    """TF-IDF words + characters → multinomial logistic regression, temperature-calibrated."""

    def __init__(self, *, C=4.0, min_df=2, word_ngrams=(1, 2), char_ngrams=(2, 5), max_iter=3000,
                 calibration_folds=5, gate=True, gate_C=None, random_state=0):
        self.C = C
        self.gate = gate
        self.gate_C = gate_C
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
            plain = plain_words(item)
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

    def serving(self) -> ServingModel:
        """The fitted vocabularies, idf and weights as plain arrays: what ``.npz`` artefacts hold and serving uses."""
        served = self.__dict__.get("_serving")
        if served is None:
            _check_fitted(self, "coef_", "intercept_", "gate_coef_")
            if tuple(self.word_ngrams)[1] > 2:
                raise ValueError(f"word_ngrams={tuple(self.word_ngrams)}: the serving model knows word unigrams and "
                                 "bigrams only, so this model can be evaluated but not saved for serving")
            width = len(self.words_.vocabulary_) + len(self.chars_.vocabulary_)
            has_type = getattr(self, "type_coef_", None) is not None
            served = self._serving = ServingModel(
                classes_=np.asarray(self.classes_, dtype=object),
                type_classes_=np.asarray(self.type_classes_ if has_type else [], dtype=object),
                word_vocabulary=dict(self.words_.vocabulary_), char_vocabulary=dict(self.chars_.vocabulary_),
                word_idf=self.words_.idf_.astype(np.float64), char_idf=self.chars_.idf_.astype(np.float64),
                coef_=self.coef_, intercept_=self.intercept_,
                type_coef_=self.type_coef_ if has_type else np.zeros((0, width), np.float32),
                type_intercept_=self.type_intercept_ if has_type else np.zeros(0, np.float32),
                char_ngrams=tuple(self.char_ngrams), head_classes_=np.asarray(self.head_classes_, dtype=object),
                gate_coef_=self.gate_coef_, gate_intercept_=self.gate_intercept_)
        return served

    def _scores(self, X) -> np.ndarray:
        """Linear scores of every head, priority classes first: the serving model's, or scikit-learn's transform
        for word n-grams longer than two (which the fast path does not build)."""
        if tuple(self.word_ngrams)[1] <= 2:
            return self.serving()._scores(X)
        return _SlowScorer(self).scores(X)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_serving", None)
        return state

    def _linear(self, C=None):
        from sklearn.linear_model import LogisticRegression  # training only: serving never imports it

        return LogisticRegression(C=C or self.C, max_iter=self.max_iter)

    def _folds(self, y, groups):
        """Calibration folds: whole styles held out when ``groups`` names them (so confidence is measured on a way
        of writing the model has not seen), stratified folds otherwise."""
        from sklearn.model_selection import GroupKFold, StratifiedKFold

        if groups is not None and len(set(groups)) >= 2:
            n = min(self.calibration_folds, len(set(groups)))
            return list(GroupKFold(n).split(y, y, groups))
        return list(StratifiedKFold(self.calibration_folds, shuffle=True, random_state=self.random_state).split(y, y))

    def fit(self, X, y, request_types=None, groups=None, fold_progress=None):
        """Fit features and weights on all data; calibrate temperatures on out-of-fold scores.

        With a ``muy_baja`` class and ``gate=True``, "is a request identifiable at all?" is its own binary head
        over every message, and the priority head ranks the complete messages only. ``groups`` (each row's style)
        makes the calibration folds hold out whole styles. ``request_types`` (optional) trains a third head over
        the same features, so one feature pass serves the priority, the gate and the request type.
        ``fold_progress`` (optional) wraps the calibration folds, e.g. in a progress bar.
        """
        if not self.C > 0:
            raise ValueError(f"The 'C' parameter of PriorityModel must be > 0. Got {self.C!r} instead.")
        if self.min_df < 1:
            raise ValueError(f"The 'min_df' parameter of PriorityModel must be >= 1. Got {self.min_df!r} instead.")
        X = list(X)
        y = np.asarray(y)
        groups = None if groups is None else np.asarray(groups)
        self.__dict__.pop("_serving", None)  # exported from the previous fit
        features = self._features(X, fit=True)
        self.classes_ = np.unique(y)
        gated = bool(self.gate) and INCOMPLETE in self.classes_ and len(self.classes_) > 2
        complete = y != INCOMPLETE if gated else np.ones(len(y), dtype=bool)
        self.head_classes_ = np.unique(y[complete])
        folds = self._folds(y, groups) if self.calibration_folds and self.calibration_folds > 1 else []
        self.temperature_ = self.gate_temperature_ = 1.0
        if folds:
            from scipy.optimize import minimize_scalar

            head_scores = np.zeros((len(y), len(self.head_classes_)))
            gate_scores = np.zeros(len(y))
            for train_idx, held_idx in (fold_progress or iter)(folds):
                part = train_idx[complete[train_idx]]
                if len(np.unique(y[part])) == len(self.head_classes_):
                    model = self._linear().fit(features[part], y[part])
                    head_scores[held_idx] = model.decision_function(features[held_idx])
                if gated:
                    gate = self._linear(self.gate_C).fit(features[train_idx], ~complete[train_idx])
                    gate_scores[held_idx] = gate.decision_function(features[held_idx])
            codes = np.searchsorted(self.head_classes_, y[complete])
            held_head = head_scores[complete]

            def head_loss(t: float) -> float:
                return -float(np.mean(log_softmax(held_head / t, axis=1)[np.arange(len(codes)), codes]))

            self.temperature_ = float(minimize_scalar(head_loss, bounds=(0.05, 20.0), method="bounded").x)
            if gated:
                sign = np.where(complete, -1.0, 1.0)

                def gate_loss(t: float) -> float:
                    return float(np.mean(np.logaddexp(0.0, -sign * gate_scores / t)))

                self.gate_temperature_ = float(minimize_scalar(gate_loss, bounds=(0.05, 20.0), method="bounded").x)
        final = self._linear().fit(features[complete], y[complete])
        coef = final.coef_ if len(self.head_classes_) > 2 else np.vstack([-final.coef_, final.coef_]) / 2
        intercept = final.intercept_ if len(self.head_classes_) > 2 else np.array([-1, 1]) * final.intercept_ / 2
        self.coef_ = (coef / self.temperature_).astype(np.float32)
        self.intercept_ = (intercept / self.temperature_).astype(np.float32)
        if gated:
            gate = self._linear(self.gate_C).fit(features, ~complete)
            self.gate_coef_ = (gate.coef_ / self.gate_temperature_).astype(np.float32)
            self.gate_intercept_ = (gate.intercept_ / self.gate_temperature_).astype(np.float32)
        else:
            self.gate_coef_ = np.zeros((0, features.shape[1]), np.float32)
            self.gate_intercept_ = np.zeros(0, np.float32)
        if request_types is not None:
            head = self._linear().fit(features, np.asarray(request_types))
            self.type_classes_ = head.classes_
            self.type_coef_ = head.coef_.astype(np.float32)
            self.type_intercept_ = head.intercept_.astype(np.float32)
        return self

    def _ready(self, *, request_type: bool) -> None:
        _check_fitted(self, "coef_", "type_coef_" if request_type else "intercept_")


class _SlowScorer:
    """``BatchScorer``'s interface over scikit-learn's ``transform``, for settings the fast path does not cover."""

    def __init__(self, model: PriorityModel):
        self.model = model

    def scores(self, X) -> np.ndarray:
        features = self.model._features(X)
        heads = [features @ self.model.coef_.T + self.model.intercept_]
        for name in ("type", "gate"):
            coef = getattr(self.model, f"{name}_coef_", None)
            if coef is not None and len(coef):
                heads.append(features @ coef.T + getattr(self.model, f"{name}_intercept_"))
        return np.hstack(heads)
