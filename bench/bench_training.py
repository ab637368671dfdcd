"""Training time on the corpus and on a corpus ten times larger (the same rows, repeated), one process."""

from __future__ import annotations

import time

from bench.report import Figure
from classifier.corpus import load_rows
from classifier.model_input import ModelInputBuilder
from classifier.rule_engine import RuleEngine
from classifier.settings import get_settings
from classifier.training import DEFAULT_PARAMS, fit_bundle, prepare


def run() -> list[Figure]:
    settings = get_settings()
    rows = [r for r in load_rows(settings.corpus_path) if r.split == "train"]
    rules = RuleEngine.from_dir(settings.rules_dir)
    model_input = ModelInputBuilder.beside_rules(settings.rules_dir)
    figures = []
    times = {}
    for factor in (1, 10):
        data = rows * factor
        start = time.perf_counter()
        inputs = [p[0] for p in prepare(data, rules, model_input)]
        prepared = time.perf_counter() - start
        fit_bundle(inputs, data, DEFAULT_PARAMS)
        times[factor] = time.perf_counter() - start
        figures.append(Figure(f"training on {len(data):,} messages ({factor}× the train split)", times[factor], "s",
                              note=f"of which clean-up and rules {prepared:.1f} s"))
    figures.append(Figure("training time growth for 10× the data", times[10] / times[1], "×",
                          note="linear would be 10"))
    return figures
