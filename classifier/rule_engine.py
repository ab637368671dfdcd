"""Priority rules as data (``rules/prioridad/*.yaml``), matched with spaCy over the cleaned message.

Every rule is an id, the priority it supports, a Spanish description for agents and spaCy patterns: a
string is a phrase (``PhraseMatcher`` on ``LOWER``), a list of token dicts is a ``Matcher`` pattern.
Context cues (``rules/contexto.yaml``) switch hits off when they are negated ("no es que esté caído"),
hypothetical ("¿qué pasa si se cae?") or already resolved ("ya quedó").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from spacy.tokens import Doc

from classifier.clean import CleanText, fold, spanish
from classifier.errors import ConfigError, Errors
from classifier.impact import ImpactFile, ImpactFinder, ImpactResult, read_impact_file
from classifier.patterns import CompiledPatterns, fold_pattern, group
from classifier.policy import DECISION_ORDER, FAILURES, PRIORITIES
from classifier.yamlfile import TOP_LEVEL, describe_validation, read_yaml

_HAS_LETTER = re.compile(r"[^\W\d_]")
REQUEST_TYPES = ("incidente", "acceso", "queja", "sugerencia", "desarrollo", "consulta", "incompleto", "otro")
CONTEXT_KINDS = ("negacion", "hipotetico", "resuelto")
CUE = "contexto:"  # key prefix of context cues in the engine's compiled set
_STRING_KEYS = {"LOWER", "NORM", "TEXT", "ORTH", "LEMMA"}

Pattern = str | list[dict[str, Any]]


class Examples(BaseModel):
    model_config = ConfigDict(extra="forbid")
    match: list[str] = []
    no_match: list[str] = []


class RuleSpec(BaseModel):
    """One rule as written in YAML."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    priority: Literal[PRIORITIES]  # type: ignore[valid-type]
    description: str = Field(min_length=5)
    request_type: Literal[REQUEST_TYPES] | None = None  # type: ignore[valid-type]
    kind: Literal["patrones", "incompleto"] = "patrones"
    decisive: bool = True
    context: list[Literal[CONTEXT_KINDS]] = list(CONTEXT_KINDS)  # type: ignore[valid-type]
    patterns: list[Pattern] = []
    filler: list[str] = []
    max_content_words: int = 0
    yields_to: list[str] = []  # an "incompleto" rule does not fire when one of these rules did (thanks, a closure)
    examples: Examples = Examples()


class ContextSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window: int = Field(4, ge=0, le=50)
    patterns: list[Pattern]


class ContextFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    negacion: ContextSpec
    hipotetico: ContextSpec
    resuelto: ContextSpec


