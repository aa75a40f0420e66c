"""The ``planet`` geography: pure, seamless, zoom-consistent layers that agree with the base.

Most tests use a small world (base zoom 2: a 1024² continent map, rivers routed on 512²) so they
run in seconds; the base-zoom-4 world of ``config/worlds/planet.toml`` is measured by
``bench/geography_planet.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from generator.base import ContinentsBase
from generator.geography import classes, fractal
from generator.geography.grid import grid_width, tile_rect
from generator.geography.planet_noise import fbm_uv, value_noise_uv
from generator.planner import Rect

SEED, BZ = 3, 2

# sha256 of ContinentsBase(seed, zoom).image() before fields() was factored out of it
BASE_DIGESTS = {
    (3, 2): "c2948556142b76a28023719f8f86db55115ff9b712526e93d3fd705874fbff9a",
    (11, 3): "7ff5f906a16e51f1383e51fdd30f3d425834dbb2bef83c0ad5280d49981501ff",
    (7, 4): "0e5bc240788cb79c9a9157657484b5c0dfc0d4a512cae131f8856a7c3cff468c",
}


@pytest.fixture(scope="module")
def geo(tmp_path_factory):
    from generator.geography.planet import PlanetGeography

    old = os.environ.get("ORBIS_DATA_CACHE")
    os.environ["ORBIS_DATA_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    g = PlanetGeography(SEED, base_zoom=BZ)
    _ = g.network  # route now, inside the temporary cache
    yield g
    if old is None:
        os.environ.pop("ORBIS_DATA_CACHE", None)
    else:
        os.environ["ORBIS_DATA_CACHE"] = old


def _layers(g, z, rect):
    kind, dist = g.water(z, rect)
    return {
        "kind": kind,
        "dist": dist,
        "rivers": g.rivers(z, rect),
        "elevation": g.elevation(z, rect),
        "landcover": g.landcover(z, rect),
    }


def _land_tile(g, z):
    """Return (x, y) of a zoom-z tile under the middle of the largest river's course."""
    net = g.network
    s = grid_width(z) / net.m
    i = int(np.argmax(net.upa * (net.down >= 0)))
    return int((net.x0[i] + 0.5) * s) // 256, int((net.y0[i] + 0.5) * s) // 256


# ---------------------------------------------------------------- base level


@pytest.mark.parametrize("seed,zoom", [(3, 2), (11, 3)])
def test_base_bytes_unchanged(seed, zoom):
    img = ContinentsBase(seed, zoom).image()
    assert hashlib.sha256(img.tobytes()).hexdigest() == BASE_DIGESTS[(seed, zoom)]


@pytest.mark.slow
def test_base_bytes_unchanged_planet_world():
    img = ContinentsBase(7, 4).image()
    assert hashlib.sha256(img.tobytes()).hexdigest() == BASE_DIGESTS[(7, 4)]


def test_base_fields_are_what_the_palette_colours():
    b = ContinentsBase(SEED, BZ)
    f = b.fields()
    rgb = np.clip(np.rint(b._colour(f.height, f.moisture, f.alat)), 0, 255).astype(np.uint8)
    assert (rgb == b.image()).all()


# ---------------------------------------------------------------- fast noise


@pytest.mark.parametrize("z,rect", [(9, Rect(5000, 7000, 40, 70)), (3, Rect(-5, 2000, 30, 100))])
def test_fast_noise_is_fractal_noise(z, rect):
    u, v = fractal.uv(z, rect)
    for lv in (1, 5, z + 3, z + 7):
        assert np.abs(value_noise_uv(5, lv, u, v) - fractal.value_noise(5, lv, u, v)).max() < 1e-5
    ref = fractal.fbm(5, u, v, range(3, z + 7), 0.5, ridged=True)
    assert np.abs(fbm_uv(5, u, v, range(3, z + 7), 0.5, ridged=True) - ref).max() < 1e-4


# ---------------------------------------------------------------- contract


