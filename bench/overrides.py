"""Benchmark of world authoring: a layout tile with and without the example valley's overrides.

The world ``valley`` of ``docs/examples/valley`` (the ``earth`` geography with four override
files and per-class parameters), the same without its ``[layout.params]`` (*files only*) and
``earth``, on the tiles of its valley floor at zooms 13–17, where every override reaches the
tile:

- *layout*: the layout's own work for a tile (vector objects of warm cells gathered, override
  objects queried, rasterised, classes composed), the tile's land cover and water computed
  (median of 3, the raster state dropped between runs: ``bench/layout.py``'s method);
- *overrides*: the override layers' own work on the tile + the layout's margin — the polygons
  of the land-cover and water overrides rasterised over the source's arrays (``Overrides.
  landcover`` and ``water``; median of 5).

Writes ``bench/results/overrides.json`` and prints a markdown table. Run:
``OMP_NUM_THREADS=1 .venv/bin/python bench/overrides.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import morecantile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.geography.grid import tile_rect  # noqa: E402
from generator.geography.layout import MARGIN, layout_of  # noqa: E402
from generator.planner import Rect  # noqa: E402
from generator.world import World  # noqa: E402

TMS = morecantile.tms.get("WebMercatorQuad")
OUT = ROOT / "bench" / "results" / "overrides.json"
#: on the valley floor: the landcover polygon, the motorway, the rail line and the lake
PLACE = (7.44, 46.258)
ZOOMS = (13, 14, 15, 16, 17)


def layout_ms(world: World, z: int) -> float:
    """Median of 5 runs of the layout's own work on the tile at PLACE (inputs warm)."""
    lay = layout_of(world.geography)
    t = TMS.tile(*PLACE, z)
    r = tile_rect(z, t.x, t.y)
    lay.channels(z, r)  # cold: cells, coarse blocks, land cover and water
    own = []
    for _ in range(5):
        lay._states = type(lay._states)(32)  # drop the raster; cells and inputs stay warm
        t0 = time.perf_counter()
        lay.channels(z, r)
        own.append(time.perf_counter() - t0)
    return statistics.median(own) * 1e3


def override_ms(world: World, z: int) -> float:
    """Median of 5 runs of the land-cover and water overrides on the tile + margin."""
    geo = world.geography
    ov = geo.overrides
    t = TMS.tile(*PLACE, z)
    r = tile_rect(z, t.x, t.y)
    big = Rect(r.y0 - MARGIN, r.x0 - MARGIN, r.h + 2 * MARGIN, r.w + 2 * MARGIN)
    lc = geo._compute_source("landcover", z, big)
    kind = geo._compute_source("water", z, big)
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        ov.landcover(z, big, lc)
        ov.water(z, big, kind)
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs) * 1e3


def main() -> None:
    """Measure both worlds at every zoom; write the JSON and print the table."""
    earth = World.load("earth")
    src = ROOT / "docs" / "examples" / "valley"
    valley = World.load("valley", src)
    with tempfile.TemporaryDirectory() as tmp:  # the same files, no [layout.params]
        shutil.copytree(src / "worlds", Path(tmp) / "worlds")
        toml = Path(tmp) / "worlds" / "valley.toml"
        text = toml.read_text()
        toml.write_text(text[: text.index("[layout.params")])
        files = World.load("valley", tmp)
        rows = {}
        for z in ZOOMS:
            rows[z] = {
                "earth_layout_ms": round(layout_ms(earth, z), 1),
                "files_layout_ms": round(layout_ms(files, z), 1),
                "valley_layout_ms": round(layout_ms(valley, z), 1),
                "valley_overrides_ms": round(override_ms(valley, z), 1),
            }
            print(z, rows[z], flush=True)
    doc = {
        "place": PLACE,
        "load_average": os.getloadavg()[0],
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "zooms": rows,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print("\n| z | earth | files only | valley | override layers |\n|---|---|---|---|---|")
    for z, v in rows.items():
        print(
            f"| {z} | {v['earth_layout_ms']} | {v['files_layout_ms']} | "
            f"{v['valley_layout_ms']} | {v['valley_overrides_ms']} |"
        )


if __name__ == "__main__":
    main()
