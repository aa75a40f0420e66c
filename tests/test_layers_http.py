"""Geography layer tiles over HTTP (``tileserver.layers``): encodings, conventions, errors.

Worlds get the stub geography of ``tests/geo_stub.py`` (closed-form elevation, water below 0 m,
land cover by elevation band), so these tests need none of the real data; the last tests go
through the real ``earth`` and ``planet`` geographies when their sources are installed.
"""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from contextlib import contextmanager

import anyio
import morecantile
import numpy as np
import pytest
from starlette.testclient import TestClient

from generator.geography import classes as C
from generator.store import unpack
from tests import geo_stub
from tests.helpers import CONFIG_DIR, write_world
from tests.serving_helpers import decode, parse_metrics, save_tiny_model
from tileserver import Settings, create_app
from tileserver.layers import SERVED, decode_height, encode_height

ELEV = "/tiles/earth/layers/elevation/3/4/2.png"
WMTS = "{http://www.opengis.net/wmts/1.0}"
OWS = "{http://www.opengis.net/ows/1.1}"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory):
    """``earth`` (stub geography) and ``bare`` (``[geography] kind = "none"``)."""
    root = tmp_path_factory.mktemp("layers-config")
    earth = (CONFIG_DIR / "worlds" / "earth.toml").read_text()
    write_world(root, "earth", earth)
    write_world(root, "bare", earth + '\n[geography]\nkind = "none"\n')
    return root


@pytest.fixture(scope="module")
def stubbed():
    with pytest.MonkeyPatch.context() as mp:
        geo_stub.install(mp)
        yield


@pytest.fixture(scope="module")
def client(stubbed, model_dir, config_dir):
    settings = Settings(config_dir=config_dir, model=str(model_dir), max_generating=1)
    with TestClient(create_app(settings)) as c:
        yield c


def geo(client):
    return client.app.state.worlds["earth"].geography


def metrics(client) -> dict[str, float]:
    return parse_metrics(client.get("/metrics").text)


# ---- encodings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "rgb"),
    [
        (0.0, (128, 0, 0)),
        (-32768.0, (0, 0, 0)),
        (1000.5, (131, 232, 128)),
        (-0.25, (127, 255, 192)),
    ],
)
def test_terrarium_pixels_are_maplibres(height, rgb):
    """MapLibre's raster-dem 'terrarium': height = R*256 + G + B/256 - 32768."""
    got = encode_height(np.array([[height]]))[0, 0]
    assert tuple(int(v) for v in got) == rgb
    r, g, b = rgb
    assert r * 256 + g + b / 256 - 32768 == height


def test_mapbox_terrain_rgb_pixels():
    """Mapbox Terrain-RGB: height = -10000 + (R*65536 + G*256 + B) * 0.1."""
    got = encode_height(np.array([[0.0, 8848.0]]), "mapbox")
    assert [tuple(int(v) for v in p) for p in got[0]] == [(1, 134, 160), (2, 224, 64)]


@pytest.mark.parametrize(("encoding", "step"), [("terrarium", 1 / 256), ("mapbox", 0.1)])
def test_heights_round_trip_to_one_step(encoding, step):
    # Terrain-RGB stops at -10000 m (clamped: deeper trenches read -10000)
    low = -11000 if encoding == "terrarium" else -10000
    h = np.random.default_rng(0).uniform(low, 9000, (64, 64))
    back = decode_height(encode_height(h, encoding), encoding)
    assert np.abs(back - h).max() <= step / 2 + 1e-9


def test_terrarium_clamps_out_of_range():
    back = decode_height(encode_height(np.array([[-40000.0, 40000.0]])))
    assert back[0, 0] == -32768 and back[0, 1] == pytest.approx(32768, abs=1 / 256)


# ---- tiles -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def elev(client):
    r = client.get(ELEV)
    assert r.status_code == 200, r.text
    return r