@pytest.mark.parametrize("dz", [-1, 0, 3, 7])
def test_seamless_overlapping_rects(geo, dz):
    z = BZ + dz
    tx, ty = _land_tile(geo, z)
    a = Rect(ty * 256 - 20, tx * 256 - 30, 200, 180)
    b = Rect(ty * 256 + 40, tx * 256 + 50, 150, 170)
    la, lb = _layers(geo, z, a), _layers(geo, z, b)
    oy, ox = b.y0 - a.y0, b.x0 - a.x0
    for name in la:
        part_a = la[name][oy:, ox:]
        part_b = lb[name][: part_a.shape[0], : part_a.shape[1]]
        np.testing.assert_array_equal(part_a, part_b, err_msg=name)


def test_seamless_across_the_antimeridian(geo):
    z = BZ + 2
    w = grid_width(z)
    a = _layers(geo, z, Rect(300, w - 64, 64, 128))
    b = _layers(geo, z, Rect(300, 0, 64, 64))
    for name in a:
        np.testing.assert_array_equal(a[name][:, 64:], b[name], err_msg=name)


def test_dtypes_and_ranges(geo):
    z = BZ + 5
    lay = _layers(geo, z, tile_rect(z, *_land_tile(geo, z)))
    assert lay["kind"].dtype == np.uint8 and set(np.unique(lay["kind"])) <= {0, 1, 2}
    assert lay["dist"].dtype == np.float32 and lay["elevation"].dtype == np.float32
    r = lay["rivers"]
    assert r.dtype == np.float32 and r.min() >= 0 and r.max() <= 1 and r.max() > 0.5
    assert lay["landcover"].dtype == np.uint8 and lay["landcover"].max() < len(classes.LANDCOVER)
    water = lay["kind"] != classes.LAND
    assert ((lay["dist"] > 0) == water).all()
    assert (lay["elevation"][lay["kind"] == classes.OCEAN] < 0).all()
    assert (lay["elevation"][lay["kind"] == classes.LAND] >= 0).all()
    assert (lay["landcover"][water] == classes.WATER).all()


def test_zoom_consistency(geo):
    """A pixel vs the 2×2 block of the next zoom (tolerances stated here)."""
    for z in (BZ - 1, BZ, BZ + 2, BZ + 5):
        tx, ty = _land_tile(geo, z)
        parent = _layers(geo, z, Rect(ty * 256, tx * 256, 128, 128))
        child = _layers(geo, z + 1, Rect(ty * 512, tx * 512, 256, 256))

        def mean2(a):
            return a.reshape(128, 2, 128, 2).astype(np.float64).mean(axis=(1, 3))

        de = np.abs(mean2(child["elevation"]) - parent["elevation"])
        if z < BZ:  # coarser than the base: exact means
            assert de.max() < 0.05
        else:
            assert np.median(de) < 40.0 and np.quantile(de, 0.95) < 400.0, z
        sea_c = mean2(child["kind"] == classes.OCEAN) >= 0.5
        agree = (sea_c == (parent["kind"] == classes.OCEAN)).mean()
        assert agree >= 0.97, (z, agree)
        dr = np.abs(mean2(child["rivers"]) - parent["rivers"])
        assert dr.mean() < 0.02, z
        major = [
            np.bincount(child["landcover"][i::2, j::2].ravel(), minlength=13)
            for i in (0, 1)
            for j in (0, 1)
        ]
        assert np.sum(major) > 0
        same = (
            sum(
                (child["landcover"][i::2, j::2] == parent["landcover"]).mean()
                for i in (0, 1)
                for j in (0, 1)
            )
            / 4
        )
        assert same >= 0.8, (z, same)


