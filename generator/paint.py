"""Paint the layout into the imagery: fields, hedges, roads, streets and roofs where it puts them.

A ×2 super-resolution step conditioned on a blurry parent cannot invent a road network or a
patchwork of fields: the parent never shows them, so the model paints the same moss everywhere.
The layout layer (:mod:`generator.geography.layout`) decides where those objects are; this
module edits the pixels toward it at the same two places of the cascade as the water edit
(:mod:`generator.follow`): the ×2-upsampled parent before a window is sampled (so the model
renders texture around the structure), and the tile after the parent correction (so the
low-frequency replace toward the coarser parent cannot undo what this level resolves).

Two kinds of edit, both pure functions of the pixel, the parent level around it and the layout:

* **areas** (field parcels, meadows, orchards, terraces, settlement ground, woodland): the
  pixel's low frequencies move toward the object's colour, its texture stays:
  ``px + s · (T − lp)``, ``lp`` the parent level blurred by one parent pixel and upsampled
  like the cascade does (so neighbour tiles get the same ``lp`` and no seam appears). Each
  parcel's colour ``T`` is one of a palette of crops, stubble and soils, chosen by a hash of
  the parcel itself (its representative point), half mixed with the local land colour so a
  region keeps its own hue.
* **lines and roofs** (roads, rail, streets, bridges, hedgerows, buildings): the pixel is
  blended toward a flat colour (asphalt, ballast, a roof colour per building) with an opacity
  that is the object's ground width over the pixel size (its share of the pixel), so a coarse
  pixel shows the line's area mean and a 7 m road is solid at 2 m/px.

**Colours are decided once.** Parcels first exist at :data:`DECIDE_Z` (the layout's
``FIELDS_Z``): there the area pulls are strongest and change the parent's means. Past it, the
areas', lines' and rows' edit loses its mean over each global 2×2 block (:func:`mean_free`):
a finer level then adds only what its own resolution resolves *inside* each parent pixel (a
boundary, a road's edge, a furrow) and every 2×2 mean stays the parent's. Pulling each level
again toward the targets (the earlier rule) moved field tones at every zoom step: parent PSNR
25–30 dB against 50 dB unpainted; decided once, 40–50 dB past DECIDE_Z. Roofs are the
exception: a building is resolved whole at its first zoom, not as a contrast inside its
parent's pixels, so its pull stays.

Where the layout holds nothing to paint (open water, deserts without fields, the sea) the
edit returns the pixels untouched, so it costs nothing there.
"""

from __future__ import annotations

import numpy as np
import shapely
import torch
from affine import Affine
from rasterio import features as rfeatures
from scipy.ndimage import gaussian_filter

from .follow import LAND_RGB, local_colour_up, waterness
from .geography import Geography
from .geography import layout_classes as K
from .geography.grid import HALF_WORLD, grid_width, ground_mpp, pixel_size
from .geography.layout import (
    ARTERIAL_M,
    BLOCKS_Z,
    BUILDING_MPP,
    FIELDS_Z,
    MARGIN,
    layout_of,
    polygon_mappings,
)
from .geography.layout_net import WIDTH_M
from .geography.lru import LRU
from .planner import Rect
from .resample import up2

