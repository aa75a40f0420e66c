"""The ``layout`` layer: roads, rail, settlements, street blocks, buildings and field parcels.

Land seen from 500 m down to 1 m per pixel is made of straight and curved boundaries; this layer
draws them, deterministically, as vector objects defined once in Web Mercator metres and
rasterised at each tile's resolution (``rasterio.features.rasterize``), so a road or a field
boundary lies at the same ground position at every zoom. Objects come from lattices aligned with
the tile pyramid (:mod:`.layout_net`: coarse geography, settlement sites, links;
:mod:`.layout_parcels`: fields, blocks, buildings), decided by hashes of (seed, cell) and the
geography at a fixed coarse zoom, so any tile is computed alone from the few cells that reach it.

Per pixel the class (:mod:`.layout_classes`) starts from the tile's land cover (water, woodland,
cropland → field, grassland → meadow, urban → settlement) and objects are drawn over it in class
order where they are resolved:

==================  ======================================================================
from zoom           objects
==================  ======================================================================
7                   motorways (links of lattice-9 regional centres)
9                   main roads (lattice-11 towns), rail (lattice 9)
11                  roads between lattice-13 villages, village outlines
12                  field parcels (on cropland and grassland pixels of the land cover)
14                  street blocks in settlements (streets between them), farm tracks
15                  hedgerows on the parcel boundaries of hedged regions
≤ 2 m/px            building footprints in the blocks
==================  ======================================================================

Roads keep their ground width but are at least one pixel wide; roads on water pixels are
bridges. Parcels, blocks and buildings are clipped per pixel by the land cover of the tile (a
field only on cropland or grassland, a block only on urban land or in a village), so forest
edges and town edges follow the land cover.

:meth:`Layout.channels` returns four uint8 channels: class id, edge (255 on a boundary between
two objects or classes), road mask and building mask — what a model's conditioning step wants;
:meth:`Layout.features` the same objects as an RFC 7946 GeoJSON FeatureCollection in lon/lat.
"""

from __future__ import annotations

import json
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from affine import Affine
from rasterio import features as rfeatures
from scipy import ndimage

from ..planner import Rect
from . import classes as C
from . import layout_classes as K
from .grid import HALF_WORLD, _transformers, grid_width, ground_mpp, pixel_size, tile_rect
from .layout_net import (
    LINK_LEVEL,
    LINK_MINZOOM,
    REGIONAL_Z,
    WIDTH_M,
    Coarse,
    Network,
    cell_size,
)
from .layout_parcels import CELL_L, field_cell, village
from .layout_towns import building_reach, buildings_near, town_cell
from .lru import LRU
from .overrides import ROAD_MINZOOM

#: Version of the layout code (part of the geography identity): bump when layout values change.
VERSION = "3"  # 2: irregular Voronoi street blocks, radial arterials (layout_towns)
# 3: field systems: parcels on Voronoi field systems' lattices, continuous across cells
#: Pixels computed around a rect so edges and hedges at its border see their neighbours.
MARGIN = 4
#: First zoom of each family (see the module docstring); buildings from :data:`BUILDING_MPP`.
FIELDS_Z, VILLAGES_Z, BLOCKS_Z, TRACKS_Z, HEDGES_Z = 12, 11, 14, 14, 15
#: First zoom of the towns' arterial streets (every 4th/5th street of the grid, 14 m wide).
ARTERIALS_Z, ARTERIAL_M = 12, 14.0
BUILDING_MPP = 2.0
#: Coarsest zoom whose rects :meth:`Layout.houses` gives footprints for (the imagery's roof
#: shares; the layer draws buildings from BUILDING_MPP).
HOUSES_Z = 13
#: Narrowest line drawn (px): √2, so a thin road's pixels stay 8-connected at every angle.
MIN_LINE_PX = 1.42
#: A parcel style is drawn from the zoom where its narrowest parcels are this many pixels wide.
MIN_PX = 1.5
#: Ground width of a street (m); streets are the settlement ground between blocks.
CHANNELS = ("class", "edge", "road", "building")

_BASE = np.full(256, K.NONE, np.uint8)
_BASE[C.WATER] = K.WATER
for _c in (C.BROADLEAF, C.NEEDLELEAF, C.TROPICAL):
    _BASE[_c] = K.WOODLAND
