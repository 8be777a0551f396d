"""A small least-recently-used cache that many threads may share."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class LockedLRU(Generic[Value]):
    """The ``size`` most recently used values, built on demand.

    Parameters
    ----------
    size : int
        How many values are kept; the least recently used one is dropped beyond that.

    Notes
    -----
    A value is built outside the lock, so a slow build never blocks the lookups of other
    threads; two threads that miss the same key at once may both build it, and both get the
    one that was stored first.
    """

    def __init__(self, size: int):
        self.size = int(size)
        self._values: OrderedDict[Hashable, Value] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], Value]) -> Value:
        """The value for ``key``, from the cache or from ``build()``."""
        with self._lock:
            found = self._values.get(key)
            if found is not None:
                self._values.move_to_end(key)
                return found
        value = build()
        with self._lock:
            value = self._values.setdefault(key, value)
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        return value

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def clear(self) -> None:
        """Drop every value."""
        with self._lock:
            self._values.clear()
