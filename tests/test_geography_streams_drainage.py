"""Drainage of the ``earth`` procedural streams (generator/geography/streams_earth.py).

Synthetic terrain as in ``test_geography_streams.py`` (a slope south to a sea, placed over real
climate), here with a closed bowl straddling a routing-cell border on the way: the streams must
run through it (not stop in it), every channel must end in the sea, a channel leaving a cell
must go on in its neighbour, and the elevation carved along the channels must never rise
downstream.
"""

from __future__ import annotations

import mercantile
import numpy as np
import pytest

from generator.geography import streams_earth as S
from generator.planner import Rect

HUMID = (8.1, 48.0)


def _ref() -> tuple[int, int]:
    t = mercantile.tile(*HUMID, S.ZR)
    return t.x * S.CELL, t.y * S.CELL


def bowl_terrain() -> S.EarthStreams:
    """Slope south to a sea 700 px of ZR below the reference cell, valleys every 90 px, a
    ripple, and a bowl 12 m deep and 50 px across centred on the border of cells 1 and 2 rows
    down (deeper than the slope drops across it, so it is a closed hollow)."""
    gx0, gy0 = _ref()
    sea = gy0 + 700
    by, bx = gy0 + 2 * S.CELL, gx0 + 128

    def elev(z: int, rect: Rect) -> np.ndarray:
        assert z == S.ZR
        y = np.arange(rect.y0, rect.y0 + rect.h, dtype=np.float64)[:, None]
        x = np.arange(rect.x0, rect.x0 + rect.w, dtype=np.float64)[None, :]
        e = 0.1 * (sea - y) + 8.0 * np.abs(np.sin((x - gx0) / 90.0 * np.pi))
        e += 1.5 * np.sin(x / 7.0) * np.cos(y / 5.0)
        e -= 12.0 * np.exp(-((y - by) ** 2 + (x - bx) ** 2) / (2 * 25.0**2))
        return e.astype(np.float32)

    def water(z: int, rect: Rect) -> np.ndarray:
        y = np.arange(rect.y0, rect.y0 + rect.h)[:, None]
        return np.broadcast_to(y >= sea, (rect.h, rect.w)).copy()

    return S.EarthStreams(7, elev, water)


@pytest.fixture(scope="module")
def bowl() -> S.EarthStreams:
    return bowl_terrain()


def _cell(dy: int) -> tuple[int, int]:
    gx, gy = _ref()
    return gx // S.CELL, gy // S.CELL + dy


@pytest.mark.slow
def test_every_channel_reaches_the_sea(bowl: S.EarthStreams) -> None:
    """From channel heads two cells above the sea (the bowl between them and it), following
    the channel downstream across cells ends in water every time: no channel fades out on land
    and no loop (two cells' floods disagreeing over the bowl on their border)."""
    cx, cy = _cell(1)
    net = bowl.network(cx, cy)
    heads = np.argwhere(net.out_flow >= S.K_MIN)
    assert len(heads) > 50
    rng = np.random.default_rng(1)
    ends = []
    for i in rng.choice(len(heads), 12, replace=False):
        gy, gx = heads[i] + [cy * S.CELL, cx * S.CELL]
        path, why = bowl.follow(int(gy), int(gx), 3000)
        ends.append(why)
        # it ends on a water pixel, and got there by single D8 steps
        assert bowl._water_fn(S.ZR, Rect(int(path[-1, 0]), int(path[-1, 1]), 1, 1))[0, 0]
        assert np.abs(np.diff(path, axis=0)).max() <= 1
    assert ends == [S.END_WATER] * len(ends)