_BASE[C.CROPLAND] = K.FIELD
_BASE[C.GRASSLAND] = K.MEADOW
_BASE[C.URBAN] = K.SETTLEMENT
_BASE[C.WETLAND] = K.NONE
_ROADS = np.zeros(256, bool)
_ROADS[list(K.ROADS)] = True
_ROAD_NAME = {
    K.MOTORWAY: "motorway",
    K.MAIN_ROAD: "main_road",
    K.ROAD: "road",
    K.TRACK: "track",
    K.RAIL: "rail",
}
_USE = {K.FIELD: "arable", K.MEADOW: "meadow", K.ORCHARD: "orchard", K.PIVOT: "pivot"}
_USE[K.TERRACE] = "terrace"
_USE[K.HEDGE] = "arable"


@dataclass
class _Objects:
    """The vector objects that reach one rect (Mercator metres, unwrapped like the rect)."""

    roads: list  # (class, LineString)
    arterials: np.ndarray  # town arterial streets: drawn as roads on settlement ground only
    parcels: np.ndarray
    use: np.ndarray
    hedged: np.ndarray
    villages: np.ndarray
    blocks: np.ndarray
    houses: np.ndarray
    parcel_maps: list  # rasterio mappings of ``parcels`` (cached per cell)
    # the world's overrides ([[layers.override]]): the parcels from index ``user_parcels`` on
    # and the houses from ``user_houses`` on are the user's (drawn as given, on any dry land)
    user_parcels: int = 1 << 62
    user_houses: int = 1 << 62
    user_roads: set = field(default_factory=set)  # ids of the roads that are overrides
    user_clear: list = field(default_factory=list)  # areas without generated objects


@dataclass
class _State:
    """A rasterised rect (with :data:`MARGIN`): classes, object ids and the objects."""

    cls: np.ndarray
    edge: np.ndarray
    pid: np.ndarray
    bid: np.ndarray
    hid: np.ndarray
    objs: _Objects
    bounds: tuple[float, float, float, float]


