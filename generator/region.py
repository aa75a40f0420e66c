"""A georeferenced image of any lon/lat box at a chosen ground resolution, made from tiles.

Simulation tools want "this area at 2 m/px" as an array, not tiles. This module turns a
bounding box and a resolution into a plan (which zoom, which tiles, which output grid) and
assembles the tiles into an image in Web Mercator (EPSG:3857) with its affine transform.

The same code serves :meth:`generator.world.World.region` (tiles from the local pyramid), the
HTTP client's ``Client.region`` (tiles fetched from a remote orbis) and the GeoTIFF export, so
the three give the same pixels: only the ``fetch(z, x, y)`` callable differs.

Rules, chosen so that no pixel is invented:

- ``resolution`` is *ground* metres per pixel at the box's centre latitude (that of its Mercator
  mid-point, as for a tile's ``World.resolution``; the m/px orbis reports everywhere). In
  EPSG:3857 units the pixel is ``resolution / cos(latitude)`` wide: what the transform holds.
- The source zoom is the coarsest zoom whose pixels are at least as fine as asked (the finest
  zoom not coarser than asked): tiles are only ever *down*-sampled, by a factor in [1, 2), each
  output pixel the area-weighted mean of the source pixels under it (GDAL's ``average``). A
  resolution finer than the world's maximum zoom is an error, not an upsampling.
- The output grid starts at the box's west/north corner; its size is the box's size divided by
  the pixel size, rounded, so the east/south edges may move by up to half a pixel.
- When the asked grid coincides with the zoom's own pixel grid (a box on pixel edges at exactly
  that zoom's resolution), the image is a plain crop of the tiles, byte for byte.

Tile maths come from morecantile's WebMercatorQuad through :mod:`generator.tiles`; no torch here,
so the HTTP client can use this module without the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import morecantile
import numpy as np
from affine import Affine
from scipy import sparse

from . import tiles
from .errors import InvalidRegion

#: tolerance (in source pixels) under which a grid is taken to be aligned with the tile pixels
_SNAP = 1e-6

Fetch = Callable[[int, int, int], np.ndarray]
Mapper = Callable[[Callable[[tiles.Tile], np.ndarray], Iterable[tiles.Tile]], Iterable[np.ndarray]]


class Bbox(NamedTuple):
    """A lon/lat box (degrees, WGS84). ``west > east`` crosses the antimeridian."""

    west: float
    south: float
    east: float
    north: float


def parse_zooms(text: str, max_zoom: int | None = None) -> range:
    """Parse ``A-B`` or ``Z`` (a command's ``--zooms``) into a range of zooms.

    Raises:
        InvalidRegion: not one or two integers, A > B, or above ``max_zoom`` when given.
    """
    parts = text.strip().split("-")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) not in (1, 2):
        raise InvalidRegion(f"zooms must be A-B or Z (integers), got {text!r}")
    lo, hi = nums[0], nums[-1]
    if lo > hi:
        raise InvalidRegion(
            f"zooms {text!r} must be increasing: the first zoom must not be above the second"
        )
    if max_zoom is not None and hi > max_zoom:
        raise InvalidRegion(f"zooms {text!r} go above this world's maximum zoom {max_zoom}")
    return range(lo, hi + 1)


def parse_bbox(text: str) -> Bbox:
    """Parse ``W,S,E,N`` (degrees) into a checked :class:`Bbox`.

    Raises:
        InvalidRegion: not four numbers, or a box that :func:`check_bbox` rejects.
    """
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4:
        raise InvalidRegion(f"bbox must be four numbers W,S,E,N in degrees, got {text!r}")
    return check_bbox(Bbox(*values))


def check_bbox(bbox: Iterable[float]) -> Bbox:
    """Return the box with latitudes clamped to Web Mercator's limits (±85.05°).

    Raises:
        InvalidRegion: a value that is not finite, a longitude outside ±180, a latitude outside
            ±90, south not below north, west equal to east, or a box wholly beyond the poles'
            Mercator limit.
    """
    vals = tuple(float(v) for v in bbox)
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise InvalidRegion(f"bbox must be four finite numbers W,S,E,N, got {vals}")
    w, s, e, n = vals
    if not (-180 <= w <= 180 and -180 <= e <= 180):
        raise InvalidRegion(f"bbox longitudes must be in -180..180, got west={w}, east={e}")
    if not (-90 <= s <= 90 and -90 <= n <= 90):
        raise InvalidRegion(f"bbox latitudes must be in -90..90, got south={s}, north={n}")
    if s >= n:
        raise InvalidRegion(f"bbox south ({s}) must be below north ({n})")
    if w == e:
        raise InvalidRegion(f"bbox west and east are equal ({w}): the box is empty")
    limit = tiles.tms().bbox.top
    s, n = max(s, -limit), min(n, limit)
    if s >= n:
        raise InvalidRegion(f"bbox lies beyond Web Mercator's latitude limit ±{limit:.4f}")
    return Bbox(w, s, e, n)


def mercator_bounds(bbox: Bbox) -> tuple[float, float, float, float]:
    """Return (xmin, ymin, xmax, ymax) in EPSG:3857 metres; east is unwrapped past 180°."""
    t = tiles.tms()
    xmin, ymin = t.xy(bbox.west, bbox.south)
    xmax, ymax = t.xy(bbox.east, bbox.north)
    if bbox.west > bbox.east:  # crossing the antimeridian: continue east past the grid's edge
        xmax += t.xy_bbox.right - t.xy_bbox.left
    return xmin, ymin, xmax, ymax


def cell_size(z: int) -> float:
    """Return the EPSG:3857 size of one pixel of zoom z (256-px tiles), from morecantile."""
    return tiles.tms().matrix(z).cellSize


@dataclass(frozen=True)
class RegionPlan:
    """What :func:`assemble` will do: source zoom and tiles, output grid and transform."""

    bbox: Bbox
    #: ground m/px asked for, and the EPSG:3857 pixel size it becomes at the centre latitude
    resolution: float
    pixel_size: float
    zoom: int
    width: int
    height: int
    transform: Affine
    #: output grid in global pixel coordinates of ``zoom`` (x0, y0, x1, y1), floats
    source_box: tuple[float, float, float, float]
    #: tile columns (unwrapped: may pass 2**z across the antimeridian) and rows, inclusive
    cols: tuple[int, int]
    rows: tuple[int, int]

    @property
    def exact(self) -> bool:
        """True when the output is a plain crop of the tiles (no resampling)."""
        x0, y0, x1, y1 = self.source_box
        return (
            self.width == round(x1 - x0)
            and self.height == round(y1 - y0)
            and all(float(v).is_integer() for v in self.source_box)
        )

    @property
    def tile_count(self) -> int:
        """Return how many tiles the image is made from."""
        return (self.cols[1] - self.cols[0] + 1) * (self.rows[1] - self.rows[0] + 1)

    def tiles(self) -> Iterator[tiles.Tile]:
        """Yield the source tiles row by row (x wrapped into the grid)."""
        n = 1 << self.zoom
        for ty in range(self.rows[0], self.rows[1] + 1):
            for tx in range(self.cols[0], self.cols[1] + 1):
                yield tiles.Tile(tx % n, ty, self.zoom)


def _snap(v: float) -> float:
    r = round(v)
    return float(r) if abs(v - r) < _SNAP else v


def choose_zoom(pixel_size: float, max_zoom: int) -> int:
    """Return the coarsest zoom whose pixels (EPSG:3857 units) are no larger than ``pixel_size``.

    Raises:
        InvalidRegion: ``pixel_size`` is finer than ``max_zoom``'s pixels.
    """
    for z in range(max_zoom + 1):
        if cell_size(z) <= pixel_size * (1 + 1e-9):
            return z
    raise InvalidRegion(
        f"resolution is finer than this world's maximum zoom {max_zoom} "
        f"({cell_size(max_zoom):.4g} m/px at the equator); ask for a coarser one"
    )


def plan_region(bbox: Iterable[float], resolution: float, max_zoom: int) -> RegionPlan:
    """Plan the image of ``bbox`` (lon/lat W,S,E,N) at ``resolution`` ground m/px.

    Raises:
        InvalidRegion: a bad box, a resolution that is not positive, or one finer than the
            world's maximum zoom.
    """
    box = bbox if isinstance(bbox, Bbox) else check_bbox(bbox)
    if not (isinstance(resolution, int | float) and math.isfinite(resolution) and resolution > 0):
        raise InvalidRegion(f"resolution must be a positive number of m/px, got {resolution!r}")
    t = tiles.tms()
    xmin, ymin, xmax, ymax = mercator_bounds(box)
    lat_c = t.lnglat(0.0, (ymin + ymax) / 2).y
    pixel_size = float(resolution) / math.cos(math.radians(lat_c))
    z = choose_zoom(pixel_size, max_zoom)
    width = max(1, round((xmax - xmin) / pixel_size))
    height = max(1, round((ymax - ymin) / pixel_size))

    cell = cell_size(z)
    left, top = t.xy_bbox.left, t.xy_bbox.top
    scale = pixel_size / cell
    if abs(scale - 1) < 1e-9:  # the zoom's own resolution: keep morecantile's exact cell size
        scale, pixel_size = 1.0, cell
    sx0, sy0 = _snap((xmin - left) / cell), _snap((top - ymax) / cell)
    sx1, sy1 = _snap(sx0 + width * scale), _snap(sy0 + height * scale)
    # on the tile pixel grid, the transform's origin is that grid's corner exactly
    transform = Affine(pixel_size, 0.0, left + sx0 * cell, 0.0, -pixel_size, top - sy0 * cell)
    # the source pixels under the output: [floor(x0), ceil(x1)) × [floor(y0), ceil(y1))
    size = tiles.TILE_SIZE
    rows_max = (1 << z) - 1
    cols = (math.floor(sx0) // size, (math.ceil(sx1) - 1) // size)
    rows = (max(0, math.floor(sy0) // size), min(rows_max, (math.ceil(sy1) - 1) // size))
    return RegionPlan(
        bbox=box,
        resolution=float(resolution),
        pixel_size=pixel_size,
        zoom=z,
        width=width,
        height=height,
        transform=transform,
        source_box=(sx0, sy0, sx1, sy1),
        cols=cols,
        rows=rows,
    )


def assemble(
    plan: RegionPlan,
    fetch: Fetch,
    *,
    mapper: Mapper = map,
    progress: Callable[[int], object] | None = None,
    resampling: str = "average",
) -> np.ndarray:
    """Fetch the plan's tiles and return the mosaic cut and resampled to the plan.

    ``fetch(z, x, y)`` returns one tile: (256, 256, 3) uint8 imagery, or a (256, 256) layer of
    any dtype; every tile must have the first one's shape and dtype. ``mapper`` (e.g. a thread
    pool's ``map``) may fetch several at once and must keep the order; ``progress(n)`` is told of
    each tile done. ``resampling`` is ``average`` (exact area means; uint8 rounded, floats kept)
    or ``nearest`` (the source pixel under each output centre: for class layers).
    """
    size = tiles.TILE_SIZE
    (c0, c1), (r0, r1) = plan.cols, plan.rows
    ncols = c1 - c0 + 1
    order = list(plan.tiles())
    mosaic: np.ndarray | None = None

    def one(t: tiles.Tile) -> np.ndarray:
        return fetch(t.z, t.x, t.y)

    for i, arr in enumerate(mapper(one, order)):
        if mosaic is None:
            if arr.shape[:2] != (size, size):
                t = order[i]
                raise InvalidRegion(f"tile {t.z}/{t.x}/{t.y} is {arr.shape}, not {size}×{size}")
            shape = ((r1 - r0 + 1) * size, ncols * size, *arr.shape[2:])
            mosaic = np.empty(shape, dtype=arr.dtype)
        expected = (size, size, *mosaic.shape[2:])
        if arr.shape != expected or arr.dtype != mosaic.dtype:
            t = order[i]
            raise InvalidRegion(
                f"tile {t.z}/{t.x}/{t.y} is {arr.shape} {arr.dtype}, not {expected} {mosaic.dtype}"
            )
        r, c = divmod(i, ncols)
        mosaic[r * size : (r + 1) * size, c * size : (c + 1) * size] = arr
        if progress is not None:
            progress(1)
    assert mosaic is not None  # a plan has at least one tile

    x0, y0, x1, y1 = plan.source_box
    ox, oy = c0 * size, r0 * size
    box = (x0 - ox, y0 - oy, x1 - ox, y1 - oy)
    if plan.exact:
        bx, by = int(box[0]), int(box[1])
        return mosaic[by : by + plan.height, bx : bx + plan.width].copy()
    if resampling == "nearest":
        ys = box[1] + (np.arange(plan.height) + 0.5) * (box[3] - box[1]) / plan.height
        xs = box[0] + (np.arange(plan.width) + 0.5) * (box[2] - box[0]) / plan.width
        yi = np.clip(np.floor(ys).astype(np.int64), 0, mosaic.shape[0] - 1)
        xi = np.clip(np.floor(xs).astype(np.int64), 0, mosaic.shape[1] - 1)
        return mosaic[np.ix_(yi, xi)].copy()
    wy = area_weights(box[1], box[3], plan.height, mosaic.shape[0])
    wx = area_weights(box[0], box[2], plan.width, mosaic.shape[1])
    bands = mosaic[..., None] if mosaic.ndim == 2 else mosaic
    out = np.empty((plan.height, plan.width, bands.shape[2]), dtype=np.float32)
    for c in range(bands.shape[2]):
        band = wy @ bands[:, :, c].astype(np.float32)  # (H, W_in)
        out[:, :, c] = (wx @ band.T).T  # (H, W)
    if mosaic.ndim == 2:
        out = out[:, :, 0]
    if mosaic.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(mosaic.dtype)


def area_weights(start: float, stop: float, n_out: int, n_in: int) -> sparse.csr_array:
    """Return the (n_out, n_in) matrix averaging source pixels over each output pixel's span.

    Output pixel i covers source coordinates [start + i·s, start + (i+1)·s) with
    s = (stop − start) / n_out; each source pixel j weighs by the length of [j, j+1) inside that
    span, divided by s. This is exact area averaging (GDAL's ``average``), unlike Pillow's box
    filter, which weighs whole pixels 1 or 0 by where their centres fall.
    """
    step = (stop - start) / n_out
    lo = start + step * np.arange(n_out)
    hi = lo + step
    first = np.floor(lo).astype(np.int64)
    span = int(np.max(np.ceil(hi) - first))
    rows, cols, vals = [], [], []
    for k in range(span):
        j = first + k
        overlap = np.minimum(hi, j + 1) - np.maximum(lo, j)
        keep = overlap > 1e-12
        rows.append(np.nonzero(keep)[0])
        cols.append(j[keep])
        vals.append(overlap[keep] / step)
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    # rounding the output size may reach past a pole by half a pixel: repeat the edge row there
    return sparse.csr_array((v.astype(np.float32), (r, np.clip(c, 0, n_in - 1))), (n_out, n_in))


def region(
    fetch: Fetch,
    bbox: Iterable[float],
    resolution: float,
    max_zoom: int,
    *,
    mapper: Mapper = map,
    progress: Callable[[int], object] | None = None,
    resampling: str = "average",
) -> tuple[np.ndarray, Affine]:
    """Return (image, transform) of ``bbox`` at ``resolution`` from tiles given by ``fetch``.

    The image is (H, W, 3) uint8 for imagery, (H, W) for a layer; the transform maps
    (col, row) to EPSG:3857 metres of the pixel's top-left corner (rasterio's and GDAL's
    convention). ``resampling``: see :func:`assemble`.
    """
    plan = plan_region(bbox, resolution, max_zoom)
    image = assemble(plan, fetch, mapper=mapper, progress=progress, resampling=resampling)
    return image, plan.transform


def tile_bounds_bbox(z: int, x: int, y: int) -> Bbox:
    """Return a tile's lon/lat box (morecantile's ``bounds``): handy for exact regions."""
    b = tiles.tms().bounds(morecantile.Tile(x, y, z))
    return Bbox(b.left, b.bottom, b.right, b.top)
