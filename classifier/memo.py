"""``BoundedMemo``: the one shape of memo the text path uses, a dict with a size bound that computes on a miss.

Each memo is created by the object that uses it, with its bound, in that object's constructor (never a module
global), so two models or two pipelines never share one and a memo lives as long as its owner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedMemo(dict[K, V], Generic[K, V]):
    """key → ``compute(key)``, computed on first sight; emptied when full, so it never holds more than ``max_size``.

    ``memo[key]`` (or ``map(memo.__getitem__, keys)``) is a plain dict lookup on a hit, at C speed."""

    __slots__ = ("compute", "max_size")

    def __init__(self, compute: Callable[[K], V], max_size: int):
        super().__init__()
        if max_size < 1:
            raise ValueError(f"max_size={max_size}: a memo holds at least one entry")
        self.compute = compute
        self.max_size = max_size

    def __missing__(self, key: K) -> V:
        # Emptying rather than evicting one by one: the hot keys are back after one pass, and a hit stays one lookup.
        # Under threads a race at worst computes a value twice (``compute`` must be a pure function of the key).
        if len(self) >= self.max_size:
            self.clear()
        value = self[key] = self.compute(key)
        return value

    def __repr__(self) -> str:
        name = getattr(self.compute, "__qualname__", repr(self.compute))
        return f"{type(self).__name__}({name}, {len(self)} of {self.max_size} entries)"