def test_coast_is_the_base_coast(geo):
    """Sea in the base tiles' colours (blue) vs the water layer at the base zoom: IoU ≥ 0.98."""
    n = 1 << BZ
    inter = union = 0
    for ty in range(n):
        for tx in range(n):
            rgb = geo.base.tile(tx, ty).astype(int)
            sea_img = (rgb[..., 2] > rgb[..., 0] + 15) & (rgb[..., 2] > rgb[..., 1])
            kind, _ = geo.water(BZ, tile_rect(BZ, tx, ty))
            # ice-covered sea is white in the base: compare below the ice latitudes
            rows = fractal.uv(BZ, tile_rect(BZ, tx, ty))[1]
            ok = (np.abs(rows - 0.5) < 0.3)[:, None] & np.ones((1, 256), bool)
            sea_w = kind == classes.OCEAN
            inter += (sea_img & sea_w & ok).sum()
            union += ((sea_img | sea_w) & ok).sum()
    assert inter / union >= 0.98


def test_refined_coast_stays_near_the_base_coast(geo):
    z = BZ + 3
    f = 1 << (z - BZ)
    tx, ty = _land_tile(geo, BZ)
    rect = tile_rect(BZ, tx, ty)
    fine = Rect(rect.y0 * f, rect.x0 * f, 256 * f, 256 * f)
    kind, _ = geo.water(z, fine)
    frac = (kind == classes.OCEAN).reshape(256, f, 256, f).mean(axis=(1, 3))
    base_sea = geo.fields.h[rect.y0 : rect.y0 + 256, rect.x0 : rect.x0 + 256] < 0
    assert ((frac >= 0.5) == base_sea).mean() >= 0.99


# ---------------------------------------------------------------- rivers


