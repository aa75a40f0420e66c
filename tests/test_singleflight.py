"""Single flight: concurrent callers of one key share one computation."""

from __future__ import annotations

import threading
import time

import pytest

from generator.singleflight import SingleFlight

N = 10


def _run_concurrently(sf: SingleFlight, key, fn, n: int = N):
    """Start n threads that call ``sf.do(key, fn)`` together; return (threads, results, errors).

    ``fn`` should block until the test releases it, so that every thread joins the one call.
    """
    results, errors = [None] * n, [None] * n
    arrived = threading.Barrier(n + 1)

    def worker(i):
        arrived.wait()
        try:
            results[i] = sf.do(key, fn)
        except BaseException as exc:  # collected for the assertions
            errors[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    arrived.wait()
    return threads, results, errors


def _finish(threads):
    for t in threads:
        t.join(timeout=10)
        assert not t.is_alive()


def test_concurrent_callers_run_fn_once_and_share_the_result():
    sf = SingleFlight()
    calls = []
    release = threading.Event()
    result = object()

    def fn():
        calls.append(1)
        release.wait(10)
        return result

    threads, results, errors = _run_concurrently(sf, "k", fn)
    time.sleep(0.2)  # let every thread reach do() and wait on the leader
    assert sf.in_flight() == 1
    release.set()
    _finish(threads)
    assert len(calls) == 1
    assert errors == [None] * N
    assert all(r is result for r in results)


def test_error_propagates_to_every_waiter():
    sf = SingleFlight()
    calls = []
    release = threading.Event()

    def fn():
        calls.append(1)
        release.wait(10)
        raise KeyError("boom")

    threads, results, errors = _run_concurrently(sf, "k", fn)
    time.sleep(0.2)
    release.set()
    _finish(threads)
    assert len(calls) == 1
    assert all(isinstance(e, KeyError) and e.args == ("boom",) for e in errors)
    assert results == [None] * N


def test_different_keys_run_separately():
    sf = SingleFlight()
    assert sf.do("a", lambda: 1) == 1
    assert sf.do("b", lambda: 2) == 2


def test_finished_call_is_not_remembered():
    sf = SingleFlight()
    calls = []
    for _ in range(3):
        sf.do("k", lambda: calls.append(1))
    assert len(calls) == 3
    assert sf.in_flight() == 0


def test_key_is_released_after_an_error():
    sf = SingleFlight()

    def boom():
        raise RuntimeError("x")

    with pytest.raises(RuntimeError):
        sf.do("k", boom)
    assert sf.in_flight() == 0
    assert sf.do("k", lambda: 5) == 5


def test_nested_call_on_another_key_works():
    sf = SingleFlight()
    assert sf.do("outer", lambda: sf.do("inner", lambda: 7) + 1) == 8
