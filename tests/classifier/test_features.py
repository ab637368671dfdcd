"""The serving-time feature helpers against the plain Python they stand for."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from classifier.features import PairIndex

_KEYS = st.integers(min_value=0, max_value=2**62)


@given(st.dictionaries(_KEYS, st.integers(min_value=0, max_value=2**40), max_size=300),
       st.lists(_KEYS, max_size=100))
def test_pair_index_answers_as_a_dict(table, others):
    index = PairIndex(np.array(list(table), dtype=np.int64), np.array(list(table.values()), dtype=np.int64))
    queries = [*table, *others]
    got = index.get(np.array(queries, dtype=np.int64)).tolist()
    assert got == [table.get(k, -1) for k in queries]


def test_pair_index_keeps_the_first_value_of_a_repeated_key_and_handles_crowded_slots():
    # Keys that differ only above the hash's top bits pile onto few home slots: probing must still find each.
    keys = np.array([7, 7, *(i << 40 for i in range(1, 200))], dtype=np.int64)
    values = np.arange(len(keys), dtype=np.int64)
    index = PairIndex(keys, values)
    assert index.get(np.array([7], dtype=np.int64)).tolist() == [0]
    assert index.get(keys[2:]).tolist() == values[2:].tolist()
    assert index.get(np.array([8, 1 << 40 | 1], dtype=np.int64)).tolist() == [-1, -1]
    assert index.get(np.array([], dtype=np.int64)).tolist() == []
