"""Benchmark of the dunes of the ``earth`` elevation (generator/geography/dunes_earth.py).

For the tile over each place at zooms 9–16 of the default ``earth`` world (its seed): the dunes'
weight there (mean), the relief they add (the standard deviation of the elevation minus its
7 × 7 mean, which the relief shading turns into light and shade), the orientation coherence
of the elevation's gradients over 16 px (straight ridges read near 1, the plain's isotropic
detail ≈ 0.1–0.2), zoom consistency (mean |2 × 2 mean of the z+1 tile − the z tile|, m), the
seam (largest |3 × 3 tiles − one 768² window|, m) and the warm milliseconds of an elevation
tile through the ``Geography`` facade (median of 7, its LRU cleared each time) and of the
dunes alone.

    OMP_NUM_THREADS=1 .venv/bin/python bench/dunes.py

Writes ``bench/results/dunes.json`` and prints a markdown table.
"""

from __future__ import annotations

import statistics
import time

import mercantile
import numpy as np
from common import save
from scipy.ndimage import uniform_filter

from generator.geography import relief
from generator.geography.grid import lonlat, tile_rect
from generator.geography.layers import make_geography
from generator.metrics_realism import structure_tensor
from generator.planner import Rect

try:  # the same bench on a tree from before the dunes (a worktree) gives the "before" figures
    from generator.geography import dunes_earth as D
except ImportError:
    D = None  # type: ignore[assignment]

PLACES = {
    "Grand Erg Occidental": (0.78, 30.82),
    "Al Jafurah, Arabia": (50.0, 24.84),
    "Tanezrouft (no sand sea here)": (0.5, 23.5),
}
ZOOMS = range(9, 17)
SEED = 20261123  # config/worlds/earth.toml


def coherence(e: np.ndarray) -> float:
    coh, energy, _ = structure_tensor(e.astype(np.float64), 16.0)
    return float((coh * energy).sum() / max(energy.sum(), 1e-12))


def main() -> None:
    geo = make_geography("earth", SEED)
    src = geo.source
    noise = src._elevation._noise_seed
    out: dict = {}
    for name, (lon, lat) in PLACES.items():
        rows = {}
        for z in ZOOMS:
            t = mercantile.tile(lon, lat, z)
            r = tile_rect(z, t.x, t.y)
            e = geo.tile("elevation", z, t.x, t.y).astype(np.float64)
            lo, la = lonlat(z, r)
            rough = relief.roughness(lo, la)
            base = relief.sample(lo, la, relief.mip_for_pixel(360.0 / (256 << z)))
            w = D.sand_share(noise, z, r, lo, la, rough, base) if D else np.zeros((256, 256))
            kids = geo.window("elevation", z + 1, Rect(r.y0 * 2, r.x0 * 2, 512, 512))
            mean = kids.astype(np.float64).reshape(256, 2, 256, 2).mean(axis=(1, 3))
            big = geo.window("elevation", z, Rect(r.y0 - 256, r.x0 - 256, 768, 768))
            mosaic = np.block(
                [
                    [geo.tile("elevation", z, t.x + i, t.y + j) for i in (-1, 0, 1)]
                    for j in (-1, 0, 1)
                ]
            )
            ms, dms = [], []
            for _ in range(7):
                src._elevation._cache.clear()
                t0 = time.perf_counter()
                src.elevation(z, r)
                ms.append((time.perf_counter() - t0) * 1e3)
                t0 = time.perf_counter()
                if D:
                    D.dunes(noise, z, r, w)
                dms.append((time.perf_counter() - t0) * 1e3)
            rows[f"z{z}"] = {
                "weight": round(float(w.mean()), 3),
                "relief_std_m": round(float((e - uniform_filter(e, 7)).std()), 2),
                "coherence16": round(coherence(e), 3),
                "zoom_mean_abs_diff_m": round(float(np.abs(mean - e).mean()), 3),
                "seam_max_m": float(np.abs(big.astype(np.float64) - mosaic).max()),
                "elevation_warm_ms": round(statistics.median(ms), 1),
                "dunes_ms": round(statistics.median(dms), 1),
            }
            print(name, z, rows[f"z{z}"], flush=True)
        out[name] = rows
    name = "dunes" if D else "dunes_before"
    save(name, {"places": out, "seed": SEED, "dunes_version": D.VERSION if D else None})
    print("\n| place | zoom | weight | relief std m | coherence (16 px) | zoom diff m | seam m "
          "| elevation tile ms | dunes ms |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, rows in out.items():
        for z, q in rows.items():
            print(
                f"| {name} | {z} | {q['weight']} | {q['relief_std_m']} | {q['coherence16']} "
                f"| {q['zoom_mean_abs_diff_m']} | {q['seam_max_m']:.4f} | "
                f"{q['elevation_warm_ms']} | {q['dunes_ms']} |"
            )


if __name__ == "__main__":
    main()
