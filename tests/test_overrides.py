"""World authoring (``generator.geography.overrides``): the user's land cover, water, roads,
parcels and per-class layout parameters, through ``World.load`` of a TOML written here.

Worlds get the closed-form stub geography of ``tests/geo_stub.py`` (cropland lowlands around
``FARM``, a river along every 18th meridian, so one runs at lon −108), so no data is needed.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import morecantile
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from starlette.testclient import TestClient

from generator.errors import WorldConfigError
from generator.geography import classes as C
from generator.geography import layout_classes as K
from generator.geography.grid import tile_rect, to_pixel
from generator.geography.layout import layout_of
from generator.planner import Rect
from generator.world import World
from tests import geo_stub
from tests.helpers import CONFIG_DIR, run_python, sha256, write_world
from tests.serving_helpers import save_tiny_model
from tileserver import Settings, create_app

TMS = morecantile.tms.get("WebMercatorQuad")
EARTH = (CONFIG_DIR / "worlds" / "earth.toml").read_text()
#: stub cropland with parcels and roads (tests/test_layout.py's FARM)
LON, LAT = -108.25, 20.5
D = 0.01  # half side of the test polygon (°): ≈ 2 km, several z14 tiles


def _square(lon: float, lat: float, d: float) -> list:
    return [[[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d],
             [lon - d, lat - d]]]  # fmt: skip


def _fc(*features: dict) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


def _feat(geom_type: str, coords: list, fid: object = None, **props: object) -> dict:
    f: dict = {
        "type": "Feature",
        "properties": props,
        "geometry": {"type": geom_type, "coordinates": coords},
    }
    if fid is not None:
        f["id"] = fid
    return f


@pytest.fixture(autouse=True)
def _stub(monkeypatch):
    geo_stub.install(monkeypatch)


def _world(root: Path, tiny_model, extra: str, name: str = "valley") -> World:
    write_world(root, name, EARTH + "\n" + extra)
    return World.load(name, root, model=tiny_model)


def _px(z: int, lon: float, lat: float) -> tuple[int, int]:
    """Global pixel (col, row) of a point at zoom z."""
    mx, my = TMS.xy(lon, lat)
    px, py = to_pixel(z, np.array([mx]), np.array([my]))
    return int(px[0]), int(py[0])


def _layer(world: World, name: str, z: int, lon: float, lat: float, size: int = 256):
    """Layer ``name`` on a ``size``² rect centred on (lon, lat) at zoom z."""
    c, r = _px(z, lon, lat)
    return world.geography.window(name, z, Rect(r - size // 2, c - size // 2, size, size))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "worlds").mkdir()
    return tmp_path


def test_empty_override_list_keeps_the_hash(root, tiny_model):
    plain = _world(root, tiny_model, "", "plain")
    empty = _world(root, tiny_model, "[layers]\noverride = []\n[layout]\nparams = {}\n", "empty")
    assert plain.content_hash == empty.content_hash
    assert plain.overrides is None and empty.overrides is None
    assert "overrides" not in plain.geography.identity


def test_unit_params_keep_every_layer_byte(root, tiny_model):
    """Parameters of 1 take the parameter code paths (the hash changes) but draw the same."""
    plain = _world(root, tiny_model, "", "plain")
    unit = _world(
        root,
        tiny_model,
        "[layout.params.cropland]\nfield_scale = 1.0\nroad_density = 1.0\nbuilding_density = 1.0\n",
        "unit",
    )
    assert unit.overrides is not None and unit.content_hash != plain.content_hash
    for z in (12, 14, 17):
        a = layout_of(plain.geography).channels(z, tile_rect(z, *TMS.tile(LON, LAT, z)[:2]))
        b = layout_of(unit.geography).channels(z, tile_rect(z, *TMS.tile(LON, LAT, z)[:2]))
        assert np.array_equal(a, b), z


def test_landcover_polygon_inside_not_outside(root, tiny_model):
    (root / "worlds" / "wood.geojson").write_text(
        _fc(_feat("Polygon", _square(LON, LAT, D), "w1", **{"class": "broadleaf_forest"}))
    )
    w = _world(root, tiny_model, '[[layers.override]]\npath = "wood.geojson"\nlayer = "landcover"')
    plain = _world(root, tiny_model, "", "plain")
    assert w.content_hash != plain.content_hash
    z = 14
    lc_in = _layer(w, "landcover", z, LON, LAT, 64)
    assert (lc_in == C.BROADLEAF).all()
    assert (_layer(plain, "landcover", z, LON, LAT, 64) == C.CROPLAND).mean() > 0.9
    lay_in = _layer(w, "layout", z, LON, LAT, 64)
    lay_plain = _layer(plain, "layout", z, LON, LAT, 64)
    assert (lay_in == K.WOODLAND).mean() > 0.8 and (lay_plain == K.WOODLAND).mean() < 0.05
    # 3 km away (outside the polygon): byte-identical layers
    for name in ("landcover", "layout", "water"):
        a = _layer(w, name, z, LON + 0.03, LAT, 128)
        b = _layer(plain, name, z, LON + 0.03, LAT, 128)
        assert np.array_equal(a, b), name


def test_landcover_override_is_seamless_and_zoom_consistent(root, tiny_model):
    poly = [[[LON - D, LAT - D], [LON + D, LAT - 0.4 * D], [LON, LAT + D], [LON - D, LAT - D]]]
    (root / "worlds" / "tri.geojson").write_text(_fc(_feat("Polygon", [poly[0]])))
    w = _world(
        root,
        tiny_model,
        '[[layers.override]]\npath = "tri.geojson"\nlayer = "landcover"\nclass = "urban"',
    )
    z = 15
    c, r = _px(z, LON, LAT)
    a = w.geography.window("landcover", z, Rect(r - 100, c - 120, 256, 256))
    b = w.geography.window("landcover", z, Rect(r - 30, c - 60, 200, 240))
    assert np.array_equal(a[70:256, 60:256], b[0:186, 0:196])  # the overlap agrees
    assert (a == C.URBAN).mean() > 0.2
    # zoom consistency: a pixel's class at z equals the class of most of its 2×2 children
    coarse = w.geography.window("landcover", z - 1, Rect(r // 2 - 64, c // 2 - 64, 128, 128))
    fine = w.geography.window("landcover", z, Rect(r - 128, c - 128, 256, 256))
    child = fine.reshape(128, 2, 128, 2).transpose(0, 2, 1, 3).reshape(128, 128, 4)
    agree = (child == coarse[..., None]).sum(-1) >= 2
    assert agree.mean() > 0.98  # only pixels on the polygon's edge may differ


def test_road_line_in_the_road_mask_and_the_features(root, tiny_model):
    line = [[LON - 0.03, LAT + 0.001], [LON + 0.03, LAT + 0.003]]
    (root / "worlds" / "road.geojson").write_text(
        _fc(_feat("LineString", line, 7, kind="main_road"))
    )
    w = _world(
        root,
        tiny_model,
        '[[layers.override]]\npath = "road.geojson"\nlayer = "roads"\nproperty = "kind"',
    )
    z = 16
    t = TMS.tile(LON, LAT + 0.002, z)
    ch = layout_of(w.geography).channels(z, tile_rect(z, t.x, t.y))
    # every pixel on the line (its centre) is road in the road mask
    mx, my = TMS.xy(LON - 0.03, LAT + 0.001)
    mx2, my2 = TMS.xy(LON + 0.03, LAT + 0.003)
    s = np.linspace(0, 1, 4000)
    px, py = to_pixel(z, mx + s * (mx2 - mx), my + s * (my2 - my))
    col, row = np.floor(px).astype(int) - t.x * 256, np.floor(py).astype(int) - t.y * 256
    inside = (col >= 0) & (col < 256) & (row >= 0) & (row < 256)
    assert inside.sum() > 100
    assert (ch[2][row[inside], col[inside]] == 255).all()
    assert (ch[0][row[inside], col[inside]] == K.MAIN_ROAD).mean() > 0.9
    feats = layout_of(w.geography).features(z, t.x, t.y)["features"]
    mine = [f for f in feats if f["properties"].get("source") == "override"]
    assert mine and all(f["properties"]["kind"] == "main_road" for f in mine)
    assert mine[0]["geometry"]["type"] == "LineString"


def test_layout_parcels_and_buildings_are_drawn_as_given(root, tiny_model):
    orchard = _square(LON, LAT, 0.002)  # ≈ 440 m
    barn = _square(LON + 0.004, LAT, 0.0002)  # ≈ 45 m
    (root / "worlds" / "farm.geojson").write_text(
        _fc(
            _feat("Polygon", orchard, "o", **{"class": "orchard"}),
            _feat("Polygon", barn, "b", **{"class": "building"}),
        )
    )
    w = _world(root, tiny_model, '[[layers.override]]\npath = "farm.geojson"\nlayer = "layout"')
    inside = _layer(w, "layout", 15, LON, LAT, 32)  # roads of the network may cross it
    assert (inside == K.ORCHARD).mean() > 0.9 and np.isin(
        inside, K.PARCELS - {K.ORCHARD}
    ).sum() == 0
    assert (_layer(w, "layout", 17, LON + 0.004, LAT, 8) == K.BUILDING).all()
    assert not (_layer(w, "layout", 15, LON + 0.004, LAT, 4) == K.BUILDING).any()  # ≤ 2 m/px
    t = TMS.tile(LON + 0.004, LAT, 17)
    st = layout_of(w.geography).state(17, tile_rect(17, t.x, t.y))
    assert st.objs.user_houses < len(st.objs.houses)  # the painter sees it as a roof (an id)
    feats = layout_of(w.geography).features(17, t.x, t.y)["features"]
    mine = [f["properties"] for f in feats if f["properties"].get("source") == "override"]
    assert {"kind": "building", "source": "override"} in mine
    t = TMS.tile(LON, LAT, 15)
    feats = layout_of(w.geography).features(15, t.x, t.y)["features"]
    mine = [f["properties"] for f in feats if f["properties"].get("source") == "override"]
    assert {"kind": "field", "use": "orchard", "source": "override"} in mine


def test_a_clear_polygon_removes_the_generated_objects(root, tiny_model):
    (root / "worlds" / "clear.geojson").write_text(
        _fc(_feat("Polygon", _square(LON, LAT, 3 * D), "c", **{"class": "clear"}))
    )
    w = _world(root, tiny_model, '[[layers.override]]\npath = "clear.geojson"\nlayer = "layout"')
    plain = _world(root, tiny_model, "", "plain")
    z = 14
    t = TMS.tile(LON, LAT, z)
    a = layout_of(plain.geography).channels(z, tile_rect(z, t.x, t.y))
    b = layout_of(w.geography).channels(z, tile_rect(z, t.x, t.y))
    assert a[2].any() and a[1].any()  # roads and parcel boundaries without it
    assert not b[2].any()  # no road, track or street
    assert not np.isin(b[0], list(K.PARCELS - {K.FIELD, K.MEADOW})).any()
    # the land cover's classes stay (cropland → field), with no parcel boundaries inside
    assert (b[0] == K.FIELD).mean() > 0.5 and b[1][b[0] == K.FIELD].mean() < a[1].mean() / 4
    feats = layout_of(w.geography).features(z, t.x, t.y)["features"]
    assert not [f for f in feats if f["properties"]["kind"] in ("road", "track", "field")]


def test_water_polygon_makes_a_lake_and_land_removes_the_river(root, tiny_model):
    lake_at = (LON - 0.05, LAT + 0.05)
    (root / "worlds" / "water.geojson").write_text(
        _fc(
            _feat("Polygon", _square(*lake_at, D), "lake", **{"class": "lake"}),
            # the stub's river runs along lon −108: a land polygon over it
            _feat("Polygon", _square(-108.0, LAT, 0.2), "dam", **{"class": "land"}),
        )
    )
    w = _world(root, tiny_model, '[[layers.override]]\npath = "water.geojson"\nlayer = "water"')
    plain = _world(root, tiny_model, "", "plain")
    z = 13
    assert (_layer(w, "water", z, *lake_at, 32) == C.LAKE).all()
    assert (_layer(w, "landcover", z, *lake_at, 32) == C.WATER).all()
    assert (_layer(w, "distance", z, *lake_at, 32) > 0).all()
    assert (_layer(w, "layout", z, *lake_at, 32) == K.WATER).all()
    assert (_layer(plain, "water", z, -108.0, LAT, 64) == C.RIVER).any()
    assert (_layer(w, "water", z, -108.0, LAT, 64) == C.LAND).all()
    assert (_layer(w, "rivers", z, -108.0, LAT, 64) == 0).all()


def _parcels(world: World, z: int, n: int = 3) -> int:
    t = TMS.tile(LON, LAT, z)
    count = 0
    for dx in range(n):
        feats = layout_of(world.geography).features(z, t.x + dx, t.y)["features"]
        count += sum(f["properties"]["kind"] == "field" for f in feats)
    return count


@pytest.mark.slow  # 3-8 s (z12-z14 tiles of three worlds)
def test_field_scale_makes_bigger_fields(root, tiny_model):
    plain = _world(root, tiny_model, "", "plain")
    big = _world(root, tiny_model, "[layout.params.cropland]\nfield_scale = 2.5\n", "big")
    assert big.content_hash != plain.content_hash
    n_plain, n_big = _parcels(plain, 14), _parcels(big, 14)
    assert n_plain > 10 and n_big < 0.6 * n_plain, (n_plain, n_big)
    # a class that is not there changes nothing (but the hash)
    other = _world(root, tiny_model, "[layout.params.urban]\nfield_scale = 2.5\n", "other")
    assert _parcels(other, 14) == n_plain


@pytest.mark.slow  # 3-8 s (z12-z14 tiles of three worlds)
def test_road_density_zero_removes_the_generated_roads(root, tiny_model):
    plain = _world(root, tiny_model, "", "plain")
    none = _world(root, tiny_model, "[layout.params.cropland]\nroad_density = 0.0\n", "none")
    z = 12
    net = [K.ROAD, K.MAIN_ROAD, K.TRACK]
    a = _layer(plain, "layout", z, LON, LAT, 512)
    b = _layer(none, "layout", z, LON, LAT, 512)
    assert np.isin(b, net).sum() < 0.5 * np.isin(a, net).sum()


def test_building_density_thins_the_buildings(root, tiny_model):
    village = (-108.25163, 20.5049)  # a stub village on cropland (found with its features)
    plain = _world(root, tiny_model, "", "plain")
    half = _world(root, tiny_model, "[layout.params.cropland]\nbuilding_density = 0.5\n", "half")
    z = 17
    t = TMS.tile(*village, z)
    r = tile_rect(z, t.x, t.y)
    a = layout_of(plain.geography).state(z, r)
    b = layout_of(half.geography).state(z, r)
    na, nb = len(a.objs.houses), len(b.objs.houses)
    assert na > 20 and 0.3 * na < nb < 0.7 * na, (na, nb)
    # each building keeps its fate in another rect over it (a hash per building, not per rect)
    r2 = Rect(r.y0 + 100, r.x0 - 60, 256, 256)
    a2 = layout_of(plain.geography).state(z, r2)
    b2 = layout_of(half.geography).state(z, r2)

    def wkb(st) -> set:
        return {shapely.to_wkb(g) for g in st.objs.houses}

    both = wkb(a) & wkb(a2)  # generated buildings reaching both rects
    assert len(both) > 5
    assert wkb(b) & both == wkb(b2) & both


def _tiff(path: Path, data: np.ndarray, bounds, crs: str | None, nodata=255) -> None:
    h, w = data.shape
    profile = {"driver": "GTiff", "height": h, "width": w, "count": 1, "dtype": data.dtype.name}
    if crs is not None:
        west, south, east, north = bounds
        tr = Affine((east - west) / w, 0.0, west, 0.0, -(north - south) / h, north)
        profile |= {"crs": crs, "transform": tr}
    if nodata is not None:
        profile["nodata"] = nodata
    with warnings.catch_warnings():  # rasterio 1.4's own Affine "*" (affine ≥ 2.5)
        warnings.filterwarnings("ignore", "Use `@` matmul", PendingDeprecationWarning)
        with rasterio.open(path, "w", **profile) as ds:
            ds.write(data, 1)


def test_geotiff_landcover_in_another_crs(root, tiny_model):
    data = np.full((40, 40), 255, np.uint8)
    data[:, :20] = C.NEEDLELEAF  # the west half; the east half is nodata
    _tiff(root / "worlds" / "lc.tif", data, (LON - 0.02, LAT - 0.02, LON + 0.02, LAT + 0.02),
          "EPSG:4326")  # fmt: skip
    w = _world(root, tiny_model, '[[layers.override]]\npath = "lc.tif"\nlayer = "landcover"')
    plain = _world(root, tiny_model, "", "plain")
    z = 15
    west = _layer(w, "landcover", z, LON - 0.01, LAT, 64)
    east = _layer(w, "landcover", z, LON + 0.01, LAT, 64)
    assert (west == C.NEEDLELEAF).all()
    assert np.array_equal(east, _layer(plain, "landcover", z, LON + 0.01, LAT, 64))
    # a value mapping (a land-cover product's own codes)
    codes = np.where(data == 255, 0, 10).astype(np.uint8)
    _tiff(root / "worlds" / "codes.tif", codes, (LON - 0.02, LAT - 0.02, LON + 0.02, LAT + 0.02),
          "EPSG:4326", nodata=0)  # fmt: skip
    m = _world(
        root,
        tiny_model,
        '[[layers.override]]\npath = "codes.tif"\nlayer = "landcover"\nvalues = { "10" = "urban" }',
        "mapped",
    )
    assert (_layer(m, "landcover", z, LON - 0.01, LAT, 64) == C.URBAN).all()


def test_geotiff_water(root, tiny_model):
    kinds = np.full((20, 20), 255, np.uint8)
    kinds[5:15, 5:15] = C.LAKE
    _tiff(root / "worlds" / "lake.tif", kinds, (LON - 0.02, LAT - 0.02, LON + 0.02, LAT + 0.02),
          "EPSG:4326")  # fmt: skip
    w = _world(root, tiny_model, '[[layers.override]]\npath = "lake.tif"\nlayer = "water"')
    assert (_layer(w, "water", 15, LON, LAT, 32) == C.LAKE).all()
    assert (_layer(w, "landcover", 15, LON, LAT, 32) == C.WATER).all()
    assert (_layer(w, "water", 15, LON + 0.015, LAT, 32) == C.LAND).all()
    kinds[0, 0] = 9
    _tiff(root / "worlds" / "lake.tif", kinds, (LON - 0.02, LAT - 0.02, LON + 0.02, LAT + 0.02),
          "EPSG:4326")  # fmt: skip
    with pytest.raises(WorldConfigError, match=r"value 9 is not a water kind"):
        _world(root, tiny_model, '[[layers.override]]\npath = "lake.tif"\nlayer = "water"')


def test_the_hash_follows_the_file_bytes(root, tiny_model):
    f = root / "worlds" / "wood.geojson"
    f.write_text(_fc(_feat("Polygon", _square(LON, LAT, D), **{"class": "cropland"})))
    toml = '[[layers.override]]\npath = "wood.geojson"\nlayer = "landcover"'
    a = _world(root, tiny_model, toml).content_hash
    f.write_text(_fc(_feat("Polygon", _square(LON, LAT, D), **{"class": "urban"})))
    b = _world(root, tiny_model, toml).content_hash
    assert a != b


BAD = [
    ("missing.geojson", None, "no such file"),
    ("bad.geojson", "{not json", "not valid GeoJSON"),
    (
        "cls.geojson",
        _fc(
            _feat("Polygon", _square(LON, LAT, D), **{"class": "cropland"}),
            _feat("Polygon", _square(LON, LAT, D), "f2", **{"class": "jungle"}),
        ),
        "feature 1 (id 'f2'): unknown landcover class 'jungle'",
    ),
    (
        "bowtie.geojson",
        _fc(
            _feat(
                "Polygon",
                [[[LON, LAT], [LON + D, LAT + D], [LON + D, LAT], [LON, LAT + D], [LON, LAT]]],
                **{"class": "urban"},
            )
        ),
        "feature 0: invalid geometry: Self-intersection",
    ),
    (
        "line.geojson",
        _fc(_feat("LineString", [[LON, LAT], [LON + D, LAT]], **{"class": "urban"})),
        "feature 0: class 'urban' needs a Polygon or MultiPolygon, got a LineString",
    ),
    (
        "metres.geojson",
        _fc(_feat("Polygon", _square(500000.0, 4000000.0, 1000.0), **{"class": "urban"})),
        "coordinates outside longitude/latitude",
    ),
    (
        "noclass.geojson",
        _fc(_feat("Polygon", _square(LON, LAT, D))),
        "feature 0: no 'class' property",
    ),
]


@pytest.mark.parametrize(("name", "text", "want"), BAD, ids=[b[0] for b in BAD])
def test_bad_geojson_names_the_file_the_feature_and_the_problem(root, tiny_model, name, text, want):
    if text is not None:
        (root / "worlds" / name).write_text(text)
    with pytest.raises(WorldConfigError) as exc:
        _world(root, tiny_model, f'[[layers.override]]\npath = "{name}"\nlayer = "landcover"')
    msg = str(exc.value)
    assert "\n" not in msg
    assert "valley.toml: layers.override.0:" in msg and name in msg
    assert want in msg, msg


def test_bad_rasters_and_config(root, tiny_model):
    data = np.full((8, 8), C.URBAN, np.uint8)
    _tiff(root / "worlds" / "nocrs.tif", data, None, None, nodata=None)
    with pytest.raises(WorldConfigError, match=r"nocrs\.tif: no CRS"):
        _world(root, tiny_model, '[[layers.override]]\npath = "nocrs.tif"\nlayer = "landcover"')
    data[0, 0] = 99
    _tiff(root / "worlds" / "odd.tif", data, (0, 0, 1, 1), "EPSG:4326")
    with pytest.raises(WorldConfigError, match=r"odd\.tif: value 99 is not a land-cover class"):
        _world(root, tiny_model, '[[layers.override]]\npath = "odd.tif"\nlayer = "landcover"')
    with pytest.raises(WorldConfigError, match=r"layers\.override\.0\.layer: Input should be"):
        _world(root, tiny_model, '[[layers.override]]\npath = "x.geojson"\nlayer = "lava"')
    with pytest.raises(WorldConfigError, match="unknown land-cover class 'jungle'"):
        _world(root, tiny_model, "[layout.params.jungle]\nfield_scale = 2.0\n")
    with pytest.raises(WorldConfigError, match=r"layout\.params\.urban\.field_scale"):
        _world(root, tiny_model, "[layout.params.urban]\nfield_scale = 100.0\n")
    bare = '[geography]\nkind = "none"\n[[layers.override]]\npath = "x.geojson"\nlayer = "water"'
    with pytest.raises(WorldConfigError, match="needs a geography"):
        _world(root, tiny_model, bare)


def test_override_road_and_building_over_http(tmp_path_factory):
    root = tmp_path_factory.mktemp("override-http")
    line = [[LON - 0.03, LAT + 0.001], [LON + 0.03, LAT + 0.003]]
    write_world(root, "earth", EARTH)
    (root / "worlds" / "road.geojson").write_text(_fc(_feat("LineString", line, "r")))
    write_world(
        root,
        "valley",
        EARTH + '\n[[layers.override]]\npath = "road.geojson"\nlayer = "roads"\nclass = "rail"\n',
    )
    model = save_tiny_model(tmp_path_factory.mktemp("tiny-model"))
    t = TMS.tile(LON, LAT + 0.002, 15)
    with TestClient(create_app(Settings(config_dir=root, model=str(model)))) as c:
        r = c.get(f"/tiles/valley/layers/features/15/{t.x}/{t.y}.geojson")
        assert r.status_code == 200
        kinds = [
            f["properties"]["kind"]
            for f in r.json()["features"]
            if f["properties"].get("source") == "override"
        ]
        assert kinds and set(kinds) == {"rail"}
        geom = shapely.from_geojson(json.dumps(r.json()["features"][0]["geometry"]))
        assert geom.is_valid
        a = c.get(f"/tiles/valley/layers/layout/15/{t.x}/{t.y}.png")
        b = c.get(f"/tiles/earth/layers/layout/15/{t.x}/{t.y}.png")
        assert a.status_code == b.status_code == 200 and a.content != b.content
        assert a.headers["etag"] != b.headers["etag"]


def test_a_bad_override_is_one_line_in_health(tmp_path_factory):
    root = tmp_path_factory.mktemp("override-bad")
    write_world(
        root, "valley", EARTH + '\n[[layers.override]]\npath = "gone.geojson"\nlayer = "roads"\n'
    )
    model = save_tiny_model(tmp_path_factory.mktemp("tiny-model"))
    app = create_app(Settings(config_dir=root, model=str(model), load_in_background=True))
    with TestClient(app) as c:
        deadline = time.time() + 60
        while c.get("/health").json()["status"] == "loading" and time.time() < deadline:
            time.sleep(0.1)
        r = c.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "error"
        detail = r.json()["detail"]
        assert "\n" not in detail
        assert "valley.toml: layers.override.0:" in detail
        assert "gone.geojson: no such file" in detail
        assert c.get("/tiles/valley/3/4/2.png").status_code == 503  # not served


def test_overrides_wrap_across_the_antimeridian(root, tiny_model):
    # z12 pixels are 0.000343° wide: the 40 px east of 180° span 0.0137°
    east = [[[179.9, -0.02], [179.999, -0.02], [179.999, 0.02], [179.9, 0.02], [179.9, -0.02]]]
    west = [[[-180.0, -0.02], [-179.99, -0.02], [-179.99, 0.02], [-180.0, 0.02], [-180.0, -0.02]]]
    (root / "worlds" / "am.geojson").write_text(
        _fc(_feat("Polygon", east, "e"), _feat("Polygon", west, "w"))
    )
    w = _world(
        root,
        tiny_model,
        '[[layers.override]]\npath = "am.geojson"\nlayer = "landcover"\nclass = "ice_and_snow"',
    )
    z = 12
    width = 256 << z
    _, row = _px(z, 0.0, 0.0)
    across = Rect(row - 4, width - 40, 8, 80)  # 40 px each side of the antimeridian
    lc = w.geography.window("landcover", z, across)
    assert (lc[:, 0:36] == C.ICE).all() and (lc[:, 40:68] == C.ICE).all()
    assert not (lc[:, 70:] == C.ICE).any()  # beyond −179.99°
    # an unwrapped rect reads the same pixels as the wrapped one
    assert np.array_equal(lc[:, 40:], w.geography.window("landcover", z, Rect(row - 4, 0, 8, 40)))
    assert np.array_equal(
        lc, w.geography.window("landcover", z, Rect(row - 4, 2 * width - 40, 8, 80))
    )


def test_the_shipped_example_loads(tiny_model):
    """docs/examples/valley stays a valid world (its four files, its parameters)."""
    example = Path(__file__).resolve().parent.parent / "docs" / "examples" / "valley"
    w = World.load("valley", example, model=tiny_model)
    ident = w.geography.identity["overrides"]
    assert [f["layer"] for f in ident["files"]] == ["landcover", "water", "roads", "layout"]
    assert set(ident["params"]) == {str(C.CROPLAND), str(C.URBAN)}
    z = 14
    t = TMS.tile(7.44, 46.258, z)  # the valley floor: the rail line and the motorway are there
    feats = layout_of(w.geography).features(z, t.x, t.y)["features"]
    kinds = {f["properties"]["kind"] for f in feats if f["properties"].get("source")}
    assert {"motorway", "rail"} <= kinds


@pytest.mark.slow  # a fresh interpreter (≈ 5 s)
def test_identical_in_another_process(root):
    from generator.geography import Geography
    from generator.geography.overrides import load_overrides

    (root / "worlds" / "mix.geojson").write_text(
        _fc(
            _feat("Polygon", _square(LON, LAT, D / 4), **{"class": "orchard"}),
            _feat(
                "LineString", [[LON - 0.03, LAT], [LON + 0.03, LAT + 0.004]], **{"class": "rail"}
            ),
        )
    )
    (root / "worlds" / "lc.geojson").write_text(
        _fc(_feat("Polygon", _square(LON + 0.01, LAT, D), **{"class": "urban"}))
    )
    t = TMS.tile(LON, LAT, 16)
    code = f"""
