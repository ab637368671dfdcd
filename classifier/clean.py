"""Spanish text handling: e-mail noise removal, accent folding and one spaCy tokenisation per message.

The cleaned text keeps a map back to the original, so evidence found on the folded, cleaned tokens is
shown on the words the customer actually wrote. Folding is one character for one character
("caído" → "caido", "contraseña" → "contrasena"), so offsets survive it.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import compress

import numpy as np
import spacy
from spacy.attrs import ORTH
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc

from classifier.memo import BoundedMemo

# Lines that start a quoted previous reply: everything from here to the end of the body is history.
_REPLY_HEADER = re.compile(
    r"^\s*(?:"
    r"el\s.{0,80}?\d{1,2}.{0,120}?escribi[oó]\s*:?"       # El lun, 3 nov 2025 a las 9:12, X <x@y> escribió:
    r"|on\s.{0,120}?wrote\s*:"                            # On Mon, ... wrote:
    r"|-{2,}\s*(?:mensaje\s+original|original\s+message)\s*-{2,}"
    r"|_{5,}"                                             # Outlook separator line
    r")\s*$",
    re.IGNORECASE,
)
# Header block of a forwarded message or an Outlook-style quoted reply (De:/Enviado:/Para:/Asunto: lines).
_FORWARD_MARK = re.compile(
    r"^\s*-{2,}\s*(?:mensaje\s+reenviado|forwarded\s+message|reenviado)\s*-{2,}\s*$|^\s*(?:inicio\s+del\s+mensaje\s+reenviado|begin\s+forwarded\s+message)\s*:?\s*$",
    re.IGNORECASE,
)
_HEADER_LINE = re.compile(r"^\s*\**(?:de|from|para|to|cc|cco|enviado|enviado\s+el|sent|fecha|date|asunto|subject)\s*\**\s*:",
                          re.IGNORECASE)
_SUBJECT_LINE = re.compile(r"^\s*\**(?:asunto|subject)\s*\**\s*:", re.IGNORECASE)
_QUOTED = re.compile(r"^\s*>")
_SIGNATURE_MARK = re.compile(
    r"^\s*(?:--\s*|enviado\s+desde\s+mi\s+.*|sent\s+from\s+my\s+.*|obtener\s+outlook\s+para\s+.*|get\s+outlook\s+for\s+.*)$",
    re.IGNORECASE,
)
# Legal notices, matched on the lower-cased line: each phrase under a word it must contain. A phrase is searched
# only in a line holding its word (a substring test), and each starts with a plain word that re finds at C speed;
# one alternation of them all cost ~20 µs a line (Python's re tries every branch at every position).
_DISCLAIMER_PHRASES = {hint: re.compile(phrase) for hint, phrase in (
    ("confidencial", r"confidencial"),
    ("aviso", r"aviso\s+legal"),
    ("este", r"este\s+(?:mensaje|correo)\s+(?:y\s+sus\s+anexos\s+)?(?:es|son|puede|contiene|electr)"),
    ("destinatario", r"destinatario"),
    ("1581", r"ley\s+1581"),
    ("habeas", r"habeas\s+data"),
    ("tratamiento", r"tratamiento\s+de\s+datos"),
    ("imprimir", r"antes\s+de\s+imprimir"),
    ("ambiente", r"medio\s+ambiente"),
    ("disclaimer", r"disclaimer"),
    ("intended", r"intended\s+recipient"),
)}
_DISCLAIMER_HINTS = tuple(_DISCLAIMER_PHRASES)
# A line that is only a greeting or a closing formula carries no request.
_FORMULA_LINE = re.compile(
    r"^\s*(?:(?:muy\s+)?(?:buen[oa]s?\s+(?:d[ií]as?|tardes?|noches?)|buen\s+d[ií]a|hola|saludos(?:\s+cordiales)?|"
    r"cordial(?:mente)?(?:\s+saludo)?|atentamente|respetuosamente|un\s+saludo|apreciad[oa]s?|estimad[oa]s?|"
    r"respetad[oa]s?|se[ñn]or(?:es|a|as)?|doctor[a]?|ingenier[oa]|buenas|gracias|muchas\s+gracias|mil\s+gracias|"
    r"quedo\s+atent[oa]|quedamos\s+atent[oa]s|feliz\s+d[ií]a)"
    r"(?:\s+[\wáéíóúñ.]+){0,3}\s*[,.!:;]*\s*)$",
    re.IGNORECASE,
)

_CLOSING_LINE = re.compile(
    r"^\s*(?:atentamente|cordialmente|respetuosamente|saludos(?:\s+cordiales)?|un\s+saludo|cordial\s+saludo|"
    r"(?:muchas\s+|mil\s+)?gracias(?:\s+de\s+antemano|\s+por\s+su\s+atenci[oó]n)?|quedo\s+atent[oa]|"
    r"quedamos\s+atent[oa]s|feliz\s+d[ií]a|bendiciones)\b.{0,40}$",
    re.IGNORECASE,
)
# Any of the line checks of ``_noise_ranges`` (a superset: IGNORECASE for all), so a plain line costs one look.
# Runs of symbols (no letter, digit or space) cost spaCy's tokenizer time with the square of their length (it strips
# prefixes and suffixes one at a time): 4,000 ")" take 1.5 s. Past the first few, such symbols carry no words.
_SYMBOL_RUN_KEEP = 8
_SYMBOL_RUN = re.compile(rf"(?:[^\w\s]|_){{{_SYMBOL_RUN_KEEP + 1},}}")
# Latin-1 text (most Spanish) is looked at through a byte table that marks those symbols ("#"), at C speed (~1 µs
# against ~8 for the search); other text goes to a narrower class on folded text first, then to the exact search.
_SYMBOL_MARKS = bytes(ord("#") if c == "_" or not (c.isalnum() or c.isspace()) else ord("a")
                      for c in map(chr, range(256)))
_MARKED_RUN = b"#" * (_SYMBOL_RUN_KEEP + 1)
_MAYBE_SYMBOL_RUN = re.compile(rf"[^a-z0-9\s]{{{_SYMBOL_RUN_KEEP + 1},}}")
_MAYBE_NOISE = re.compile("|".join(f"(?:{r.pattern})" for r in (_REPLY_HEADER, _FORWARD_MARK, _HEADER_LINE, _QUOTED,
                                                                _SIGNATURE_MARK, _FORMULA_LINE, _CLOSING_LINE)),
                          re.IGNORECASE)
_SIGNATURE_LINE_MAX = 70  # after a closing formula, shorter lines are taken as the signature block

def _fold_char(ch: str) -> str:
    base = unicodedata.normalize("NFD", ch)
    kept = "".join(c for c in base if not unicodedata.combining(c))
    return kept if len(kept) == 1 else ch


# Lower-case and accent folding as one str.translate table (C speed); every entry maps one character to one.
_FOLD_TABLE = {}
for _code in range(0x80, 0x2000):
    _ch = chr(_code)
    _low = _ch.lower()
    _folded = _fold_char(_low) if len(_low) == 1 else _ch
    if _folded != _ch:
        _FOLD_TABLE[_code] = _folded
for _code in range(ord("A"), ord("Z") + 1):
    _FOLD_TABLE[_code] = chr(_code).lower()


# The same table as arrays, because str.translate looks up a dict per character (~45 ns each): Latin-1 text (most
# Spanish) goes through bytes.translate; anything else through a numpy code-point lookup.
_FOLD_CODES = np.arange(0x2000, dtype=np.uint32)
for _code, _folded in _FOLD_TABLE.items():
    _FOLD_CODES[_code] = ord(_folded)
_FOLD_BYTES = _FOLD_CODES[:256].astype(np.uint8).tobytes()


def fold(text: str) -> str:
    """Lower-case and strip accents one character for one ("Caído" → "caido"), keeping offsets."""
    try:
        return text.encode("latin-1").translate(_FOLD_BYTES).decode("latin-1")
    except UnicodeEncodeError:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        small = codes < len(_FOLD_CODES)
        return np.where(small, _FOLD_CODES[np.where(small, codes, 0)], codes).tobytes().decode("utf-32-le")


def _quiet_symbol_runs(folded: str) -> str:
    """Blank out each symbol run past its first few characters (same length, so offsets hold): tokenising stays linear."""
    try:
        if _MARKED_RUN not in folded.encode("latin-1").translate(_SYMBOL_MARKS):
            return folded
    except UnicodeEncodeError:
        if _MAYBE_SYMBOL_RUN.search(folded) is None or _SYMBOL_RUN.search(folded) is None:
            return folded
    return _SYMBOL_RUN.sub(lambda m: m[0][:_SYMBOL_RUN_KEEP] + " " * (len(m[0]) - _SYMBOL_RUN_KEEP), folded)


def spanish() -> Language:
    """The one blank Spanish pipeline every step shares (tokenizer only: sentences come from ``sentences``): the
    ``Language`` of the process's ``Cleaner``, whose vocabulary the rules and the model input match on."""
    return cleaner().nlp