#: Version of the painting rules (part of the world's content hash).
PAINT_VERSION = "11"  # 6: decided colours; 7: streets decided; 8: AA; 9: block-mean lp; 10: asphalt
# 11: roofs by their sub-pixel share from z13 on, neighbourhood roof colours
#: First zoom painted: above it the layout holds only the land cover's classes, which the
#: imagery already shows, and roads narrower than a sixth of a pixel (about 40 m/px).
PAINT_MIN_Z = 11
#: Per-level pull of an area's low frequencies toward its colour.
AREA_PULL = {
    K.FIELD: 0.5,
    K.MEADOW: 0.4,
    K.ORCHARD: 0.45,
    K.PIVOT: 0.55,
    K.TERRACE: 0.45,
    K.SETTLEMENT: 0.45,
    K.WOODLAND: 0.2,
}
#: Zoom where areas get their colours: the first with field parcels, pulled harder there
#: (:data:`DECIDE_BOOST`); finer levels add only what their own resolution resolves inside
#: each parent pixel (:func:`mean_free`), so a parcel keeps the colour it was given and a zoom
#: step no longer moves 2×2 means (parent PSNR).
DECIDE_Z = FIELDS_Z
DECIDE_BOOST = 1.6
#: Lines that are decided, like the areas, at their own first zoom: town streets appear with
#: the street blocks at once, a whole network already 1–2 px wide whose coarser levels showed
#: plain settlement ground; as a contrast inside parent pixels alone they would keep a third
#: of their darkness.
LINE_DECIDE_Z = {K.STREET: BLOCKS_Z}
#: Share of the palette colour in an area's target (the rest: the local land colour).
PALETTE_SHARE = 0.6
#: Arable crops, stubble and soils (sRGB), as seen from the air in late spring to summer.
FIELD_PALETTE = np.array(
    [
        [88, 108, 58],  # green cereal
        [112, 130, 70],  # young crop
        [150, 150, 88],  # ripening
        [178, 162, 110],  # ripe / stubble
        [160, 146, 118],  # pale stubble
        [128, 106, 82],  # ploughed soil
        [100, 86, 68],  # dark soil
        [96, 118, 62],  # maize / rape
    ],
    np.float32,
)
MEADOW_PALETTE = np.array(
    [[98, 120, 66], [112, 132, 76], [90, 110, 62], [124, 136, 84]], np.float32
)
ORCHARD_RGB = np.array([82, 100, 58], np.float32)
PIVOT_PALETTE = np.array([[78, 108, 52], [96, 122, 60], [150, 138, 100]], np.float32)
TERRACE_RGB = np.array([132, 122, 86], np.float32)
SETTLEMENT_RGB = np.array([150, 142, 132], np.float32)
WOODLAND_RGB = np.array([52, 68, 42], np.float32)
AREA_PALETTES = {K.FIELD: FIELD_PALETTE, K.MEADOW: MEADOW_PALETTE, K.PIVOT: PIVOT_PALETTE}
AREA_RGB = {
    K.ORCHARD: ORCHARD_RGB,
    K.TERRACE: TERRACE_RGB,
    K.SETTLEMENT: SETTLEMENT_RGB,
    K.WOODLAND: WOODLAND_RGB,
}
#: Antialiasing of the area colours: σ (px) of the normalised Gaussian and its reach (px; ≤
#: the layout's MARGIN).
AA_SIGMA, AA_PAD = 0.6, 2
#: Lines: colour and the opacity of a line one pixel wide or wider.
LINES = {
    K.MOTORWAY: (np.array([104, 104, 104], np.float32), 0.85),
    K.MAIN_ROAD: (np.array([118, 116, 112], np.float32), 0.85),
    K.ROAD: (np.array([132, 128, 120], np.float32), 0.8),
    K.TRACK: (np.array([150, 136, 110], np.float32), 0.6),
    K.RAIL: (np.array([92, 86, 80], np.float32), 0.75),
    K.BRIDGE: (np.array([122, 122, 120], np.float32), 0.85),
    K.STREET: (np.array([92, 92, 94], np.float32), 0.85),  # asphalt in the shade of its frontage
    K.AVENUE: (np.array([108, 108, 106], np.float32), 0.85),
    K.HEDGE: (np.array([44, 60, 36], np.float32), 0.7),
}
#: Ground widths of lines the layout does not list (m).
EXTRA_WIDTH_M = {K.BRIDGE: 10.0, K.STREET: 11.0, K.HEDGE: 3.0, K.AVENUE: ARTERIAL_M}
#: Roof colours, in the order a smooth field picks them (:func:`roof_colours`): light
#: concrete, weathered tile, terracotta, grey, dark slate — the middle ones the most common.
ROOF_PALETTE = np.array(
    [[176, 170, 162], [136, 80, 64], [158, 86, 66], [124, 124, 128], [84, 84, 90]], np.float32
)
ROOF_ALPHA = 0.9
#: Roofs of a neighbourhood look alike (one builder, one era, one local material): the palette
#: entry follows a smooth field of this lattice level (≈ 300 m cells on the equator) plus a
#: per-building spread, and each roof's brightness varies by ± ROOF_JITTER / 2.
ROOF_TINT_LEVEL = 17
ROOF_SPREAD = 0.35
ROOF_JITTER = 0.12
#: Roofs before the layer draws buildings (coarser than the layout's BUILDING_MPP): from
#: :data:`ROOFS_DECIDE_Z` each settlement pixel is pulled toward the mean colour of the roofs
#: over it by ROOF_ALPHA × their share of it, measured on ROOF_SS × ROOF_SS sub-pixels. They
#: are decided there (z13, 12 m pixels: a town's roofs are its texture, and without them a city
#: tile was a few crisp avenues on flat ground); finer levels add only the contrast inside each
#: parent pixel, as the areas do, until the buildings are drawn whole.
ROOF_SS = 4
ROOFS_DECIDE_Z = 13
#: Parcel boundaries that are not hedges are pulled toward a darker local land colour (a
#: furrow, a margin strip): a pull toward a target, so it converges over levels instead of
#: compounding.
EDGE_DARKEN, EDGE_PULL = 0.8, 0.35
#: Lines narrower than this share of a pixel are not drawn at all.
MIN_LINE_SHARE = 0.15
#: Rows and tramlines inside arable parcels: spacings (m, one per parcel from its hash), the
#: finest drawn (px per period), their amplitude (grey levels) and the pull of a pixel's
#: high frequencies toward them each level (a pull: it converges, it does not compound).
ROW_SPACINGS_M = (6.0, 9.0, 12.0)
ROW_MIN_PX = 3.0
ROW_AMPLITUDE = 20.0
ROW_PULL = 0.8
#: σ of the low-pass ``lp`` in parent pixels.
LP_SIGMA = 1.0


