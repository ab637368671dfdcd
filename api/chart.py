"""The quality panel's figures: agents' acceptances and changes per week and class, as a server-rendered SVG.

Built from the quality report's rows (``classifier.store.repository.quality``); no JavaScript, no charting library.
Accepted and changed bars differ by fill pattern as well as colour, and every bar has a text title.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape


@dataclass(slots=True)
class ClassWeek:
    accepted: int = 0
    changed: int = 0

    @property
    def reviewed(self) -> int:
        return self.accepted + self.changed


@dataclass(slots=True)
class ClassSummary:
    """One suggested class over the period: per week, and in total, with what agents changed it to."""

    priority: str
    weeks: dict[str, ClassWeek] = field(default_factory=dict)
    classified: int = 0
    changed_to: dict[str, int] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return sum(w.accepted for w in self.weeks.values())

    @property
    def changed(self) -> int:
        return sum(w.changed for w in self.weeks.values())

    @property
    def reviewed(self) -> int:
        return self.accepted + self.changed

    @property
    def acceptance(self) -> float | None:
        return self.accepted / self.reviewed if self.reviewed else None


@dataclass(frozen=True, slots=True)
class Change:
    """Agents changed ``count`` suggestions of ``source`` to ``target`` (``share`` of the reviewed ``source``)."""

    source: str
    target: str
    count: int
    share: float


@dataclass(frozen=True, slots=True)
class QualitySummary:
    weeks: tuple[str, ...]
    classes: tuple[ClassSummary, ...]
    changes: tuple[Change, ...]  # most frequent first


def summarise(rows: Sequence[Mapping], priorities: Sequence[str]) -> QualitySummary:
    """Per class and week from the quality report's cells (week, suggested priority, accepted, changed_to)."""
    classes = {p: ClassSummary(p) for p in priorities}
    weeks = sorted({row["week"] for row in rows})
    for row in rows:
        summary = classes.setdefault(row["priority"], ClassSummary(row["priority"]))
        cell = summary.weeks.setdefault(row["week"], ClassWeek())
        cell.accepted += row["accepted"]
        cell.changed += sum(row["changed_to"].values())
        summary.classified += row["classified"]
        for target, count in row["changed_to"].items():
            summary.changed_to[target] = summary.changed_to.get(target, 0) + count
    changes = sorted((Change(s.priority, target, count, count / s.reviewed)
                      for s in classes.values() for target, count in s.changed_to.items()),
                     key=lambda c: (-c.count, c.source, c.target))
    return QualitySummary(tuple(weeks), tuple(classes.values()), tuple(changes))


def week_label(week: str) -> str:
    """'2026-W49' as 'sem. 49'."""
    return f"sem. {int(week.rsplit('W', 1)[-1])}"


ACCEPTED_FILL = "#1f6f43"
CHANGED_STROKE = "#9a3412"
INK, MUTED, AXIS = "#1d2430", "#3b4656", "#6b7686"


@dataclass(frozen=True, slots=True)
class Layout:
    """Where things go: wide (class names left of their row) or narrow (names above it, for phones)."""

    width: int
    left: int  # where bars start
    label_above: bool
    panel: int = 64  # height of one class's bars
    gap: int = 34  # below a row: week labels, and in the narrow layout the next row's name
    top: int = 44  # legend


WIDE = Layout(760, 118, False)
NARROW = Layout(380, 8, True, panel=56, gap=70)


