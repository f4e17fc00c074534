"""A read-through mirror of a few payload fields of records, for a store that one process owns.

Qdrant Edge is opened by one process only, so every write to it passes through this process, and
a copy of what it last read stays true until this process writes that record again. The mirror
serves those reads with no engine call and no thread hop. Writes invalidate before and after they
land, and a read started before an invalidation is not kept (the epoch check), so a reader never
puts back a value that a write has replaced.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from cachetools import LRUCache

ABSENT = object()  # the record does not exist (also worth remembering)


class Mirror:
    """Values by point id; thread-safe."""

    def __init__(self, max_entries: int) -> None:
        self._lock = threading.Lock()
        self._values: LRUCache[str, Any] = LRUCache(max_entries)
        self._epoch = 0

    def peek(self, ids: Iterable[str]) -> dict[str, Any] | None:
        """The mirrored values of ``ids`` (ABSENT for known-missing), or None if one is unknown."""
        with self._lock:
            try:
                return {i: self._values[i] for i in ids}
            except KeyError:
                return None

    def read(self, ids: list[str], load: Callable[[list[str]], dict[str, Any]]) -> dict[str, Any]:
        """Values of ``ids``: mirrored ones as they are, the rest loaded (and kept unless a write
        intervened). ``load`` returns the values of the ids that exist."""
        with self._lock:
            known = {i: self._values[i] for i in ids if i in self._values}
            epoch = self._epoch
        missing = [i for i in ids if i not in known]
        if missing:
            loaded = load(missing)
            fresh = {i: loaded.get(i, ABSENT) for i in missing}
            with self._lock:
                if self._epoch == epoch:
                    for i, v in fresh.items():
                        self._values[i] = v
            known.update(fresh)
        return known

    def invalidate(self, ids: Iterable[str] | None) -> None:
        """Forget ``ids`` (None: everything); called before and after each write."""
        with self._lock:
            self._epoch += 1
            if ids is None:
                self._values.clear()
            else:
                for i in ids:
                    self._values.pop(i, None)
