"""The labelled corpus (``data/corpus.jsonl``): its schema, loading, and the checks that keep it honest."""

from __future__ import annotations

import hashlib
import json
import math
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from classifier.messages import field_message, json_message, os_message
from classifier.policy import PRIORITIES

IMPACTS = ("un_usuario", "grupo_menor_20", "grupo_20_o_mas", "varios_clientes", "desconocido")
REQUEST_TYPES = ("incidente", "acceso", "queja", "sugerencia", "desarrollo", "consulta", "incompleto", "otro")
PROFILES = ("corpus", "feedback")
# How a message is written (corpus v2): every label appears in every style at similar rates.
STYLES = ("hablado", "chat", "correo", "correo_largo", "resena", "tuit", "ticket")
OUTSIDE_PREFIX = "ext_"  # products of other services people write to (ext_salud, ext_banca, ...)

# Thresholds of the ``corpus`` profile (issue: corpus of Spanish support messages).
MIN_ROWS = 2000
MIN_PER_LABEL = 400
MIN_TEST_SHARE = 0.20
MAX_VARIANT_SHARE = 0.25
MAX_NEAR_DUPLICATE_SHARE = 0.02
MAX_SHORTCUT_MACRO_F1 = 0.40  # surface features alone (length, greeting, punctuation...) must not tell the label
MIN_OUTSIDE_SHARE = 0.15      # of each label, messages about other services
MAX_OUTSIDE_DOMAIN_SHARE = 1 / 3  # no single outside domain over a third of that share
MIN_PER_LABEL_AND_STYLE = 20
NEAR_DUPLICATE_OVERLAP = 0.5  # share of the smaller body's word 5-grams found in the other body


class CorpusRow(BaseModel):
    """One labelled message."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    channel: Literal["email", "chat"]
    subject: str
    body: str
    label: Literal[PRIORITIES]  # type: ignore[valid-type]
    impact: Literal[IMPACTS]  # type: ignore[valid-type]
    request_type: Literal[REQUEST_TYPES]  # type: ignore[valid-type]
    product: str = Field(min_length=1)
    source: str = Field(pattern=r"^(hand|agent-feedback|variant-of:.+|[a-z][a-z0-9_-]*)$")
    group: str = Field(min_length=1)
    split: Literal["train", "test"]
    style: Literal[STYLES] | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _consistent(self) -> "CorpusRow":
        if self.channel == "chat" and self.subject:
            raise ValueError("un mensaje de chat no lleva asunto (use \"\")")
        if not self.subject.strip() and not self.body.strip():
            raise ValueError("el asunto y el cuerpo están vacíos: no hay nada que clasificar")
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
    contradicts_corpus: int | None = None  # feedback rows relabelling a corpus text (with a reference corpus)

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
        return [], [f"{path}: no se puede leer: {os_message(exc)}"]
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"línea {number}: no es JSON válido ({json_message(exc)})")
                continue
            try:
                rows.append((number, CorpusRow.model_validate(data)))
            except ValidationError as exc:
                for err in exc.errors():
                    problems.append(f"línea {number}: {_row_problem(err)}")
    return rows, problems


def _row_problem(err: dict) -> str:
    """'label: valor no permitido: use ...' for one pydantic error on a corpus line."""
    where = ".".join(str(p) for p in err["loc"]) or "fila"
    return f"{where}: {'campo desconocido' if err['type'] == 'extra_forbidden' else field_message(err)}"


def load_rows(path: Path) -> list[CorpusRow]:
    """The valid rows of a corpus file (invalid lines are what ``data check`` reports)."""
    return [row for _, row in read_corpus(path)[0]]


class LabelledMessage(BaseModel):
    """A message with a policy label, as evaluation files hold it: the corpus schema, or only ``id``, ``channel``,
    ``subject``, ``body`` and ``label`` with any other fields (real messages: ``intent``, ``why``) ignored."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1)
    channel: Literal["email", "chat"] = "chat"
    subject: str = ""
    body: str = ""
    label: Literal[PRIORITIES]  # type: ignore[valid-type]
    impact: Literal[IMPACTS] = "desconocido"  # type: ignore[valid-type]
    style: str | None = None

    @property
    def text(self) -> str:
        return f"{self.subject}\n{self.body}" if self.subject else self.body


