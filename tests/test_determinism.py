"""The same bytes whatever the machine's core count and the process layout (ARCHITECTURE §1.1).

Before ``generator.parallel`` chose every model evaluation's intra-op thread count, a window
sampled with 2 torch threads differed from one sampled with 1 in its last float bits, and the
tiles of ``OMP_NUM_THREADS=2`` differed from those of ``OMP_NUM_THREADS=1`` (even with the tiny
test model); the suite pinned ``OMP_NUM_THREADS=1`` for itself, so it never saw it. Here:

- fast: an evaluation in a thread whose torch thread count was set to 2 equals one made with 1;
  the built-in model's windows (shipped weights and random ones, several window sizes) are
  bit-identical with 1 and 2 intra-op threads (so a lone window may take both cores), while a
  plain 1×1 ``nn.Conv2d`` is not (what :class:`PointwiseConv2d` is for); ``eval_threads`` gives
  a lone evaluation two threads only when a core is idle, and one inside a level's side-by-side
  windows; ``run_all`` runs each item once, in order, honours ``cancel`` and errors, never
  deadlocks when nested; the content hash names the evaluation layout;
- slow: the same tiles made in separate processes, by ``orbis render`` under
  ``OMP_NUM_THREADS=1``, ``2``, unset and a simulated 4-core layout, by a real ``orbis serve``
  (uvicorn) under ``2`` and by a Dask worker (Dask's default: one thread), are byte-identical
  to each other and to this process's own (whatever its thread count).

The world is ``earth`` with ``[geography] kind = "none"`` (a temporary config folder) and the
tiny random model saved to disk; tiles at z5–z6 need two generated levels.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch

from generator import parallel
from generator.errors import Cancelled
from generator.formats import ImageFormat
from generator.samplers import sample_window
from generator.world import World
from tests.helpers import REPO
from tests.serving_helpers import stop_process

TILES = ["6/33/22", "5/16/11", "6/32/21"]


@pytest.fixture(scope="module")
def reference(nogeo_config_dir, tiny_model_dir) -> dict[str, bytes]:
    """PNG bytes of TILES made in this process, with whatever torch threads it has."""
    w = World.load("earth", nogeo_config_dir, model=str(tiny_model_dir))
    out = {}
    for a in TILES:
        z, x, y = map(int, a.split("/"))
        out[a] = ImageFormat.png.encode_image(w.render(z, x, y))
    return out


def _env(**kw: str | None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for k, v in kw.items():
        env.pop(k, None)
        if v is not None:
            env[k] = v
    return env


# ---- fast: the rule itself ------------------------------------------------------------------


def _window_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    cond = torch.rand((1, 3, 96, 96), generator=g) * 2 - 1
    return cond, torch.randn((1, 3, 96, 96), generator=g)


def test_an_evaluation_ignores_the_calling_threads_torch_setting(tiny_model):
    cond, noise = _window_inputs()

    def sample(threads: int) -> bytes:
        torch.set_num_threads(threads)  # what a server's pool thread may have been left with
        out = sample_window(tiny_model, cond, noise, 10.0).numpy().tobytes()
        assert torch.get_num_threads() == parallel.EVAL_THREADS  # left at one thread
        return out

    with ThreadPoolExecutor(1) as pool:  # a fresh thread each, like a server's worker threads
        two = pool.submit(sample, 2).result()
    with ThreadPoolExecutor(1) as pool:
        one = pool.submit(sample, 1).result()
    assert two == one


def _sample_with(model, threads: int, size: int) -> bytes:
    g = torch.Generator().manual_seed(size)
    cond = torch.rand((1, 3, size, size), generator=g) * 2 - 1
    noise = torch.randn((1, 3, size, size), generator=g)
    model.invariant_threads = (threads,)  # forced: the count the evaluation gets
    try:
        return sample_window(model, cond, noise, 30.0).numpy().tobytes()
    finally:
        del model.invariant_threads  # back to the class's (1, 2)


@pytest.mark.parametrize("size", [256 + 32, 256 + 64, 256 + 96])
def test_the_built_in_model_gives_the_same_floats_with_1_and_2_threads(size):
    """Shipped weights and a random model, on window sizes of margins 32, 64 and 96."""
    from generator.models.sr_model import SuperResolutionModel, default_model_path, random_model

    for model in (SuperResolutionModel.from_pretrained(default_model_path()), random_model()):
        assert model.invariant_threads == (1, 2)
        one, two = _sample_with(model, 1, size), _sample_with(model, 2, size)
        assert one == two


def test_a_plain_1x1_convolution_is_not_thread_invariant_but_pointwise_is():
    """Why PointwiseConv2d exists: oneDNN's 1×1 convolution changes its last bits with threads."""
    from generator.models.sr_model import PointwiseConv2d

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(32, 64, 1)
    x = torch.randn(1, 32, 144, 144)

    def run(module: torch.nn.Module, threads: int) -> torch.Tensor:
        torch.set_num_threads(threads)
        with torch.inference_mode():
            return module(x)

    try:
        plain = [run(conv, n) for n in (1, 2)]
        pw = PointwiseConv2d(32, 64, 1)
        pw.load_state_dict(conv.state_dict())
        point = [run(pw, n) for n in (1, 2)]
    finally:
        torch.set_num_threads(parallel.EVAL_THREADS)
    assert not torch.equal(plain[0], plain[1])  # the bug the rule would otherwise have
    assert torch.equal(point[0], point[1])
    assert torch.allclose(point[0], plain[0], atol=1e-5)  # the same convolution


