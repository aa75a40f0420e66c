"""The relief shading (generator/shade.py): does the imagery show the relief, seams, parents, cost.

    .venv/bin/python bench/shade.py [--blocks alps12,alps15,sahara12,po12,sea10] [--model builtin]

For 4×4 blocks of `earth` tiles over mountains, desert, a plain, the open sea, Lake Como's shore
and a fjord, with the
default world (shaded) and ``[geography] shade = false``:

* **relief shown**: the correlation, over dry land, between the imagery's log luminance (high
  passed: less its 9-px box mean, so the colour of the ground does not count) and the log of the
  light factor the elevation layer gives at that level (the same high pass). 0 when the imagery
  ignores the relief; a real photo of the same ground would show a clearly positive figure.
* **seams**: seam ratio and strip ratio of the block (ARCHITECTURE §6; 0.85–1.2 and ≤ 1.3);
* **parents**: parent PSNR of the four parents whose children are in the block (≥ 33 dB);
* **water**: IoU of the pixels' water (``generator.follow.is_water``) against the layer's, and
  the spread (std) of the open water's log luminance (0 = one flat colour);
* **cost**: the block's cold seconds (its cone from the base, both configs in one process,
  alternating) and the shader's own seconds per tile (its gain, warm layers).

Writes bench/results/shade.json and the block mosaics, contrast-stretched (to judge seams), to
docs/img/shade/.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import IMG, block_parent_psnrs, save
from PIL import Image
from scipy.ndimage import uniform_filter

from generator import metrics
from generator.geography.grid import ground_mpp
from generator.planner import Rect
from generator.shade import ReliefShader, factor
from generator.world import World, load_model

#: name: (zoom, lon, lat)
BLOCKS = {
    "alps9": (9, 7.95, 46.45),
    "alps12": (12, 7.95, 46.45),
    "alps15": (15, 7.98, 46.55),
    "sahara12": (12, 5.5, 25.0),
    "po12": (12, 10.2, 45.05),
    "sea10": (10, -20.0, 45.0),
    "como14": (14, 9.26, 45.99),
    "fjord13": (13, 6.75, 61.17),
    "erg12": (12, 0.78, 30.82),
    "erg15": (15, 0.78, 30.82),
    "jafurah12": (12, 50.0, 24.84),
}
OUT = IMG / "shade"


def load(shade: bool, model) -> World:
    from tests.helpers import CONFIG_DIR, write_world

    cfg = Path(tempfile.mkdtemp())
    text = (CONFIG_DIR / "worlds" / "earth.toml").read_text()
    if not shade:
        text = text.replace("[model]", "[geography]\nshade = false\n\n[model]")
    write_world(cfg, "earth", text)
    return World.load("earth", cfg, model=model)


def _hp(a: np.ndarray) -> np.ndarray:
    return a - uniform_filter(a, 9, mode="nearest")


def relief_shown(w: World, z: int, x0: int, y0: int, m: np.ndarray) -> float:
    """Correlation of the block's high-passed log luminance with its high-passed log factor."""
    geo = w.geography
    rect = Rect(y0 * 256 - 1, x0 * 256 - 1, 1026, 1026)
    elev = geo.window("elevation", z, rect)
    dry = geo.window("water", z, rect) == 0
    f = factor(elev, dry, ground_mpp(z, rect).astype(np.float32))[1:-1, 1:-1]
    lum = np.log(metrics.luminance(m).astype(np.float64) + 4.0)
    a, b = _hp(lum), _hp(np.log(f.astype(np.float64)))
    ok = dry[1:-1, 1:-1]
    if ok.mean() < 0.2 or b[ok].std() < 1e-4:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def water_figures(w: World, z: int, x0: int, y0: int, m: np.ndarray) -> dict:
    """IoU of the pixels' water (the colour rule) against the layer's water, and the spread
    of the open water's log luminance (0 for one flat colour)."""
    from generator.follow import is_water
    from generator.geography import classes

    kind = w.geography.window("water", z, Rect(y0 * 256, x0 * 256, 1024, 1024))
    layer = kind != classes.LAND
    if layer.mean() < 0.02:
        return {}
    pix = is_water(m.transpose(2, 0, 1).astype(np.float32))
    iou = (pix & layer).sum() / max((pix | layer).sum(), 1)
    open_water = (kind == classes.OCEAN) | (kind == classes.LAKE)
    lum = np.log(metrics.luminance(m).astype(np.float64) + 4.0)
    return {
        "water_iou": round(float(iou), 4),
        "water_spread": round(float(lum[open_water].std()), 4),
    }


def block(w: World, z: int, x0: int, y0: int) -> tuple[dict, np.ndarray]:
    t0, c0 = time.perf_counter(), time.process_time()
    grid = [[w.tile_array(z, x0 + i, y0 + j) for i in range(4)] for j in range(4)]
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    m = metrics.mosaic(grid)
    psnrs = block_parent_psnrs(w, z, x0, y0, m)
    out = {
        "seam_ratio": round(metrics.seam_ratio(m), 3),
        "strip_ratio": round(metrics.strip_ratio(m), 3),
        "parent_psnr_min": round(min(psnrs), 2),
        "relief_shown": round(relief_shown(w, z, x0, y0, m), 3),
        **water_figures(w, z, x0, y0, m),
        "cold_wall_s": round(secs, 1),
        "cold_cpu_s": round(cpu, 1),
    }
    return out, m


def shader_cost(w: World, z: int, x0: int, y0: int) -> dict:
    """Seconds per tile of the shader's gain over the block: first on tile rects whose
    elevation is not cached (the water layer is: what a new tile pays), then warm (best of 3)."""
    sh = ReliefShader(w.geography)
    times = []
    for _ in range(4):
        t0 = time.perf_counter()
        for j in range(4):
            for i in range(4):
                sh.gain(z, Rect((y0 + j) * 256, (x0 + i) * 256, 256, 256))
        times.append((time.perf_counter() - t0) / 16)
    return {"first_s": round(times[0], 4), "warm_s": round(min(times[1:]), 4)}


def stretch(m: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(m, (1, 99))
    return np.clip((m.astype(np.float32) - lo) * 255.0 / max(hi - lo, 1.0), 0, 255).astype(np.uint8)


def run(names: list[str], model_name: str) -> dict:
    import mercantile

    model = load_model(model_name)
    OUT.mkdir(parents=True, exist_ok=True)
    worlds = {"shaded": load(True, model), "plain": load(False, model)}
    out: dict = {}
    for name in names:
        z, lon, lat = BLOCKS[name]
        t = mercantile.tile(lon, lat, z)
        x0, y0 = t.x // 2 * 2, t.y // 2 * 2
        row: dict = {"block": f"z{z} x{x0}-{x0 + 3} y{y0}-{y0 + 3}"}
        for label in ("plain", "shaded"):  # plain first: the shared caches warm for both
            r, m = block(worlds[label], z, x0, y0)
            row[label] = r
            Image.fromarray(stretch(m)).save(OUT / f"{name}-{label}-stretched.jpg", quality=88)
        row["shader_per_tile"] = shader_cost(worlds["shaded"], z, x0, y0)
        out[name] = row
        print(name, row, flush=True)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blocks", default=",".join(BLOCKS))
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--out", default="shade", help="result name under bench/results/")
    args = ap.parse_args()
    save(args.out, run(args.blocks.split(","), args.model))
