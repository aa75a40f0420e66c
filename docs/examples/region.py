"""Fetch a georeferenced image of a region from orbis, locally or from a running server.

    python docs/examples/region.py                                    # local world, default box
    python docs/examples/region.py --url http://127.0.0.1:8000        # from `orbis serve`
    python docs/examples/region.py --bbox 6.8,45.8,7.0,45.95 --resolution 100 -o mont-blanc.png

Prints the array's shape, the affine transform (EPSG:3857 metres) and the lon/lat of the centre
pixel, and writes the image as PNG with a world file (``.pgw``) beside it, so GDAL and QGIS
place it (give it EPSG:3857). For a ready-made GeoTIFF use ``orbis export … -o OUT.tif``.
"""

from __future__ import annotations

import argparse

from PIL import Image
from pyproj import Transformer


def main() -> None:
    """Fetch the region, print where it is, write PNG + world file."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", default="earth")
    p.add_argument("--bbox", default="5,44,11,48", help="W,S,E,N in degrees (the Alps)")
    p.add_argument("--resolution", type=float, default=2000.0, help="ground m/px")
    p.add_argument("--url", default=None, help="a remote orbis (default: generate locally)")
    p.add_argument("-o", "--out", default="region.png")
    args = p.parse_args()
    bbox = [float(v) for v in args.bbox.split(",")]

    if args.url:
        from tileserver.client import Client

        with Client(args.url) as client:
            image, transform = client.region(args.world, bbox, args.resolution)
    else:
        from generator import World

        image, transform = World.load(args.world).region(bbox, args.resolution)

    h, w = image.shape[:2]
    print(f"image {image.shape} {image.dtype}")
    print(f"transform {tuple(transform)[:6]}")
    x, y = transform * (w / 2, h / 2)  # (col, row) -> EPSG:3857 metres
    lon, lat = Transformer.from_crs(3857, 4326, always_xy=True).transform(x, y)
    print(f"centre pixel at lon {lon:.5f}, lat {lat:.5f}")

    Image.fromarray(image).save(args.out)
    # a world file: pixel size x, rotations, pixel size y, centre of the top-left pixel
    centre = transform * (0.5, 0.5)
    world_file = [transform.a, transform.d, transform.b, transform.e, *centre]
    with open(args.out.rsplit(".", 1)[0] + ".pgw", "w") as f:
        f.write("\n".join(f"{v:.10f}" for v in world_file) + "\n")
    print(f"wrote {args.out} (+ .pgw)")


if __name__ == "__main__":
    main()
