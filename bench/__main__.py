"""Run every benchmark and write the report: ``python -m bench [name ...]``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from bench.report import write_report

BENCHMARKS = {
    "Deadlines (business calendar)": "bench.bench_sla",
    "Scoring (one core)": "bench.bench_text",
    "HTTP service": "bench.bench_http",
    "Training": "bench.bench_training",
    "Hostile e-mails": "bench.bench_email",
    "Several machines (two instances, one PostgreSQL)": "bench.bench_fleet",
}


def main(argv: list[str]) -> int:
    wanted = set(argv)
    sections = {}
    for title, module in BENCHMARKS.items():
        if wanted and module.rsplit(".", 1)[-1] not in wanted and title not in wanted:
            continue
        print(f"running {title} ...", file=sys.stderr, flush=True)
        sections[title] = importlib.import_module(module).run()
    print(write_report(sections, Path("bench/results")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