def test_elevation_tile_is_terrarium_of_the_layer(client, elev):
    assert elev.headers["content-type"] == "image/png"
    im = decode(elev.content)
    assert (im.format, im.mode, im.size) == ("PNG", "RGB", (256, 256))
    heights = decode_height(np.asarray(im))
    want = geo(client).tile("elevation", 3, 4, 2)
    assert np.abs(heights - want).max() <= 1 / 512 + 1e-6
    assert heights.min() < 0 < heights.max()  # the stub has sea and mountains here
    assert elev.headers["x-orbis-encoding"] == "terrarium"


def test_elevation_mapbox_encoding(client, elev):
    r = client.get(ELEV + "?encoding=mapbox")
    assert r.status_code == 200
    assert r.headers["x-orbis-encoding"] == "mapbox"
    assert r.headers["etag"] != elev.headers["etag"]
    heights = decode_height(np.asarray(decode(r.content)), "mapbox")
    assert np.abs(heights - geo(client).tile("elevation", 3, 4, 2)).max() <= 0.05 + 1e-3


@pytest.mark.parametrize(
    ("layer", "klasses"), [("landcover", C.LANDCOVER), ("water", C.WATER_KINDS)]
)
def test_class_layers_are_paletted_png_of_the_class_ids(client, layer, klasses):
    r = client.get(f"/tiles/earth/layers/{layer}/3/4/2.png")
    assert r.status_code == 200
    im = decode(r.content)
    assert (im.format, im.mode, im.size) == ("PNG", "P", (256, 256))
    ids = np.asarray(im)
    want = geo(client).tile(layer, 3, 4, 2)
    assert np.array_equal(ids, want)
    assert len(np.unique(ids)) >= 2  # not a constant tile
    pal = im.getpalette()[: 3 * len(klasses)]
    assert [tuple(pal[3 * i : 3 * i + 3]) for i in range(len(klasses))] == [
        k.color for k in klasses
    ]
    rgba = np.asarray(im.convert("RGBA"))
    if layer == "water":  # land is transparent, water opaque
        assert (rgba[ids == C.LAND, 3] == 0).all() and (rgba[ids != C.LAND, 3] == 255).all()
    else:
        assert (rgba[..., 3] == 255).all()


def test_water_has_rivers_from_the_rivers_layer(client):
    # the stub's river runs along 36°E: tile 5/19/15 straddles it on land
    ids = np.asarray(decode(client.get("/tiles/earth/layers/water/5/19/15.png").content))
    assert (ids == C.RIVER).any()


