"""An ``xyz`` base against a real tile server on 127.0.0.1: tile times, and an outage mid-run.

    OMP_NUM_THREADS=1 .venv/bin/python bench/xyz_base.py [--reps 15] [--format png]

The upstream is ``tests/xyz_upstream.py`` in a subprocess serving zooms 0-4 of real imagery
(Blue Marble reprojected by orbis's own base, written once as PNG or JPEG tiles). The world is
``[base] kind = "xyz"``, native zoom 4, ``fallback = "none"`` and no geography, so a tile at the
native zoom is the source's pixels (no model runs) and the figures are what the xyz base costs:

* **source**: ``XYZSource.read`` with its LRU cleared (fetch on a pooled keep-alive connection
  + decode) and as an LRU hit;
* **world**: a native-zoom tile of a fresh world (cold: the tile and its 8 neighbours fetched
  side by side, decoded, composed; the feather needs the neighbours) and again (warm: the
  pyramid's cache); tiles far apart, so no neighbour is shared; also with the neighbours
  fetched one at a time, and both again with the upstream answering 20 ms late (a remote
  server's round trip);
* **http**: the same through the server (``TestClient``: + PNG encode, caches), cold and warm;
* **outage**: the server requests every z4 tile in turn; after 40 the upstream is SIGKILLed,
  2 s later restarted on the same port. Counted: 200s and 502s while it is down, how long a 502
  takes, whether any failed tile left a cache entry, time from the restart to the first 200 of
  a tile that had to be fetched, and that every failed tile is then served exactly.

Writes bench/results/xyz_base.json (figures quoted in docs/benchmarks-xyz.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import save
from PIL import Image

from generator.base import BlueMarbleBase
from generator.sources.xyz import XYZSource
from tests import xyz_upstream as upstream
from tests.helpers import write_world

NATIVE = 4
WORLD = """
title = "xyz bench"
seed = 7
max_zoom = 8
attribution = "Blue Marble tiles from a local server"
center = [0.0, 0.0, 3]

[base]
kind = "xyz"
url = "http://127.0.0.1:{port}{prefix}/{{z}}/{{x}}/{{y}}.{ext}"
max_zoom = {native}
fallback = "none"

