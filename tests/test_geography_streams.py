"""Procedural streams of the ``earth`` world (generator/geography/streams_earth.py).

Fast tests run the router on a synthetic terrain (an analytic slope with valleys down to a sea)
placed over real climate, so they need no elevation layer; one slow test runs the real layers.
"""

from __future__ import annotations

import subprocess
import sys

import mercantile
import numpy as np
import pytest

from generator.geography import streams_earth as S
from generator.geography.grid import tile_rect
from generator.planner import Rect

#: A humid place (the Black Forest), a desert (the Sahara, Köppen BWh), an ice cap (Greenland,
#: EF).
HUMID = (8.1, 48.0)
DESERT = (5.0, 26.0)
ICE = (-40.0, 72.0)


def _ref(lon: float, lat: float) -> tuple[int, int]:
    t = mercantile.tile(lon, lat, S.ZR)
    return t.x * S.CELL, t.y * S.CELL


def synthetic(lon: float, lat: float) -> S.EarthStreams:
    """Return streams on a terrain sloping south to a sea 700 px of ZR below (lon, lat), with
    valleys every 90 px and a small ripple (so paths wind and merge)."""
    gx0, gy0 = _ref(lon, lat)
    sea = gy0 + 700

    def elev(z: int, rect: Rect) -> np.ndarray:
        assert z == S.ZR
        y = np.arange(rect.y0, rect.y0 + rect.h, dtype=np.float64)[:, None]
        x = np.arange(rect.x0, rect.x0 + rect.w, dtype=np.float64)[None, :]
        e = 0.4 * (sea - y) + 25.0 * np.abs(np.sin((x - gx0) / 90.0 * np.pi))
        e += 1.5 * np.sin(x / 7.0) * np.cos(y / 5.0)
        return e.astype(np.float32)

    def water(z: int, rect: Rect) -> np.ndarray:
        y = np.arange(rect.y0, rect.y0 + rect.h)[:, None]
        return np.broadcast_to(y >= sea, (rect.h, rect.w)).copy()

    return S.EarthStreams(7, elev, water)


@pytest.fixture(scope="module")
def humid() -> S.EarthStreams:
    return synthetic(*HUMID)


def _rect(z: int, lon: float, lat: float, dy: int = 0, size: int = 256) -> Rect:
    t = mercantile.tile(lon, lat, z)
    r = tile_rect(z, t.x, t.y + dy, size)
    return r


def test_streams_exist_and_overlapping_rects_agree(humid: S.EarthStreams) -> None:
    r = _rect(15, *HUMID, dy=2)
    a = humid.streams(15, Rect(r.y0, r.x0, 256, 256))
    b = humid.streams(15, Rect(r.y0 + 100, r.x0 + 60, 256, 256))
    assert a.dtype == np.float32 and a.max() > 0.5 and (a > 0).mean() > 0.005
    assert np.array_equal(a[100:, 60:], b[:156, :196])


def test_zoom_consistent(humid: S.EarthStreams) -> None:
    """Mean of a 2 × 2 block at z16 vs the pixel at z15: mean |diff| ≤ 0.01, and the total
    coverage (stream area) agrees within 25 % (the fade-in of the narrowest streams differs)."""
    r = _rect(15, *HUMID, dy=2)
    p = humid.streams(15, r)
    c = humid.streams(16, Rect(r.y0 * 2, r.x0 * 2, 512, 512))
    m = c.reshape(256, 2, 256, 2).mean(axis=(1, 3))
    assert np.abs(m - p).mean() <= 0.01
    assert abs(m.sum() - p.sum()) <= 0.25 * p.sum()


