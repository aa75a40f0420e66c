"""GeoTIFF in EPSG:3857 through rasterio (GDAL): tiled, deflate-compressed, with overviews.

The image and its transform come from :func:`generator.region.assemble`, the code behind
``World.region``, so a GeoTIFF holds exactly the pixels a Python caller would get.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from affine import Affine

#: GeoTIFF internal tiles, and the size where overviews stop: GDAL's usual 256
BLOCK = 256


def overview_factors(width: int, height: int, levels: int = 3) -> list[int]:
    """Return up to ``levels`` power-of-two factors, halving until the image fits one block
    (GDAL's rule for COGs): a third more pixels, and a large GeoTIFF opens fast in QGIS."""
    out, f = [], 2
    while len(out) < levels and max(width, height) // (f // 2) > BLOCK:
        out.append(f)
        f *= 2
    return out


def write_geotiff(
    path: Path, image: np.ndarray, transform: Affine, tags: Mapping[str, str] | None = None
) -> None:
    """Write an (H, W, 3) uint8 image as an RGB GeoTIFF in EPSG:3857 at ``path``."""
    import rasterio
    from rasterio.enums import Resampling

    height, width = image.shape[:2]
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:3857",
        "transform": transform,
        "photometric": "RGB",
        "interleave": "pixel",
        "compress": "deflate",
        "predictor": 2,
        "BIGTIFF": "IF_SAFER",
    }
    if width >= BLOCK and height >= BLOCK:
        profile.update(tiled=True, blockxsize=BLOCK, blockysize=BLOCK)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ascontiguousarray(image.transpose(2, 0, 1)))
        dst.update_tags(AREA_OR_POINT="Area", **dict(tags or {}))
        factors = overview_factors(width, height)
        if factors:
            dst.build_overviews(factors, Resampling.average)
            dst.update_tags(ns="rio_overview", resampling="average")


def write_layer_geotiff(
    path: Path,
    array: np.ndarray,
    transform: Affine,
    tags: Mapping[str, str] | None = None,
    *,
    colormap: Mapping[int, tuple[int, int, int]] | None = None,
    description: str = "",
    units: str = "",
) -> None:
    """Write a one-band geography layer as a GeoTIFF in EPSG:3857 at ``path``.

    float32 (elevation, metres; no nodata: every pixel has a value) with the floating-point
    predictor and overviews by ``average``; uint8 classes with ``colormap`` (id → RGB: QGIS and
    GDAL show the legend colours) and overviews by ``nearest`` (a class is never averaged into
    another). Tiled and deflate-compressed as :func:`write_geotiff`.
    """
    import rasterio
    from rasterio.enums import Resampling

    height, width = array.shape
    classes = colormap is not None
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "uint8" if classes else "float32",
        "crs": "EPSG:3857",
        "transform": transform,
        "nodata": None,
        "compress": "deflate",
        "predictor": 2 if classes else 3,
        "BIGTIFF": "IF_SAFER",
    }
    if classes:
        profile["photometric"] = "palette"
    if width >= BLOCK and height >= BLOCK:
        profile.update(tiled=True, blockxsize=BLOCK, blockysize=BLOCK)
    data = np.ascontiguousarray(array, np.uint8 if classes else np.float32)
    with rasterio.open(path, "w", **profile) as dst:
        if colormap is not None:
            dst.write_colormap(1, {int(k): (*v, 255) for k, v in colormap.items()})
        dst.write(data, 1)
        if description:
            dst.set_band_description(1, description)
        if units:
            dst.update_tags(1, units=units)
        dst.update_tags(AREA_OR_POINT="Area", **dict(tags or {}))
        factors = overview_factors(width, height)
        if factors:
            how = Resampling.nearest if classes else Resampling.average
            dst.build_overviews(factors, how)
            dst.update_tags(ns="rio_overview", resampling=how.name)
