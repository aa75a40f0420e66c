"""The ``xyz`` base (``generator.sources.xyz.XYZSource``) against a real tile server on 127.0.0.1.

The upstream is ``tests/xyz_upstream.py`` in a subprocess (HTTP/1.1 keep-alive, so the client's
pool holds live connections when the server is killed). What must hold: tiles and their alpha
arrive exactly; a missing tile is "no data" (alpha 0, cached); every other failure is an
``UpstreamError`` naming the upstream status (None when unreachable), retried briefly, never
cached; after a restart on the same port the same client serves again. Over HTTP an upstream
failure is a 502 with the status in ``detail`` and leaves no entry for that tile in any cache.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator.errors import InvalidTile, UpstreamError
from generator.sources.xyz import InvalidURLTemplate, XYZSource, validate_url
from tests import xyz_upstream as upstream

#: tiles the module's server does not have (→ 404 → alpha 0)
MISSING = {(2, 1, 1)}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("xyz-tiles")
    upstream.write_tiles(d, range(0, 3), skip=MISSING)
    # a half-transparent RGBA tile and a paletted tile with a transparent index
    rgba = np.dstack([upstream.tile_pixels(3, 0, 0), np.zeros((256, 256), np.uint8)])
    rgba[:, 128:, 3] = 255
    rgba[:64, :, 3] = 100
    (d / "3" / "0").mkdir(parents=True)
    Image.fromarray(rgba, "RGBA").save(d / "3" / "0" / "0.png")
    pal = Image.fromarray(np.repeat(np.arange(256, dtype=np.uint8)[None], 256, 0), "L")
    pal = pal.convert("P")
    pal.info["transparency"] = 0
    pal.save(d / "3" / "0" / "1.png", transparency=0)
    # JPEG and a 512-px (@2x style) tile
    (d / "jpg" / "2" / "3").mkdir(parents=True)
    Image.fromarray(upstream.tile_pixels(2, 3, 2)).save(d / "jpg/2/3/2.jpg", quality=95)
    (d / "big" / "1" / "0").mkdir(parents=True)
    Image.fromarray(upstream.tile_pixels(1, 0, 0, 512)).save(d / "big/1/0/0.png")
    return d


@pytest.fixture(scope="module")
def server(root):
    port = upstream.free_port()
    proc = upstream.start(root, port)
    yield f"http://127.0.0.1:{port}"
    upstream.kill(proc)


def source(base: str, path: str = "/{z}/{x}/{y}.png", max_zoom: int = 3, **kw) -> XYZSource:
    kw.setdefault("backoff", 0.01)
    return XYZSource(base + path, max_zoom, **kw)


# ---- reading ---------------------------------------------------------------------------------


def test_reads_tiles_exactly_with_full_alpha(server):
    with source(server) as src:
        for z, x, y in [(0, 0, 0), (1, 1, 0), (2, 3, 2)]:
            rgb, alpha = src.read(z, x, y)
            assert rgb.dtype == np.uint8 and rgb.shape == (256, 256, 3)
            assert alpha.dtype == np.float32 and alpha.shape == (256, 256)
            np.testing.assert_array_equal(rgb, upstream.tile_pixels(z, x, y))
            assert alpha.min() == 1.0
        assert src.native_zoom == 3 and src.tile_size == 256


def test_png_alpha_becomes_alpha(server):
    with source(server) as src:
        rgb, alpha = src.read(3, 0, 0)
        np.testing.assert_array_equal(rgb, upstream.tile_pixels(3, 0, 0))
        assert alpha[100, 200] == 1.0 and alpha[100, 10] == 0.0
        np.testing.assert_allclose(alpha[10, 200], 100 / 255, atol=1e-6)
        _, pal_alpha = src.read(3, 0, 1)  # paletted PNG with a transparent index
        assert pal_alpha[:, 0].max() == 0.0 and pal_alpha[:, 255].min() == 1.0


def test_jpeg_and_resampled_tiles(server):
    from tests.helpers import psnr

    with source(server, "/jpg/{z}/{x}/{y}.jpg") as src:
        rgb, alpha = src.read(2, 3, 2)
        assert psnr(rgb, upstream.tile_pixels(2, 3, 2)) > 35 and alpha.min() == 1.0
    with source(server, "/big/{z}/{x}/{y}.png") as src:
        rgb, _ = src.read(1, 0, 0)  # a 512-px upstream tile, resampled to 256
        assert rgb.shape == (256, 256, 3)
        assert psnr(rgb, upstream.tile_pixels(1, 0, 0)) > 30


def test_missing_tile_is_no_data_and_is_cached(server):
    with source(server) as src:
        rgb, alpha = src.read(*next(iter(MISSING)))
        assert alpha.max() == 0.0 and rgb.max() == 0
        fetched = src.fetches
        src.read(*next(iter(MISSING)))
        assert src.fetches == fetched  # a valid empty answer: not asked again
        assert src.failures == 0


def test_cached_tiles_are_read_only_and_x_wraps(server):
    with source(server) as src:
        rgb, alpha = src.read(2, 1, 2)
        with pytest.raises(ValueError):
            rgb[0, 0, 0] = 1
        with pytest.raises(ValueError):
            alpha[0, 0] = 0
        wrapped, _ = src.read(2, 1 + 4, 2)
        np.testing.assert_array_equal(wrapped, rgb)
        assert src.fetches == 1


def test_tms_rows(server):
    with source(server, "/{z}/{x}/{-y}.png") as src:
        assert src.tile_url(2, 1, 0).endswith("/2/1/3.png")
        rgb, _ = src.read(2, 3, 0)  # TMS row 3 of zoom 2 is XYZ row 0
        np.testing.assert_array_equal(rgb, upstream.tile_pixels(2, 3, 3))


def test_zoom_above_max_and_rows_outside_are_invalid(server):
    with source(server, max_zoom=2) as src:
        with pytest.raises(InvalidTile, match="max_zoom 2"):
            src.read(3, 0, 0)
        with pytest.raises(InvalidTile):
            src.read(2, 0, 4)
        assert src.fetches == 0


def test_concurrent_reads_fetch_once(server):
    with source(server, "/slow/0.2/{z}/{x}/{y}.png") as src:
        out = []
        threads = [
            threading.Thread(target=lambda: out.append(src.read(1, 0, 1)[0])) for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(out) == 6 and src.fetches == 1
        assert all(np.array_equal(o, out[0]) for o in out)


def test_identity_and_bounds():
    src = XYZSource("http://127.0.0.1:1/{z}/{x}/{y}.png", 12, headers={"Authorization": "k"})
    assert src.identity() == {
        "kind": "xyz",
        "url": "http://127.0.0.1:1/{z}/{x}/{y}.png",
        "max_zoom": 12,
        "tile_size": 256,
    }  # headers (credentials) are not hashed
    w, s, e, n = src.bounds()
    assert (w, e) == (-180.0, 180.0) and n == pytest.approx(85.0511, abs=1e-4) and s == -n
    box = (5.0, 45.0, 6.0, 46.0)
    assert XYZSource("http://h/{z}/{x}/{y}", 3, bounds=box).bounds() == box


# ---- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [500, 503])
def test_5xx_is_an_upstream_error_with_its_status_after_retries(server, code):
    with source(server, f"/status/{code}/{{z}}/{{x}}/{{y}}.png", retries=2) as src:
        with pytest.raises(UpstreamError) as info:
            src.read(1, 0, 0)
        assert info.value.status == code and str(code) in str(info.value)
        assert "after 3 attempts" in str(info.value)
        with pytest.raises(UpstreamError):
            src.read(1, 0, 0)  # not cached: asked again
        assert src.fetches == 2 and src.failures == 2


def test_4xx_other_than_404_is_not_retried(server):
    with source(server, "/status/403/{z}/{x}/{y}.png", retries=5, backoff=1.0) as src:
        t0 = time.perf_counter()
        with pytest.raises(UpstreamError) as info:
            src.read(1, 0, 0)
        assert info.value.status == 403 and "attempts" not in str(info.value)
        assert time.perf_counter() - t0 < 0.9  # no backoff slept


def test_undecodable_body_is_an_upstream_error(server):
    with source(server, "/garbage/{z}/{x}/{y}.png") as src:
        with pytest.raises(UpstreamError, match="undecodable tile \\(text/html\\)") as info:
            src.read(0, 0, 0)
        assert info.value.status == 200


def test_timeout_is_an_upstream_error_without_status(server):
    with source(server, "/slow/3/{z}/{x}/{y}.png", timeout=0.3, retries=0) as src:
        t0 = time.perf_counter()
        with pytest.raises(UpstreamError, match="timed out") as info:
            src.read(0, 0, 0)
        assert info.value.status is None
        assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://h/{z}/{x}.png", "no {y}"),
        ("http://h/tiles.png", "no {z}, {x}, {y}"),
        ("http://h/{z}/{x}/{y}/{s}.png", "unknown placeholder {s}"),
        ("tiles/{z}/{x}/{y}.png", "must start with http"),
        ("", "template is needed"),
    ],
)
def test_bad_url_template_is_one_line(url, fragment):
    with pytest.raises(InvalidURLTemplate) as info:
        validate_url(url)
    msg = str(info.value)
    assert fragment in msg and "\n" not in msg and msg.startswith("url")
    assert isinstance(info.value, ValueError)  # pydantic reports it under the config key
    with pytest.raises(InvalidURLTemplate):
        XYZSource(url, 5)


def test_valid_templates_pass_through():
    for url in ["https://a.b/{z}/{x}/{y}.png?key=1", "http://127.0.0.1:9/t/{z}/{x}/{-y}.jpg"]:
        assert validate_url(url) == url


# ---- outage: killed, then restarted on the same port -----------------------------------------


def test_outage_and_recovery_on_the_same_port(root):
    port = upstream.free_port()
    proc = upstream.start(root, port)
    src = XYZSource(f"http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png", 3, backoff=0.01)
    try:
        before, _ = src.read(2, 0, 0)  # a live pooled connection
        upstream.kill(proc)
        np.testing.assert_array_equal(src.read(2, 0, 0)[0], before)  # decoded and held: served
        with pytest.raises(UpstreamError) as info:
            src.read(2, 3, 3)
        assert info.value.status is None and "unreachable" in str(info.value)
        proc = upstream.start(root, port)
        rgb, alpha = src.read(2, 3, 3)  # the same client: the pool recovers
        np.testing.assert_array_equal(rgb, upstream.tile_pixels(2, 3, 3))
        assert alpha.min() == 1.0
        src.clear()
        np.testing.assert_array_equal(src.read(2, 0, 0)[0], before)  # fetched again, same bytes
    finally:
        src.close()
        upstream.kill(proc)


# ---- over HTTP: 502, nothing cached, normal service after -------------------------------------


class _XYZBaseLevel:
    """The pyramid's base level read from an XYZ source (what the composition does for alpha 1).

    Swapped into the earth world's pyramid, so the real tile route, flights, single flight and
    stores run over the upstream without depending on the world composition.
    """

    def __init__(self, src: XYZSource, zoom: int) -> None:
        self.src, self.zoom = src, zoom

    def tile(self, x: int, y: int) -> np.ndarray:
        return np.array(self.src.read(self.zoom, x, y)[0])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from tests.serving_helpers import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def _keys_for(store, z: int, x: int, y: int) -> list[str]:
    """Every key of an in-memory store that belongs to tile z/x/y (white box: ``_data``)."""
    return [k for k in list(store._data) if f"/{z}/{x}/{y}" in k]


@pytest.mark.slow
def test_http_outage_is_502_never_cached_then_recovers(root, model_dir, tmp_path):
    from starlette.testclient import TestClient

    from generator.encoded import encoded_key
    from tests.serving_helpers import decode_array
    from tileserver import Settings, create_app

    tiles4 = tmp_path / "tiles"
    upstream.write_tiles(tiles4, range(4, 5), skip=())  # z4 = earth's base zoom
    port = upstream.free_port()
    proc = upstream.start(tiles4, port)
    src = XYZSource(f"http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png", 4, backoff=0.01)
    failing = XYZSource(
        f"http://127.0.0.1:{port}/status/500/{{z}}/{{x}}/{{y}}.png", 4, backoff=0.01
    )
    try:
        with TestClient(create_app(Settings(model=str(model_dir), worlds=("earth",)))) as client:
            app = client.app
            world = app.state.worlds["earth"]
            pyr = world.pyramid
            pyr.base = _XYZBaseLevel(src, pyr.base_zoom)
            assert pyr.base_zoom == 4

            r = client.get("/tiles/earth/4/3/5.png")
            assert r.status_code == 200, r.text
            np.testing.assert_array_equal(decode_array(r.content), upstream.tile_pixels(4, 3, 5))

            upstream.kill(proc)
            for _ in range(2):  # asked twice: the failure was not cached anywhere
                r = client.get("/tiles/earth/4/7/6.png")
                assert r.status_code == 502, r.text
                detail = r.json()["detail"]
                assert "no answer" in detail and f"127.0.0.1:{port}/4/7/6.png" in detail
            key = encoded_key(world.content_hash, 4, 7, 6, "png")
            assert _keys_for(app.state.store, 4, 7, 6) == []
            assert _keys_for(pyr.store, 4, 7, 6) == [] and _keys_for(pyr._hot, 4, 7, 6) == []
            assert app.state.hot.get(key) is None and len(app.state.flights) == 0
            assert pyr._flight.in_flight() == 0
            # a cached tile is still served while the upstream is down
            assert client.get("/tiles/earth/4/3/5.png").status_code == 200
            # a level above the base needs four upstream tiles: 502 too, nothing cached
            r = client.get("/tiles/earth/3/1/1.png")
            assert r.status_code == 502 and _keys_for(app.state.store, 3, 1, 1) == []

            proc = upstream.start(tiles4, port)
            r = client.get("/tiles/earth/4/7/6.png")
            assert r.status_code == 200, r.text
            np.testing.assert_array_equal(decode_array(r.content), upstream.tile_pixels(4, 7, 6))
            assert client.get("/tiles/earth/3/1/1.png").status_code == 200

            pyr.base = _XYZBaseLevel(failing, pyr.base_zoom)  # the upstream answers 500
            r = client.get("/tiles/earth/4/9/9.png")
            assert r.status_code == 502
            assert "status 500" in r.json()["detail"]
            assert _keys_for(app.state.store, 4, 9, 9) == []
    finally:
        src.close()
        failing.close()
        upstream.kill(proc)


# ---- read_margin: the neighbourhood the composition's feather needs -------------------------


def test_read_margin_is_the_mosaic_of_neighbours(server):
    with source(server) as src:
        rgb, alpha = src.read_margin(2, 0, 2, 16)
        assert rgb.shape == (288, 288, 3) and alpha.shape == (288, 288)
        np.testing.assert_array_equal(rgb[16:-16, 16:-16], upstream.tile_pixels(2, 0, 2))
        np.testing.assert_array_equal(rgb[16:-16, :16], upstream.tile_pixels(2, 3, 2)[:, -16:])
        np.testing.assert_array_equal(rgb[:16, 16:-16], upstream.tile_pixels(2, 0, 1)[-16:])
        # the missing neighbour (2, 1, 1) is no data in the top-right corner only
        assert alpha[:16, -16:].max() == 0.0 and alpha[16:, :].min() == 1.0
        # above the north pole the first row repeats (the world's edge is not the data's)
        top, a = src.read_margin(2, 3, 0, 8)
        np.testing.assert_array_equal(top[:8, 8:-8], np.repeat(top[8:9, 8:-8], 8, axis=0))
        assert a.min() == 1.0


def test_read_margin_fails_whole_when_a_neighbour_fails(root):
    port = upstream.free_port()
    proc = upstream.start(root, port)
    try:
        src = XYZSource(f"http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png", 3, backoff=0.01)
        src.read(2, 0, 0)
        upstream.kill(proc)
        with pytest.raises(UpstreamError):
            src.read_margin(2, 0, 0, 8)  # the centre is held, its neighbours are not
        src.close()
    finally:
        upstream.kill(proc)


# ---- end to end: a world whose base is [base] kind = "xyz" -----------------------------------

WORLD = """
title = "xyz test"
seed = 7
max_zoom = 3
attribution = "test tiles"
center = [0.0, 0.0, 2]

