"""``orbis upscale`` on a georeferenced GeoTIFF: 2^k × the resolution, still georeferenced.

A GeoTIFF knows where it is and how fine it is, so nothing has to be asked of the user: the
latitude and ground resolution the model is conditioned on are the raster's own at its centre
(the centre pixel and its neighbours reprojected to lon/lat with ``rasterio.warp.transform``,
their geodesic distances from ``pyproj.Geod``), and the zoom whose noise field the steps draw
from is the Web Mercator zoom of that resolution. The output keeps the CRS and the bounds; its
transform is the input's scaled by 2^-k (pixel ``(c, r)`` of the output is pixel
``(c / 2^k, r / 2^k)`` of the input), so it lies exactly over the input in any GIS.

Bands and stretch follow the raster base (:class:`~generator.sources.raster.RasterSource`, the
same rules and errors): ``--bands`` picks one (grey) or three 1-based bands, ``--rescale`` maps
``min,max`` (one for all bands, or one per band) to 0..255, and a non-uint8 raster without it is
stretched from its 2nd-98th percentiles. Nodata, an alpha band or an internal mask become the
output's internal mask (nearest-neighbour upsampled); the model still sees the pixels under it.
The whole raster is processed in memory (the output of k levels holds 4^k × the input's pixels).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import Geod
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.warp import transform as warp_transform

from . import tiles
from .errors import ImageInputError
from .models.sr_model import SuperResolutionModel
from .upscale import upscale_array

#: the first bytes of a TIFF / BigTIFF, little- or big-endian
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


@dataclass(frozen=True)
class GeoImage:
    """A georeferenced raster read as RGB, with what ``upscale`` needs to know of it."""

    path: Path
    rgb: np.ndarray  #: uint8 (H, W, 3)
    mask: np.ndarray | None  #: uint8 (H, W) 0/255, None when every pixel is valid
    crs: rasterio.crs.CRS
    transform: Affine
    lon: float  #: centre, degrees
    lat: float
    mpp: float  #: ground metres per pixel at the centre
    bands: tuple[int, ...]
    rescale: tuple[tuple[float, float], ...] | None

    @property
    def zoom(self) -> float:
        """Return the (fractional) Web Mercator zoom of the raster's resolution at its centre."""
        cos = max(math.cos(math.radians(self.lat)), 1e-6)
        return math.log2(tiles.Z0_RESOLUTION * cos / self.mpp)


def is_tiff(path: Path) -> bool:
    """Return True when ``path`` starts like a TIFF (whatever its name)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) in _TIFF_MAGIC
    except OSError:
        return False


def is_georeferenced(path: Path) -> bool:
    """Return True for a TIFF rasterio opens with a CRS and a geotransform."""
    if not is_tiff(path):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                return ds.crs is not None and not ds.transform.is_identity
    except RasterioIOError:
        return False


def _centre(ds: rasterio.DatasetReader) -> tuple[float, float, float]:
    """Return (lon, lat, ground m/px) at the raster's centre pixel."""
    c, r = ds.width / 2, ds.height / 2
    pts = [ds.transform @ p for p in ((c, r), (c + 1, r), (c, r + 1))]
    lon, lat = warp_transform(ds.crs, "EPSG:4326", [p[0] for p in pts], [p[1] for p in pts])
    geod = Geod(ellps="WGS84")
    _, _, dx = geod.inv(lon[0], lat[0], lon[1], lat[1])
    _, _, dy = geod.inv(lon[0], lat[0], lon[2], lat[2])
    if not (math.isfinite(dx) and math.isfinite(dy)) or dx <= 0 or dy <= 0:
        raise ImageInputError(f"{ds.name}: its CRS {ds.crs!s:.60} does not map to lon/lat")
    return float(lon[0]), float(lat[0]), math.sqrt(dx * dy)


def _stretch(data: np.ndarray, rescale: tuple[tuple[float, float], ...] | None) -> np.ndarray:
    """Bands (n, H, W) → uint8 (H, W, 3), as the raster base's tiles (``RasterSource``)."""
    if rescale is None:
        out = np.clip(data, 0, 255).astype(np.uint8)
    else:
        out = np.empty(data.shape, np.uint8)
        for i, (lo, hi) in enumerate(rescale):
            v = (data[i].astype(np.float32) - lo) * (255.0 / (hi - lo))
            out[i] = np.clip(np.rint(v), 0, 255).astype(np.uint8)
    if out.shape[0] == 1:
        out = np.repeat(out, 3, axis=0)
    return np.ascontiguousarray(out.transpose(1, 2, 0))


