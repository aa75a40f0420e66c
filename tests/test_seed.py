"""Seeding (``generator.seed``, ``orbis seed``) on a real Dask ``LocalCluster``.

One module-wide cluster of two single-threaded worker processes seeds a small box around Paris
at zooms 3–7 into a diskcache folder, with the tiny random model saved to disk (workers load it
themselves). Seeded tiles must equal tiles rendered here with an empty cache, byte for byte.
The argument errors are checked without a cluster.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from generator import seed
from generator.cli import main
from generator.errors import InvalidRegion, OrbisError
from generator.planner import Window
from generator.region import parse_bbox, parse_zooms
from generator.seed import (
    Phase,
    SeedError,
    WorldSpec,
    blocks,
    count_tiles,
    load_world,
    plan_seed,
    run_seed,
)
from generator.tiles import Tile
from generator.world import World, load_model
from tests.serving_helpers import save_tiny_model

BBOX = "2.2,48.7,2.5,49.0"
ZOOMS = (3, 7)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="module")
def cluster():
    """A real LocalCluster: two worker processes, one thread each."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as c:
        yield c.scheduler_address


@pytest.fixture(scope="module")
def seeded(cluster, model_dir, tmp_path_factory):
    """The box seeded once: (spec, plan, report)."""
    spec = WorldSpec("earth", str(tmp_path_factory.mktemp("cache")), str(model_dir), None)
    world = load_world(spec)
    try:
        plan = plan_seed(world, parse_bbox(BBOX), ZOOMS)
    finally:
        world.pyramid.store.close()
    report = run_seed(plan, spec, scheduler=cluster, progress=False)
    return spec, plan, report


# ---- arguments and the plan (no cluster) ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3-7", (3, 7)), ("5", (5, 5)), (" 0-0 ", (0, 0))],
)
def test_parse_zooms(text, expected):
    r = parse_zooms(text)
    assert (r[0], r[-1]) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("7-3", "increasing"), ("a-b", "A-B"), ("1-2-3", "A-B"), ("-1", "A-B"), ("", "A-B")],
)
def test_parse_zooms_errors(text, message):
    with pytest.raises(InvalidRegion, match=message):
        parse_zooms(text)


def test_count_tiles_matches_the_listed_tiles():
    box = parse_bbox(BBOX)
    assert count_tiles(box, range(3, 9)) == sum(len(seed.bbox_tiles(box, z)) for z in range(3, 9))
    # a box across the antimeridian is the two halves'
    across = parse_bbox("170,-10,-170,10")
    assert {t.x for t in seed.bbox_tiles(across, 4)} == {15, 0}


def test_the_plan_makes_ancestors_first_and_windows_before_tiles(tiny_model):
    world = World.load("earth", model=tiny_model)  # a fresh, empty in-memory cache
    plan = plan_seed(world, parse_bbox(BBOX), ZOOMS)
    order = [(p.z, p.kind) for p in plan.phases]
    # the base (z4) first, then its box means upwards, then each generated level's two phases
    assert order == [(4, "tiles"), (3, "tiles")] + [
        (z, kind) for z in range(5, 8) for kind in ("windows", "tiles")
    ] + [(z, "encode") for z in range(3, 8)]  # the served bytes (PNG by default), last
    box = parse_bbox(BBOX)
    for z in range(5, 8):  # every tile of the box is planned (the cone adds a margin)
        planned = {Tile(*i) for p in plan.phases if (p.z, p.kind) == (z, "tiles") for i in p.items}
        assert set(seed.bbox_tiles(box, z)) <= planned
    assert plan.model_evals == plan.windows * world.pyramid.steps
    assert "to generate" in plan.summary()


def test_blocks_cover_every_item_once():
    items = [(z, c, r) for z in (9,) for r in range(10) for c in range(12)]
    phase = Phase(9, "windows", items)
    big = blocks(phase, workers=2)
    assert sorted(i for b in big for i in b) == sorted(items)
    assert max(len(b) for b in big) == 16  # 4×4 blocks when there are enough for the workers
    few = blocks(Phase(9, "windows", items[:6]), workers=2)
    assert [len(b) for b in few] == [1] * 6  # otherwise single items, for load balance