def _blank_spanish(chunk_cache: int) -> Language:
    """A blank Spanish ``Language`` whose tokenizer is built with this project's settings (set here and nowhere else).

    Whitespace is dropped from the tokenizer's special cases: a line break is one token either way, but a
    special case in a text stops spaCy caching every later chunk of it, and every e-mail has line breaks. The
    chunk cache (``chunk_cache`` chunks) is also larger than spaCy's 10,000 (the rule phrases alone fill that at
    start-up); spaCy stops adding to it when full. Everything else is spaCy's stock Spanish tokenizer."""
    nlp = spacy.blank("es")
    stock = nlp.tokenizer
    nlp.tokenizer = Tokenizer(
        nlp.vocab, rules={key: value for key, value in stock.rules.items() if not key.isspace()},
        prefix_search=stock.prefix_search, suffix_search=stock.suffix_search, infix_finditer=stock.infix_finditer,
        token_match=stock.token_match, url_match=stock.url_match, faster_heuristics=stock.faster_heuristics,
        max_cache_size=chunk_cache)
    return nlp


class _once:  # noqa: N801 (a decorator, named like the one it replaces)
    """``functools.cached_property`` without its lock: on Python 3.11 every first read takes one lock shared by all
    instances (~1 µs, five reads a message). The value goes into the instance's ``__dict__``, which later reads find
    first; computing it twice in a race is harmless (a pure function of the frozen instance)."""

    def __init__(self, compute):
        self.compute, self.name, self.__doc__ = compute, compute.__name__, compute.__doc__

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.compute(instance)
        return value


