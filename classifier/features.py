"""Serving-time scores of a fitted ``PriorityModel``: its TF-IDF features computed for a whole batch with array
operations, and the linear heads applied block by block.

Every distinct token gets an integer id once per scorer (its ``TokenTable``), with what the model needs of it:
whether it is a word, its unigram column and its ``char_wb`` n-gram counts. A batch is then a few array operations
over token ids (bigrams are pairs of ids looked up in a ``PairIndex``), not string joins and dict lookups per n-gram.
One message (the API's case) skips the token ids: each of its column occurrences is one row of the combined
weight table (``_one``). Both paths equal scikit-learn's ``transform`` (tested), without its per-call overhead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from itertools import chain, compress

import numpy as np
from scipy.sparse import csr_matrix

from classifier.memo import BoundedMemo

_SHIFT = np.int64(32)


class _Growing:
    """An append-only numpy array with amortised doubling (views stay valid for readers)."""

    def __init__(self, dtype, initial: int = 1024):
        self.data = np.zeros(initial, dtype=dtype)
        self.size = 0

    def extend(self, values) -> None:
        values = np.asarray(values, dtype=self.data.dtype)
        end = self.size + len(values)
        if end > len(self.data):
            grown = np.zeros(max(end, 2 * len(self.data)), dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size:end] = values
        self.size = end

    def view(self) -> np.ndarray:
        return self.data[: self.size]


class PairIndex:
    """int64 keys → int64 values in an open-addressing hash table (linear probing), read for a whole array of keys
    at once: each probe round is a few array operations. A binary search over the 77k sorted bigram keys cost
    ~9 µs per e-mail (17 dependent cache misses a key); this costs ~1."""

    _MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the top bits of key × 2^64/φ

    def __init__(self, keys: np.ndarray, values: np.ndarray):
        keys, values = np.asarray(keys, dtype=np.int64), np.asarray(values, dtype=np.int64)
        bits = max(4, int(np.ceil(np.log2(3 * max(len(keys), 1)))))  # at most a third full
        self._shift, self._mask = np.uint64(64 - bits), (1 << bits) - 1
        self.keys = np.full(1 << bits, -1, dtype=np.int64)  # keys are ≥ 0: -1 marks an empty slot
        self.values = np.zeros(1 << bits, dtype=np.int64)
        home = self._home(keys)
        pending = np.unique(keys, return_index=True)[1]  # a repeated key keeps its first value
        self.probes = 0  # rounds a lookup may need: every key sits at most this many slots past its home
        while len(pending):
            slots = (home[pending] + self.probes) & self._mask
            free = np.flatnonzero(self.keys[slots] == -1)
            taken, first = np.unique(slots[free], return_index=True)  # one key per free slot this round
            winners = pending[free[first]]
            self.keys[taken], self.values[taken] = keys[winners], values[winners]
            placed = np.zeros(len(pending), dtype=bool)
            placed[free[first]] = True
            pending = pending[~placed]
            self.probes += 1

    def _home(self, keys: np.ndarray) -> np.ndarray:
        return ((keys.astype(np.uint64) * self._MULTIPLIER) >> self._shift).astype(np.int64)

    def get(self, keys: np.ndarray, default: int = -1) -> np.ndarray:
        """The value of each key, ``default`` where a key is absent."""
        out = np.full(len(keys), default, dtype=np.int64)
        home, active = self._home(keys), np.arange(len(keys))
        for probe in range(self.probes):
            slots = (home[active] + probe) & self._mask
            found = self.keys[slots]
            hit = found == keys[active]
            out[active[hit]] = self.values[slots[hit]]
            active = active[~hit & (found != -1)]  # an empty slot ends a key's search
            if not len(active):
                break
        return out


class _TokenIds(dict):
    """token → id; a missing token is added to the table on first sight."""

    def __init__(self, table: "TokenTable"):
        super().__init__()
        self.table = table

    def __missing__(self, token: str) -> int:
        return self.table._add(token)


class TokenTable:
    """Token → integer id (``ids[token]``, a new token added on first sight), and per id, as arrays the batch path
    indexes: word or not, unigram column (−1 when none) and char n-gram counts; plus the vocabulary's bigrams, pairs
    of ids in a ``PairIndex``. Bounded between batches: ``make_room`` starts it over past ``max_size`` tokens (ids must
    hold while a batch is read, so one batch may take it past the bound until the next call)."""

    def __init__(self, vocabulary: dict[str, int], analyzer: Callable[[str], list[str]], char_vocab: dict[str, int],
                 is_word: Callable[[str], bool], max_size: int):
        self.vocabulary, self.analyzer, self.char_vocab, self.is_word = vocabulary, analyzer, char_vocab, is_word
        self.max_size = max_size
        self._fill()

    def make_room(self) -> None:
        """Start the table over if it holds more than ``max_size`` tokens (call it between batches only)."""
        if len(self.ids) > self.max_size:
            self._fill()

    def _fill(self) -> None:
        """An empty table, then the vocabulary's own tokens (unigrams and both halves of every bigram)."""
        self.ids = _TokenIds(self)
        self.word_flag = _Growing(bool)
        self.unigram = _Growing(np.int64)
        self.offsets = _Growing(np.int32)  # int32 like the columns: scipy would copy an int64 index to int32
        self.offsets.extend([0])
        self._char_counts: csr_matrix | None = None
        self.gram_cols = _Growing(np.int32, 1 << 16)
        self.gram_counts = _Growing(np.float32, 1 << 16)
        keys, cols = [], []
        for term, col in self.vocabulary.items():
            parts = term.split(" ")
            if len(parts) == 1:
                token_id = self.ids[term]  # first: adding the token may grow ``unigram.data``
                self.unigram.data[token_id] = col
            elif len(parts) == 2:
                keys.append((self.ids[parts[0]] << 32) | self.ids[parts[1]])
                cols.append(col)
        self.bigrams = PairIndex(np.asarray(keys, dtype=np.int64), np.asarray(cols, dtype=np.int64))

    def _add(self, token: str) -> int:
        token_id = len(self.ids)
        grams: dict[int, int] = {}
        for gram in self.analyzer(token):
            j = self.char_vocab.get(gram)
            if j is not None:
                grams[j] = grams.get(j, 0) + 1
        self.gram_cols.extend(list(grams.keys()))
        self.gram_counts.extend(list(grams.values()))
        self.offsets.extend([self.gram_cols.size])
        self.word_flag.extend([self.is_word(token)])
        self.unigram.extend([-1])
        self.ids[token] = token_id
        return token_id

    def char_counts(self, width: int) -> csr_matrix:
        """(tokens × char columns) n-gram counts of every token in the table; built again only after tokens were
        added (building checks ~340k entries: ~1 ms a batch)."""
        rows = self.offsets.size - 1
        if self._char_counts is None or self._char_counts.shape != (rows, width):
            self._char_counts = csr_matrix((self.gram_counts.view(), self.gram_cols.view(), self.offsets.view()),
                                           shape=(rows, width))
        return self._char_counts


