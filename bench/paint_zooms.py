"""One place's tiles at z12, z14, z16 and z17 side by side (the painted layout across zooms).

    OMP_NUM_THREADS=1 .venv/bin/python bench/paint_zooms.py LON LAT OUT.png [Z,Z,...]

``earth`` with its default config and the built-in model, tiles made in memory (a cold z17
cone: minutes on a small CPU); each tile is the one containing (LON, LAT), so the strip shows
the same ground at four scales.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import mercantile
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.stores import open_store  # noqa: E402
from generator.world import World, load_model  # noqa: E402
from tests.helpers import CONFIG_DIR, write_world  # noqa: E402


def main() -> None:
    """Render and save the strip."""
    lon, lat, out = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    cfg = Path(tempfile.mkdtemp())
    write_world(cfg, "earth", (CONFIG_DIR / "worlds" / "earth.toml").read_text())
    w = World.load("earth", cfg, store=open_store(None), model=load_model("builtin"))
    row = []
    zooms = [int(z) for z in sys.argv[4].split(",")] if len(sys.argv) > 4 else [12, 14, 16, 17]
    for z in zooms:
        t = mercantile.tile(lon, lat, z)
        row.append(w.tile_array(z, t.x, t.y))
    Image.fromarray(np.concatenate(row, 1)).save(out)


if __name__ == "__main__":
    main()
