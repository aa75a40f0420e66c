"""The ``planet`` geography of config/worlds/planet.toml (seed 7, base zoom 4), measured.

    OMP_NUM_THREADS=1 .venv/bin/python bench/geography_planet.py

Coast agreement with the base tiles (IoU of sea at z4 and of the refined coast at z6/z8),
river monotonicity along the polylines, where rivers end, hypsometry, land-cover agreement with
the base palette, one-off costs (base fields, routing, numba compilation cold and cached) and
milliseconds per 256² tile per layer warm. Writes bench/results/geography_planet.json (no torch).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.geography import classes  # noqa: E402
from generator.geography.grid import grid_width, lonlat, tile_rect  # noqa: E402
from generator.geography.planet import PlanetGeography  # noqa: E402
from generator.planner import Rect  # noqa: E402

SEED, BZ = 7, 4
RESULTS = ROOT / "bench" / "results"


def coast_iou_base(g: PlanetGeography) -> dict:
    """Sea of the base tiles' colours (blue, below the ice latitudes) vs OCEAN at z4."""
    n = 1 << BZ
    inter = union = 0
    exact = 0
    for ty in range(n):
        for tx in range(n):
            r = tile_rect(BZ, tx, ty)
            rgb = g.base.tile(tx, ty).astype(int)
            sea_img = (rgb[..., 2] > rgb[..., 0] + 15) & (rgb[..., 2] > rgb[..., 1])
            kind, _ = g.water(BZ, r)
            _, lat = lonlat(BZ, r)
            ok = (np.abs(lat) < 66)[:, None]
            sea_w = kind == classes.OCEAN
            inter += int((sea_img & sea_w & ok).sum())
            union += int(((sea_img | sea_w) & ok).sum())
            h = g.fields.h[r.y0 : r.y0 + 256, r.x0 : r.x0 + 256]
            exact += int(((h < 0) != sea_w).sum())
    return {"iou_vs_base_rgb": inter / union, "pixels_differing_from_base_height_sign": exact}


