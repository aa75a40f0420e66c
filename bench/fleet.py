"""Two servers on one Redis: a tile generated through one is served by the other (issue 7).

    .venv/bin/python bench/fleet.py [--model builtin] [--tiles 4]

Starts Debian's ``redis-server`` on a free port (no persistence) and two ``orbis serve``
processes with ``--cache redis://127.0.0.1:PORT/0``. For each of a few cold tiles (zoom 6, below
the base, so the model runs): fetch it from server A (generated), then from server B (read from
Redis), then from A again (its in-process hot cache). Records each latency, and B's counters
from /metrics: tiles generated and model evaluations must stay 0.
Writes bench/results/fleet.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import ROOT, save

TILES = ["/tiles/earth/6/33/22.png", "/tiles/earth/6/34/22.png", "/tiles/earth/6/33/23.png"]
TILES += ["/tiles/earth/6/34/23.png", "/tiles/earth/6/16/20.png", "/tiles/earth/6/17/20.png"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, proc: subprocess.Popen) -> None:
    for _ in range(1200):
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} never became healthy")


def metrics(base: str) -> dict[str, float]:
    out = {}
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def timed_get(base: str, path: str) -> tuple[float, bytes]:
    t = time.perf_counter()
    r = httpx.get(base + path, timeout=600)
    dt = time.perf_counter() - t
    r.raise_for_status()
    return dt, r.content


def stored_sizes(port: int) -> dict[str, dict[str, float]]:
    """Count and mean size of what the servers wrote to Redis, by kind: ``t`` (a tile's pixels,
    zlib), ``w`` (a window, float16), ``e`` (an encoded tile as served)."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        by_kind: dict[str, list[int]] = {}
        for key in client.scan_iter(match="orbis:*", count=1000):
            kind = key.decode().split("/")[1]
            by_kind.setdefault(kind, []).append(int(client.strlen(key)))
    finally:
        client.close()
    return {k: {"count": len(v), "mean_bytes": statistics.mean(v)} for k, v in by_kind.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--tiles", type=int, default=4)
    args = ap.parse_args()
    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    tmp = Path(tempfile.mkdtemp(prefix="orbis-fleet-"))
    rport = free_port()
    procs: list[subprocess.Popen] = []
    try:
        rlog = open(tmp / "redis.log", "wb")  # noqa: SIM115
        procs.append(
            subprocess.Popen(
                [redis_bin, "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(tmp)],
                stdout=rlog, stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        url = f"redis://127.0.0.1:{rport}/0"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        bases = []
        for name in ("a", "b"):
            port = free_port()
            log = open(tmp / f"serve-{name}.log", "wb")  # noqa: SIM115
            cmd = [sys.executable, "-m", "generator.cli", "serve", "--port", str(port)]
            cmd += ["--cache", url, "--model", args.model]
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log))
            bases.append(f"http://127.0.0.1:{port}")
        for base, proc in zip(bases, procs[1:], strict=True):
            wait(f"{base}/health", proc)
        a, b = bases
        rows = []
        for path in TILES[: args.tiles]:
            gen_s, body_a = timed_get(a, path)
            other_s, body_b = timed_get(b, path)
            hot_s, _ = timed_get(a, path)
            rows.append(
                {
                    "tile": path,
                    "a_generated_s": gen_s,
                    "b_from_redis_s": other_s,
                    "a_hot_s": hot_s,
                    "identical": body_a == body_b,
                    "bytes": len(body_a),
                }
            )
            print(
                f"{path}: A {gen_s * 1000:.0f} ms (generated), B {other_s * 1000:.1f} ms "
                f"(Redis), A again {hot_s * 1000:.1f} ms",
                flush=True,
            )
        sizes = stored_sizes(rport)
        ma, mb = metrics(a), metrics(b)
        evals = 'orbis_world_model_evals_total{world="earth"}'
        result = {
            "model": args.model,
            "tiles": rows,
            "a": {
                "tiles_generated": ma["orbis_tiles_generated_total"],
                "model_evals": ma[evals],
            },
            "b": {
                "tiles_generated": mb["orbis_tiles_generated_total"],
                "cache_hits": mb["orbis_cache_hits_total"],
                "model_evals": mb[evals],
            },
            "median_a_generated_ms": 1000 * statistics.median(r["a_generated_s"] for r in rows),
            "median_b_from_redis_ms": 1000 * statistics.median(r["b_from_redis_s"] for r in rows),
            "median_a_hot_ms": 1000 * statistics.median(r["a_hot_s"] for r in rows),
            "all_identical": all(r["identical"] for r in rows),
            "stored_bytes": sizes,
            "note": "latencies are one httpx request each over loopback, client included",
        }
        print(f"B generated {result['b']['tiles_generated']:.0f} tiles", flush=True)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    save("fleet", result)


if __name__ == "__main__":
    main()