def load_labelled(path: Path) -> list[LabelledMessage]:
    """Every line of an evaluation file; a line that is not a labelled message is an error naming its number."""
    out = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                out.append(LabelledMessage.model_validate_json(line))
            except ValidationError as exc:
                raise ValueError(f"{path}: línea {number}: {_row_problem(exc.errors()[0])}") from None
    return out


# ------------------------------------------------------------------------------------ shortcut check

_GREETING = re.compile(r"^\W*(?:hola|ola|buen[oa]s?|saludos|cordial|estimad|respetad|apreciad|se[ñn]or|qu[eé]\s+tal|"
                       r"muy\s+buen|al[oó]\b)", re.IGNORECASE)
_SIGN_OFF = re.compile(r"(?:gracias|atent[oa]s?|saludos|cordialmente|atentamente|bendiciones|feliz\s+d[ií]a|"
                       r"quedo\s+pendiente)\W*$", re.IGNORECASE)
_ACCENTED = frozenset("áéíóúüñÁÉÍÓÚÜÑ")
SURFACE_FEATURES = ("log_chars", "log_words", "greeting", "sign_off", "punctuation", "accents", "capitals",
                    "email", "line_breaks")


def opens_with_greeting(row) -> bool:
    return bool(_GREETING.match((row.body or row.subject).strip()))


def surface_features(row) -> list[float]:
    """How a message looks, with nothing of what it says: what a label must not be readable from."""
    text = f"{row.subject}\n{row.body}".strip()
    size = max(len(text), 1)
    letters = [c for c in text if c.isalpha()]
    n_letters = max(len(letters), 1)
    return [math.log1p(len(text)), math.log1p(len(text.split())), float(opens_with_greeting(row)),
            float(bool(_SIGN_OFF.search(text[-40:]))),
            sum(not c.isalnum() and not c.isspace() for c in text) / size,
            sum(c in _ACCENTED for c in letters) / n_letters, sum(c.isupper() for c in letters) / n_letters,
            float(row.channel == "email"), 100 * text.count("\n") / size]