def test_the_area_limit_needs_force(tiny_model):
    world = World.load("earth", model=tiny_model)
    with pytest.raises(SeedError, match="over the limit of 50,000 per command") as info:
        plan_seed(world, parse_bbox("-180,-85,180,85"), (0, 12))
    assert "\n" not in str(info.value)


def test_force_lifts_the_limit(tiny_model, monkeypatch):
    world = World.load("earth", model=tiny_model)
    monkeypatch.setattr(seed, "MAX_TILES", 2)
    with pytest.raises(SeedError, match="--force"):
        plan_seed(world, parse_bbox(BBOX), (3, 5))
    assert plan_seed(world, parse_bbox(BBOX), (3, 5), force=True).tiles > 0


def test_zooms_beyond_the_world_are_refused(tiny_model):
    world = World.load("earth", model=tiny_model)
    with pytest.raises(SeedError, match=r"must lie in 0\.\.22"):
        plan_seed(world, parse_bbox(BBOX), (20, 23))


def test_a_memory_cache_is_refused_with_several_workers():
    with pytest.raises(SeedError, match="private to each worker"):
        seed.check_cache("memory", 2, remote=False)
    with pytest.raises(SeedError, match="private to each worker"):
        seed.check_cache(None, 1, remote=True)
    seed.check_cache("memory", 1, remote=False)  # one local worker: allowed


