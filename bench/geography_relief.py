"""Benchmark of the ``earth`` elevation and land-cover layers.

1. Known heights: ≥ 30 summits, lowlands, plateaus, depressions and sea floors — the true height,
   the 2′ grid's cell (for summits the highest cell within 2 cells), the layer at z12 (the pixel
   at the point; for summits the highest pixel within 3 km) and the errors.
2. River monotonicity: every WDBII polyline (``rivers_earth``) in four regions (Po, Rhine, Nile,
   Rhône), the elevation layer sampled at z10 along its centreline, oriented by its surface;
   counted as monotone when it never rises by more than 0.5 m between consecutive land pixels
   (lakes and lagoons it crosses are water, not river). The raw grid along the same lines is
   counted the same way, for comparison.
3. Warm milliseconds per 256² tile (wall and CPU) for elevation and land cover at z8, z11, z14,
   z17 over the Alps, the Po valley, Paris and the Nile delta, through the ``Geography``
   facade (see :func:`speed`).

Writes ``bench/results/geography_relief.json`` and prints markdown tables. Run:
``OMP_NUM_THREADS=1 .venv/bin/python bench/geography_relief.py``.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import mercantile
import numpy as np

from generator.geography import relief
from generator.geography.elevation_earth import EarthElevation, running_profile
from generator.geography.grid import tile_rect, to_mercator, to_pixel
from generator.geography.rivers_earth import EarthRivers
from generator.geography.water_earth import EarthWater
from generator.planner import Rect

OUT = Path(__file__).resolve().parent / "results" / "geography_relief.json"

# (name, kind, lon, lat, true metres)
PLACES = [
    ("Everest", "summit", 86.925, 27.988, 8849),
    ("K2", "summit", 76.513, 35.881, 8611),
    ("Aconcagua", "summit", -70.011, -32.653, 6961),
    ("Denali", "summit", -151.007, 63.069, 6190),
    ("Kilimanjaro", "summit", 37.355, -3.067, 5895),
    ("Elbrus", "summit", 42.439, 43.355, 5642),
    ("Mont Blanc", "summit", 6.865, 45.833, 4806),
    ("Matterhorn", "summit", 7.658, 45.976, 4478),
    ("Mauna Kea", "summit", -155.468, 19.821, 4207),
    ("Mount Whitney", "summit", -118.292, 36.579, 4421),
    ("Zugspitze", "summit", 10.985, 47.421, 2962),
    ("Mount Kosciuszko", "summit", 148.263, -36.456, 2228),
    ("Tahat (Ahaggar)", "summit", 5.533, 23.283, 2908),
    ("Mount Fuji", "summit", 138.727, 35.361, 3776),
    ("Tibetan plateau (Nagqu)", "plateau", 92.05, 31.48, 4500),
    ("Altiplano (Oruro)", "plateau", -67.11, -17.97, 3710),
    ("Lhasa", "plateau", 91.11, 29.65, 3656),
    ("Greenland summit", "plateau", -38.46, 72.58, 3216),
    ("Dome A", "plateau", 77.35, -80.37, 4093),
    ("Denver", "lowland", -104.99, 39.74, 1609),
    ("Madrid", "lowland", -3.70, 40.42, 657),
    ("Paris", "lowland", 2.35, 48.86, 35),
    ("Po valley (Cremona)", "lowland", 10.02, 45.13, 45),
    ("Po valley (Ferrara)", "lowland", 11.62, 44.84, 9),
    ("Netherlands (Flevoland)", "lowland", 5.5, 52.5, -4),
    ("Amazon (Manaus)", "lowland", -60.02, -3.12, 40),
    ("Ganges plain (Patna)", "lowland", 85.14, 25.59, 53),
    ("Dead Sea", "depression", 35.5, 31.5, -430),
    ("Death Valley (Badwater)", "depression", -116.83, 36.25, -86),
    ("Lake Assal", "depression", 42.42, 11.65, -155),
    ("Caspian Sea", "depression", 50.5, 42.0, -28),
    ("Qattara depression", "depression", 27.0, 29.5, -133),
    ("Turpan depression", "depression", 89.3, 42.75, -154),
    ("Mariana trench (Challenger Deep)", "sea floor", 142.2, 11.35, -10935),
    ("Central Pacific abyss", "sea floor", -150.0, 0.0, -4400),
    ("Puerto Rico trench", "sea floor", -66.0, 19.8, -8400),
]

REGIONS = {
    "Po": (7.0, 44.3, 12.6, 46.2),
    "Rhine": (4.0, 46.4, 10.0, 52.2),
    "Nile": (29.0, 22.0, 34.0, 31.8),
    "Rhône": (4.0, 43.2, 8.5, 46.6),
}


def pixel_of(z: int, lon: float, lat: float) -> tuple[int, int]:
    mx, my = to_mercator(np.array([lon]), np.array([lat]))
    c, r = to_pixel(z, mx, my)
    return int(r[0]), int(c[0])


def known_heights(elev: EarthElevation) -> list[dict]:
    rows = []
    z = 12
    for name, kind, lon, lat, true in PLACES:
        r, c = relief._cell(lon, lat)
        if kind == "summit":
            # the highest point of the same ground for both: the 5 × 5 grid cells around the
            # named point (±5′, ≈ ±9 km; a named summit's coordinates and a 2′ cell's centre can
            # be kilometres apart) and the layer's z12 pixels over those cells
            grid = float(np.max(relief.grid().mips[0][r - 2 : r + 3, c - 2 : c + 3]))
            d = 1.0 / relief.PER_DEGREE
            w_, n_ = -180.0 + (c - 2) * d, 90.0 - (r - 2) * d
            e_, s_ = -180.0 + (c + 3) * d, 90.0 - (r + 3) * d
            r0, c0 = pixel_of(z, w_, n_)
            r1, c1 = pixel_of(z, e_, s_)
            layer = float(elev.elevation(z, Rect(r0, c0, r1 - r0, c1 - c0)).max())
        else:
            grid = relief.grid_value(lon, lat)
            pr, pc = pixel_of(z, lon, lat)
            layer = float(elev.elevation(z, Rect(pr, pc, 1, 1))[0, 0])
        rows.append(
            {
                "name": name,
                "kind": kind,
                "true_m": true,
                "grid_m": round(grid, 1),
                "layer_z12_m": round(layer, 1),
                "grid_error_m": round(grid - true, 1),
                "layer_error_m": round(layer - true, 1),
            }
        )
    return rows


def _sample_layer(fn, z: int, rows: np.ndarray, cols: np.ndarray, cache: dict) -> np.ndarray:
    """Return ``fn(z, tile rect)`` at the given global pixels, tile by tile (cached)."""
    out = None
    tx, ty = cols // 256, rows // 256
    for key in set(zip(tx.tolist(), ty.tolist(), strict=True)):
        if key not in cache:
            cache[key] = fn(z, tile_rect(z, key[0], key[1]))
        m = (tx == key[0]) & (ty == key[1])
        v = cache[key][rows[m] - key[1] * 256, cols[m] - key[0] * 256]
        if out is None:
            out = np.empty(len(rows), v.dtype)
        out[m] = v
    assert out is not None
    return out


def river_monotonicity(elev: EarthElevation, rivers: EarthRivers, water: EarthWater) -> dict:
    z = 10
    out = {}
    for region, (w, s, e, n) in REGIONS.items():
        cache: dict = {}
        kcache: dict = {}
        lines = rivers.segments(w, s, e, n)
        mono_layer = mono_grid = total = 0
        worst = 0.0
        pieces = []
        for xy, _cls in lines:
            xy = np.asarray(xy, np.float64)
            inside = (xy[:, 0] >= w) & (xy[:, 0] <= e) & (xy[:, 1] >= s) & (xy[:, 1] <= n)
            # each stretch inside the region on its own: a polyline that leaves the box and comes
            # back must not be joined by a straight jump across the land outside
            edges = np.flatnonzero(np.diff(np.concatenate([[0], inside.astype(np.int8), [0]])))
            pieces += [xy[a:b] for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= 2]
        for xy in pieces:
            # densify to ≤ 1 px at z10, sample the layer at the pixels under the line
            mx, my = to_mercator(xy[:, 0], xy[:, 1])
            c, r = to_pixel(z, mx, my)
            seg = np.hypot(np.diff(c), np.diff(r))
            t = np.concatenate([[0.0], np.cumsum(seg)])
            k = np.linspace(0.0, t[-1], max(2, int(t[-1]) + 1))
            cols = np.floor(np.interp(k, t, c)).astype(np.int64)
            rows = np.floor(np.interp(k, t, r)).astype(np.int64)
            keep = np.concatenate([[True], (np.diff(cols) != 0) | (np.diff(rows) != 0)])
            cols, rows = cols[keep], rows[keep]
            if len(cols) < 3:
                continue
            along = _sample_layer(elev.elevation, z, rows, cols, cache)
            kind = _sample_layer(lambda z, r: water.water(z, r)[0], z, rows, cols, kcache)
            surf = elev._profiles.surface(xy)
            down = surf[0] >= surf[-1]
            # the river's own pixels: where it crosses a lake or a lagoon the water is not river
            along = along[kind == 0]
            if len(along) < 3:
                continue
            d = np.diff(along if down else along[::-1])
            total += 1
            rise = float(d.max()) if len(d) else 0.0
            mono_layer += rise <= 0.5
            worst = max(worst, rise)
            g = relief.sample_points(xy[:, 0], xy[:, 1])
            dg = np.diff(g if down else g[::-1])
            mono_grid += float(dg.max()) <= 0.5
        out[region] = {
            "polylines": total,
            "monotone_layer": mono_layer,
            "monotone_grid": mono_grid,
            "worst_rise_m": round(worst, 2),
        }
    return out


SPEED_PLACES = {
    "Alps": (7.3, 46.0),
    "Po": (10.0, 45.1),
    "Paris": (2.35, 48.85),
    "Nile": (31.2, 30.8),
}


def speed() -> dict:
    """Warm ms per 256² tile through the ``Geography`` facade, wall and CPU (process_time).

    Per zoom and place two fresh tiles (none cached anywhere: the facade's, elevation's and the
    water/rivers memos are cleared), after a warm-up tile at the same place: ``elevation``
    alone, ``landcover`` alone (it computes elevation, water and rivers itself) and
    ``landcover`` right after ``elevation`` of the same tile (the usual order: the memo
    supplies elevation and water). The maximum is over places and tiles.
    """
    from generator.geography.earth import EarthGeography
    from generator.geography.layers import Geography

    src = EarthGeography(0)
    geo = Geography("earth", src)

    def clear() -> None:
        geo._cache.clear()
        src._elevation._cache.clear()
        src._water._lru.clear()
        src._rivers._lru.clear()

    def timed(name: str, z: int, x: int, y: int) -> tuple[float, float]:
        w0, c0 = time.perf_counter(), time.process_time()
        geo.tile(name, z, x, y)
        return (time.perf_counter() - w0) * 1000, (time.process_time() - c0) * 1000

    res = {}
    for z in (8, 11, 14, 17):
        rows: dict[str, list[tuple[float, float]]] = {
            "elevation": [],
            "landcover_alone": [],
            "landcover_after_elevation": [],
        }
        for lon, lat in SPEED_PLACES.values():
            t = mercantile.tile(lon, lat, z)
            clear()
            geo.tile("landcover", z, t.x, t.y)  # warm-up: data, indices, river profiles
            for dx in (1, 2):
                x, y = t.x + dx, t.y + 1
                clear()
                rows["landcover_alone"].append(timed("landcover", z, x, y))
                clear()
                rows["elevation"].append(timed("elevation", z, x, y))
                rows["landcover_after_elevation"].append(timed("landcover", z, x, y))
        res[f"z{z}"] = {
            k: {
                "wall_ms_median": round(statistics.median(w for w, _ in v), 1),
                "wall_ms_max": round(max(w for w, _ in v), 1),
                "cpu_ms_median": round(statistics.median(c for _, c in v), 1),
                "cpu_ms_max": round(max(c for _, c in v), 1),
            }
            for k, v in rows.items()
        }
    return res


def main() -> None:
    water, rivers = EarthWater(0), EarthRivers(0)
    elev = EarthElevation(0, rivers, water)
    heights = known_heights(elev)
    mono = river_monotonicity(elev, rivers, water)
    load = os.getloadavg()[0]
    ms = speed()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {"heights": heights, "rivers": mono, "speed": ms, "load_average_1min": load},
            indent=1,
        )
        + "\n"
    )

    print("| place | kind | true m | grid m | layer z12 m | grid err | layer err |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for h in heights:
        print(
            f"| {h['name']} | {h['kind']} | {h['true_m']} | {h['grid_m']:.0f} | "
            f"{h['layer_z12_m']:.0f} | {h['grid_error_m']:+.0f} | {h['layer_error_m']:+.0f} |"
        )
    for kind in ("summit", "plateau", "lowland", "depression", "sea floor"):
        e = [abs(h["grid_error_m"]) for h in heights if h["kind"] == kind]
        print(f"\nmedian |grid error| {kind}: {statistics.median(e):.0f} m (n={len(e)})", end="")
    print("\n\n| region | polylines | monotone (layer z10) | monotone (raw grid) | worst rise m |")
    print("|---|---:|---:|---:|---:|")
    for k, v in mono.items():
        print(
            f"| {k} | {v['polylines']} | {v['monotone_layer']} | {v['monotone_grid']} | "
            f"{v['worst_rise_m']} |"
        )
    print(f"\nload average at the speed run: {load:.2f}")
    print("\n| zoom | layer | wall ms median / max | CPU ms median / max |")
    print("|---|---|---:|---:|")
    for k, v in ms.items():
        for name, r in v.items():
            print(
                f"| {k} | {name} | {r['wall_ms_median']} / {r['wall_ms_max']} | "
                f"{r['cpu_ms_median']} / {r['cpu_ms_max']} |"
            )
    _ = running_profile  # the orientation rule the monotonicity count uses


if __name__ == "__main__":
    main()
