"""Impact scope of a failure (POLICY §2): percentages, counts against totals, quantifiers, other clients."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from spacy.matcher import Matcher, PhraseMatcher

from classifier.clean import CleanText, fold, spanish
from classifier.errors import ConfigError, Errors
from classifier.yamlfile import describe_validation, read_yaml

SCOPES = ("varios_clientes", "grupo_20_o_mas", "grupo_menor_20", "un_usuario")  # most specific cue wins in order
UNKNOWN = "desconocido"
NUMERIC = "numero"  # the group that stands for percentages and counts against a total

_UNITS = {"un": 1, "uno": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7,
          "ocho": 8, "nueve": 9, "diez": 10, "once": 11, "doce": 12, "trece": 13, "catorce": 14, "quince": 15,
          "dieciseis": 16, "diecisiete": 17, "dieciocho": 18, "diecinueve": 19, "veinte": 20, "veintiun": 21,
          "veintiuno": 21, "veintidos": 22, "veintitres": 23, "veinticuatro": 24, "veinticinco": 25,
          "veintiseis": 26, "veintisiete": 27, "veintiocho": 28, "veintinueve": 29, "treinta": 30,
          "cuarenta": 40, "cincuenta": 50, "sesenta": 60, "setenta": 70, "ochenta": 80, "noventa": 90,
          "cien": 100, "ciento": 100, "doscientos": 200, "trescientos": 300, "cuatrocientos": 400,
          "quinientos": 500, "mil": 1000}
_WORDS = sorted(_UNITS, key=len, reverse=True)
_NUMBER = r"(?:\d+(?:[.,]\d+)?|(?:%s)(?:\s+y\s+(?:%s))?)" % ("|".join(_WORDS), "|".join(_WORDS))
_OF = r"(?:de|entre|sobre)\s+(?:(?:los|las|nuestros|nuestras|sus|unos|unas|un\s+total\s+de)\s+)?"
_RATIOS = (
    # "12 de 40", "3 de los 40 docentes", "dos supervisores de 25", "7 papás de 150", "uno de cada diez"
    re.compile(rf"\b(?P<part>{_NUMBER})\s+(?:[a-z]+\s+){{0,3}}?\(?(?:{_OF}|de\s+cada\s+)(?P<total>{_NUMBER})\b"),
    # "de las 80 familias que ya la iniciaron, 6 nos reportan", "de los 12 usuarios ..., a dos"
    re.compile(rf"\bde\s+(?:los|las|nuestros|nuestras)\s+(?P<total>{_NUMBER})\s+[^.;:]{{0,90}}?,\s+(?:a\s+|en\s+|solo\s+)?(?P<part>{_NUMBER})\b"),
)
_PERCENT = re.compile(rf"\b(?P<value>{_NUMBER})\s*(?:%|por\s*ciento)")
_FRACTIONS = {"la mitad": 50.0, "cuarta parte": 25.0, "tercera parte": 33.3, "quinta parte": 20.0,
              "decima parte": 10.0, "la totalidad": 100.0, "dos terceras partes": 66.7}


def parse_number(text: str) -> float | None:
    """'12', '12,5', 'doce', 'treinta y cinco' → a number; anything else → None."""
    text = text.strip()
    if re.fullmatch(r"\d+(?:[.,]\d+)?", text):
        return float(text.replace(",", "."))
    parts = text.split()
    if len(parts) == 3 and parts[1] == "y" and parts[0] in _UNITS and parts[2] in _UNITS:
        return float(_UNITS[parts[0]] + _UNITS[parts[2]])
    if len(parts) == 1 and parts[0] in _UNITS:
        return float(_UNITS[parts[0]])
    return None


class ImpactGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    scope: str
    patterns: list[str | list[dict[str, Any]]] = []


class ImpactFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold_percent: float = Field(20, gt=0, lt=100)
    groups: list[ImpactGroup] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class ImpactResult:
    scope: str
    evidence: str | None
    reason: str | None

    @classmethod
    def unknown(cls) -> "ImpactResult":
        return cls(UNKNOWN, None, None)

    def as_dict(self) -> dict:
        return {"scope": self.scope, "evidence": self.evidence, "reason": self.reason}


class ImpactFinder:
    """Finds the reach of a failure from ``rules/impacto.yaml`` cues and number patterns."""

    def __init__(self, config: ImpactFile, source: Path):
        self.threshold = config.threshold_percent
        self.nlp = spanish()
        self.matcher = Matcher(self.nlp.vocab, validate=True)
        self.phrases = PhraseMatcher(self.nlp.vocab, attr="LOWER")
        self.groups = list(config.groups)
        problems = []
        for g, group in enumerate(self.groups):
            if group.scope not in SCOPES and group.scope != NUMERIC:
                problems.append(Errors.C102.format(file=source, path=f"groups[{g}].scope",
                                                   reason=f"unknown scope {group.scope!r}; use one of "
                                                          f"{', '.join(SCOPES)} or {NUMERIC}"))
                continue
            for i, pattern in enumerate(group.patterns):
                try:
                    if isinstance(pattern, str):
                        self.phrases.add(group.name, [self.nlp.make_doc(fold(pattern))])
                    else:
                        self.matcher.add(group.name, [[{k: (fold(v) if isinstance(v, str) else v) for k, v in t.items()}
                                                       for t in pattern]])
                except Exception as exc:
                    problems.append(Errors.C102.format(file=source, path=f"groups[{g}].patterns[{i}]",
                                                       reason=" ".join(str(exc).split())))
        if problems:
            raise ConfigError(problems)

    @classmethod
    def from_file(cls, path: Path) -> "ImpactFinder":
        data = read_yaml(path)
        try:
            return cls(ImpactFile.model_validate(data), path)
        except ValidationError as exc:
            raise ConfigError(describe_validation(path, exc)) from None

    def _numeric(self, text: str) -> ImpactResult | None:
        """A percentage, a count against a total, or a fraction ("la cuarta parte") of one client's users."""
        for m in _PERCENT.finditer(text):
            value = parse_number(m.group("value"))
            if value is not None and 0 < value <= 100:
                return self._share(value, m.group(0), f"{value:g} % de los usuarios")
        best = None
        for pattern in _RATIOS:
            for m in pattern.finditer(text):
                part, total = parse_number(m.group("part")), parse_number(m.group("total"))
                if part is None or total is None or total <= 1 or part > total or part <= 0:
                    continue
                if 1900 <= total <= 2100:  # a year ("15 de 2025"), not a total of users
                    continue
                if best is None or m.start() < best[0]:
                    best = (m.start(), part, total, m.group(0))
        if best is not None:
            _, part, total, evidence = best
            share = 100 * part / total
            return self._share(share, evidence, f"{part:g} de {total:g} ({share:.0f} %)")
        for phrase, share in _FRACTIONS.items():
            if phrase in text:
                return self._share(share, phrase, f"{share:g} % de los usuarios")
        return None

    def _share(self, share: float, evidence: str, reason: str) -> ImpactResult:
        scope = "grupo_20_o_mas" if share >= self.threshold else "grupo_menor_20"
        return ImpactResult(scope, evidence, reason)

    def find(self, clean: CleanText) -> ImpactResult:
        """The first group, in file order, whose cues appear; ``numero`` stands for percentages and counts."""
        doc = clean.doc
        found: dict[str, str] = {}
        for match_id, start, end in list(self.matcher(doc)) + list(self.phrases(doc)):
            found.setdefault(self.nlp.vocab.strings[match_id], doc[start:end].text)
        for group in self.groups:
            if group.scope == NUMERIC:
                numeric = self._numeric(clean.folded)
                if numeric is not None:
                    return numeric
            elif group.name in found:
                return ImpactResult(group.scope, found[group.name], group.name)
        return ImpactResult.unknown()
