"""World authoring: the user's own land cover, water, roads and layout objects for a region.

A world TOML may list ``[[layers.override]]`` tables; each names a file (GeoJSON, or a GeoTIFF of
land-cover class ids) and the layer it replaces or steers:

- ``landcover``: polygons (or raster pixels) whose class replaces the land cover there, so the
  layout's fields, settlements and woods there follow it (its per-pixel rules read the land
  cover, and its coarse decisions read the same overridden layer at zoom 9);
- ``water``: polygons of ``lake`` (or ``ocean``, ``river``) that make water, or ``land`` that
  removes it (the land cover under former water becomes the override's ``fill`` class);
- ``roads`` / ``layout``: lines of a road kind (``motorway``, ``main_road``, ``road``,
  ``track``, ``rail``) added to the layout's network, drawn and painted like the generated
  roads, with generated buildings under them removed; ``layout`` also takes polygons of
  ``field``, ``meadow``, ``orchard`` (parcels drawn as given) and ``building`` (footprints).

``[layout.params.<land-cover class>]`` scales the layout's generators where the coarse land
cover is that class: ``field_scale`` (parcel widths and lengths), ``road_density`` (presence of
the network's links and the farm tracks) and ``building_density`` (buildings per lot).

Everything is a pure function of (files, z, pixel): vector overrides are projected once to Web
Mercator and rasterised per rect with ``rasterio.features.rasterize`` (pixel centres inside a
polygon), rasters are read through a ``rasterio.vrt.WarpedVRT`` whose grid is the rect's
(nearest resampling), so tiles meet and zooms agree. :attr:`Overrides.identity` holds the files'
SHA-256 digests and every option: it enters the world's content hash, so caches of two versions
of a file never mix. Bad input is an :class:`OverrideError`: one line naming the file, the
feature (index and ``id``) and the problem.
"""

from __future__ import annotations

import json
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio import features as rfeatures
from rasterio.enums import Resampling
from rasterio.errors import CRSError, NotGeoreferencedWarning, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform, transform_bounds

from ..planner import Rect
from ..sources.raster import file_digest, thread_dataset
from . import classes as C
from . import layout_classes as K
from .grid import HALF_WORLD, _transformers, pixel_size

#: Version of the override code (part of :attr:`Overrides.identity`).
VERSION = "1"
#: The layers an override may name.
LAYER_NAMES = ("landcover", "water", "roads", "layout")
#: No override at a pixel (rasterisation fill).
UNSET = 255

#: Land-cover class names: the legend's, with spaces or underscores (TOML bare keys).
LANDCOVER_NAMES: dict[str, int] = {}
for _k in C.LANDCOVER:
    LANDCOVER_NAMES[_k.name] = _k.id
    LANDCOVER_NAMES[_k.name.replace(" ", "_")] = _k.id
WATER_NAMES = {"land": C.LAND, "ocean": C.OCEAN, "lake": C.LAKE, "water": C.LAKE, "river": C.RIVER}
ROAD_NAMES = {
    "motorway": K.MOTORWAY,
    "main_road": K.MAIN_ROAD,
    "road": K.ROAD,
    "track": K.TRACK,
    "rail": K.RAIL,
}
PARCEL_NAMES = {"field": K.FIELD, "meadow": K.MEADOW, "orchard": K.ORCHARD}
#: a ``layout`` polygon that clears the generated objects inside it (not a layout class)
CLEAR = 254
LAYOUT_NAMES = ROAD_NAMES | PARCEL_NAMES | {"building": K.BUILDING, "clear": CLEAR}
#: Room kept free of generated buildings on each side of an override road (ground m).
CLEAR_M = 3.0
#: First zoom at which an override road of each class is drawn (the generated network's).
ROAD_MINZOOM = {K.MOTORWAY: 7, K.RAIL: 9, K.MAIN_ROAD: 9, K.ROAD: 11, K.TRACK: 14}


class OverrideError(ValueError):
    """An override that cannot be used: one line naming the file, the feature and the problem.

    ``index``: the ``[[layers.override]]`` entry it comes from (None: not known here).
    """

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


def _names_for(layer: str) -> dict[str, int]:
    return {
        "landcover": LANDCOVER_NAMES,
        "water": WATER_NAMES,
        "roads": ROAD_NAMES,
        "layout": LAYOUT_NAMES,
    }[layer]