class BatchScorer:
    """Scores of the priority and request-type heads for a batch of ``ModelInput`` (one row per message).

    It owns its memos, bounded here: the batch path's ``TokenTable`` (``max_tokens`` tokens, checked between
    batches), and for the single-message path each token's char columns and its word-or-not flag
    (``max_single_tokens`` tokens each, ~20 MB at most for the columns)."""

    def __init__(self, model, is_word: Callable[[str], bool], rule_prefix: str, *, max_tokens: int = 400_000,
                 max_single_tokens: int = 100_000):
        """``model``: a ``ServingModel`` (vocabularies, idf, heads' weights and its ``char_analyzer``);
        ``is_word``: whether a token is a word (what word n-grams are made of), memoised here."""
        self.rule_prefix = rule_prefix
        self.analyzer = model.char_analyzer
        self.char_vocab = model.char_vocabulary
        words = model.word_vocabulary
        self.word_width, self.char_width = len(words), len(self.char_vocab)
        heads = [model.coef_]
        intercepts = [model.intercept_]
        for name in ("type", "gate"):  # request type, then the incomplete-or-not gate (when the model has them)
            coef = getattr(model, f"{name}_coef_", None)
            if coef is not None and len(coef):
                heads.append(coef)
                intercepts.append(getattr(model, f"{name}_intercept_"))
        weights = np.vstack(heads).astype(np.float64)
        # One row per feature column: its idf, then its weight in each head. A message reads a few hundred scattered
        # columns; float32 rows of 14 values take one cache line each (idf and float64 weights apart took three).
        # Word columns, then char columns (the single-message path reads both blocks in one take).
        self.table = np.ascontiguousarray(np.column_stack([np.concatenate([model.word_idf, model.char_idf]),
                                                           weights.T]), dtype=np.float32)
        self.word_table, self.char_table = self.table[: self.word_width], self.table[self.word_width:]
        self.seen = np.zeros(len(self.table))  # occurrences per column while one message is scored (kept all zero)
        self.intercept = np.concatenate(intercepts).astype(np.float64)
        self.rule_cols: dict[str, int] = {}
        self.unigram_of: dict[str, int] = {}
        self.bigram_of: dict[tuple[str, str], int] = {}
        for term, col in words.items():
            if term.startswith(self.rule_prefix):
                self.rule_cols[term] = col
            parts = term.split(" ")
            if len(parts) == 1:
                self.unigram_of[term] = col
            elif len(parts) == 2:
                self.bigram_of[(parts[0], parts[1])] = col
            else:
                raise ValueError("the fast path knows word unigrams and bigrams only")
        self.lock = threading.Lock()  # the token table and ``seen`` are written while a batch is read
        self.tokens = TokenTable(words, self.analyzer, self.char_vocab, is_word, max_tokens)
        self.char_columns: BoundedMemo[str, np.ndarray] = BoundedMemo(self._char_columns, max_single_tokens)
        self.is_word: BoundedMemo[str, bool] = BoundedMemo(is_word, max_single_tokens)

    def _char_columns(self, token: str) -> np.ndarray:
        """A token's char n-gram columns (offset past the word columns), one entry per occurrence in the token."""
        vocabulary, offset = self.char_vocab, self.word_width
        return np.array([offset + j for j in map(vocabulary.get, self.analyzer(token)) if j is not None],
                        dtype=np.int32)

    def scores(self, X) -> np.ndarray:
        """(messages × heads) linear scores: priority classes first, then request types."""
        with self.lock:  # the token table grows while a batch is read; one batch at a time
            if len(X) == 1:
                return self._one(X[0])[None, :]
            self.tokens.make_room()
            lengths = np.fromiter(map(len, (x.tokens for x in X)), dtype=np.int64, count=len(X))
            ids = np.fromiter(map(self.tokens.ids.__getitem__, chain.from_iterable(x.tokens for x in X)),
                              dtype=np.int64, count=int(lengths.sum()))
            indptr = np.zeros(len(X) + 1, dtype=np.int64)
            np.cumsum(lengths, out=indptr[1:])
            table = self.tokens.char_counts(self.char_width)
            docs = csr_matrix((np.ones(len(ids), dtype=np.float32), ids.astype(np.int32), indptr.astype(np.int32)),
                              shape=(len(X), table.shape[0]))  # int32 indices: scipy checks int64 ones element-wise
            chars, char_norms = _tfidf(docs @ table, self.char_table[:, 0])
            words, word_norms = _tfidf(self._word_counts(X, ids, lengths), self.word_table[:, 0])
        # Each block is L2-normalised on its own, as in training: dividing the (messages × heads) products by the
        # row norms equals dividing every TF-IDF value first, and touches 15 numbers a message instead of ~1,000.
        return ((words @ self.word_table)[:, 1:] / word_norms[:, None]
                + (chars @ self.char_table)[:, 1:] / char_norms[:, None] + self.intercept)

    def _one(self, item) -> np.ndarray:
        """One message (the API's case) in a dozen array operations, without sparse matrices or a pass over the
        43k columns: every column occurrence (word columns first, then char columns) is one row of the table.

        A column seen ``c`` times has TF-IDF value ``(1 + ln c)·idf``; each of its occurrences carries a ``1/c``
        share of it, so sums over occurrences equal sums over columns and nothing needs de-duplicating."""
        tokens = item.tokens
        plain = list(compress(tokens, map(self.is_word.__getitem__, tokens)))
        words = [c for c in chain(map(self.unigram_of.get, plain), map(self.bigram_of.get, zip(plain, plain[1:])),
                                  (self.rule_cols.get(self.rule_prefix + r) for r in item.rules)) if c is not None]
        columns = np.concatenate([np.array(words, dtype=np.int32), *map(self.char_columns.__getitem__, tokens)])
        if not len(columns):
            return self.intercept.copy()
        np.add.at(self.seen, columns, 1.0)
        counts = self.seen[columns]
        self.seen[columns] = 0.0
        rows = self.table.take(columns, axis=0)
        values = np.log(counts)
        values += 1.0
        values *= rows[:, 0]
        share = values / counts
        split = len(words)
        for part, value in ((share[:split], values[:split]), (share[split:], values[split:])):
            norm = float(part @ value)  # each block L2-normalised on its own, as in training
            if norm:
                part *= norm ** -0.5
        return share.astype(np.float32) @ rows[:, 1:] + self.intercept  # float32 as the rows: no cast of them all

    def _word_counts(self, X, ids, lengths):
        rows = np.repeat(np.arange(len(X), dtype=np.int64), lengths)
        table = self.tokens
        keep = table.word_flag.view()[ids]
        plain, plain_rows = ids[keep], rows[keep]
        cols = table.unigram.view()[plain]
        found_rows, found_cols = [plain_rows[cols >= 0]], [cols[cols >= 0]]
        if len(plain) > 1:
            same = plain_rows[1:] == plain_rows[:-1]
            keys = ((plain[:-1] << _SHIFT) | plain[1:])[same]
            cols = table.bigrams.get(keys)
            hit = cols >= 0
            found_rows.append(plain_rows[:-1][same][hit])
            found_cols.append(cols[hit])
        rule_rows, rule_cols = [], []
        for i, item in enumerate(X):
            for rule in item.rules:
                col = self.rule_cols.get(self.rule_prefix + rule)
                if col is not None:
                    rule_rows.append(i)
                    rule_cols.append(col)
        found_rows.append(np.asarray(rule_rows, dtype=np.int64))
        found_cols.append(np.asarray(rule_cols, dtype=np.int64))
        rows, cols = np.concatenate(found_rows), np.concatenate(found_cols)
        counts = csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(X), self.word_width))
        counts.sum_duplicates()  # one entry per column in each row (sorted row by row: cheaper than one global sort)
        return counts


def _tfidf(counts, idf: np.ndarray) -> tuple[csr_matrix, np.ndarray]:
    """Sublinear TF-IDF values as ``TfidfVectorizer(sublinear_tf=True)`` computes them (written into ``counts``), and
    each row's L2 norm (1 for an empty row) to divide them by: the caller can apply it after a product.

    ``counts`` must hold each column at most once per row (its indices need not be sorted)."""
    counts = counts.tocsr()
    values = (1.0 + np.log(counts.data)) * idf[counts.indices]
    lengths = np.diff(counts.indptr)
    squares = np.bincount(np.repeat(np.arange(counts.shape[0]), lengths), weights=values * values,
                          minlength=counts.shape[0])
    norms = np.sqrt(squares)
    norms[norms == 0] = 1.0
    counts.data = values  # in place: the counts are the caller's temporary, and a new matrix re-checks its indices
    return counts, norms
