"""The labelled corpus (``data/corpus.jsonl``): its schema, loading, and the checks that keep it honest."""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

LABELS = ("muy_alta", "alta", "media", "baja", "muy_baja")
IMPACTS = ("un_usuario", "grupo_menor_20", "grupo_20_o_mas", "varios_clientes", "desconocido")
REQUEST_TYPES = ("incidente", "acceso", "queja", "sugerencia", "desarrollo", "consulta", "incompleto", "otro")
PROFILES = ("corpus", "feedback")

# Thresholds of the ``corpus`` profile (issue: corpus of Spanish support messages).
MIN_ROWS = 2000
MIN_PER_LABEL = 400
MIN_TEST_SHARE = 0.20
MAX_VARIANT_SHARE = 0.25
MAX_NEAR_DUPLICATE_SHARE = 0.02
NEAR_DUPLICATE_OVERLAP = 0.5  # share of the smaller body's word 5-grams found in the other body


class CorpusRow(BaseModel):
    """One labelled message."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    channel: Literal["email", "chat"]
    subject: str
    body: str
    label: Literal[LABELS]  # type: ignore[valid-type]
    impact: Literal[IMPACTS]  # type: ignore[valid-type]
    request_type: Literal[REQUEST_TYPES]  # type: ignore[valid-type]
    product: str = Field(min_length=1)
    source: str = Field(pattern=r"^(hand|agent-feedback|variant-of:.+|[a-z][a-z0-9_-]*)$")
    group: str = Field(min_length=1)
    split: Literal["train", "test"]

    @model_validator(mode="after")
    def _consistent(self) -> "CorpusRow":
        if self.channel == "chat" and self.subject:
            raise ValueError("a chat message has no subject (use \"\")")
        if not self.subject.strip() and not self.body.strip():
            raise ValueError("subject and body are both empty: there is nothing to classify")
        return self

    @property
    def text(self) -> str:
        return f"{self.subject}\n{self.body}" if self.subject else self.body


@dataclass
class CheckReport:
    """What ``data check`` found: problems (each with its line) and the summary counts."""

    path: str
    profile: str
    rows: list[CorpusRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def read_corpus(path: Path) -> tuple[list[tuple[int, CorpusRow]], list[str]]:
    """Rows with their line numbers, and one problem line per unreadable or invalid line."""
    rows: list[tuple[int, CorpusRow]] = []
    problems: list[str] = []
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        return [], [f"{path}: cannot read: {exc.strerror}"]
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"line {number}: not valid JSON ({exc.msg})")
                continue
            try:
                rows.append((number, CorpusRow.model_validate(data)))
            except ValidationError as exc:
                for err in exc.errors():
                    where = ".".join(str(p) for p in err["loc"]) or "row"
                    msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
                    problems.append(f"line {number}: {where}: {msg}")
    return rows, problems


def load_rows(path: Path) -> list[CorpusRow]:
    """The valid rows of a corpus file (invalid lines are what ``data check`` reports)."""
    return [row for _, row in read_corpus(path)[0]]


def _normal(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _shingles(text: str, n: int = 5) -> set[str]:
    words = _normal(text).split()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def near_duplicate_pairs(rows: list[CorpusRow]) -> list[tuple[int, int, float]]:
    """Pairs of rows (indexes) whose bodies share most of their word 5-grams, or are equal when short."""
    shingles = [_shingles(r.body) for r in rows]
    index: dict[str, list[int]] = defaultdict(list)
    for i, grams in enumerate(shingles):
        for g in grams:
            index[g].append(i)
    shared: Counter = Counter()
    for members in index.values():
        if len(members) > 50:  # a 5-gram in many bodies is boilerplate ("mensaje reenviado"), not evidence
            continue
        for a_pos, a in enumerate(members):
            for b in members[a_pos + 1:]:
                shared[(a, b)] += 1
    pairs = []
    for (a, b), count in shared.items():
        smaller = min(len(shingles[a]), len(shingles[b]))
        if smaller and count / smaller >= NEAR_DUPLICATE_OVERLAP:
            pairs.append((a, b, count / smaller))
    short: dict[str, int] = {}
    for i, r in enumerate(rows):
        if not shingles[i]:
            key = _normal(r.body)
            if key and key in short:
                pairs.append((short[key], i, 1.0))
            short.setdefault(key, i)
    return pairs


def check_corpus(path: Path, profile: str = "corpus") -> CheckReport:
    """Validate schema, values, ids, near-duplicates and split leakage; with ``corpus`` also size and balance."""
    report = CheckReport(str(path), profile)
    numbered, report.problems = read_corpus(path)
    rows = [r for _, r in numbered]
    lines = [n for n, _ in numbered]
    report.rows = rows
    seen: dict[str, int] = {}
    for n, r in numbered:
        if r.id in seen:
            report.problems.append(f"line {n}: id {r.id!r} already used on line {seen[r.id]}")
        seen.setdefault(r.id, n)
    if profile == "feedback":
        for n, r in numbered:
            if r.source != "agent-feedback":
                report.problems.append(f"line {n}: source must be \"agent-feedback\" in a feedback export")
            if r.split != "train":
                report.problems.append(f"line {n}: feedback rows go to the train split only")
    splits_of_group: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        splits_of_group[r.group].add(r.split)
    for group, splits in sorted(splits_of_group.items()):
        if len(splits) > 1:
            first = next(n for n, r in numbered if r.group == group)
            report.problems.append(f"line {first}: group {group!r} appears in both train and test (leakage)")
    pairs = near_duplicate_pairs(rows)
    cross_group = [(a, b, s) for a, b, s in pairs if rows[a].group != rows[b].group]
    for a, b, s in cross_group:
        if rows[a].split != rows[b].split:
            report.problems.append(f"line {lines[b]}: near-duplicate of line {lines[a]} ({s:.0%} of 5-grams shared) "
                                   "in the other split (leakage): give them one group")
    near_rows = {i for a, b, _ in cross_group for i in (a, b)}
    variants = sum(1 for r in rows if r.source.startswith("variant-of:"))
    n = len(rows)
    labels = Counter(r.label for r in rows)
    test_share = sum(1 for r in rows if r.split == "test") / n if n else 0.0
    words = [len(r.body.split()) for r in rows]
    report.summary = {
        "rows": n,
        "label": dict(sorted(labels.items(), key=lambda kv: LABELS.index(kv[0]))),
        "label_by_split": {s: dict(Counter(r.label for r in rows if r.split == s)) for s in ("train", "test")},
        "channel": dict(Counter(r.channel for r in rows)),
        "impact": dict(Counter(r.impact for r in rows).most_common()),
        "request_type": dict(Counter(r.request_type for r in rows).most_common()),
        "product": dict(Counter(r.product for r in rows).most_common()),
        "split": dict(Counter(r.split for r in rows)),
        "test_share": round(test_share, 4),
        "groups": len(splits_of_group),
        "variants": variants,
        "variant_share": round(variants / n, 4) if n else 0.0,
        "near_duplicate_rows": len(near_rows),
        "near_duplicate_share": round(len(near_rows) / n, 4) if n else 0.0,
        "body_words": {
            "min": min(words, default=0), "median": statistics.median(words) if words else 0,
            "max": max(words, default=0),
            "bins": _length_bins(words),
        },
        "sha256": _file_hash(path),
    }
    if profile == "corpus":
        if n < MIN_ROWS:
            report.problems.append(f"corpus: {n} rows, at least {MIN_ROWS} expected")
        for label in LABELS:
            if labels[label] < MIN_PER_LABEL:
                report.problems.append(f"corpus: label {label} has {labels[label]} rows, at least {MIN_PER_LABEL} expected")
        if test_share < MIN_TEST_SHARE:
            report.problems.append(f"corpus: test split is {test_share:.1%}, at least {MIN_TEST_SHARE:.0%} expected")
        if n and variants / n > MAX_VARIANT_SHARE:
            report.problems.append(f"corpus: variants are {variants / n:.1%}, at most {MAX_VARIANT_SHARE:.0%} allowed")
        if n and len(near_rows) / n > MAX_NEAR_DUPLICATE_SHARE:
            report.problems.append(f"corpus: near-duplicates are {len(near_rows) / n:.1%} of rows, "
                                   f"at most {MAX_NEAR_DUPLICATE_SHARE:.0%} allowed")
    return report


def _length_bins(words: list[int]) -> dict[str, int]:
    bins = {"0": 0, "1-9": 0, "10-49": 0, "50-149": 0, "150-399": 0, "400+": 0}
    for w in words:
        key = "0" if w == 0 else "1-9" if w < 10 else "10-49" if w < 50 else "50-149" if w < 150 else \
            "150-399" if w < 400 else "400+"
        bins[key] += 1
    return bins


def _file_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def format_report(report: CheckReport) -> str:
    """Human-readable summary and problems, for stdout."""
    s = report.summary
    out = [f"{report.path} ({report.profile} profile): {s.get('rows', 0)} rows, {s.get('groups', 0)} groups"]
    if s:
        out.append("  label:        " + ", ".join(f"{k} {v}" for k, v in s["label"].items()))
        for split, counts in s["label_by_split"].items():
            out.append(f"  {split + ':':13} " + ", ".join(f"{k} {counts.get(k, 0)}" for k in LABELS))
        out.append(f"  test share:   {s['test_share']:.1%}")
        out.append("  channel:      " + ", ".join(f"{k} {v}" for k, v in s["channel"].items()))
        out.append("  impact:       " + ", ".join(f"{k} {v}" for k, v in s["impact"].items()))
        out.append("  request_type: " + ", ".join(f"{k} {v}" for k, v in s["request_type"].items()))
        out.append("  product:      " + ", ".join(f"{k} {v}" for k, v in s["product"].items()))
        b = s["body_words"]
        out.append(f"  body words:   min {b['min']}, median {b['median']}, max {b['max']}; "
                   + ", ".join(f"{k}: {v}" for k, v in b["bins"].items()))
        out.append(f"  variants:     {s['variants']} ({s['variant_share']:.1%})")
        out.append(f"  near-duplicates (across groups): {s['near_duplicate_rows']} rows ({s['near_duplicate_share']:.1%})")
    if report.problems:
        out.append(f"{len(report.problems)} problem(s):")
        out.extend(f"  {p}" for p in report.problems)
    else:
        out.append("OK")
    return "\n".join(out)
