"""``World.region`` (array + affine transform of a lon/lat box) and the HTTP ``Client``.

Most regions here sit at zooms up to the base (4), where tiles come from Blue Marble and box
means without any model evaluation, so the tests are fast; one goes a level below the base.
"""

from __future__ import annotations

import math

import morecantile
import numpy as np
import pytest
from affine import Affine

from generator import tiles
from generator.errors import InvalidRegion
from generator.region import Bbox, parse_bbox, plan_region, tile_bounds_bbox


def mosaic(world, z: int, cols: range, rows: range) -> np.ndarray:
    """Tiles of ``world`` pasted side by side (x wrapped), rows top to bottom."""
    n = 1 << z
    return np.concatenate(
        [np.concatenate([world.tile_array(z, c % n, r) for c in cols], axis=1) for r in rows],
        axis=0,
    )


def pixel_box(z: int, px0: int, py0: int, px1: int, py1: int) -> tuple[Bbox, float]:
    """The lon/lat box of global pixels [px0, px1) × [py0, py1) of zoom z, and the ground m/px
    that makes them the output grid (the zoom's cell size at the box's centre latitude)."""
    t = tiles.tms()
    cell = t.matrix(z).cellSize
    left, top = t.xy_bbox.left, t.xy_bbox.top
    width = t.xy_bbox.right - left

    def wrapped(x: float) -> float:  # past the antimeridian: the same meridian a turn back
        return x - width if x > t.xy_bbox.right else x

    w, n = t.lnglat(wrapped(left + px0 * cell), top - py0 * cell)
    e, s = t.lnglat(wrapped(left + px1 * cell), top - py1 * cell)
    lat_c = t.lnglat(0, top - (py0 + py1) / 2 * cell).y
    return Bbox(w, s, e, n), cell * math.cos(math.radians(lat_c))


# ---- World.region -----------------------------------------------------------------------------
def test_region_of_one_tile_is_that_tile(earth):
    arr, transform = earth.region(tile_bounds_bbox(3, 4, 2), earth.resolution(3, 2))
    assert arr.shape == (256, 256, 3) and arr.dtype == np.uint8
    assert np.array_equal(arr, earth.tile_array(3, 4, 2))
    b = tiles.tms().xy_bounds(morecantile.Tile(4, 2, 3))
    cell = tiles.tms().matrix(3).cellSize
    assert transform == Affine(cell, 0.0, b.left, 0.0, -cell, b.top)


def test_region_on_the_pixel_grid_is_a_crop_of_the_tile_mosaic(earth):
    # pixels 300..700 × 200..450 of zoom 2 span tiles 1..2 × 0..1
    bbox, res = pixel_box(2, 300, 200, 700, 450)
    arr, transform = earth.region(bbox, res)
    expected = mosaic(earth, 2, range(1, 3), range(0, 2))[200:450, 44:444]
    assert arr.shape == (250, 400, 3)
    assert np.array_equal(arr, expected)
    assert transform.c == pytest.approx(tiles.tms().xy_bbox.left + 300 * transform.a)


def test_region_below_the_base_uses_the_generated_zoom(earth):
    bbox, res = pixel_box(5, 16 * 256 + 40, 10 * 256 + 50, 16 * 256 + 200, 10 * 256 + 250)
    arr, _ = earth.region(bbox, res)
    assert np.array_equal(arr, earth.tile_array(5, 16, 10)[50:250, 40:200])


def test_region_across_the_antimeridian_wraps(earth):
    n = 1 << 3
    bbox, res = pixel_box(3, n * 256 - 64, 512, n * 256 + 64, 640)
    assert bbox.west > bbox.east  # crosses 180°
    arr, transform = earth.region(bbox, res)
    expected = mosaic(earth, 3, range(n - 1, n + 1), range(2, 3))[:128, 192:320]
    assert np.array_equal(arr, expected)
    assert transform.c + 128 * transform.a > tiles.tms().xy_bbox.right  # east unwrapped


def test_region_between_zooms_is_the_finer_zoom_box_filtered(earth):
    # 1.5x the cell size of zoom 3: zoom 3 is the finest not coarser; area means of its pixels
    bbox, res = pixel_box(3, 1024, 512, 1024 + 240, 512 + 240)
    arr, transform = earth.region(bbox, 1.5 * res)
    assert arr.shape == (160, 160, 3)
    assert transform.a == pytest.approx(1.5 * tiles.tms().matrix(3).cellSize)
    src = earth.tile_array(3, 4, 2)[:240, :240].astype(np.float64)
    # every output pixel is the area mean of the 1.5×1.5 source pixels under it, so a 2×2 block
    # of output is the mean of a 3×3 block of source, up to rounding each output pixel
    blocks = src.reshape(80, 3, 80, 3, 3).mean(axis=(1, 3))
    out = arr.astype(np.float64).reshape(80, 2, 80, 2, 3).mean(axis=(1, 3))
    assert np.abs(out - blocks).max() <= 0.5 + 1e-4


def test_region_at_twice_a_zoom_resolution_is_the_coarser_zoom(earth):
    bbox, res = pixel_box(4, 8 * 256, 5 * 256, 9 * 256, 6 * 256)
    arr, _ = earth.region(bbox, 2 * res)
    assert arr.shape == (128, 128, 3)
    assert np.array_equal(arr, earth.tile_array(3, 4, 2)[128:256, :128])


@pytest.mark.parametrize(
    ("resolution", "zoom"),
    [
        (tiles.tms().matrix(10).cellSize, 10),  # exactly zoom 10's cells: zoom 10
        (tiles.tms().matrix(10).cellSize * 0.99, 11),  # a little finer: zoom 11
        (tiles.tms().matrix(10).cellSize * 1.99, 10),  # almost zoom 9's: still zoom 10
        (1e9, 0),  # coarser than the whole world: zoom 0, box filtered
    ],
)
def test_zoom_is_the_finest_not_coarser_than_asked(resolution, zoom):
    # on the equator ground and projected m/px are the same
    plan = plan_region((-0.01, -0.01, 0.01, 0.01), resolution, max_zoom=22)
    assert plan.zoom == zoom


def test_region_resolution_beyond_the_max_zoom_is_an_error(earth):
    with pytest.raises(InvalidRegion, match="maximum zoom 22"):
        earth.region((10, 47, 10.001, 47.001), 0.001)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,2,3", "four numbers"),  # three values
        ("a,b,c,d", "four numbers"),  # not numbers
        ("0,10,1,5", "south"),  # south above north
        ("5,0,5,1", "empty"),  # west == east
        ("0,0,200,1", "longitudes"),  # east past 180
        ("0,-95,1,1", "latitudes"),  # south past the pole
        ("0,86,1,89", "limit"),  # wholly beyond Mercator's ±85.05°
        ("0,0,nan,1", "finite"),
    ],
)
def test_bad_bboxes_name_the_problem(text, message):
    with pytest.raises(InvalidRegion, match=message):
        parse_bbox(text)


def test_bbox_latitudes_are_clamped_to_mercator():
    assert parse_bbox("-10,-90,10,90").north == pytest.approx(85.0511287798066)


@pytest.mark.parametrize("resolution", [0, -1.0, math.inf])
def test_bad_resolutions_are_errors(resolution):
    with pytest.raises(InvalidRegion, match="positive"):
        plan_region((0, 0, 1, 1), resolution, max_zoom=22)
