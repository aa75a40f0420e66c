"""A seeded Redis cache served by a fresh server: no generation, no encoding, the same bytes.

    .venv/bin/python bench/seeded.py [--bbox 2.0,48.6,2.6,49.1] [--zooms 0-10] [--config DIR]

The operator's path of issue 15, with real processes:

1. a ``redis-server`` (Debian's) on a free port, persistence off;
2. ``orbis seed earth --bbox … --zooms 0-10 --cache redis://… --workers 2 --formats png``: a Dask
   ``LocalCluster`` of two single-threaded workers (Dask's ``OMP_NUM_THREADS=1``);
3. ``orbis render earth <20 tiles>`` in another process with ``OMP_NUM_THREADS=2`` and no cache
   (a machine with another thread count);
4. a fresh ``orbis serve`` on the Redis, ``OMP_NUM_THREADS`` unset; the 20 tiles are asked over
   HTTP, and ``/metrics`` read: tiles generated, tiles encoded, model evaluations, cache hits.

The 20 tiles are the first 20 of the box's tiles in (z, y, x) order (z0–z10 over Paris). The
served bytes must equal the rendered ones, and the server must have generated and encoded
nothing. Writes bench/results/seeded.json.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import ROOT, save

from generator import seed
from generator.region import parse_bbox


def free_port() -> int:
    """Return a TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Wait until ``url`` answers 200 (the server loaded its worlds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def metrics(base: str) -> dict[str, float]:
    """Return the server's Prometheus series as {series: value}."""
    out = {}
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--bbox", default="2.0,48.6,2.6,49.1")
    ap.add_argument("--zooms", default="0-10")
    ap.add_argument("--tiles", type=int, default=20)
    ap.add_argument("--config", default=None, help="config folder (default: the repository's)")
    args = ap.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    lo, hi = (int(v) for v in args.zooms.split("-"))
    box = parse_bbox(args.bbox)
    tiles = [t for z in range(lo, hi + 1) for t in seed.bbox_tiles(box, z)][: args.tiles]
    addresses = [f"{t.z}/{t.x}/{t.y}" for t in tiles]
    cfg = ["--config", args.config] if args.config else []
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("ORBIS_EVAL_WORKERS", None)
    cli = [sys.executable, "-m", "generator.cli"]
    result: dict[str, object] = {"bbox": args.bbox, "zooms": args.zooms, "tiles": addresses}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        redis_proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        server = None
        try:
            time.sleep(0.5)
            t0 = time.perf_counter()
            seeded = subprocess.run(
                [*cli, "seed", "earth", "--bbox", args.bbox, "--zooms", args.zooms, "--cache",
                 url, "--workers", "2", "--formats", "png", "--no-progress", *cfg],
                cwd=ROOT, env=dict(env, OMP_NUM_THREADS="1"), capture_output=True, text=True,
                check=True,
            )  # fmt: skip
            result["seed"] = {
                "seconds": time.perf_counter() - t0,
                "output": seeded.stdout.strip().splitlines(),
                "omp_num_threads": "1 (Dask workers: one thread each)",
            }
            out = Path(tmp) / "rendered"
            t0 = time.perf_counter()
            subprocess.run(
                [*cli, "render", "earth", *addresses, "-o", str(out), *cfg],
                cwd=ROOT, env=dict(env, OMP_NUM_THREADS="2"), capture_output=True, text=True,
                check=True,
            )  # fmt: skip
            result["render"] = {"seconds": time.perf_counter() - t0, "omp_num_threads": "2"}
            sport = free_port()
            server_env = {k: v for k, v in env.items() if k != "OMP_NUM_THREADS"}
            server = subprocess.Popen(
                [*cli, "serve", "--port", str(sport), "--cache", url, *cfg],
                cwd=ROOT, env=server_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            base = f"http://127.0.0.1:{sport}"
            wait_for(f"{base}/health", server)
            before = metrics(base)
            same, latencies = 0, []
            for a in addresses:
                t0 = time.perf_counter()
                r = httpx.get(f"{base}/tiles/earth/{a}.png", timeout=120)
                latencies.append(time.perf_counter() - t0)
                z, x, y = a.split("/")
                want = (out / z / x / f"{y}.png").read_bytes()
                same += r.status_code == 200 and r.content == want
            after = metrics(base)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
            redis_proc.kill()
            redis_proc.wait()

    def delta(series: str) -> float:
        return after.get(series, 0.0) - before.get(series, 0.0)

    result["serve"] = {
        "omp_num_threads": "unset",
        "tiles_asked": len(addresses),
        "identical_to_render": same,
        "tiles_generated": delta("orbis_tiles_generated_total"),
        "tiles_encoded": delta("orbis_tiles_encoded_total"),
        "model_evals": delta('orbis_world_model_evals_total{world="earth"}'),
        "cache_hits": delta("orbis_cache_hits_total"),
        "median_request_ms": sorted(latencies)[len(latencies) // 2] * 1000,
    }
    print(result["serve"])
    print(save("seeded", result))


if __name__ == "__main__":
    main()