@dataclass(frozen=True)
class CleanText:
    """A message after clean-up: folded text, its tokens, and the way back to the original."""

    original: str          # subject + "\n" + body, as written
    subject_length: int    # characters of the subject at the start of ``original`` (0 when none)
    text: str              # cleaned text, original casing
    folded: str            # ``text`` lower-cased, accent-folded, long symbol runs blanked (same length)
    doc: Doc               # tokens of ``folded``; the same Doc feeds the rules and the model
    chunks: tuple[tuple[int, int, int], ...]  # (clean_start, original_start, length), sorted
    removed: tuple[str, ...]  # kinds of noise removed ("respuesta_citada", "firma", ...)
    truncated: bool
    lexemes: Mapping[int, tuple[str, int, int, bool]] = field(repr=False, compare=False)  # its cleaner's memo

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a [start, end) span of the cleaned text to the original text."""
        return self._map(start), self._map(max(end - 1, start)) + (1 if end > start else 0)

    def _map(self, pos: int) -> int:
        starts = [c[0] for c in self.chunks]
        i = max(bisect_right(starts, pos) - 1, 0)
        if not self.chunks:
            return 0
        clean_start, orig_start, length = self.chunks[i]
        return orig_start + min(pos - clean_start, max(length - 1, 0))

    def field_of(self, original_start: int) -> tuple[str, int]:
        """Which field an original offset falls in, and the offset inside that field."""
        if self.subject_length and original_start < self.subject_length:
            return "subject", original_start
        offset = original_start - (self.subject_length + 1 if self.subject_length else 0)
        return "body", max(offset, 0)

    @_once
    def _columns(self) -> tuple[tuple, tuple, tuple, tuple]:
        """(texts, flags, sentence roles, word mask), one tuple each with an entry per token, read once from the Doc
        through its cleaner's memo."""
        lexemes = list(map(self.lexemes.__getitem__, self.doc.to_array(ORTH).tolist()))
        return tuple(zip(*lexemes)) if lexemes else ((), (), (), ())  # type: ignore[return-value]

    @_once
    def tokens(self) -> tuple[str, ...]:
        """Token texts (folded)."""
        return self._columns[0]

    @_once
    def flags(self) -> tuple[int, ...]:
        """Per token, ``PUNCT | SPACE | NUMBER`` bits (punctuation, whitespace, looks like a number)."""
        return self._columns[1]

    @_once
    def word_mask(self) -> tuple[bool, ...]:
        """Per token, whether it is a word (neither punctuation nor whitespace): what the model reads."""
        return self._columns[3]

    @_once
    def sentences(self) -> tuple[tuple[int, int], ...]:
        """Sentence (start, end) per token: a sentence ends after . ! ? … or a line break; ¿ and ¡ open one."""
        roles = self._columns[2]
        count = len(roles)
        bounds: list[tuple[int, int]] = []
        start = 0
        for i in compress(range(count), roles):  # the few tokens that end or open a sentence
            if roles[i] == _OPENS:
                if i > start:
                    bounds.append((start, i))
                    start = i
            else:
                bounds.append((start, i + 1))
                start = i + 1
        if start < count:
            bounds.append((start, count))
        out: list[tuple[int, int]] = []
        for a, b in bounds:
            out.extend([(a, b)] * (b - a))
        return tuple(out)


