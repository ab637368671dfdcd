"""Evaluation: rules alone, model alone and the combination, side by side, on labelled messages."""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from classifier.corpus import CorpusRow
from classifier.decide import ModelView, decide, model_view
from classifier.clean import clean
from classifier.impact import ImpactFinder
from classifier.policy import DEFAULT_PRIORITY, FAILURES, INCOMPLETE, PRIORITIES
from classifier.rule_engine import RuleResult
from classifier.serving import ModelInput, ServingModel
from classifier.text_model import PriorityModel


def _metrics(truth: list[str], predicted: list[str], review: list[bool] | None = None) -> dict:
    p, r, f, s = precision_recall_fscore_support(truth, predicted, labels=list(PRIORITIES), zero_division=0)
    out = {
        "macro_f1": round(float(f1_score(truth, predicted, labels=list(PRIORITIES), average="macro", zero_division=0)), 4),
        "accuracy": round(float(np.mean([a == b for a, b in zip(truth, predicted)])), 4) if truth else 0.0,
        "per_class": {lab: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                            "f1": round(float(f[i]), 4), "support": int(s[i])} for i, lab in enumerate(PRIORITIES)},
        "confusion_matrix": {"labels": list(PRIORITIES),
                             "rows_truth_cols_predicted": confusion_matrix(truth, predicted, labels=list(PRIORITIES)).tolist()},
    }
    if review is not None:
        kept = [(a, b) for a, b, rv in zip(truth, predicted, review) if not rv]
        out["review_share"] = round(float(np.mean(review)), 4) if review else 0.0
        out["accuracy_not_reviewed"] = round(float(np.mean([a == b for a, b in kept])), 4) if kept else 0.0
    complete = [b for a, b in zip(truth, predicted) if a != INCOMPLETE]
    failures = [b for a, b in zip(truth, predicted) if a in FAILURES]
    out["complete_called_incomplete"] = round(sum(b == INCOMPLETE for b in complete) / len(complete), 4) if complete else 0.0
    out["failures_called_low"] = round(sum(b in LOW for b in failures) / len(failures), 4) if failures else 0.0
    return out


LOW = (DEFAULT_PRIORITY, INCOMPLETE)  # the two slowest priorities


def _views(model: PriorityModel | ServingModel, inputs: list[ModelInput], *, incomplete_at: float) -> list[ModelView]:
    probs = model.predict_proba(inputs)
    classes = [str(c) for c in model.classes_]
    return [model_view({c: float(v) for c, v in zip(classes, row)}, incomplete_at=incomplete_at) for row in probs]


def evaluate_prepared(model: PriorityModel | ServingModel | None, prepared: list[tuple[ModelInput, RuleResult]],
                      rows, *, decision) -> dict:
    """Three systems on the same messages: rules with the default, model alone, rules plus model."""
    truth = [r.label for r in rows]
    results = [p[1] for p in prepared]
    rules_default = [res.priority or "baja" for res in results]
    out = {"rows": len(rows), "rules_with_default": _metrics(truth, rules_default)}
    if model is not None:
        views = _views(model, [p[0] for p in prepared], incomplete_at=decision.incomplete_at)
        out["model_alone"] = _metrics(truth, [v.priority for v in views],
                                      [v.confidence < decision.review_below_confidence for v in views])
        decisions = [decide(res, v, review_below=decision.review_below_confidence,
                            rule_confidence=decision.rule_confidence, model_raises_at=decision.model_raises_rule_at)
                     for res, v in zip(results, views)]
        out["rules_plus_model"] = _metrics(truth, [d.priority for d in decisions], [d.needs_review for d in decisions])
        out["rules_plus_model"]["source"] = dict(Counter(d.source for d in decisions))
        out["errors"] = [
            {"id": r.id, "label": r.label, "predicted": d.priority, "source": d.source,
             "confidence": d.confidence, "rules": res.fired_ids}
            for r, d, res in zip(rows, decisions, results) if d.priority != r.label
        ]
    return out


def rules_report(prepared: list[tuple[ModelInput, RuleResult]], rows: list[CorpusRow], impact: ImpactFinder) -> dict:
    """Rule precision and coverage, per-rule figures, impact accuracy and the wrong decisions; the impact of a
    row with a stated impact is looked for as the flow would for a failure, when no failure rule fired."""
    decided = [(r, res) for r, (_, res) in zip(rows, prepared) if res.priority is not None]
    correct = sum(1 for r, res in decided if res.priority == r.label)
    per_rule: dict[str, Counter] = defaultdict(Counter)
    for r, (_, res) in zip(rows, prepared):
        for hit in res.hits:
            per_rule[hit.rule_id]["fired"] += 1
            per_rule[hit.rule_id]["label_agrees"] += hit.priority == r.label
        if res.deciding is not None:
            per_rule[res.deciding.rule_id]["decided"] += 1
            per_rule[res.deciding.rule_id]["decided_right"] += res.priority == r.label
    stated = [(r, res.impact or impact.find(clean(r.subject, r.body), res.impact_cues))
              for r, (_, res) in zip(rows, prepared) if r.impact != "desconocido"]
    impact_right = sum(1 for r, found in stated if found.scope == r.impact)
    return {
        "rows": len(rows),
        "decided": len(decided),
        "coverage": round(len(decided) / len(rows), 4) if rows else 0.0,
        "precision": round(correct / len(decided), 4) if decided else 0.0,
        "impact_stated": len(stated),
        "impact_accuracy": round(impact_right / len(stated), 4) if stated else 0.0,
        "per_rule": {
            rule: {"fired": c["fired"], "decided": c["decided"],
                   "precision": round(c["decided_right"] / c["decided"], 4) if c["decided"] else None,
                   "label_agrees_when_fired": round(c["label_agrees"] / c["fired"], 4) if c["fired"] else None}
            for rule, c in sorted(per_rule.items())
        },
        "wrong": [{"id": r.id, "label": r.label, "rules": res.priority, "rule": res.deciding.rule_id,
                   "evidence": [e.text for e in res.deciding.evidence][:3]}
                  for r, res in decided if res.priority != r.label],
        "impact_wrong": [{"id": r.id, "impact": r.impact, "found": found.scope, "evidence": found.evidence}
                         for r, found in stated if found.scope != r.impact],
    }


def plot_confusion(matrix: list[list[int]], path: Path, title: str) -> None:
    """Write the confusion matrix as a PNG (rows: labelled priority, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = np.array(matrix)
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    ax.imshow(data, cmap="Blues")
    ax.set_xticks(range(len(PRIORITIES)), PRIORITIES, rotation=30, ha="right")
    ax.set_yticks(range(len(PRIORITIES)), PRIORITIES)
    ax.set_xlabel("predicha")
    ax.set_ylabel("etiqueta")
    ax.set_title(title)
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            ax.text(j, i, str(data[i, j]), ha="center", va="center",
                    color="white" if data[i, j] > data.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
