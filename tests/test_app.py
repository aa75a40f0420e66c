"""The HTTP server (``tileserver.create_app``) through Starlette's TestClient, lifespan included.

Worlds: earth only (its base is Blue Marble reprojected per tile, cheap) with a tiny random model
saved to a temporary folder. Tiles stay at zoom <= 5.
"""

from __future__ import annotations

import time

import anyio
import numpy as np
import pytest
from starlette.testclient import TestClient

from generator import tiles
from generator.metrics import box_down2, psnr
from generator.store import pack, unpack
from tests.serving_helpers import decode, decode_array, parse_metrics, save_tiny_model
from tileserver import Settings, create_app

TILE = "/tiles/earth/3/4/2.png"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def settings(model_dir, **kw) -> Settings:
    return Settings(model=str(model_dir), worlds=("earth",), **kw)


@pytest.fixture(scope="module")
def client(model_dir):
    with TestClient(create_app(settings(model_dir))) as c:
        yield c


@pytest.fixture(scope="module")
def first(client):
    """The first response for TILE (generated, not cached)."""
    r = client.get(TILE)
    assert r.status_code == 200, r.text
    return r


def metrics(client) -> dict[str, float]:
    """Parse /metrics (Prometheus text) into {series: value}."""
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return parse_metrics(r.text)


def cache_key(app, z: int, x: int, y: int, scale: int = 1, fmt: str = "png") -> str:
    """The key the tile route stores encoded tiles under."""
    world = app.state.worlds["earth"]
    return f"{world.content_hash}/e/{z}/{x}/{y}@{scale}.{fmt}"


# ---- tiles ---------------------------------------------------------------------------------


def test_tile_png(first, client):
    assert first.headers["content-type"] == "image/png"
    im = decode(first.content)
    assert im.format == "PNG"
    assert im.size == (256, 256)
    assert im.mode == "RGB"
    assert np.asarray(im).std() > 1  # not a blank tile
    assert first.headers["access-control-allow-origin"] == "*"
    cc = first.headers["cache-control"]
    assert "public" in cc and "max-age=" in cc
    assert int(cc.split("max-age=")[1].split(",")[0]) > 0
    assert first.headers["x-orbis-world-version"] == client.app.state.worlds["earth"].content_hash


def test_tile_etag_is_strong_and_quoted(first):
    etag = first.headers["etag"]
    assert not etag.startswith("W/")
    assert len(etag) > 2 and etag[0] == etag[-1] == '"'
    assert '"' not in etag[1:-1] and " " not in etag


def test_tile_resolution_header(first):
    mpp = float(first.headers["x-orbis-resolution"])
    assert mpp == pytest.approx(tiles.ground_resolution(3, 2), rel=1e-5)
    # below the equator's cell size at z3, above the z4 one at this latitude
    assert tiles.equator_resolution(4) / 2 < mpp < tiles.equator_resolution(3)


def test_tile_is_deterministic_and_cached(client, first):
    before = metrics(client)
    again = client.get(TILE)
    after = metrics(client)
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["etag"] == first.headers["etag"]
    assert after["orbis_cache_hits_total"] == before["orbis_cache_hits_total"] + 1
    assert after["orbis_tiles_generated_total"] == before["orbis_tiles_generated_total"]


def test_head_has_headers_and_no_body(client, first):
    r = client.head(TILE)
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["etag"] == first.headers["etag"]


@pytest.mark.parametrize(
    "inm",
    [
        "{etag}",
        "W/{etag}",
        '"something-else", {etag}',
        "*",
    ],
)
def test_if_none_match_gives_304(client, first, inm):
    etag = first.headers["etag"]
    r = client.get(TILE, headers={"If-None-Match": inm.format(etag=etag)})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == etag
    assert "cache-control" in r.headers
    assert "content-type" not in r.headers


@pytest.mark.parametrize("inm", ['"not-this-tile"', 'W/"x"', '"{etag}x"'])
def test_other_etag_gives_200(client, first, inm):
    inm = inm.replace("{etag}", first.headers["etag"].strip('"'))
    r = client.get(TILE, headers={"If-None-Match": inm})
    assert r.status_code == 200
    assert r.content == first.content