def coast_refined(g: PlanetGeography, z: int, windows: int = 10, size: int = 48) -> dict:
    """Refined coast at z vs the base: per base pixel, ocean fraction ≥ 0.5 vs height < 0."""
    rng = np.random.default_rng(0)
    h = g.fields.h
    n = h.shape[0]
    f = 1 << (z - BZ)
    coast = np.argwhere((np.abs(h) < 0.03)[size : n - size, :])
    inter = union = agree = total = 0
    for k in rng.choice(len(coast), windows, replace=False):
        y, x = coast[k] + [size, 0]
        y0, x0 = y - size // 2, x - size // 2
        fine = Rect(y0 * f, x0 * f, size * f, size * f)
        kind, _ = g.water(z, fine)
        frac = (kind == classes.OCEAN).reshape(size, f, size, f).mean(axis=(1, 3))
        base = h[y0 : y0 + size, np.arange(x0, x0 + size) % n] < 0
        sea = frac >= 0.5
        inter += int((sea & base).sum())
        union += int((sea | base).sum())
        agree += int((sea == base).sum())
        total += sea.size
    # whole base tiles drawn at random (the global figure, coasts at their natural share)
    tiles = rng.choice(grid_width(BZ) // 256, (2 if z >= 8 else 6, 2))
    t_agree = t_total = 0
    for ty, tx in tiles:
        r = tile_rect(BZ, int(tx), int(ty))
        kind, _ = g.water(z, Rect(r.y0 * f, r.x0 * f, 256 * f, 256 * f))
        frac = (kind == classes.OCEAN).reshape(256, f, 256, f).mean(axis=(1, 3))
        base = h[r.y0 : r.y0 + 256, r.x0 : r.x0 + 256] < 0
        t_agree += int(((frac >= 0.5) == base).sum())
        t_total += base.size
    return {
        "coast_windows_iou": inter / union,
        "coast_windows_sign_agreement": agree / total,
        "coast_windows": f"{windows} windows of {size}² base px centred on coast pixels",
        "random_base_tiles_sign_agreement": t_agree / t_total,
        "random_base_tiles": len(tiles),
    }


def river_monotonicity(g: PlanetGeography, z: int, windows: int = 6) -> dict:
    """Elevation of river pixels sorted along each polyline: rises between neighbours."""
    net = g.network
    length = np.hypot(net.x1 - net.x0, net.y1 - net.y0)
    rng = np.random.default_rng(1)
    big = np.flatnonzero((net.order >= 3) & (net.down >= 0))
    s = grid_width(z) / net.m
    pairs = rises = 0
    worst = 0.0
    for i in rng.choice(big, windows, replace=False):
        cx, cy = int((net.x0[i] + 0.5) * s), int((net.y0[i] + 0.5) * s)
        rect = Rect(cy - 256, cx - 256, 512, 512)
        e = g.elevation(z, rect)
        rq = g._get(z, rect, "rq")
        kind, _ = g.water(z, rect)
        on = rq["on_river"] & (kind == classes.LAND)
        seg, t, ev = rq["seg"][on], rq["t"][on], e[on].astype(np.float64)
        for sgm in np.unique(seg):
            chain = [int(sgm)]
            while net.down[chain[-1]] >= 0 and len(chain) < 400:
                chain.append(int(net.down[chain[-1]]))
            starts = np.concatenate([[0.0], np.cumsum(length[chain])[:-1]])
            start = dict(zip(chain, starts, strict=True))
            sel = np.isin(seg, chain)
            pos = np.array([start[int(q)] for q in seg[sel]]) + t[sel] * length[seg[sel]]
            d = np.diff(ev[sel][np.argsort(pos, kind="stable")])
            pairs += len(d)
            rises += int((d > 0.01).sum())
            worst = max(worst, float(d.max(initial=0.0)))
    return {
        "pairs": pairs,
        "rising_pairs_over_1cm": rises,
        "max_rise_m": worst,
        "tolerance_m": 0.01,
    }


def hypsometry(g: PlanetGeography) -> dict:
    e = g._elevation_base()
    land = g.fields.h >= 0
    el, es = e[land], e[~land]
    shelf = (g.fields.h < 0) & (g.fields.h > -0.08)
    return {
        "land_quantiles_m": {
            str(q): float(np.quantile(el, q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
        },
        "land_max_m": float(el.max()),
        "land_fraction_0_1000m": float(((el >= 0) & (el < 1000)).mean()),
        "ocean_median_m": float(np.median(es)),
        "shelf_median_m": float(np.median(e[shelf])),
        "note": "at z4 (base pixels ~10 km): peaks of the finer zooms are higher",
    }


def landcover_agreement(g: PlanetGeography) -> dict:
    f = g.fields
    n = f.h.shape[0]
    lc = np.empty((n, n), np.uint8)
    for ty in range(n // 256):
        for tx in range(n // 256):
            r = tile_rect(BZ, tx, ty)
            lc[r.y0 : r.y0 + 256, r.x0 : r.x0 + 256] = g.landcover(BZ, r)
    alat = g.base.fields().alat
    land = f.h >= 0
    ice = ((alat - 74 + 4 * f.h) / 4 > 0.5) & land
    dry = np.clip(0.38 - 0.35 * f.moist + 0.2 * np.exp(-(((alat - 25) / 12) ** 2)), 0, 1)
    desert = (dry > 0.75) & land & ~ice & (f.h < 1.8)
    rock = (f.h > 2.2) & land & ~ice
    share = np.bincount(lc[land], minlength=len(classes.LANDCOVER)) / land.sum()
    return {
        "base_ice_classed_ice": float((lc[ice] == classes.ICE).mean()),
        "base_desert_classed_desert": float((lc[desert] == classes.DESERT).mean()),
        "base_rock_classed_rock_or_ice": float(
            np.isin(lc[rock], [classes.ROCK, classes.ICE]).mean()
        ),
        "land_share": {k.name: round(float(share[k.id]), 4) for k in classes.LANDCOVER},
    }


def per_tile_ms(g: PlanetGeography) -> dict:
    """Warm ms per 256² tile per layer (the per-rect memo cleared, so each layer pays its own
    shared fields), and all four layers of a tile together."""
    net = g.network
    rng = np.random.default_rng(2)
    picks = rng.choice(np.flatnonzero(net.order >= 2), 5, replace=False)
    out = {}
    for z in (4, 6, 9, 12, 15):
        s = grid_width(z) / net.m
        tiles = [
            (int((net.x0[i] + 0.5) * s) // 256, int((net.y0[i] + 0.5) * s) // 256) for i in picks
        ]
        per = {k: [] for k in ("water", "rivers", "elevation", "landcover", "all")}
        for rep in range(2):
            for tx, ty in tiles:
                r = tile_rect(z, tx + rep, ty)  # the second pass: neighbours (no memo hits)
                for name in ("water", "rivers", "elevation", "landcover"):
                    g._memo.clear()
                    t = time.perf_counter()
                    getattr(g, name)(z, r)
                    per[name].append((time.perf_counter() - t) * 1000)
                g._memo.clear()
                t = time.perf_counter()
                for name in ("water", "rivers", "elevation", "landcover"):
                    getattr(g, name)(z, r)
                per["all"].append((time.perf_counter() - t) * 1000)
        out[f"z{z}"] = {k: round(float(np.median(v)), 1) for k, v in per.items()}
        out[f"z{z}"]["max_any_layer"] = round(
            float(max(max(v) for k, v in per.items() if k != "all")), 1
        )
        print(z, out[f"z{z}"])
    return out


_FIRST_TILE = """
import time, sys
t = time.perf_counter()
from generator.geography.planet import PlanetGeography
from generator.geography.grid import tile_rect
g = PlanetGeography(7, base_zoom=4)
g.fields
t1 = time.perf_counter()
g.network
t2 = time.perf_counter()
r = tile_rect(9, 260, 180)
g.water(9, r); g.rivers(9, r); g.elevation(9, r); g.landcover(9, r)
t3 = time.perf_counter()
print(t1 - t, t2 - t1, t3 - t2)
"""


def first_tile_costs(cache: str) -> dict:
    """Seconds of a fresh process: base fields, network (cached on disk), first z9 tile —
    with an empty numba cache (compiling) and again with it filled."""
    out = {}
    with tempfile.TemporaryDirectory() as numba_dir:
        for label in ("numba_cold", "numba_cached"):
            env = dict(os.environ, ORBIS_DATA_CACHE=cache, NUMBA_CACHE_DIR=numba_dir)
            p = subprocess.run(
                [sys.executable, "-c", _FIRST_TILE],
                capture_output=True,
                text=True,
                env=env,
                check=True,
                cwd=ROOT,
            )
            a, b, c = (float(x) for x in p.stdout.split())
            out[label] = {
                "base_fields_s": round(a, 2),
                "network_load_s": round(b, 2),
                "first_tile_all_layers_s": round(c, 2),
            }
    return out


_ROUTE = """
import time
from generator.geography.planet import PlanetGeography
g = PlanetGeography(7, base_zoom=4)
g.fields
t = time.perf_counter()
g.network
print(time.perf_counter() - t)
"""


def routing_costs() -> dict:
    """Seconds to route the network in a fresh process with no river cache: pyflwdir's and
    planet's numba functions compiled from scratch, then from numba's on-disk cache."""
    out = {}
    with tempfile.TemporaryDirectory() as numba_dir:
        for label in ("numba_cold", "numba_cached"):
            with tempfile.TemporaryDirectory() as cache:
                env = dict(os.environ, ORBIS_DATA_CACHE=cache, NUMBA_CACHE_DIR=numba_dir)
                p = subprocess.run(
                    [sys.executable, "-c", _ROUTE],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=True,
                    cwd=ROOT,
                )
                out[label] = round(float(p.stdout.split()[-1]), 2)
    return out


def main() -> None:
    cache = tempfile.mkdtemp(prefix="orbis-planet-bench-")
    os.environ["ORBIS_DATA_CACHE"] = cache
    res: dict = {
        "measured": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, 1 thread (OMP_NUM_THREADS=1), CPU",
        "world": f"planet seed {SEED}, base zoom {BZ}",
    }
    t = time.perf_counter()
    g = PlanetGeography(SEED, base_zoom=BZ)
    _ = g.fields
    res["base_fields_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    net = g.network
    res["routing_s"] = round(time.perf_counter() - t, 2)
    mouths = net.down < 0
    res["network"] = {
        "routing_grid": f"{net.m}² (z{g.routing_zoom})",
        "segments": len(net.x0),
        "max_strahler_order": int(net.order.max()),
        "mouths": int(mouths.sum()),
        "mouths_at_sea_level": float((net.bed1[mouths] == 0).mean()),
        "segments_bed_rising_downstream": int((net.bed1 > net.bed0 + 1e-3).sum()),
        "lake_cells": int(net.lake.sum()),
    }
    print(res["network"])
    res["coast_z4"] = coast_iou_base(g)
    print(res["coast_z4"])
    res["coast_refined"] = {f"z{z}": coast_refined(g, z) for z in (6, 8)}
    print(res["coast_refined"])
    res["river_monotonicity"] = {f"z{z}": river_monotonicity(g, z) for z in (8, 11, 14)}
    print(res["river_monotonicity"])
    t = time.perf_counter()
    res["hypsometry_z4"] = hypsometry(g)
    res["elevation_base_grid_s"] = round(time.perf_counter() - t, 2)
    print(res["hypsometry_z4"])
    res["landcover_z4"] = landcover_agreement(g)
    print(res["landcover_z4"])
    res["ms_per_tile_warm"] = per_tile_ms(g)
    res["fresh_process"] = first_tile_costs(cache)
    print(res["fresh_process"])
    res["routing_fresh_process_s"] = routing_costs()
    print(res["routing_fresh_process_s"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "geography_planet.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