class Layout:
    """The layout of one world's geography (see the module docstring)."""

    def __init__(self, geo: Any) -> None:
        self.geo = geo
        self.seed = int(getattr(geo.source, "seed", 0))
        self.coarse = Coarse(geo)
        urban = None
        if geo.kind == "earth":
            from .landcover_earth import _get

            urban = _get("ne_50m_urban_areas")
        self.net = Network(self.seed, self.coarse, Coarse(geo, REGIONAL_Z), urban)
        #: the world's overrides and per-class parameters (None: none)
        self.ov = getattr(geo, "overrides", None)
        if self.ov is not None:
            self.net.density = self.ov.road_density(self.coarse)
        self._fields = LRU(4096)
        self._maps = LRU(1024)  # the parcels' GeoJSON-like mappings for rasterio, per cell
        self._towns = LRU(1024)
        self._villages = LRU(8192)
        self._states = LRU(32)
        self._houses = LRU(32)

    # ---- public ------------------------------------------------------------------------

    def channels(self, z: int, rect: Rect) -> np.ndarray:
        """Return uint8 (4, h, w): class id, edge, road mask, building mask (see CHANNELS)."""
        st = self._state(z, rect)
        m = MARGIN
        cls = st.cls[m:-m, m:-m]
        edge = st.edge[m:-m, m:-m]
        road = np.where(_ROADS[cls], 255, 0).astype(np.uint8)
        house = np.where(cls == K.BUILDING, 255, 0).astype(np.uint8)
        return np.stack([cls, edge, road, house])

    def classes(self, z: int, rect: Rect) -> np.ndarray:
        """Return the uint8 (h, w) class ids of a rect (the ``layout`` layer)."""
        st = self._state(z, rect)
        return st.cls[MARGIN:-MARGIN, MARGIN:-MARGIN].copy()

    def features(self, z: int, x: int, y: int, size: int = 256) -> dict[str, object]:
        """Return the tile's objects as an RFC 7946 FeatureCollection (lon/lat, WGS 84).

        Lines and polygons are clipped to the tile. A parcel, block or building is listed when
        at least half of its pixels in the tile are drawn as it (so a field under a forest of
        the land cover is not); each feature has ``kind`` (:data:`.layout_classes.KINDS`).
        """
        rect = tile_rect(z, x, y, size)
        st = self._state(z, rect)
        x0, y0, x1, y1 = _rect_bounds(z, rect)
        m = MARGIN
        inner = (slice(m, -m), slice(m, -m))
        cls = st.cls[inner]
        out: list[tuple[str, Any, dict]] = []
        for klass, line in st.objs.roads:
            props = {"kind": _ROAD_NAME[klass], "width_m": WIDTH_M[klass]}
            if id(line) in st.objs.user_roads:
                props["source"] = "override"
            out.append(("road", line, props))

        def kept(ids: np.ndarray, n: int, good: np.ndarray) -> np.ndarray:
            ids = ids[inner].ravel()
            tot = np.bincount(ids, minlength=n + 1)
            hit = np.bincount(ids[good.ravel()], minlength=n + 1)
            return np.nonzero((tot[1:] > 0) & (hit[1:] * 2 >= tot[1:]))[0]

        o = st.objs
        parcel_px = np.isin(cls, list(K.PARCELS | {K.HEDGE}))
        for i in kept(st.pid, len(o.parcels), parcel_px):
            use = int(o.use[i])
            sel = (st.pid[inner] == i + 1) & parcel_px
            if use == K.FIELD:  # arable or meadow: the land cover under the parcel decides
                vals = np.bincount(cls[sel], minlength=len(K.LAYOUT))
                use = int(np.argmax(vals[[K.FIELD, K.MEADOW]])) + K.FIELD
            props = {"kind": "field", "use": _USE[use]}
            if i >= o.user_parcels:
                props["source"] = "override"
            out.append(("field", o.parcels[i], props))
        settle = np.isin(cls, (K.SETTLEMENT, K.BUILDING))
        for i in kept(st.bid, len(o.blocks), settle):
            out.append(("block", o.blocks[i], {"kind": "block"}))
        for i in kept(st.hid, len(o.houses), cls == K.BUILDING):
            props = {"kind": "building"} | ({"source": "override"} if i >= o.user_houses else {})
            out.append(("building", o.houses[i], props))
        for v in o.villages:
            out.append(("settlement", v, {"kind": "settlement", "type": "village"}))
        if not out:
            return {"type": "FeatureCollection", "features": []}
        geoms = shapely.clip_by_rect(np.array([g for _, g, _ in out], object), x0, y0, x1, y1)
        to_ll, _ = _transformers()
        wrap = np.floor((x0 + HALF_WORLD) / (2 * HALF_WORLD)) * 2 * HALF_WORLD

        def project(xy: np.ndarray) -> np.ndarray:
            lon, lat = to_ll.transform(xy[:, 0] - wrap, xy[:, 1])
            return np.round(np.stack([lon, lat], -1), 7)

        geoms = shapely.transform(geoms, project)
        bad = ~shapely.is_valid(geoms)  # rounding to 1e-7° can fold a sliver
        geoms[bad] = shapely.make_valid(geoms[bad])
        size = np.where(shapely.get_dimensions(geoms) == 1, shapely.length(geoms), 0.0)
        size = np.where(shapely.get_dimensions(geoms) == 2, shapely.area(geoms), size)
        feats = []
        for (_, _, props), g, sz in zip(out, geoms, size, strict=True):
            if g is None or sz <= 0 or g.geom_type == "GeometryCollection":
                continue
            feats.append(
                {
                    "type": "Feature",
                    "geometry": json.loads(shapely.to_geojson(g)),
                    "properties": props,
                }
            )
        return {"type": "FeatureCollection", "features": feats}

    # ---- objects -----------------------------------------------------------------------

    def _field(self, ix: int, iy: int):
        def make():
            kw = {}
            if self.ov is not None and self.ov.params:
                kw = self.ov.field_kwargs(self.coarse, _cell_bounds(CELL_L, ix, iy))
            return field_cell(self.seed, self.coarse, ix, iy, **kw)

        return self._fields.get((ix, iy), make)

    def _village(self, ix: int, iy: int):
        return self._villages.get((ix, iy), lambda: village(self.seed, self.net, ix, iy))

    def _town(self, ix: int, iy: int):
        def make():
            near = [
                self._village(vx, vy)
                for vx in range((ix >> 1) - 1, (ix >> 1) + 2)
                for vy in range((iy >> 1) - 1, (iy >> 1) + 2)
            ]
            return town_cell(self.seed, self.coarse, self.net, near, ix, iy)

        return self._towns.get((ix, iy), make)

    def _objects(self, z: int, bounds: tuple[float, float, float, float], mpp: float) -> _Objects:
        x0, y0, x1, y1 = bounds
        bbox = shapely.box(*bounds)

        def cells(level: int, lo: int = 0, hi: int = 0):
            return _cells(bounds, level, lo, hi)

        roads: list = []
        for net, level in LINK_LEVEL.items():
            if z < LINK_MINZOOM[net]:
                continue
            for ix, iy in cells(level, -2, 1):
                for klass, pts in self.net.links(level, net, ix, iy):
                    if (
                        pts[:, 0].max() < x0
                        or pts[:, 0].min() > x1
                        or pts[:, 1].max() < y0
                        or pts[:, 1].min() > y1
                    ):
                        continue
                    roads.append((klass, shapely.LineString(pts)))
        parcels, use, hedged, maps = [], [], [], []
        if z >= FIELDS_Z:
            # a cell's parcels reach over its border (it owns those centred in it): ±1 cell
            for ix, iy in cells(CELL_L, -1, 1):
                fc = self._field(ix, iy)
                if fc is None:
                    continue
                # a parcel is drawn once its style's narrowest parcels are MIN_PX wide
                bx = fc.boxes  # (bounding boxes first: most of the ±1 cells' parcels miss)
                hit = (fc.minw * fc.size >= MIN_PX * mpp) & (bx[:, 0] <= x1) & (bx[:, 2] >= x0)
                hit &= (bx[:, 1] <= y1) & (bx[:, 3] >= y0)
                hit[hit] = shapely.intersects(fc.polys[hit], bbox)
                parcels.append(fc.polys[hit])
                cell_maps = self._maps.get((ix, iy), lambda fc=fc: polygon_mappings(fc.polys))
                maps.extend(cell_maps[i] for i in np.nonzero(hit)[0].tolist())
                use.append(fc.use[hit])
                hedged.append(fc.hedges[hit])
                if z >= TRACKS_Z and len(fc.tracks):
                    for t in fc.tracks[shapely.intersects(fc.tracks, bbox)]:
                        roads.append((K.TRACK, t))
        villages = []
        if z >= VILLAGES_Z:
            for ix, iy in cells(13, -1, 1):
                v = self._village(ix, iy)[0]
                if v is not None and shapely.intersects(v, bbox):
                    villages.append(v)
        blocks, houses, arterials = [], [], []
        if z >= ARTERIALS_Z:
            # a cell's blocks reach over its border (they are whole Voronoi cells): ±1 cell
            for ix, iy in cells(CELL_L, -1, 1) if z >= BLOCKS_Z else cells(CELL_L):
                tc = self._town(ix, iy)
                if tc is None:
                    continue
                if len(tc.arterials):
                    arterials.append(tc.arterials[shapely.intersects(tc.arterials, bbox)])
                if z < BLOCKS_Z:
                    continue
                blocks.append(tc.blocks[shapely.intersects(tc.blocks, bbox)])
                if mpp <= BUILDING_MPP:
                    houses.extend(self._cell_houses(tc, ix, iy, bounds))
        user_parcels, user_houses, user_roads, user_clear = 1 << 62, 1 << 62, set(), []
        if self.ov is not None:  # the user's objects go last: drawn over the generated ones
            o_roads, o_parcels, o_houses, user_clear = self.ov.objects(bounds)
            if user_clear:  # generated roads and streets stop at the user's cleared areas
                roads = self.ov.cut_roads(roads, user_clear)
                arterials = [self.ov.cut(a, user_clear) for a in arterials]
            o_roads = [r for r in o_roads if z >= ROAD_MINZOOM[r[0]]]
            roads.extend(o_roads)
            user_roads = {id(g) for _, g in o_roads}
            o_houses = o_houses if mpp <= BUILDING_MPP else []
            if houses:
                h = np.concatenate(houses)
                houses = [h[self.ov.clear(h, o_roads, o_houses + user_clear)]]
            if o_parcels and z >= FIELDS_Z:
                pp = np.array([g for _, g in o_parcels], object)
                user_parcels = sum(len(p) for p in parcels)
                parcels.append(pp)
                use.append(np.array([k for k, _ in o_parcels], np.uint8))
                hedged.append(np.zeros(len(pp), bool))
                maps.extend(polygon_mappings(pp))
            if o_houses:
                user_houses = sum(len(h) for h in houses)
                houses.append(np.array(o_houses, object))
        roads.sort(key=lambda r: r[0])  # drawing order: tracks < roads < main < motorway < rail

        def cat(parts: list, dtype=object) -> np.ndarray:
            return np.concatenate(parts) if parts else np.array([], dtype)

        return _Objects(
            roads,
            cat(arterials),
            cat(parcels),
            cat(use, np.uint8),
            cat(hedged, bool),
            np.array(villages, object),
            cat(blocks),
            cat(houses),
            maps,
            user_parcels,
            user_houses,
            user_roads,
            user_clear,
        )

    def _cell_houses(self, tc: Any, ix: int, iy: int, bounds: tuple) -> list:
        """Return the generated buildings of town cell (ix, iy) whose box meets ``bounds`` (a
        list of one shapely array, or none), less those the world's building density thins."""
        cor, sel = buildings_near(self.seed, tc, ix, iy, bounds, ARTERIAL_M)
        if self.ov is not None and self.ov.params:
            sel = self.ov.keep_buildings(self.seed, self.coarse, cor, ix, iy, sel)
        return [shapely.polygons(cor[sel])] if sel.any() else []

    def houses(self, z: int, rect: Rect) -> np.ndarray:
        """Return the building footprints (shapely polygons, Mercator metres unwrapped like the
        rect) that reach ``rect`` plus :data:`MARGIN`, at any zoom from :data:`HOUSES_Z`.

        The layer draws buildings from :data:`BUILDING_MPP` on, where a house is a few pixels;
        coarser, the same footprints are what the imagery's roofs show as sub-pixel shares
        (:mod:`generator.paint`), so a city's blocks carry their roofs' texture before the
        roofs are resolved, and each pixel's mean is what its children will show. Generated
        and user buildings as :meth:`state` keeps them at ≤ BUILDING_MPP (the user's clears
        and roads remove generated ones; the user's own are added)."""
        w = grid_width(z)
        rect = Rect(rect.y0, rect.x0 % w, rect.h, rect.w)
        return self._houses.get((z, tuple(rect)), lambda: self._make_houses(z, rect))

    def _make_houses(self, z: int, rect: Rect) -> np.ndarray:
        if z < HOUSES_Z:
            return np.array([], object)
        m = MARGIN
        bounds = _rect_bounds(z, Rect(rect.y0 - m, rect.x0 - m, rect.h + 2 * m, rect.w + 2 * m))
        x0, y0, x1, y1 = bounds
        houses: list = []
        for ix, iy in _cells(bounds, CELL_L, -1, 1):  # as the layer's houses: ±1 cell
            tc = self._town(ix, iy)
            if tc is None:
                continue
            reach = building_reach(tc)  # most neighbour cells' houses stay near them
            if reach is None or not (
                reach[2] >= x0 and reach[0] <= x1 and reach[3] >= y0 and reach[1] <= y1
            ):
                continue
            houses.extend(self._cell_houses(tc, ix, iy, bounds))
        if self.ov is not None:
            o_roads, _, o_houses, user_clear = self.ov.objects(bounds)
            o_roads = [r for r in o_roads if z >= ROAD_MINZOOM[r[0]]]
            if houses:
                h = np.concatenate(houses)
                houses = [h[self.ov.clear(h, o_roads, o_houses + user_clear)]]
            if o_houses:
                houses.append(np.array(o_houses, object))
        return np.concatenate(houses) if houses else np.array([], object)

    # ---- raster ------------------------------------------------------------------------

    def state(self, z: int, rect: Rect) -> _State:
        """Return the rasterised layout of ``rect`` plus :data:`MARGIN` on every side (classes,
        edges, parcel / block / house ids and the objects they index), cached: the imagery's
        painter reads the object ids to give each parcel and roof its own colour."""
        return self._state(z, rect)

    def _state(self, z: int, rect: Rect) -> _State:
        w = grid_width(z)
        rect = Rect(rect.y0, rect.x0 % w, rect.h, rect.w)
        return self._states.get((z, tuple(rect)), lambda: self._make_state(z, rect))

    def _make_state(self, z: int, rect: Rect) -> _State:
        m = MARGIN
        big = Rect(rect.y0 - m, rect.x0 - m, rect.h + 2 * m, rect.w + 2 * m)
        shape = (big.h, big.w)
        s = pixel_size(z)
        bounds = _rect_bounds(z, big)
        x0, _, _, y1 = bounds
        tr = Affine(s, 0.0, x0, 0.0, -s, y1)
        lc = np.asarray(self.geo.window("landcover", z, big))
        kind = np.asarray(self.geo.window("water", z, big))
        wet = kind != C.LAND
        mpp = float(ground_mpp(z, big).mean())
        objs = self._objects(z, bounds, mpp)

        cls = _BASE[lc]
        cls[wet] = K.WATER
        ids = np.zeros(shape, np.int32)

        def burn(geoms: np.ndarray, maps: list | None = None) -> np.ndarray:
            if len(geoms) == 0:
                return np.zeros(shape, np.int32)
            return rfeatures.rasterize(
                zip(maps or polygon_mappings(geoms), range(1, len(geoms) + 1), strict=True),
                out_shape=shape,
                transform=tr,
                fill=0,
                dtype="int32",
            )

        farm = (lc == C.CROPLAND) | (lc == C.GRASSLAND)
        pid = burn(objs.parcels, objs.parcel_maps)
        cleared = burn(np.array(objs.user_clear, object)) > 0 if objs.user_clear else None
        if cleared is not None:  # the user's cleared areas: no generated parcels, blocks
            pid[cleared & (pid <= objs.user_parcels)] = 0
        on = farm & (pid > 0) & ~wet
        if on.any():  # terraces are cropland: a steep meadow is one open slope, unparcelled
            on[on] = ~((objs.use[pid[on] - 1] == K.TERRACE) & (lc[on] == C.GRASSLAND))
        if on.any():
            use = objs.use[pid[on] - 1]
            base = np.where(lc[on] == C.CROPLAND, K.FIELD, K.MEADOW)
            cls[on] = np.where(use == K.FIELD, base, use)
            ids[on] = pid[on]
        if z >= HEDGES_Z and objs.hedged.any():
            hedged = np.zeros(shape, bool)
            hedged[on] = objs.hedged[pid[on] - 1]
            e = _edges(np.where(on, pid, 0)) & hedged
            it = int(max(0, round(2.0 / mpp) - 1))
            if it:
                e = ndimage.binary_dilation(e, iterations=it) & on
            cls[e] = K.HEDGE
        settle = lc == C.URBAN
        if len(objs.villages):
            settle |= burn(objs.villages) > 0
        settle &= ~wet
        bid = burn(objs.blocks)
        if cleared is not None:  # … nor villages: urban land stays settlement ground
            settle &= ~cleared | (lc == C.URBAN)
            bid[cleared] = 0
        if z >= BLOCKS_Z:
            cls[settle] = K.STREET
            inb = settle & (bid > 0)
            cls[inb] = K.SETTLEMENT
            ids[inb] = bid[inb] + 1_000_000
        else:
            cls[settle] = K.SETTLEMENT
        if cleared is not None:
            cls[settle & cleared] = K.SETTLEMENT
        hid = burn(objs.houses)
        inh = settle & (hid > 0)
        cls[inh] = K.BUILDING
        ids[inh] = hid[inh] + 2_000_000
        if objs.user_parcels < len(objs.parcels):  # the user's parcels: as given, on dry land
            on_u = (pid > objs.user_parcels) & ~wet
            cls[on_u] = objs.use[pid[on_u] - 1]
            ids[on_u] = pid[on_u]
        if objs.user_houses < len(objs.houses):  # the user's buildings, in or out of towns
            on_u = (hid > objs.user_houses) & ~wet
            cls[on_u] = K.BUILDING
            ids[on_u] = hid[on_u] + 2_000_000
        if len(objs.arterials):
            polys = shapely.buffer(
                objs.arterials, max(ARTERIAL_M / mpp, MIN_LINE_PX) * s / 2, quad_segs=2
            )
            art = burn(polys) > 0
            art &= settle | (kind == C.RIVER)  # town streets bridge rivers, not lakes or sea
            cls[art] = np.where(wet[art], K.BRIDGE, K.AVENUE)
            ids[art] = 0
        if objs.roads:
            lines = np.array([g for _, g in objs.roads], object)
            width = np.array([WIDTH_M[k] for k, _ in objs.roads])
            radius = np.maximum(width / mpp, MIN_LINE_PX) * s / 2
            polys = shapely.buffer(lines, radius, quad_segs=2)
            rc = rfeatures.rasterize(
                zip(polygon_mappings(polys), [int(k) for k, _ in objs.roads], strict=True),
                out_shape=shape,
                transform=tr,
                fill=0,
                dtype="uint8",
            )
            road = rc > 0
            road &= ~((rc == K.TRACK) & settle)  # farm tracks stop at a town's edge
            cls[road] = rc[road]
            ids[road] = 0
            track_on_water = road & wet & (rc == K.TRACK)
            cls[road & wet] = K.BRIDGE
            cls[track_on_water] = K.WATER
        street_wet = (cls == K.STREET) & wet
        cls[street_wet] = K.WATER
        edge = np.where(_edges(ids) | _edges(cls.astype(np.int32)), 255, 0).astype(np.uint8)
        cls.setflags(write=False)
        return _State(cls, edge, pid, bid, hid, objs, bounds)