def test_a_lone_evaluation_takes_an_idle_core_and_side_by_side_ones_do_not(monkeypatch):
    """And no more evaluations run at once than there are cores."""
    monkeypatch.setenv("ORBIS_EVAL_WORKERS", "2")
    started, seen = threading.Event(), []

    def other() -> None:  # another request's evaluation while the first holds both cores
        started.set()
        with parallel.eval_threads((1, 2)) as m:
            seen.append(m)

    with parallel.eval_threads((1, 2)) as n:
        assert n == 2 and torch.get_num_threads() == 2
        t = threading.Thread(target=other)
        t.start()
        started.wait(5)
        time.sleep(0.05)
        assert seen == []  # it waits for a core instead of time-slicing
    t.join(5)
    assert seen == [2]  # then the cores are free again
    assert torch.get_num_threads() == parallel.EVAL_THREADS
    with parallel.eval_threads((1,)) as n:  # a model that declares nothing: one thread
        assert n == 1
    got: list[int] = []
    lock = threading.Lock()

    def fn(_: int) -> None:
        with parallel.eval_threads((1, 2)) as k:
            with lock:
                got.append(k)
            time.sleep(0.01)

    parallel.run_all(fn, [0, 1, 2, 3])  # a level's windows side by side: one core each
    assert got == [1, 1, 1, 1]
    monkeypatch.setenv("ORBIS_EVAL_WORKERS", "1")
    with parallel.eval_threads((1, 2)) as n:  # a 1-core machine: never two
        assert n == 1


def test_the_content_hash_names_the_evaluation_layout(nogeo_config_dir, tiny_model):
    world = World.load("earth", nogeo_config_dir, model=tiny_model)
    assert world.identity["evaluation"] == {
        "intra_op_threads": [1, 2],
        "pointwise": "matmul",
        "batch": 1,
    }


def test_run_all_runs_each_item_once_in_order_on_several_threads(monkeypatch):
    monkeypatch.setenv("ORBIS_EVAL_WORKERS", "3")
    seen: list[tuple[int, str]] = []
    lock = threading.Lock()

    def fn(i: int) -> int:
        time.sleep(0.01)
        with lock:
            seen.append((i, threading.current_thread().name))
        return i * i

    assert parallel.run_all(fn, list(range(12))) == [i * i for i in range(12)]
    assert sorted(i for i, _ in seen) == list(range(12))  # once each
    assert len({name for _, name in seen}) > 1  # the caller and the pool both worked


def test_run_all_checks_cancel_before_each_item(monkeypatch):
    monkeypatch.setenv("ORBIS_EVAL_WORKERS", "2")
    cancel = threading.Event()
    cancel.set()
    ran: list[int] = []
    with pytest.raises(Cancelled):
        parallel.run_all(ran.append, [1, 2, 3], cancel)
    assert ran == []


def test_run_all_raises_the_first_error_and_starts_nothing_after_it(monkeypatch):
    monkeypatch.setenv("ORBIS_EVAL_WORKERS", "1")  # inline: a deterministic order to check
    ran: list[int] = []

    def fn(i: int) -> None:
        ran.append(i)
        if i == 1:
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        parallel.run_all(fn, [0, 1, 2, 3])
    assert ran == [0, 1]
    monkeypatch.setenv("ORBIS_EVAL_WORKERS", "2")
    with pytest.raises(ValueError, match="boom"):
        parallel.run_all(fn, [0, 1, 2, 3])