def shortcut_score(rows: list[CorpusRow], *, folds: int = 5) -> float:
    """Macro-F1 of a small gradient-boosted model that sees only ``surface_features``, in grouped
    cross-validation (chance is 0.20): what a text model could score without reading the policy."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    if len({r.label for r in rows}) < 2 or len({r.group for r in rows}) < folds:
        return 0.0
    features = np.array([surface_features(r) for r in rows])
    labels = np.array([r.label for r in rows])
    model = HistGradientBoostingClassifier(max_depth=3, max_iter=100, class_weight="balanced", random_state=0)
    with threadpool_limits(limits=1, user_api="openmp"):  # nine features: extra threads only spin (corpus: 14 s -> 4 s)
        predicted = cross_val_predict(model, features, labels, groups=[r.group for r in rows], cv=GroupKFold(folds))
    return float(f1_score(labels, predicted, average="macro"))


def label_shape(rows) -> dict[str, dict]:
    """Per label: character-length quartiles and the share that opens with a greeting."""
    import numpy as np

    out = {}
    for label in PRIORITIES:
        mine = [r for r in rows if r.label == label]
        if not mine:
            continue
        lengths = [len(f"{r.subject}\n{r.body}".strip()) for r in mine]
        q1, q2, q3 = (int(v) for v in np.percentile(lengths, [25, 50, 75]))
        out[label] = {"chars_q1": q1, "chars_median": q2, "chars_q3": q3,
                      "greeting_share": round(sum(map(opens_with_greeting, mine)) / len(mine), 4)}
    return out


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


MAX_CONTRADICTIONS = 0.10  # a feedback file relabelling more of the corpus's own texts than this is refused


def contradictions(feedback: list[CorpusRow], corpus: list[CorpusRow]) -> list[tuple[CorpusRow, CorpusRow]]:
    """(feedback row, corpus row) pairs with the same text (case, accents aside from punctuation) and another
    label: an agent may correct the corpus, but many such rows are more likely a mistake or poisoning."""
    labelled = {_normal(r.subject + " " + r.body): r for r in corpus}
    return [(r, labelled[key]) for r in feedback
            if (key := _normal(r.subject + " " + r.body)) in labelled and labelled[key].label != r.label]


def check_corpus(path: Path, profile: str = "corpus", *, reference: Path | None = None) -> CheckReport:
    """Validate schema, values, ids, near-duplicates and split leakage; with ``corpus`` also size and balance; with
    ``feedback`` and a ``reference`` corpus, how many rows relabel the corpus's own texts."""
    report = CheckReport(str(path), profile)
    numbered, report.problems = read_corpus(path)
    rows = [r for _, r in numbered]
    lines = [n for n, _ in numbered]
    report.rows = rows
    seen: dict[str, int] = {}
    for n, r in numbered:
        if r.id in seen:
            report.problems.append(f"línea {n}: el id {r.id!r} ya se usó en la línea {seen[r.id]}")
        seen.setdefault(r.id, n)
    if profile == "feedback":
        for n, r in numbered:
            if r.source != "agent-feedback":
                report.problems.append(f"línea {n}: source debe ser \"agent-feedback\" en una exportación de "
                                       "correcciones")
            if r.split != "train":
                report.problems.append(f"línea {n}: las correcciones van solo a la partición train")
        if reference is not None and Path(reference).exists():
            against = contradictions(rows, load_rows(Path(reference)))
            share = len(against) / len(rows) if rows else 0.0
            report.contradicts_corpus = len(against)
            if len(against) > 5 and share > MAX_CONTRADICTIONS:
                shown = ", ".join(f"{f.id} ({f.label}, corpus {c.id}: {c.label})" for f, c in against[:5])
                report.problems.append(
                    f"{len(against)} de {len(rows)} correcciones ({share:.0%}, más del {MAX_CONTRADICTIONS:.0%}) dan "
                    f"otra etiqueta a un texto que el corpus ya etiqueta: revíselas antes de entrenar ({shown}, ...)")
    splits_of_group: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        splits_of_group[r.group].add(r.split)
    for group, splits in sorted(splits_of_group.items()):
        if len(splits) > 1:
            first = next(n for n, r in numbered if r.group == group)
            report.problems.append(f"línea {first}: el grupo {group!r} está a la vez en train y en test (fuga)")
    pairs = near_duplicate_pairs(rows)
    cross_group = [(a, b, s) for a, b, s in pairs if rows[a].group != rows[b].group]
    for a, b, s in cross_group:
        if rows[a].split != rows[b].split:
            report.problems.append(f"línea {lines[b]}: casi igual a la línea {lines[a]} ({s:.0%} de 5-gramas en "
                                   "común) en la otra partición (fuga): póngalas en un mismo grupo")
    near_rows = {i for a, b, _ in cross_group for i in (a, b)}
    variants = sum(1 for r in rows if r.source.startswith("variant-of:"))
    n = len(rows)
    labels = Counter(r.label for r in rows)
    test_share = sum(1 for r in rows if r.split == "test") / n if n else 0.0
    words = [len(r.body.split()) for r in rows]
    report.summary = {
        "rows": n,
        "label": dict(sorted(labels.items(), key=lambda kv: PRIORITIES.index(kv[0]))),
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
        "style": {style: dict(Counter(r.label for r in rows if r.style == style)) for style in STYLES
                  if any(r.style == style for r in rows)},
        "outside_share": {label: round(sum(1 for r in rows if r.label == label and r.product.startswith(OUTSIDE_PREFIX))
                                       / max(labels[label], 1), 4) for label in PRIORITIES},
        "outside_domains": dict(Counter(r.product for r in rows if r.product.startswith(OUTSIDE_PREFIX)).most_common()),
        "shape": label_shape(rows),
        "shortcut_macro_f1": round(shortcut_score(rows), 4) if n else 0.0,
    }
    if profile == "corpus":
        if n < MIN_ROWS:
            report.problems.append(f"corpus: {n} filas; se esperan al menos {MIN_ROWS}")
        for label in PRIORITIES:
            if labels[label] < MIN_PER_LABEL:
                report.problems.append(f"corpus: la etiqueta {label} tiene {labels[label]} filas; se esperan al menos "
                                       f"{MIN_PER_LABEL}")
        if test_share < MIN_TEST_SHARE:
            report.problems.append(f"corpus: la partición test es el {test_share:.1%}; se espera al menos el "
                                   f"{MIN_TEST_SHARE:.0%}")
        if n and variants / n > MAX_VARIANT_SHARE:
            report.problems.append(f"corpus: las variantes son el {variants / n:.1%}; se admite como máximo el "
                                   f"{MAX_VARIANT_SHARE:.0%}")
        if n and len(near_rows) / n > MAX_NEAR_DUPLICATE_SHARE:
            report.problems.append(f"corpus: las filas casi iguales son el {len(near_rows) / n:.1%}; se admite como "
                                   f"máximo el {MAX_NEAR_DUPLICATE_SHARE:.0%}")
        report.problems.extend(_balance_problems(rows, numbered, report.summary))
    return report


