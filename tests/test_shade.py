"""The imagery is shaded by the relief (generator.shade), on a small analytic geography.

The stub source is a test geography (a round 2 km-high mountain, the sea west of a meridian, a
river along a parallel), not a stand-in for a service: the real sources have their own tests.
"""

from __future__ import annotations

import mercantile
import numpy as np
import pytest
import torch

from generator.geography import classes, grid
from generator.geography.layers import Geography
from generator.paint import Edits
from generator.planner import Rect
from generator.resample import up2
from generator.shade import WATER_MAX_Z, ReliefShader, factor, slopes, water_factor

PEAK = (9.25, 45.95)


class MountainSource:
    """A Gaussian mountain (2000 m, σ 6 km) at PEAK; the sea west of 9.0 E (bed −50 m)."""

    identity = {"test": "mountain"}

    def water(self, z: int, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = grid.lonlat(z, rect)
        d = (9.0 - lon[None, :]) * 77e3 + 0.0 * lat[:, None]
        return np.where(d > 0, classes.OCEAN, classes.LAND).astype(np.uint8), d.astype(np.float32)

    def rivers(self, z: int, rect: Rect) -> np.ndarray:
        lon, lat = grid.lonlat(z, rect)
        return (np.abs(lat[:, None] - 45.80) * 111e3 < 200.0).astype(np.float32) + 0.0 * lon

    def elevation(self, z: int, rect: Rect) -> np.ndarray:
        lon, lat = grid.lonlat(z, rect)
        dx = (lon[None, :] - PEAK[0]) * np.cos(np.radians(PEAK[1])) * 111e3
        dy = (lat[:, None] - PEAK[1]) * 111e3
        e = 2000.0 * np.exp(-(dx * dx + dy * dy) / (2 * 6e3**2))
        return np.where(lon[None, :] < 9.0, -50.0, e).astype(np.float32)

    def landcover(self, z: int, rect: Rect) -> np.ndarray:
        return np.full((rect.h, rect.w), classes.GRASSLAND, np.uint8)


@pytest.fixture(scope="module")
def shader() -> ReliefShader:
    return ReliefShader(Geography("test", MountainSource()))


def _grey(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (110 + rng.normal(0, 8, (3, h, w))).astype(np.float32) / 127.5 - 1.0


def test_flat_ground_keeps_factor_one():
    e = np.full((8, 8), 300.0, np.float32)
    f = factor(e, np.ones((8, 8), bool), np.full(8, 10.0, np.float32))
    np.testing.assert_allclose(f, 1.0, atol=1e-6)


def test_slope_facing_the_sun_is_brighter():
    """Ground rising to the south-east faces the north-west sun: brighter than flat; the
    opposite slope darker."""
    yy, xx = np.mgrid[0:8, 0:8].astype(np.float32)
    up_se = 5.0 * (xx + yy)  # rows run south: rising east and south
    dry, mpp = np.ones((8, 8), bool), np.full(8, 10.0, np.float32)
    assert factor(up_se, dry, mpp)[4, 4] > 1.1
    assert factor(-up_se, dry, mpp)[4, 4] < 0.9


def test_slopes_do_not_difference_across_water():
    """A shore pixel's slope is the land's: the drop to the sea bed is not differenced."""
    e = np.array([[-50.0, -50.0, 10.0, 10.0, 10.0]] * 3, np.float32)
    dry = e > 0
    gx, _ = slopes(e, dry, np.full(3, 10.0, np.float32))
    assert np.all(gx[:, 2:] == 0.0)


def _around_peak(z: int, half: int) -> Rect:
    """A (2 half)² rect of zoom z centred on the peak (even origin)."""
    px, py = mercantile.xy(*PEAK)
    size = grid.pixel_size(z)
    cx = int((px + grid.HALF_WORLD) / size) // 2 * 2
    cy = int((grid.HALF_WORLD - py) / size) // 2 * 2
    return Rect(cy - half, cx - half, 2 * half, 2 * half)


def _tile_rect(z: int, lon: float, lat: float, dx: int = 0) -> Rect:
    t = mercantile.tile(lon, lat, z)
    return grid.tile_rect(z, t.x + dx, t.y)


def test_gain_keeps_each_parent_pixel(shader):
    """Over each 2×2 block (a parent pixel) the gain averages to about 1: the parent is kept.
    At z5 (~3.4 km/px) the mountain spans a few pixels, so the level adds shading; at z12
    (~26 m/px) its smooth flank is a plane at this scale: nothing left to add there (the
    coarser levels shaded it)."""
    g = shader.gain(5, _tile_rect(5, *PEAK))[0]
    assert np.abs(g - 1.0).max() > 0.03  # the mountainside is shaded
    blocks = g.reshape(128, 2, 128, 2).mean((1, 3))
    assert np.abs(blocks - 1.0).max() < 0.05  # a parent pixel moves by < 5 % (> 32 dB)
    fine = shader.gain(12, _tile_rect(12, PEAK[0] + 0.03, PEAK[1]))[0]
    assert np.abs(fine - 1.0).max() < 0.01


def test_levels_add_up_to_the_shading_of_the_finest(shader):
    """Down a cascade that upsamples each parent bilinearly (as the parent correction keeps
    it), the levels' gains multiply up to the relief's shading at the finest level: each level
    adds its own band, none is counted twice."""
    z0 = 3  # the mountain (σ 6 km) is sub-pixel at z3 (~14 km/px): its shading is all added
    rect = _around_peak(z0, 2)  # ±27 km around the peak
    img = np.ones((4, 4), np.float32)
    for z in range(z0 + 1, z0 + 7):
        rect = Rect(2 * rect.y0, 2 * rect.x0, 2 * rect.h, 2 * rect.w)
        up = up2(torch.from_numpy(img)[None, None])[0, 0].numpy()
        img = up * shader.gain(z, rect)[0]
    ring = Rect(rect.y0 - 1, rect.x0 - 1, rect.h + 2, rect.w + 2)
    e = shader.geography.window("elevation", z, ring)
    f = factor(e, e > 0, grid.ground_mpp(z, ring).astype(np.float32))[1:-1, 1:-1]
    inner = (slice(16, -16), slice(16, -16))  # away from the test rect's clamped edges
    land = e[1:-1, 1:-1][inner] > 0  # the sea has its own light (its surface)
    a, b = np.log(img[inner])[land], np.log(f[inner])[land]
    assert np.corrcoef(a, b)[0, 1] > 0.9
    assert 0.5 < a.std() / b.std() < 1.2


def test_north_west_face_is_brighter_in_the_tile(shader):
    """At a zoom where the mountain spans many pixels, its north-west flank is brighter than
    its south-east flank in the shaded tile (the coarse shading accumulated over levels is
    checked through the world test; here one level's factor)."""
    z = 11
    rect = _around_peak(z, 128)
    ring = Rect(rect.y0 - 1, rect.x0 - 1, rect.h + 2, rect.w + 2)
    e = shader.geography.window("elevation", z, ring)
    assert e.max() > 1900.0  # the peak is in the rect
    f = factor(e, e > 0, grid.ground_mpp(z, ring).astype(np.float32))[1:-1, 1:-1]
    iy, ix = np.unravel_index(np.argmax(e[1:-1, 1:-1]), f.shape)
    assert f[iy - 60, ix - 60] > 1.05 > 0.95 > f[iy + 60, ix + 60]  # 4 km from the top


def test_rivers_are_not_shaded_and_water_has_its_own_light(shader):
    z = 12
    river = _tile_rect(z, PEAK[0] + 0.03, 45.80)
    rivers = shader.geography.window("rivers", z, river)
    g = shader.gain(z, river)
    on = rivers >= 1.0
    assert on.any()
    np.testing.assert_array_equal(g[:, on], 1.0)  # rivers: as they are
    # the open sea (far from its shore) gets its surface: gentle, the same in every channel
    sea = shader.gain(z, _tile_rect(z, 8.5, PEAK[1]))
    assert 0.01 < np.abs(np.log(sea)).mean() < 0.2 and np.abs(np.log(sea)).max() < 0.6
    np.testing.assert_allclose(sea[0], sea[2], rtol=1e-6)
    # past WATER_MAX_Z water keeps its parent's light exactly
    deep = shader.gain(WATER_MAX_Z + 1, _tile_rect(WATER_MAX_Z + 1, 8.9, PEAK[1]))
    np.testing.assert_array_equal(deep, 1.0)


def test_shallows_along_the_shore():
    """Within SHALLOW_M of the shore the water is lighter and greener; beyond it, and where
    the distance layer's cap is not past the band (very fine zooms), it is not."""
    z = 15
    rect = Rect(1000, 1000, 4, 64)
    mpp = np.full(4, 3.0, np.float32)
    dist = np.broadcast_to(np.arange(64, dtype=np.float32) * 3.0 - 6.0, (4, 64)).copy()
    f = water_factor(7, z, rect, dist, mpp)
    ratio = f / f.min(0, keepdims=True)  # the surface's brightness is the same per channel
    near, far = ratio[:, 0, 3], ratio[:, 0, 40]  # 3 m and 114 m from the shore
    assert near[1] > near[2] * 1.2 and near[0] > near[2] * 1.2
    np.testing.assert_allclose(far, 1.0, atol=1e-6)
    # a cap of 48 px × 0.2 m ≈ 10 m is not past a 24 m band: no shallows read from it
    fine = water_factor(7, z, rect, dist, np.full(4, 0.2, np.float32))
    np.testing.assert_allclose(fine / fine.min(0, keepdims=True), 1.0, atol=1e-6)


def test_only_finished_tiles_are_shaded(shader):
    z = 5
    rect = _tile_rect(z, *PEAK)
    img = _grey(256, 256)
    par = _grey(160, 160, 1)
    assert np.array_equal(shader.edit(z, rect, img, par), img)  # a window's conditioning
    out = shader.edit(z, rect, img, par, final=True)
    assert np.abs(out - img).max() > 0.03
    # Edits hands ``final`` to its editors
    both = Edits(shader).edit(z, rect, img, par, final=True)
    assert np.array_equal(both, out)


def test_shading_is_seamless_across_tiles(shader):
    """Two neighbour tiles shaded separately equal one shading of both."""
    z = 12
    left = _tile_rect(z, PEAK[0] + 0.03, PEAK[1])
    right = Rect(left.y0, left.x0 + 256, 256, 256)
    both = Rect(left.y0, left.x0, 256, 512)
    g = shader.gain(z, both)
    assert np.array_equal(np.concatenate([shader.gain(z, left), shader.gain(z, right)], 2), g)
    # and a tile read inside a larger context (its window) equals it read alone
    ctx = Rect(left.y0, left.x0, 288, 288)
    assert np.array_equal(shader.gain(z, left, ctx), shader.gain(z, left))


def test_world_hash_names_the_shading(tmp_path, tiny_model):
    from generator.world import World
    from tests.helpers import CONFIG_DIR, write_world

    text = (CONFIG_DIR / "worlds" / "earth.toml").read_text()
    write_world(tmp_path / "a", "earth", text)
    write_world(
        tmp_path / "b", "earth", text.replace("[model]", "[geography]\nshade = false\n\n[model]")
    )
    shaded = World.load("earth", tmp_path / "a", model=tiny_model)
    plain = World.load("earth", tmp_path / "b", model=tiny_model)
    assert shaded.identity["shade"] and "shade" not in plain.identity
    assert shaded.content_hash != plain.content_hash