PUNCT, SPACE, NUMBER = 1, 2, 4
_ENDS, _OPENS = 1, 2


class Cleaner:
    """``clean`` for one spaCy pipeline: its blank Spanish ``nlp`` (see ``_blank_spanish``) and the memo of its
    tokens' text, flags and sentence role (tokens repeat across messages). The process shares one, ``cleaner()``;
    another instance has its own ``Language`` and its own memo."""

    def __init__(self, *, chunk_cache: int = 100_000, lexeme_memo: int = 500_000):
        """``chunk_cache``: chunks (whitespace-separated pieces) the tokenizer remembers, about 10 MB when full;
        ``lexeme_memo``: distinct tokens (orth ids) whose properties are remembered."""
        self.nlp = _blank_spanish(chunk_cache)
        self.lexemes: BoundedMemo[int, tuple[str, int, int, bool]] = BoundedMemo(self._lexeme, lexeme_memo)

    def _lexeme(self, orth: int) -> tuple[str, int, int, bool]:
        lexeme = self.nlp.vocab[orth]
        token = lexeme.orth_
        flags = PUNCT * lexeme.is_punct | SPACE * lexeme.is_space | NUMBER * lexeme.like_num
        if token in (".", "!", "?", "…", "...") or "\n" in token:
            role = _ENDS
        else:
            role = _OPENS if token in ("¿", "¡") else 0
        return token, flags, role, not flags & (PUNCT | SPACE)

    def clean(self, subject: str, body: str, *, max_chars: int = 20000) -> CleanText:
        """Drop quoted replies, forwarded headers, signatures, disclaimers and greetings; fold; tokenise once."""
        subject = (subject or "").strip()
        body = body or ""
        original = f"{subject}\n{body}" if subject else body
        truncated = len(original) > max_chars
        offset = len(subject) + 1 if subject else 0
        keep, removed = _noise_ranges(body[: max(max_chars - offset, 0)] if truncated else body)
        pieces: list[str] = []
        chunks: list[tuple[int, int, int]] = []
        cursor = 0

        def add(orig_start: int, text: str) -> None:
            nonlocal cursor
            if pieces:
                pieces.append("\n")
                cursor += 1
            chunks.append((cursor, orig_start, len(text)))
            pieces.append(text)
            cursor += len(text)

        if subject:
            add(0, _strip_reply_prefix(subject))
        for start, end in keep:
            text = body[start:end].rstrip("\r\n")
            add(offset + start, text)
        text = "".join(pieces)
        folded = _quiet_symbol_runs(fold(text))
        doc = self.nlp.make_doc(folded)
        return CleanText(original, len(subject), text, folded, doc, tuple(chunks), tuple(dict.fromkeys(removed)),
                         truncated, self.lexemes)


