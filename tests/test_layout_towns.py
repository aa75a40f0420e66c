"""Town street networks (``generator.geography.layout_towns``): irregular, seamless, consistent.

On the closed-form stub geography (``tests/geo_stub.py``), around one of its villages: the
blocks are whole Voronoi cells, so they cross the 1.7-km cell borders instead of meeting there
with a seam; a street is where it is whichever rect, process order or zoom draws it.
"""

from __future__ import annotations

import morecantile
import numpy as np
import pytest
import shapely
from scipy import ndimage

from generator.geography import layout_classes as K
from generator.geography import layout_towns as T
from generator.geography.grid import _transformers
from generator.geography.layout import Layout, layout_of
from generator.planner import Rect
from tests.geo_stub import stub_geography

TMS = morecantile.tms.get("WebMercatorQuad")
#: a stub village (the lattice-13 site nearest (-108.41°, 20.58°); found by looking)
VILLAGE = (-108.4346, 20.5621)


@pytest.fixture(scope="module")
def lay() -> Layout:
    return layout_of(stub_geography(7))


def _cell(lon: float, lat: float) -> tuple[int, int]:
    t = TMS.tile(lon, lat, T.CELL_L)
    return t.x, t.y


def _town(lay: Layout, ix: int, iy: int) -> T.TownCell:
    tc = lay._town(ix, iy)
    assert tc is not None, "no town cell here: pick another place"
    return tc


def test_blocks_tile_the_plane_across_cell_borders(lay):
    ix, iy = _cell(*VILLAGE)
    a = _town(lay, ix, iy)
    box = shapely.box(*T._box(ix, iy))
    # blocks are not clipped to their cell: some reach over its border
    over = ~shapely.within(a.blocks, box)
    assert over.sum() >= 5
    # ...and those of the neighbours do not overlap them (one owner per block)
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        b = lay._town(ix + dx, iy + dy)
        if b is None or not len(b.blocks):
            continue
        tree = shapely.STRtree(b.blocks)
        i, j = tree.query(a.blocks[over], predicate="intersects")
        if len(i):
            inter = shapely.area(shapely.intersection(a.blocks[over][i], b.blocks[j]))
            assert inter.max() < 1e-6 * shapely.area(a.blocks).mean()


def test_streets_are_irregular(lay):
    """Blocks vary in size and orientation (a regular grid has one size and one angle)."""
    ix, iy = _cell(*VILLAGE)
    blocks = _town(lay, ix, iy).blocks
    area = shapely.area(blocks)
    assert area.std() / area.mean() > 0.1  # one block size per cell in the old grid
    env = shapely.oriented_envelope(blocks)
    xy = shapely.get_coordinates(shapely.get_exterior_ring(env)).reshape(len(env), -1, 2)
    d = xy[:, 1] - xy[:, 0]
    ang = np.degrees(np.arctan2(d[:, 1], d[:, 0])) % 90.0
    assert np.ptp(np.percentile(ang, [10, 90])) > 10.0


def test_cells_are_the_same_whatever_was_asked_before():
    ix, iy = _cell(*VILLAGE)
    a, b = Layout(stub_geography(7)), Layout(stub_geography(7))
    (
        a._town(ix + 1, iy),
        a._town(ix, iy - 1),
    )  # neighbours first: its sites must not leak into this cell's blocks
    wa = shapely.to_wkb(_town(a, ix, iy).blocks)
    wb = shapely.to_wkb(_town(b, ix, iy).blocks)
    assert len(wa) > 10 and list(wa) == list(wb)
    assert np.array_equal(T.buildings(a.seed, _town(a, ix, iy), ix, iy),
                          T.buildings(b.seed, _town(b, ix, iy), ix, iy))  # fmt: skip


