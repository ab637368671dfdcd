"""One figure per measurement, compared with its target, and the report that collects them."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path


@dataclass
class Figure:
    """A measured value; ``target`` and ``higher_is_better`` decide pass or short."""

    name: str
    value: float
    unit: str
    target: float | None = None
    higher_is_better: bool = True
    note: str = ""

    @property
    def status(self) -> str:
        if self.target is None:
            return "info"
        ok = self.value >= self.target if self.higher_is_better else self.value <= self.target
        return "pass" if ok else "short"


LIBRARIES = ("spacy", "scikit-learn", "numpy", "fastapi", "uvicorn", "pydantic", "holidays", "lxml")


def environment() -> dict:
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "libraries": versions,
    }


def write_report(sections: dict[str, list[Figure]], out_dir: Path) -> str:
    """Write latest.json and latest.md; return the Markdown."""
    env = environment()
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"environment": env, "sections": {k: [asdict(f) | {"status": f.status} for f in v]
                                             for k, v in sections.items()}}
    (out_dir / "latest.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")
    lines = [
        "# Benchmark report",
        "",
        f"Date {env['date']}, {env['cores']} cores, Python {env['python']} ({env['machine']}); "
        + ", ".join(f"{k} {v}" for k, v in env["libraries"].items() if v) + ".",
        "",
        "Reproduce with `make bench`. Absolute times vary between machines; ratios measured in one run are the "
        "figures to trust.",
        "",
    ]
    for section, figures in sections.items():
        lines += [f"## {section}", "", *table(figures), ""]
    text = "\n".join(lines)
    (out_dir / "latest.md").write_text(text, "utf-8")
    return text


def table(figures: list[Figure]) -> list[str]:
    """One section's figures as the lines of a Markdown table."""
    lines = ["| figure | value | target | status | note |", "|---|---|---|---|---|"]
    for f in figures:
        target = "" if f.target is None else ("≥ " if f.higher_is_better else "≤ ") + _fmt(f.target)
        lines.append(f"| {f.name} | {_fmt(f.value)} {f.unit} | {target} | {f.status} | {f.note} |")
    return lines


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"
