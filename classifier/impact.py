"""Impact scope of a failure (POLICY §2): percentages, counts against totals, quantifiers, other clients."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import compress
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from spacy.attrs import LIKE_NUM

from classifier.clean import CleanText, spanish
from classifier.patterns import CompiledPatterns, fold_pattern, group
from classifier.errors import ConfigError, Errors
from classifier.memo import BoundedMemo
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
_TOTALS = {w for w, n in _UNITS.items() if n > 1}  # a total is a digit or one of these
_DIGIT = re.compile(r"\d")
_FRACTIONS = {"la mitad": 50.0, "cuarta parte": 25.0, "tercera parte": 33.3, "quinta parte": 20.0,
              "decima parte": 10.0, "la totalidad": 100.0, "dos terceras partes": 66.7}
_OF = {"de", "entre", "sobre"}
_COUNT_VERBS = {"somos", "son", "tenemos", "hay"}  # "somos 40 y a 3 …": the number they count is a total
_DETERMINERS = {"los", "las", "nuestros", "nuestras", "sus", "unos", "unas", "cada", "("}


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
    """Finds the reach of a failure from ``rules/impacto.yaml`` cues and number patterns.

    Its cues are compiled under ``impacto:<group>`` into ``patterns``: the rule engine passes its own set, so one
    pass over a message finds rules, context cues and impact cues together (``cues`` reads them from that pass)."""

    KEY = "impacto:"

    def __init__(self, config: ImpactFile, source: Path, patterns: CompiledPatterns | None = None):
        self.threshold = config.threshold_percent
        # Per token text: number-like for spaCy (digits, Spanish number words), a number word of ours, or glued to a
        # percent sign ("50%", one token spaCy does not find number-like). Memoised: one lookup a token.
        like_num = spanish().vocab.lex_attr_getters[LIKE_NUM]
        self._may_be_number: BoundedMemo[str, bool] = BoundedMemo(
            lambda word: word in _UNITS or word.endswith("%") or bool(like_num(word)), 100_000)
        self.patterns = patterns if patterns is not None else CompiledPatterns(spanish().vocab)
        self.groups = list(config.groups)
        problems = []
        for g, group in enumerate(self.groups):
            if group.scope not in SCOPES and group.scope != NUMERIC:
                problems.append(Errors.C102.format(file=source, path=f"groups[{g}].scope",
                                                   reason=f"alcance desconocido {group.scope!r}; use uno de "
                                                          f"{', '.join(SCOPES)} o {NUMERIC}"))
                continue
            for i, pattern in enumerate(group.patterns):
                try:
                    self.patterns.add(self.KEY + group.name, fold_pattern(pattern))
                except Exception as exc:
                    problems.append(Errors.C102.format(file=source, path=f"groups[{g}].patterns[{i}]",
                                                       reason=" ".join(str(exc).split())))
        if problems:
            raise ConfigError(problems)

    def cues(self, found: dict[str, list[tuple[int, int]]]) -> dict[str, tuple[int, int]]:
        """Group name → the tokens of its first cue, read from a pass of ``patterns`` over a message."""
        return {name: spans[0] for name, spans in group(found, self.KEY).items()}

    def _numeric(self, clean: CleanText) -> ImpactResult | None:
        """A percentage, a count against a total, or a fraction ("la cuarta parte") of one client's users."""
        words = clean.tokens
        folded = clean.folded
        if not _DIGIT.search(folded) and _TOTALS.isdisjoint(words) and "por ciento" not in folded:
            return self._fraction(clean)  # no percentage and no number that could be a total
        candidates = list(compress(range(len(words)), map(self._may_be_number.__getitem__, words)))
        numbers = _numbers(words, candidates)
        for i, (value, end) in numbers.items():
            glued = words[i].endswith("%")  # "50%" is one token
            if glued or end < len(words) and (words[end] == "%" or words[end:end + 2] == ("por", "ciento")):
                if 0 < value <= 100:
                    return self._share(value, " ".join(words[i:end if glued else end + 1]),
                                       f"{value:g} % de los usuarios")
        for i, (part, end) in numbers.items():
            total = _total_after(words, numbers, end)
            if total is None:
                total_at = _total_before(words, numbers, i)
                if total_at is None:
                    continue
                total, start = total_at
                evidence = " ".join(words[start:end])
            else:
                total, last = total
                evidence = " ".join(words[i:last])
            if total <= 1 or not 0 < part <= total or 1900 <= total <= 2100:  # a year is not a total
                continue
            share = 100 * part / total
            return self._share(share, evidence, f"{part:g} de {total:g} ({share:.0f} %)")
        return self._fraction(clean)

    def _fraction(self, clean: CleanText) -> ImpactResult | None:
        for phrase, share in _FRACTIONS.items():
            if phrase in clean.folded:
                return self._share(share, phrase, f"{share:g} % de los usuarios")
        return None

    def _share(self, share: float, evidence: str, reason: str) -> ImpactResult:
        scope = "grupo_20_o_mas" if share >= self.threshold else "grupo_menor_20"
        return ImpactResult(scope, evidence, reason)

    def find(self, clean: CleanText, cues: Mapping[str, tuple[int, int]] | None = None) -> ImpactResult:
        """The first group, in file order, whose cues appear; ``numero`` stands for percentages and counts.
        ``cues``: what ``cues`` read from the rule engine's pass over this message (else a pass is made here)."""
        if cues is None:
            cues = self.cues(self.patterns(clean.doc, clean.sentences, clean.tokens, clean.flags))
        for group in self.groups:
            if group.scope == NUMERIC:
                numeric = self._numeric(clean)
                if numeric is not None:
                    return numeric
            elif group.name in cues:
                start, end = cues[group.name]
                return ImpactResult(group.scope, clean.doc[start:end].text, group.name)
        return ImpactResult.unknown()