def polygon_mappings(geoms: np.ndarray) -> list:
    """Return GeoJSON-like mappings of polygons for rasterio, built from shapely's coordinate
    arrays in one call (``__geo_interface__`` per geometry costs ≈ 60 µs, most of a tile).
    Polygons with holes and multi-part geometries take the generic path."""
    out: list = [None] * len(geoms)
    simple = (shapely.get_type_id(geoms) == 3) & (shapely.get_num_interior_rings(geoms) == 0)
    idx = np.nonzero(simple)[0]
    if len(idx):
        rings = shapely.get_exterior_ring(geoms[idx])
        xy = shapely.get_coordinates(rings).tolist()
        ends = np.cumsum(shapely.get_num_coordinates(rings)).tolist()
        start = 0
        for i, end in zip(idx.tolist(), ends, strict=True):
            out[i] = {"type": "Polygon", "coordinates": [xy[start:end]]}
            start = end
    for i in np.nonzero(~simple)[0]:
        out[i] = geoms[i].__geo_interface__
    return out


def _edges(ids: np.ndarray) -> np.ndarray:
    """Return True where a pixel differs from its right or lower neighbour."""
    e = np.zeros(ids.shape, bool)
    e[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    e[:-1, :] |= ids[:-1, :] != ids[1:, :]
    return e


def _cell_bounds(level: int, ix: int, iy: int) -> tuple[float, float, float, float]:
    """Return (west, south, east, north) Mercator metres of a lattice cell."""
    cs = cell_size(level)
    x0 = -HALF_WORLD + ix * cs
    y1 = HALF_WORLD - iy * cs
    return x0, y1 - cs, x0 + cs, y1


def _cells(
    bounds: tuple[float, float, float, float], level: int, lo: int = 0, hi: int = 0
) -> list[tuple[int, int]]:
    """Return the (ix, iy) cells of a lattice level under a Mercator box, grown by ``lo`` /
    ``hi`` cells (x not wrapped, rows clipped to the world)."""
    x0, y0, x1, y1 = bounds
    cs = cell_size(level)
    n = 1 << level
    ix0 = int(np.floor((x0 + HALF_WORLD) / cs)) + lo
    ix1 = int(np.floor((x1 + HALF_WORLD) / cs)) + hi
    iy0 = max(int(np.floor((HALF_WORLD - y1) / cs)) + lo, 0)
    iy1 = min(int(np.floor((HALF_WORLD - y0) / cs)) + hi, n - 1)
    return [(ix, iy) for iy in range(iy0, iy1 + 1) for ix in range(ix0, ix1 + 1)]


def _rect_bounds(z: int, rect: Rect) -> tuple[float, float, float, float]:
    """Return (west, south, east, north) Mercator metres of a rect (x not wrapped)."""
    s = pixel_size(z)
    x0 = -HALF_WORLD + rect.x0 * s
    y1 = HALF_WORLD - rect.y0 * s
    return x0, y1 - rect.h * s, x0 + rect.w * s, y1


_layouts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def layout_of(geo: Any) -> Layout:
    """Return the :class:`Layout` of a :class:`~.layers.Geography` (one per geography)."""
    with _lock:
        lay = _layouts.get(geo)
        if lay is None:
            lay = Layout(geo)
            _layouts[geo] = lay
        return lay
