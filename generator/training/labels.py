"""Conditioning labels made from the imagery itself, in the channel order of the run-time layers.

At run time the model is conditioned on the geography layers (``water``, ``distance``,
``rivers``, ``elevation``, ``landcover``) and on the layout layer's four channels (class id,
edge, road mask, building mask). Training images have no such layers, and neither has a user's
photo given to ``orbis upscale``: this module derives what it can from the pixels, the same way
for both, so a training pair carries the channels the model sees at run time and a user's image
gets the same treatment as the training labels were made with.

Two levels:

* **planes** (:data:`PLANES`, uint8 (P, H, W) + a ``present`` flag per plane): what
  :func:`planes` measures on an image at its own resolution; this is what ``orbis data`` stores
  (``labels/*.npz``, :func:`save`/:func:`load`). Planes pyramid with :func:`down2` alongside
  the image (box mean, classes by the top-left pixel of each block).
* **stack** (:data:`CHANNELS`, float32 (C, H, W) + ``present`` (C,)): :func:`stack` turns planes
  at any pyramid level into the run-time order and units (the signed distance to shore in metres
  is computed there, from the water plane and the level's m/px, since it depends on the level).
  :func:`assemble` builds the same stack from run-time layers, so the two cannot drift apart.

Measures (pure numpy / scipy / scikit-image, deterministic):

* water — NDWI (McFeeters, (G − NIR)/(G + NIR)) where a near-infrared band exists, else the
  colour rule :func:`generator.follow.waterness` (calibrated on Blue Marble against GSHHS);
* vegetation — NDVI where NIR exists, else the excess-green index 2g − r − b on chromaticities
  (brightness-free, so dark forest and bright grass both count);
* edge — Canny edges of the luminance (σ = 2 px, absolute thresholds, so a flat desert or a
  snowfield gets no edges instead of amplified noise);
* lines — straight segments found by scikit-image's progressive probabilistic Hough transform
  on those edges where the local orientation is coherent (≥ :data:`LINE_MIN_PX` long): field
  boundaries, roads through open land, canals (town street grids between houses are mostly
  missed: the houses' own edges break the coherence);
* trees, building — FlightGear's object masks (``*.mask.png``), where a texture has one: green
  is the probability of random tree placement, blue that of buildings and lights (red is the
  buildings' rotation, not used) — ``Docs/README.materials`` of ``flightgear-data-base``;
* hillshade — from an elevation grid when one is given (none of the training photos has one);
* landcover — a class per image (:mod:`generator.geography.classes`), water pixels (water
  ≥ 0.5) set to ``WATER``, as the run-time land cover has it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage import draw, feature, transform

from ..follow import waterness
from ..geography import classes as C

#: the stored planes, in this order (uint8)
PLANES = ("water", "landcover", "edge", "lines", "vegetation", "trees", "building", "hillshade")
#: the conditioning stack, in the run-time order: the geography layers, the layout's four
#: channels (``Layout.channels``), then the image-only channels
CHANNELS = (
    "water",  # 0..1 water fraction (run time: water kind != LAND)
    "distance",  # signed ground distance to the shore in m (+ water, − land)
    "rivers",  # 0..1 river coverage
    "elevation",  # m above sea level
    "landcover",  # class id (generator.geography.classes)
    "layout",  # layout class id (generator.geography.layout_classes)
    "edge",  # 0/255 boundary (run time: layout edge; from images: Canny)
    "road",  # 0/255 road mask (layout)
    "building",  # 0..255 building mask (layout) / FlightGear building probability
    "vegetation",  # 0..1 vegetation index
    "lines",  # 0/255 straight-line mask (from images; at run time road ∪ edge)
    "trees",  # 0..1 tree probability (FlightGear masks)
    "hillshade",  # 0..1 Lambertian hillshade, sun from the north-west at 45°
)
#: straight segments shorter than this (pixels) are not lines
LINE_MIN_PX = 32
#: Hough votes a segment needs
LINE_VOTES = 20
#: orientation coherence an edge pixel needs to take part in a line
LINE_COHERENCE = 0.4
#: luminance std (7×7 px, [0, 1] units) above which a water-coloured pixel is not water
WATER_MAX_STD = 0.05
#: a land-cover plane value that means "not known" (stack marks the channel missing)
UNKNOWN = 255
#: distances beyond this (m) are clipped: a shore further away than the image is not seen
DISTANCE_CLIP_M = 1.0e5

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _as_float(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 or float in [0, 1] → float32 in [0, 1]."""
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) / 255.0
    return np.clip(rgb.astype(np.float32), 0.0, 1.0)


