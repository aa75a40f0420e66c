"""Seeding seeds the served bytes: ``orbis seed --formats`` writes the encoded tiles under the
key the server reads (``generator.encoded``), so a seeded tile is answered with no generation and
no encoding, and ``orbis export`` reuses them.

Fast tests run the seed's blocks in this process (``run_block``, what a Dask worker runs) into a
diskcache folder and serve that folder with the Starlette test client; the slow one is the
operator's path: ``orbis seed`` on a local Dask cluster into a real ``redis-server``, a fresh
``orbis serve`` on it under another thread count, and ``orbis render`` bytes to compare with.
World: ``earth`` with no geography, the tiny random model.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import httpx
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from generator import seed
from generator.cli import main
from generator.encoded import encoded_key, encoded_tile
from generator.formats import ImageFormat
from generator.region import parse_bbox
from generator.seed import SeedError, WorldSpec, load_world, parse_formats, plan_seed, run_block
from generator.store import pack, unpack
from generator.world import World
from tests.helpers import REPO
from tests.serving_helpers import parse_metrics, stop_process
from tileserver import Settings, create_app

BBOX = "2.3,48.8,2.4,48.9"  # Paris: one tile per zoom at z0-6
ZOOMS = (3, 6)


def _seed_in_process(spec: WorldSpec, formats: tuple[str, ...]) -> seed.SeedPlan:
    """Plan and run a seed's blocks here, as the Dask workers would, phase after phase."""
    world = load_world(spec)
    try:
        plan = plan_seed(world, parse_bbox(BBOX), ZOOMS, formats=formats)
    finally:
        world.pyramid.store.close()
    for phase in plan.phases:
        run_block(spec, phase.kind, phase.items, phase.formats)
    seed._worlds.pop(spec).pyramid.store.close()  # the "worker" goes away
    return plan


@pytest.fixture(scope="module")
def seeded(nogeo_config_dir, tiny_model_dir, tmp_path_factory) -> tuple[WorldSpec, seed.SeedPlan]:
    cache = tmp_path_factory.mktemp("cache")
    spec = WorldSpec("earth", str(cache), str(tiny_model_dir), str(nogeo_config_dir))
    return spec, _seed_in_process(spec, ("png", "webp"))


def _metrics(client: TestClient) -> dict[str, float]:
    return parse_metrics(client.get("/metrics").text)


# ---- the key and the formats ---------------------------------------------------------------


def test_the_server_stores_encoded_tiles_under_encoded_key(
    nogeo_config_dir, tiny_model_dir, tmp_path
):
    settings = Settings(
        config_dir=nogeo_config_dir, model=str(tiny_model_dir), cache=str(tmp_path / "c")
    )
    with TestClient(create_app(settings)) as client:
        r = client.get("/tiles/earth/3/4/2.webp")
        assert r.status_code == 200
        world = client.app.state.worlds["earth"]
        key = encoded_key(world.content_hash, 3, 4, 2, "webp")
        assert unpack(client.app.state.store.get(key)) == r.content
        assert encoded_key("h", 1, 2, 3, ImageFormat.png, 2, "WorldCRS84Quad") == (
            "h/e/WorldCRS84Quad/1/2/3@2.png"
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, ("png",)), ("png,webp", ("png", "webp")), ("JPEG, png,jpg", ("jpg", "png")),
     ("none", ())],
)  # fmt: skip
def test_parse_formats(text, expected):
    assert parse_formats(text) == expected