def test_304_needs_no_generation(client):
    """A conditional request for a tile never generated is answered from the ETag alone."""
    before = metrics(client)
    r = client.get("/tiles/earth/3/4/2.webp")
    etag = r.headers["etag"]
    mid = metrics(client)
    # the pixels of 3/4/2 were made for the PNG: the WebP only costs an encoding
    assert mid["orbis_tiles_encoded_total"] == before["orbis_tiles_encoded_total"] + 1
    r = client.get("/tiles/earth/2/1/1.png", headers={"If-None-Match": "*"})
    assert r.status_code == 304
    r = client.get("/tiles/earth/3/4/2.webp", headers={"If-None-Match": etag})
    assert r.status_code == 304
    after = metrics(client)
    for counter in ("orbis_tiles_generated_total", "orbis_tiles_encoded_total"):
        assert after[counter] == mid[counter]
    assert after["orbis_cache_hits_total"] == mid["orbis_cache_hits_total"]


def test_retina_tile(client, first):
    r = client.get("/tiles/earth/3/4/2@2x.png")
    assert r.status_code == 200
    im = decode(r.content)
    assert im.size == (512, 512) and im.mode == "RGB"
    assert r.headers["etag"] != first.headers["etag"]
    mpp = float(r.headers["x-orbis-resolution"])
    assert mpp == pytest.approx(float(first.headers["x-orbis-resolution"]) / 2, rel=1e-4)
    # the @2x mosaic is the four children: it zooms out to the @1x tile
    assert psnr(box_down2(np.asarray(im)), decode_array(first.content)) >= 30


def test_retina_above_max_zoom_is_400(client):
    r = client.get("/tiles/earth/22/0/0@2x.png")
    assert r.status_code == 400
    assert "@2x" in r.json()["detail"]


@pytest.mark.parametrize(
    ("suffix", "media", "pil"),
    [("jpg", "image/jpeg", "JPEG"), ("jpeg", "image/jpeg", "JPEG"), ("webp", "image/webp", "WEBP")],
)
def test_other_formats(client, first, suffix, media, pil):
    r = client.get(f"/tiles/earth/3/4/2.{suffix}")
    assert r.status_code == 200
    assert r.headers["content-type"] == media
    im = decode(r.content)
    assert im.format == pil and im.size == (256, 256) and im.mode == "RGB"
    assert r.headers["etag"] != first.headers["etag"]
    # same pixels as the PNG, up to lossy compression
    diff = np.abs(np.asarray(im).astype(int) - decode_array(first.content).astype(int))
    assert diff.mean() < 10


@pytest.mark.parametrize("x", [-1, 15, -9])
def test_x_wraps(client, x):
    a = client.get(f"/tiles/earth/3/{x}/2.png")
    b = client.get("/tiles/earth/3/7/2.png")
    assert a.status_code == b.status_code == 200
    assert a.content == b.content
    assert a.headers["etag"] == b.headers["etag"]


def test_generated_zoom_5_tile(client):
    r = client.get("/tiles/earth/5/16/10.png")
    assert r.status_code == 200
    im = decode(r.content)
    assert im.size == (256, 256) and im.mode == "RGB"
    world = client.app.state.worlds["earth"]
    assert ("x-orbis-extrapolated" in r.headers) == world.beyond_training(5, 10)


# ---- bad input ---------------------------------------------------------------------------

LONG = "9" * 5000

