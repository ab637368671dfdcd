"""The corpus passes its own check, and the plain reference model clears the bar on the test split."""

from __future__ import annotations

from classifier.corpus import check_corpus, load_rows
from classifier.reference import evaluate_reference
from tests.conftest import ROOT

CORPUS = ROOT / "data/corpus.jsonl"


def test_corpus_check_passes():
    report = check_corpus(CORPUS, "corpus")
    assert report.ok, report.problems
    assert report.summary["rows"] >= 2000 and min(report.summary["label"].values()) >= 400
    assert report.summary["test_share"] >= 0.20 and report.summary["near_duplicate_share"] <= 0.02


def test_test_groups_never_appear_in_train():
    rows = load_rows(CORPUS)
    train = {r.group for r in rows if r.split == "train"}
    assert not train & {r.group for r in rows if r.split == "test"}


def test_reference_model_reaches_macro_f1_085_on_test():
    assert evaluate_reference(load_rows(CORPUS))["macro_f1"] >= 0.85


def test_datasheet_figures_match_the_check():
    summary = check_corpus(CORPUS, "corpus").summary
    datasheet = (ROOT / "data/README.md").read_text("utf-8")
    assert f"{summary['rows']:,}".replace(",", " ") in datasheet or str(summary["rows"]) in datasheet
    for label, count in summary["label"].items():
        assert f"| `{label}` | {count} |" in datasheet, label


def test_independent_validation_set_is_well_formed_and_balanced():
    from collections import Counter

    from classifier.corpus import read_corpus

    rows, problems = read_corpus(ROOT / "data/external.jsonl")
    assert not problems
    assert len(rows) == 250 and set(Counter(r.label for _, r in rows).values()) == {50}
    assert all(r.split == "test" for _, r in rows)
