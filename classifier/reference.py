"""The plain reference model that checks the corpus itself (not the product's model).

TF-IDF over words (1–2-grams) and characters (``char_wb``, 2–5-grams), both ``sublinear_tf=True, min_df=2``,
joined, then ``LogisticRegression(C=4, max_iter=2000)``, trained on ``train`` and scored on ``test``.
"""

from __future__ import annotations

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import classification_report, f1_score
from sklearn.pipeline import FeatureUnion, make_pipeline

from classifier.corpus import CorpusRow
from classifier.policy import PRIORITIES


def reference_pipeline():
    features = FeatureUnion([
        ("palabras", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)),
        ("caracteres", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)),
    ])
    return make_pipeline(features, LogisticRegression(C=4, max_iter=2000))


def evaluate_reference(rows: list[CorpusRow], held_out: list[CorpusRow] | None = None) -> dict:
    """Train on the train split, score macro-F1 and per-class figures on the test split (or ``held_out``)."""
    train = [r for r in rows if r.split == "train"]
    test = held_out if held_out is not None else [r for r in rows if r.split == "test"]
    model = reference_pipeline().fit([r.text for r in train], [r.label for r in train])
    predicted = model.predict([r.text for r in test])
    truth = [r.label for r in test]
    return {
        "train": len(train),
        "test": len(test),
        "macro_f1": round(float(f1_score(truth, predicted, average="macro")), 4),
        "report": classification_report(truth, predicted, labels=list(PRIORITIES), digits=3, zero_division=0),
    }
