"""What the text model reads of a cleaned message: its words without punctuation, opening formulas or sign-offs,
plus the rules that fired.

Courtesy at the edges of a message ("hola buenos días mire le llamaba porque…", "…muchas gracias") says nothing
about what is asked, yet in written data it comes with some labels more than others; the model never sees it, so
it cannot learn it as a sign of a priority. The formulas are data (``rules/estilo.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import compress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from classifier.clean import CleanText, fold, spanish
from classifier.errors import ConfigError
from classifier.rule_engine import RuleResult
from classifier.serving import ModelInput
from classifier.yamlfile import describe_validation, read_yaml


class CourtesyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    aperturas: list[str] = []
    cierres: list[str] = []


def read_courtesy(path: Path) -> CourtesyFile:
    """``rules/estilo.yaml`` as written; a missing file holds no formulas, a malformed one is a ``ConfigError``."""
    if not Path(path).exists():
        return CourtesyFile()
    try:
        return CourtesyFile.model_validate(read_yaml(path) or {})
    except ValidationError as exc:
        raise ConfigError(describe_validation(path, exc)) from exc


def _phrases(texts: list[str]) -> tuple[tuple[str, ...], ...]:
    """Folded token tuples, longest first (so "buenos dias" is taken before "buenos")."""
    nlp = spanish()
    found = {tuple(t.text for t in nlp.make_doc(fold(text)) if not t.is_space and not t.is_punct) for text in texts}
    return tuple(sorted((p for p in found if p), key=len, reverse=True))


@dataclass(frozen=True)
class ModelInputBuilder:
    """Builds a ``ModelInput`` from a cleaned message and its rule result; the same for training and serving."""

    openings: tuple[tuple[str, ...], ...] = ()
    closings: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "_openings", _by_edge(self.openings, 0))
        object.__setattr__(self, "_closings", _by_edge(self.closings, -1))

    @classmethod
    def from_file(cls, path: Path) -> "ModelInputBuilder":
        """Load ``rules/estilo.yaml``; a missing file means nothing is stripped, a malformed one is a ``ConfigError``."""
        spec = read_courtesy(path)
        return cls(_phrases(spec.aperturas), _phrases(spec.cierres))

    @classmethod
    def beside_rules(cls, rules_dir: Path) -> "ModelInputBuilder":
        """The formulas in ``estilo.yaml`` next to the rule folder (as ``contexto.yaml`` and ``impacto.yaml``)."""
        return cls.from_file(Path(rules_dir).parent / "estilo.yaml")

    def words(self, text: CleanText) -> tuple[str, ...]:
        """The message's word tokens (no punctuation or whitespace), courtesy at both ends removed."""
        words = tuple(compress(text.tokens, text.word_mask))
        start, end = 0, len(words)
        start = _strip(words, start, end, self._openings, from_start=True)
        end = _strip(words, start, end, self._closings, from_start=False)
        return words[start:end] if start < end else words

    def __call__(self, text: CleanText, rules: RuleResult) -> ModelInput:
        fired = tuple(h.rule_id for h in rules.hits) + tuple("no_" + h.rule_id for h in rules.suppressed)
        return ModelInput(self.words(text), fired)


def _strip(words: tuple[str, ...], start: int, end: int, phrases: dict, *, from_start: bool) -> int:
    """Move ``start`` forward (or ``end`` back) past every formula found there; return the new position.
    ``phrases`` maps the word a formula starts (or ends) with to its formulas, longest first."""
    while start < end:
        edge = words[start] if from_start else words[end - 1]
        for phrase in phrases.get(edge, ()):
            n = len(phrase)
            if n <= end - start and (words[start:start + n] if from_start else words[end - n:end]) == phrase:
                if from_start:
                    start += n
                else:
                    end -= n
                break
        else:
            break
    return start if from_start else end


def _by_edge(phrases: tuple[tuple[str, ...], ...], index: int) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Formulas keyed by their first (``index`` 0) or last (-1) word, longest first."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for phrase in phrases:
        out.setdefault(phrase[index], []).append(phrase)
    return {word: tuple(found) for word, found in out.items()}