[geography]
kind = "none"
"""


def write_upstream(root: Path, ext: str) -> dict[tuple[int, int, int], np.ndarray]:
    """Write zooms 0..NATIVE of Blue Marble as tiles; return the pixels (as decoded)."""
    pixels = {}
    for z in range(NATIVE + 1):
        base = BlueMarbleBase(z)
        for x in range(1 << z):
            d = root / str(z) / str(x)
            d.mkdir(parents=True, exist_ok=True)
            for y in range(1 << z):
                path = d / f"{y}.{ext}"
                Image.fromarray(base.tile(x, y)).save(
                    path, **({"quality": 90} if ext == "jpg" else {})
                )
                with Image.open(path) as im:
                    pixels[(z, x, y)] = np.asarray(im.convert("RGB"))
    return pixels


def ms(samples: list[float]) -> dict[str, float]:
    """Median and spread of seconds, in ms."""
    s = sorted(samples)
    return {
        "median_ms": round(1000 * statistics.median(s), 3),
        "min_ms": round(1000 * s[0], 3),
        "max_ms": round(1000 * s[-1], 3),
        "n": len(s),
    }


def far_tiles(n: int) -> list[tuple[int, int]]:
    """Tiles of the native zoom at least 3 apart (no shared neighbours), away from the poles."""
    out = [(x, y) for y in range(2, 14, 3) for x in range(0, 16, 3)]
    return out[:n]


def bench_source(base_url: str, ext: str, reps: int) -> dict:
    src = XYZSource(f"{base_url}/{{z}}/{{x}}/{{y}}.{ext}", NATIVE)
    src.read(NATIVE, 0, 0)  # open the pooled connection
    cold, warm = [], []
    for i in range(reps):
        x, y = far_tiles(reps)[i % len(far_tiles(reps))]
        src.clear()
        t = time.perf_counter()
        src.read(NATIVE, x, y)
        cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        src.read(NATIVE, x, y)
        warm.append(time.perf_counter() - t)
    src.close()
    return {"fetch_decode": ms(cold), "lru_hit": ms(warm)}


def bench_world(config_dir: Path, reps: int, name: str = "xyzb") -> dict:
    """Cold and warm native-zoom tiles; cold also with the neighbours fetched one at a time."""
    from concurrent.futures import ThreadPoolExecutor

    import generator.sources.xyz as xyz
    from generator.world import World

    out = {}
    shared = xyz._pool()
    for label, pool in (("parallel", shared), ("one_at_a_time", ThreadPoolExecutor(1))):
        xyz._executor = pool
        world = World.load(name, config_dir)
        cold, warm = [], []
        for x, y in far_tiles(reps):
            t = time.perf_counter()
            world.render(NATIVE, x, y)
            cold.append(time.perf_counter() - t)
            t = time.perf_counter()
            world.render(NATIVE, x, y)
            warm.append(time.perf_counter() - t)
        world.source.close()
        out[label] = {"cold_fetch_decode_compose": ms(cold), "warm_cached": ms(warm)}
    xyz._executor = shared
    return out


def bench_http(config_dir: Path, reps: int) -> dict:
    from starlette.testclient import TestClient

    from tileserver import Settings, create_app

    settings = Settings(config_dir=config_dir, worlds=("xyzb",))
    cold, warm = [], []
    with TestClient(create_app(settings)) as client:
        client.get("/health")
        for x, y in far_tiles(reps):
            url = f"/tiles/xyzb/{NATIVE}/{x}/{y}.png"
            t = time.perf_counter()
            assert client.get(url).status_code == 200
            cold.append(time.perf_counter() - t)
            t = time.perf_counter()
            assert client.get(url).status_code == 200
            warm.append(time.perf_counter() - t)
        client.app.state.worlds["xyzb"].source.close()
    return {"cold": ms(cold), "warm": ms(warm)}


def bench_outage(
    root: Path, port: int, proc, config_dir: Path, pixels: dict
) -> tuple[dict, object]:
    from starlette.testclient import TestClient

    from tests.serving_helpers import decode_array
    from tileserver import Settings, create_app

    order = [(x, y) for y in range(1 << NATIVE) for x in range(1 << NATIVE)]
    settings = Settings(config_dir=config_dir, worlds=("xyzb",))
    log = []  # (t, x, y, status, seconds, fetched)
    with TestClient(create_app(settings)) as client:
        app = client.app
        world = app.state.worlds["xyzb"]
        src = world.source
        t0 = time.perf_counter()
        killed_at = restarted_at = None
        for i, (x, y) in enumerate(order):
            if i == 40:
                upstream.kill(proc)
                killed_at = time.perf_counter()
            if killed_at and restarted_at is None and time.perf_counter() - killed_at >= 2.0:
                proc = upstream.start(root, port)
                restarted_at = time.perf_counter()
            before = src.fetches
            t = time.perf_counter()
            r = client.get(f"/tiles/xyzb/{NATIVE}/{x}/{y}.png")
            log.append((t - t0, x, y, r.status_code, time.perf_counter() - t, src.fetches > before))
            if r.status_code == 200:
                assert np.array_equal(decode_array(r.content), pixels[(NATIVE, x, y)]), (x, y)
        assert killed_at is not None and restarted_at is not None
        down = [e for e in log if killed_at - t0 <= e[0] < restarted_at - t0]
        after = [e for e in log if e[0] >= restarted_at - t0]
        failed = [(e[1], e[2]) for e in log if e[3] == 502]
        store = app.state.store
        leftover = [k for k in list(store._data) for x, y in failed if f"/{NATIVE}/{x}/{y}" in k]
        first_ok = next(e for e in after if e[3] == 200 and e[5])
        # every failed tile is served, exactly, once the upstream is back
        again = [client.get(f"/tiles/xyzb/{NATIVE}/{x}/{y}.png") for x, y in failed]
        exact = all(
            r.status_code == 200 and np.array_equal(decode_array(r.content), pixels[(NATIVE, x, y)])
            for r, (x, y) in zip(again, failed, strict=True)
        )
        statuses = sorted({e[3] for e in log})
        fetches = src.fetches
        src.close()
    result = {
        "requests": len(log),
        "statuses_seen": statuses,
        "down_s": round(restarted_at - killed_at, 2),
        "while_down": {
            "requests": len(down),
            "502": sum(e[3] == 502 for e in down),
            "200_from_memory_or_cache": sum(e[3] == 200 for e in down),
            "502_time": ms([e[4] for e in down if e[3] == 502]),
        },
        "after_restart": {
            "requests": len(after),
            "502": sum(e[3] == 502 for e in after),
            "first_fetched_200_s_after_restart": round(
                first_ok[0] + first_ok[4] - (restarted_at - t0), 3
            ),
        },
        "other_statuses": [s for s in statuses if s not in (200, 502)],
        "cache_entries_of_failed_tiles": len(leftover),
        "failed_tiles_served_exactly_after": exact,
        "failed_tiles": len(failed),
        "upstream_fetches_per_tile": round(fetches / len(log), 2),
    }
    return result, proc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--format", choices=["png", "jpg"], default="png")
    args = ap.parse_args()
    ext = args.format
    tmp = Path(tempfile.mkdtemp(prefix="orbis-xyz-bench-"))
    root = tmp / "tiles"
    pixels = write_upstream(root, ext)
    port = upstream.free_port()
    proc = upstream.start(root, port)
    cfg = tmp / "config"
    write_world(cfg, "xyzb", WORLD.format(port=port, ext=ext, native=NATIVE, prefix=""))
    # the same tiles 20 ms away (the server sleeps before answering): a remote upstream's RTT
    lag = "/slow/0.02"
    write_world(cfg, "xyzlag", WORLD.format(port=port, ext=ext, native=NATIVE, prefix=lag))
    load = os.getloadavg()
    try:
        base_url = f"http://127.0.0.1:{port}"
        source = bench_source(base_url, ext, args.reps)
        world = bench_world(cfg, args.reps)
        world_lag = bench_world(cfg, args.reps, "xyzlag")
        http = bench_http(cfg, args.reps)
        outage, proc = bench_outage(root, port, proc, cfg, pixels)
    finally:
        upstream.kill(proc)
    sizes = [p.stat().st_size for p in root.glob(f"{NATIVE}/*/*.{ext}")]
    data = {
        "command": f"OMP_NUM_THREADS=1 .venv/bin/python bench/xyz_base.py --reps {args.reps} "
        f"--format {ext}",
        "load_average_before": [round(v, 2) for v in load],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "upstream": {
            "server": "tests/xyz_upstream.py (http.server, HTTP/1.1 keep-alive) on 127.0.0.1",
            "tiles": f"Blue Marble z0-{NATIVE}, {ext}",
            "mean_tile_kib": round(sum(sizes) / len(sizes) / 1024, 1),
        },
        "source": source,
        "world_native_zoom_tile": world,
        "world_native_zoom_tile_20ms_upstream": world_lag,
        "http_native_zoom_tile": http,
        "outage": outage,
    }
    path = save("xyz_base" if ext == "png" else f"xyz_base_{ext}", data)
    print(path.read_text())


if __name__ == "__main__":
    main()
