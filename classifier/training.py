"""Training the text model from the corpus, reproducibly, and saving it with its manifest."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from classifier.artefacts import drop_rejected, load_model, read_manifest, save_model, version_dir
from classifier.clean import clean
from classifier.config import load_policy_engine
from classifier.corpus import CorpusRow, load_rows
from classifier.errors import ModelError
from classifier.evaluation import evaluate_prepared, plot_confusion
from classifier.model_input import ModelInputBuilder
from classifier.policy import PRIORITIES
from classifier.rule_engine import RuleEngine, RuleResult
from classifier.settings import Settings
from classifier.serving import ModelInput
from classifier.text_model import PriorityModel

DEFAULT_PARAMS = {"C": 4.0, "min_df": 2, "word_ngrams": [1, 2], "char_ngrams": [2, 5], "gate": True, "gate_C": None,
                  "augment": 1, "random_state": 0}
ESTIMATOR_PARAMS = ("C", "min_df", "word_ngrams", "char_ngrams", "gate", "gate_C", "calibration_folds", "random_state")
# The steps of one ``train`` run as the data team reads them on stderr.
STAGES = ("preparando datos", "validación cruzada", "entrenando modelo", "evaluando candidato",
          "comparando con el modelo actual", "guardando")


class Stages:
    """A run's named steps on stderr, numbered, with a tqdm bar where a step has countable parts; silent when off."""

    def __init__(self, names: tuple[str, ...] = STAGES, *, enabled: bool = True, stream: IO[str] | None = None):
        self.names, self.enabled, self.stream = names, enabled, stream or sys.stderr
        self.started = time.monotonic()

    def start(self, name: str) -> None:
        if self.enabled:
            print(f"[{self.names.index(name) + 1}/{len(self.names)}] {name}", file=self.stream, flush=True)

    def counted(self, items, *, unit: str, then: str | None = None) -> Iterator:
        """``items`` under a progress bar; ``then`` names the step that starts when they run out."""
        yield from tqdm(items, unit=unit, file=self.stream, leave=False, disable=not self.enabled)
        if then:
            self.start(then)

    def done(self) -> None:
        if self.enabled:
            print(f"terminado en {time.monotonic() - self.started:.0f} s", file=self.stream, flush=True)


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


def fit_bundle(inputs: list[ModelInput], rows, params: dict, *, stages: Stages | None = None) -> dict:
    """The priority model (with its gate and request-type head) over the same features; calibration folds hold out
    whole styles when the rows have them. With ``stages``, the folds count on stderr, then the final fit starts."""
    kwargs = {k: v for k, v in params.items() if k in ESTIMATOR_PARAMS}
    kwargs.update(word_ngrams=tuple(params["word_ngrams"]), char_ngrams=tuple(params["char_ngrams"]))
    styles = [getattr(r, "style", None) or "sin_estilo" for r in rows]
    groups = styles if len(set(styles)) > 1 else None
    folds = None if stages is None else (lambda parts: stages.counted(parts, unit="pliegue",
                                                                      then="entrenando modelo"))
    # One BLAS thread: the solvers' dense products are small and extra threads spin rather than help (whole corpus,
    # 2 cores: 36 s either way when alone, with half the CPU; 53 s instead of 102 s beside other work).
    with threadpool_limits(limits=1, user_api="blas"):
        priority = PriorityModel(**kwargs).fit(inputs, [r.label for r in rows],
                                               request_types=[r.request_type for r in rows], groups=groups,
                                               fold_progress=folds)
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


@dataclass
class Verdict:
    """What one ``train`` run decided, with both models scored by rules + model on the same test rows."""

    candidate: dict                      # manifest entry of the candidate, its metrics with per-class F1
    current: dict | None                 # the current model's version and the same metrics (None: there was none)
    promoted: bool
    gated: bool                          # False: a plain ``train`` makes its candidate current without the gate
    refused_because: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # confusion matrices, PNG
    report: str | None = None            # this verdict as JSON

    def as_dict(self) -> dict:
        return asdict(self)


def _scored(model, prepared: list, rows: list[CorpusRow], decision) -> dict:
    """Rules + model on ``rows``: the gate's figures, per-class F1 and the confusion matrix."""
    metrics = evaluate_prepared(model, prepared, rows, decision=decision)["rules_plus_model"]
    out = {k: metrics[k] for k in ("macro_f1", "accuracy", "review_share", "accuracy_not_reviewed")}
    out["recall_muy_alta"] = metrics["per_class"]["muy_alta"]["recall"]
    out["f1"] = {label: metrics["per_class"][label]["f1"] for label in PRIORITIES}
    out["confusion_matrix"] = metrics["confusion_matrix"]["rows_truth_cols_predicted"]
    return out


