"""A small thread-safe least-recently-used memo, shared by the layers that cache per cell.

The layout (per lattice cell) and the streams (per routing cell) keep the objects of the cells
a tile needs; a value is a pure function of its key, so the cache only ever saves time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class LRU:
    """A small thread-safe least-recently-used memo: ``get(key, make)``."""

    def __init__(self, items: int) -> None:
        self._items = items
        self._d: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        """Return the value kept for ``key``, else ``make()`` (kept for the next caller)."""
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        value = make()
        with self._lock:
            self._d[key] = value
            while len(self._d) > self._items:
                self._d.popitem(last=False)
        return value
