"""Planner index maths: windows per tile, parents per window, the dependency cone."""

from __future__ import annotations

import pytest

from generator.planner import Geometry, Rect, Window, plan
from generator.tiles import Tile

G = Geometry(256, 32)


def never_cached(_node) -> bool:
    return False


# ---- geometry -----------------------------------------------------------------------------
def test_window_rect_covers_tile_plus_margin():
    assert G.window == 288
    assert G.window_rect(Window(5, 3, 7)) == Rect(7 * 256, 3 * 256, 288, 288)


def test_interior_tile_needs_four_windows():
    ws = G.windows_for_tile(Tile(10, 12, 5))
    assert ws == [Window(5, 9, 11), Window(5, 10, 11), Window(5, 9, 12), Window(5, 10, 12)]


def test_row_zero_tile_needs_two_windows():
    ws = G.windows_for_tile(Tile(10, 0, 5))
    assert ws == [Window(5, 9, 0), Window(5, 10, 0)]


def test_bottom_row_tile_needs_four_windows():
    assert len(G.windows_for_tile(Tile(10, 31, 5))) == 4


def test_windows_for_x0_wrap_to_last_column():
    ws = G.windows_for_tile(Tile(0, 3, 4))
    assert {w.col for w in ws} == {0, 15}
    assert all(0 <= w.col < 16 for w in ws)


def test_windows_for_tile_are_sorted_row_then_col():
    ws = G.windows_for_tile(Tile(0, 3, 4))
    assert ws == sorted(ws, key=lambda w: (w.row, w.col))


def test_zoom_zero_tile_has_one_window():
    assert G.windows_for_tile(Tile(0, 0, 0)) == [Window(0, 0, 0)]


def test_windows_cover_tile_and_two_px_border():
    t = Tile(6, 9, 5)
    rects = [G.window_rect(w) for w in G.windows_for_tile(t)]
    x0, y0 = t.x * 256 - 2, t.y * 256 - 2
    for y in (y0, y0 + 130, y0 + 259):
        for x in (x0, x0 + 130, x0 + 259):
            assert any(r.y0 <= y < r.y0 + r.h and r.x0 <= x < r.x0 + r.w for r in rects)


def test_even_column_window_reads_one_parent_column():
    ps = G.parents_for_window(Window(6, 20, 20))
    assert ps == [Tile(10, 10, 5)]


def test_odd_column_window_reads_two_parent_columns():
    ps = G.parents_for_window(Window(6, 21, 20))
    assert ps == [Tile(10, 10, 5), Tile(11, 10, 5)]


def test_odd_row_and_column_window_reads_four_parents():
    ps = G.parents_for_window(Window(6, 21, 21))
    assert sorted(ps) == sorted(Tile(x, y, 5) for x in (10, 11) for y in (10, 11))


def test_last_column_window_reads_parent_across_antimeridian():
    ps = G.parents_for_window(Window(5, 31, 4))
    assert {p.x for p in ps} == {15, 0}


def test_bottom_row_window_parents_stay_inside_the_grid():
    ps = G.parents_for_window(Window(5, 4, 31))
    assert all(0 <= p.y < 16 for p in ps)


def test_parents_for_tile_cover_correction_border():
    # the 1-px correction border of tile (20, 20) at z6 reaches into parent columns 9 and 10
    ps = G.parents_for_tile(Tile(20, 20, 6))
    assert sorted(ps) == sorted(Tile(x, y, 5) for x in (9, 10) for y in (9, 10))


def test_tiles_for_rect_clamps_rows_and_wraps_columns():
    ts = G.tiles_for_rect(2, Rect(-10, -10, 30, 30))
    assert ts == [Tile(0, 0, 2), Tile(3, 0, 2)]


# ---- plan ---------------------------------------------------------------------------------
def test_plan_of_a_two_level_tile_by_hand():
    tiles_per_level, wins_per_level = plan(Tile(20, 20, 6), 4, G, never_cached)
    assert tiles_per_level == [
        [Tile(9, 9, 5), Tile(10, 9, 5), Tile(9, 10, 5), Tile(10, 10, 5)],
        [Tile(20, 20, 6)],
    ]
    assert [len(ws) for ws in wins_per_level] == [9, 4]
    assert {(w.col, w.row) for w in wins_per_level[0]} == {
        (c, r) for c in (8, 9, 10) for r in (8, 9, 10)
    }