[base]
kind = "xyz"
url = "http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png"
max_zoom = 2
fallback = "none"

[geography]
kind = "none"
"""


@pytest.mark.slow
def test_xyz_world_end_to_end_outage_and_recovery(root, model_dir, tmp_path):
    from starlette.testclient import TestClient

    from tests.helpers import write_world
    from tests.serving_helpers import decode_array
    from tileserver import Settings, create_app

    port = upstream.free_port()
    write_world(tmp_path, "up", WORLD.format(port=port))
    proc = upstream.start(root, port)
    settings = Settings(config_dir=tmp_path, model=str(model_dir), worlds=("up",))
    try:
        with TestClient(create_app(settings)) as client:
            app = client.app
            # native zoom: the upstream's pixels exactly (every neighbour has data)
            r = client.get("/tiles/up/2/3/2.png")
            assert r.status_code == 200, r.text
            np.testing.assert_array_equal(decode_array(r.content), upstream.tile_pixels(2, 3, 2))
            # the top row too: no fade at the pole (rows beyond it repeat the edge)
            r = client.get("/tiles/up/2/3/0.png")
            np.testing.assert_array_equal(decode_array(r.content), upstream.tile_pixels(2, 3, 0))
            # the 404 tile is the fallback ("none": black); its neighbour fades into it
            assert decode_array(client.get("/tiles/up/2/1/1.png").content).max() == 0
            near = decode_array(client.get("/tiles/up/2/1/2.png").content).astype(int)
            want = upstream.tile_pixels(2, 1, 2).astype(int)
            assert (near[:4] < want[:4]).all() and np.array_equal(near[64:], want[64:])
            # above the native zoom: the upstream's own zoom-1 tile
            r = client.get("/tiles/up/1/1/1.png")
            np.testing.assert_array_equal(decode_array(r.content), upstream.tile_pixels(1, 1, 1))
            # below it: generated from the upstream's tiles
            assert client.get("/tiles/up/3/6/4.png").status_code == 200

            upstream.kill(proc)
            assert client.get("/tiles/up/2/3/2.png").status_code == 200  # cached
            # tiles decoded and held in memory would still serve; forget them to see the outage
            source_ = app.state.worlds["up"].source
            source_.clear()
            for path in ("/tiles/up/2/3/3.png", "/tiles/up/3/0/7.png"):
                for _ in range(2):
                    r = client.get(path)
                    assert r.status_code == 502, (path, r.status_code, r.text)
                    assert "upstream http://127.0.0.1" in r.json()["detail"]
                    assert "no answer" in r.json()["detail"]
            assert _keys_for(app.state.store, 2, 3, 3) == []
            assert _keys_for(app.state.store, 3, 0, 7) == []
            assert len(app.state.flights) == 0

            proc = upstream.start(root, port)
            r = client.get("/tiles/up/2/3/3.png")
            assert r.status_code == 200
            np.testing.assert_array_equal(decode_array(r.content), upstream.tile_pixels(2, 3, 3))
            assert client.get("/tiles/up/3/0/7.png").status_code == 200
            source_.close()
    finally:
        upstream.kill(proc)


# ---- the TOML's client options and footprint -------------------------------------------------

OPTS = """
timeout = 2.5
retries = 0
bounds = [-10.0, 35.0, 20.0, 60.0]

