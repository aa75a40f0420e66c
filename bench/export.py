"""Export throughput of cached tiles (issue 7): MBTiles/PMTiles tiles/s, GeoTIFF MB/s.

    .venv/bin/python bench/export.py [--repeat 3]

The world is ``earth`` at zooms 0–4 over the whole globe (341 tiles): those come from the Blue
Marble base without the model, so the figure is the export path itself (cache read, encode,
write), not generation. A first export warms the cache; each figure is the best of ``--repeat``
exports of the warm cache. The GeoTIFF is the whole world at zoom 4's equatorial resolution
(4096×4096, a plain crop of 256 tiles) and at 1.5× that (area-averaged); MB/s counts the
uncompressed RGB image (H·W·3 bytes). Writes bench/results/export.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import save, world

from generator import tiles
from generator.export import export
from generator.region import plan_region

_LAT = tiles.tms().bbox.top  # Web Mercator's limit: the box is exactly the zoom-4 pixel grid
WORLD_BBOX = (-180.0, -_LAT, 180.0, _LAT)
ZOOMS = range(0, 5)


def best(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    w = world("earth")
    out: dict[str, object] = {"world": "earth", "zooms": "0-4", "bbox": list(WORLD_BBOX)}
    # the machine's 2 cores are shared: record how busy they were, to read the figures by
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        export(w, d / "warm.mbtiles", WORLD_BBOX, zooms=ZOOMS, progress=False)  # warm the cache
        for kind in ("mbtiles", "pmtiles"):
            for fmt in ("png", "jpg", "webp"):
                path = d / f"world-{fmt}.{kind}"
                secs, r = best(
                    lambda path=path, fmt=fmt: export(
                        w, path, WORLD_BBOX, zooms=ZOOMS, fmt=fmt, progress=False
                    ),
                    args.repeat,
                )
                out[f"{kind}_{fmt}"] = {
                    "tiles": r.tiles,
                    "seconds": round(secs, 3),
                    "tiles_per_s": round(r.tiles / secs, 1),
                    "mib": round(r.bytes / 2**20, 2),
                    "kib_per_tile": round(r.bytes / 1024 / r.tiles, 1),
                }
                print(kind, fmt, out[f"{kind}_{fmt}"])

        cell = tiles.tms().matrix(4).cellSize
        for name, res in (("geotiff_exact", cell), ("geotiff_resampled", 1.5 * cell)):
            plan = plan_region(WORLD_BBOX, res, w.max_zoom)
            path = d / f"{name}.tif"
            secs, r = best(
                lambda path=path, res=res: export(
                    w, path, WORLD_BBOX, resolution=res, progress=False
                ),
                args.repeat,
            )
            region_secs, _ = best(lambda res=res: w.region(WORLD_BBOX, res), args.repeat)
            mb = r.width * r.height * 3 / 1e6
            out[name] = {
                "resolution_m_per_px": round(res, 2),
                "zoom": r.zoom,
                "exact_crop": plan.exact,
                "size_px": [r.width, r.height],
                "source_tiles": r.tiles,
                "seconds": round(secs, 3),
                "region_seconds": round(region_secs, 3),
                "image_mb": round(mb, 1),
                "mb_per_s": round(mb / secs, 1),
                "file_mib": round(r.bytes / 2**20, 1),
            }
            print(name, out[name])
    print(save("export", out))


if __name__ == "__main__":
    main()
