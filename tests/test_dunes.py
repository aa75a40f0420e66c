"""Sand dunes of the ``earth`` elevation (generator/geography/dunes_earth.py)."""

from __future__ import annotations

import mercantile
import numpy as np
import pytest

from generator.geography import dunes_earth as D
from generator.geography import relief
from generator.geography.grid import lonlat, tile_rect
from generator.metrics_realism import structure_tensor
from generator.planner import Rect

SEED = 12345
RUB = (45.2, 24.6)  # central Arabia (the Nafud ad-Dahy): a sand sea of the noise field


def _share(z: int, rect: Rect) -> np.ndarray:
    lon, lat = lonlat(z, rect)
    rough = relief.roughness(lon, lat)
    base = relief.sample(lon, lat, relief.mip_for_pixel(360.0 / (256 << z)))
    seed = (0 * 0x9E3779B1 + 0xE1E7) & 0xFFFFFFFF  # the earth world's (seed 0) noise seed
    return D.sand_share(seed, z, rect, lon, lat, rough, base)


def _tile(lon: float, lat: float, z: int) -> Rect:
    t = mercantile.tile(lon, lat, z)
    return tile_rect(z, t.x, t.y)


@pytest.mark.parametrize(
    "place", [(10.2, 45.05), (7.9, 46.5), (31.0, 30.8), (-60.0, -3.0), (-38.5, 72.6)], ids=str
)
def test_no_sand_outside_hyper_arid_flats(place: tuple[float, float]) -> None:
    """The Po plain (humid), the Alps (rough), the Nile delta (Blue Marble's irrigated land),
    the Amazon and Greenland's summit plateau (arid and flat, but an ice cap) have no dunes."""
    assert _share(10, _tile(*place, 10)).max() == 0.0


def test_sand_in_a_sand_sea() -> None:
    w = _share(10, _tile(*RUB, 10))
    assert w.min() > 0.9


def test_dunes_are_ridges_of_bounded_height() -> None:
    """Where the weight is 1 the dunes are oriented ridges (structure-tensor coherence well
    above isotropic relief), within their heights, about zero mean, and fade out where their
    wavelength is under FADE_PX[0] pixels."""
    z = 12
    r = _tile(*RUB, z)
    one = np.ones((r.h, r.w), np.float32)
    h = D.dunes(SEED, z, r, one)
    assert h.dtype == np.float32
    top = D.LINEAR_HEIGHT_M + D.CRESCENT_HEIGHT_M
    assert h.std() > 3.0 and np.abs(h).max() <= top
    assert abs(float(h.mean())) < 0.2 * top
    # oriented: at z11, where the linear dunes carry the relief, their gradients run one way
    # over 16 px (0.7; the plain's value-noise octaves read 0.17)
    r11 = _tile(*RUB, 11)
    h11 = D.dunes(SEED, 11, r11, np.ones((256, 256), np.float32))
    coh, energy, _ = structure_tensor(h11.astype(np.float64), 16.0)
    assert float((coh * energy).sum() / energy.sum()) > 0.5
    # at z8 (611 m pixels) the 1.6 km linear dunes are 2.6 px: all but faded out; at z7 gone
    r8 = _tile(*RUB, 8)
    h8 = D.dunes(SEED, 8, r8, np.ones((256, 256), np.float32))
    assert 0.0 < np.abs(h8).max() < 0.01 * np.abs(h).max()
    r7 = _tile(*RUB, 7)
    assert not D.dunes(SEED, 7, r7, np.ones((256, 256), np.float32)).any()
    assert not D.dunes(SEED, z, r, np.zeros((256, 256), np.float32)).any()


def test_dunes_are_the_same_whichever_rect_asks() -> None:
    z = 13
    r = _tile(*RUB, z)
    big = Rect(r.y0 - 100, r.x0 - 77, 456, 400)
    a = D.dunes(SEED, z, r, np.ones((r.h, r.w), np.float32))
    b = D.dunes(SEED, z, big, np.ones((big.h, big.w), np.float32))
    assert np.array_equal(a, b[100 : 100 + r.h, 77 : 77 + r.w])


def test_the_lee_face_is_steeper_than_the_stoss() -> None:
    """Crescentic dunes: along the wind the ground rises gently and falls steeply."""
    z = 15
    r = _tile(*RUB, z)
    linear, total = D.fields(SEED, z, r)
    h = total - linear  # the crescents alone
    gy, gx = np.gradient(h.astype(np.float64))
    # the northern trades blow towards the south-west: the slope along the wind
    a = D.wind_angle(np.array([RUB[1]]))[0]
    along = gx * np.cos(a) - gy * np.sin(a)  # rows run south, so −gy is the northward slope
    up, down = along[along > 0.01], -along[along < -0.01]
    assert len(up) > 1000 and len(down) > 200
    assert np.percentile(down, 90) > 2.0 * np.percentile(up, 90)


def test_the_elevation_layer_shows_dunes_and_names_them() -> None:
    from generator.geography.layers import make_geography

    geo = make_geography("earth", 0)
    assert geo.identity["source"]["elevation"]["dunes"] == D.VERSION  # type: ignore[index]
    t = mercantile.tile(*RUB, 11)
    e = geo.tile("elevation", 11, t.x, t.y).astype(np.float64)
    coh, energy, _ = structure_tensor(e, 16.0)
    assert float((coh * energy).sum() / energy.sum()) > 0.5


def test_dunes_are_zoom_consistent() -> None:
    """Where the linear dunes are drawn whole (z9–z11), a 2 × 2 block of the next zoom averages
    to its parent within 2 % of the local relief + 2 m, the layer's contract (their sharp crests
    make ≈ 1 m of it)."""
    from generator.geography.layers import make_geography

    geo = make_geography("earth", 0)
    for z in (9, 10, 11):
        t = mercantile.tile(*RUB, z)
        r = tile_rect(z, t.x, t.y)
        p = geo.window("elevation", z, r).astype(np.float64)
        k = geo.window("elevation", z + 1, Rect(r.y0 * 2, r.x0 * 2, 512, 512))
        k = k.astype(np.float64).reshape(256, 2, 256, 2).mean(axis=(1, 3))
        spread = float(np.percentile(p, 95) - np.percentile(p, 5)) + 10.0
        assert float((p - np.median(p)).std()) > 5.0  # the dunes are there
        assert np.mean(np.abs(k - p)) <= 0.02 * spread + 2.0


def test_crests_are_brighter_than_corridors() -> None:
    """The sand's brightness factor follows the linear dunes (crests brighter, corridors
    darker, within ±ALBEDO), is 1 where there are no dunes, and the earth source serves it."""
    from generator.geography.layers import make_geography

    z = 11
    r = _tile(*RUB, z)
    one = np.ones((r.h, r.w), np.float32)
    a = D.albedo(SEED, z, r, one)
    h = D.fields(SEED, z, r)[0]
    assert a.dtype == np.float32
    assert 1.0 - D.ALBEDO <= a.min() and a.max() <= 1.0 + D.ALBEDO + 1e-6
    assert a.max() - a.min() > D.ALBEDO
    assert np.corrcoef(a.ravel(), h.ravel())[0, 1] > 0.99
    assert np.all(D.albedo(SEED, z, r, np.zeros_like(one)) == 1.0)
    geo = make_geography("earth", 0)
    po = _tile(10.2, 45.05, z)
    assert np.all(geo.source.sand_albedo(z, po) == 1.0)  # type: ignore[attr-defined]
    assert geo.source.sand_albedo(z, r).std() > 0.01  # type: ignore[attr-defined]