def water(rgb: np.ndarray, reflectance: np.ndarray | None = None) -> np.ndarray:
    """Return water 0..1 (H, W): NDWI (0 → 0.5, ≥ 0.1 → 1) where ``reflectance`` (H, W, 4:
    red, green, blue, near-infrared) is given, else :func:`generator.follow.waterness` of the
    colour gated by local smoothness (:data:`WATER_MAX_STD`)."""
    f = _as_float(rgb)
    if reflectance is not None:
        g = reflectance[..., 1].astype(np.float32)
        n = reflectance[..., 3].astype(np.float32)
        ndwi = (g - n) / np.maximum(g + n, 1e-4)
        return np.clip(0.5 + ndwi / 0.2, 0.0, 1.0)
    colour = waterness(np.moveaxis(f * 255.0, -1, 0)).astype(np.float32)
    # open water is smooth; shadows and dark blue roofs, which pass the colour rule in towns,
    # sit among bright pixels: gate by the local luminance spread (std over 7×7 px)
    lum = f @ _LUMA
    mean = ndimage.uniform_filter(lum, 7, mode="reflect")
    var = ndimage.uniform_filter(lum * lum, 7, mode="reflect") - mean * mean
    smooth = np.clip((WATER_MAX_STD - np.sqrt(np.maximum(var, 0.0))) / 0.02, 0.0, 1.0)
    # a shore pixel's window straddles the land: let smooth water vouch for its neighbours
    return colour * ndimage.maximum_filter(smooth, 7, mode="reflect")


def vegetation(rgb: np.ndarray, reflectance: np.ndarray | None = None) -> np.ndarray:
    """Return a vegetation index 0..1 (H, W): NDVI (0.2 → 0, 0.6 → 1) where ``reflectance``
    (R, G, B, NIR) is given, else excess green 2g − r − b on chromaticities (0.02 → 0,
    0.17 → 1)."""
    f = _as_float(rgb)
    if reflectance is not None:
        r = reflectance[..., 0].astype(np.float32)
        n = reflectance[..., 3].astype(np.float32)
        ndvi = (n - r) / np.maximum(n + r, 1e-4)
        return np.clip((ndvi - 0.2) / 0.4, 0.0, 1.0)
    s = np.maximum(f.sum(axis=-1), 1e-3)
    r, g, b = f[..., 0] / s, f[..., 1] / s, f[..., 2] / s
    exg = 2 * g - r - b
    dark = np.clip(s / 0.15, 0.0, 1.0)  # chromaticity is noise on near-black pixels
    return np.clip((exg - 0.02) / 0.15, 0.0, 1.0) * dark


def edges(rgb: np.ndarray, sigma: float = 2.0, low: float = 0.05, high: float = 0.1) -> np.ndarray:
    """Return Canny edges of the luminance (bool (H, W)); thresholds are absolute (gradient of
    the σ-smoothed luminance in units of [0, 1] per pixel) so flat ground has none."""
    lum = _as_float(rgb) @ _LUMA
    return feature.canny(lum, sigma=sigma, low_threshold=low, high_threshold=high)


def lines(
    rgb: np.ndarray, edge: np.ndarray, min_px: int = LINE_MIN_PX, seed: int = 0
) -> np.ndarray:
    """Return the mask (bool (H, W)) of straight segments of an image.

    Only edge pixels whose neighbourhood has one dominant orientation take part (structure-
    tensor coherence ((λ1 − λ2)/(λ1 + λ2))² > :data:`LINE_COHERENCE` at σ = 3 px): without
    that gate, dense texture edges (houses, trees, ripples) line up by chance into spurious
    segments. Then scikit-image's progressive probabilistic Hough transform
    (``probabilistic_hough_line``, seeded, so the result is reproducible) keeps segments
    ≥ ``min_px`` long with gaps ≤ 3 px, drawn one pixel wide with ``skimage.draw.line``.
    """
    h, w = edge.shape
    out = np.zeros((h, w), dtype=bool)
    if not edge.any():
        return out
    lum = _as_float(rgb) @ _LUMA
    tensor = feature.structure_tensor(lum, sigma=3.0, order="rc")
    l1, l2 = feature.structure_tensor_eigenvalues(tensor)
    coherence = ((l1 - l2) / (l1 + l2 + 1e-6)) ** 2
    gated = edge & (coherence > LINE_COHERENCE)
    segs = transform.probabilistic_hough_line(
        gated, threshold=LINE_VOTES, line_length=min_px, line_gap=3, rng=seed
    )
    for (x0, y0), (x1, y1) in segs:
        rr, cc = draw.line(int(y0), int(x0), int(y1), int(x1))
        ok = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        out[rr[ok], cc[ok]] = True
    return out