def test_network_runs_downhill_to_the_sea(geo):
    net = geo.network
    assert len(net.x0) > 100
    assert (net.bed1 <= net.bed0 + 1e-3).all()
    has = net.down >= 0
    assert np.allclose(net.bed1[has], net.bed0[net.down[has]], atol=1e-3)
    mouths = ~has
    assert mouths.sum() > 5
    # every mouth ends in the sea (a routing cell whose base pixels are mostly sea)
    zr = geo.routing_zoom
    sea = np.zeros((net.m, net.m), bool)
    for ty in range(net.m // 256):
        for tx in range(net.m // 256):
            r = tile_rect(zr, tx, ty)
            sea[r.y0 : r.y0 + 256, r.x0 : r.x0 + 256] = geo._height(zr, r) < 0
    xe = net.x1[mouths].astype(int) % net.m
    ye = net.y1[mouths].astype(int)
    assert sea[ye, xe].all()
    assert (net.bed1[mouths] == 0).all()
    # and upstream of a mouth there is land
    assert not sea[net.y0[mouths].astype(int), net.x0[mouths].astype(int) % net.m].any()


@pytest.mark.parametrize("dz", [3, 6])
def test_river_pixels_run_downhill(geo, dz):
    """Elevation of the river pixels along each polyline never rises downstream (tol 0.01 m)."""
    z = BZ + dz
    net = geo.network
    tx, ty = _land_tile(geo, z)
    rect = Rect(ty * 256 - 128, tx * 256 - 128, 512, 512)
    e = geo.elevation(z, rect)
    rq = geo._get(z, rect, "rq")
    kind, _ = geo.water(z, rect)
    on = rq["on_river"] & (kind == classes.LAND)
    assert on.sum() > 50
    seg, t, ev = rq["seg"][on], rq["t"][on], e[on]
    length = np.hypot(net.x1 - net.x0, net.y1 - net.y0)
    checked = 0
    for s in np.unique(seg):
        # this segment and those downstream of it, with the distance along the chain
        chain = [int(s)]
        while net.down[chain[-1]] >= 0 and len(chain) < 400:
            chain.append(int(net.down[chain[-1]]))
        start = dict(
            zip(chain, np.concatenate([[0.0], np.cumsum(length[chain])[:-1]]), strict=True)
        )
        sel = np.isin(seg, chain)
        pos = np.array([start[int(q)] for q in seg[sel]]) + t[sel] * length[seg[sel]]
        k = np.argsort(pos, kind="stable")  # upstream → downstream
        rises = np.diff(ev[sel][k].astype(np.float64))
        assert rises.max(initial=0.0) <= 0.01, (s, rises.max())
        checked += len(k)
    assert checked > 50


def test_rivers_show_as_water_in_the_facade(geo):
    from generator.geography.layers import Geography

    facade = Geography("planet", geo)
    z = BZ + 6
    w = facade.tile("water", z, *_land_tile(geo, z))
    assert (w == classes.RIVER).sum() > 0


# ---------------------------------------------------------------- agreement with the palette


def test_landcover_agrees_with_the_base_palette(geo):
    f = geo.fields
    n = f.h.shape[0]
    lc = np.concatenate(
        [
            np.concatenate([geo.landcover(BZ, tile_rect(BZ, x, y)) for x in range(n // 256)], 1)
            for y in range(n // 256)
        ],
        0,
    )
    alat = ContinentsBase(SEED, BZ).fields().alat
    land = f.h >= 0
    ice = ((alat - 74 + 4 * f.h) / 4 > 0.5) & land
    dry = np.clip(0.38 - 0.35 * f.moist + 0.2 * np.exp(-(((alat - 25) / 12) ** 2)), 0, 1)
    desert = (dry > 0.75) & land & ~ice & (f.h < 1.8)
    assert ice.sum() > 0 and desert.sum() > 0
    assert (lc[ice] == classes.ICE).mean() > 0.95
    assert (lc[desert] == classes.DESERT).mean() > 0.9


# ---------------------------------------------------------------- determinism

_CHILD = """
import hashlib, json, sys
from generator.geography.planet import PlanetGeography
from generator.geography.grid import tile_rect
g = PlanetGeography(int(sys.argv[1]), base_zoom=int(sys.argv[2]))
out = {}
for z, x, y in json.loads(sys.argv[3]):
    r = tile_rect(z, x, y)
    k, d = g.water(z, r)
    for name, a in (("k", k), ("d", d), ("r", g.rivers(z, r)), ("e", g.elevation(z, r)),
                    ("l", g.landcover(z, r))):
        out[f"{z}/{x}/{y}/{name}"] = hashlib.sha256(a.tobytes()).hexdigest()
print(json.dumps(out))
"""


@pytest.mark.slow
def test_identical_across_processes(geo, tmp_path):
    tiles = [(BZ - 1, 0, 1), (BZ, 1, 1), (BZ + 4, *_land_tile(geo, BZ + 4))]
    outs = []
    for i in range(2):
        env = dict(os.environ, ORBIS_DATA_CACHE=str(tmp_path / f"c{i}"), OMP_NUM_THREADS="1")
        p = subprocess.run(
            [sys.executable, "-c", _CHILD, str(SEED), str(BZ), json.dumps(tiles)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        outs.append(json.loads(p.stdout))
    assert outs[0] == outs[1]
    here = {}
    for z, x, y in tiles:
        r = tile_rect(z, x, y)
        here[f"{z}/{x}/{y}/e"] = hashlib.sha256(geo.elevation(z, r).tobytes()).hexdigest()
    assert all(outs[0][k] == v for k, v in here.items())


def test_river_cache_is_reused_and_rebuilt_when_corrupt(geo):
    from generator.geography.planet import PlanetGeography

    path = geo._cache_path()
    assert path.exists()
    again = PlanetGeography(SEED, base_zoom=BZ)
    np.testing.assert_array_equal(again.network.x0, geo.network.x0)
    path.write_bytes(b"not an npz")
    rebuilt = PlanetGeography(SEED, base_zoom=BZ)
    np.testing.assert_array_equal(rebuilt.network.bed0, geo.network.bed0)
    assert path.stat().st_size > 1000


def test_shares_the_worlds_base_level(geo):
    from generator.geography.planet import PlanetGeography

    shared = PlanetGeography(SEED, base_zoom=BZ, base=geo.base)
    assert shared.base is geo.base and shared.fields.h is geo.fields.h  # computed once
    with pytest.raises(ValueError):
        PlanetGeography(SEED + 1, base_zoom=BZ, base=geo.base)
