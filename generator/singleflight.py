"""Single flight: concurrent callers asking for the same key share one computation.

Many map clients ask for the same tile at once, and neighbouring tiles share windows and parents;
without coalescing, each would run the model for the same window.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class _Call:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: object = None
        self.error: BaseException | None = None


class SingleFlight:
    """Run ``fn`` once per key among concurrent callers; later callers get the same result."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[object, _Call] = {}

    def do(self, key: object, fn: Callable[[], T]) -> T:
        """Return ``fn()``, or the result of the call already running for ``key``."""
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if leader:
                call = self._calls[key] = _Call()
        assert call is not None
        if not leader:
            call.done.wait()
            if call.error is not None:
                raise call.error
            return call.result  # type: ignore[return-value]
        try:
            call.result = fn()
            return call.result  # type: ignore[return-value]
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()

    def in_flight(self) -> int:
        """Return how many keys are being computed now."""
        with self._lock:
            return len(self._calls)