def test_an_unknown_format_is_a_one_line_cli_error(tiny_model_dir, tmp_path):
    with pytest.raises(SeedError, match="unknown format 'gif'"):
        parse_formats("png,gif")
    args = ["seed", "earth", "--bbox", BBOX, "--zooms", "3-4", "--formats", "tiff"]
    result = CliRunner().invoke(
        main, [*args, "--cache", str(tmp_path), "--model", str(tiny_model_dir)]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith("orbis: error: --formats: unknown")


# ---- a seeded cache served and exported ----------------------------------------------------


def test_the_plan_encodes_every_bbox_tile_in_every_format_then_nothing(seeded):
    spec, plan = seeded
    box = parse_bbox(BBOX)
    want = {(t.x, t.y, t.z) for z in range(ZOOMS[0], ZOOMS[1] + 1) for t in seed.bbox_tiles(box, z)}
    encode = [p for p in plan.phases if p.kind == "encode"]
    assert {i for p in encode for i in p.items} == want
    assert plan.encodes == 2 * len(want) and "tiles to encode (png,webp)" in plan.summary()
    assert plan.phases.index(encode[0]) > max(
        i for i, p in enumerate(plan.phases) if p.kind != "encode"
    )  # after every tile exists
    world = load_world(spec)
    try:
        again = plan_seed(world, box, ZOOMS, formats=("png", "webp"))
        assert (again.phases, again.encodes) == ([], 0)  # a second run has nothing to do
        jpg = plan_seed(world, box, ZOOMS, formats=("jpg",))
        assert [p.kind for p in jpg.phases] == ["encode"] * 4 and jpg.windows == 0
    finally:
        world.pyramid.store.close()


def test_a_seeded_tile_is_served_with_no_generation_and_no_encoding(
    seeded, nogeo_config_dir, tiny_model_dir
):
    spec, _ = seeded
    fresh = World.load("earth", nogeo_config_dir, model=str(tiny_model_dir))  # nothing cached
    settings = Settings(config_dir=nogeo_config_dir, model=str(tiny_model_dir), cache=spec.cache)
    box = parse_bbox(BBOX)
    with TestClient(create_app(settings)) as client:
        n = 0
        for z in range(ZOOMS[0], ZOOMS[1] + 1):
            for t in seed.bbox_tiles(box, z):
                for fmt in ("png", "webp"):
                    r = client.get(f"/tiles/earth/{z}/{t.x}/{t.y}.{fmt}")
                    assert r.status_code == 200
                    want = ImageFormat(fmt).encode_image(fresh.tile_array(z, t.x, t.y))
                    assert r.content == want, (z, t, fmt)  # the server's own bytes
                    n += 1
        m = _metrics(client)
    assert m["orbis_tiles_generated_total"] == 0
    assert m["orbis_tiles_encoded_total"] == 0
    assert m["orbis_cache_hits_total"] == n
    assert m['orbis_world_model_evals_total{world="earth"}'] == 0


def test_pixels_seeded_without_formats_cost_an_encoding_only(
    nogeo_config_dir, tiny_model_dir, tmp_path
):
    spec = WorldSpec("earth", str(tmp_path / "c"), str(tiny_model_dir), str(nogeo_config_dir))
    _seed_in_process(spec, ())
    settings = Settings(config_dir=nogeo_config_dir, model=str(tiny_model_dir), cache=spec.cache)
    t = seed.bbox_tiles(parse_bbox(BBOX), 6)[0]
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/tiles/earth/6/{t.x}/{t.y}.png").status_code == 200
        m = _metrics(client)
    assert (m["orbis_tiles_generated_total"], m["orbis_tiles_encoded_total"]) == (0, 1)


def test_export_reuses_the_seeded_bytes(seeded, tmp_path, monkeypatch):
    from generator.export import export

    spec, _ = seeded
    world = load_world(spec)
    try:
        t = seed.bbox_tiles(parse_bbox(BBOX), 5)[0]
        marker = b"seeded bytes, not re-encoded"
        world.pyramid.store.set(encoded_key(world.content_hash, 5, t.x, t.y, "png"), pack(marker))

        def no_encoding(self, arr):
            raise AssertionError("export encoded a tile the cache had")

        monkeypatch.setattr(ImageFormat, "encode_image", no_encoding)
        out = tmp_path / "box.mbtiles"
        export(world, out, parse_bbox(BBOX), zooms=range(3, 7), progress=False)
        import sqlite3

        with sqlite3.connect(out) as db:
            rows = db.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level=5 AND tile_column=?", (t.x,)
            ).fetchall()
        assert [r[0] for r in rows] == [marker]
        assert encoded_tile(world, 5, t.x, t.y, "png") == (marker, False)
    finally:
        world.pyramid.store.close()


# ---- the operator's path: Dask seed into Redis, a fresh server under other threads ----------


@pytest.mark.slow
def test_seed_into_redis_then_a_fresh_server_does_no_work(
    nogeo_config_dir, tiny_model_dir, tmp_path
):
    from tests.test_redis_store import RedisServer, _wait_healthy, free_port

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (.ci/run installs Debian's)")
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    common = ["--config", str(nogeo_config_dir), "--model", str(tiny_model_dir)]
    proc = None
    try:
        seeded = subprocess.run(
            [sys.executable, "-m", "generator.cli", "seed", "earth", "--bbox", BBOX, "--zooms",
             "4-6", "--cache", redis_server.url, "--workers", "1", "--no-progress", *common],
            cwd=REPO, env=dict(env, OMP_NUM_THREADS="1"), capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        assert seeded.returncode == 0, seeded.stderr[-3000:]
        assert "3 encoded tiles" in seeded.stdout.splitlines()[-1], seeded.stdout
        rendered = tmp_path / "rendered"
        addresses = [f"{z}/{t.x}/{t.y}" for z in (4, 5, 6) for t in seed.bbox_tiles(
            parse_bbox(BBOX), z)]  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "generator.cli", "render", "earth", *addresses, "-o",
             str(rendered), *common],
            cwd=REPO, env=dict(env, OMP_NUM_THREADS="2"), capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        port = free_port()
        log = tmp_path / "serve.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "generator.cli", "serve", "--port", str(port), "--cache",
                 redis_server.url, *common],
                cwd=REPO, env={k: v for k, v in env.items() if k != "OMP_NUM_THREADS"},
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, proc, log)
        for a in addresses:
            r = httpx.get(f"{base}/tiles/earth/{a}.png", timeout=60)
            assert r.status_code == 200
            z, x, y = a.split("/")
            assert r.content == (rendered / z / x / f"{y}.png").read_bytes(), a
        m = parse_metrics(httpx.get(f"{base}/metrics", timeout=10).text)
        assert m["orbis_tiles_generated_total"] == 0
        assert m["orbis_tiles_encoded_total"] == 0
        assert m["orbis_cache_hits_total"] == len(addresses)
        assert m['orbis_world_model_evals_total{world="earth"}'] == 0
    finally:
        if proc is not None:
            stop_process(proc, timeout=30)
        redis_server.kill()
