"""Training the text model from the corpus, reproducibly, and saving it with its manifest."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from classifier.clean import clean
from classifier.corpus import CorpusRow, load_rows
from classifier.rule_engine import RuleEngine, RuleResult
from classifier.settings import Settings
from classifier.text_model import ModelInput, PriorityModel, save_model

DEFAULT_PARAMS = {"C": 4.0, "min_df": 2, "word_ngrams": [1, 2], "char_ngrams": [2, 5], "random_state": 0}


def prepare(rows: list[CorpusRow], rules: RuleEngine, *, progress: bool = False) -> list[tuple[ModelInput, RuleResult]]:
    """Clean and match every row once; the model input and the rule result are both reused."""
    from classifier.service import to_model_input

    out = []
    iterable: Iterable[CorpusRow] = rows
    if progress:
        iterable = tqdm(rows, desc="preparando", unit="msg", file=sys.stderr, leave=False)
    for row in iterable:
        text = clean(row.subject, row.body)
        result = rules.match(text)
        out.append((to_model_input(text, result), result))
    return out


def fit_bundle(inputs: list[ModelInput], rows: list[CorpusRow], params: dict) -> dict:
    """The priority model and a request-type model over the same features."""
    kwargs = {**params, "word_ngrams": tuple(params["word_ngrams"]), "char_ngrams": tuple(params["char_ngrams"])}
    priority = PriorityModel(**kwargs).fit(inputs, [r.label for r in rows],
                                           request_types=[r.request_type for r in rows])
    return {"priority": priority}


def data_hash(rows: list[CorpusRow]) -> str:
    digest = hashlib.sha256()
    for r in rows:
        digest.update(r.model_dump_json().encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def train_and_save(settings: Settings, *, data: Path | None = None, extra: list[CorpusRow] = (),
                   params: dict | None = None, progress: bool = False) -> dict:
    """Train on the train split (plus ``extra`` rows), score on the test split, save; return the manifest entry."""
    from classifier.evaluation import evaluate_prepared
    from classifier.service import load_policy_engine

    params = {**DEFAULT_PARAMS, **(params or {})}
    rows = load_rows(data or settings.corpus_path)
    train_rows = [r for r in rows if r.split == "train"] + list(extra)
    test_rows = [r for r in rows if r.split == "test"]
    rules = RuleEngine.from_dir(settings.rules_dir)
    prepared_train = prepare(train_rows, rules, progress=progress)
    bundle = fit_bundle([p[0] for p in prepared_train], train_rows, params)
    policy = load_policy_engine(settings).policy
    prepared_test = prepare(test_rows, rules, progress=progress)
    metrics = evaluate_prepared(bundle["priority"], prepared_test, test_rows,
                                decision=policy.decision)["rules_plus_model"]
    summary = {k: metrics[k] for k in ("macro_f1", "accuracy", "review_share", "accuracy_not_reviewed")}
    summary["recall_muy_alta"] = metrics["per_class"]["muy_alta"]["recall"]
    summary["test_rows"] = len(test_rows)
    summary["train_rows"] = len(train_rows)
    return save_model(settings.models_dir, bundle, training_data_sha256=data_hash(train_rows), metrics=summary,
                      params=params)