def test_nested_run_all_does_not_deadlock(monkeypatch):
    monkeypatch.setenv("ORBIS_EVAL_WORKERS", "2")  # one pool thread, kept busy by the outer call

    def outer(i: int) -> int:
        return sum(parallel.run_all(lambda j: i * 10 + j, [0, 1, 2]))

    done: list[list[int]] = []
    t = threading.Thread(target=lambda: done.append(parallel.run_all(outer, [1, 2, 3, 4])))
    t.start()
    t.join(timeout=20)
    assert not t.is_alive(), "run_all deadlocked"
    assert done == [[sum(i * 10 + j for j in range(3)) for i in (1, 2, 3, 4)]]


# ---- slow: separate processes, different thread counts and layouts -------------------------


@pytest.mark.slow
def test_orbis_render_under_1_2_and_unset_threads_gives_the_same_bytes(
    nogeo_config_dir, tiny_model_dir, reference, tmp_path
):
    procs = {}
    # "4": a simulated 4-core layout (4 OpenMP threads, 4 windows side by side) on any machine
    layouts = (("1", "1", None), ("2", "2", None), ("unset", None, None), ("4", "4", "4"))
    for label, omp, workers in layouts:
        out = tmp_path / label
        cmd = [
            sys.executable, "-m", "generator.cli", "render", "earth", *TILES, "-o", str(out),
            "--config", str(nogeo_config_dir), "--model", str(tiny_model_dir),
        ]  # fmt: skip
        env = _env(OMP_NUM_THREADS=omp, ORBIS_EVAL_WORKERS=workers)
        procs[label] = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
    for label, proc in procs.items():
        log, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, log.decode()[-2000:]
        for a in TILES:
            z, x, y = a.split("/")
            got = (tmp_path / label / z / x / f"{y}.png").read_bytes()
            assert got == reference[a], f"OMP_NUM_THREADS={label}: tile {a} differs"


@pytest.mark.slow
def test_orbis_serve_on_uvicorn_gives_the_same_bytes(
    nogeo_config_dir, tiny_model_dir, reference, tmp_path
):
    from tests.test_redis_store import _wait_healthy, free_port

    port = free_port()
    log = tmp_path / "serve.log"
    cmd = [
        sys.executable, "-m", "generator.cli", "serve", "--host", "127.0.0.1", "--port",
        str(port), "--cache", "memory", "--config", str(nogeo_config_dir),
        "--model", str(tiny_model_dir),
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=_env(OMP_NUM_THREADS="2"), stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc, log)

        # concurrently, as a map client asks: the server's threads and the eval pool interleave
        def get(a: str) -> httpx.Response:
            return httpx.get(f"{base}/tiles/earth/{a}.png", timeout=300)

        with ThreadPoolExecutor(len(TILES)) as pool:
            got = dict(zip(TILES, pool.map(get, TILES), strict=True))
    finally:
        stop_process(proc, timeout=30)
    for a, r in got.items():
        assert r.status_code == 200, r.text
        assert r.content == reference[a], f"orbis serve: tile {a} differs"
    assert "Traceback" not in log.read_text()


def _render_in_worker(nogeo_config_dir: str, tiny_model_dir: str, addresses: list[str]) -> dict:
    """Run in a Dask worker process: its torch threads before, and the tiles' PNG bytes."""
    import torch as worker_torch

    from generator.formats import ImageFormat as Fmt
    from generator.world import World as W

    threads = worker_torch.get_num_threads()
    w = W.load("earth", nogeo_config_dir, model=tiny_model_dir)
    tiles = {}
    for a in addresses:
        z, x, y = map(int, a.split("/"))
        tiles[a] = Fmt.png.encode_image(w.render(z, x, y))
    return {"threads": threads, "tiles": tiles, "pid": os.getpid()}


@pytest.mark.slow
def test_a_dask_worker_gives_the_same_bytes(nogeo_config_dir, tiny_model_dir, reference):
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        fut = client.submit(
            _render_in_worker, str(nogeo_config_dir), str(tiny_model_dir), TILES, pure=False
        )
        result = fut.result(timeout=600)
    assert result["pid"] != os.getpid()
    assert result["threads"] == 1  # Dask's OMP_NUM_THREADS=1: the layout of the issue
    for a in TILES:
        assert result["tiles"][a] == reference[a], f"Dask worker: tile {a} differs"
