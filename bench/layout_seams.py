"""Tile-seam visibility of the painted field parcels: seam and strip ratio of 4×4 ``earth`` blocks.

    .venv/bin/python bench/layout_seams.py [--label after] [--zooms 13,14,15] [--cache DIR]
        [--places po,delaware] [--model builtin] [--png DIR]

The layout's field parcels are painted into the imagery; a parcel pattern that breaks along
the tile lattice shows exactly at the tile seams. For each place (farmland: the Po valley
10.2° E 45.05° N, Delaware 75.6° W 38.9° N; a city: Paris's 19th arrondissement, 2.38° E
48.885° N, its blocks and roofs) and zoom, a 4×4 block of ``earth`` tiles centred on
the place is rendered and measured with :func:`generator.metrics.seam_ratio` (mean |ΔL| across
tile edges over that 8–16 px inside tiles; 1: seams invisible, target 0.85–1.2),
:func:`generator.metrics.strip_ratio` (colour step of 8-px strips across edges vs at tile
centres, target ≤ 1.3) and the parent PSNR of its four parents (each against the box mean
of its 2×2 children; target ≥ 33 dB), as ``bench/raster_base.py`` ``block()`` does (the
block starts on an even tile, so its parents are whole). Tiles are cached in a
disk store (``--cache``; cold renders take minutes on a loaded CPU) — give each code version
its own folder. Writes bench/results/layout_seams_<label>.json and the mosaics (plain and
contrast-stretched) as PNGs under ``--png``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import mercantile
import numpy as np
from common import block_parent_psnrs, save
from PIL import Image

from generator import metrics

PLACES = {"po": (10.2, 45.05), "delaware": (-75.6, 38.9), "paris": (2.38, 48.885)}


def stretch(rgb: np.ndarray) -> np.ndarray:
    """Per-channel 2–98 % contrast stretch: makes faint seams visible to the eye."""
    out = np.empty_like(rgb)
    for c in range(3):
        lo, hi = np.percentile(rgb[..., c], (2, 98))
        out[..., c] = np.clip((rgb[..., c] - lo) * 255.0 / max(hi - lo, 1.0), 0, 255)
    return out


def block(w, z: int, lon: float, lat: float) -> tuple[dict, np.ndarray]:
    """Render the 4×4 block of tiles around (lon, lat) at zoom z and measure its seams."""
    t = mercantile.tile(lon, lat, z)
    x0, y0 = (t.x - 2) // 2 * 2, (t.y - 2) // 2 * 2  # even: its 4 parents are whole
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
        "parent_psnr_mean": sum(psnrs) / len(psnrs),
        "seconds": secs,
    }
    return r, m


def main() -> None:
    """Render, measure, print and save."""
    from generator.stores import open_store
    from generator.world import World, load_model
    from tests.helpers import CONFIG_DIR, write_world

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--label", default="after")
    ap.add_argument("--zooms", default="13,14,15")
    ap.add_argument("--places", default=",".join(PLACES))
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--cache", default=None, help="disk store folder (default: memory)")
    ap.add_argument("--paint", default="true", choices=["true", "false"])
    ap.add_argument("--png", type=Path, default=Path(tempfile.gettempdir()) / "fields")
    args = ap.parse_args()
    text = (CONFIG_DIR / "worlds" / "earth.toml").read_text()
    if args.paint == "false":
        text = text.replace("[model]", "[geography]\npaint = false\n\n[model]")
    cfg = Path(tempfile.mkdtemp())
    write_world(cfg, "earth", text)
    w = World.load("earth", cfg, store=open_store(args.cache), model=load_model(args.model))
    args.png.mkdir(parents=True, exist_ok=True)
    out: dict = {}
    for place in args.places.split(","):
        lon, lat = PLACES[place]
        for z in sorted((int(v) for v in args.zooms.split(",")), reverse=True):
            r, m = block(w, z, lon, lat)
            out[f"{place}/z{z}"] = r
            print(args.label, place, r, flush=True)
            Image.fromarray(m).save(args.png / f"seams_{args.label}_{place}_z{z}.png")
            Image.fromarray(stretch(m)).save(args.png / f"seams_{args.label}_{place}_z{z}_s.png")
    save(f"layout_seams_{args.label}", out)


if __name__ == "__main__":
    main()