@pytest.mark.slow
def test_channels_continue_across_cell_borders(bowl: S.EarthStreams) -> None:
    """Every channel edge out of a cell's border pixel into its neighbour lands on a pixel the
    neighbour's network also carries as a channel (or on water): the network is continuous
    across routing cells, as the drawn strips are."""
    cx, cy = _cell(1)
    net = bowl.network(cx, cy)
    below = bowl.network(cx, cy + 1)
    row = S.CELL - 1  # the cell's last row: edges south go into the cell below
    crossing = 0
    for col in np.nonzero(net.out_flow[row] >= S.K_MIN)[0]:
        code = net.code[row, col]
        dy, dx = int(S._D8_ROW[code]), int(S._D8_COL[code])
        tx = col + dx
        if dy != 1 or not 0 <= tx < S.CELL:
            continue
        crossing += 1
        assert below.out_flow[0, tx] >= S.K_MIN
    assert crossing >= 3


def test_carved_layer_never_rises_along_channels(bowl: S.EarthStreams) -> None:
    """The elevation carved along the channels (at ZR) never climbs along a kept path's channel
    part, although the paths cross the bowl (a hollow of the uncarved layer); the carve lowers
    the layer, and raises only channel beds, to their channel's surface; two overlapping rects
    agree."""
    cx, cy = _cell(1)
    net = bowl.network(cx, cy)
    rect = Rect((cy - 1) * S.CELL, (cx - 1) * S.CELL, 3 * S.CELL, 3 * S.CELL)
    raw = bowl._elevation_fn(S.ZR, rect)
    cut = bowl.carve(S.ZR, rect, raw)
    assert cut.dtype == np.float32
    assert (raw - cut).max() > 1.0  # the bowl's rim was breached
    surfaces = np.concatenate(
        [bowl.network(cx + i, cy + j).surface for i in range(-2, 3) for j in range(-2, 3)]
    )
    raised = cut > raw
    assert np.isin(cut[raised], surfaces).all()
    climbs = []
    for p in net.paths:
        ry, rx = p[:, 0] - rect.y0, p[:, 1] - rect.x0
        inside = (ry >= 0) & (ry < rect.h) & (rx >= 0) & (rx < rect.w)
        flow = np.array(
            [bowl.network(x // S.CELL, y // S.CELL).out_flow[y % S.CELL, x % S.CELL] for y, x in p]
        )
        ch = np.nonzero((flow >= S.K_MIN) & inside)[0]
        if len(ch) < 2:
            continue
        seg = slice(ch[0], ch[-1] + 1)
        prof = cut[ry[seg], rx[seg]].astype(np.float64)
        climbs.append(float((prof - np.minimum.accumulate(prof)).max()))
    assert len(climbs) > 50
    assert max(climbs) <= S.RISE_TOL_M
    other = Rect(rect.y0 + 100, rect.x0 + 37, 300, 300)
    part = bowl.carve(S.ZR, other, bowl._elevation_fn(S.ZR, other))
    assert np.array_equal(part, cut[100:400, 37:337])


def test_lru_makes_a_key_once_across_threads() -> None:
    """Two threads asking for the same routing cell at once make it once (the second waits),
    and a key whose make failed is made again by the next caller."""
    import threading
    import time

    from generator.geography.lru import LRU

    lru = LRU(4)
    made = []

    def make() -> int:
        made.append(1)
        time.sleep(0.2)
        return 42

    out: list[int] = []
    ts = [threading.Thread(target=lambda: out.append(lru.get("k", make))) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert out == [42, 42, 42] and len(made) == 1

    def boom() -> int:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        lru.get("b", boom)
    assert lru.get("b", lambda: 7) == 7


def test_beds_never_rise_along_the_drawn_channels_at_z15(bowl: S.EarthStreams) -> None:
    """At z15, where the layer has relief finer than the routing zoom, the carved layer sampled
    along each channel's drawn line (the midpoints of successive nodes) never climbs: the bed is
    set to the channel's surface even where that finer relief dips below it; two overlapping
    rects agree."""
    cx, cy = _cell(1)
    net = bowl.network(cx, cy)
    k = 1 << (15 - S.ZR)
    r13 = Rect(cy * S.CELL, cx * S.CELL, S.CELL, S.CELL)
    fine = np.repeat(np.repeat(bowl._elevation_fn(S.ZR, r13), k, 0), k, 1)
    yy, xx = np.mgrid[0 : fine.shape[0], 0 : fine.shape[1]]
    fine = (fine + 0.8 * np.sin(yy * 1.3) * np.cos(xx * 0.9)).astype(np.float32)
    r15 = Rect(r13.y0 * k, r13.x0 * k, r13.h * k, r13.w * k)
    cut = bowl.carve(15, r15, fine)
    climbs = []
    for p in net.paths:
        flow = np.array(
            [bowl.network(x // S.CELL, y // S.CELL).out_flow[y % S.CELL, x % S.CELL] for y, x in p]
        )
        ch = np.nonzero(flow >= S.K_MIN)[0]
        if len(ch) < 3:
            continue
        ny, nx = bowl.nodes(p[ch[0] :, 0], p[ch[0] :, 1])
        fy = np.floor(((ny[1:] + ny[:-1]) / 2 - r13.y0) * k).astype(int)
        fx = np.floor(((nx[1:] + nx[:-1]) / 2 - r13.x0) * k).astype(int)
        inside = (fy >= 0) & (fy < r15.h) & (fx >= 0) & (fx < r15.w)
        prof = cut[fy[inside], fx[inside]].astype(np.float64)
        if len(prof) > 2:
            climbs.append(float((prof - np.minimum.accumulate(prof)).max()))
    assert len(climbs) > 50
    assert max(climbs) <= S.RISE_TOL_M
    assert (cut > fine).any() and (cut < fine - 1.0).any()  # beds raised over dips, rims cut
    other = Rect(r15.y0 + 300, r15.x0 + 171, 400, 500)
    part = bowl.carve(15, other, fine[300:700, 171:671])
    assert np.array_equal(part, cut[300:700, 171:671])


def test_the_nearest_channel_carves_a_pixel() -> None:
    """The carve kernel: a pixel takes the surface of its nearest stretch (the lowest of those
    within the tie distance of it), set within the bed, lowered to it on the banks, untouched
    beyond; a channel beside a deeper one keeps its own bed, and at a junction the trunk's lower
    bed wins over the tributary's."""
    x = np.linspace(0.0, 40.0, 5)
    upper = np.stack([x, np.full(5, 10.0)], axis=1)  # along y = 10, surface 100
    lower = np.stack([x, np.full(5, 14.0)], axis=1)  # along y = 14, surface 80
    elev = np.full((30, 40), 120.0, np.float32)
    elev[10, 20] = 95.0  # finer relief dipping below the upper bed
    elev[7, 5] = 90.0  # a bank pixel below the upper surface
    curves = np.stack([upper, lower])
    out = S._carve_kernel(curves, np.array([100.0, 80.0], np.float32), elev, 4.0, 2.0, 0.4)
    assert out[9, 20] == 100.0 and out[10, 20] == 100.0  # the upper bed, raised over the dip
    assert out[11, 20] == 100.0  # 1.5 px from the upper, 2.5 px from the lower
    assert out[13, 20] == 80.0 and out[14, 20] == 80.0  # the lower's bed
    assert out[7, 5] == 90.0 and out[7, 6] == 100.0  # banks: lowered, never raised
    assert out[3, 20] == 120.0 and out[25, 20] == 120.0  # beyond both bands
    # a tributary reaching the trunk's line: pixels equally near both take the trunk's bed
    trib = np.stack([np.full(5, 20.0), np.linspace(0.0, 10.0, 5)], axis=1)
    out = S._carve_kernel(
        np.stack([upper, trib]), np.array([100.0, 104.0], np.float32), elev, 4.0, 2.0, 0.4
    )
    assert out[10, 20] == 100.0 and out[4, 20] == 104.0