def _village_rect(z: int, size: int = 192) -> Rect:
    x, y = _transformers()[1].transform(*VILLAGE)  # pyproj: lon/lat → Mercator
    from generator.geography.grid import to_pixel

    px, py = to_pixel(z, np.array([x]), np.array([y]))
    return Rect(int(py[0]) - size // 2, int(px[0]) - size // 2, size, size)


@pytest.mark.parametrize("z", [14, 16])
def test_overlapping_town_rects_agree(lay, z):
    r = _village_rect(z, 256)
    a = lay.channels(z, Rect(r.y0 - 37, r.x0 - 11, 200, 230))
    b = lay.channels(z, Rect(r.y0 + 50, r.x0 + 60, 180, 150))
    assert (a[0] == K.STREET).any()
    assert np.array_equal(a[:, 87:200, 71:221], b[:, 0:113, 0:150])


def test_no_seam_along_a_cell_border(lay):
    """The old per-cell grids met at the cell border with a line of street; now the street
    share along the border is like anywhere else."""
    ix, iy = _cell(*VILLAGE)
    z = 16
    x0, _, _, _ = T._box(ix, iy)
    f = 1 << (z - T.CELL_L)
    # the rect of cell (ix, iy) at z16, and its west border column
    r = Rect(iy * 256 * f, ix * 256 * f - 128, 256 * f, 256)
    cls = lay.classes(z, r)
    town = np.isin(cls, [K.STREET, K.SETTLEMENT, K.BUILDING])
    rows = town[:, 127] & town[:, 128]
    assert rows.sum() > 50, "the village does not reach the border: pick another cell"
    street = cls == K.STREET
    border = street[rows, 127:129].all(1).mean()
    elsewhere = np.mean([street[rows, c : c + 2].all(1).mean() for c in range(20, 236, 9)])
    assert border <= 2.0 * elsewhere + 0.05


@pytest.mark.parametrize("k", [1, 2, 3])
def test_streets_keep_their_place_across_zooms(lay, k):
    """A street pixel at z15 is within 1 px of a street pixel at z15+k (where the land is
    settlement at both zooms)."""
    z = 15
    r = _village_rect(z, 96)
    f = 1 << k
    lo = lay.classes(z, r)
    hi = lay.classes(z + k, Rect(r.y0 * f, r.x0 * f, r.h * f, r.w * f))
    src = lo == K.STREET
    dst = hi == K.STREET
    settled = np.isin(hi, [K.STREET, K.SETTLEMENT, K.BUILDING])
    iy, ix = np.nonzero(src)
    fy, fx = iy * f + f // 2, ix * f + f // 2
    ok = settled[fy, fx]
    assert ok.sum() > 100
    dist = ndimage.distance_transform_edt(~dst) / f
    d = dist[fy[ok], fx[ok]]
    assert np.quantile(d, 0.99) <= 1.0 and d.max() <= 1.5


def test_the_warp_is_bounded_and_smooth():
    xy = np.stack([np.linspace(-1e6, 1e6, 2001), np.full(2001, 2.3e6)], -1)
    w = T.warp(7, xy)
    k = np.cosh(2.3e6 / T.EARTH_R)
    disp = np.abs(w - xy)  # per axis
    assert disp.max() <= T.WARP_M * k + 1e-6 and disp.max() > 0.2 * T.WARP_M * k
    # 1 km apart (1000 m steps), the displacement changes by well under the step: no folds
    assert np.abs(np.diff(w - xy, axis=0)).max() < 0.5 * 1000.0
    assert np.array_equal(T.warp(7, xy), w)


def test_building_reach_holds_every_building_of_the_cell(lay):
    """``building_reach`` bounds a cell's buildings without laying them out (what lets
    ``Layout.houses`` skip neighbour cells), and is tight enough to skip something: it lies
    within a few hundred metres of the cell, not the whole ±1 ring."""
    ix, iy = _cell(*VILLAGE)
    checked = 0
    for dx, dy in ((0, 0), (1, 0), (0, 1), (-1, -1)):
        tc = lay._town(ix + dx, iy + dy)
        if tc is None:
            continue
        reach = T.building_reach(tc)
        cor = T.buildings(lay.seed, tc, ix + dx, iy + dy)
        checked += len(cor) > 0
        if reach is None:
            assert len(cor) == 0
            continue
        x0, y0, x1, y1 = reach
        assert (cor[..., 0] >= x0).all() and (cor[..., 0] <= x1).all()
        assert (cor[..., 1] >= y0).all() and (cor[..., 1] <= y1).all()
        bx0, by0, bx1, by1 = T._box(ix + dx, iy + dy)
        assert x0 > bx0 - 0.5 * (bx1 - bx0) and x1 < bx1 + 0.5 * (bx1 - bx0)
    assert checked >= 1
