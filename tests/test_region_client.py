"""``World.region`` (array + affine transform of a lon/lat box) and the HTTP ``Client``.

Most regions here sit at zooms up to the base (4), where tiles come from Blue Marble and box
means without any model evaluation, so the tests are fast; a few go below the base. The client
is checked against a real server (uvicorn over TCP in a thread, tiny model) and, for errors and
retries, against httpx's ``MockTransport``.
"""

from __future__ import annotations

import math
import socket
import threading
import time

import httpx
import morecantile
import numpy as np
import pytest
from affine import Affine

from generator import tiles
from generator.errors import InvalidRegion, OrbisError
from generator.region import Bbox, parse_bbox, plan_region, tile_bounds_bbox
from tests.serving_helpers import save_tiny_model
from tileserver.client import Client, RemoteError


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


# ---- the HTTP client ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="module")
def server(model_dir):
    """A real orbis (uvicorn over TCP on 127.0.0.1) in a thread, serving earth with the tiny
    model and an in-memory cache; yields its base URL."""
    import uvicorn

    from tileserver import Settings, create_app

    settings = Settings(model=str(model_dir), worlds=("earth",))
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name="orbis-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def local_earth(model_dir):
    """The same world as the server's, loaded here with its own cache."""
    from generator.world import World

    return World.load("earth", model=str(model_dir))


@pytest.mark.slow
def test_client_lists_worlds_and_tilejson(server, local_earth):
    with Client(server) as c:
        worlds = c.worlds()
        assert [w["name"] for w in worlds] == ["earth"]
        assert worlds[0]["version"] == local_earth.content_hash
        tj = c.tilejson("earth")
        assert tj["tilejson"] == "3.0.0" and tj["maxzoom"] == local_earth.max_zoom


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_client_tile_is_the_local_tile(server, local_earth, fmt):
    with Client(server) as c:
        arr = c.tile("earth", 4, 8, 5, fmt=fmt)
    assert arr.shape == (256, 256, 3) and arr.dtype == np.uint8
    if fmt == "png":  # lossless: the very pixels
        assert np.array_equal(arr, local_earth.tile_array(4, 8, 5))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("bbox", "resolution"),
    [
        ((20.0, 40.0, 25.0, 48.0), 8000.0),  # zoom 4, area-averaged
        ((170.0, -10.0, -170.0, 10.0), 20000.0),  # across the antimeridian
        ((8.0, 46.0, 9.0, 46.5), 2000.0),  # zoom 6: generated by the model
    ],
)
def test_client_region_equals_world_region(server, local_earth, bbox, resolution):
    with Client(server) as c:
        arr, transform = c.region("earth", bbox, resolution)
    expected, expected_transform = local_earth.region(bbox, resolution)
    assert transform == expected_transform
    assert np.array_equal(arr, expected)


@pytest.mark.slow
def test_client_404_names_the_problem(server):
    with Client(server) as c:
        with pytest.raises(RemoteError, match=r"404 zoom 30 is above") as info:
            c.tile("earth", 30, 0, 0)
        assert info.value.status == 404 and info.value.url.endswith("/tiles/earth/30/0/0.png")
        with pytest.raises(RemoteError, match="404") as info:
            c.region("nowhere", (0, 0, 1, 1), 1000)
        assert "nowhere" in str(info.value)


def mock_client(handler, **kw) -> Client:
    return Client("http://orbis.test", transport=httpx.MockTransport(handler), **kw)


def test_client_error_carries_the_server_detail():
    def handler(request):
        return httpx.Response(400, json={"detail": "y must be in 0..7 at zoom 3, got 9"})

    with mock_client(handler) as c, pytest.raises(RemoteError) as info:
        c.tile("earth", 3, 0, 9)
    assert str(info.value) == (
        "GET http://orbis.test/tiles/earth/3/0/9.png: 400 y must be in 0..7 at zoom 3, got 9"
    )
    assert isinstance(info.value, OrbisError)


def test_client_error_without_json_gives_the_reason():
    with mock_client(lambda r: httpx.Response(502, text="bad gateway")) as c:
        with pytest.raises(RemoteError, match="502 Bad Gateway: bad gateway"):
            c.worlds()


def test_client_retries_a_busy_server():
    calls = []

    def handler(request):
        calls.append(request.url.path)
        if len(calls) < 3:
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"detail": "busy"})
        return httpx.Response(200, json=[{"name": "earth"}])

    with mock_client(handler) as c:
        assert c.worlds() == [{"name": "earth"}]
    assert len(calls) == 3


def test_client_gives_up_on_a_server_that_stays_busy():
    busy = httpx.Response(503, headers={"Retry-After": "0"}, json={"detail": "queue is full"})
    with mock_client(lambda r: busy, retries=2) as c:
        with pytest.raises(RemoteError, match="503 queue is full"):
            c.worlds()


def test_client_unreachable_server_is_a_remote_error():
    with Client(f"http://127.0.0.1:{free_port()}", timeout=5) as c:
        with pytest.raises(RemoteError, match="cannot reach the server") as info:
            c.worlds()
    assert info.value.status is None


def test_client_checks_the_region_before_fetching_tiles():
    paths = []

    def handler(request):
        paths.append(request.url.path)
        return httpx.Response(200, json={"maxzoom": 22})

    with mock_client(handler) as c, pytest.raises(InvalidRegion, match="south"):
        c.region("earth", (0, 10, 1, 5), 100)
    assert paths == ["/tiles/earth/tilejson.json"]
