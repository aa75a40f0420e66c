"""The imagery follows the geography's water (generator.follow), on a small analytic geography.

The stub source here is a test geography (a lake disc, a sea west of a meridian and a river along
a parallel), not a stand-in for a service: the real earth and planet sources have their own tests.
"""

from __future__ import annotations

import numpy as np
import pytest

from generator.follow import PARENT_MARGIN, WaterFollower, is_water, waterness
from generator.geography import classes, grid
from generator.geography.layers import Geography
from generator.planner import Rect


class LakeSource:
    """Water: a 15 km lake at (9.25 E, 45.95 N), sea west of 8 E, a 300 m river along 45.5 N."""

    identity = {"test": "lake"}

    def _dist(self, z: int, rect: Rect) -> np.ndarray:
        lon, lat = grid.lonlat(z, rect)
        dx = (lon[None, :] - 9.25) * np.cos(np.radians(46.0)) * 111e3
        dy = (lat[:, None] - 45.95) * 111e3
        lake = 15e3 - np.hypot(dx, dy)
        sea = (8.0 - lon[None, :]) * 77e3 + 0.0 * lat[:, None]
        return np.maximum(lake, sea).astype(np.float32)

    def water(self, z: int, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
        d = self._dist(z, rect)
        return np.where(d > 0, classes.LAKE, classes.LAND).astype(np.uint8), d

    def rivers(self, z: int, rect: Rect) -> np.ndarray:
        lon, lat = grid.lonlat(z, rect)
        dist = np.abs(lat[:, None] - 45.5) * 111e3 + 0.0 * lon[None, :]
        mpp = grid.ground_mpp(z, rect)[:, None]
        # the share of each pixel's row span that the 300 m wide river covers
        overlap = np.minimum(dist + mpp / 2, 150.0) - np.maximum(dist - mpp / 2, -150.0)
        return np.clip(overlap / mpp, 0.0, 1.0).astype(np.float32)

    def elevation(self, z: int, rect: Rect) -> np.ndarray:
        return np.zeros((rect.h, rect.w), np.float32)

    def landcover(self, z: int, rect: Rect) -> np.ndarray:
        return np.full((rect.h, rect.w), classes.GRASSLAND, np.uint8)


@pytest.fixture(scope="module")
def follower() -> WaterFollower:
    return WaterFollower(Geography("test", LakeSource()))


def _land_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Green-brown land texture in [-1, 1], (3, h, w)."""
    rng = np.random.default_rng(seed)
    base = np.array([70, 80, 40], np.float32)[:, None, None]
    img = base + rng.normal(0, 12, (3, h, w)).astype(np.float32)
    return img / 127.5 - 1.0


def _to255(img: np.ndarray) -> np.ndarray:
    return (img + 1.0) * 127.5


def test_colour_rule_on_blue_marble_colours():
    rgb = np.array(
        [[10, 26, 60], [27, 69, 121], [22, 35, 9], [180, 146, 108], [245, 247, 250], [57, 65, 29]],
        np.float32,
    ).T[:, :, None]
    assert is_water(rgb)[:, 0].tolist() == [True, True, False, False, False, False]
    assert waterness(rgb).min() >= 0.0 and waterness(rgb).max() <= 1.0


def test_land_image_gets_the_lake_and_keeps_the_land(follower):
    import mercantile

    t = mercantile.tile(9.25, 45.95, 10)
    rect = grid.tile_rect(10, t.x, t.y)
    m = PARENT_MARGIN
    parent = _land_image(128 + 2 * m, 128 + 2 * m, 1)
    src = _land_image(256, 256)
    out = follower.edit(10, rect, src, parent)
    water = follower.geography.window("water", 10, rect) > 0
    assert water.any() and (~water).any()
    pred = is_water(_to255(out))
    iou = (pred & water).sum() / (pred | water).sum()
    assert iou >= 0.95
    # land pixels that already looked like land are left alone
    keep = (follower.coverage(10, rect)[0] == 0) & (waterness(_to255(src)) == 0)
    assert keep.mean() > 0.1
    assert np.abs(out[:, keep] - src[:, keep]).max() < 1e-5


def test_edit_is_seamless_across_tiles(follower):
    """Two neighbour tiles edited separately equal one edit of both: the local colours come from
    the parent level around each pixel, not from the tile's own content."""
    import mercantile

    z = 9
    t = mercantile.tile(9.1, 45.9, z)
    m = PARENT_MARGIN
    img = _land_image(256, 512, 3)
    # a parent level holding some water-coloured pixels, so local colours vary
    par = _land_image(128 + 2 * m, 256 + 2 * m, 4)
    par[:, 40:90, 60:200] = np.array([20, 40, 90], np.float32)[:, None, None] / 127.5 - 1
    both = follower.edit(z, Rect(t.y * 256, t.x * 256, 256, 512), img, par.copy())
    left = follower.edit(
        z, Rect(t.y * 256, t.x * 256, 256, 256), img[:, :, :256], par[:, :, : 128 + 2 * m]
    )
    right = follower.edit(
        z, Rect(t.y * 256, t.x * 256 + 256, 256, 256), img[:, :, 256:], par[:, :, 128:]
    )
    assert np.abs(np.concatenate([left, right], axis=2) - both).max() < 1e-4


def test_rivers_are_painted_once_resolved(follower):
    import mercantile

    for z, painted in ((6, False), (13, True)):
        t = mercantile.tile(12.5, 45.5, z)
        rect = grid.tile_rect(z, t.x, t.y)
        out = follower.edit(z, rect, _land_image(256, 256), _land_image(160, 160, 5))
        assert bool(is_water(_to255(out)).any()) is painted, z


def test_world_imagery_follows_the_layer(tiny_model, tmp_path):
    """A world rendered with the follower: water pixels where the layer has water."""
    import mercantile

    from generator.world import World
    from tests.helpers import CONFIG_DIR, write_world

    text = (CONFIG_DIR / "worlds" / "earth.toml").read_text()
    write_world(tmp_path, "earth", text.replace("[model]", '[geography]\nkind = "none"\n\n[model]'))
    w = World.load("earth", config_dir=tmp_path, model=tiny_model)
    geo = Geography("test", LakeSource())
    w.pyramid.follower = WaterFollower(geo)
    t = mercantile.tile(9.25, 45.95, 6)
    arr = w.tile_array(6, t.x, t.y)
    water = geo.tile("water", 6, t.x, t.y) > 0
    pred = is_water(arr.transpose(2, 0, 1).astype(np.float32))
    assert water.any()
    assert (pred & water).sum() / (pred | water).sum() >= 0.9


def test_coverage_read_from_a_context_rect_is_the_same(follower):
    import mercantile

    t = mercantile.tile(9.25, 45.95, 11)
    rect = grid.tile_rect(11, t.x, t.y)
    context = Rect(rect.y0, rect.x0, 288, 288)
    a = follower.coverage(11, rect)
    b = follower.coverage(11, rect, context)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert 0 < a[0].mean() < 1


def test_earth_water_kind_alone_equals_the_kind_with_distance():
    """The cheap kind-only path of the water layer gives the same pixels as the full one."""
    import mercantile

    from generator.geography.earth import EarthGeography

    geo = EarthGeography(20261123)
    for z, (lon, lat) in ((9, (9.26, 46.0)), (12, (18.6, 59.35)), (15, (-5.45, 36.0))):
        t = mercantile.tile(lon, lat, z)
        rect = Rect(t.y * 256 + 7, t.x * 256 - 13, 288, 288)
        kind_only = geo.water_kind(z, rect)
        assert np.array_equal(kind_only, geo.water(z, rect)[0]), z
        assert (kind_only != classes.LAND).any() or z == 15


def _edit_numpy(follower, z, rect, img, parent, context=None):
    """The edit in its numpy form (before it was compiled): the compiled one must equal it."""
    from generator.follow import (
        LAND_RGB,
        MIN_COVERAGE,
        OCEAN_RGB,
        RIVER_RGB,
        WATER_FLATTEN,
        local_colour_up,
    )

    cov, river_share = follower.coverage(z, rect, context)
    cov = np.where(cov >= MIN_COVERAGE, cov, 0.0).astype(np.float32)
    px = _to255(img.astype(np.float32))
    w = waterness(px)
    if not ((cov > 0) | (w > 0)).any():
        return img.astype(np.float32)
    par = _to255(parent.astype(np.float32))
    wpar = waterness(par)
    m = (parent.shape[1] - rect.h // 2) // 2
    h, wd = rect.h, rect.w
    if (cov > 0).any():
        water_c = local_colour_up(par, wpar, OCEAN_RGB, h, wd, m)
    else:
        water_c = np.broadcast_to(OCEAN_RGB[:, None, None], (3, h, wd))
    if (cov < 1).any():
        land_c = local_colour_up(par, 1.0 - wpar, LAND_RGB, h, wd, m)
    else:
        land_c = np.broadcast_to(LAND_RGB[:, None, None], (3, h, wd))
    water_c = np.where(waterness(water_c)[None] >= 0.9, water_c, OCEAN_RGB[:, None, None])
    land_c = np.where(waterness(land_c)[None] <= 0.1, land_c, LAND_RGB[:, None, None])
    water_c = water_c + (RIVER_RGB[:, None, None] - water_c) * river_share[None]
    to_water = px + (water_c - px) * np.maximum(1.0 - w, WATER_FLATTEN)[None]
    to_land = px + (land_c - px) * w[None]
    px = cov[None] * to_water + (1.0 - cov[None]) * to_land
    return (px / 127.5 - 1.0).astype(np.float32)


@pytest.mark.parametrize(
    "z,lon,lat,margin",
    [
        (10, 9.25, 45.95, PARENT_MARGIN),
        (9, 8.0, 45.9, PARENT_MARGIN),
        (13, 12.5, 45.5, 16),
        (12, 9.25, 45.95, 12),
        (14, 9.40, 45.95, PARENT_MARGIN),
        (11, 20.0, 10.0, PARENT_MARGIN),
        (12, 7.0, 45.9, PARENT_MARGIN),  # all sea: no land colour
    ],
)
def test_compiled_edit_equals_its_numpy_form_bit_for_bit(follower, z, lon, lat, margin):
    """Lake, sea, river, dry land, shore: the compiled edit is the numpy form's float32 bits,
    on windows (padded parent, odd sizes) and tiles, with water-coloured parent patches (local
    colours that vary) and water-looking pixels on land."""
    import mercantile

    from generator.follow import pad_parent

    t = mercantile.tile(lon, lat, z)
    rng = np.random.default_rng(z)
    for h, w in ((256, 256), (288, 288)):
        rect = Rect(t.y * 256, t.x * 256, h, w)
        par = _land_image(h // 2 + 2 * margin, w // 2 + 2 * margin, z + h)
        par[:, 10:40, 20:70] = np.array([20, 40, 90], np.float32)[:, None, None] / 127.5 - 1
        img = _land_image(h, w, z + 2 * h)
        img[:, 100:140, 30:90] = np.array([15, 30, 80], np.float32)[:, None, None] / 127.5 - 1
        img += rng.normal(0, 0.02, img.shape).astype(np.float32)
        for parent in (par, pad_parent(par[:, margin:-margin, margin:-margin], margin)):
            got = follower.edit(z, rect, img, parent)
            ref = _edit_numpy(follower, z, rect, img, parent)
            assert got.dtype == np.float32 and got.shape == ref.shape
            assert np.array_equal(got.view(np.uint32), ref.view(np.uint32)), (z, h, margin)


def test_compiled_colour_rule_equals_waterness():
    from generator.follow_kernel import waterness255

    rng = np.random.default_rng(7)
    rgb = rng.uniform(-5, 260, (3, 97, 131)).astype(np.float32)
    rgb[:, :20] = np.rint(rgb[:, :20])  # integer levels: ties of the clipped ramps
    assert np.array_equal(waterness255(rgb).view(np.uint32), waterness(rgb).view(np.uint32))