def read_geotiff(
    path: Path, bands: tuple[int, ...] | None = None, rescale: object = None
) -> GeoImage:
    """Read a georeferenced raster whole as RGB with its georeference and centre resolution.

    Raises:
        ImageInputError: as the raster base (unreadable, unknown CRS, a band that does not
            exist, a bad ``rescale``), one line naming the file.
    """
    from .sources.raster import RasterSource  # its rules for bands, rescale and georeference

    with warnings.catch_warnings():  # rasterio's warp helpers still use affine's `*` (3.x)
        warnings.filterwarnings("ignore", "Use `@` matmul", PendingDeprecationWarning)
        described = RasterSource(path, bands=bands, rescale=rescale)
    try:
        with rasterio.open(path) as ds:
            lon, lat, mpp = _centre(ds)
            data = ds.read(list(described.bands))
            masks = ds.read_masks(list(described.bands)).min(axis=0)
            crs, transform = ds.crs, ds.transform
    except RasterioIOError as exc:
        raise ImageInputError(f"{path}: read failed: {str(exc).splitlines()[0]}") from None
    return GeoImage(
        path=Path(path),
        rgb=_stretch(data, described.rescale),
        mask=None if masks.min() == 255 else masks,
        crs=crs,
        transform=transform,
        lon=lon,
        lat=lat,
        mpp=mpp,
        bands=tuple(described.bands),
        rescale=described.rescale,
    )


def upscale_levels(
    image: np.ndarray,
    zoom: int,
    levels: int,
    model: SuperResolutionModel,
    *,
    lat: float = 0.0,
    seed: int = 0,
    mpp: float | None = None,
) -> np.ndarray:
    """Return ``image`` ×2^levels: ``levels`` cascade steps, the last one making zoom ``zoom``.

    ``mpp`` is the input's ground resolution; step i is told ``mpp / 2^i`` (by default, the
    Web Mercator resolution of its zoom at ``lat``).
    """
    out = image
    for i in range(1, levels + 1):
        z = zoom - levels + i
        step_mpp = None if mpp is None else mpp / 2**i
        out = upscale_array(out, z, model, lat=lat, seed=seed, mpp=step_mpp)
    return out


def output_zoom(geo: GeoImage, levels: int) -> int:
    """Return the zoom of the last step for a raster: its own zoom (rounded) + ``levels``.

    Raises:
        ImageInputError: the raster is coarser than zoom 0 or the output finer than zoom 30.
    """
    z = round(geo.zoom) + levels
    if round(geo.zoom) < 0 or z > 30:
        raise ImageInputError(
            f"{geo.path}: {geo.mpp:.3g} m/px is Web Mercator zoom {geo.zoom:.1f}; "
            f"{levels} level(s) finer must stay within zooms 1..30"
        )
    return z


def write_geotiff(path: Path, rgb: np.ndarray, geo: GeoImage, levels: int) -> Path:
    """Write ``rgb`` (the input ×2^levels) over the input's bounds, same CRS; return the path.

    Tiled, deflate-compressed RGB; the input's mask (if any) upsampled as an internal mask.
    Written to a temporary name and renamed, so a failed run leaves no half file.
    """
    f = 2**levels
    h, w = rgb.shape[:2]
    profile = {
        "driver": "GTiff",
        "width": w,
        "height": h,
        "count": 3,
        "dtype": "uint8",
        "crs": geo.crs,
        "transform": geo.transform @ Affine.scale(1 / f),
        "photometric": "RGB",
        "compress": "deflate",
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "interleave": "pixel",
    }
    if w < 256 or h < 256:
        profile.update(tiled=False)
        del profile["blockxsize"], profile["blockysize"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(rgb.transpose(2, 0, 1))
                if geo.mask is not None:
                    dst.write_mask(np.repeat(np.repeat(geo.mask, f, axis=0), f, axis=1))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
