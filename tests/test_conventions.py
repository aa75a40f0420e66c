"""Web-mapping conventions: TileMatrixSets, WorldCRS84Quad tiles, WMTS, tilesize, immutable."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import morecantile
import numpy as np
import pytest
from starlette.testclient import TestClient

from tileserver import Settings, create_app

from .serving_helpers import decode, save_tiny_model

WMTS = "{http://www.opengis.net/wmts/1.0}"
OWS = "{http://www.opengis.net/ows/1.1}"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    model = save_tiny_model(tmp_path_factory.mktemp("model"))
    with TestClient(create_app(Settings(model=str(model), worlds=("earth",)))) as c:
        yield c


def test_tile_matrix_sets_lists_both(client):
    r = client.get("/tileMatrixSets")
    assert r.status_code == 200
    ids = [t["id"] for t in r.json()["tileMatrixSets"]]
    assert ids == ["WebMercatorQuad", "WorldCRS84Quad"]


def test_tile_matrix_set_document_is_morecantile(client):
    r = client.get("/tileMatrixSets/WorldCRS84Quad")
    assert r.status_code == 200
    tms = morecantile.TileMatrixSet.model_validate(r.json())
    assert tms.matrix(0).matrixWidth == 2


def test_unknown_tile_matrix_set_is_400(client):
    r = client.get("/tileMatrixSets/Mars")
    assert r.status_code == 400
    assert "Mars" in r.json()["detail"]


def test_crs84_tile(client):
    r = client.get("/tiles/earth/WorldCRS84Quad/1/2/0.png")
    assert r.status_code == 200
    im = decode(r.content)
    assert im.size == (256, 256) and im.mode == "RGB"


def test_crs84_tile_is_the_address_asked_for(client):
    from tileserver.tms import crs84_tile

    r = client.get("/tiles/earth/WorldCRS84Quad/1/2/0.png")
    assert "WorldCRS84Quad-1-2-0@1" in r.headers["etag"]
    world = client.app.state.worlds["earth"]
    assert (np.asarray(decode(r.content)) == crs84_tile(world, 1, 2, 0)).all()


def test_crs84_zoom_0_has_two_columns_and_x_wraps(client):
    a = client.get("/tiles/earth/WorldCRS84Quad/0/1/0.png")
    b = client.get("/tiles/earth/WorldCRS84Quad/0/3/0.png")
    assert a.status_code == b.status_code == 200
    assert a.content == b.content
    assert client.get("/tiles/earth/WorldCRS84Quad/0/0/1.png").status_code == 400


def test_crs84_tile_out_of_range(client):
    r = client.get("/tiles/earth/WorldCRS84Quad/1/0/2.png")
    assert r.status_code == 400
    assert "y must be in 0..1" in r.json()["detail"]


def test_web_mercator_by_name_equals_default_path(client):
    a = client.get("/tiles/earth/WebMercatorQuad/3/4/2.png")
    b = client.get("/tiles/earth/3/4/2.png")
    assert a.status_code == b.status_code == 200
    assert a.content == b.content


@pytest.mark.parametrize(("query", "size"), [("256", 256), ("512", 512)])
def test_tilesize_query(client, query, size):
    r = client.get(f"/tiles/earth/3/4/2.png?tilesize={query}")
    assert r.status_code == 200
    assert decode(r.content).size == (size, size)


@pytest.mark.parametrize("bad", ["300", "abc", ""])
def test_bad_tilesize_is_400(client, bad):
    r = client.get(f"/tiles/earth/3/4/2.png?tilesize={bad}")
    assert r.status_code == 400
    assert "tilesize" in r.json()["detail"]


def test_versioned_tile_is_immutable(client):
    version = client.get("/health").json()["worlds"]["earth"]
    r = client.get(f"/tiles/earth/3/4/2.png?v={version}")
    assert "immutable" in r.headers["cache-control"]
    assert "max-age=31536000" in r.headers["cache-control"]
    r = client.get("/tiles/earth/3/4/2.png?v=stale")
    assert "immutable" not in r.headers["cache-control"]


def test_wmts_capabilities_parse_and_point_at_tiles(client):
    r = client.get("/tiles/earth/WMTSCapabilities.xml")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(r.content)
    layer = root.find(f"{WMTS}Contents/{WMTS}Layer")
    assert layer.find(f"{OWS}Identifier").text == "earth"
    template = layer.find(f"{WMTS}ResourceURL").get("template")
    sets = [
        s.find(f"{OWS}Identifier").text for s in root.findall(f"{WMTS}Contents/{WMTS}TileMatrixSet")
    ]
    assert sets == ["WebMercatorQuad", "WorldCRS84Quad"]
    # the template resolves to a real tile for a matrix the document lists
    url = template.replace("http://testserver", "").format(
        TileMatrixSet="WebMercatorQuad", TileMatrix=3, TileCol=4, TileRow=2
    )
    assert client.get(url).status_code == 200


def test_wmts_matrices_match_morecantile(client):
    root = ET.fromstring(client.get("/tiles/earth/WMTSCapabilities.xml").content)
    wm = root.findall(f"{WMTS}Contents/{WMTS}TileMatrixSet")[0]
    m5 = wm.findall(f"{WMTS}TileMatrix")[5]
    ref = morecantile.tms.get("WebMercatorQuad").matrix(5)
    assert float(m5.find(f"{WMTS}ScaleDenominator").text) == pytest.approx(ref.scaleDenominator)
    assert int(m5.find(f"{WMTS}MatrixWidth").text) == 32


def test_wmts_unknown_world_is_404(client):
    assert client.get("/tiles/mars/WMTSCapabilities.xml").status_code == 404


def test_metrics_have_latency_histogram_and_queue_depth(client):
    client.get("/tiles/earth/3/4/2.png")
    text = client.get("/metrics").text
    assert 'orbis_request_duration_seconds_bucket{le="0.1",route="tile"}' in text
    assert "orbis_generation_queue_depth 0.0" in text
    assert 'orbis_world_model_evals_total{world="earth"}' in text


def test_openapi_describes_every_route(client):
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for path in ("/tiles/{world}/{z}/{x}/{y}", "/tiles/{world}/WMTSCapabilities.xml", "/health"):
        assert path in doc["paths"]
    routes = {r.path for r in client.app.routes if hasattr(r, "endpoint")}
    documented = set(doc["paths"]) | {"/", "/openapi.json"}
    assert routes <= documented
