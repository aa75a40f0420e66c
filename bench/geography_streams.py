"""Benchmark of the ``earth`` procedural streams (generator/geography/streams_earth.py).

Over six hilly places, for the 3 × 3 routing cells (tiles of z13) around each:

1. **Paths.** How the kept sources' paths end (water / a loop / their reach) and the
   monotonicity of their channel part (from the first edge with flow ≥ K_MIN), re-measured
   independently: the (carved) elevation layer at ``MIN_ZOOM`` (z15, the first zoom carved
   since streams version 4) read through the ``Geography`` facade under every channel pixel,
   the largest climb above the lowest point passed (tolerance 0.5 m), and how deep the carve
   is there; and the same along the drawn channel (the pixel of z15 at each midpoint of
   successive nodes, which the drawn line passes through), since streams version 5 the
   measure of the bed itself (a routing pixel's centre may lie on the bank). Then
   FOLLOW_HEADS channel heads of the centre cell followed downstream across cells
   (``EarthStreams.follow``) for up to FOLLOW_STEPS steps: into water, still a channel at the
   last step (it continues), faded out on land (dry) or in a loop.
2. **Tiles** at z15 and z16 (the tile at the place): stream coverage (share of pixels > 0),
   pixels the water layer marks RIVER because of the streams, zoom consistency (mean |2 × 2
   mean of z+1 − z|), seams (3 × 3 tiles vs one window), cold seconds for the first tile of the
   place (routing included) and warm milliseconds of ``EarthStreams.streams`` for a 256² tile
   (median of 7) and of the whole ``rivers`` layer (WDBII + streams). The cold seconds of
   routing the 3 × 3 cells (elevation and water tiles of z13 included) are in ``paths``.

Writes ``bench/results/geography_streams.json`` and prints markdown tables. Run:
``OMP_NUM_THREADS=1 .venv/bin/python bench/geography_streams.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import mercantile
import numpy as np

from generator.geography import classes
from generator.geography import streams_earth as S
from generator.geography.grid import tile_rect
from generator.geography.layers import make_geography
from generator.planner import Rect

OUT = Path(__file__).resolve().parent / "results" / "geography_streams.json"

PLACES = {
    "Black Forest": (8.10, 48.00),
    "Vosges": (7.00, 48.10),
    "Apennines (Bologna)": (11.20, 44.30),
    "Scottish Highlands": (-4.50, 56.80),
    "Appalachians (WV)": (-80.00, 38.50),
    "Western Ghats (Kodagu)": (75.70, 12.40),
}
ZOOMS = (15, 16)
#: Channel heads followed downstream per place, and the most D8 steps (≈ 27 km at 45°).
FOLLOW_HEADS = 10
FOLLOW_STEPS = 2000


def paths(geo, st: S.EarthStreams, lon: float, lat: float) -> dict:
    """Ends, carve depth and independently measured monotonicity of the kept paths of 3 × 3
    cells, and where the channels from some of their heads end."""
    t = mercantile.tile(lon, lat, S.ZR)
    ends = np.zeros(3, int)
    worst, bad, n = 0.0, 0, 0
    worst_line, bad_line = 0.0, 0
    lengths, depth = [], []
    t0 = time.perf_counter()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            st.network(t.x + dx, t.y + dy)
    route_s = time.perf_counter() - t0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            cx, cy = t.x + dx, t.y + dy
            net = st.network(cx, cy)
            ends += np.bincount(net.ends, minlength=3)[:3]
            rect = tile_rect(S.ZR, cx, cy, margin=256)
            # the layer where it is carved (from MIN_ZOOM: streams version 4), read at the
            # pixel of that zoom under each routing pixel's centre; through the facade
            k = 1 << (S.MIN_ZOOM - S.ZR)
            fine = Rect(rect.y0 * k, rect.x0 * k, rect.h * k, rect.w * k)
            full = geo.window("elevation", S.MIN_ZOOM, fine)
            elev = full[k // 2 :: k, k // 2 :: k]
            raw = geo.source._elevation.elevation(S.MIN_ZOOM, fine)[k // 2 :: k, k // 2 :: k]
            y0, x0 = rect.y0, rect.x0
            for p in net.paths:
                # the channel part of the path (from its first channel edge on)
                flow = np.array(
                    [st.network(x // 256, y // 256).out_flow[y % 256, x % 256] for y, x in p]
                )
                ch = np.nonzero(flow >= S.K_MIN)[0]
                lengths.append(len(p))
                if not len(ch):
                    continue
                seg = p[ch[0] :]
                ry, rx = seg[:, 0] - y0, seg[:, 1] - x0
                ok = (ry >= 0) & (ry < rect.h) & (rx >= 0) & (rx < rect.w)
                ry, rx = ry[ok], rx[ok]
                prof = elev[ry, rx].astype(np.float64)
                rise = float((prof - np.minimum.accumulate(prof)).max())
                depth.append(float((raw[ry, rx] - elev[ry, rx]).max()))
                worst = max(worst, rise)
                bad += rise > S.RISE_TOL_M + 1e-3
                n += 1
                # along the drawn channel: the pixel of z15 at each midpoint of successive nodes
                # (the line the stream is drawn on passes through them)
                ny, nx = st.nodes(seg[:, 0], seg[:, 1])
                fy = np.floor(((ny[1:] + ny[:-1]) / 2 - y0) * k).astype(int)
                fx = np.floor(((nx[1:] + nx[:-1]) / 2 - x0) * k).astype(int)
                okm = (fy >= 0) & (fy < fine.h) & (fx >= 0) & (fx < fine.w)
                line = full[fy[okm], fx[okm]].astype(np.float64)
                if len(line):
                    lrise = float((line - np.minimum.accumulate(line)).max())
                    worst_line = max(worst_line, lrise)
                    bad_line += lrise > S.RISE_TOL_M + 1e-3
    # channels followed downstream, across cells, from heads of the centre cell
    net = st.network(t.x, t.y)
    heads = np.argwhere(net.out_flow >= S.K_MIN)
    rng = np.random.default_rng(0)
    follow = {"water": 0, "continues": 0, "dry": 0, "loop": 0}
    names = {S.END_WATER: "water", S.END_REACH: "continues", S.END_DRY: "dry"}
    names[S.END_LOOP] = "loop"
    flen = []
    t0 = time.perf_counter()
    for i in rng.choice(len(heads), min(FOLLOW_HEADS, len(heads)), replace=False):
        gy, gx = heads[i] + [t.y * 256, t.x * 256]
        path, why = st.follow(int(gy), int(gx), FOLLOW_STEPS)
        follow[names[why]] += 1
        flen.append(len(path))
    return {
        "paths": int(ends.sum()),
        "end_water": int(ends[S.END_WATER]),
        "end_loop": int(ends[S.END_LOOP]),
        "end_reach": int(ends[S.END_REACH]),
        "channel_paths": n,
        "monotone": n - bad,
        "worst_rise_m": round(worst, 3),
        "monotone_along_line": n - bad_line,
        "worst_rise_along_line_m": round(worst_line, 3),
        "carve_depth_m_median_p90_max": [
            round(float(np.percentile(depth, q)), 1) if depth else 0.0 for q in (50, 90, 100)
        ],
        "median_length_px": float(np.median(lengths)) if lengths else 0.0,
        "route_3x3_cells_cold_s": round(route_s, 1),
        "follow": follow,
        "follow_median_px": float(np.median(flen)) if flen else 0.0,
        "follow_s": round(time.perf_counter() - t0, 1),
    }


def tiles(geo, st: S.EarthStreams, lon: float, lat: float) -> dict:
    """Coverage, RIVER pixels, zoom consistency, seams and speed at ZOOMS."""
    out = {}
    for z in ZOOMS:
        t = mercantile.tile(lon, lat, z)
        r = tile_rect(z, t.x, t.y)
        t0 = time.perf_counter()
        cov = st.streams(z, r)
        cold = time.perf_counter() - t0
        ms = []
        for _ in range(7):
            t0 = time.perf_counter()
            st.streams(z, r)
            ms.append((time.perf_counter() - t0) * 1e3)
        # the whole rivers layer through the source (WDBII memo cleared each time)
        rl = []
        for _ in range(5):
            geo.source._rivers._lru.clear()
            t0 = time.perf_counter()
            geo.source.rivers(z, r)
            rl.append((time.perf_counter() - t0) * 1e3)
        wdb = geo.source._rivers.rivers(z, r)
        kind = geo.tile("water", z, t.x, t.y)
        river_px = int(((kind == classes.RIVER) & (wdb < 0.5)).sum())
        kids = st.streams(z + 1, Rect(r.y0 * 2, r.x0 * 2, 512, 512))
        mean = kids.reshape(256, 2, 256, 2).mean(axis=(1, 3))
        big = st.streams(z, Rect(r.y0 - 256, r.x0 - 256, 768, 768))
        row = [[tile_rect(z, t.x + i, t.y + j) for i in (-1, 0, 1)] for j in (-1, 0, 1)]
        mosaic = np.block([[st.streams(z, q) for q in rr] for rr in row])
        out[str(z)] = {
            "coverage_share": round(float((cov > 0).mean()), 4),
            "stream_river_px": river_px,
            "zoom_mean_abs_diff": round(float(np.abs(mean - cov).mean()), 5),
            "zoom_area_ratio": round(float(mean.sum() / cov.sum()), 3) if cov.sum() else None,
            "seam_max_diff": float(np.abs(big - mosaic).max()),
            "cold_s": round(cold, 2),
            "streams_warm_ms": round(statistics.median(ms), 1),
            "rivers_layer_ms": round(statistics.median(rl), 1),
        }
    return out


def main() -> None:
    """Run the benchmark and write the JSON."""
    global FOLLOW_HEADS, FOLLOW_STEPS
    ap = argparse.ArgumentParser()
    ap.add_argument("--places", default=",".join(PLACES), help="comma-separated subset")
    ap.add_argument("--heads", type=int, default=FOLLOW_HEADS, help="channel heads followed")
    ap.add_argument("--steps", type=int, default=FOLLOW_STEPS, help="most steps followed")
    ap.add_argument("--out", default=OUT.stem, help="results name under bench/results/")
    args = ap.parse_args()
    out = OUT.with_name(f"{args.out}.json")
    FOLLOW_HEADS, FOLLOW_STEPS = args.heads, args.steps
    geo = make_geography("earth", 0)
    st = S.streams_of(geo.source)
    res = {}
    for name in args.places.split(","):
        lon, lat = PLACES[name]
        t0 = time.perf_counter()
        res[name] = {"paths": paths(geo, st, lon, lat), "tiles": tiles(geo, st, lon, lat)}
        res[name]["total_s"] = round(time.perf_counter() - t0, 1)
        print(name, res[name], flush=True)
    load = os.getloadavg()[0]
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "places": res,
                "load_average_1min": load,
                "follow": {"heads": FOLLOW_HEADS, "steps": FOLLOW_STEPS},
                "identity": st.identity,
            },
            indent=1,
        )
    )
    print(f"\nload average {load:.1f}\n")
    print(
        "| place | paths | end water | end loop | end reach | channel paths | monotone "
        "| worst rise m | monotone along the line | worst rise m "
        "| carve depth m (median/p90/max) | route 3×3 cells s "
        "| heads followed: water / continues / dry / loop |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, v in res.items():
        p = v["paths"]
        f = p["follow"]
        print(
            f"| {name} | {p['paths']} | {p['end_water']} | {p['end_loop']} | {p['end_reach']}"
            f" | {p['channel_paths']} | {p['monotone']} | {p['worst_rise_m']}"
            f" | {p['monotone_along_line']} | {p['worst_rise_along_line_m']}"
            f" | {'/'.join(str(d) for d in p['carve_depth_m_median_p90_max'])}"
            f" | {p['route_3x3_cells_cold_s']}"
            f" | {f['water']} / {f['continues']} / {f['dry']} / {f['loop']} |"
        )
    print("\n| place | z | coverage | RIVER px | 2×2 mean diff | area ratio | seam | cold s "
          "| streams ms | rivers layer ms |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, v in res.items():
        for z, q in v["tiles"].items():
            print(
                f"| {name} | {z} | {q['coverage_share']} | {q['stream_river_px']} | "
                f"{q['zoom_mean_abs_diff']} | {q['zoom_area_ratio']} | {q['seam_max_diff']} | "
                f"{q['cold_s']} | {q['streams_warm_ms']} | {q['rivers_layer_ms']} |"
            )


if __name__ == "__main__":
    main()
