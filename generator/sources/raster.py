"""A GeoTIFF / COG as a base: read tile by tile through a warped view into Web Mercator.

:class:`RasterSource` opens any raster GDAL reads (rasterio), in any CRS, and answers
:meth:`RasterSource.read` for tiles of the WebMercatorQuad grid at every zoom up to its native
zoom. Each read builds a ``rasterio.vrt.WarpedVRT`` whose grid *is* the tile's pixel grid (the
habit of rio-tiler's ``part``), so only the source pixels under the tile are decoded; tiles
coarser than the data read the overview whose resolution is the finest not coarser than the
tile's (opened with GDAL's ``OVERVIEW_LEVEL`` open option) and resample it with ``average``, so
a zoom-0 tile of a large COG reads a few kilobytes, not the file.

Native zoom rule: the source's resolution in EPSG:3857 metres (GDAL's suggested warp,
``calculate_default_transform``; Mercator metres at the scene's centre latitude are its ground
metres divided by cos(latitude)) is matched with morecantile's ``zoom_for_res(…, "upper")``: the
coarsest zoom whose pixels are *not coarser* than the data's, so the native zoom never throws
resolution away (it oversamples by at most 2×).

Bands are 1-based, as TiTiler's ``bidx``: one band (grey) or three (R, G, B). ``rescale`` maps
``min,max`` per band (or one pair for all) to 0..255, TiTiler's ``rescale``; a non-uint8 raster
without one is stretched from its own 2nd-98th percentiles (computed once on a small overview
read and hashed into the identity, so the bytes stay a pure function of the file). Nodata, an
internal mask or an alpha band, and everything outside the raster's extent, give alpha 0.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyproj
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import CRSError, NotGeoreferencedWarning, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform, transform_bounds

from .. import tiles
from ..errors import ImageInputError

#: bump when the way pixels are read changes (hashed into identity())
READER_VERSION = "1"

_digests: dict[tuple[str, int, int], str] = {}
_digests_lock = threading.Lock()


def file_digest(path: Path) -> str:
    """Return the SHA-256 of a file's bytes, cached by (path, size, mtime).

    The world's content hash must change when the user replaces the file, and must not cost a
    full read at every start: a file of the same name, size and mtime is taken as unchanged.
    """
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _digests_lock:
        if key in _digests:
            return _digests[key]
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with _digests_lock:
        _digests[key] = digest
    return digest


def _crs_name(crs: object) -> str:
    """A CRS's name for a one-line message (pyproj's), else its first 60 characters."""
    try:
        return str(pyproj.CRS.from_user_input(crs).name)
    except pyproj.exceptions.CRSError:
        return str(crs)[:60]


def parse_rescale(value: object, nbands: int) -> tuple[tuple[float, float], ...] | None:
    """Parse TiTiler's ``rescale``: "min,max" (all bands) or one "min,max" per band.

    Also accepts [min, max] or a list of such pairs (TOML arrays). Returns one pair per band.

    Raises:
        ValueError: not of that form, or max <= min, or a count that is neither 1 nor nbands.
    """
    if value is None:
        return None

    def pair(v: object) -> tuple[float, float]:
        if isinstance(v, str):
            parts = v.split(",")
        elif isinstance(v, (list, tuple)):
            parts = list(v)
        else:
            raise ValueError(f"expected 'min,max', got {v!r}")
        if len(parts) != 2:
            raise ValueError(f"expected 'min,max', got {v!r}")
        try:
            lo, hi = float(parts[0]), float(parts[1])
        except (TypeError, ValueError):
            raise ValueError(f"expected two numbers 'min,max', got {v!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
            raise ValueError(f"needs finite min < max, got {v!r}")
        return lo, hi

    is_single = isinstance(value, str) or (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) for v in value)
    )
    if is_single:
        return (pair(value),) * nbands
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected 'min,max' or a list of them, got {value!r}")
    pairs = tuple(pair(v) for v in value)
    if len(pairs) == 1:
        return pairs * nbands
    if len(pairs) != nbands:
        raise ValueError(f"{len(pairs)} ranges for {nbands} bands (give 1 or {nbands})")
    return pairs


def thread_dataset(local: threading.local, path: Path, level: int) -> rasterio.DatasetReader:
    """Return this thread's handle (kept in ``local``) of overview ``level`` of ``path`` (-1:
    full resolution).

    rasterio datasets are not safe to share between threads; the pyramid reads tiles on
    several, so every thread keeps its own handles (cheap: GDAL caches blocks globally).
    """
    handles = getattr(local, "handles", None)
    if handles is None:
        handles = local.handles = {}
    if level not in handles:
        opts = {} if level < 0 else {"OVERVIEW_LEVEL": level}
        handles[level] = rasterio.open(path, **opts)
    return handles[level]


class RasterSource:
    """A georeferenced raster read lazily, tile by tile, into WebMercatorQuad tiles.

    Args:
        path: a GeoTIFF, COG or anything GDAL opens (a VRT of single-band files included).
        bands: 1-based band indices, one (grey) or three (R, G, B); default 1, 2, 3 (or 1).
        rescale: "min,max" for every band, or one per band (see :func:`parse_rescale`).
        tile_size: pixels per tile side.

    Raises:
        ImageInputError: a missing file, an unreadable or non-georeferenced raster, an unknown
            CRS, a band that does not exist, a bad ``rescale``; one line naming the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        bands: Sequence[int] | None = None,
        rescale: object = None,
        tile_size: int = 256,
    ) -> None:
        self.path = Path(path).expanduser()
        self.tile_size = tile_size
        p = self.path
        if not p.exists():
            raise ImageInputError(f"{p}: no such file")
        if not p.is_file():
            raise ImageInputError(f"{p}: not a file")
        try:
            with warnings.catch_warnings():  # no georeference is our error, said below
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                ds = rasterio.open(p)
        except RasterioIOError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ImageInputError(f"{p}: not a raster GDAL can read ({first})") from None
        with ds:
            self._describe(ds, bands, rescale)
        self._local = threading.local()

    # ---- opening ------------------------------------------------------------------------
    def _describe(self, ds: rasterio.DatasetReader, bands: Sequence[int] | None, rescale) -> None:
        p = self.path
        if ds.crs is None or (ds.transform.is_identity and not ds.gcps[0]):
            raise ImageInputError(f"{p}: not georeferenced (no CRS or geotransform)")
        if ds.gcps[0] and ds.transform.is_identity:
            raise ImageInputError(f"{p}: georeferenced by GCPs only; warp it to a grid first")
        try:
            with warnings.catch_warnings():  # rasterio 1.4's own Affine "*" (affine ≥ 2.5)
                warnings.filterwarnings("ignore", "Use `@` matmul", PendingDeprecationWarning)
                merc, w, h = calculate_default_transform(
                    ds.crs, "EPSG:3857", ds.width, ds.height, *ds.bounds
                )
            self._bounds = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
        except (CRSError, ValueError, rasterio.errors.RasterioError):
            raise ImageInputError(
                f"{p}: unknown CRS {_crs_name(ds.crs)!r} (no transformation to EPSG:3857)"
            ) from None
        if not all(math.isfinite(v) for v in self._bounds):
            raise ImageInputError(f"{p}: its CRS {_crs_name(ds.crs)!r} does not map to lon/lat")
        count = ds.count
        if bands is None:
            colour = [i + 1 for i, ci in enumerate(ds.colorinterp) if ci != ColorInterp.alpha]
            bands = colour[:3] if len(colour) >= 3 else colour[:1] or [1]
        bands = tuple(int(b) for b in bands)
        if len(bands) not in (1, 3):
            raise ImageInputError(f"{p}: bands: give 1 (grey) or 3 (R, G, B), got {list(bands)}")
        for b in bands:
            if not 1 <= b <= count:
                raise ImageInputError(
                    f"{p}: band {b} does not exist (the file has {count} band"
                    f"{'s' if count != 1 else ''}, numbered from 1)"
                )
        self.bands = bands
        self.dtype = ds.dtypes[bands[0] - 1]
        self.nodata = ds.nodata
        flags = ds.mask_flag_enums[bands[0] - 1]
        # a mask GDAL knows (nodata, alpha band, internal mask): read_masks of the warped view;
        # none: an alpha band added by the warper marks the raster's extent
        self._has_mask = MaskFlags.all_valid not in flags
        self.mercator_res = abs(merc.a)  # Mercator m/px of the data at its centre
        self.native_zoom = int(tiles.tms().zoom_for_res(self.mercator_res, 30, "upper"))
        self.overviews = tuple(ds.overviews(bands[0]))
        self.crs = ds.crs.to_string()
        self.shape = (ds.height, ds.width)
        try:
            self.rescale = parse_rescale(rescale, len(bands))
        except ValueError as exc:
            raise ImageInputError(f"{p}: rescale: {exc}") from None
        self.auto_rescale = False
        if self.rescale is None and self.dtype != "uint8":
            self.rescale = self._percentiles(ds)
            self.auto_rescale = True

    def _percentiles(self, ds: rasterio.DatasetReader) -> tuple[tuple[float, float], ...]:
        """2nd and 98th percentiles of each band over valid pixels of a ≤ 1024-px read."""
        scale = max(1.0, max(ds.height, ds.width) / 1024)
        shape = (max(1, round(ds.height / scale)), max(1, round(ds.width / scale)))
        data = ds.read(self.bands, out_shape=(len(self.bands), *shape), masked=True)
        out = []
        for band in data:
            v = band.compressed().astype(np.float64)
            if v.size == 0:
                raise ImageInputError(f"{self.path}: no valid pixels (all nodata)")
            lo, hi = np.percentile(v, [2, 98])
            out.append((float(lo), float(hi) if hi > lo else float(lo) + 1.0))
        return tuple(out)

    def _dataset(self, level: int) -> rasterio.DatasetReader:
        """Return this thread's handle of overview ``level`` (-1: full resolution)."""
        return thread_dataset(self._local, self.path, level)

    # ---- the protocol -------------------------------------------------------------------
    def identity(self) -> dict[str, object]:
        """Return the file's digest, bands, stretch and reader version (what decides pixels)."""
        return {
            "kind": "raster",
            "sha256": file_digest(self.path),
            "bands": list(self.bands),
            "rescale": [list(r) for r in self.rescale] if self.rescale else None,
            "reader": READER_VERSION,
        }

    def bounds(self) -> tuple[float, float, float, float]:
        """Return the footprint (west, south, east, north) in degrees."""
        return tuple(self._bounds)  # type: ignore[return-value]

    def read(self, z: int, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
        """Return tile (z, x, y): uint8 (S, S, 3) RGB and float32 (S, S) alpha."""
        return self.read_margin(z, x, y, 0)

    def read_margin(self, z: int, x: int, y: int, margin: int) -> tuple[np.ndarray, np.ndarray]:
        """Return tile (z, x, y) and ``margin`` pixels around it, (S+2m)² (an additive method
        of this source: the composition's feather needs the mask beyond the tile's edge).

        Raises:
            ImageInputError: the file became unreadable.
        """
        s = self.tile_size
        n = s + 2 * margin
        b = tiles.tms().xy_bounds(x, y, z)
        res = (b.right - b.left) / s
        left, top = b.left - margin * res, b.top + margin * res
        transform = Affine(res, 0.0, left, 0.0, -res, top)
        # the overview whose pixels are the finest not coarser than the tile's
        ratio = res / self.mercator_res
        level, factor = -1, 1.0
        for i, f in enumerate(self.overviews):
            if f <= ratio * 1.01:
                level, factor = i, float(f)
        resampling = Resampling.bilinear if ratio / factor < 1.5 else Resampling.average
        try:
            src = self._dataset(level)
            opts: dict[str, object] = {
                "crs": "EPSG:3857",
                "transform": transform,
                "width": n,
                "height": n,
                "resampling": resampling,
            }
            if self.nodata is not None:
                opts |= {"src_nodata": self.nodata, "nodata": self.nodata}
            elif not self._has_mask:
                opts["add_alpha"] = True
            with WarpedVRT(src, **opts) as vrt:
                data = vrt.read(self.bands)
                if opts.get("add_alpha"):
                    mask = vrt.read(vrt.count)
                else:
                    mask = vrt.read_masks(self.bands[0])
        except RasterioIOError as exc:
            raise ImageInputError(f"{self.path}: read failed: {str(exc).splitlines()[0]}") from None
        return self._to_rgb(data), (mask >= 128).astype(np.float32)

    def _to_rgb(self, data: np.ndarray) -> np.ndarray:
        if self.rescale is None:
            out = np.clip(data, 0, 255).astype(np.uint8)
        else:
            out = np.empty(data.shape, np.uint8)
            for i, (lo, hi) in enumerate(self.rescale):
                v = (data[i].astype(np.float32) - lo) * (255.0 / (hi - lo))
                out[i] = np.clip(np.rint(v), 0, 255).astype(np.uint8)
        if out.shape[0] == 1:
            out = np.repeat(out, 3, axis=0)
        return np.ascontiguousarray(out.transpose(1, 2, 0))

    def describe(self) -> str:
        """Return one line for humans: size, CRS, resolution, native zoom, footprint."""
        w, s, e, n = self.bounds()
        return (
            f"{self.path.name}: {self.shape[1]}×{self.shape[0]} px, {self.crs}, "
            f"bands {list(self.bands)}, {self.mercator_res:.2f} Mercator m/px → native zoom "
            f"{self.native_zoom}; footprint W {w:.5f} S {s:.5f} E {e:.5f} N {n:.5f}"
        )
