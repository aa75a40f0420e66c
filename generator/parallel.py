"""Where model evaluations run: 1 or 2 intra-op threads each, independent windows side by side.

Tile bytes must not depend on the machine's core count (ARCHITECTURE §1.1). They would if a
model's floats depended on its intra-op thread count, and in general they do: oneDNN splits a
1×1 convolution's reduction by thread, and ATen's element-wise kernels (SiLU) take their
vectorised or scalar path per element by where the thread chunks end, so a window sampled with
3 threads differs from the same window with 1 in the last bits, and after float16 storage,
blending and rounding a few pixels of a tile differ by one grey level. Hence the rule:

- **a model evaluation runs with an intra-op thread count its floats do not depend on**:
  :data:`EVAL_THREADS` (one) for any model, or any count the model declares bit-identical in
  ``invariant_threads``. The built-in model declares (1, 2): its 1×1 convolutions are matrix
  products (:class:`~generator.models.sr_model.PointwiseConv2d`), and its 3×3 convolutions,
  group norms and SiLUs give the same floats with 1 and 2 threads on windows whose sides are
  multiples of its stride (``tests/test_determinism.py`` checks it on the shipped weights and
  on random ones). Diffusers checkpoints declare nothing and run on one thread. Which count a
  window gets (:func:`eval_threads`) then only decides its speed: a lone window takes two
  cores when the process has them idle (a client panning one tile at a time), windows side by
  side take one each. The count is set per evaluation, in the thread that evaluates:
  ``torch.set_num_threads`` looks process-global but, under OpenMP, sets the calling thread's
  own count, so whoever else sets it (uvicorn's threads, Dask workers, ``orbis render``, a
  user's code) cannot change an evaluation's. torch's inter-op pool (``torch.jit.fork``) is
  never used here, so its size does not matter;
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
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import torch

from .errors import Cancelled

#: intra-op threads of an evaluation of a model that declares no ``invariant_threads``; part of
#: the world's content hash. One: any machine has a core for it, Dask workers run one thread
#: each, and windows in parallel use the cores better than threads inside one window do.
EVAL_THREADS = 1

T = TypeVar("T")
R = TypeVar("R")

_local = threading.local()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_busy = 0  # intra-op threads of the evaluations running in this process now
_busy_cv = threading.Condition()


def pin_threads(n: int = EVAL_THREADS) -> None:
    """Give the calling thread ``n`` intra-op threads (cheap when already so)."""
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


@contextmanager
def eval_threads(invariant: Sequence[int] = (EVAL_THREADS,)) -> Iterator[int]:
    """Run one model evaluation with the most threads among ``invariant`` that idle cores allow.

    ``invariant`` are the thread counts the model's floats do not depend on (a model's
    ``invariant_threads``); the count chosen is the largest of them that fits the cores no
    other evaluation of this process uses now, and no more than the calling :func:`run_all`'s
    share of the cores (a level's windows side by side take one core each), waiting while
    every core is busy. Speed only: any choice gives the same bytes. Afterwards the thread is
    back at :data:`EVAL_THREADS`.
    """
    global _busy
    with _busy_cv:
        # no more evaluations at once than cores: more would only time-slice (6 requests in
        # flight on 1 core ran 9 % slower than one after the other). Held only while the model
        # runs, never across a wait for other work, so it cannot deadlock.
        while _busy >= eval_workers():
            _busy_cv.wait()
        free = min(eval_workers() - _busy, getattr(_local, "share", eval_workers()))
        n = max([k for k in invariant if k <= free], default=min(invariant))
        _busy += n
    try:
        pin_threads(n)
        yield n
    finally:
        with _busy_cv:
            _busy -= n
            _busy_cv.notify_all()
        pin_threads(EVAL_THREADS)


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
    share = max(1, eval_workers() // min(len(items), eval_workers()))
    stop = threading.Event()  # set on the first error: nobody starts another item

    def run(i: int) -> bool:
        """Run item i if nobody has claimed it; return True if this thread ran it."""
        task = tasks[i]
        if not task.claim():
            return False
        outer = getattr(_local, "share", None)
        _local.share = share  # items side by side: one core each (eval_threads)
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
            if outer is None:
                del _local.share
            else:
                _local.share = outer
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