@pytest.fixture(scope="module")
def deep_plan():
    target = Tile(140_000, 90_000, 18)
    return target, plan(target, 4, G, never_cached)


def test_cold_deep_plan_has_one_entry_per_level(deep_plan):
    target, (tiles_per_level, wins_per_level) = deep_plan
    assert len(tiles_per_level) == len(wins_per_level) == target.z - 4


def test_cold_deep_plan_levels_are_ordered_ancestors_first(deep_plan):
    target, (tiles_per_level, wins_per_level) = deep_plan
    for i, (ts, ws) in enumerate(zip(tiles_per_level, wins_per_level, strict=True)):
        assert {t.z for t in ts} == {5 + i}
        assert {w.z for w in ws} == {5 + i}
    assert tiles_per_level[-1] == [target]


def test_cold_deep_plan_levels_are_sorted(deep_plan):
    _, (tiles_per_level, wins_per_level) = deep_plan
    for ts, ws in zip(tiles_per_level, wins_per_level, strict=True):
        assert ts == sorted(ts, key=lambda t: (t.y, t.x))
        assert ws == sorted(ws, key=lambda w: (w.row, w.col))
        assert len(set(ws)) == len(ws)


def test_cold_deep_plan_costs_a_bounded_neighbourhood_per_level(deep_plan):
    _, (tiles_per_level, wins_per_level) = deep_plan
    assert len(wins_per_level[-1]) == 4
    assert all(len(ws) <= 16 for ws in wins_per_level)
    assert all(len(ts) <= 9 for ts in tiles_per_level)


def test_cold_deep_plan_windows_are_those_of_its_tiles(deep_plan):
    _, (tiles_per_level, wins_per_level) = deep_plan
    for ts, ws in zip(tiles_per_level, wins_per_level, strict=True):
        assert set(ws) == {w for t in ts for w in G.windows_for_tile(t)}


def test_cold_deep_plan_is_closed_under_dependencies(deep_plan):
    _, (tiles_per_level, wins_per_level) = deep_plan
    for level in range(1, len(tiles_per_level)):
        parents = set(tiles_per_level[level - 1])
        for w in wins_per_level[level]:
            assert set(G.parents_for_window(w)) <= parents
        for t in tiles_per_level[level]:
            assert set(G.parents_for_tile(t)) <= parents


def test_plan_with_everything_cached_has_nothing_to_do():
    tiles_per_level, wins_per_level = plan(Tile(140_000, 90_000, 18), 4, G, lambda _n: True)
    assert all(ts == [] for ts in tiles_per_level)
    assert all(ws == [] for ws in wins_per_level)


def test_plan_stops_at_cached_parents():
    target = Tile(20, 20, 6)
    cached = lambda n: isinstance(n, Tile) and n.z == 5  # noqa: E731
    tiles_per_level, wins_per_level = plan(target, 4, G, cached)
    assert tiles_per_level == [[], [target]]
    assert wins_per_level == [[], G.windows_for_tile(target)]


def test_plan_at_base_plus_one_has_one_level():
    tiles_per_level, wins_per_level = plan(Tile(3, 3, 5), 4, G, never_cached)
    assert tiles_per_level == [[Tile(3, 3, 5)]]
    assert len(wins_per_level[0]) == 4


def test_plan_is_independent_of_is_cached_call_order():
    a = plan(Tile(1000, 700, 12), 4, G, never_cached)
    seen = []
    b = plan(Tile(1000, 700, 12), 4, G, lambda n: seen.append(n) or False)
    assert a == b
    assert seen  # the callback was consulted


# ---- amortized cost -----------------------------------------------------------------------
def test_block_of_8x8_tiles_needs_9x9_windows():
    tiles = [Tile(x, y, 12) for y in range(100, 108) for x in range(200, 208)]
    wins = {w for t in tiles for w in G.windows_for_tile(t)}
    assert len(wins) == 81


def test_panning_over_8x8_tiles_plans_81_windows_in_all():
    # one level below the base: parents are the base itself, so only this level's windows count
    done: set = set()
    total = 0
    for y in range(100, 108):
        for x in range(200, 208):
            _, wins_per_level = plan(Tile(x, y, 12), 11, G, lambda n: n in done)
            new = wins_per_level[-1]
            total += len(new)
            done.update(new)
            done.add(Tile(x, y, 12))
    assert total == 81