def read_impact_file(path: Path) -> ImpactFile:
    """``rules/impacto.yaml`` validated; a malformed file is a ``ConfigError`` naming what is wrong."""
    data = read_yaml(path)
    try:
        return ImpactFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation(path, exc)) from None


def _numbers(words: tuple[str, ...], candidates: list[int]) -> dict[int, tuple[float, int]]:
    """Token index → (value, index after it) for "12", "12,5", "doce", "treinta y cinco".

    ``candidates`` are the tokens spaCy finds number-like (digits and Spanish number words), so the scan
    touches a handful of tokens instead of every one.
    """
    out: dict[int, tuple[float, int]] = {}
    skip = -1
    for i in candidates:
        if i <= skip:
            continue
        w = words[i]
        if w[:1].isdigit():
            value = parse_number(w[:-1] if w.endswith("%") else w)
            if value is not None:
                out[i] = (value, i + 1)
        elif w in _UNITS:
            if words[i + 1:i + 2] == ("total",):  # "un total de 40": the total, not a part of one
                continue
            if i + 2 < len(words) and words[i + 1] == "y" and words[i + 2] in _UNITS:
                out[i] = (float(_UNITS[w] + _UNITS[words[i + 2]]), i + 3)
                skip = i + 2
                continue
            out[i] = (float(_UNITS[w]), i + 1)
    return out


def _total_after(words: tuple[str, ...], numbers: dict, end: int) -> tuple[float, int] | None:
    """ "N [up to 3 words] de [los|las|cada…] M" → (M, index after M)."""
    for j in range(end, min(end + 4, len(words))):
        if words[j] in _OF:
            k = j + 1
            while k < len(words) and words[k] in _DETERMINERS:
                k += 1
            if words[k:k + 3] == ("un", "total", "de"):
                k += 3
            if k in numbers:
                return numbers[k][0], numbers[k][1]
            return None
        if not (words[j].isalpha() or words[j] == "("):
            return None
    return None


def _total_before(words: tuple[str, ...], numbers: dict, i: int) -> tuple[float, int] | None:
    """ "de las 80 familias …, 6", "un total de 40 usuarios y a 12" or "somos 40 y a 3" → (the total, index where its
    words start) when the part starts a new clause (after a comma, "y" or "pero")."""
    if i < 2 or words[i - 1] not in (",", "a", "en", "solo") or (
            words[i - 1] != "," and words[i - 2] not in (",", "y", "pero")):
        return None
    for k in range(i - 2, max(i - 18, -1), -1):
        if k in numbers and k >= 2 and words[k - 1] in _DETERMINERS and words[k - 2] == "de":
            return numbers[k][0], k - 2
        if k in numbers and k >= 3 and words[k - 3:k] == ("un", "total", "de"):
            return numbers[k][0], k - 3
        if k in numbers and k >= 1 and words[k - 1] in _COUNT_VERBS:
            return numbers[k][0], k - 1
        if words[k] in (".", ";", ":"):
            return None
    return None