def train_and_save(settings: Settings, *, data: Path | None = None, feedback: list[CorpusRow] | None = None,
                   params: dict | None = None, progress: bool = False, compare: bool = False) -> Verdict:
    """Train on the train split (plus agents' corrections), score on the test split next to the current model, save.

    With ``compare`` the candidate is promoted only within the policy's ``retraining`` limits (macro-F1 and
    muy_alta recall), otherwise kept as rejected; without it the candidate becomes current (the comparison is
    still shown). The verdict and both confusion matrices are written to the candidate's folder.
    """
    stages = Stages(enabled=progress)
    params = {**DEFAULT_PARAMS, **(params or {})}
    stages.start("preparando datos")
    rows = load_rows(data or settings.corpus_path)
    train_rows, merge = merge_feedback(rows, feedback or [])
    test_rows = [r for r in rows if r.split == "test"]
    rules = RuleEngine.from_dir(settings.rules_dir)
    model_input = ModelInputBuilder.beside_rules(settings.rules_dir)
    fit_rows = with_copies(train_rows, settings.rules_dir, params)
    prepared_train = prepare(fit_rows, rules, model_input, progress=progress)
    prepared_test = prepare(test_rows, rules, model_input, progress=progress)
    stages.start("validación cruzada")
    bundle = fit_bundle([p[0] for p in prepared_train], fit_rows, params, stages=stages)
    policy = load_policy_engine(settings).policy
    stages.start("evaluando candidato")
    scored = _scored(bundle["priority"], prepared_test, test_rows, policy.decision)
    matrices = {"candidate": scored.pop("confusion_matrix")}  # shown current first, as in the verdict's columns
    summary = {**scored, "test_rows": len(test_rows), "train_rows": len(train_rows), **merge}
    current, refused = None, []
    try:
        current_entry = read_manifest(settings.models_dir)["current"]
        stages.start("comparando con el modelo actual")
        current = {"model_version": current_entry["model_version"], **_scored(
            load_model(settings.models_dir, current_entry).model, prepared_test, test_rows, policy.decision)}
        matrices = {"current": current.pop("confusion_matrix"), **matrices}
        refused = promotion_refusals(summary, current, policy.retraining) if compare else []
    except ModelError as exc:
        print(f"aviso: el modelo actual no se pudo evaluar ({exc}); el candidato queda sin comparación",
              file=sys.stderr)
        current = None
    promote = not refused
    stages.start("guardando")
    entry = save_model(settings.models_dir, bundle, training_data_sha256=data_hash(train_rows), metrics=summary,
                       params=params, promote=promote)
    verdict = Verdict(candidate={"model_version": entry["model_version"], "artefact": entry["artefact"], **summary},
                      current=current, promoted=promote, gated=compare and current is not None,
                      refused_because=refused)
    folder = version_dir(settings.models_dir, entry["model_version"])
    titles = {"current": f"Modelo actual {current['model_version']}" if current else "",
              "candidate": f"Candidato {entry['model_version']}"}
    for who, matrix in matrices.items():
        path = folder / f"confusion_matrix_{who}.png"
        plot_confusion(matrix, path, f"{titles[who]}\n(reglas + modelo, {len(test_rows)} mensajes de prueba)")
        verdict.figures.append(str(path))
    verdict.report = str(folder / "verdict.json")
    Path(verdict.report).write_text(json.dumps(verdict.as_dict(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    dropped = drop_rejected(settings.models_dir, policy.retraining.keep_rejected) if not promote else []
    if entry["model_version"] in {e["model_version"] for e in dropped}:  # retraining.keep_rejected: 0
        verdict.figures, verdict.report = [], None
    stages.done()
    return verdict


def promotion_refusals(candidate: dict, current: dict, gate) -> list[str]:
    """Why ``candidate`` may not replace ``current`` (empty: it may), by the policy's ``retraining`` limits."""
    out = []
    if candidate["macro_f1"] < current["macro_f1"] - gate.max_macro_f1_drop:
        out.append(f"macro-F1 {candidate['macro_f1']:.4f} por debajo de {current['macro_f1']:.4f} del modelo actual "
                   f"(retraining.max_macro_f1_drop permite bajar {gate.max_macro_f1_drop})")
    if candidate["recall_muy_alta"] < current["recall_muy_alta"] - gate.max_recall_drop:
        out.append(f"recall de muy_alta {candidate['recall_muy_alta']:.4f} por debajo de "
                   f"{current['recall_muy_alta']:.4f} del modelo actual (retraining.max_recall_drop permite bajar "
                   f"{gate.max_recall_drop})")
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
            print(f"validación dejando fuera un estilo: {style}", file=sys.stderr)
        train = [r for r in rows if r.style != style]
        test = [r for r in rows if r.style == style]
        fit_rows = with_copies(train, rules_dir, params)
        prepared = prepare(fit_rows, rules, model_input)
        model = fit_bundle([p[0] for p in prepared], fit_rows, params)["priority"]
        report = evaluate_prepared(model, prepare(test, rules, model_input), test, decision=decision)
        out[style] = report["rules_plus_model"]
    return out