_CLEANER: Cleaner | None = None
_CLEANER_LOCK = threading.Lock()


def cleaner() -> Cleaner:
    """The process's one ``Cleaner``, built on first use (under a lock, so every caller gets the same one: patterns
    built on its vocabulary match the Docs ``clean`` makes)."""
    global _CLEANER
    if _CLEANER is None:
        with _CLEANER_LOCK:
            if _CLEANER is None:
                _CLEANER = Cleaner()
    return _CLEANER


def _noise_ranges(body: str) -> tuple[list[tuple[int, int]], list[str]]:
    """Character ranges of the body to keep, and the kinds of noise dropped."""
    lines = body.splitlines(keepends=True)
    low = body.lower()
    hints = tuple(hint for hint in _DISCLAIMER_HINTS if hint in low)  # a legal notice line holds one of them
    keep: list[tuple[int, int]] = []
    removed: list[str] = []
    pos = 0
    in_forward_header = False
    cut = False
    seen_content = False
    in_signature = False
    for line in lines:
        start, end = pos, pos + len(line)
        pos = end
        stripped = line.strip()
        if cut:
            continue
        if not stripped:
            in_forward_header = False
            continue
        if not in_signature and not _MAYBE_NOISE.match(stripped) and not (hints and len(stripped) > 60
                                                                          and _is_disclaimer(stripped, hints)):
            keep.append((start, end))  # most lines: one look says none of the checks below can apply
            seen_content = True
            continue
        if _REPLY_HEADER.match(stripped) and seen_content:
            removed.append("respuesta_citada")
            cut = True
            continue
        if _FORWARD_MARK.match(stripped):
            removed.append("encabezado_reenvio")
            in_forward_header = True
            continue
        # Header lines at the top of a body are a pasted header block, except a subject line on its own: people and
        # web forms write "Asunto: error al generar la nómina …" as the first line of what they ask.
        if _HEADER_LINE.match(stripped) and (in_forward_header or _looks_like_header_block(line) or (
                not seen_content and not _SUBJECT_LINE.match(stripped))):
            removed.append("encabezado_reenvio")
            in_forward_header = True
            continue
        if _QUOTED.match(line):
            removed.append("respuesta_citada")
            continue
        if _SIGNATURE_MARK.match(stripped):
            removed.append("firma")
            if seen_content:
                cut = True
            continue
        if hints and len(stripped) > 60 and _is_disclaimer(stripped, hints):
            removed.append("aviso_legal")
            continue
        if in_signature and len(stripped) < _SIGNATURE_LINE_MAX:
            removed.append("firma")
            continue
        if _FORMULA_LINE.match(stripped) or (seen_content and _CLOSING_LINE.match(stripped)):
            removed.append("saludo")
            in_signature = in_signature or (seen_content and bool(_CLOSING_LINE.match(stripped)))
            continue
        in_signature = False
        keep.append((start, end))
        seen_content = True
    return keep, removed


def _is_disclaimer(line: str, hints: tuple[str, ...] = _DISCLAIMER_HINTS) -> bool:
    """A legal notice line; ``hints``: the hint words its message holds (most messages hold none, and those that do
    hold one or two, so a line costs a substring test or two before any search)."""
    low = line.lower()
    return any(_DISCLAIMER_PHRASES[hint].search(low) is not None for hint in hints if hint in low)


def _looks_like_header_block(line: str) -> bool:
    return bool(re.match(r"^\s*(?:de|from)\s*:.*[@<]", line, re.IGNORECASE))


def clean(subject: str, body: str, *, max_chars: int = 20000) -> CleanText:
    """Drop quoted replies, forwarded headers, signatures, disclaimers and greetings; fold; tokenise once (with the
    process's ``cleaner()``)."""
    return cleaner().clean(subject, body, max_chars=max_chars)


def _strip_reply_prefix(subject: str) -> str:
    """Blank out "RE:", "RV:", "FW:" prefixes (same length, so offsets hold)."""
    match = re.match(r"^(?:\s*(?:re|rv|fw|fwd|reenv|tr)\s*:\s*)+", subject, re.IGNORECASE)
    if not match:
        return subject
    return " " * match.end() + subject[match.end():]