import hashlib
from pathlib import Path
from generator.geography import Geography
from generator.geography.grid import tile_rect
from generator.geography.layout import layout_of
from generator.geography.overrides import load_overrides
from tests.geo_stub import StubSource
e = [{{"path": "lc.geojson", "layer": "landcover"}}, {{"path": "mix.geojson", "layer": "layout",
     "property": "class"}}]
ov = load_overrides(e, Path({str(root / "worlds")!r}), {{"cropland": {{"field_scale": 1.7}}}})
g = Geography("stub", StubSource(3), overrides=ov)
ch = layout_of(g).channels(16, tile_rect(16, {t.x}, {t.y}))
print(hashlib.sha256(ch.tobytes()).hexdigest())
"""
    other = run_python(code).strip()
    e = [
        {"path": "lc.geojson", "layer": "landcover"},
        {"path": "mix.geojson", "layer": "layout", "property": "class"},
    ]
    ov = load_overrides(e, root / "worlds", {"cropland": {"field_scale": 1.7}})
    g = Geography("stub", geo_stub.StubSource(3), overrides=ov)
    ch = layout_of(g).channels(16, tile_rect(16, t.x, t.y))
    assert other == sha256(ch)
    assert (ch[0] == K.RAIL).any() and (ch[0] == K.ORCHARD).any()
