"""A bounded generation queue: at most N tiles generated at once, at most Q waiting.

Cached tiles never pass through here, so they keep being served while generation is saturated;
past the queue bound a request fails fast with 503 + Retry-After instead of piling up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .errors import Overloaded


class GenerationGate:
    """Semaphore with a bounded waiting room."""

    def __init__(self, max_running: int, max_waiting: int) -> None:
        self._sem = asyncio.Semaphore(max_running)
        self.max_waiting = max_waiting
        self.waiting = 0
        self.running = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a generation slot, or raise :class:`Overloaded` when the queue is full."""
        if self._sem.locked() and self.waiting >= self.max_waiting:
            raise Overloaded(retry_after=5)
        self.waiting += 1
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._sem.release()