@dataclass(frozen=True, slots=True)
class Evidence:
    """Words that triggered a rule, on the original text."""

    text: str
    start: int
    end: int
    field: str

    def as_dict(self) -> dict:
        return {"text": self.text, "start": self.start, "end": self.end, "field": self.field}


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that fired (or was switched off by context), with its evidence."""

    rule_id: str
    priority: str
    description: str
    request_type: str | None
    decisive: bool
    evidence: tuple[Evidence, ...]
    suppressed_by: str | None = None

    def as_dict(self) -> dict:
        return {
            "id": self.rule_id,
            "priority": self.priority,
            "description": self.description,
            "decisive": self.decisive,
            "evidence": [e.as_dict() for e in self.evidence],
            **({"suppressed_by": self.suppressed_by} if self.suppressed_by else {}),
        }


@dataclass(frozen=True, slots=True)
class RuleResult:
    """What the rules say about one message."""

    hits: tuple[RuleHit, ...]
    suppressed: tuple[RuleHit, ...]
    priority: str | None
    deciding: RuleHit | None
    impact: ImpactResult | None  # None: not looked for (no failure rule fired)
    request_type: str | None
    impact_cues: dict[str, tuple[int, int]] = field(default_factory=dict)  # impact group → its first cue's tokens

    @property
    def fired_ids(self) -> list[str]:
        return [h.rule_id for h in self.hits]


@dataclass
class Rule:
    spec: RuleSpec
    source: Path
    filler: frozenset[str] = field(default_factory=frozenset)


def _bool_problems(pattern: Any, where: str) -> list[str]:
    """YAML reads a bare no/yes/on/off as a boolean; Spanish negation lives on "no"."""
    problems = []
    if isinstance(pattern, list):
        for i, token in enumerate(pattern):
            if isinstance(token, dict):
                for key, value in token.items():
                    values = value if isinstance(value, list) else (
                        [x for v in value.values() for x in (v if isinstance(v, list) else [v])]
                        if isinstance(value, dict) else [value])
                    for v in values:
                        if isinstance(v, bool) and key.upper() in _STRING_KEYS:
                            problems.append(f"{where}[{i}].{key}: debe ser texto; se recibió {v!r}. "
                                            "Escriba \"no\" (o \"si\") entre comillas.")
    return problems


class RuleEngine:
    """Loads, validates and runs the priority rules, context cues and impact cues."""

    def __init__(self, rules: list[Rule], context: ContextFile, impact: ImpactFile, *, impact_source: Path,
                 sources: list[Path] = ()):
        self.nlp = spanish()
        self.rules = {r.spec.id: r for r in rules}
        self.incomplete_rules = [r for r in rules if r.spec.kind == "incompleto"]  # tried on every message
        self.sources = list(sources)
        # Rules, context cues ("contexto:<kind>") and impact cues ("impacto:<group>") in one compiled set: one pass
        # over a message finds them all (rule ids are [a-z0-9_], so the keys never clash).
        self.patterns = CompiledPatterns(self.nlp.vocab)
        self.windows = {kind: getattr(context, kind).window for kind in CONTEXT_KINDS}
        problems: list[str] = []
        for rule in rules:
            for i, pattern in enumerate(rule.spec.patterns):
                self._add(self.patterns, rule.spec.id, pattern, problems,
                          where=(rule.source, rule.spec.id, f"patterns[{i}]"))
        for kind in CONTEXT_KINDS:
            for i, pattern in enumerate(getattr(context, kind).patterns):
                self._add(self.patterns, CUE + kind, pattern, problems,
                          where=(Path("rules/contexto.yaml"), kind, f"patterns[{i}]"))
        try:
            self.impact = ImpactFinder(impact, impact_source, self.patterns)
        except ConfigError as exc:
            problems.extend(exc.problems)
        if problems:
            raise ConfigError(problems)

    def _add(self, compiled: CompiledPatterns, key: str, pattern: Pattern, problems: list[str], *, where) -> None:
        file, rule_id, path = where
        bools = _bool_problems(pattern, path)
        if bools:
            problems.extend(Errors.C103.format(file=file, index="-", rule_id=rule_id, path=p.split(": ", 1)[0],
                                               reason=p.split(": ", 1)[1]) for p in bools)
            return
        try:
            compiled.add(key, fold_pattern(pattern))
        except Exception as exc:  # spaCy raises MatchPatternError / ValueError with its own text
            reason = " ".join(str(exc).split())
            problems.append(Errors.C103.format(file=file, index="-", rule_id=rule_id, path=path, reason=reason))

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_dir(cls, rules_dir: Path) -> "RuleEngine":
        """Load every ``*.yaml`` under ``rules_dir`` plus ``contexto.yaml`` and ``impacto.yaml`` beside it."""
        rules_dir = Path(rules_dir)
        problems: list[str] = []
        rules: list[Rule] = []
        seen: dict[str, Path] = {}
        files = sorted(rules_dir.glob("*.yaml"))
        if not files:
            raise ConfigError([Errors.C102.format(file=rules_dir, path="(carpeta)",
                                                  reason="no hay archivos de reglas (*.yaml)")])
        for path in files:
            try:
                data = read_yaml(path)
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            if not isinstance(data, list):
                problems.append(Errors.C102.format(file=path, path=TOP_LEVEL, reason="debe ser una lista de reglas"))
                continue
            for index, raw in enumerate(data):
                rule_id = raw.get("id", "?") if isinstance(raw, dict) else "?"
                try:
                    spec = RuleSpec.model_validate(raw)
                except ValidationError as exc:
                    for line in describe_validation(path, exc):
                        problems.append(line.replace(f"{path}: ", f"{path}: [{index}] \"{rule_id}\" > ", 1))
                    continue
                if spec.id in seen:
                    problems.append(Errors.C104.format(file=path, rule_id=spec.id, other=seen[spec.id]))
                    continue
                seen[spec.id] = path
                rules.append(Rule(spec, path, frozenset(fold(w) for w in spec.filler)))
        for rule in rules:
            for other in rule.spec.yields_to:
                if other not in seen:
                    problems.append(Errors.C102.format(file=rule.source, path=f"\"{rule.spec.id}\" > yields_to",
                                                       reason=f"ninguna regla tiene el id {other!r}"))
        base = rules_dir.parent
        context = None
        try:
            data = read_yaml(base / "contexto.yaml")
            context = ContextFile.model_validate(data)
        except ConfigError as exc:
            problems.extend(exc.problems)
        except ValidationError as exc:
            problems.extend(describe_validation(base / "contexto.yaml", exc))
        impact = None
        try:
            impact = read_impact_file(base / "impacto.yaml")
        except ConfigError as exc:
            problems.extend(exc.problems)
        if problems:
            raise ConfigError(problems)
        return cls(rules, context, impact, impact_source=base / "impacto.yaml", sources=files)

    # ------------------------------------------------------------------ matching

    def _suppression(self, clean: CleanText, start: int, end: int, kinds: list[str],
                     cues: dict[str, list[tuple[int, int]]]) -> str | None:
        sent_start, sent_end = clean.sentences[start]
        if "negacion" in kinds:
            window = self.windows["negacion"]
            for a, b in cues.get("negacion", ()):
                if b <= start and start - b <= window and a >= sent_start:
                    return "negacion"
                if a < start < b and clean.tokens[start] != "no":
                    # the cue runs into the hit ("no reclamo"), unless the hit states its own "no": in "ya no me
                    # deja entrar" the cue's "no" is the failure's ("no longer"), not a denial of it
                    return "negacion"
        if "hipotetico" in kinds:
            window = self.windows["hipotetico"]
            for a, b in cues.get("hipotetico", ()):
                if a < end and b > start - window and a >= sent_start:  # shortly before the hit, or inside it
                    return "hipotetico"
        if "resuelto" in kinds:
            window = self.windows["resuelto"]
            for a, b in cues.get("resuelto", ()):
                same_sentence = sent_start <= a < sent_end
                later = a >= end
                near = abs(a - end) <= window or abs(start - b) <= window
                if (same_sentence and near) or later:
                    return "resuelto"
        return None

    def _evidence(self, clean: CleanText, doc: Doc, start: int, end: int) -> Evidence:
        last = doc[end - 1]
        o_start, o_end = clean.to_original(doc[start].idx, last.idx + len(last))
        field_name, f_start = clean.field_of(o_start)
        return Evidence(clean.original[o_start:o_end], f_start, f_start + (o_end - o_start), field_name)

    def _incomplete(self, rule: Rule, clean: CleanText, *, others: list[RuleHit]) -> RuleHit | None:
        """Too little content to identify a request: only filler words, or a few content words and no other rule.

        Words that only fill (greetings, "ayuda", "no funciona", "ver adjunto") never identify a request, so a
        message made of them is incomplete even when a rule fired on them ("sale un error").
        """
        if others and any(w not in rule.filler for w in clean.tokens if w.isalpha()):
            return None
        if any(h.rule_id in rule.spec.yields_to for h in others):
            return None
        content = []
        for w, flags in zip(clean.tokens, clean.flags):
            if w in rule.filler or flags or "@" in w or not _HAS_LETTER.search(w):
                continue
            content.append(w)
            if len(content) > rule.spec.max_content_words:
                return None
        shown = clean.text.strip()
        evidence = (Evidence(shown[:120], 0, min(len(shown), 120), "body" if clean.subject_length == 0 else "subject"),)
        return RuleHit(rule.spec.id, rule.spec.priority, rule.spec.description, rule.spec.request_type,
                       rule.spec.decisive, evidence if shown else ())

    def match(self, clean: CleanText) -> RuleResult:
        """Fire every rule on one cleaned message and decide by the policy's order."""
        doc = clean.doc
        matched = self.patterns(doc, clean.sentences, clean.tokens, clean.flags)
        found = {key: spans for key, spans in matched.items() if key in self.rules}
        cues = group(matched, CUE)
        impact_cues = self.impact.cues(matched)
        hits: list[RuleHit] = []
        suppressed: list[RuleHit] = []
        for rule_id, spans in found.items():
            rule = self.rules[rule_id]
            live, dead, reason = [], [], None
            for start, end in sorted(_longest(spans)):
                why = self._suppression(clean, start, end, rule.spec.context, cues)
                (dead if why else live).append(self._evidence(clean, doc, start, end))
                reason = reason or why
            spec = rule.spec
            if live:
                hits.append(RuleHit(spec.id, spec.priority, spec.description, spec.request_type, spec.decisive,
                                    tuple(live)))
            elif dead:
                suppressed.append(RuleHit(spec.id, spec.priority, spec.description, spec.request_type,
                                          spec.decisive, tuple(dead), reason))
        for rule in self.incomplete_rules:
            hit = self._incomplete(rule, clean, others=hits)
            if hit:
                hits.append(hit)
        hits.sort(key=lambda h: (DECISION_ORDER.index(h.priority), h.rule_id))
        deciding = next((h for h in hits if h.decisive), None)
        priority = deciding.priority if deciding else None
        failure = any(h.priority in FAILURES and h.request_type in ("incidente", "acceso")
                      for h in hits)
        # else the flow looks (with the same cues) only if it decides a failure
        impact = self.impact.find(clean, impact_cues) if failure else None
        request_type = deciding.request_type if deciding else None
        return RuleResult(tuple(hits), tuple(suppressed), priority, deciding, impact, request_type, impact_cues)


def _longest(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop spans contained in a longer span of the same rule."""
    spans = sorted(set(spans), key=lambda s: (s[0], -(s[1] - s[0])))
    out: list[tuple[int, int]] = []
    for s in spans:
        if out and s[0] >= out[-1][0] and s[1] <= out[-1][1]:
            continue
        out.append(s)
    return out