BAD = [
    # (path, status, a fragment the detail must contain)
    ("/tiles/earth/-1/0/0.png", 400, "zoom must be >= 0"),
    ("/tiles/earth/23/0/0.png", 404, "maximum zoom 22"),
    ("/tiles/earth/9999999999/0/0.png", 404, "9999999999"),
    ("/tiles/earth/3/0/8.png", 400, "y must be in 0..7"),
    ("/tiles/earth/3/0/-1.png", 400, "got -1"),
    ("/tiles/earth/0/0/1.png", 400, "y must be in 0..0"),
    ("/tiles/earth/a/0/0.png", 400, "zoom must be an integer, got 'a'"),
    ("/tiles/earth/3.5/0/0.png", 400, "'3.5'"),
    ("/tiles/earth/3/b/0.png", 400, "x must be an integer, got 'b'"),
    ("/tiles/earth/3/0/c.png", 400, "'c.png'"),
    ("/tiles/earth/%E2%91%A2/0/0.png", 400, "zoom must be an integer"),
    ("/tiles/mars/3/0/0.png", 404, "unknown world 'mars'"),
    ("/tiles/mars/tilejson.json", 404, "unknown world 'mars'"),
    ("/tiles/earth%00/3/0/0.png", 404, "unknown world"),
    ("/tiles/earth/3/0/0.gif", 400, "unknown tile format 'gif'"),
    ("/tiles/earth/3/0/0", 400, "Y.FORMAT"),
    ("/tiles/earth/3/0/0@3x.png", 400, "'@3x'"),
    ("/nope", 404, "no such endpoint: /nope"),
    ("/tiles/earth/3/0", 404, "no such endpoint"),
    ("/tiles/earth/3/0/0.png/extra", 400, "unknown tile matrix set '3'"),
    ("/tiles/..%2f..%2fetc/passwd/1/1.png", 404, "no such endpoint"),
    ("/tiles/..%2f..%2fetc%2fpasswd/1/1/1.png", 404, "no such endpoint"),
    ("/static/../pyproject.toml", 404, "no such endpoint"),
    ("/static/%2e%2e/pyproject.toml", 404, "no such endpoint"),
    ("/static/..%2fpyproject.toml", 404, "no such endpoint"),
    ("/static/..%2f..%2fpyproject.toml", 404, "no such endpoint"),
    ("/static/vendor/leaflet/..%2f..%2f..%2f..%2fpyproject.toml", 404, "no such endpoint"),
    ("/static/%2fetc%2fpasswd", 404, "no such endpoint"),
    ("/tiles/" + "w" * 5000 + "/3/0/0.png", 404, "unknown world"),
    ("/tiles/earth/" + LONG + "/0/0.png", 400, "zoom must be an integer"),
    ("/tiles/earth/3/" + LONG + "/0.png", 400, "x must be an integer"),
    ("/tiles/earth/3/0/" + LONG + ".png", 400, "Y.FORMAT"),
    ("/tiles/earth/3/0/0." + "p" * 5000, 400, "Y.FORMAT"),
    ("/" + "n" * 5000, 404, "no such endpoint"),
]


@pytest.mark.parametrize(("path", "status", "fragment"), BAD, ids=[p[:50] for p, _, _ in BAD])
def test_bad_input_is_4xx_json(client, path, status, fragment):
    before = metrics(client)["orbis_tiles_generated_total"]
    r = client.get(path)
    assert r.status_code == status, r.text[:300]
    assert r.headers["content-type"] == "application/json"
    detail = r.json()["detail"]
    assert fragment in detail
    assert len(detail) < 400  # long values are cut, not echoed
    assert "[project]" not in r.text and "root:" not in r.text
    assert metrics(client)["orbis_tiles_generated_total"] == before


def test_wrong_method_is_405_json(client):
    r = client.post(TILE)
    assert r.status_code == 405
    assert "detail" in r.json()
    assert "GET" in r.headers["allow"]


# ---- other endpoints ---------------------------------------------------------------------


def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["worlds"] == {"earth": client.app.state.worlds["earth"].content_hash}
    assert body["generating"] == 0 and body["queued"] == 0


def test_worlds(client):
    r = client.get("/worlds")
    assert r.status_code == 200
    items = r.json()
    assert [w["name"] for w in items] == ["earth"]
    earth = items[0]
    assert earth["tile_url"] == "/tiles/earth/{z}/{x}/{y}.png"
    assert earth["max_zoom"] == 22 and earth["min_zoom"] == 0 and earth["base_zoom"] == 4
    assert earth["version"] == client.app.state.worlds["earth"].content_hash
    assert len(earth["center"]) == 3
    assert earth["tile_url"].format(z=3, x=4, y=2) == TILE


def test_tilejson(client):
    r = client.get("/tiles/earth/tilejson.json")
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    doc = r.json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"] == ["http://testserver/tiles/earth/{z}/{x}/{y}.png"]
    assert doc["minzoom"] == 0 and doc["maxzoom"] == 22
    w, s, e, n = doc["bounds"]
    assert (w, e) == (-180, 180) and s == pytest.approx(-85.0511, abs=1e-4) and n == -s
    lon, lat, zoom = doc["center"]
    assert w <= lon <= e and s <= lat <= n and doc["minzoom"] <= zoom <= doc["maxzoom"]
    assert doc["scheme"] == "xyz"
    assert isinstance(doc["attribution"], str) and doc["attribution"]


def test_metrics_counters(client, first):
    m = metrics(client)
    assert m["orbis_tiles_generated_total"] >= 1
    assert "orbis_cache_hits_total" in m
    text = client.get("/metrics").text
    assert "# TYPE orbis_tiles_generated_total counter" in text
    assert "# TYPE orbis_cache_hits_total counter" in text
    assert "orbis_generation_running 0" in text


