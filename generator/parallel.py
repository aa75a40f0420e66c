"""Where model evaluations run: one intra-op thread each, independent windows side by side.

Tile bytes must not depend on the machine's core count (ARCHITECTURE §1.1). They would if
torch chose its intra-op thread count from the machine: oneDNN's convolutions and MKL's matrix
products split their reductions by thread, so a window sampled with 2 threads differs from the
same window sampled with 1 in the last bits of its floats, and after float16 storage, blending
and rounding a few pixels of a tile differ by one grey level. Hence the rule:

- **every model evaluation runs with** :data:`EVAL_THREADS` **intra-op threads** (one), set by
  :func:`pin_threads` in the calling thread right before the evaluation. ``torch.set_num_threads``
  looks process-global but is not quite: under OpenMP it sets the calling thread's own thread
  count (and the default of threads that have not used torch yet), so a thread of a server's
  pool that used torch before keeps its old count. Pinning per call, in the thread that
  evaluates, holds whoever else sets the count (uvicorn's threads, Dask workers, ``orbis
  render``, a user's code). torch's inter-op pool (``torch.jit.fork``) is never used here, so
  its size does not matter;
- **the cores are used by evaluating independent windows of one level in parallel**
  (:func:`run_all`): the planner already lists each level's windows, each window is a pure
  function of the level above, so the order and the thread they run on cannot change a bit.

``run_all`` lets the calling thread work too: it claims the tasks no pool thread has started
and runs them itself, so it never waits for a task that is not running (no deadlock however
requests, single flights and nested generation interleave), a 1-core machine runs everything
inline with no thread hop, and one request uses every core. The pool has
``eval_workers() - 1`` threads, ``eval_workers()`` = the cores this process may run on
(``os.sched_getaffinity``: taskset and cpusets count), or ``$ORBIS_EVAL_WORKERS``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import torch

from .errors import Cancelled

#: intra-op threads of every model evaluation; part of the world's content hash (the bytes
#: depend on it). One: any machine has a core for it, Dask workers run one thread each, and
#: windows in parallel use the cores better than threads inside one small window do.
EVAL_THREADS = 1

T = TypeVar("T")
R = TypeVar("R")

_local = threading.local()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def pin_threads() -> None:
    """Give the calling thread :data:`EVAL_THREADS` intra-op threads (cheap when already so)."""
    if torch.get_num_threads() != EVAL_THREADS:
        torch.set_num_threads(EVAL_THREADS)


def eval_workers() -> int:
    """Return how many evaluations may run at once: ``$ORBIS_EVAL_WORKERS`` or usable cores."""
    env = os.environ.get("ORBIS_EVAL_WORKERS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS has no affinity API
        return max(1, os.cpu_count() or 1)


def _init_worker() -> None:
    _local.worker = True
    pin_threads()


def _get_pool() -> ThreadPoolExecutor | None:
    global _pool
    n = eval_workers() - 1  # the calling thread is the last worker
    if n < 1:
        return None
    with _pool_lock:
        if _pool is None or _pool._max_workers != n:  # $ORBIS_EVAL_WORKERS changed
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(n, "orbis-eval", initializer=_init_worker)
        return _pool


def _forget_pool() -> None:
    # a forked child has the pool object but not its threads
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def in_worker() -> bool:
    """Return True in a pool thread (nested work then runs inline: no waiting on the pool)."""
    return getattr(_local, "worker", False)


class _Task:
    """One item, run exactly once by whichever thread claims it first."""

    __slots__ = ("_claimed", "_lock", "done", "error", "result")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claimed = False
        self.done = threading.Event()
        self.result: object = None
        self.error: BaseException | None = None

    def claim(self) -> bool:
        """Return True for the one caller that gets to run the task."""
        with self._lock:
            if self._claimed:
                return False
            self._claimed = True
            return True


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("no one waits for this tile any more")


def run_all(
    fn: Callable[[T], R], items: Sequence[T], cancel: threading.Event | None = None
) -> list[R]:
    """Return ``[fn(item) for item in items]``, the items run in parallel on the eval pool.

    ``cancel`` is checked before each item starts (outside ``fn``, so a single flight shared
    with another request is never failed by this one's cancel); items already running finish
    and keep their results (they are cached). The first error raised by an item is re-raised
    once every started item has ended.

    Raises:
        Cancelled: ``cancel`` was set before every item had started.
    """
    pool = None if len(items) < 2 or in_worker() else _get_pool()
    if pool is None:
        out = []
        for item in items:
            _check(cancel)
            out.append(fn(item))
        return out
    tasks = [_Task() for _ in items]
    stop = threading.Event()  # set on the first error: nobody starts another item

    def run(i: int) -> bool:
        """Run item i if nobody has claimed it; return True if this thread ran it."""
        task = tasks[i]
        if not task.claim():
            return False
        try:
            if stop.is_set():
                return True  # an earlier item failed: its error is the one raised
            _check(cancel)
            task.result = fn(items[i])
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            task.error = exc
            stop.set()
        finally:
            task.done.set()
        return True

    futures: list[Future[bool]] = [pool.submit(run, i) for i in range(1, len(tasks))]
    for i in range(len(tasks)):
        run(i)  # the items no pool thread has started yet
    for f in futures:
        f.cancel()  # queued no-ops (this thread ran their items)
    for task in tasks:
        task.done.wait()  # only items a pool thread is running are not done yet
    errors = [t.error for t in tasks if t.error is not None]
    if errors:
        raise errors[0]
    return [t.result for t in tasks]  # type: ignore[misc]