def test_an_unreachable_cache_is_refused(tiny_model):
    import socket

    from tileserver.redis_store import RedisStore

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    store = RedisStore(f"redis://127.0.0.1:{port}/0")
    try:
        world = World.load("earth", store=store, model=tiny_model)
        with pytest.raises(SeedError, match="the cache is not reachable: RedisStore"):
            plan_seed(world, parse_bbox(BBOX), ZOOMS)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bbox", "1,2,3", "--zooms", "3-5"], "bbox must be four numbers"),
        (["--bbox", "2,49,1,48", "--zooms", "3-5"], "south (49.0) must be below north"),
        (["--bbox", "1,48,2,49", "--zooms", "5-3"], "zooms '5-3' must be increasing"),
        (["--bbox", "1,48,2,49", "--zooms", "3-5", "--cache", "memory", "--workers", "2"],
         "private to each worker"),
        (["--bbox", "1,48,2,49", "--zooms", "3-5", "--cache", "redis://h:x/0"], "Port"),
    ],
)  # fmt: skip
def test_cli_argument_errors_are_one_line(args, message):
    result = CliRunner().invoke(main, ["seed", "earth", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("orbis: error: "), result.output
    assert message in lines[0]


def test_cli_area_limit_is_one_line(model_dir, tmp_path):
    args = ["seed", "earth", "--bbox", "-180,-90,180,90", "--zooms", "0-12"]
    args += ["--cache", str(tmp_path / "c"), "--model", str(model_dir)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith("orbis: error: seeding earth z0-12 over -180,-85.0511,180,85.0511 ")
    # the whole world to z12: (4^13 - 1) / 3 tiles
    assert "covers 22,369,621 tiles, over the limit of 50,000 per command" in line
    assert line.endswith("narrow --bbox or --zooms or pass --force")


# ---- on the cluster ------------------------------------------------------------------------


@pytest.mark.slow
def test_seeded_tiles_equal_local_renders(seeded, model_dir):
    spec, _, _ = seeded
    model = load_model(str(model_dir))
    local = World.load("earth", model=model)  # an empty in-memory cache
    cached = load_world(spec)
    try:
        assert cached.content_hash == local.content_hash
        box = parse_bbox(BBOX)
        for z in range(ZOOMS[0], ZOOMS[1] + 1):
            for t in seed.bbox_tiles(box, z):
                assert cached.pyramid.is_cached(t), t
                got = cached.tile_array(t.z, t.x, t.y)
                assert got.tobytes() == local.tile_array(t.z, t.x, t.y).tobytes(), t
        assert cached.pyramid.stats.snapshot()["tiles_generated"] == 0  # all read from cache
    finally:
        cached.pyramid.store.close()


@pytest.mark.slow
def test_each_window_is_sampled_once(seeded):
    _, plan, report = seeded
    assert plan.windows > 0
    assert report.windows_generated == plan.windows  # no window made twice by two workers
    assert report.tiles_generated == plan.tiles
    assert report.model_evals == plan.model_evals
    assert report.workers == 2


@pytest.mark.slow
def test_a_second_run_generates_nothing(seeded, cluster):
    spec, _, _ = seeded
    world = load_world(spec)
    try:
        again = plan_seed(world, parse_bbox(BBOX), ZOOMS)
    finally:
        world.pyramid.store.close()
    assert (again.tiles, again.windows, again.phases) == (0, 0, [])
    report = run_seed(again, spec, scheduler=cluster, progress=False)
    assert (report.tiles_generated, report.windows_generated, report.tasks) == (0, 0, 0)


@pytest.mark.slow
def test_an_interrupted_seed_resumes_where_it_stopped(seeded, cluster):
    spec, _, _ = seeded
    t = seed.bbox_tiles(parse_bbox(BBOX), 7)[0]
    world = load_world(spec)
    try:
        want = world.tile_array(t.z, t.x, t.y)
        w = world.geometry.windows_for_tile(t)[-1]  # the tile's own window
        world.pyramid.store.delete(world.pyramid.tile_key(t))  # lost, as if killed mid-seed
        world.pyramid.store.delete(world.pyramid.window_key(w))
        fresh = load_world(spec)  # no in-process copies
        try:
            plan = plan_seed(fresh, parse_bbox(BBOX), ZOOMS)
        finally:
            fresh.pyramid.store.close()
        assert [(p.z, p.kind, p.items) for p in plan.phases] == [
            (7, "windows", [tuple(w)]),
            (7, "tiles", [tuple(t)]),
        ]
        report = run_seed(plan, spec, scheduler=cluster, progress=False)
        # generated again, or written back from the worker's in-memory copy: never both twice
        assert report.windows_generated <= 1 and report.tiles_generated <= 1
        assert report.tasks == 2
        again = load_world(spec)
        try:
            assert again.tile_array(t.z, t.x, t.y).tobytes() == want.tobytes()
        finally:
            again.pyramid.store.close()
    finally:
        world.pyramid.store.close()
    assert isinstance(w, Window)


@pytest.mark.slow
def test_cli_seed_on_a_scheduler_then_nothing_left(cluster, model_dir, tmp_path):
    args = ["seed", "earth", "--bbox", BBOX, "--zooms", "5-6", "--cache", str(tmp_path / "c")]
    args += ["--model", str(model_dir), "--scheduler", cluster, "--no-progress"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    lines = first.output.strip().splitlines()
    assert lines[0].startswith("seed earth z5-6 over 2.2,48.7,2.5,49: ")
    assert lines[-1].startswith("seeded earth z5-6: ") and "with 2 workers" in lines[-1]
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0, second.output
    assert second.output.strip().splitlines()[-1] == "nothing to generate: every tile is cached"


@pytest.mark.slow
def test_cli_seed_starts_a_local_cluster(model_dir, tmp_path):
    args = ["seed", "earth", "--bbox", BBOX, "--zooms", "5-5", "--cache", str(tmp_path / "c")]
    args += ["--model", str(model_dir), "--workers", "1", "--no-progress"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].endswith("with 1 worker")


@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_line(model_dir, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    args = ["seed", "earth", "--bbox", BBOX, "--zooms", "5-5", "--cache", str(tmp_path / "c")]
    args += ["--model", str(model_dir), "--scheduler", f"tcp://127.0.0.1:{port}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert (
        result.output.strip()
        .splitlines()[-1]
        .startswith(f"orbis: error: cannot reach the Dask scheduler tcp://127.0.0.1:{port}")
    )
    assert issubclass(SeedError, OrbisError)