def test_viewer(client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text.lower()
    assert "/static/vendor/leaflet/leaflet.js" in r.text


def test_static_leaflet(client):
    r = client.get("/static/vendor/leaflet/leaflet.js")
    assert r.status_code == 200
    assert "javascript" in r.headers["content-type"]
    assert len(r.content) > 10_000
    assert b"Leaflet" in r.content[:2000] or b"leaflet" in r.content[:2000]


# ---- cache -------------------------------------------------------------------------------


def test_disk_cache_survives_restart(model_dir, tmp_path):
    cache = str(tmp_path / "c")
    with TestClient(create_app(settings(model_dir, cache=cache))) as c1:
        r1 = c1.get(TILE)
        assert r1.status_code == 200
        assert metrics(c1)["orbis_tiles_generated_total"] == 1
    with TestClient(create_app(settings(model_dir, cache=cache))) as c2:
        r2 = c2.get(TILE)
        m = metrics(c2)
    assert r2.status_code == 200
    assert r2.content == r1.content
    assert r2.headers["etag"] == r1.headers["etag"]
    assert m["orbis_tiles_generated_total"] == 0
    assert m["orbis_cache_hits_total"] == 1


@pytest.mark.parametrize(
    "garbage",
    [b"garbage bytes", b"", pack(b"not a png")[:-1], b"ORB" + b"\0" * 40],
    ids=["text", "empty", "truncated-frame", "bad-magic"],
)
def test_corrupt_cache_entry_is_regenerated(model_dir, tmp_path, garbage):
    with TestClient(create_app(settings(model_dir, cache=str(tmp_path / "c")))) as c:
        original = c.get(TILE)
        assert original.status_code == 200
        store = c.app.state.store
        key = cache_key(c.app, 3, 4, 2)
        assert unpack(store.get(key)) == original.content  # the key is the one the route uses
        store.set(key, garbage)
        c.app.state.hot.delete(key)  # as after a restart: only the disk copy is left
        before = metrics(c)
        r = c.get(TILE)
        after = metrics(c)
        assert r.status_code == 200
        assert r.headers["content-type"] == "image/png"
        assert decode(r.content).size == (256, 256)
        assert r.content == original.content
        # encoded again from the cached pixels: no pyramid work
        assert after["orbis_tiles_encoded_total"] == before["orbis_tiles_encoded_total"] + 1
        assert after["orbis_tiles_generated_total"] == before["orbis_tiles_generated_total"]
        assert after["orbis_cache_hits_total"] == before["orbis_cache_hits_total"]
        assert unpack(store.get(key)) == original.content  # healed


# ---- overload ----------------------------------------------------------------------------


async def _hold(gate, *, task_status=anyio.TASK_STATUS_IGNORED):
    """Hold a generation slot until the event handed back through ``started`` is set."""
    release = anyio.Event()
    async with gate.slot():
        task_status.started(release)
        await release.wait()


async def _queue(gate) -> None:
    async with gate.slot():
        pass


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_overload_gives_503_and_cached_tiles_still_served(model_dir):
    with TestClient(create_app(settings(model_dir, max_generating=1, max_queue=1))) as c:
        cached = c.get(TILE)
        assert cached.status_code == 200
        gate = c.app.state.gate
        holder, release = c.portal.start_task(_hold, gate)
        queued = c.portal.start_task_soon(_queue, gate)
        try:
            _wait_for(lambda: gate.waiting == 1)
            assert gate.running == 1
            health = c.get("/health").json()
            assert (health["generating"], health["queued"]) == (1, 1)

            r = c.get("/tiles/earth/3/5/2.png")
            assert r.status_code == 503
            assert int(r.headers["retry-after"]) > 0
            assert "queue is full" in r.json()["detail"]

            again = c.get(TILE)  # cached tiles never wait for the gate
            assert again.status_code == 200 and again.content == cached.content
        finally:
            c.portal.call(release.set)
        holder.result(timeout=10)
        queued.result(timeout=10)
        assert (gate.running, gate.waiting) == (0, 0)
        r = c.get("/tiles/earth/3/5/2.png")
        assert r.status_code == 200
        assert decode(r.content).size == (256, 256)


def test_no_queue_still_generates_when_idle(model_dir):
    with TestClient(create_app(settings(model_dir, max_generating=1, max_queue=0))) as c:
        r = c.get("/tiles/earth/3/5/2.png")
        assert r.status_code == 200
