"""Training the text model from the corpus, reproducibly, and saving it with its manifest."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupKFold
from tqdm import tqdm

from classifier.artefacts import load_model, read_manifest, save_model
from classifier.clean import clean
from classifier.config import load_policy_engine
from classifier.corpus import CorpusRow, load_rows
from classifier.errors import ModelError
from classifier.evaluation import evaluate_prepared
from classifier.model_input import ModelInputBuilder
from classifier.rule_engine import RuleEngine, RuleResult
from classifier.settings import Settings
from classifier.serving import ModelInput
from classifier.text_model import PriorityModel

DEFAULT_PARAMS = {"C": 4.0, "min_df": 2, "word_ngrams": [1, 2], "char_ngrams": [2, 5], "gate": True, "gate_C": None,
                  "augment": 1, "random_state": 0}
ESTIMATOR_PARAMS = ("C", "min_df", "word_ngrams", "char_ngrams", "gate", "gate_C", "calibration_folds", "random_state")


def prepare(rows, rules: RuleEngine, model_input: ModelInputBuilder, *,
            progress: bool = False) -> list[tuple[ModelInput, RuleResult]]:
    """Clean and match every row once; the model input and the rule result are both reused."""
    out = []
    iterable: Iterable[CorpusRow] = rows
    if progress:
        iterable = tqdm(rows, desc="preparando", unit="msg", file=sys.stderr, leave=False)
    for row in iterable:
        text = clean(row.subject, row.body)
        result = rules.match(text)
        out.append((model_input(text, result), result))
    return out


def fit_bundle(inputs: list[ModelInput], rows, params: dict) -> dict:
    """The priority model (with its gate and request-type head) over the same features; calibration folds hold out
    whole styles when the rows have them."""
    kwargs = {k: v for k, v in params.items() if k in ESTIMATOR_PARAMS}
    kwargs.update(word_ngrams=tuple(params["word_ngrams"]), char_ngrams=tuple(params["char_ngrams"]))
    styles = [getattr(r, "style", None) or "sin_estilo" for r in rows]
    groups = styles if len(set(styles)) > 1 else None
    priority = PriorityModel(**kwargs).fit(inputs, [r.label for r in rows],
                                           request_types=[r.request_type for r in rows], groups=groups)
    return {"priority": priority}


def with_copies(rows: list[CorpusRow], settings_rules_dir: Path, params: dict) -> list[CorpusRow]:
    """Training rows plus ``params["augment"]`` altered copies of each (``augment.py``)."""
    n = int(params.get("augment") or 0)
    if not n:
        return rows
    from classifier.augment import Restyler
    from classifier.model_input import read_courtesy

    spec = read_courtesy(Path(settings_rules_dir).parent / "estilo.yaml")
    return rows + Restyler.from_courtesy(spec).copies(rows, n, seed=int(params.get("random_state") or 0))


def data_hash(rows: list[CorpusRow]) -> str:
    digest = hashlib.sha256()
    for r in rows:
        digest.update(r.model_dump_json().encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def merge_feedback(rows: list[CorpusRow], feedback: list[CorpusRow]) -> tuple[list[CorpusRow], dict]:
    """Training rows plus agents' corrections: an agent's label wins over a corpus row with the same text;
    corrections whose text is in the test split are dropped, so the held-out data stays held out."""
    def key(r: CorpusRow) -> str:
        return " ".join((r.subject + " " + r.body).lower().split())

    test_texts = {key(r) for r in rows if r.split == "test"}
    usable = [f for f in feedback if key(f) not in test_texts]
    corrected = {key(f) for f in usable}
    train = [r for r in rows if r.split == "train" and key(r) not in corrected]
    stats = {"feedback_rows": len(feedback), "feedback_used": len(usable),
             "feedback_dropped_in_test": len(feedback) - len(usable),
             "corpus_rows_overridden": sum(1 for r in rows if r.split == "train" and key(r) in corrected)}
    return train + usable, stats


def train_and_save(settings: Settings, *, data: Path | None = None, feedback: list[CorpusRow] | None = None,
                   params: dict | None = None, progress: bool = False, compare: bool = False) -> dict:
    """Train on the train split (plus agents' corrections), score on the test split and save.

    With ``compare`` the current model is scored on the same test rows and the candidate is promoted only within
    the policy's ``retraining`` limits (macro-F1 and muy_alta recall); otherwise it is kept as rejected.
    """
    params = {**DEFAULT_PARAMS, **(params or {})}
    rows = load_rows(data or settings.corpus_path)
    train_rows, merge = merge_feedback(rows, feedback or [])
    test_rows = [r for r in rows if r.split == "test"]
    rules = RuleEngine.from_dir(settings.rules_dir)
    model_input = ModelInputBuilder.beside_rules(settings.rules_dir)
    fit_rows = with_copies(train_rows, settings.rules_dir, params)
    prepared_train = prepare(fit_rows, rules, model_input, progress=progress)
    bundle = fit_bundle([p[0] for p in prepared_train], fit_rows, params)
    policy = load_policy_engine(settings).policy
    decision = policy.decision
    prepared_test = prepare(test_rows, rules, model_input, progress=progress)

    def summary_of(model) -> dict:
        metrics = evaluate_prepared(model, prepared_test, test_rows, decision=decision)["rules_plus_model"]
        out = {k: metrics[k] for k in ("macro_f1", "accuracy", "review_share", "accuracy_not_reviewed")}
        out["recall_muy_alta"] = metrics["per_class"]["muy_alta"]["recall"]
        return out

    summary = {**summary_of(bundle["priority"]), "test_rows": len(test_rows), "train_rows": len(train_rows),
               **merge}
    promote, current, refused = True, None, []
    if compare:
        try:
            current_entry = read_manifest(settings.models_dir)["current"]
            current = {"model_version": current_entry["model_version"],
                       **summary_of(load_model(settings.models_dir, current_entry).model)}
            refused = promotion_refusals(summary, current, policy.retraining)
            promote = not refused
        except ModelError:
            current = None
    entry = save_model(settings.models_dir, bundle, training_data_sha256=data_hash(train_rows), metrics=summary,
                       params=params, promote=promote, keep_rejected=policy.retraining.keep_rejected)
    return {**entry, "promoted": promote, "compared_with": current, "refused_because": refused}


def promotion_refusals(candidate: dict, current: dict, gate) -> list[str]:
    """Why ``candidate`` may not replace ``current`` (empty: it may), by the policy's ``retraining`` limits."""
    out = []
    if candidate["macro_f1"] < current["macro_f1"] - gate.max_macro_f1_drop:
        out.append(f"macro-F1 {candidate['macro_f1']:.4f} < {current['macro_f1']:.4f} (current)"
                   + (f" - {gate.max_macro_f1_drop}" if gate.max_macro_f1_drop else ""))
    if candidate["recall_muy_alta"] < current["recall_muy_alta"] - gate.max_recall_drop:
        out.append(f"muy_alta recall {candidate['recall_muy_alta']:.4f} < {current['recall_muy_alta']:.4f} "
                   f"(current) - {gate.max_recall_drop}")
    return out


def grouped_cross_validation(inputs: list[ModelInput], rows: list[CorpusRow], params: dict, *, folds: int = 5) -> dict:
    """Macro-F1 over folds that keep every group whole, and the train–test gap."""
    groups = [r.group for r in rows]
    labels = np.array([r.label for r in rows])
    scores, train_scores = [], []
    for train_idx, test_idx in GroupKFold(n_splits=folds).split(inputs, labels, groups):
        bundle = fit_bundle([inputs[i] for i in train_idx], [rows[i] for i in train_idx],
                            {**params, "calibration_folds": 0})
        model = bundle["priority"]
        scores.append(f1_score(labels[test_idx], model.predict([inputs[i] for i in test_idx]), average="macro"))
        train_scores.append(f1_score(labels[train_idx], model.predict([inputs[i] for i in train_idx]), average="macro"))
    return {"folds": folds, "macro_f1_mean": round(float(np.mean(scores)), 4),
            "macro_f1_std": round(float(np.std(scores)), 4),
            "train_macro_f1_mean": round(float(np.mean(train_scores)), 4),
            "gap": round(float(np.mean(train_scores) - np.mean(scores)), 4)}


def leave_one_style_out(rows: list[CorpusRow], rules, model_input, params: dict, *, rules_dir, decision,
                        progress: bool = False) -> dict[str, dict]:
    """Train on every style but one (with the same altered copies as ``train``) and test rules + model on that one:
    the worst style says more about unseen traffic than an average over the styles the model has seen."""
    styles = sorted({r.style for r in rows if r.style})
    out = {}
    for style in styles:
        if progress:
            print(f"leave-one-style-out: {style}", file=sys.stderr)
        train = [r for r in rows if r.style != style]
        test = [r for r in rows if r.style == style]
        fit_rows = with_copies(train, rules_dir, params)
        prepared = prepare(fit_rows, rules, model_input)
        model = fit_bundle([p[0] for p in prepared], fit_rows, params)["priority"]
        report = evaluate_prepared(model, prepare(test, rules, model_input), test, decision=decision)
        out[style] = report["rules_plus_model"]
    return out
