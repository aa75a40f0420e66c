"""The lazy pyramid through ``World``: shapes, order independence, parent agreement, caching,
corruption, versioning, x wrap and cross-process identity.

All tests use the tiny random model (its output is texture, not imagery) and the earth world,
whose Blue Marble base is reprojected per tile, so a fresh world is cheap. Tiles are chosen in
the top rows where possible: a row-0 tile needs two windows, an interior one four.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from generator.errors import InvalidTile, ZoomOutOfRange
from generator.models.sr_model import random_model
from generator.resample import box_down2_np
from generator.store import MemoryStore, unpack
from generator.tiles import Tile
from generator.world import World
from tests.conftest import TINY_MODEL_ARGS
from tests.helpers import CONFIG_DIR, psnr, run_python, seam_ratio, sha256, write_world

BASE_Z = 4  # the earth's base zoom


def fresh_world(model, name: str = "earth", **kw) -> World:
    """A world with its own empty in-memory cache."""
    kw.setdefault("store", MemoryStore())
    return World.load(name, model=model, **kw)


def mosaic_of_children(world: World, z: int, x: int, y: int) -> np.ndarray:
    """Return the 512x512 mosaic of the four children of (z, x, y)."""
    out = np.empty((512, 512, 3), np.uint8)
    for dy in (0, 1):
        for dx in (0, 1):
            out[dy * 256 : (dy + 1) * 256, dx * 256 : (dx + 1) * 256] = world.tile_array(
                z + 1, 2 * x + dx, 2 * y + dy
            )
    return out


def parent_psnr(world: World, z: int, x: int, y: int) -> float:
    down = np.clip(np.rint(box_down2_np(mosaic_of_children(world, z, x, y))), 0, 255)
    return psnr(down, world.tile_array(z, x, y))


# ---- shapes and the public API ------------------------------------------------------------
def test_tile_below_base_is_256x256x3_uint8(earth):
    arr = earth.tile_array(BASE_Z + 1, 16, 10)
    assert arr.shape == (256, 256, 3)
    assert arr.dtype == np.uint8
    assert arr.std() > 1.0  # not a blank image


def test_tile_two_levels_below_base_is_256x256x3_uint8(earth):
    arr = earth.tile_array(BASE_Z + 2, 33, 20)
    assert arr.shape == (256, 256, 3)
    assert arr.dtype == np.uint8


def test_world_tile_returns_rgb_pil_image(earth):
    img = earth.tile(BASE_Z + 1, 16, 10)
    assert isinstance(img, Image.Image)
    assert img.mode == "RGB"
    assert img.size == (256, 256)
    np.testing.assert_array_equal(np.asarray(img), earth.tile_array(BASE_Z + 1, 16, 10))


def test_base_tile_is_the_reprojected_base(earth):
    np.testing.assert_array_equal(earth.tile_array(BASE_Z, 8, 5), earth.pyramid.base.tile(8, 5))


def test_tile_above_base_is_box_mean_of_children(earth):
    down = np.clip(np.rint(box_down2_np(mosaic_of_children(earth, BASE_Z - 1, 4, 2))), 0, 255)
    np.testing.assert_array_equal(earth.tile_array(BASE_Z - 1, 4, 2), down.astype(np.uint8))


def test_south_pole_row_tile_is_generated(earth):
    # its lower windows reach past the bottom of the grid
    arr = earth.tile_array(BASE_Z + 1, 3, (1 << (BASE_Z + 1)) - 1)
    assert arr.shape == (256, 256, 3)
    assert arr.std() > 1.0


def test_tile_above_max_zoom_is_refused(earth):
    with pytest.raises(ZoomOutOfRange, match=str(earth.max_zoom)):
        earth.tile_array(earth.max_zoom + 1, 0, 0)


def test_tile_with_y_out_of_range_is_refused(earth):
    with pytest.raises(InvalidTile, match="got 32"):
        earth.tile_array(5, 0, 32)


# ---- order independence -------------------------------------------------------------------
@pytest.mark.slow
def test_tiles_are_identical_whatever_the_request_order(tiny_model):
    # deeper tiles first in one world (their cones fill the cache), shallower first in the other
    order = [(6, 10, 0), (6, 11, 1), (5, 5, 0), (5, 6, 1)]
    a, b = fresh_world(tiny_model), fresh_world(tiny_model)
    got_a = {t: a.tile_array(*t) for t in order}
    got_b = {t: b.tile_array(*t) for t in reversed(order)}
    for t in order:
        assert got_a[t].tobytes() == got_b[t].tobytes(), t


def test_fresh_world_agrees_with_the_session_world(earth, tiny_model):
    np.testing.assert_array_equal(
        fresh_world(tiny_model).tile_array(5, 3, 0), earth.tile_array(5, 3, 0)
    )


# ---- children agree with their parent -----------------------------------------------------
@pytest.mark.slow
def test_children_agree_with_generated_parent(earth):
    assert parent_psnr(earth, BASE_Z + 1, 16, 10) >= 30.0


@pytest.mark.slow
def test_children_agree_with_base_parent(earth):
    assert parent_psnr(earth, BASE_Z, 8, 5) >= 30.0


# ---- caching and cost ---------------------------------------------------------------------
def test_second_request_costs_no_model_evaluation(earth):
    earth.tile_array(5, 16, 10)
    before = earth.pyramid.stats.snapshot()
    earth.tile_array(5, 16, 10)
    after = earth.pyramid.stats.snapshot()
    assert after["model_evals"] == before["model_evals"]
    assert after["tiles_generated"] == before["tiles_generated"]
    assert after["tile_hits"] == before["tile_hits"] + 1


def test_cold_tile_one_level_below_base_costs_its_windows(tiny_model):
    w = fresh_world(tiny_model)
    assert w.pyramid.plan_cost(Tile(7, 0, 5)) == (1, 2)
    w.tile_array(5, 7, 0)
    steps = TINY_MODEL_ARGS["steps"]
    assert w.pyramid.stats.snapshot()["model_evals"] == 2 * steps
    assert w.pyramid.plan_cost(Tile(7, 0, 5)) == (0, 0)


def test_neighbour_reuses_shared_window(tiny_model):
    w = fresh_world(tiny_model)
    w.tile_array(5, 7, 0)
    before = w.pyramid.stats.snapshot()["windows_generated"]
    w.tile_array(5, 8, 0)  # windows 7 and 8; 7 is cached
    assert w.pyramid.stats.snapshot()["windows_generated"] == before + 1


def test_shared_store_serves_a_second_world_without_model_evaluation(tiny_model):
    store = MemoryStore()
    first = fresh_world(tiny_model, store=store).tile_array(5, 9, 0)
    second = fresh_world(tiny_model, store=store)
    np.testing.assert_array_equal(second.tile_array(5, 9, 0), first)
    assert second.pyramid.stats.snapshot()["model_evals"] == 0


def test_concurrent_requests_for_one_tile_generate_it_once(tiny_model):
    w = fresh_world(tiny_model)
    results = [None] * 4

    def get(i):
        results[i] = w.tile_array(5, 20, 0)

    threads = [threading.Thread(target=get, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(r is not None and r.tobytes() == results[0].tobytes() for r in results)
    assert w.pyramid.stats.snapshot()["windows_generated"] == 2


def test_concurrent_neighbours_share_their_windows(tiny_model):
    w = fresh_world(tiny_model)
    xs = range(24, 28)
    threads = [threading.Thread(target=w.tile_array, args=(5, x, 0)) for x in xs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert w.pyramid.stats.snapshot()["windows_generated"] == len(xs) + 1
    assert all(w.pyramid.is_cached(Tile(x, 0, 5)) for x in xs)


# ---- corruption ---------------------------------------------------------------------------
def test_corrupt_tile_entry_is_regenerated_identically(tiny_model):
    store = MemoryStore()
    one = fresh_world(tiny_model, store=store)
    good = one.tile_array(5, 12, 0).copy()
    key = one.pyramid.tile_key(Tile(12, 0, 5))
    store.set(key, b"garbage")
    # a second world on the same store (its in-process front cache is empty) reads the garbage
    two = fresh_world(tiny_model, store=store)
    again = two.tile_array(5, 12, 0)
    assert again.tobytes() == good.tobytes()
    assert two.pyramid.stats.snapshot()["tiles_generated"] == 1
    assert two.pyramid.stats.snapshot()["model_evals"] == 0  # its windows were intact
    assert unpack(store.get(key)) is not None  # the entry was rewritten


def test_corrupt_window_entry_is_regenerated_identically(tiny_model):
    store = MemoryStore()
    one = fresh_world(tiny_model, store=store)
    good = one.tile_array(5, 14, 0).copy()
    p = one.pyramid
    for w in p.geometry.windows_for_tile(Tile(14, 0, 5)):
        framed = bytearray(store.get(p.window_key(w)))
        framed[-1] ^= 0xFF  # flip the last byte of the payload
        store.set(p.window_key(w), bytes(framed))
    store.delete(p.tile_key(Tile(14, 0, 5)))
    two = fresh_world(tiny_model, store=store)
    assert two.tile_array(5, 14, 0).tobytes() == good.tobytes()
    assert two.pyramid.stats.snapshot()["windows_generated"] == 2


# ---- versioning ---------------------------------------------------------------------------
EARTH_TOML = (CONFIG_DIR / "worlds" / "earth.toml").read_text()


def _hash(tmp_path, tiny_model, text: str, model=None) -> str:
    write_world(tmp_path, "w", text)
    return World.load("w", config_dir=tmp_path, model=model or tiny_model).content_hash


def test_content_hash_of_a_copied_config_is_unchanged(tmp_path, tiny_model):
    assert (
        _hash(tmp_path, tiny_model, EARTH_TOML)
        == World.load("earth", model=tiny_model).content_hash
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("seed = 20261123", "seed = 20261124"),
        ("zoom = 4", "zoom = 5"),
        ("margin = 32", "margin = 40"),
        ('kind = "bluemarble"', 'kind = "continents"'),
        ('path = "builtin"', 'path = "builtin"\nsteps = 3'),
    ],
    ids=["seed", "base-zoom", "margin", "base-kind", "steps"],
)
def test_content_hash_changes_with_what_decides_pixels(tmp_path, tiny_model, old, new):
    assert old in EARTH_TOML
    assert _hash(tmp_path, tiny_model, EARTH_TOML.replace(old, new)) != _hash(
        tmp_path, tiny_model, EARTH_TOML
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('title = "Earth (Blue Marble base)"', 'title = "Another title"'),
        ("max_zoom = 22", "max_zoom = 12"),
        ('attribution = "Generated', 'attribution = "Made'),
        ("center = [48.0, 10.0, 5]", "center = [0.0, 0.0, 2]"),
    ],
    ids=["title", "max-zoom", "attribution", "center"],
)
def test_content_hash_ignores_descriptive_fields(tmp_path, tiny_model, old, new):
    assert old in EARTH_TOML
    assert _hash(tmp_path, tiny_model, EARTH_TOML.replace(old, new)) == _hash(
        tmp_path, tiny_model, EARTH_TOML
    )


def test_content_hash_changes_with_model_weights(tmp_path, tiny_model):
    other = random_model(**TINY_MODEL_ARGS)
    with torch.no_grad():
        next(other.unet.parameters()).view(-1)[0] += 1e-3
    assert _hash(tmp_path, tiny_model, EARTH_TOML, model=other) != _hash(
        tmp_path, tiny_model, EARTH_TOML
    )


def test_cache_keys_start_with_the_content_hash(earth):
    p = earth.pyramid
    assert p.tile_key(Tile(1, 2, 3)).startswith(earth.content_hash + "/")
    assert p.window_key(p.geometry.windows_for_tile(Tile(1, 2, 3))[0]).startswith(
        earth.content_hash + "/"
    )


# ---- x wrap -------------------------------------------------------------------------------
def test_x_minus_one_is_the_last_column(earth):
    z = 5
    a = earth.tile_array(z, -1, 0)
    hits = earth.pyramid.stats.snapshot()["tile_hits"]
    b = earth.tile_array(z, (1 << z) - 1, 0)
    np.testing.assert_array_equal(a, b)
    assert earth.pyramid.stats.snapshot()["tile_hits"] == hits + 1  # one tile, one cache entry


def test_x_past_the_last_column_is_column_zero(earth):
    np.testing.assert_array_equal(earth.tile_array(5, 32, 0), earth.tile_array(5, 0, 0))


def test_no_seam_at_the_antimeridian(earth):
    n = 1 << 5
    west, east = earth.tile_array(5, n - 1, 0), earth.tile_array(5, 0, 0)
    assert seam_ratio(west, east) < 1.3
    # the metric does see a seam between tiles that are not neighbours
    assert seam_ratio(west, earth.tile_array(5, 3, 0)) > 1.3


# ---- cross-process identity ---------------------------------------------------------------
@pytest.mark.slow
def test_tile_is_identical_in_another_process(earth):
    code = (
        "import hashlib\n"
        "from generator.models.sr_model import random_model\n"
        "from generator.world import World\n"
        f"m = random_model(**{TINY_MODEL_ARGS!r})\n"
        "a = World.load('earth', model=m).tile_array(5, 3, 0)\n"
        "print(hashlib.sha256(a.tobytes()).hexdigest())\n"
    )
    assert run_python(code).strip().splitlines()[-1] == sha256(earth.tile_array(5, 3, 0))


# ---- planet -------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def planet(tiny_model):
    """The planet world (its synthetic base takes ~10 s to build, once)."""
    return World.load("planet", model=tiny_model)


@pytest.mark.slow
def test_planet_tile_below_base_is_an_rgb_image(planet):
    img = planet.tile(planet.config.base.zoom + 1, 0, 0)
    assert img.mode == "RGB" and img.size == (256, 256)
    assert np.asarray(img).std() > 1.0


@pytest.mark.slow
def test_planet_base_wraps_without_a_seam(planet):
    z = planet.config.base.zoom
    n = 1 << z
    y = n // 2
    assert seam_ratio(planet.tile_array(z, n - 1, y), planet.tile_array(z, 0, y)) < 1.5


def test_pyramid_rejects_tiles_outside_the_grid(earth):
    from generator.errors import InvalidTile
    from generator.tiles import Tile

    with pytest.raises(InvalidTile, match="outside the grid"):
        earth.pyramid.tile(Tile(0, 40, 5))