def _balance_problems(rows: list[CorpusRow], numbered, summary: dict) -> list[str]:
    """Corpus v2: a style on every row, every label in every style, outside services in every label, and no
    label readable from surface features alone."""
    problems = []
    missing = [n for n, r in numbered if r.style is None]
    if missing:
        problems.append(f"corpus: {len(missing)} filas sin estilo (la primera en la línea {missing[0]})")
    for style, counts in summary["style"].items():
        for label in PRIORITIES:
            if counts.get(label, 0) < MIN_PER_LABEL_AND_STYLE:
                problems.append(f"corpus: el estilo {style} tiene {counts.get(label, 0)} filas {label}; se esperan "
                                f"al menos {MIN_PER_LABEL_AND_STYLE}")
    for label, share in summary["outside_share"].items():
        if share < MIN_OUTSIDE_SHARE:
            problems.append(f"corpus: el {share:.1%} de {label} trata de otros servicios; se espera al menos el "
                            f"{MIN_OUTSIDE_SHARE:.0%}")
    outside = sum(summary["outside_domains"].values())
    for domain, count in summary["outside_domains"].items():
        if count / outside > MAX_OUTSIDE_DOMAIN_SHARE:
            problems.append(f"corpus: {domain} es el {count / outside:.0%} de los mensajes de otros servicios; se "
                            f"admite como máximo el {MAX_OUTSIDE_DOMAIN_SHARE:.0%}")
    if summary["shortcut_macro_f1"] > MAX_SHORTCUT_MACRO_F1:
        problems.append(f"corpus: la forma sola (longitud, saludos, puntuación…) alcanza macro-F1 "
                        f"{summary['shortcut_macro_f1']:.3f} (máximo {MAX_SHORTCUT_MACRO_F1:.2f}): delata la "
                        "etiqueta; añada mensajes que rompan el patrón (vea la forma por etiqueta arriba)")
    return problems


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
    out = [f"{report.path} (perfil {report.profile}): {s.get('rows', 0)} filas, {s.get('groups', 0)} grupos"]
    if report.contradicts_corpus is not None:
        out.append(f"  reetiquetan textos del corpus: {report.contradicts_corpus}")
    if s:
        out.append("  etiqueta:         " + ", ".join(f"{k} {v}" for k, v in s["label"].items()))
        for split, counts in s["label_by_split"].items():
            out.append(f"  {split + ':':17} " + ", ".join(f"{k} {counts.get(k, 0)}" for k in PRIORITIES))
        out.append(f"  parte en test:    {s['test_share']:.1%}")
        out.append("  canal:            " + ", ".join(f"{k} {v}" for k, v in s["channel"].items()))
        out.append("  impacto:          " + ", ".join(f"{k} {v}" for k, v in s["impact"].items()))
        out.append("  tipo de solicitud: " + ", ".join(f"{k} {v}" for k, v in s["request_type"].items()))
        out.append("  producto:         " + ", ".join(f"{k} {v}" for k, v in s["product"].items()))
        b = s["body_words"]
        out.append(f"  palabras del cuerpo: mín. {b['min']}, mediana {b['median']}, máx. {b['max']}; "
                   + ", ".join(f"{k}: {v}" for k, v in b["bins"].items()))
        if s["style"]:
            out.append("  estilo:           "
                       + "; ".join(f"{style} {sum(c.values())}" for style, c in s["style"].items()))
        out.append("  otros servicios, parte de cada etiqueta: "
                   + ", ".join(f"{k} {v:.1%}" for k, v in s["outside_share"].items()))
        if s["outside_domains"]:
            out.append("  dominios de otros servicios: "
                       + ", ".join(f"{k} {v}" for k, v in s["outside_domains"].items()))
        out.append("  forma por etiqueta (caracteres q1/mediana/q3; parte que abre con un saludo):")
        for label, shape in s["shape"].items():
            out.append(f"    {label:9} {shape['chars_q1']:>5} /{shape['chars_median']:>5} /{shape['chars_q3']:>5}   "
                       f"saludo {shape['greeting_share']:.0%}")
        out.append(f"  atajo de forma: los rasgos de superficie solos alcanzan macro-F1 "
                   f"{s['shortcut_macro_f1']:.3f} en validación cruzada agrupada de 5 pliegues (azar 0.20; "
                   f"máximo {MAX_SHORTCUT_MACRO_F1:.2f})")
        out.append(f"  variantes:        {s['variants']} ({s['variant_share']:.1%})")
        out.append(f"  casi iguales (entre grupos): {s['near_duplicate_rows']} filas ({s['near_duplicate_share']:.1%})")
    if report.problems:
        count = len(report.problems)
        out.append(f"{count} problema{'s' if count != 1 else ''}:")
        out.extend(f"  {p}" for p in report.problems)
    else:
        out.append("OK")
    return "\n".join(out)


