"""Tile conventions: conformance with mercantile, validation, x wrap, neighbours, resolution."""

from __future__ import annotations

import math
import random

import mercantile
import pytest

from generator import tiles
from generator.errors import InvalidTile, ZoomOutOfRange
from generator.tiles import Tile

ZOOMS = range(20)


def _sample(z: int, k: int = 8) -> list[Tile]:
    """Return a seeded random sample of tiles at zoom z (corners included)."""
    rng = random.Random(1000 + z)
    n = 1 << z
    picks = {(0, 0), (n - 1, n - 1), (0, n - 1), (n - 1, 0)}
    while len(picks) < min(k, n * n):
        picks.add((rng.randrange(n), rng.randrange(n)))
    return [Tile(x, y, z) for x, y in sorted(picks)]


# ---- mercantile conformance ---------------------------------------------------------------
@pytest.mark.parametrize("z", range(1, 20))
def test_parent_agrees_with_mercantile(z):
    for t in _sample(z):
        assert tiles.parent(t) == mercantile.parent(mercantile.Tile(*t))


@pytest.mark.parametrize("z", ZOOMS)
def test_children_agree_with_mercantile(z):
    for t in _sample(z):
        ours = tiles.children(t)
        assert sorted(ours.values()) == sorted(mercantile.children(mercantile.Tile(*t)))


@pytest.mark.parametrize("z", ZOOMS)
def test_children_are_keyed_by_offset(z):
    for t in _sample(z):
        for (dx, dy), c in tiles.children(t).items():
            assert (c.x, c.y, c.z) == (2 * t.x + dx, 2 * t.y + dy, z + 1)


@pytest.mark.parametrize("z", ZOOMS)
def test_xy_bounds_agree_with_mercantile(z):
    for t in _sample(z):
        ours = tiles.tms().xy_bounds(t.x, t.y, t.z)
        ref = mercantile.xy_bounds(t.x, t.y, t.z)
        assert ours.left == pytest.approx(ref.left, abs=1e-6)
        assert ours.right == pytest.approx(ref.right, abs=1e-6)
        assert ours.top == pytest.approx(ref.top, abs=1e-6)
        assert ours.bottom == pytest.approx(ref.bottom, abs=1e-6)


@pytest.mark.parametrize("z", ZOOMS)
def test_lnglat_bounds_agree_with_mercantile(z):
    for t in _sample(z):
        ours = tiles.tms().bounds(t.x, t.y, t.z)
        ref = mercantile.bounds(t.x, t.y, t.z)
        assert tuple(ours) == pytest.approx(tuple(ref), abs=1e-9)


@pytest.mark.parametrize("z", ZOOMS)
def test_latitude_of_row_matches_mercantile_tile_edges(z):
    for t in _sample(z):
        top = tiles.latitude_of_row(z, t.y * tiles.TILE_SIZE)
        assert top == pytest.approx(mercantile.ul(t.x, t.y, z).lat, abs=1e-9)


@pytest.mark.parametrize("z", range(1, 20))
def test_interior_neighbors_agree_with_mercantile(z):
    n = 1 << z
    for t in _sample(z):
        if 0 < t.x < n - 1 and 0 < t.y < n - 1:
            ref = mercantile.neighbors(mercantile.Tile(*t))
            assert sorted(tiles.neighbors(t)) == sorted(ref)


# ---- validate -----------------------------------------------------------------------------
def test_validate_returns_the_canonical_tile():
    assert tiles.validate(3, 5, 6) == Tile(5, 6, 3)


def test_validate_rejects_negative_zoom_naming_it():
    # a malformed address (400), unlike a zoom above the world's maximum (404)
    with pytest.raises(InvalidTile, match="-1"):
        tiles.validate(-1, 0, 0)


def test_validate_rejects_zoom_above_max_naming_both():
    with pytest.raises(ZoomOutOfRange, match=r"23.*22"):
        tiles.validate(23, 0, 0, max_zoom=22)


def test_validate_accepts_zoom_equal_to_max():
    assert tiles.validate(22, 0, 0, max_zoom=22) == Tile(0, 0, 22)


def test_zoom_out_of_range_is_an_invalid_tile():
    with pytest.raises(InvalidTile):
        tiles.validate(31, 0, 0)


@pytest.mark.parametrize("y", [-1, 8, 100])
def test_validate_rejects_y_out_of_range_naming_it(y):
    with pytest.raises(InvalidTile, match=rf"got {y}\b"):
        tiles.validate(3, 0, y)


def test_y_out_of_range_is_not_a_zoom_error():
    with pytest.raises(InvalidTile) as info:
        tiles.validate(3, 0, 8)
    assert not isinstance(info.value, ZoomOutOfRange)


@pytest.mark.parametrize("z", [0, 1, 5, 19])
def test_x_minus_one_wraps_to_last_column(z):
    assert tiles.validate(z, -1, 0) == Tile((1 << z) - 1, 0, z)


@pytest.mark.parametrize("z", [0, 1, 5, 19])
def test_x_past_last_column_wraps_to_zero(z):
    assert tiles.validate(z, 1 << z, 0) == Tile(0, 0, z)


def test_wrap_takes_x_modulo_grid_width():
    assert tiles.wrap(Tile(-3, 2, 2)) == Tile(1, 2, 2)
    assert tiles.wrap(Tile(9, 2, 2)) == Tile(1, 2, 2)