def landcover_id(name: str) -> int:
    """Return the land-cover class id of a name (the legend's, spaces or underscores).

    Raises:
        OverrideError: not a land-cover class.
    """
    if name not in LANDCOVER_NAMES:
        known = ", ".join(k.name.replace(" ", "_") for k in C.LANDCOVER)
        raise OverrideError(f"unknown land-cover class {name!r} (classes: {known})")
    return LANDCOVER_NAMES[name]


@dataclass(frozen=True)
class ClassParams:
    """Scales of the layout's generators where the coarse land cover is one class."""

    field_scale: float = 1.0
    road_density: float = 1.0
    building_density: float = 1.0


_DEFAULT = ClassParams()


# ---- vector overrides ------------------------------------------------------------------------


@dataclass
class VectorOverride:
    """One GeoJSON override: its geometries in Web Mercator, one class value each."""

    path: Path
    layer: str
    geoms: np.ndarray  # shapely geometries, Mercator metres on [-H, H)
    values: np.ndarray  # uint8 class per geometry (land cover, water kind or layout class)
    tree: shapely.STRtree = field(init=False)

    def __post_init__(self) -> None:
        self.tree = shapely.STRtree(self.geoms)

    def query(self, bounds: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
        """Return (geometries, values) that reach a Mercator box, moved into its frame.

        The box may lie off the world in x (an unwrapped rect); geometries are on [-H, H) and
        are shifted by whole world widths to meet it, on both sides of the antimeridian.
        """
        x0, y0, x1, y1 = bounds
        w = 2 * HALF_WORLD
        shift = np.floor((x0 + HALF_WORLD) / w) * w
        geoms, vals = [], []
        for k in (0.0, w):  # the part of the box beyond +H meets geometries near -H
            off = shift + k
            if x0 - off >= HALF_WORLD or x1 - off < -HALF_WORLD:
                continue
            hit = self.tree.query(shapely.box(x0 - off, y0, x1 - off, y1))
            if not len(hit):
                continue
            hit = np.sort(hit)  # file order: later features are drawn over earlier ones
            g = self.geoms[hit]
            if off:
                g = shapely.transform(g, lambda xy, off=off: xy + np.array([off, 0.0]))
            geoms.append(g)
            vals.append(self.values[hit])
        if not geoms:
            return np.array([], object), np.array([], np.uint8)
        return np.concatenate(geoms), np.concatenate(vals)

    def burn(self, z: int, rect: Rect, keep: set[int] | None = None) -> np.ndarray | None:
        """Return uint8 (h, w) class values of the polygons at pixel centres (:data:`UNSET`
        elsewhere), or None when none reaches the rect."""
        bounds = rect_bounds(z, rect)
        geoms, vals = self.query(bounds)
        if keep is not None and len(vals):
            sel = np.isin(vals, list(keep))
            geoms, vals = geoms[sel], vals[sel]
        poly = shapely.get_dimensions(geoms) == 2 if len(geoms) else np.zeros(0, bool)
        if not poly.any():
            return None
        s = pixel_size(z)
        tr = Affine(s, 0.0, bounds[0], 0.0, -s, bounds[3])
        return rfeatures.rasterize(
            zip(geoms[poly], vals[poly].tolist(), strict=True),
            out_shape=(rect.h, rect.w),
            transform=tr,
            fill=UNSET,
            dtype="uint8",
        )


def _feature_label(i: int, feat: dict) -> str:
    fid = feat.get("id") if isinstance(feat, dict) else None
    return f"feature {i}" + (f" (id {fid!r})" if fid is not None else "")


def load_geojson(path: Path, layer: str, fixed: str | None, prop: str | None) -> VectorOverride:
    """Read and check a GeoJSON override (RFC 7946: lon/lat WGS 84) for ``layer``.

    ``fixed``: one class for every feature; else the class is the feature's ``prop`` property
    (default ``class``).

    Raises:
        OverrideError: a missing or unreadable file, or a feature with no or an unknown class,
            no geometry, an invalid geometry (shapely's reason), a geometry of the wrong
            dimension for its class, or coordinates that are not degrees.
    """
    if not path.is_file():
        raise OverrideError(f"{path}: no such file")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OverrideError(f"{path}: not valid GeoJSON ({exc})") from None
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        feats = [doc]
    elif isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        feats = doc.get("features")
        if not isinstance(feats, list):
            raise OverrideError(f"{path}: a FeatureCollection without a 'features' list")
    else:
        raise OverrideError(f"{path}: not a GeoJSON Feature or FeatureCollection")
    names = _names_for(layer)
    prop = prop or "class"
    if fixed is not None and fixed not in names:
        raise OverrideError(
            f"{path}: class {fixed!r} is not a {layer} class (classes: {', '.join(names)})"
        )
    geoms, vals = [], []
    for i, feat in enumerate(feats):
        where = f"{path}: {_feature_label(i, feat)}"
        if not isinstance(feat, dict) or feat.get("type") != "Feature":
            raise OverrideError(f"{where}: not a GeoJSON Feature")
        if fixed is not None:
            name = fixed
        else:
            props = feat.get("properties") or {}
            if prop not in props:
                raise OverrideError(
                    f'{where}: no {prop!r} property (or set class = "..." for the whole file)'
                )
            name = str(props[prop])
            if name not in names:
                raise OverrideError(
                    f"{where}: unknown {layer} class {name!r} (classes: {', '.join(names)})"
                )
        if feat.get("geometry") is None:
            raise OverrideError(f"{where}: no geometry")
        try:
            g = shapely.from_geojson(json.dumps(feat["geometry"]))
        except (shapely.errors.GEOSException, ValueError, TypeError) as exc:
            raise OverrideError(f"{where}: not a GeoJSON geometry ({exc})") from None
        if g is None or g.is_empty:
            raise OverrideError(f"{where}: empty geometry")
        want = 1 if names[name] in ROAD_NAMES.values() and layer in ("roads", "layout") else 2
        if g.geom_type == "GeometryCollection" or shapely.get_dimensions(g) != want:
            kinds = "a LineString or MultiLineString" if want == 1 else "a Polygon or MultiPolygon"
            raise OverrideError(f"{where}: class {name!r} needs {kinds}, got a {g.geom_type}")
        if not g.is_valid:
            raise OverrideError(f"{where}: invalid geometry: {shapely.is_valid_reason(g)}")
        xy = shapely.get_coordinates(g)
        if (np.abs(xy[:, 0]) > 360).any() or (np.abs(xy[:, 1]) > 90).any():
            raise OverrideError(
                f"{where}: coordinates outside longitude/latitude (RFC 7946 GeoJSON is WGS 84 "
                "degrees; reproject it)"
            )
        geoms.append(g)
        vals.append(names[name])
    if not geoms:
        raise OverrideError(f"{path}: no features")
    to_merc = _transformers()[1]

    def project(xy: np.ndarray) -> np.ndarray:
        lat = np.clip(xy[:, 1], -85.06, 85.06)
        mx, my = to_merc.transform(xy[:, 0], lat)
        mx = (np.asarray(mx) + HALF_WORLD) % (2 * HALF_WORLD) - HALF_WORLD  # lon 180..360
        return np.stack([mx, np.asarray(my)], -1)

    merc = shapely.transform(np.array(geoms, object), project)
    bad = ~shapely.is_valid(merc)
    if bad.any():  # a polygon across the antimeridian folds when wrapped: not supported
        i = int(np.nonzero(bad)[0][0])
        raise OverrideError(
            f"{path}: {_feature_label(i, feats[i])}: invalid in Web Mercator "
            f"({shapely.is_valid_reason(merc[i])}); split features at the antimeridian"
        )
    return VectorOverride(path, layer, merc, np.array(vals, np.uint8))


# ---- raster overrides ------------------------------------------------------------------------


class RasterOverride:
    """A GeoTIFF of land-cover class ids (or, for ``layer = "water"``, water kinds: 0 land,
    1 ocean, 2 lake, 3 river) in any CRS, read per rect through a WarpedVRT.

    ``values`` maps raster values to class names (e.g. a land-cover product's codes); without
    it the values are the class ids (water kinds) themselves. Nodata (or, without a nodata
    value, the area outside the raster) and values that map to nothing are no override.

    Raises:
        OverrideError: a missing or unreadable file, no CRS, a non-integer band, or values that
            are not classes (checked on a read of at most 1024 px a side).
    """

    def __init__(
        self, path: Path, values: dict[str, str] | None = None, layer: str = "landcover"
    ) -> None:
        self.path = path
        self.layer = layer
        ids = [k.id for k in (C.LANDCOVER if layer == "landcover" else C.WATER_KINDS)]
        what = "land-cover class id" if layer == "landcover" else "water kind (0-3)"
        if not path.is_file():
            raise OverrideError(f"{path}: no such file")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                ds = rasterio.open(path)
        except RasterioIOError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise OverrideError(f"{path}: not a raster GDAL can read ({first})") from None
        with ds:
            if ds.crs is None:
                raise OverrideError(f"{path}: no CRS (a land-cover raster must be georeferenced)")
            if not np.issubdtype(np.dtype(ds.dtypes[0]), np.integer):
                raise OverrideError(f"{path}: band 1 is {ds.dtypes[0]}; class ids are integers")
            try:
                self.bounds = transform_bounds(ds.crs, "EPSG:3857", *ds.bounds, densify_pts=21)
                with warnings.catch_warnings():  # rasterio 1.4's own Affine "*" (affine ≥ 2.5)
                    warnings.filterwarnings("ignore", "Use `@` matmul", PendingDeprecationWarning)
                    merc, _, _ = calculate_default_transform(
                        ds.crs, "EPSG:3857", ds.width, ds.height, *ds.bounds
                    )
                self.mercator_res = abs(merc.a)  # Mercator m/px of the data
            except (CRSError, ValueError, rasterio.errors.RasterioError):
                raise OverrideError(f"{path}: its CRS has no transformation to EPSG:3857") from None
            self.nodata = ds.nodata
            self.overviews = tuple(ds.overviews(1))
            self.lut = np.full(65536, UNSET, np.uint8)
            if values is None:
                self.lut[ids] = ids
            else:
                for raw, name in values.items():
                    try:
                        v = int(raw)
                    except ValueError:
                        raise OverrideError(
                            f"{path}: values: key {raw!r} is not an integer"
                        ) from None
                    if not 0 <= v < 65536:
                        raise OverrideError(f"{path}: values: {v} is outside 0..65535")
                    if layer == "water" and name not in WATER_NAMES:
                        raise OverrideError(
                            f"{path}: values: {raw}: unknown water class {name!r} (classes: "
                            f"{', '.join(WATER_NAMES)})"
                        )
                    try:
                        self.lut[v] = WATER_NAMES[name] if layer == "water" else landcover_id(name)
                    except OverrideError as exc:
                        raise OverrideError(f"{path}: values: {raw}: {exc}") from None
            scale = max(1.0, max(ds.height, ds.width) / 1024)
            shape = (max(1, round(ds.height / scale)), max(1, round(ds.width / scale)))
            data = ds.read(1, out_shape=shape, masked=True, resampling=Resampling.nearest)
            seen = np.unique(data.compressed())
            if ((seen < 0) | (seen > 65535)).any():
                raise OverrideError(f"{path}: values outside 0..65535")
            bad = seen[self.lut[seen.astype(np.int64)] == UNSET]
            if len(bad):
                hint = "map them with values = {...}" if values is None else "add them to values"
                raise OverrideError(
                    f"{path}: value {int(bad[0])} is not a {what} ({hint}, or make it the "
                    "nodata value)"
                )
        self._local = threading.local()

    def _dataset(self, level: int) -> rasterio.DatasetReader:
        """This thread's handle of overview ``level`` (-1: full resolution), as
        :class:`~generator.sources.raster.RasterSource` keeps them (handles are per thread)."""
        return thread_dataset(self._local, self.path, level)

    def burn(self, z: int, rect: Rect) -> np.ndarray | None:
        """Return uint8 (h, w) land-cover ids (:data:`UNSET` where none), or None when the
        raster does not reach the rect."""
        x0, y0, x1, y1 = rect_bounds(z, rect)
        w = 2 * HALF_WORLD
        shift = np.floor((x0 + HALF_WORLD) / w) * w
        bx0, by0, bx1, by1 = self.bounds
        if x1 - shift <= bx0 or x0 - shift >= bx1 or y1 <= by0 or y0 >= by1:
            return None
        s = pixel_size(z)
        opts: dict[str, Any] = {
            "crs": "EPSG:3857",
            "transform": Affine(s, 0.0, x0 - shift, 0.0, -s, y1),
            "width": rect.w,
            "height": rect.h,
            "resampling": Resampling.nearest,
        }
        if self.nodata is not None:
            opts |= {"src_nodata": self.nodata, "nodata": self.nodata}
        else:
            opts["add_alpha"] = True
        # the overview whose pixels are the finest not coarser than the rect's (a coarse tile of
        # a large raster reads a few blocks, not the file); class overviews should be 'mode' or
        # 'nearest' (gdaladdo -r mode)
        level = -1
        for i, f in enumerate(self.overviews):
            if f <= (s / self.mercator_res) * 1.01:
                level = i
        try:
            with WarpedVRT(self._dataset(level), **opts) as vrt:
                data = vrt.read(1)
                mask = vrt.read(2) if self.nodata is None else vrt.read_masks(1)
        except RasterioIOError as exc:
            raise OverrideError(f"{self.path}: read failed: {str(exc).splitlines()[0]}") from None
        out = self.lut[np.clip(data.astype(np.int64), 0, 65535)]
        out[mask < 128] = UNSET
        return out


# ---- all of a world's overrides ------------------------------------------------------------


class Overrides:
    """A world's overrides and per-class layout parameters (see the module docstring)."""

    def __init__(
        self,
        layers: list[tuple[VectorOverride | RasterOverride, dict[str, object]]],
        params: dict[int, ClassParams] | None = None,
    ) -> None:
        self.layers = layers
        self.params = dict(params or {})
        self._by = {name: [o for o, _ in layers if o.layer == name] for name in LAYER_NAMES}
        self._fill = {
            id(o): C.GRASSLAND if opt.get("fill") is None else int(opt["fill"])  # type: ignore[call-overload]
            for o, opt in layers
        }
        digests = [
            {"sha256": file_digest(o.path)} | {k: v for k, v in opt.items() if v is not None}
            for o, opt in layers
        ]
        self.identity: dict[str, object] = {"version": VERSION}
        if digests:
            self.identity["files"] = digests
        if self.params:
            self.identity["params"] = {
                str(k): [p.field_scale, p.road_density, p.building_density]
                for k, p in sorted(self.params.items())
            }

    @property
    def empty(self) -> bool:
        """Return True when nothing is overridden (the world's identity stays as it was)."""
        return not self.layers and not self.params

    def has(self, layer: str) -> bool:
        """Return True when some override names ``layer``."""
        return bool(self._by[layer])

    # ---- raster layers ------------------------------------------------------------------

    def water_kind(self, z: int, rect: Rect) -> np.ndarray | None:
        """Return the water kind the overrides set per pixel (:data:`UNSET`: none), or None."""
        out = None
        for o in self._by["water"]:
            b = o.burn(z, rect)
            if b is None:
                continue
            out = b if out is None else np.where(b != UNSET, b, out)
        return out

    def water(self, z: int, rect: Rect, kind: np.ndarray) -> np.ndarray:
        """Return the ``water`` layer with the water overrides applied."""
        ov = self.water_kind(z, rect)
        if ov is None:
            return kind
        return np.where(ov != UNSET, ov, kind).astype(np.uint8)

    def landcover(self, z: int, rect: Rect, lc: np.ndarray) -> np.ndarray:
        """Return the land cover with the water overrides (lake → water, land → the fill class
        where it was water) and then the land-cover overrides applied, in config order."""
        if not (self._by["water"] or self._by["landcover"]):
            return lc
        out = np.array(lc, np.uint8, copy=True)
        for o in self._by["water"]:
            b = o.burn(z, rect)
            if b is None:
                continue
            out[(b != UNSET) & (b != C.LAND)] = C.WATER
            out[(b == C.LAND) & (out == C.WATER)] = self._fill[id(o)]
        for o in self._by["landcover"]:
            b = o.burn(z, rect)
            if b is not None:
                out = np.where(b != UNSET, b, out)
        return out.astype(np.uint8)

    def rivers(self, z: int, rect: Rect, cov: np.ndarray) -> np.ndarray:
        """Return river coverage with none where an override makes land."""
        ov = self.water_kind(z, rect)
        if ov is None:
            return cov
        return np.where(ov == C.LAND, 0.0, cov).astype(np.float32)

    def distance(self, z: int, rect: Rect, dist: np.ndarray) -> np.ndarray:
        """Return the shore distance with its sign following the overridden water (the
        magnitude stays the source's: half a pixel where the sign had to flip)."""
        ov = self.water_kind(z, rect)
        if ov is None:
            return dist
        half = 0.5 * pixel_size(z)
        out = dist.copy()
        wet = (ov != UNSET) & (ov != C.LAND)
        out[wet & (dist <= 0)] = half
        out[(ov == C.LAND) & (dist > 0)] = -half
        return out.astype(np.float32)

    # ---- layout objects -----------------------------------------------------------------

    def objects(self, bounds: tuple[float, float, float, float]) -> tuple[list, list, list, list]:
        """Return the layout objects that reach a Mercator box (in its frame): roads as
        (class, LineString), parcels as (class, Polygon), building footprints and the cleared
        areas (polygons where nothing generated is drawn)."""
        roads, parcels, houses, clears = [], [], [], []
        for o in self._by["roads"] + self._by["layout"]:
            geoms, vals = o.query(bounds)
            for g, v in zip(geoms, vals.tolist(), strict=True):
                if v in ROAD_NAMES.values():
                    for part in getattr(g, "geoms", [g]):
                        roads.append((v, part))
                elif v == K.BUILDING:
                    houses.extend(getattr(g, "geoms", [g]))
                elif v == CLEAR:
                    clears.extend(getattr(g, "geoms", [g]))
                else:
                    parcels.extend((v, p) for p in getattr(g, "geoms", [g]))
        return roads, parcels, houses, clears

    @classmethod
    def cut_roads(cls, roads: list, clears: list) -> list:
        """Return (class, line) roads with the parts in cleared areas removed."""
        if not roads or not clears:
            return roads
        lines = cls.cut(np.array([g for _, g in roads], object), clears, keep_empty=True)
        return [(k, g) for (k, _), g in zip(roads, lines, strict=True) if not g.is_empty]

    @staticmethod
    def cut(lines: np.ndarray, clears: list, keep_empty: bool = False) -> np.ndarray:
        """Return generated lines (roads, streets) with the parts in cleared areas removed
        (whole lines are cut, so each pixel depends only on the areas that reach it)."""
        if not len(lines) or not clears:
            return lines
        area = shapely.union_all(np.array(clears, object))
        out = np.array(lines, object)
        hit = shapely.intersects(out, area)
        if hit.any():
            out[hit] = shapely.difference(out[hit], area)
        return out if keep_empty else out[~shapely.is_empty(out)]

    def param(self, lc_id: int) -> ClassParams | None:
        """Return the parameters of a land-cover class, or None (defaults)."""
        return self.params.get(int(lc_id))

    def params_at(self, coarse: Any, mx: np.ndarray, my: np.ndarray) -> list[ClassParams]:
        """Return the parameters at Mercator points, by the coarse land cover there (the
        layout's decisions read the geography at a fixed coarse zoom: zoom independent)."""
        lc = coarse.sample(np.atleast_1d(mx), np.atleast_1d(my), "lc").astype(np.int64)
        return [self.params.get(int(c), _DEFAULT) for c in lc.tolist()]

    def road_density(self, coarse: Any) -> Any:
        """Return the network's density function (x, y) → factor, or None without one."""
        if not any(p.road_density != 1.0 for p in self.params.values()):
            return None
        return lambda x, y: self.params_at(coarse, np.array([x]), np.array([y]))[0].road_density

    def field_kwargs(self, coarse: Any, bounds: tuple[float, float, float, float]) -> dict:
        """Return ``field_cell``'s ``size`` and ``track_density`` for a cell (at its centre)."""
        x0, y0, x1, y1 = bounds
        p = self.params_at(coarse, np.array([(x0 + x1) / 2]), np.array([(y0 + y1) / 2]))[0]
        return {"size": p.field_scale, "track_density": p.road_density}

    def keep_buildings(
        self, seed: int, coarse: Any, cor: np.ndarray, ix: int, iy: int, sel: np.ndarray
    ) -> np.ndarray:
        """Return ``sel`` (which of a cell's generated buildings ``cor``, (n, 4, 2) corners, a
        rect wants) less those that ``building_density`` < 1 thins out: by a hash of (seed,
        cell, building index in the cell), so each keeps its fate in every rect and zoom."""
        idx = np.nonzero(sel)[0]
        if not len(idx) or not any(p.building_density != 1.0 for p in self.params.values()):
            return sel
        from .layout_net import rnd

        lut = np.ones(256)
        for k, p in self.params.items():
            lut[k] = p.building_density
        c = cor[idx].mean(axis=1)
        dens = lut[coarse.sample(c[:, 0], c[:, 1], "lc").astype(np.int64)]
        keep = sel.copy()
        keep[idx] = rnd(seed, 977, 14, ix, iy, idx) < dens
        return keep

    def clear(self, houses: np.ndarray, roads: list, user_houses: list) -> np.ndarray:
        """Return which generated building polygons stay: none under an override road (its
        half width + :data:`CLEAR_M`) or an override building."""
        if not len(houses) or not (roads or user_houses):
            return np.ones(len(houses), bool)
        from .layout_net import WIDTH_M

        lines = np.array([g for _, g in roads], object)
        blockers = list(user_houses)
        if len(lines):
            # Mercator metres per ground metre at each line (Web Mercator's scale, cosh(y/R))
            k = np.cosh(shapely.get_y(shapely.centroid(lines)) / 6378137.0)
            width = np.array([WIDTH_M[c] for c, _ in roads])
            blockers.extend(shapely.buffer(lines, (width / 2 + CLEAR_M) * k, quad_segs=2))
        tree = shapely.STRtree(np.array(blockers, object))
        hit = tree.query(houses, predicate="intersects")
        keep = np.ones(len(houses), bool)
        keep[np.unique(hit[0])] = False
        return keep


def rect_bounds(z: int, rect: Rect) -> tuple[float, float, float, float]:
    """Return (west, south, east, north) Mercator metres of a rect (x not wrapped)."""
    s = pixel_size(z)
    x0 = -HALF_WORLD + rect.x0 * s
    y1 = HALF_WORLD - rect.y0 * s
    return x0, y1 - rect.h * s, x0 + rect.w * s, y1


def load_overrides(entries: list[dict[str, Any]], root: Path, params: dict[str, Any]) -> Overrides:
    """Build a world's :class:`Overrides` from its config.

    ``entries``: the ``[[layers.override]]`` tables as dicts (``path``, ``layer``, ``class``,
    ``property``, ``values``, ``fill``); relative paths are taken from ``root`` (the TOML's
    folder). ``params``: ``{land-cover class name: {field_scale, road_density,
    building_density}}``.

    Raises:
        OverrideError: see :func:`load_geojson` and :class:`RasterOverride`; its ``index`` is
            the entry's.
    """
    layers: list = []
    for i, e in enumerate(entries):
        p = Path(str(e["path"])).expanduser()
        if not p.is_absolute():
            p = root / p
        layer = str(e["layer"])
        try:
            if layer not in LAYER_NAMES:
                raise OverrideError(f"layer {layer!r} is not one of {', '.join(LAYER_NAMES)}")
            fill = e.get("fill")
            fill_id = landcover_id(str(fill)) if fill is not None else None
            if p.suffix.lower() in (".tif", ".tiff", ".vrt"):
                if layer not in ("landcover", "water"):
                    raise OverrideError(f"{p}: rasters override the landcover and water layers")
                o: VectorOverride | RasterOverride = RasterOverride(p, e.get("values"), layer)
            else:
                if e.get("values") is not None:
                    raise OverrideError(f"{p}: values is for GeoTIFF overrides")
                o = load_geojson(p, layer, e.get("class"), e.get("property"))
        except OverrideError as exc:
            raise OverrideError(str(exc), index=i) from None
        opts = {
            "layer": layer,
            "class": e.get("class"),
            "property": e.get("property"),
            "values": dict(sorted(e["values"].items())) if e.get("values") else None,
            "fill": fill_id,
        }
        layers.append((o, opts))
    par = {}
    for name, v in params.items():
        par[landcover_id(name)] = ClassParams(**v)
    return Overrides(layers, par)