def test_paths_descend_and_end(humid: S.EarthStreams) -> None:
    """Along every kept path of this steep synthetic slope the uncarved layer (at ZR) never
    climbs more than RISE_TOL_M above the lowest point passed (the routing follows it); paths
    that stop at water end on a water pixel; on this terrain most paths reach the sea."""
    gx, gy = _ref(*HUMID)
    net = humid.network(gx // S.CELL, gy // S.CELL + 2)  # the sea is within REACH
    assert len(net.paths) > 100
    ends = net.ends
    for path, why in zip(net.paths, ends, strict=True):
        rect = Rect(int(path[:, 0].min()), int(path[:, 1].min()), 1, 1)
        h = int(path[:, 0].max()) - rect.y0 + 1
        w = int(path[:, 1].max()) - rect.x0 + 1
        e = humid._elevation_fn(S.ZR, Rect(rect.y0, rect.x0, h, w))
        wat = humid._water_fn(S.ZR, Rect(rect.y0, rect.x0, h, w))
        prof = e[path[:, 0] - rect.y0, path[:, 1] - rect.x0].astype(np.float64)
        assert np.all(prof <= np.minimum.accumulate(prof) + S.RISE_TOL_M + 1e-4)
        assert not wat[path[0, 0] - rect.y0, path[0, 1] - rect.x0]  # no source in water
        if why == S.END_WATER:
            assert wat[path[-1, 0] - rect.y0, path[-1, 1] - rect.x0]
    assert (ends == S.END_WATER).mean() > 0.5


@pytest.mark.parametrize("place", [DESERT, ICE])
def test_none_in_deserts_or_on_ice(place: tuple[float, float]) -> None:
    """The same terrain that has streams in the Black Forest has none in the Sahara or on the
    Greenland ice cap (no sources there)."""
    dry = synthetic(*place)
    assert dry.streams(15, _rect(15, *place, dy=2)).max() == 0.0
    gx, gy = _ref(*place)
    assert not dry.network(gx // S.CELL, gy // S.CELL + 2).paths


def test_nothing_drawn_in_water_far_from_mouths(humid: S.EarthStreams) -> None:
    """Deep in the sea (beyond the last mouth stretch) there is no stream coverage."""
    gx, gy = _ref(*HUMID)
    sea_row15 = (gy + 720) * 4  # z15 rows: 4 per row of ZR, 20 px of ZR into the sea
    cov = humid.streams(15, Rect(sea_row15, gx * 4, 256, 256))
    assert cov.max() == 0.0


def test_width_and_below_min_zoom(humid: S.EarthStreams) -> None:
    assert S.width_m(np.array([S.K_MIN]))[0] == S.WIDTH_MIN_M
    assert S.width_m(np.array([10_000]))[0] == S.WIDTH_MAX_M
    r = _rect(12, *HUMID)
    assert humid.streams(12, r).max() == 0.0


_CHILD = """
import sys, hashlib
sys.path.insert(0, {tests!r})
from test_geography_streams import synthetic, _rect, HUMID
s = synthetic(*HUMID)
print(hashlib.sha256(s.streams(15, _rect(15, *HUMID, dy=2)).tobytes()).hexdigest())
"""


@pytest.mark.slow
def test_identical_in_a_subprocess(humid: S.EarthStreams) -> None:
    import hashlib
    from pathlib import Path

    here = hashlib.sha256(humid.streams(15, _rect(15, *HUMID, dy=2)).tobytes()).hexdigest()
    code = _CHILD.format(tests=str(Path(__file__).parent))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == here


@pytest.mark.slow
def test_real_layers_black_forest() -> None:
    """With the real earth layers: streams show in the Black Forest at z15, the water layer
    marks the wide ones as rivers, and the geography identity names the streams version."""
    from generator.geography import classes
    from generator.geography.layers import make_geography

    geo = make_geography("earth", 0)
    t = mercantile.tile(*HUMID, 15)
    riv = geo.tile("rivers", 15, t.x, t.y)
    wk = geo.tile("water", 15, t.x, t.y)
    assert riv.max() > 0.5
    assert (wk == classes.RIVER).any()
    assert geo.identity["source"]["streams"] == S.STREAMS_VERSION  # type: ignore[index]
    # along the channel part of the kept paths of the cell the real (carved) layer at ZR
    # climbs ≤ RISE_TOL_M — all but a few that cross a cell border where the two cells'
    # rasters see different stretches upstream (benchmarks-streams.md: 12 of 7494) — and
    # some of it was carved
    st = S.streams_of(geo.source)
    c = mercantile.tile(*HUMID, S.ZR)
    net = st.network(c.x, c.y)
    rect = tile_rect(S.ZR, c.x, c.y, margin=256)
    raw = geo.source._elevation.elevation(S.ZR, rect)
    elev = st.carve(S.ZR, rect, raw)  # the layer carves from MIN_ZOOM: the carve at ZR itself
    assert np.array_equal(geo.window("elevation", S.ZR, rect), raw)  # a z13 tile: uncarved
    assert len(net.paths) > 100 and (raw - elev).max() > 0.0
    checked = bad = 0
    for p in net.paths:
        flow = np.array([st.network(x // 256, y // 256).out_flow[y % 256, x % 256] for y, x in p])
        ch = np.nonzero(flow >= S.K_MIN)[0]
        if not len(ch):
            continue
        seg = p[ch[0] :]
        prof = elev[seg[:, 0] - rect.y0, seg[:, 1] - rect.x0].astype(np.float64)
        bad += not np.all(prof <= np.minimum.accumulate(prof) + S.RISE_TOL_M + 1e-4)
        checked += 1
    assert checked > 100 and bad <= 0.01 * checked


def test_none_drawn_in_towns() -> None:
    """Towns culvert their streams: the terrain that has streams in the Black Forest has none
    drawn inside Natural Earth's Paris, while the same terrain just outside it has some."""
    paris = (2.35, 48.86)
    city = synthetic(*paris)
    assert city.streams(15, _rect(15, *paris, dy=2)).max() == 0.0
    country = (2.35, 49.6)  # open farmland north of Paris, same latitude band
    assert synthetic(*country).streams(15, _rect(15, *country, dy=2)).max() > 0.0
