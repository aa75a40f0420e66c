"""Serving under load, on loopback (ARCHITECTURE §6 "Cost", issue 6).

    .venv/bin/python bench/load.py [--model builtin] [--soak 20000]

1. Cached tiles: wrk (Debian's package) against a real `orbis serve` and against a bare Starlette
   app returning the same bytes (bench/bare_server.py), same run, same paths: requests/s, p50, p99;
   three alternating 10 s rounds each, the median round of each reported.
2. 30 concurrent requests for one uncached tile: how many generations (/metrics).
3. Soak: N requests over zooms 2–6 from 16 concurrent clients; no 5xx but deliberate 503s,
   resident memory after warm-up and at the end.
Writes bench/results/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from common import ROOT, save

PATHS = [
    f"/tiles/earth/{z}/{x}/{y}.png"
    for z in (3, 4)
    for x in range(2**z)
    for y in range(2**z)
    if (z, y) != (3, 7)
][:96]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str) -> None:
    for _ in range(600):
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} never became healthy")


def wrk(base: str, seconds: int = 10) -> dict:
    lua = Path(tempfile.mkstemp(suffix=".lua")[1])
    lua.write_text(
        "local paths = {" + ",".join(f'"{p}"' for p in PATHS) + "}\n"
        "local i = 0\nrequest = function()\n  i = i % #paths + 1\n"
        "  return wrk.format('GET', paths[i])\nend\n"
    )
    out = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-s", str(lua), base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)", out, re.M)
        v, unit = float(m[1]), m[2]
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    return {"requests_per_s": rps, "p50_ms": ms("50%"), "p99_ms": ms("99%")}


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def counter(base: str, name: str) -> float:
    for line in httpx.get(base + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


async def soak(base: str, n: int, pid: int) -> dict:
    rng = random.Random(0)
    paths = [
        f"/tiles/earth/{z}/{x}/{y}.png"
        for z in range(2, 7)
        for x in range(2 ** (z - 1), 2 ** (z - 1) + 3)  # around Europe, 3×3 per zoom
        for y in range(2 ** (z - 2) - 1, 2 ** (z - 2) + 2)
    ]
    statuses: dict[int, int] = {}
    rss = {}
    done = 0

    async def client(k: int) -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=base, timeout=300) as c:
            while done < n:
                done += 1
                if done == n // 10:
                    rss["after_warmup_kb"] = rss_kb(pid)
                r = await c.get(rng.choice(paths))
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 503:
                    await asyncio.sleep(float(r.headers.get("retry-after", "1")) / 5)

    t0 = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(16)))
    rss["end_kb"] = rss_kb(pid)
    return {
        "requests": n,
        "seconds": time.perf_counter() - t0,
        "statuses": statuses,
        "distinct_paths": len(paths),
        **rss,
        "rss_growth": rss["end_kb"] / max(rss["after_warmup_kb"], 1) - 1,
    }


def main(model: str, soak_n: int) -> dict:
    if shutil.which("wrk") is None:
        sys.exit("bench/load.py needs wrk: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp())
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "generator.cli",
            "serve",
            "--port",
            str(port),
            "--cache",
            str(tmp / "cache"),
            "--model",
            model,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bare = None
    try:
        wait(base + "/health")
        for p in PATHS:  # warm: all cached afterwards
            body = httpx.get(base + p, timeout=300).content
            f = tmp / "bare" / p.removeprefix("/tiles/")
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(body)
        bport = free_port()
        bare = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "bare_server.py"), str(tmp / "bare"), str(bport)]
        )
        wait(f"http://127.0.0.1:{bport}{PATHS[0]}")
        # alternate the two servers, 3 rounds each, and keep each one's median round: other
        # work on the machine then weighs on both alike
        rounds: dict[str, list[dict]] = {"orbis": [], "bare_starlette": []}
        for _ in range(3):
            rounds["orbis"].append(wrk(base))
            rounds["bare_starlette"].append(wrk(f"http://127.0.0.1:{bport}"))
        results = {k: sorted(v, key=lambda r: r["requests_per_s"])[1] for k, v in rounds.items()}
        results["rounds_requests_per_s"] = {
            k: [r["requests_per_s"] for r in v] for k, v in rounds.items()
        }
        results["orbis_over_bare"] = (
            results["orbis"]["requests_per_s"] / results["bare_starlette"]["requests_per_s"]
        )
        print(results)
        before = counter(base, "orbis_tiles_generated_total")
        with ThreadPoolExecutor(30) as pool:
            codes = list(
                pool.map(
                    lambda _: httpx.get(base + "/tiles/earth/5/16/10.png", timeout=300).status_code,
                    range(30),
                )
            )
        results["thirty_concurrent"] = {
            "statuses": sorted(set(codes)),
            "generations": counter(base, "orbis_tiles_generated_total") - before,
        }
        print(results["thirty_concurrent"])
        if soak_n:
            results["soak"] = asyncio.run(soak(base, soak_n, server.pid))
            print(results["soak"])
        return results
    finally:
        server.terminate()
        if bare:
            bare.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--soak", type=int, default=20000)
    args = ap.parse_args()
    name = "load" if args.soak else "load-throughput"  # a quick re-measure keeps the soak
    print(save(name, {"model": args.model, **main(args.model, args.soak)}))
