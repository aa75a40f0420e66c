"""The layout layer over HTTP: ``/layers/layout/…png`` (paletted) and ``/layers/features/…geojson``.

Worlds get the stub geography of ``tests/geo_stub.py`` (see ``tests/test_layers_http.py``).
"""

from __future__ import annotations

import json

import morecantile
import numpy as np
import pytest
import shapely
from starlette.testclient import TestClient

from generator.geography import layout_classes as K
from generator.geography.grid import lonlat_bounds, tile_rect
from tests import geo_stub
from tests.helpers import CONFIG_DIR, write_world
from tests.serving_helpers import decode, save_tiny_model
from tileserver import Settings, create_app

T = morecantile.tms.get("WebMercatorQuad").tile(-108.25, 20.5, 14)  # stub farmland
PNG = f"/tiles/earth/layers/layout/14/{T.x}/{T.y}.png"
GEO = f"/tiles/earth/layers/features/14/{T.x}/{T.y}.geojson"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("layout-config")
    earth = (CONFIG_DIR / "worlds" / "earth.toml").read_text()
    write_world(root, "earth", earth)
    write_world(root, "bare", earth + '\n[geography]\nkind = "none"\n')
    model = save_tiny_model(tmp_path_factory.mktemp("tiny-model"))
    with pytest.MonkeyPatch.context() as mp:
        geo_stub.install(mp)
        settings = Settings(config_dir=root, model=str(model), max_generating=1)
        with TestClient(create_app(settings)) as c:
            yield c


def test_layout_png_is_the_paletted_class_layer(client):
    r = client.get(PNG)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    im = decode(r.content)
    assert (im.mode, im.size) == ("P", (256, 256))
    want = client.app.state.worlds["earth"].geography.tile("layout", 14, T.x, T.y)
    ids = np.asarray(im)
    assert np.array_equal(ids, want) and len(np.unique(ids)) >= 3
    pal = im.getpalette()[: 3 * len(K.LAYOUT)]
    assert [tuple(pal[3 * i : 3 * i + 3]) for i in range(len(K.LAYOUT))] == [
        k.color for k in K.LAYOUT
    ]


def test_layout_tilejson_has_the_legend(client):
    doc = client.get("/tiles/earth/layers/layout/tilejson.json").json()
    assert [(e["id"], e["name"]) for e in doc["legend"]] == [(k.id, k.name) for k in K.LAYOUT]
    assert doc["tiles"][0].endswith("/layers/layout/{z}/{x}/{y}.png")


def test_features_are_rfc7946_geojson(client):
    r = client.get(GEO)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/geo+json"
    assert r.headers["access-control-allow-origin"] == "*"
    doc = json.loads(r.content)
    assert doc["type"] == "FeatureCollection" and doc["features"]
    w, s, e, n = lonlat_bounds(14, tile_rect(14, T.x, T.y))
    kinds = set()
    for f in doc["features"]:
        kinds.add(f["properties"]["kind"])
        g = shapely.geometry.shape(f["geometry"])
        assert g.is_valid
        x0, y0, x1, y1 = g.bounds
        assert -180 <= x0 and x1 <= 180 and -90 <= y0 and y1 <= 90
        assert w - 1e-6 <= x0 and x1 <= e + 1e-6 and s - 1e-6 <= y0 and y1 <= n + 1e-6
    assert kinds <= set(K.KINDS) and "field" in kinds


def test_features_conventions(client):
    a = client.get(GEO)
    etag = a.headers["etag"]
    assert (
        etag.startswith('"')
        and "features" in etag
        and "public, max-age=" in a.headers["cache-control"]
    )
    r = client.get(GEO, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    b = client.get(GEO)  # from the cache: the same bytes
    assert b.content == a.content and b.headers["etag"] == etag
    assert client.get(PNG).headers["etag"] != etag
    doc = client.get("/tiles/earth/layers/features/tilejson.json").json()
    assert doc["tiles"][0].endswith("/layers/features/{z}/{x}/{y}.geojson")
    assert doc["format"] == "geojson" and set(doc["kinds"]) == set(K.KINDS)
    layers = {w["name"]: w for w in client.get("/worlds").json()}["earth"]["layers"]
    lay = next(x for x in layers if x["name"] == "layout")
    assert lay["features_url"].endswith("/layers/features/{z}/{x}/{y}.geojson")


@pytest.mark.parametrize(
    ("path", "status", "fragment"),
    [
        ("/tiles/earth/layers/features/14/0/0.png", 400, "GeoJSON only"),
        ("/tiles/earth/layers/features/14/0/x.geojson", 400, "y must be an integer"),
        ("/tiles/earth/layers/features/3/0/8.geojson", 400, "y must be in 0..7"),
        ("/tiles/earth/layers/features/23/0/0.geojson", 404, "maximum zoom 22"),
        ("/tiles/mars/layers/features/3/0/0.geojson", 404, "unknown world 'mars'"),
        ("/tiles/bare/layers/features/3/0/0.geojson", 404, "no geography layers"),
        ("/tiles/earth/layers/layout/3/0/0.geojson", 400, "unknown tile format"),
        ("/tiles/earth/layers/features/3/0/0.geojson?encoding=mapbox", 400, "elevation layer"),
    ],
)
def test_bad_feature_requests(client, path, status, fragment):
    r = client.get(path)
    assert r.status_code == status, r.text
    assert fragment in r.json()["detail"]