def _up_crop(a: np.ndarray, m: int, h: int, w: int) -> np.ndarray:
    """Return the cascade's bilinear ×2 (:func:`~generator.resample.up2`) of the parent-level
    field ``a`` cropped to the rect (margin ``m`` ≥ 1 parent px): one extra parent pixel each
    side, so every output pixel is interpolated from its true neighbours, as a neighbour tile
    would do it."""
    crop = a[:, m - 1 : m + h // 2 + 1, m - 1 : m + w // 2 + 1]
    up = up2(torch.from_numpy(np.ascontiguousarray(crop, np.float32))[None])[0].numpy()
    return up[:, 2 : 2 + h, 2 : 2 + w]


def block_means(d: np.ndarray, mask: np.ndarray, y0: int, x0: int) -> np.ndarray:
    """Return, at each pixel of ``d`` ((3, h, w), pixels from global (y0, x0)), the mean of
    ``d`` over the masked pixels of its global 2×2 block (0 where none is masked). Blocks are
    aligned on even global pixels, so every rect holding a block computes it alike."""
    py, px = y0 % 2, x0 % 2
    h, w = mask.shape
    ph, pw = (py + h) % 2, (px + w) % 2
    m = np.pad(mask.astype(np.float32), ((py, ph), (px, pw)))
    e = np.pad(d * m[None, py : py + h, px : px + w], ((0, 0), (py, ph), (px, pw)))
    hb, wb = m.shape[0] // 2, m.shape[1] // 2
    n = m.reshape(hb, 2, wb, 2).sum((1, 3))
    mean = e.reshape(3, hb, 2, wb, 2).sum((2, 4)) / np.maximum(n, 1.0)
    return np.repeat(np.repeat(mean, 2, 1), 2, 2)[:, py : py + h, px : px + w]


def mean_free(d: np.ndarray, mask: np.ndarray, y0: int, x0: int) -> np.ndarray:
    """Return the edit ``d`` ((3, h, w), pixels from global (y0, x0)) less its mean over the
    masked pixels of each global 2×2 block (:func:`block_means`), zero off the mask: the edit
    then changes no 2×2 block's mean (the parent sees nothing), only the contrast inside it."""
    return (d - block_means(d, mask, y0, x0)) * mask[None]


def _mix(h: np.ndarray) -> np.ndarray:
    """Return a well-mixed uint64 of uint64 ``h`` (splitmix64's finaliser)."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def long_axis(geoms: np.ndarray) -> np.ndarray:
    """Return the direction (radians) of each polygon's long axis: of its oriented envelope's
    longer side (a field's rows run along it)."""
    if len(geoms) == 0:
        return np.zeros(0)
    env = shapely.oriented_envelope(geoms)
    xy = shapely.get_coordinates(env)
    n = shapely.get_num_coordinates(env)
    start = np.concatenate([[0], np.cumsum(n)[:-1]])
    a, b, c = (
        xy[start],
        xy[np.minimum(start + 1, len(xy) - 1)],
        xy[np.minimum(start + 2, len(xy) - 1)],
    )
    d1, d2 = b - a, c - b
    long = np.where((np.hypot(*d1.T) >= np.hypot(*d2.T))[:, None], d1, d2)
    return np.arctan2(long[:, 1], long[:, 0])


def object_hashes(seed: int, geoms: np.ndarray, salt: int) -> np.ndarray:
    """Return a uint64 hash per polygon: of its representative point (to the metre), so the same
    object gets the same hash in every rect that meets it (x wrapped into the world)."""
    if len(geoms) == 0:
        return np.zeros(0, np.uint64)
    return point_hashes(seed, shapely.get_coordinates(shapely.point_on_surface(geoms)), salt)


def point_hashes(seed: int, xy: np.ndarray, salt: int) -> np.ndarray:
    """Return :func:`object_hashes` of objects whose representative points ``xy`` (n, 2) are
    already known."""
    x = np.mod(xy[:, 0] + HALF_WORLD, 2 * HALF_WORLD)
    ix = np.round(x).astype(np.int64).astype(np.uint64)
    iy = np.round(xy[:, 1] + HALF_WORLD).astype(np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        h = _mix(ix * np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(seed * 1_000_003 + salt))
        return _mix(h ^ iy)


def roof_colours(seed: int, geoms: np.ndarray) -> np.ndarray:
    """Return each building's roof colour ((n, 3) float32): a palette entry picked by a smooth
    field at its representative point (neighbours share their roofs' look, as a street's
    houses do) spread by the building's own hash, its brightness jittered by that hash — a
    pure function of the footprint, the same at every zoom and in every rect."""
    if len(geoms) == 0:
        return np.zeros((0, 3), np.float32)
    from .geography import fractal

    xy = shapely.get_coordinates(shapely.point_on_surface(geoms))
    h = point_hashes(seed, xy, 2)  # (the representative point once, for hash and field)
    u = np.mod((xy[:, 0] + HALF_WORLD) / (2 * HALF_WORLD), 1.0)
    v = (HALF_WORLD - xy[:, 1]) / (2 * HALF_WORLD)
    field = fractal.value_noise(seed ^ 0x700F, ROOF_TINT_LEVEL, u[:, None], v[:, None])[:, 0]
    own = (h % np.uint64(1024)).astype(np.float64) / 1024.0
    t = np.clip((field + 1.0) / 2.0 + ROOF_SPREAD * (own - 0.5), 0.0, 1.0 - 1e-9)
    pick = np.floor(t * len(ROOF_PALETTE)).astype(np.intp)
    shade = ((h >> np.uint64(10)) % np.uint64(1024)).astype(np.float64) / 1024.0
    gain = 1.0 + ROOF_JITTER * (shade - 0.5)
    return np.clip(ROOF_PALETTE[pick] * gain[:, None], 0.0, 255.0).astype(np.float32)


class LayoutPainter:
    """Edits imagery of a zoom level toward the geography's layout layer there."""

    def __init__(self, geography: Geography, tile_size: int = 256) -> None:
        self.geography = geography
        self.tile_size = tile_size
        self.layout = layout_of(geography)
        self.seed = self.layout.seed
        self._objects = LRU(64)

    def _layout(
        self, z: int, rect: Rect, context: Rect | None, pad: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return (class, edge, parcel hash, roof colour, parcel long axis) of ``rect`` grown
        by ``pad`` ≤ MARGIN pixels, read from ``context``."""
        if context is None:
            context = rect
        st = self.layout.state(z, context)
        ph, bh, axis = self._per_object(z, context, st)
        dy, dx = rect.y0 - context.y0 + MARGIN - pad, rect.x0 - context.x0 + MARGIN - pad
        crop = (slice(dy, dy + rect.h + 2 * pad), slice(dx, dx + rect.w + 2 * pad))
        pid = st.pid[crop]
        return st.cls[crop], st.edge[crop], ph[pid], bh[st.hid[crop]], axis[pid]

    def _per_object(
        self, z: int, context: Rect, st: object
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the parcel hashes, roof colours and parcel long axes of a layout state, indexed
        by object id (id 0: none), kept per state: a window's conditioning and each of its
        tiles read the same state, and the shapely work is the painter's dearest part."""

        def make() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            objs = st.objs  # type: ignore[attr-defined]
            none = np.zeros(1, np.uint64)  # uint64 throughout: no float detour
            ph = np.concatenate([none, object_hashes(self.seed, objs.parcels, 1)])
            rc = roof_colours(self.seed, objs.houses)
            bh = np.concatenate([np.zeros((1, 3), np.float32), rc])
            axis = np.concatenate([[0.0], long_axis(objs.parcels)])
            return ph, bh, axis

        key = (z, context.y0, context.x0 % grid_width(z), context.h, context.w)
        return self._objects.get(key, make)

    def edit(
        self,
        z: int,
        rect: Rect,
        img: np.ndarray,
        parent: np.ndarray,
        context: Rect | None = None,
        *,
        final: bool = False,
    ) -> np.ndarray:
        """Return ``img`` ((3, h, w) in [-1, 1], pixels of ``rect`` at zoom z) painted with the
        layout; ``parent`` ((3, h/2 + 2m, w/2 + 2m)) is the parent level under the rect with a
        margin m (the source of the low-pass and the local land colour); ``context`` is a
        larger rect holding ``rect`` whose layout is cached (a tile's own window). ``final``
        does not change this edit (applied alike to a window's conditioning and a tile)."""
        if z < PAINT_MIN_Z:
            return img.astype(np.float32)
        # one read of the layout, grown by the antialiasing's reach; the rest uses its inside
        padded = self._layout(z, rect, context, AA_PAD)
        inner = (slice(AA_PAD, -AA_PAD), slice(AA_PAD, -AA_PAD))
        cls, edge, phash, roof, axis = (a[inner] for a in padded)
        paint = (cls != K.NONE) & (cls != K.WATER)
        if not paint.any():
            return img.astype(np.float32)
        px = (img.astype(np.float32) + 1.0) * 127.5
        par = (parent.astype(np.float32) + 1.0) * 127.5
        m = (parent.shape[1] - rect.h // 2) // 2
        lp = _up_crop(
            gaussian_filter(par, (0.0, LP_SIGMA, LP_SIGMA), mode="nearest"), m, *px.shape[1:]
        )
        # the local land colour is the water edit's (a normalised convolution on 2×2 parent
        # blocks): the hue a region keeps
        land = local_colour_up(par, 1.0 - waterness(par), LAND_RGB, rect.h, rect.w, m)
        mpp = float(ground_mpp(z, rect).mean())
        decided = z > DECIDE_Z
        before = px.copy() if decided else None
        boost = DECIDE_BOOST if z == DECIDE_Z else 1.0
        # once colours are decided only the contrast inside each 2×2 block counts: measured
        # from the block means of ``lp``, or the edit would flatten each block's share of the
        # parent's smooth gradient (a staircase of this zoom's 2×2 blocks at every finer one)
        ref = block_means(lp, np.ones(cls.shape, bool), rect.y0, rect.x0) if decided else lp
        self._areas(px, ref, land, cls, *self._area_colours(padded[0], padded[2], boost))
        self._edges(px, land, cls, edge)
        self._lines(px, cls, mpp)
        self._rows(px, lp, cls, phash, axis, z, rect, mpp)
        shares = z >= ROOFS_DECIDE_Z and mpp > BUILDING_MPP and (cls == K.SETTLEMENT).any()
        if shares and z > ROOFS_DECIDE_Z:  # decided: only their contrast inside parent pixels
            self._roof_shares(px, cls, z, rect, context)
        if decided:  # keep the parent's 2×2 means
            fresh = [k for k, first in LINE_DECIDE_Z.items() if first == z]
            mask = np.isin(cls, [k for k in (*AREA_PULL, *LINES) if k not in fresh])
            px = np.where(mask, before + mean_free(px - before, mask, rect.y0, rect.x0), px)
        if shares and z == ROOFS_DECIDE_Z:  # their first zoom: the pull changes the means
            self._roof_shares(px, cls, z, rect, context)
        # roofs converge within a level: a roof is resolved whole, not as a contrast inside
        # its parent's pixels
        self._roofs(px, cls, roof)
        return (np.clip(px, 0.0, 255.0) / 127.5 - 1.0).astype(np.float32)

    def _roof_shares(
        self, px: np.ndarray, cls: np.ndarray, z: int, rect: Rect, context: Rect | None
    ) -> None:
        """Pull the settlement pixels of ``rect`` toward the roofs over them by their share."""
        context = rect if context is None else context
        share, colour = self._roof_cover(z, context)
        dy, dx = rect.y0 - context.y0 + MARGIN, rect.x0 - context.x0 + MARGIN
        crop = (slice(dy, dy + rect.h), slice(dx, dx + rect.w))
        share, colour = share[crop], colour[:, crop[0], crop[1]]
        sel = (cls == K.SETTLEMENT) & (share > 0)
        if sel.any():
            px[:, sel] += ROOF_ALPHA * share[sel] * (colour[:, sel] - px[:, sel])

    def _roof_cover(self, z: int, context: Rect) -> tuple[np.ndarray, np.ndarray]:
        """Return (share of each pixel under roofs, their mean colour (3, h, w)) of ``context``
        plus MARGIN, from the layout's footprints rasterised on ROOF_SS² sub-pixels, kept per
        rect like the object hashes (a window's conditioning and its tiles read the same)."""

        def make() -> tuple[np.ndarray, np.ndarray]:
            m = MARGIN
            h, w = context.h + 2 * m, context.w + 2 * m
            houses = self.layout.houses(z, context)
            if not len(houses):
                return np.zeros((h, w), np.float32), np.zeros((3, h, w), np.float32)
            s = pixel_size(z)
            x0 = -HALF_WORLD + (context.x0 % grid_width(z) - m) * s  # the frame houses() use
            y1 = HALF_WORLD - (context.y0 - m) * s
            sub = s / ROOF_SS
            ids = rfeatures.rasterize(
                zip(polygon_mappings(houses), range(1, len(houses) + 1), strict=True),
                out_shape=(h * ROOF_SS, w * ROOF_SS),
                transform=Affine(sub, 0.0, x0, 0.0, -sub, y1),
                fill=0,
                dtype="int32",
            )
            # the colour each roof gets where it is drawn whole
            pal = np.concatenate([np.zeros((1, 3), np.float32), roof_colours(self.seed, houses)])
            col = pal[ids].reshape(h, ROOF_SS, w, ROOF_SS, 3).sum((1, 3))
            n = (ids > 0).reshape(h, ROOF_SS, w, ROOF_SS).sum((1, 3)).astype(np.float32)
            colour = (col / np.maximum(n, 1.0)[..., None]).transpose(2, 0, 1)
            return n / ROOF_SS**2, np.ascontiguousarray(colour, np.float32)

        key = ("roofs", z, context.y0, context.x0 % grid_width(z), context.h, context.w)
        return self._objects.get(key, make)

    @staticmethod
    def _area_colours(
        cls: np.ndarray, h: np.ndarray, boost: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return each pixel's area colour and pull ((3, h, w), (h, w)) from the classes and
        parcel hashes of the rect grown by :data:`AA_PAD` (so neighbour rects agree),
        antialiased: averaged over the area pixels within :data:`AA_SIGMA` of it (a normalised
        Gaussian). A pixel a parcel boundary crosses then gets about the mean of the parcels it
        covers, which is what its 2×2 children will average to: a boundary decided as hard
        pixels would stay a staircase of that zoom's pixels at every finer one (the finer
        levels keep 2×2 means)."""
        colour = np.zeros((3, *cls.shape), np.float32)
        pull = np.zeros(cls.shape, np.float32)
        for klass, p in AREA_PULL.items():
            sel = cls == klass
            if not sel.any():
                continue
            pal = AREA_PALETTES.get(klass)
            if pal is not None:
                colour[:, sel] = pal[(h[sel] % np.uint64(len(pal))).astype(np.intp)].T
            else:
                colour[:, sel] = AREA_RGB[klass][:, None]
            pull[sel] = min(1.0, p * boost)
        m = np.isin(cls, list(AREA_PULL)).astype(np.float32)
        stack = np.concatenate([m[None], colour * m, pull[None] * m])
        blur = gaussian_filter(
            stack, (0.0, AA_SIGMA, AA_SIGMA), mode="nearest", truncate=AA_PAD / AA_SIGMA
        )
        w = np.maximum(blur[0], 1e-6)
        inner = (slice(AA_PAD, -AA_PAD), slice(AA_PAD, -AA_PAD))
        return (blur[1:4] / w)[:, inner[0], inner[1]], (blur[4] / w)[inner]

    def _areas(
        self,
        px: np.ndarray,
        lp: np.ndarray,
        land: np.ndarray,
        cls: np.ndarray,
        colour: np.ndarray,
        pull: np.ndarray,
    ) -> None:
        sel = np.isin(cls, list(AREA_PULL))
        if sel.any():
            target = PALETTE_SHARE * colour[:, sel] + (1.0 - PALETTE_SHARE) * land[:, sel]
            px[:, sel] += pull[sel] * (target - lp[:, sel])

    @staticmethod
    def _rows(
        px: np.ndarray,
        lp: np.ndarray,
        cls: np.ndarray,
        h: np.ndarray,
        axis: np.ndarray,
        z: int,
        rect: Rect,
        mpp: float,
    ) -> None:
        """Rows and tramlines in arable fields: stripes along the parcel's long axis, at a
        spacing from its hash, in world coordinates (the same ground stripes at every zoom)."""
        spacing = np.array(ROW_SPACINGS_M)
        if spacing.max() / mpp < ROW_MIN_PX:
            return
        sel = cls == K.FIELD
        if not sel.any():
            return
        ys, xs = np.nonzero(sel)
        s = pixel_size(z)
        mx = -HALF_WORLD + (rect.x0 + xs + 0.5) * s  # Mercator metres of the pixel centres
        my = HALF_WORLD - (rect.y0 + ys + 0.5) * s
        k = mpp / s  # ground metres per Mercator metre here
        hs = h[sel]
        sp = spacing[(hs % np.uint64(len(spacing))).astype(np.intp)]
        keep = sp / mpp >= ROW_MIN_PX  # finer rows are not drawn: the pixel keeps its texture
        if not keep.any():
            return
        ys, xs, mx, my, hs, sp = ys[keep], xs[keep], mx[keep], my[keep], hs[keep], sp[keep]
        theta = axis[ys, xs]
        across = -mx * np.sin(theta) + my * np.cos(theta)  # distance across the rows
        phase = ((hs >> np.uint64(8)) % np.uint64(1024)).astype(np.float64) / 1024.0
        wave = np.sin(2 * np.pi * (np.mod(across * k / sp, 1.0) + phase))
        hp = px[:, ys, xs] - lp[:, ys, xs]
        px[:, ys, xs] += ROW_PULL * (ROW_AMPLITUDE * wave[None].astype(np.float32) - hp)

    @staticmethod
    def _edges(px: np.ndarray, land: np.ndarray, cls: np.ndarray, edge: np.ndarray) -> None:
        sel = (edge > 0) & np.isin(cls, list(K.PARCELS))
        if sel.any():
            px[:, sel] += EDGE_PULL * (EDGE_DARKEN * land[:, sel] - px[:, sel])

    @staticmethod
    def _lines(px: np.ndarray, cls: np.ndarray, mpp: float) -> None:
        for klass, (colour, alpha) in LINES.items():
            sel = cls == klass
            if not sel.any():
                continue
            width = WIDTH_M.get(klass, EXTRA_WIDTH_M.get(klass, 5.0))
            share = min(1.0, width / mpp)
            if share < MIN_LINE_SHARE:
                continue
            # the opacity of its ground share: a coarser pixel shows the line's area mean,
            # which is what its children's 2×2 mean will be
            a = alpha * share
            px[:, sel] += a * (colour[:, None] - px[:, sel])

    @staticmethod
    def _roofs(px: np.ndarray, cls: np.ndarray, roof: np.ndarray) -> None:
        """Pull building pixels toward their roof's colour (``roof``: (h, w, 3))."""
        sel = cls == K.BUILDING
        if sel.any():
            px[:, sel] += ROOF_ALPHA * (roof[sel].T - px[:, sel])


class Edits:
    """Several edits of a level's imagery applied in order (the water, the layout, the relief)."""

    def __init__(self, *editors: object) -> None:
        self.editors = editors

    def edit(
        self,
        z: int,
        rect: Rect,
        img: np.ndarray,
        parent: np.ndarray,
        context: Rect | None = None,
        *,
        final: bool = False,
    ) -> np.ndarray:
        """Return ``img`` after every editor's :meth:`edit`, in order; ``final``: the
        finished tile (some edits, the relief's, apply to it alone)."""
        for e in self.editors:
            img = e.edit(z, rect, img, parent, context, final=final)  # type: ignore[attr-defined]
        return img
