"""A small thread-safe least-recently-used memo, shared by the layers that cache per cell.

The layout (per lattice cell) and the streams (per routing cell) keep the objects of the cells
a tile needs; a value is a pure function of its key, so the cache only ever saves time. A key
being made is made once: a second thread asking for it waits for the first (the imagery renders
a level's windows on two threads, and neighbouring windows need the same cells — computing a
routing cell twice at once cost as much as the whole rest of a cold cone's geography).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..singleflight import SingleFlight


class LRU:
    """A small thread-safe least-recently-used memo: ``get(key, make)``."""

    def __init__(self, items: int) -> None:
        self._items = items
        self._d: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._flight = SingleFlight()

    def _hit(self, key: Any) -> tuple[bool, Any]:
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return True, self._d[key]
        return False, None

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        """Return the value kept for ``key``, else ``make()`` (kept for the next caller); while
        one thread makes a key, others asking for it share that call
        (:class:`~generator.singleflight.SingleFlight`)."""
        hit, value = self._hit(key)
        if hit:
            return value

        def make_and_keep() -> Any:
            hit, value = self._hit(key)  # kept by a call that ended just before this one
            if hit:
                return value
            value = make()
            with self._lock:
                self._d[key] = value
                while len(self._d) > self._items:
                    self._d.popitem(last=False)
            return value

        return self._flight.do(key, make_and_keep)
