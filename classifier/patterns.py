"""Compiling spaCy token patterns into fast phrase sets and windows, with the Matcher as the fallback.

spaCy's ``Matcher`` tries every pattern at every token and evaluates ``IN`` lists in Python, so a few dozen
patterns cost a millisecond on an e-mail. Most rule patterns are only alternatives of words (``LOWER`` with
``IN``, optional tokens): those become phrases for the ``PhraseMatcher`` (a hash lookup, whatever their
number). A pattern with one gap (``{"OP": "{,4}"}``) becomes a window between two phrase sets. Anything
else (``LIKE_NUM``, ``REGEX``…) stays with the ``Matcher``. Rule authors keep writing spaCy patterns and get
the Matcher's spans (tests/classifier/test_patterns.py), with two additions: a final ``{IS_PUNCT: true}`` is
also met by the end of the message (trailing emoji, symbols, mentions or links aside: "no me deja entrar 😭"),
and given the sentences a window never crosses one.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from spacy.matcher import Matcher, PhraseMatcher
from spacy.schemas import TokenPatternSchema
from spacy.tokens import Doc
from spacy.vocab import Vocab

from classifier.clean import NUMBER, PUNCT, fold, spanish
from classifier.messages import field_message

MAX_PHRASES = 4000
_GAP = re.compile(r"^\{0?,(\d+)\}$")
_STRING_KEYS = {"LOWER", "NORM", "TEXT", "ORTH"}
_AT_END = "\x1fend"  # Matcher key suffix: a pattern's words before its final {IS_PUNCT: true}, kept at the end


def group(found: dict[str, list[tuple[int, int]]], prefix: str) -> dict[str, list[tuple[int, int]]]:
    """The spans of keys added under ``prefix`` (several owners share one compiled set, one pass a message: the rule
    engine's context cues under "contexto:", impact cues under "impacto:"), keyed without it."""
    return {key[len(prefix):]: spans for key, spans in found.items() if key.startswith(prefix)}


def message_end(doc: Doc) -> int:
    """Where the message's words end: ``len(doc)`` less trailing tokens that are neither word, number nor punctuation
    (emoji, symbols, mentions, links, spaces), which close a sentence no more than its end does."""
    end = len(doc)
    while end and not (doc[end - 1].is_alpha or doc[end - 1].like_num or doc[end - 1].is_punct):
        end -= 1
    return end


def fold_pattern(pattern: Any) -> Any:
    """Fold accents and case in every string a pattern compares, as the text is folded."""
    if isinstance(pattern, str):
        return fold(pattern)
    out = []
    for token in pattern:
        new = {}
        for key, value in token.items():
            if key.upper() in _STRING_KEYS:
                if isinstance(value, str):
                    value = fold(value)
                elif isinstance(value, dict):
                    value = {k: ([fold(x) if isinstance(x, str) else x for x in v] if isinstance(v, list)
                                 else fold(v) if isinstance(v, str) else v)
                             for k, v in value.items()}
            new[key] = value
        out.append(new)
    return out


def _alternatives(token: dict) -> list[str] | None:
    keys = set(token) - {"OP"}
    if keys != {"LOWER"} or token.get("OP") not in (None, "?"):
        return None
    value = token["LOWER"]
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and set(value) == {"IN"} and all(isinstance(v, str) for v in value["IN"]):
        return list(value["IN"])
    return None


def expand(pattern: list[dict]) -> list[tuple[str, ...]] | None:
    """All word sequences a pattern of plain alternatives matches, or None when it is not that simple."""
    seqs: list[tuple[str, ...]] = [()]
    for token in pattern:
        alts = _alternatives(token)
        if alts is None:
            return None
        grown = [s + (a,) for s in seqs for a in alts]
        if token.get("OP") == "?":
            grown += seqs
        seqs = grown
        if len(seqs) > MAX_PHRASES:
            return None
    return [s for s in dict.fromkeys(seqs) if s]


def _side(tokens: list[dict]) -> list[tuple[str, ...]] | None:
    """The phrases one side of a window stands for; None when not plain alternatives or when every token is
    optional (the side may then match no word, which a phrase set cannot say)."""
    if all(token.get("OP") == "?" for token in tokens):
        return None
    return expand(tokens)


def _gap(token: dict) -> tuple[int, bool, frozenset[str]] | None:
    """A gap token ``{OP: "{,N}"}`` with optional IS_PUNCT false / LOWER NOT_IN: (N, no punctuation, stop words)."""
    match = _GAP.match(str(token.get("OP", "")))
    if not match:
        return None
    keys = set(token) - {"OP"}
    if not keys <= {"IS_PUNCT", "LOWER"} or token.get("IS_PUNCT", False) is not False:
        return None  # {IS_PUNCT: true} gaps (punctuation only) stay with the Matcher
    no_punct = token.get("IS_PUNCT") is False
    stop: frozenset[str] = frozenset()
    if "LOWER" in token:
        value = token["LOWER"]
        if not (isinstance(value, dict) and set(value) == {"NOT_IN"}):
            return None
        stop = frozenset(value["NOT_IN"])
    return int(match.group(1)), no_punct, stop


@dataclass(frozen=True)
class Window:
    """A phrase from ``left`` followed, within ``gap`` tokens, by a phrase from ``right``.

    With ``one`` the gap is exactly one token of ``kind`` ("any", "number", "punct"); ``left`` or ``right``
    may then be empty (the pattern starts or ends with that token).
    """

    key: str
    gap: int
    no_punct: bool
    stop: frozenset[str]
    one: bool = False
    kind: str = "any"
    has_left: bool = True
    has_right: bool = True
    # A side made of single words only ("la", "el", "mi"…) is looked up as a word set next to the other side's
    # matches instead of being found everywhere by the PhraseMatcher (determiners would be a third of all matches).
    left_words: frozenset[str] | None = None
    right_words: frozenset[str] | None = None

    @property
    def left_key(self) -> str:
        return self.key + "\x1fa"

    @property
    def right_key(self) -> str:
        return self.key + "\x1fb"


def _single(token: dict) -> str | None:
    """A token that stands for exactly one word: "any" ({}) or "number" ({LIKE_NUM: true})."""
    if token == {}:
        return "any"
    if token == {"LIKE_NUM": True}:
        return "number"
    if token == {"IS_PUNCT": True}:
        return "punct"
    return None


def _is_branch(part: Any) -> bool:
    """A step of pydantic's error location that names a union member ("str", "TokenPatternString"), not a key."""
    text = str(part)
    return text in ("str", "int", "float", "bool") or text.startswith("TokenPattern") or "[" in text or "-" in text


def token_problems(pattern: list) -> list[str]:
    """spaCy's own schema check of a token pattern, one Spanish line per place: ``[0].LOWER.IN: debe ser una lista``.
    A value that fits none of a union's members gets the members' reasons together."""
    try:
        TokenPatternSchema.model_validate({"pattern": pattern})
        return []
    except ValidationError as exc:
        errors = exc.errors()
    reasons: dict[str, list[str]] = {}
    for err in errors:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"][1:] if not _is_branch(p))
        reason = "clave desconocida" if err["type"] == "extra_forbidden" else field_message(err)
        if reason not in reasons.setdefault(where, []):
            reasons[where].append(reason)
    deepest = [w for w in reasons if not any(o.startswith((w + ".", w + "[")) for o in reasons)]  # best-fitting member
    out = []
    for where in deepest:
        said = reasons[where]
        if len(said) > 1 and all(r.startswith("debe ser ") for r in said):
            said = ["debe ser " + " o ".join(r.removeprefix("debe ser ") for r in said)]
        out.append(f"{where}: {'; '.join(said)}")
    return out


@dataclass
class CompiledPatterns:
    """Phrases, windows and leftover Matcher patterns for many keys, matched together in one pass."""

    vocab: Vocab
    phrases: PhraseMatcher = None  # type: ignore[assignment]
    matcher: Matcher = None  # type: ignore[assignment]
    windows: list[tuple[str, Window, str, str]] = field(default_factory=list)  # key, window, its two phrase keys
    _window_of: dict[str, int] = field(default_factory=dict)  # a window's phrase key → its index in ``windows``
    _window_id: int = 0
    matcher_patterns: int = 0
    phrase_count: int = 0

    def __post_init__(self) -> None:
        self.phrases = PhraseMatcher(self.vocab, attr="LOWER")
        self.matcher = Matcher(self.vocab, validate=True)
        self._check = Matcher(self.vocab, validate=True)

    def _add_phrases(self, key: str, seqs: Iterable[tuple[str, ...]]) -> None:
        docs = [Doc(self.vocab, words=list(s)) for s in seqs]
        self.phrase_count += len(docs)
        self.phrases.add(key, docs)

    def add(self, key: str, pattern: Any) -> None:
        """Add one (folded) pattern under ``key``; an invalid pattern raises ``ValueError`` saying what is wrong."""
        if isinstance(pattern, str):
            words = tuple(t.text for t in spanish().make_doc(pattern) if not t.is_space)
            if not words:
                raise ValueError("frase vacía")
            self._add_phrases(key, [words])
            return
        if not isinstance(pattern, list) or not pattern or not all(isinstance(t, dict) for t in pattern):
            raise ValueError("un patrón es una frase entre comillas o una lista de tokens ({LOWER: ...}, ...)")
        problems = token_problems(pattern)
        if problems:
            raise ValueError("patrón de tokens no válido: " + "; ".join(problems))
        self._check.add("check", [pattern])  # what spaCy checks beyond its schema
        self._check.remove("check")
        seqs = expand(pattern)
        if seqs is not None:
            self._add_phrases(key, seqs)
            return
        gaps = [i for i, t in enumerate(pattern) if _gap(t) is not None]
        if len(gaps) == 1 and 0 < gaps[0] < len(pattern) - 1:
            i = gaps[0]
            left, right = _side(pattern[:i]), _side(pattern[i + 1:])
            if left is not None and right is not None:
                self._add_window(key, left, right, *_gap(pattern[i]))
                return
        singles = [i for i, t in enumerate(pattern) if _single(t) is not None]
        if not gaps and len(singles) == 1:
            i = singles[0]
            left = _side(pattern[:i]) if i > 0 else []
            right = _side(pattern[i + 1:]) if i < len(pattern) - 1 else []
            if left is not None and right is not None and (left or right):
                self._window_id += 1
                wkey = f"{key}\x1fw{self._window_id}"
                window = Window(wkey, 1, False, frozenset(), one=True, kind=_single(pattern[i]),
                                has_left=bool(left), has_right=bool(right))
                if left:
                    self._add_phrases(window.left_key, left)
                if right:
                    self._add_phrases(window.right_key, right)
                self._add_window_to(key, window)
                return
        if not gaps and all(_alternatives(t) is not None for t in pattern):
            # Too many alternatives for one phrase set: two adjacent phrase sets (a window with no gap).
            splits = [(_side(pattern[:k]), _side(pattern[k:])) for k in range(1, len(pattern))]
            splits = [(a, b) for a, b in splits if a is not None and b is not None]
            if splits:
                left, right = min(splits, key=lambda ab: max(len(ab[0]), len(ab[1])))
                self._add_window(key, left, right, 0, False, frozenset())
                return
        self.matcher.add(key, [pattern])
        self.matcher_patterns += 1
        if len(pattern) > 1 and _single(pattern[-1]) == "punct":  # the end of the message closes it, as in windows
            self.matcher.add(key + _AT_END, [pattern[:-1]])

    def _add_window(self, key: str, left, right, gap: int, no_punct: bool, stop: frozenset[str]) -> None:
        self._window_id += 1
        words = [frozenset(p[0] for p in side) if all(len(p) == 1 for p in side) else None for side in (left, right)]
        if words[0] is not None and words[1] is not None:  # both: the larger set (likelier found) is looked up
            words[int(len(words[0]) >= len(words[1]))] = None
        window = Window(f"{key}\x1fw{self._window_id}", gap, no_punct, stop, left_words=words[0],
                        right_words=words[1])
        if window.left_words is None:
            self._add_phrases(window.left_key, left)
        if window.right_words is None:
            self._add_phrases(window.right_key, right)
        self._add_window_to(key, window)

    def _add_window_to(self, key: str, window: Window) -> None:
        self._window_of[window.left_key] = self._window_of[window.right_key] = len(self.windows)
        self.windows.append((key, window, window.left_key, window.right_key))

    def __call__(self, doc: Doc, sentences=None, words: Sequence[str] | None = None,
                 flags: Sequence[int] | None = None) -> dict[str, list[tuple[int, int]]]:
        """Spans per key found in ``doc``; windows never cross a sentence (``sentences``: (start, end) per token).

        ``words`` and ``flags``: each token's text and ``PUNCT``/``NUMBER`` bits, when the caller has them (a cleaned
        message does: ``CleanText.tokens`` and ``flags``); windows read them instead of making spaCy ``Token``s."""
        strings = self.vocab.strings
        found: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for match_id, start, end in self.phrases(doc):
            found[strings[match_id]].append((start, end))
        if self.matcher_patterns:
            for match_id, start, end in self.matcher(doc):
                name = strings[match_id]
                if not name.endswith(_AT_END):
                    found[name].append((start, end))
                elif end >= message_end(doc):
                    found[name[:-len(_AT_END)]].append((start, end))
        # Only the windows one of whose sides was found (a message meets a few of them), in the order they were added.
        triggered = sorted({self._window_of[k] for k in found.keys() & self._window_of.keys()})
        if triggered and (words is None or flags is None):
            words, flags = _token_view(doc)
        for index in triggered:
            key, w, left_key, right_key = self.windows[index]
            lefts, rights = found.get(left_key), found.get(right_key)
            if w.one:
                self._single_window(doc, flags, w, lefts, rights, found[key])
                continue
            if w.left_words is not None or w.right_words is not None:
                found[key].extend(self._word_side(words, flags, w, lefts, rights, sentences))
                continue
            if not lefts or not rights:
                continue
            for a_start, a_end in lefts:
                for b_start, b_end in rights:
                    if (a_end <= b_start <= a_end + w.gap and _gap_ok(words, flags, a_end, b_start, w)
                            and (sentences is None or sentences[a_start] == sentences[b_start])):
                        found[key].append((a_start, b_end))
        return {k: v for k, v in found.items() if v and "\x1f" not in k}

    @staticmethod
    def _single_window(doc: Doc, flags: Sequence[int], w: Window, lefts, rights, out: list) -> None:
        def fits(i: int) -> bool:
            if not 0 <= i < len(flags):
                return False
            if w.kind == "number":
                return bool(flags[i] & NUMBER)
            return bool(flags[i] & PUNCT) if w.kind == "punct" else True

        if w.has_left and w.has_right:
            if lefts and rights:
                ends = defaultdict(list)  # right phrases by start: several when a right token is optional
                for b_start, b_end in rights:
                    ends[b_start].append(b_end)
                out.extend((a, b_end) for a, e in lefts if fits(e) for b_end in ends.get(e + 1, ()))
        elif w.has_left and lefts:
            out.extend((a, e + 1) for a, e in lefts if fits(e))
            if w.kind == "punct":  # the end of the message closes a phrase like a full stop
                out.extend((a, e) for a, e in lefts if e >= message_end(doc))
        elif w.has_right and rights:
            out.extend((b - 1, e) for b, e in rights if fits(b - 1))

    @staticmethod
    def _word_side(words: Sequence[str], flags: Sequence[int], w: Window, lefts, rights,
                   sentences) -> list[tuple[int, int]]:
        """A window one of whose sides is a word set: that word is looked for within the gap of each match of the
        other side. Spans come in the order the two-phrase-set loop gives them (by start, then end)."""
        out = []
        if w.left_words is not None:
            for b_start, b_end in rights or ():
                for a_start in range(max(b_start - 1 - w.gap, 0), b_start):
                    if (words[a_start].lower() in w.left_words and _gap_ok(words, flags, a_start + 1, b_start, w)
                            and (sentences is None or sentences[a_start] == sentences[b_start])):
                        out.append((a_start, b_end))
        else:
            for a_start, a_end in lefts or ():
                for b_start in range(a_end, min(a_end + w.gap + 1, len(words))):
                    if (words[b_start].lower() in w.right_words and _gap_ok(words, flags, a_end, b_start, w)
                            and (sentences is None or sentences[a_start] == sentences[b_start])):
                        out.append((a_start, b_start + 1))
        return sorted(out)


def _gap_ok(words: Sequence[str], flags: Sequence[int], start: int, end: int, w: Window) -> bool:
    """No token between ``start`` and ``end`` is punctuation (when the gap forbids it) or one of its stop words."""
    for i in range(start, end):
        if (w.no_punct and flags[i] & PUNCT) or words[i].lower() in w.stop:
            return False
    return True


def _token_view(doc: Doc) -> tuple[list[str], list[int]]:
    """Each token's text and ``PUNCT``/``NUMBER`` bits, read from the Doc (for callers without a ``CleanText``)."""
    return [t.text for t in doc], [PUNCT * t.is_punct | NUMBER * t.like_num for t in doc]