def test_headers_follow_the_tile_conventions(client, elev):
    etag = elev.headers["etag"]
    assert etag[0] == etag[-1] == '"' and not etag.startswith("W/")
    world = client.app.state.worlds["earth"]
    assert world.content_hash in etag and "elevation" in etag
    assert elev.headers["access-control-allow-origin"] == "*"
    assert "public, max-age=" in elev.headers["cache-control"]
    assert elev.headers["x-orbis-world-version"] == world.content_hash
    assert float(elev.headers["x-orbis-resolution"]) == pytest.approx(world.resolution(3, 2))
    r = client.get(ELEV, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
    r = client.get(ELEV + f"?v={world.content_hash}")
    assert "immutable" in r.headers["cache-control"] and r.content == elev.content
    etags = {client.get(f"/tiles/earth/layers/{n}/3/4/2.png").headers["etag"] for n in SERVED}
    assert len(etags) == len(SERVED)


def test_layer_tiles_are_cached_and_counted(client, elev):
    before = metrics(client)
    r = client.get(ELEV)
    after = metrics(client)
    assert r.content == elev.content
    hits = 'orbis_layer_cache_hits_total{layer="elevation"}'
    made = 'orbis_layer_tiles_generated_total{layer="elevation"}'
    assert after[hits] == before[hits] + 1 and after[made] == before[made]
    assert after["orbis_tiles_generated_total"] == before["orbis_tiles_generated_total"]
    # the encoded bytes live in the app's store under the layers' own key prefix
    world = client.app.state.worlds["earth"]
    key = f"{world.content_hash}/l/{world.geography.digest}/elevation/3/4/2.png"
    assert unpack(client.app.state.store.get(key)) == elev.content
    r = client.get("/tiles/earth/layers/elevation/3/5/2.png")
    assert metrics(client)[made] == before[made] + 1


def test_head_and_x_wrap(client, elev):
    r = client.head(ELEV)
    assert r.status_code == 200 and r.content == b"" and r.headers["etag"] == elev.headers["etag"]
    a = client.get("/tiles/earth/layers/water/3/-4/2.png")
    b = client.get("/tiles/earth/layers/water/3/4/2.png")
    assert a.status_code == 200 and a.content == b.content


def test_neighbouring_tiles_meet(client):
    left = decode_height(
        np.asarray(decode(client.get("/tiles/earth/layers/elevation/6/40/24.png").content))
    )
    right = decode_height(
        np.asarray(decode(client.get("/tiles/earth/layers/elevation/6/41/24.png").content))
    )
    step_edge = np.abs(right[:, 0] - left[:, -1]).mean()
    step_inside = np.abs(left[:, -1] - left[:, -2]).mean()
    assert step_edge < 3 * step_inside + 1e-3


async def _hold(gate, *, task_status=anyio.TASK_STATUS_IGNORED):
    release = anyio.Event()
    async with gate.slot():
        task_status.started(release)
        await release.wait()


def test_layer_tiles_do_not_wait_for_imagery_generation(client):
    gate = client.app.state.gate
    holder, release = client.portal.start_task(_hold, gate)
    try:
        assert gate.running == 1  # max_generating=1: imagery would queue now
        r = client.get("/tiles/earth/layers/landcover/4/9/5.png")
        assert r.status_code == 200
    finally:
        client.portal.call(release.set)
    holder.result(timeout=10)


# ---- errors ------------------------------------------------------------------------------

BAD = [
    (
        "/tiles/earth/layers/lava/3/4/2.png",
        404,
        "unknown layer 'lava'; layers: elevation, landcover, water, layout",
    ),
    ("/tiles/earth/layers/distance/3/4/2.png", 404, "layers: elevation, landcover, water, layout"),
    ("/tiles/earth/layers/lava/tilejson.json", 404, "unknown layer 'lava'"),
    ("/tiles/bare/layers/elevation/3/4/2.png", 404, "world 'bare' has no geography layers"),
    ("/tiles/bare/layers/water/tilejson.json", 404, 'kind = "none"'),
    ("/tiles/mars/layers/elevation/3/4/2.png", 404, "unknown world 'mars'"),
    ("/tiles/mars/layers/elevation/tilejson.json", 404, "unknown world 'mars'"),
    ("/tiles/earth/layers/elevation/-1/0/0.png", 400, "zoom must be >= 0"),
    ("/tiles/earth/layers/elevation/23/0/0.png", 404, "maximum zoom 22"),
    ("/tiles/earth/layers/elevation/3/0/8.png", 400, "y must be in 0..7"),
    ("/tiles/earth/layers/elevation/a/0/0.png", 400, "zoom must be an integer"),
    ("/tiles/earth/layers/elevation/3/0/0", 400, "Y.FORMAT"),
    ("/tiles/earth/layers/elevation/3/0/0.jpg", 400, "PNG only"),
    ("/tiles/earth/layers/elevation/3/0/0@2x.png", 400, "PNG only"),
    ("/tiles/earth/layers/elevation/3/0/0.png?encoding=gray", 400, "encoding must be one of"),
    ("/tiles/earth/layers/water/3/0/0.png?encoding=mapbox", 400, "elevation layer only"),
    ("/tiles/earth/layers/elevation/tilejson.json?encoding=x", 400, "encoding must be one of"),
]


@pytest.mark.parametrize(("path", "status", "fragment"), BAD, ids=[p[13:60] for p, _, _ in BAD])
def test_bad_requests_are_4xx_json(client, path, status, fragment):
    before = metrics(client)
    r = client.get(path)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert fragment in r.json()["detail"]
    after = metrics(client)
    made = [k for k in after if k.startswith("orbis_layer_tiles_generated_total")]
    assert all(after[k] == before.get(k, 0) for k in made)


# ---- TileJSON, /worlds, WMTS, OpenAPI ----------------------------------------------------


def test_elevation_tilejson(client):
    r = client.get("/tiles/earth/layers/elevation/tilejson.json")
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    doc = r.json()
    assert doc["tilejson"] == "3.0.0" and doc["encoding"] == "terrarium"
    assert doc["tiles"] == ["http://testserver/tiles/earth/layers/elevation/{z}/{x}/{y}.png"]
    assert (doc["minzoom"], doc["maxzoom"]) == (0, 22) and doc["units"] == "m"
    assert doc["bounds"][0] == -180 and doc["bounds"][3] == pytest.approx(85.0511, abs=1e-4)
    assert doc["attribution"]
    url = doc["tiles"][0].replace("http://testserver", "").format(z=3, x=4, y=2)
    assert client.get(url).status_code == 200
    mapbox = client.get("/tiles/earth/layers/elevation/tilejson.json?encoding=mapbox").json()
    assert mapbox["encoding"] == "mapbox" and mapbox["tiles"][0].endswith(".png?encoding=mapbox")


@pytest.mark.parametrize(
    ("layer", "klasses"), [("landcover", C.LANDCOVER), ("water", C.WATER_KINDS)]
)
def test_class_layer_tilejson_has_the_legend(client, layer, klasses):
    doc = client.get(f"/tiles/earth/layers/{layer}/tilejson.json").json()
    assert "encoding" not in doc
    assert [(e["id"], e["name"]) for e in doc["legend"]] == [(k.id, k.name) for k in klasses]
    assert [e["color"] for e in doc["legend"]] == ["#" + bytes(k.color).hex() for k in klasses]
    assert doc["legend"][0].get("transparent") is (True if layer == "water" else None)


def test_worlds_list_their_layers(client):
    items = {w["name"]: w for w in client.get("/worlds").json()}
    assert items["bare"]["layers"] == []
    layers = items["earth"]["layers"]
    assert [lay["name"] for lay in layers] == list(SERVED)
    for lay in layers:
        assert lay["tilejson"] == f"/tiles/earth/layers/{lay['name']}/tilejson.json"
        assert client.get(lay["tilejson"]).status_code == 200
        assert client.get(lay["tile_url"].format(z=2, x=1, y=1)).status_code == 200
    assert layers[0]["encoding"] == "terrarium"


def test_wmts_has_a_layer_per_geography_layer(client):
    root = ET.fromstring(client.get("/tiles/earth/WMTSCapabilities.xml").content)
    found = {
        lay.find(f"{OWS}Identifier").text: lay
        for lay in root.findall(f"{WMTS}Contents/{WMTS}Layer")
    }
    assert list(found) == ["earth", *(f"earth-{n}" for n in SERVED)]
    for name in SERVED:
        lay = found[f"earth-{name}"]
        assert lay.find(f"{WMTS}Format").text == "image/png"
        assert lay.find(f"{WMTS}TileMatrixSetLink/{WMTS}TileMatrixSet").text == "WebMercatorQuad"
        template = lay.find(f"{WMTS}ResourceURL").get("template")
        url = template.replace("http://testserver", "").format(TileMatrix=3, TileCol=4, TileRow=2)
        assert client.get(url).status_code == 200
    bare = ET.fromstring(client.get("/tiles/bare/WMTSCapabilities.xml").content)
    assert len(bare.findall(f"{WMTS}Contents/{WMTS}Layer")) == 1


def test_openapi_documents_the_layer_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    op = paths["/tiles/{world}/layers/{layer}/{z}/{x}/{y}"]["get"]
    layer = next(p for p in op["parameters"] if p["name"] == "layer")
    assert layer["schema"]["enum"] == list(SERVED)
    assert "/tiles/{world}/layers/{layer}/tilejson.json" in paths and "/3d" in paths


def test_3d_page_is_served(client):
    r = client.get("/3d")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/static/vendor/maplibre-gl/maplibre-gl.js" in r.text
    js = client.get("/static/vendor/maplibre-gl/maplibre-gl.js")
    assert js.status_code == 200 and len(js.content) > 500_000


# ---- the real geographies ----------------------------------------------------------------


def _have(*modules: str) -> bool:
    return all(importlib.util.find_spec(f"generator.geography.{m}") is not None for m in modules)


@contextmanager
def _real_client(model_dir, world: str, modules: tuple[str, ...]):
    """A server of ``world`` with its real geography (the stub undone if this module set it)."""
    if not _have(*modules):
        pytest.skip(f"the real {world} geography sources are not installed yet")
    import generator.geography
    import generator.world

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(generator.world, "make_geography", generator.geography.make_geography)
        with TestClient(create_app(Settings(model=str(model_dir), worlds=(world,)))) as c:
            yield c


@pytest.fixture(scope="module")
def real_earth(model_dir):
    modules = ("water_earth", "rivers_earth", "elevation_earth", "landcover_earth")
    with _real_client(model_dir, "earth", modules) as c:
        assert c.app.state.worlds["earth"].geography.kind == "earth"
        yield c


@pytest.fixture(scope="module")
def real_planet(model_dir):
    with _real_client(model_dir, "planet", ("planet",)) as c:
        assert c.app.state.worlds["planet"].geography.kind == "planet"
        yield c


def _tile_of(lon: float, lat: float, z: int) -> morecantile.Tile:
    return morecantile.tms.get("WebMercatorQuad").tile(lon, lat, z)


def _get(client, path: str) -> np.ndarray:
    r = client.get(path)
    assert r.status_code == 200, r.text
    return np.asarray(decode(r.content))


@pytest.mark.slow
def test_real_earth_mont_blanc_is_high_and_the_atlantic_is_ocean(real_earth):
    t = _tile_of(6.8652, 45.8326, 10)  # Mont Blanc, 4808 m
    h = decode_height(_get(real_earth, f"/tiles/earth/layers/elevation/{t.z}/{t.x}/{t.y}.png"))
    assert h.max() > 3000
    cover = _get(real_earth, f"/tiles/earth/layers/landcover/{t.z}/{t.x}/{t.y}.png")
    assert (cover == C.ICE).any() or (cover == C.ROCK).any()  # glaciers or bare rock up there
    t = _tile_of(-40.0, 30.0, 6)  # the open North Atlantic
    assert (_get(real_earth, f"/tiles/earth/layers/water/{t.z}/{t.x}/{t.y}.png") == C.OCEAN).all()
    h = decode_height(_get(real_earth, f"/tiles/earth/layers/elevation/{t.z}/{t.x}/{t.y}.png"))
    assert h.max() < -1000  # abyssal plain and the ridge's flank, well below the sea


@pytest.mark.slow
def test_real_planet_layers_are_sensible(real_planet):
    got = {name: _get(real_planet, f"/tiles/planet/layers/{name}/2/1/1.png") for name in SERVED}
    h = decode_height(got["elevation"])
    assert -12000 < h.min() < h.max() < 10000 and h.std() > 10
    water, cover = got["water"], got["landcover"]
    assert water.max() < len(C.WATER_KINDS) and cover.max() < len(C.LANDCOVER)
    ocean = water == C.OCEAN
    assert ocean.any() and (~ocean).any()  # this tile holds a coast
    assert np.median(h[ocean]) < 0 < np.median(h[water == C.LAND])  # the sea lies low
    assert (cover[ocean] == C.WATER).mean() > 0.9  # land cover calls the sea water
