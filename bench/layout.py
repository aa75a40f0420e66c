"""Benchmark and pictures of the ``layout`` layer (``generator.geography.layout``).

1. Speed per 256² tile at z12–z17 over farmland, a village, a city and a mountain valley in
   both worlds (``earth``: the Po valley, a village in Bavaria, Paris, the Inn valley, the Nile
   delta; ``planet``: places found by the land cover, see :func:`planet_places`):
   - *layout*: the layout's own work (vector objects gathered from warm cells, rasterised,
     classes composed) with the tile's land cover and water already computed — what the layer
     adds to a request that has the geography at hand;
   - *pan*: a neighbouring tile after the first, the layout's cells warm but the land cover and
     water of the tile (and its 4-px margin) computed for it — what a panning client waits for;
   - *cold*: the first tile of a place in a fresh process (the coarse geography blocks, sites,
     links and cells built).
2. Consistency: for roads and field-parcel boundaries drawn at z (12–15), the distance (z pixels)
   to the nearest road / boundary pixel of the same ground at z+1..z+4 (48-px windows centred on
   a road or a boundary; the last row and column skipped: their boundary lies outside).
3. Pictures: each place at z12, z14, z16, z17 (classes coloured by the legend, boundaries
   darkened) to ``/tmp/layout/`` and a strip per place to ``docs/img/layout/``.

Writes ``bench/results/layout.json`` and prints markdown tables. Run:
``OMP_NUM_THREADS=1 .venv/bin/python bench/layout.py``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import morecantile
import numpy as np
from PIL import Image
from scipy import ndimage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.geography import layout_classes as K  # noqa: E402
from generator.geography import make_geography  # noqa: E402
from generator.geography.grid import _transformers, tile_rect  # noqa: E402
from generator.geography.layout import MARGIN, Layout, layout_of  # noqa: E402
from generator.planner import Rect  # noqa: E402

OUT = ROOT / "bench" / "results" / "layout.json"
IMG = ROOT / "docs" / "img" / "layout"
TMP = Path("/tmp/layout")
TMS = morecantile.tms.get("WebMercatorQuad")
#: roads whose place does not depend on the land cover (see layout_classes.NETWORK)
NET = list(K.NETWORK)
ZOOMS = (12, 13, 14, 15, 16, 17)
PICTURE_ZOOMS = (12, 14, 16, 17)
PAL = np.array([k.color for k in K.LAYOUT], np.uint8)

EARTH = {
    "Po valley (farmland)": ("farmland", 10.9, 45.05),
    "Bavaria (village)": ("village", 11.35, 48.25),
    "Paris (city)": ("city", 2.35, 48.857),
    "Inn valley (mountain valley)": ("valley", 11.62, 47.32),
    "Nile delta (farmland)": ("farmland", 31.2, 30.7),
}


def near_site(lay: Layout, level: int, lon: float, lat: float) -> tuple[float, float]:
    """Return the lon/lat of the settlement site of lattice ``level`` nearest to a point."""
    t = TMS.tile(lon, lat, level)
    best = None
    for dx in (-1, 0, 1, 2, -2):
        for dy in (-1, 0, 1, 2, -2):
            s = lay.net.site(level, t.x + dx, t.y + dy)
            if s is not None:
                ll = _transformers()[0].transform(s.x, s.y)  # pyproj: Mercator → lon/lat
                d = (ll[0] - lon) ** 2 + (ll[1] - lat) ** 2
                if best is None or d < best[0]:
                    best = (d, ll)
    assert best is not None, "no site near the point"
    return float(best[1][0]), float(best[1][1])


def planet_places(lay: Layout) -> dict[str, tuple[str, float, float]]:
    """Farmland, a town, a village and a mountain valley of ``planet`` (found once by the land
    cover: the z5 tiles with the most cropland, and the roughest of those with cropland)."""
    town = near_site(lay, 11, -21.375, 26.948)
    vil = near_site(lay, 13, -19.125, 24.946)
    valley = near_site(lay, 13, -5.625, 36.466)
    return {
        "planet farmland": ("farmland", -21.375, 26.948),
        "planet town": ("city", *town),
        "planet village": ("village", *vil),
        "planet valley": ("valley", *valley),
    }


def colour(ch: np.ndarray) -> np.ndarray:
    """Return RGB of a layout tile: legend colours, boundaries darkened."""
    rgb = PAL[ch[0]].astype(np.float32)
    rgb[ch[1] > 0] *= 0.7
    return rgb.astype(np.uint8)


def speed(lay: Layout, lon: float, lat: float) -> dict[int, dict[str, float]]:
    out = {}
    for z in ZOOMS:
        t = TMS.tile(lon, lat, z)
        r = tile_rect(z, t.x, t.y)
        t0 = time.perf_counter()
        lay.channels(z, r)
        cold = time.perf_counter() - t0
        own = []
        for _ in range(3):
            lay._states = type(lay._states)(32)  # drop the raster; cells and inputs stay warm
            t0 = time.perf_counter()
            lay.channels(z, r)
            own.append(time.perf_counter() - t0)
        nb = tile_rect(z, t.x + 1, t.y)
        t0 = time.perf_counter()
        lay.channels(z, nb)
        pan = time.perf_counter() - t0
        out[z] = {
            "cold_ms": round(cold * 1e3, 1),
            "layout_ms": round(statistics.median(own) * 1e3, 1),
            "pan_ms": round(pan * 1e3, 1),
        }
    return out


def offsets(lay: Layout, z: int, k: int, rect: Rect, which: str, agree: bool = False) -> np.ndarray:
    """Distances (zoom-z px) from roads / parcel boundaries at z to the same at z+k.

    ``agree``: only the boundaries whose ground is still parcels at z+k (where the land cover
    of the two zooms agrees: the earth urban edge moves between z13 and z15+, see the docs)."""
    f = 1 << k
    fine = Rect(rect.y0 * f, rect.x0 * f, rect.h * f, rect.w * f)
    lo, hi = lay.channels(z, rect), lay.channels(z + k, fine)
    if which == "road":
        src, dst = np.isin(lo[0], NET), np.isin(hi[0], NET)
    else:
        m = MARGIN
        st = lay._state(z, rect)
        pid = np.where(np.isin(st.cls, list(K.PARCELS)), st.pid, 0)
        src = np.zeros(pid.shape, bool)
        src[:, :-1] |= (pid[:, :-1] != pid[:, 1:]) & (pid[:, :-1] > 0) & (pid[:, 1:] > 0)
        src[:-1, :] |= (pid[:-1, :] != pid[1:, :]) & (pid[:-1, :] > 0) & (pid[1:, :] > 0)
        src = src[m:-m, m:-m] & (lo[1] > 0)  # drawn as a boundary at z (not under a road)
        dst = hi[1] > 0
    src[-1, :] = src[:, -1] = False
    if not src.any():
        return np.zeros(0)
    dist = ndimage.distance_transform_edt(~dst) / f
    iy, ix = np.nonzero(src)
    if agree:
        under = hi[0][
            np.clip(iy * f + f // 2, 0, dist.shape[0] - 1),
            np.clip(ix * f + f // 2, 0, dist.shape[1] - 1),
        ]
        keep = np.isin(under, list(K.PARCELS) + [K.HEDGE])
        iy, ix = iy[keep], ix[keep]
    return dist[
        np.clip(iy * f + f // 2, 0, dist.shape[0] - 1),
        np.clip(ix * f + f // 2, 0, dist.shape[1] - 1),
    ]


def consistency(lay: Layout, lon: float, lat: float) -> dict[str, dict[str, float]]:
    out = {}
    for which in ("road", "field"):
        for z in (12, 13, 14, 15):
            t = TMS.tile(lon, lat, z)
            r = tile_rect(z, t.x, t.y)
            ch = lay.channels(z, r)
            want = (
                np.isin(ch[0], NET)
                if which == "road"
                else np.isin(ch[0], list(K.PARCELS)) & (ch[1] > 0)
            )
            iy, ix = np.nonzero(want[24:-24, 24:-24])
            if len(iy) == 0:
                continue
            i = len(iy) // 2
            rect = Rect(r.y0 + int(iy[i]), r.x0 + int(ix[i]), 48, 48)
            for k in (1, 2, 3, 4):
                d = offsets(lay, z, k, rect, which)
                if len(d):
                    row = {
                        "n": int(len(d)),
                        "p99_px": round(float(np.quantile(d, 0.99)), 3),
                        "max_px": round(float(d.max()), 3),
                    }
                    if which == "field":
                        a = offsets(lay, z, k, rect, which, agree=True)
                        row["agree_n"] = int(len(a))
                        row["agree_max_px"] = round(float(a.max()), 3) if len(a) else None
                    out[f"{which} z{z}->z{z + k}"] = row
    return out


def pictures(lay: Layout, world: str, name: str, lon: float, lat: float) -> dict[str, float]:
    TMP.mkdir(parents=True, exist_ok=True)
    IMG.mkdir(parents=True, exist_ok=True)
    tiles, share = [], {}
    for z in PICTURE_ZOOMS:
        t = TMS.tile(lon, lat, z)
        ch = lay.channels(z, tile_rect(z, t.x, t.y))
        rgb = colour(ch)
        slug = name.split(" (")[0].lower().removeprefix("planet ").replace(" ", "-")
        Image.fromarray(rgb).save(TMP / f"{world}_{slug}_z{z}.png")
        tiles.append(rgb)
        share[f"z{z}"] = {
            K.LAYOUT[i].name: round(float(c) / ch[0].size, 3)
            for i, c in zip(*np.unique(ch[0], return_counts=True), strict=True)
        }
    strip = np.full((256, 4 * 256 + 3 * 4, 3), 255, np.uint8)
    for i, rgb in enumerate(tiles):
        strip[:, i * 260 : i * 260 + 256] = rgb
    im = Image.fromarray(strip).quantize(64, method=Image.Quantize.MEDIANCUT, dither=0)
    im.save(IMG / f"{world}-{slug}.png", optimize=True)
    return share


def main() -> None:
    results: dict = {"load": os.getloadavg()[0], "places": {}}
    for world in ("earth", "planet"):
        lay = layout_of(make_geography(world, 0))
        if world == "earth":
            places = dict(EARTH)
            vil = near_site(lay, 13, 11.35, 48.25)
            places["Bavaria (village)"] = ("village", *vil)
        else:
            places = planet_places(lay)
        for name, (what, lon, lat) in places.items():
            res = {"world": world, "class": what, "lon": round(lon, 4), "lat": round(lat, 4)}
            res["speed"] = speed(lay, lon, lat)
            res["consistency"] = consistency(lay, lon, lat)
            res["classes"] = pictures(lay, world, name, lon, lat)
            results["places"][name] = res
            print(name, json.dumps(res["speed"]), flush=True)
    own = [s["layout_ms"] for p in results["places"].values() for s in p["speed"].values()]
    pan = [s["pan_ms"] for p in results["places"].values() for s in p["speed"].values()]
    cons = [c for p in results["places"].values() for c in p["consistency"].values()]
    results["summary"] = {
        "layout_ms_median": statistics.median(own),
        "layout_ms_max": max(own),
        "pan_ms_median": statistics.median(pan),
        "pan_ms_max": max(pan),
        "consistency_p99_px_max": max(c["p99_px"] for c in cons),
        "consistency_max_px": max(c["max_px"] for c in cons),
        "consistency_road_max_px": max(
            c["max_px"]
            for p in results["places"].values()
            for k, c in p["consistency"].items()
            if k.startswith("road")
        ),
        "consistency_field_agree_max_px": max(c.get("agree_max_px") or 0.0 for c in cons),
        "load_after": os.getloadavg()[0],
    }
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["summary"], indent=2))
    print("\n| place | z | layout ms | pan ms | cold ms |\n|---|---|---|---|---|")
    for name, p in results["places"].items():
        for z, s in p["speed"].items():
            print(f"| {name} | {z} | {s['layout_ms']} | {s['pan_ms']} | {s['cold_ms']} |")


if __name__ == "__main__":
    main()