def svg(summary: QualitySummary, names: Mapping[str, str], *, layout: Layout = WIDE, ident: str = "grafico"
        ) -> Markup:
    """Small multiples, one row per class: for each week a bar of the suggestions agents reviewed, split into
    accepted (solid) and changed (hatched), on one scale per row; the row's label gives its acceptance. ``ident``
    keeps the ids apart when a page holds more than one chart."""
    weeks = summary.weeks or ("",)
    width, left = layout.width, layout.left
    inner = width - left - 12
    slot = inner / len(weeks)
    bar = max(3.0, min(34.0, slot * 0.62))
    label_every = max(1, round(len(weeks) * 60 / inner))  # week labels at least 60 units apart
    first = layout.top + (36 if layout.label_above else 0)
    height = first + len(summary.classes) * (layout.panel + layout.gap) - (36 if layout.label_above else 0)
    pattern = f"{ident}-rayado"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
           f'aria-labelledby="{ident}-titulo {ident}-desc" class="chart">',
           f'<title id="{ident}-titulo">Aceptadas y cambiadas por semana y clase</title>',
           f'<desc id="{ident}-desc">Para cada prioridad sugerida, una barra por semana con las sugerencias que '
           'los agentes revisaron: la parte sólida son las aceptadas y la rayada las cambiadas. La tabla siguiente '
           'da las mismas cifras.</desc>',
           f'<defs><pattern id="{pattern}" width="6" height="6" patternUnits="userSpaceOnUse" '
           'patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff"/>'
           f'<line x1="0" y1="0" x2="0" y2="6" stroke="{CHANGED_STROKE}" stroke-width="3"/></pattern></defs>',
           # legend: the swatches differ by pattern, and each has its word
           f'<rect x="{left}" y="10" width="16" height="16" fill="{ACCEPTED_FILL}"/>',
           f'<text x="{left + 22}" y="23" font-size="14" fill="{INK}">aceptadas</text>',
           f'<rect x="{left + 120}" y="10" width="16" height="16" fill="url(#{pattern})" stroke="{CHANGED_STROKE}"/>',
           f'<text x="{left + 142}" y="23" font-size="14" fill="{INK}">cambiadas</text>']
    for row, cls in enumerate(summary.classes):
        top = first + row * (layout.panel + layout.gap)
        base = top + layout.panel
        peak = max((w.reviewed for w in cls.weeks.values()), default=0)
        name = escape(names.get(cls.priority, cls.priority))
        rate = (f"{cls.acceptance * 100:.0f} % aceptadas de {cls.reviewed}" if cls.acceptance is not None
                else "sin revisiones")
        scale = f"máx. {peak} por semana" if peak else ""
        if layout.label_above:
            out.append(f'<text x="{left}" y="{top - 22}" font-size="14" font-weight="bold" fill="{INK}">{name}'
                       f'<tspan font-weight="normal" font-size="13" fill="{MUTED}"> · {escape(rate)}'
                       f'{" · " + scale if scale else ""}</tspan></text>')
        else:
            out.append(f'<text x="0" y="{top + 18}" font-size="14" font-weight="bold" fill="{INK}">{name}</text>')
            out.append(f'<text x="0" y="{top + 36}" font-size="12" fill="{MUTED}">{escape(rate)}</text>')
            if scale:
                out.append(f'<text x="0" y="{top + 52}" font-size="12" fill="{MUTED}">{scale}</text>')
        out.append(f'<line x1="{left}" y1="{base}" x2="{width - 12}" y2="{base}" stroke="{AXIS}"/>')
        for k, week in enumerate(weeks):
            cell = cls.weeks.get(week, ClassWeek())
            x = left + k * slot + (slot - bar) / 2
            if cell.reviewed and peak:
                h_acc = layout.panel * cell.accepted / peak
                h_chg = layout.panel * cell.changed / peak
                tip = escape(f"{names.get(cls.priority, cls.priority)}, {week_label(week)}: {cell.accepted} "
                             f"aceptadas, {cell.changed} cambiadas")
                out.append(f'<g><title>{tip}</title>')
                if h_acc:
                    out.append(f'<rect x="{x:.1f}" y="{base - h_acc:.1f}" width="{bar:.1f}" height="{h_acc:.1f}" '
                               f'fill="{ACCEPTED_FILL}"/>')
                if h_chg:
                    out.append(f'<rect x="{x:.1f}" y="{base - h_acc - h_chg:.1f}" width="{bar:.1f}" '
                               f'height="{h_chg:.1f}" fill="url(#{pattern})" stroke="{CHANGED_STROKE}"/>')
                out.append('</g>')
            if week and k % label_every == 0:
                out.append(f'<text x="{x + bar / 2:.1f}" y="{base + 16}" font-size="12" text-anchor="middle" '
                           f'fill="{MUTED}">{escape(week_label(week))}</text>')
    out.append("</svg>")
    return Markup("".join(out))