def hillshade(elevation: np.ndarray, mpp: float, azimuth: float = 315.0, alt: float = 45.0):
    """Return Lambertian hillshade 0..1 of an elevation grid (m) at ``mpp`` m/px."""
    gy, gx = np.gradient(np.asarray(elevation, dtype=np.float32), mpp)
    slope = np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gx, gy)
    az, al = np.radians(azimuth), np.radians(alt)
    shade = np.sin(al) * np.cos(slope) + np.cos(al) * np.sin(slope) * np.cos(az - aspect)
    return np.clip(shade, 0.0, 1.0).astype(np.float32)


def fg_mask(mask_rgb: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Return (trees, building) 0..1 from a FlightGear object mask, resized to ``shape``.

    The mask's green channel is the probability of random vegetation, blue that of random
    buildings and lights; masks are often smaller than their texture (bilinear resize).
    """
    m = _as_float(mask_rgb[..., :3])
    zoom = (shape[0] / m.shape[0], shape[1] / m.shape[1])
    g = ndimage.zoom(m[..., 1], zoom, order=1, mode="grid-wrap", grid_mode=True)
    b = ndimage.zoom(m[..., 2], zoom, order=1, mode="grid-wrap", grid_mode=True)
    return np.clip(g, 0, 1)[: shape[0], : shape[1]], np.clip(b, 0, 1)[: shape[0], : shape[1]]


def planes(
    rgb: np.ndarray,
    *,
    reflectance: np.ndarray | None = None,
    landcover: int | None = None,
    mask_rgb: np.ndarray | None = None,
    elevation: np.ndarray | None = None,
    mpp: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (planes uint8 (len(PLANES), H, W), present bool (len(PLANES),)) of one image.

    Args:
        rgb: (H, W, 3) uint8 or float in [0, 1].
        reflectance: (H, W, 4) red, green, blue, near-infrared reflectance, if the sensor has
            a NIR band (NDWI and NDVI then replace the colour rules).
        landcover: the image's class id (per texture or scene); None → unknown.
        mask_rgb: a FlightGear object mask (any size) for trees and buildings.
        elevation: metres on the image grid (needs ``mpp``), for the hillshade.
        mpp: ground resolution, needed only with ``elevation``.
    """
    h, w = rgb.shape[:2]
    out = np.zeros((len(PLANES), h, w), dtype=np.uint8)
    present = np.zeros(len(PLANES), dtype=bool)

    def put(name: str, value: np.ndarray, scale: float = 255.0) -> None:
        i = PLANES.index(name)
        out[i] = np.rint(np.clip(value, 0, 1) * scale).astype(np.uint8)
        present[i] = True

    wat = water(rgb, reflectance)
    put("water", wat)
    lc = np.full((h, w), UNKNOWN if landcover is None else landcover, dtype=np.uint8)
    lc[wat >= 0.5] = C.WATER  # as the run-time land cover, which is water where water is
    out[PLANES.index("landcover")] = lc
    present[PLANES.index("landcover")] = landcover is not None
    e = edges(rgb)
    put("edge", e.astype(np.float32))
    put("lines", lines(rgb, e).astype(np.float32))
    veg = vegetation(rgb, reflectance)
    # greenish water passes the excess-green index; NDVI already puts water below 0
    put("vegetation", veg if reflectance is not None else veg * (1.0 - wat))
    if mask_rgb is not None:
        trees, building = fg_mask(mask_rgb, (h, w))
        put("trees", trees)
        put("building", building)
    if elevation is not None:
        if mpp is None:
            raise ValueError("hillshade needs the elevation's m/px")
        put("hillshade", hillshade(elevation, mpp))
    return out, present


def down2(p: np.ndarray) -> np.ndarray:
    """Halve planes (P, H, W) like the image pyramid: box mean of 2×2 blocks (odd edges
    dropped), except land cover, which keeps the top-left pixel of each block (class ids do not
    average), and edge/lines, which keep the block maximum (a line stays a line)."""
    h, w = p.shape[1] // 2 * 2, p.shape[2] // 2 * 2
    blocks = p[:, :h, :w].reshape(p.shape[0], h // 2, 2, w // 2, 2)
    out = np.rint(blocks.astype(np.float32).mean(axis=(2, 4))).astype(np.uint8)
    out[PLANES.index("landcover")] = p[PLANES.index("landcover"), :h:2, :w:2]
    for name in ("edge", "lines"):
        out[PLANES.index(name)] = blocks[PLANES.index(name)].max(axis=(1, 3))
    return out


def pyramid(
    rgb: np.ndarray, p: np.ndarray, mpp: float, min_size: int
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Return [(rgb, planes, m/px), …] from full resolution down while both sides ≥
    ``min_size``: the image box-halved (:func:`generator.resample.box_down2_np`) and the planes
    by :func:`down2`, so every level of a training pyramid has its labels."""
    from ..resample import box_down2_np

    img = rgb.astype(np.float32) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float32)
    out = []
    while min(img.shape[:2]) >= min_size:
        out.append((img, p, mpp))
        img, p, mpp = box_down2_np(img), down2(p), mpp * 2
    return out


def signed_distance(water_mask: np.ndarray, mpp: float) -> np.ndarray:
    """Return the signed ground distance to the shore in m (+ water, − land), clipped to
    ±:data:`DISTANCE_CLIP_M`; pixel centres, so a shore pixel pair is ±mpp/2 apart."""
    wm = np.asarray(water_mask, dtype=bool)
    if wm.all():
        return np.full(wm.shape, DISTANCE_CLIP_M, dtype=np.float32)
    if not wm.any():
        return np.full(wm.shape, -DISTANCE_CLIP_M, dtype=np.float32)
    d_in = ndimage.distance_transform_edt(wm)
    d_out = ndimage.distance_transform_edt(~wm)
    d = np.where(wm, d_in - 0.5, -(d_out - 0.5)) * mpp
    return np.clip(d, -DISTANCE_CLIP_M, DISTANCE_CLIP_M).astype(np.float32)


def stack(p: np.ndarray, present: np.ndarray, mpp: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (float32 (len(CHANNELS), H, W), present (len(CHANNELS),)) from planes at ``mpp``.

    Units are the run-time layers' (see :data:`CHANNELS`). ``distance`` is present when the
    image shows both water and land (else the shore is not in view and its distance unknown);
    ``rivers``, ``elevation``, ``layout`` and ``road`` are never made from images (missing).
    """
    h, w = p.shape[1:]
    out = np.zeros((len(CHANNELS), h, w), dtype=np.float32)
    have = np.zeros(len(CHANNELS), dtype=bool)

    def plane(name: str) -> np.ndarray:
        return p[PLANES.index(name)].astype(np.float32)

    def pres(name: str) -> bool:
        return bool(present[PLANES.index(name)])

    wat = plane("water") / 255.0
    out[0], have[0] = wat, pres("water")
    wm = wat >= 0.5
    out[1] = signed_distance(wm, mpp)
    have[1] = pres("water") and bool(wm.any()) and not bool(wm.all())
    out[4], have[4] = plane("landcover"), pres("landcover")
    out[6], have[6] = plane("edge"), pres("edge")
    out[8], have[8] = plane("building"), pres("building")
    for i, name, scale in (
        (9, "vegetation", 255.0),
        (11, "trees", 255.0),
        (12, "hillshade", 255.0),
    ):
        out[i], have[i] = plane(name) / scale, pres(name)
    out[10], have[10] = plane("lines"), pres("lines")
    return out, have


def assemble(
    water_kind: np.ndarray,
    distance: np.ndarray,
    rivers: np.ndarray,
    elevation: np.ndarray | None,
    landcover: np.ndarray,
    layout: np.ndarray,
    mpp: float,
    rgb_parent: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the run-time stack (float32 (len(CHANNELS), H, W), present) from the layers.

    Args:
        water_kind, distance, rivers, elevation, landcover: the geography layers of a window
            (``elevation`` None: not computed, so elevation and hillshade are missing).
        layout: ``Layout.channels`` (4, H, W) uint8: class id, edge, road, building.
        mpp: the window's ground resolution (for the hillshade).
        rgb_parent: the parent imagery upsampled to the window, if vegetation should be
            measured on it (else the vegetation channel is missing).
    """
    out = np.zeros((len(CHANNELS),) + water_kind.shape, dtype=np.float32)
    out[0] = water_kind != C.LAND
    out[1] = np.clip(distance, -DISTANCE_CLIP_M, DISTANCE_CLIP_M)
    out[2], out[4] = rivers, landcover
    out[5:9] = layout
    have = np.ones(len(CHANNELS), dtype=bool)
    if rgb_parent is not None:
        out[9] = vegetation(rgb_parent)
    else:
        have[9] = False
    out[10] = np.maximum(layout[1], layout[2])
    have[11] = False
    if elevation is None:
        have[3] = have[12] = False
    else:
        out[3], out[12] = elevation, hillshade(elevation, mpp)
    return out, have


def save(path: Path, p: np.ndarray, present: np.ndarray) -> None:
    """Write planes to ``path`` (compressed npz, atomically: a temp file, then ``os.replace``)."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, planes=p, present=present, names=np.array(PLANES))
    tmp.replace(path)


def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read (planes, present) written by :func:`save`; checks the plane names match."""
    with np.load(path) as z:
        names = tuple(str(n) for n in z["names"])
        if names != PLANES:
            raise ValueError(f"{path}: planes {names} are not {PLANES}")
        return z["planes"], z["present"]


def from_image(rgb: np.ndarray, mpp: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the stack for a user's image without layers (``orbis upscale``): colour water and
    vegetation, edges, lines; land cover and everything the layers alone know are missing."""
    p, present = planes(rgb)
    return stack(p, present, mpp)