# ------------------------------------------------------------------------------------ growing the corpus

def merge_new_rows(corpus: list[CorpusRow], new: list[dict], *, test_share: float = 0.22,
                   seed: int = 0) -> tuple[list[CorpusRow], list[str]]:
    """Add newly written rows (corpus fields without ``group`` and ``split``) to a corpus, keeping the corpus as it
    is. New rows that near-duplicate one another form one group; a group that near-duplicates corpus rows joins
    their group and split, and is left out (its ids returned) when those rows sit in both splits. About
    ``test_share`` of each label's other new groups go to ``test`` (seeded)."""
    import random

    seen_ids = {r.id for r in corpus}
    drafts = []
    for raw in new:
        if raw["id"] in seen_ids:
            raise ValueError(f"el id {raw['id']!r} ya está en el corpus")
        seen_ids.add(raw["id"])
        drafts.append(CorpusRow.model_validate({**raw, "group": f"g-{raw['id']}", "split": "train"}))
    rows = list(corpus) + drafts
    first_new = len(corpus)
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    links: dict[int, list[int]] = defaultdict(list)  # new row → corpus rows it near-duplicates
    for a, b, _ in near_duplicate_pairs(rows):
        a, b = min(a, b), max(a, b)
        if a >= first_new:
            ra, rb = find(a), find(b)
            parent[max(ra, rb)] = min(ra, rb)
        elif b >= first_new:
            links[b].append(a)
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(first_new, len(rows)):
        members[find(i)].append(i)
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = defaultdict(list)
    anchors: dict[int, CorpusRow] = {}
    dropped: list[str] = []
    for root in sorted(members, key=lambda r: rows[r].id):
        linked = [rows[c] for i in members[root] for c in links.get(i, ())]
        if len({c.split for c in linked}) > 1:
            dropped.extend(rows[i].id for i in members[root])
        elif linked:
            anchors[root] = linked[0]
        else:
            by_label[rows[root].label].append(root)
    test_roots = set()
    for roots in by_label.values():
        rng.shuffle(roots)
        test_roots.update(roots[: round(len(roots) * test_share)])
    out = list(corpus)
    for root, indexes in members.items():
        if rows[root].id in dropped:
            continue
        anchor = anchors.get(root)
        group = anchor.group if anchor else rows[root].group
        split = anchor.split if anchor else ("test" if root in test_roots else "train")
        out.extend(rows[i].model_copy(update={"group": group, "split": split}) for i in indexes)
    return out, dropped