[base.headers]
X-Api-Key = "{key}"
"""


def _opts_world(tmp_path: Path, name: str, key: str = "secret", extra: str = OPTS) -> Path:
    from tests.helpers import write_world

    text = WORLD.format(port=1).replace('fallback = "none"\n', 'fallback = "none"' + extra)
    write_world(tmp_path, name, text.replace("{key}", key))
    return tmp_path


def test_toml_client_options_reach_the_source_and_headers_are_not_hashed(tmp_path, model_dir):
    from generator.world import World, load_model

    model = load_model(str(model_dir))
    cfg = _opts_world(tmp_path, "a")
    _opts_world(tmp_path, "b", key="another key")
    a = World.load("a", config_dir=cfg, model=model)
    b = World.load("b", config_dir=cfg, model=model)
    src = a.source
    assert src.retries == 0
    assert src._client.timeout.read == 2.5 and src._client.timeout.connect == 2.5
    assert src._client.headers["X-Api-Key"] == "secret"
    assert src.bounds() == (-10.0, 35.0, 20.0, 60.0)
    # credentials never enter the cache keys: the same tiles under either key
    assert a.content_hash == b.content_hash
    # the footprint decides where the fallback shows: it is hashed
    _opts_world(tmp_path, "c", extra=OPTS.replace("20.0, 60.0", "21.0, 60.0"))
    assert World.load("c", config_dir=cfg, model=model).content_hash != a.content_hash
    # without a fallback the TileJSON bounds are the footprint
    assert a.footprint == (-10.0, 35.0, 20.0, 60.0) and a.bounds == a.footprint
    src.close()
    b.source.close()


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ("\ntimeout = 0\n", "base.timeout"),
        ("\nretries = -1\n", "base.retries"),
        ("\nbounds = [20.0, 35.0, -10.0, 60.0]\n", "west < east"),
        ("\nbounds = [1.0, 2.0]\n", "base.bounds"),
    ],
)
def test_bad_client_options_are_one_line_errors(tmp_path, extra, fragment):
    from generator.world_config import WorldConfigError, load_world_config

    cfg = _opts_world(tmp_path, "bad", extra=extra)
    with pytest.raises(WorldConfigError) as e:
        load_world_config("bad", cfg)
    msg = str(e.value)
    assert fragment in msg and "\n" not in msg, msg


def test_client_options_only_for_xyz(tmp_path):
    from generator.world_config import WorldConfigError, load_world_config
    from tests.helpers import write_world

    text = '[base]\nkind = "raster"\npath = "x.tif"\ntimeout = 3\n\n[geography]\nkind = "none"\n'
    write_world(tmp_path, "r", "seed = 1\nmax_zoom = 8\n" + text)
    with pytest.raises(WorldConfigError, match="timeout is only for kind 'xyz'"):
        load_world_config("r", tmp_path)


def test_tilejson_bounds_are_the_footprint_without_a_fallback(tmp_path, model_dir):
    from starlette.testclient import TestClient

    from tileserver import Settings, create_app

    cfg = _opts_world(tmp_path, "fp")
    settings = Settings(config_dir=cfg, model=str(model_dir), worlds=("fp",))
    with TestClient(create_app(settings)) as client:
        doc = client.get("/tiles/fp/tilejson.json").json()
        assert doc["bounds"] == [-10.0, 35.0, 20.0, 60.0]
        assert doc["footprint"] == [-10.0, 35.0, 20.0, 60.0]
        client.app.state.worlds["fp"].source.close()