# ---- neighbours ---------------------------------------------------------------------------
def test_neighbors_of_x0_wrap_across_antimeridian():
    z, n = 4, 16
    ns = tiles.neighbors(Tile(0, 5, z))
    assert len(ns) == 8
    assert {t.x for t in ns} == {n - 1, 0, 1}
    assert Tile(n - 1, 5, z) in ns


def test_neighbors_of_last_column_wrap_to_x0():
    ns = tiles.neighbors(Tile(15, 5, 4))
    assert {Tile(0, 4, 4), Tile(0, 5, 4), Tile(0, 6, 4)} <= set(ns)


def test_neighbors_drop_rows_beyond_north_pole():
    ns = tiles.neighbors(Tile(3, 0, 4))
    assert len(ns) == 5
    assert all(t.y >= 0 for t in ns)


def test_neighbors_drop_rows_beyond_south_pole():
    ns = tiles.neighbors(Tile(3, 15, 4))
    assert len(ns) == 5
    assert all(t.y <= 15 for t in ns)


def test_neighbors_at_zoom_one_are_unique_and_exclude_self():
    t = Tile(0, 0, 1)
    ns = tiles.neighbors(t)
    assert t not in ns
    assert len(ns) == len(set(ns)) == 3


def test_neighbors_at_zoom_zero_are_empty():
    assert tiles.neighbors(Tile(0, 0, 0)) == []


# ---- ground resolution --------------------------------------------------------------------
def test_z0_equator_resolution():
    assert tiles.equator_resolution(0) == pytest.approx(156543.034, abs=1e-3)
    assert tiles.ground_resolution(0, 0) == pytest.approx(156543.034, abs=1e-3)


@pytest.mark.parametrize("z", range(1, 25))
def test_equator_resolution_halves_per_zoom(z):
    assert tiles.equator_resolution(z) == pytest.approx(tiles.equator_resolution(z - 1) / 2)


@pytest.mark.parametrize("z", range(8, 23))
def test_ground_resolution_next_to_equator_halves_per_zoom(z):
    # row 2**(z-1) touches the equator; its centre latitude tends to 0 as z grows
    r = tiles.ground_resolution(z, 1 << (z - 1))
    assert r == pytest.approx(156543.034 / 2**z, rel=1e-4)
    prev = tiles.ground_resolution(z - 1, 1 << (z - 2))
    assert r == pytest.approx(prev / 2, rel=1e-3)


@pytest.mark.parametrize("z", [1, 4, 10, 18])
def test_ground_resolution_is_cos_latitude_times_equatorial(z):
    for y in (0, (1 << z) // 3, (1 << z) - 1):
        west, south, east, north = mercantile.bounds(0, y, z)
        # centre row in Mercator metres, back to latitude
        top, bottom = mercantile.xy(0, north)[1], mercantile.xy(0, south)[1]
        lat = mercantile.lnglat(0, (top + bottom) / 2).lat
        expected = 156543.03392804097 / 2**z * math.cos(math.radians(lat))
        assert tiles.ground_resolution(z, y) == pytest.approx(expected, rel=1e-9)


def test_ground_resolution_is_smaller_near_the_poles():
    z = 10
    equator = tiles.ground_resolution(z, 1 << (z - 1))
    north = tiles.ground_resolution(z, 0)
    south = tiles.ground_resolution(z, (1 << z) - 1)
    assert north < equator / 10
    assert north == pytest.approx(south, rel=1e-9)


def test_ground_resolution_of_512_px_tiles_is_half():
    assert tiles.ground_resolution(5, 10, tile_size=512) == pytest.approx(
        tiles.ground_resolution(5, 10) / 2, rel=1e-9
    )


# ---- parse_address ------------------------------------------------------------------------
def test_parse_address_returns_tile():
    assert tiles.parse_address("5/10/12") == Tile(10, 12, 5)


def test_parse_address_wraps_x():
    assert tiles.parse_address("2/-1/1") == Tile(3, 1, 2)


@pytest.mark.parametrize("text", ["", "5/10", "5/10/12/1", "a/b/c", "5/1.5/2", "5//2"])
def test_parse_address_rejects_malformed_text_quoting_it(text):
    with pytest.raises(InvalidTile, match="Z/X/Y") as info:
        tiles.parse_address(text)
    assert repr(text) in str(info.value)


def test_parse_address_rejects_negative_zoom():
    with pytest.raises(InvalidTile, match="-1"):
        tiles.parse_address("-1/0/0")


def test_parse_address_rejects_y_out_of_range():
    with pytest.raises(InvalidTile, match="got 4"):
        tiles.parse_address("2/0/4")


def test_validate_on_another_grid_uses_its_matrix_sizes():
    import morecantile

    crs84 = morecantile.tms.get("WorldCRS84Quad")
    assert tiles.validate(0, 3, 0, grid=crs84) == Tile(1, 0, 0)  # two columns at zoom 0
    with pytest.raises(InvalidTile, match=r"0\.\.0"):
        tiles.validate(0, 0, 1, grid=crs84)  # one row
    with pytest.raises(ZoomOutOfRange, match="WorldCRS84Quad"):
        tiles.validate(crs84.maxzoom + 1, 0, 0, max_zoom=40, grid=crs84)
