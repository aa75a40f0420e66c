"""The ``layout`` layer (``generator.geography.layout``): purity, seams, zoom consistency, rules.

Most tests run on the closed-form stub geography of ``tests/geo_stub.py`` (cropland lowlands,
forest hills, sea below 0 m, a river every 18°), so they need no data and are fast; the tests
marked slow go through the real ``earth`` geography (Natural Earth towns, real water).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

import morecantile
import numpy as np
import pytest
import shapely
from scipy import ndimage

from generator.geography import classes as C
from generator.geography import layout_classes as K
from generator.geography.grid import ground_mpp, lonlat_bounds, tile_rect
from generator.geography.layout import MARGIN, Layout, layout_of
from generator.planner import Rect
from tests.geo_stub import stub_geography

TMS = morecantile.tms.get("WebMercatorQuad")
#: roads whose place does not depend on the land cover (see layout_classes.NETWORK)
NET = list(K.NETWORK)
#: a stub lowland of cropland with villages and roads (found by looking: see the gallery script)
FARM = (-108.25, 20.5)


@pytest.fixture(scope="module")
def lay() -> Layout:
    return layout_of(stub_geography(7))


def _tile(lon: float, lat: float, z: int) -> morecantile.Tile:
    return TMS.tile(lon, lat, z)


def test_classes_are_the_layer_and_ids_are_known(lay):
    t = _tile(*FARM, 14)
    ch = lay.channels(14, tile_rect(14, t.x, t.y))
    assert ch.shape == (4, 256, 256) and ch.dtype == np.uint8
    assert ch[0].max() < len(K.LAYOUT)
    assert np.array_equal(ch[0], lay.geo.tile("layout", 14, t.x, t.y))
    assert np.array_equal(ch[2] > 0, np.isin(ch[0], list(K.ROADS)))
    assert np.array_equal(ch[3] > 0, ch[0] == K.BUILDING)
    assert set(np.unique(ch[1])) <= {0, 255}
    # farmland here: parcels with boundaries, and a road
    assert (ch[0] == K.FIELD).mean() > 0.2
    assert ch[1].mean() > 1.0
    assert np.isin(ch[0], [K.ROAD, K.MAIN_ROAD, K.MOTORWAY, K.TRACK]).any()


@pytest.mark.parametrize("z", [12, 14, 16])
def test_overlapping_rects_agree(lay, z):
    t = _tile(*FARM, z)
    r = tile_rect(z, t.x, t.y)
    a = lay.channels(z, Rect(r.y0 - 40, r.x0 - 70, 300, 300))
    b = lay.channels(z, Rect(r.y0 + 100, r.x0 + 30, 200, 260))
    # the overlap: rows r.y0+100 .. r.y0+260, cols r.x0+30 .. r.x0+230
    sa = a[:, 140:300, 100:300]
    sb = b[:, 0:160, 0:200]
    assert np.array_equal(sa, sb)


def test_x_wraps_around_the_world(lay):
    z = 12
    w = (1 << z) * 256
    t = _tile(*FARM, z)
    r = tile_rect(z, t.x, t.y)
    assert np.array_equal(lay.channels(z, r), lay.channels(z, Rect(r.y0, r.x0 + w, r.h, r.w)))


def test_identical_in_another_process(lay):
    z = 15
    t = _tile(*FARM, z)
    code = (
        "import hashlib, sys; sys.path.insert(0, '.');"
        "from tests.geo_stub import stub_geography;"
        "from generator.geography.layout import layout_of;"
        "from generator.geography.grid import tile_rect;"
        f"ch = layout_of(stub_geography(7)).channels({z}, tile_rect({z}, {t.x}, {t.y}));"
        "print(hashlib.sha256(ch.tobytes()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = hashlib.sha256(lay.channels(z, tile_rect(z, t.x, t.y)).tobytes()).hexdigest()
    assert out.stdout.strip() == here


def test_order_does_not_matter():
    """A fresh layout asked for z16 then z12 gives what one asked z12 then z16 gives."""
    t12, t16 = _tile(*FARM, 12), _tile(*FARM, 16)
    a, b = Layout(stub_geography(7)), Layout(stub_geography(7))
    a16 = a.channels(16, tile_rect(16, t16.x, t16.y))
    a12 = a.channels(12, tile_rect(12, t12.x, t12.y))
    b12 = b.channels(12, tile_rect(12, t12.x, t12.y))
    b16 = b.channels(16, tile_rect(16, t16.x, t16.y))
    assert np.array_equal(a12, b12) and np.array_equal(a16, b16)


def test_another_seed_another_layout():
    t = _tile(*FARM, 14)
    r = tile_rect(14, t.x, t.y)
    a = Layout(stub_geography(7)).channels(14, r)
    b = Layout(stub_geography(8)).channels(14, r)
    assert (a[1] != b[1]).mean() > 0.01


def offsets(lay: Layout, z: int, k: int, rect: Rect, which: str) -> np.ndarray:
    """Distances (zoom-z px) from each road pixel / parcel boundary at z to the same at z+k."""
    f = 1 << k
    fine = Rect(rect.y0 * f, rect.x0 * f, rect.h * f, rect.w * f)
    lo, hi = lay.channels(z, rect), lay.channels(z + k, fine)
    if which == "road":
        src, dst = np.isin(lo[0], NET), np.isin(hi[0], NET)
    else:  # boundaries between two parcels at z (not land-cover edges), any boundary at z+k
        m = MARGIN
        st = lay._state(z, rect)
        pid = np.where(np.isin(st.cls, list(K.PARCELS)), st.pid, 0)
        src = np.zeros(pid.shape, bool)
        src[:, :-1] |= (pid[:, :-1] != pid[:, 1:]) & (pid[:, :-1] > 0) & (pid[:, 1:] > 0)
        src[:-1, :] |= (pid[:-1, :] != pid[1:, :]) & (pid[:-1, :] > 0) & (pid[1:, :] > 0)
        src = src[m:-m, m:-m] & (lo[1] > 0)  # drawn as a boundary at z (not under a road)
        dst = hi[1] > 0
    src[-1, :] = src[:, -1] = False  # their boundary lies outside the fine rect
    if not src.any():
        return np.zeros(0)
    dist = ndimage.distance_transform_edt(~dst) / f  # in zoom-z pixels
    iy, ix = np.nonzero(src)
    # the fine pixels under a coarse pixel's centre
    fy = np.clip((iy * f + f // 2).astype(int), 0, dist.shape[0] - 1)
    fx = np.clip((ix * f + f // 2).astype(int), 0, dist.shape[1] - 1)
    return dist[fy, fx]


@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize(("z", "which"), [(12, "road"), (14, "field"), (14, "road")])
def test_roads_and_field_boundaries_keep_their_place_across_zooms(lay, z, k, which):
    t = _tile(*FARM, z)
    r = tile_rect(z, t.x, t.y)
    ch = lay.channels(z, r)
    want = np.isin(ch[0], NET) if which == "road" else np.isin(ch[0], list(K.PARCELS)) & (ch[1] > 0)
    iy, ix = np.nonzero(want[24:-24, 24:-24])  # a 48-px window around a road / boundary
    i = len(iy) // 2
    rect = Rect(r.y0 + int(iy[i]), r.x0 + int(ix[i]), 48, 48)
    d = offsets(lay, z, k, rect, which)
    assert len(d) > 10, "nothing to compare: pick another place"
    # an edge pixel at z is within 1 px of the same boundary at z+k (+ half a fine pixel)
    assert np.quantile(d, 0.99) <= 1.0 + 0.5 / (1 << k) + 1e-9
    assert d.max() <= 1.5


def test_roads_are_on_water_only_as_bridges(lay):
    # the stub's (21 km wide) river along 108°W beside the farmland: no road on water
    seen = np.zeros(2, bool)
    for z in (11, 12, 13):
        for lon in (-108.1, -108.0, -107.9):
            t = _tile(lon, FARM[1], z)
            r = tile_rect(z, t.x, t.y)
            ch = lay.channels(z, r)
            wet = lay.geo.window("water", z, r) != C.LAND
            roads = np.isin(ch[0], [K.TRACK, K.ROAD, K.MAIN_ROAD, K.MOTORWAY, K.RAIL])
            assert not roads[wet].any()
            assert not (ch[0] == K.BRIDGE)[~wet].any()
            seen |= [roads.any(), wet.any()]
    assert seen.all()


def test_links_over_open_water_are_dropped(lay):
    net = lay.net
    # two sites far apart on either side of open water would be linked by a line over the sea:
    # every kept link has at most 30 % of its samples on coarse water
    for ix in range(1 << 12 >> 1, (1 << 12 >> 1) + 4):
        for iy in range(2000, 2004):
            for _, pts in net.links(13, "road", ix, iy):
                wet = lay.coarse.sample(pts[:, 0], pts[:, 1], "wet")
                assert wet[1:-1].mean() <= 0.3


def test_nothing_small_at_coarse_zooms(lay):
    t = _tile(*FARM, 9)
    ch = lay.channels(9, tile_rect(9, t.x, t.y))
    assert not np.isin(ch[0], [K.BUILDING, K.STREET, K.TRACK, K.HEDGE, K.ROAD]).any()


def test_features_are_geojson_in_lon_lat(lay):
    z = 14
    t = _tile(*FARM, z)
    doc = lay.features(z, t.x, t.y)
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) > 5
    w, s, e, n = lonlat_bounds(z, tile_rect(z, t.x, t.y))
    kinds = set()
    for f in doc["features"]:
        assert f["type"] == "Feature" and f["properties"]["kind"] in K.KINDS
        kinds.add(f["properties"]["kind"])
        g = shapely.geometry.shape(f["geometry"])
        assert g.is_valid and not g.is_empty
        x0, y0, x1, y1 = g.bounds
        assert w - 1e-6 <= x0 <= x1 <= e + 1e-6 and s - 1e-6 <= y0 <= y1 <= n + 1e-6
    assert "field" in kinds and kinds & {"road", "main_road", "motorway", "track"}


# ---- the real earth ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def earth() -> Layout:
    from generator.geography import make_geography

    return layout_of(make_geography("earth", 0))


@pytest.mark.slow
def test_earth_layout_across_the_antimeridian(earth):
    """Chukotka's tiles either side of ±180° (their margins cross it): the layout's land
    cover read there asked for a 64 GiB noise lattice before (a 500 at z12 and finer), and the
    two sides of the meridian meet: the same layout where their margins overlap."""
    z = 12
    a, b = _tile(-179.99, 65.5, z), _tile(179.99, 65.5, z)
    assert (a.x, b.x) == (0, (1 << z) - 1) and a.y == b.y
    left = earth.state(z, tile_rect(z, b.x, b.y)).cls  # tile plus the layout's margin
    right = earth.state(z, tile_rect(z, a.x, a.y)).cls
    m = left.shape[1] - 256 - (left.shape[1] - 256) // 2  # the margin each side
    np.testing.assert_array_equal(left[:, -2 * m :], right[:, : 2 * m])
    assert (earth.channels(z, tile_rect(z, a.x, a.y))[0] != 0).any()


@pytest.mark.slow
def test_earth_buildings_only_in_settlements_at_2_m_per_px(earth):
    lon, lat = 2.35, 48.857  # Paris
    for z in (15, 16, 17):
        t = _tile(lon, lat, z)
        r = tile_rect(z, t.x, t.y)
        ch = earth.channels(z, r)
        mpp = float(ground_mpp(z, r).mean())
        house = ch[0] == K.BUILDING
        if mpp > 2.0:
            assert not house.any()
        else:
            assert house.mean() > 0.05  # a city: many buildings
            lc = earth.geo.window("landcover", z, r)
            assert (lc[house] == C.URBAN).mean() > 0.99  # (the rest: village outlines)
    doc = earth.features(17, *_tile(lon, lat, 17)[:2])
    assert sum(f["properties"]["kind"] == "building" for f in doc["features"]) > 20


@pytest.mark.slow
def test_earth_roads_cross_the_seine_on_bridges(earth):
    t = _tile(2.30, 48.86, 13)  # Paris: main roads and motorways cross the Seine
    r = tile_rect(13, t.x, t.y)
    ch = earth.channels(13, r)
    wet = earth.geo.window("water", 13, r) != C.LAND
    bridge = ch[0] == K.BRIDGE
    assert bridge.any() and wet[bridge].all()
    assert not np.isin(ch[0][wet], [K.ROAD, K.MAIN_ROAD, K.MOTORWAY, K.RAIL, K.TRACK]).any()


@pytest.mark.slow
def test_earth_farmland_has_parcels_and_roads(earth):
    t = _tile(10.9, 45.05, 13)  # the Po valley
    ch = earth.channels(13, tile_rect(13, t.x, t.y))
    assert np.isin(ch[0], list(K.PARCELS)).mean() > 0.5
    assert (ch[2] > 0).any()
