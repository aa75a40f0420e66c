"""Coalescing of identical tile generations on the event loop, with time limits and drop-out.

Thirty clients asking for the same uncached tile share one generation (the generator's own
``SingleFlight`` coalesces the windows and tiles below this, across threads). Each waiter waits
at most ``timeout`` seconds and then gets 503 + Retry-After while the work goes on and lands in
the cache. A waiter whose client disconnects stops waiting. When the last waiter of a generation
is gone, the generation is dropped: still queued, its task is cancelled and it never uses the
model; already running in a thread, its ``cancel`` event is set and the pyramid stops before the
next window (what it finished stays cached, so a later request resumes from there). A request
arriving after that starts a fresh generation instead of joining the dropped one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from .errors import Overloaded


class ClientGone(Exception):
    """The client disconnected while waiting."""


@dataclass
class _Flight:
    task: asyncio.Task
    cancel: threading.Event
    waiters: int = 0
    started: bool = field(default=False)


class TileFlights:
    """One in-flight generation per key."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._flights: dict[str, _Flight] = {}
        #: generations dropped while queued (the model never ran for them)
        self.cancelled = 0
        #: generations dropped while running (stopped before their next window)
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._flights)

    async def run(
        self,
        key: str,
        produce: Callable[[Callable[[], None], threading.Event], Awaitable[bytes]],
        request: Request,
    ) -> bytes:
        """Return the bytes for ``key``, joining a generation already under way.

        ``produce(mark_started, cancel)`` must call ``mark_started()`` once it holds a
        generation slot, and pass ``cancel`` to the generator, which stops when it is set.

        Raises:
            Overloaded: the time limit passed (the work goes on) or the queue is full.
            ClientGone: the client disconnected.
        """
        flight = self._flights.get(key)
        if flight is None or flight.cancel.is_set():
            holder: dict[str, _Flight] = {}
            cancel = threading.Event()

            def mark_started() -> None:
                holder["f"].started = True

            task = asyncio.ensure_future(produce(mark_started, cancel))
            flight = holder["f"] = self._flights[key] = _Flight(task, cancel)
            task.add_done_callback(lambda _t, k=key, f=flight: self._forget(k, f))
        flight.waiters += 1
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            done, _ = await asyncio.wait(
                {flight.task, gone}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            gone.cancel()
            flight.waiters -= 1
        if flight.task in done:
            return flight.task.result()
        if gone in done:
            if flight.waiters == 0 and not flight.started:
                flight.task.cancel()
                self.cancelled += 1
            elif flight.waiters == 0:
                flight.cancel.set()
                self.dropped += 1
            raise ClientGone()
        raise Overloaded(
            retry_after=5, message=f"still generating after {self.timeout:g} s; retry shortly"
        )

    def _forget(self, key: str, flight: _Flight) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.task.cancelled():
            flight.task.exception()  # retrieved: no "never retrieved" warning


async def _disconnected(request: Request) -> None:
    """Return when the client has gone (``http.disconnect`` on the receive channel)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
