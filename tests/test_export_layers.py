"""Geography layer GeoTIFFs (``orbis export … --layer``), read back with rasterio.

The world has the stub geography of ``tests/geo_stub.py``, whose elevation is known in closed
form, so the values can be checked at the pixel centres the transform names.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from pyproj import Transformer

from generator import tiles
from generator.cli import main
from generator.errors import ExportError, UnknownLayer
from generator.export import export
from generator.geography import classes as C
from generator.region import Bbox
from generator.world import World
from tests import geo_stub
from tests.helpers import CONFIG_DIR, write_world
from tests.serving_helpers import save_tiny_model

BOX = Bbox(20.0, 40.0, 25.0, 48.0)


@pytest.fixture(scope="module")
def stubbed():
    with pytest.MonkeyPatch.context() as mp:
        geo_stub.install(mp)
        yield


@pytest.fixture(scope="module")
def world(stubbed, tiny_model):
    return World.load("earth", model=tiny_model)


def pixel_region(z: int, px0: int, py0: int, w: int, h: int):
    """The (bbox, ground m/px) whose region is global pixels [px0, px0+w) × [py0, py0+h)."""
    t = tiles.tms()
    cell = t.matrix(z).cellSize
    west, north = t.lnglat(t.xy_bbox.left + px0 * cell, t.xy_bbox.top - py0 * cell)
    east, south = t.lnglat(t.xy_bbox.left + (px0 + w) * cell, t.xy_bbox.top - (py0 + h) * cell)
    lat_c = t.lnglat(0, t.xy_bbox.top - (py0 + h / 2) * cell).y
    return (west, south, east, north), cell * np.cos(np.radians(lat_c))


def centres_lonlat(ds) -> tuple[np.ndarray, np.ndarray]:
    """Lon of each column's and lat of each row's pixel centre (Web Mercator is separable)."""
    to_ll = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    xs = ds.transform.c + (np.arange(ds.width) + 0.5) * ds.transform.a
    ys = ds.transform.f + (np.arange(ds.height) + 0.5) * ds.transform.e
    lon, _ = to_ll.transform(xs, np.zeros_like(xs))
    _, lat = to_ll.transform(np.zeros_like(ys), ys)
    return np.asarray(lon), np.asarray(lat)


def test_elevation_geotiff_is_float32_metres_on_the_region_grid(world, tmp_path):
    bbox, res = pixel_region(4, 2100, 1300, 600, 300)  # zoom 4's own grid: a crop of tiles
    out = tmp_path / "dem.tif"
    result = export(world, out, bbox, resolution=res, layer="elevation", progress=False)
    assert (result.kind, result.zoom, result.width, result.height) == ("geotiff", 4, 600, 300)
    arrays, transform = world.region(bbox, res, layers=["elevation"])
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 3857 and ds.transform == transform
        assert (ds.count, ds.dtypes[0], ds.nodata) == (1, "float32", None)
        assert ds.compression.value == "DEFLATE" and ds.profile["tiled"]
        assert ds.overviews(1) == [2, 4]
        assert ds.tags()["ORBIS_LAYER"] == "elevation" and ds.tags(1)["units"] == "m"
        data = ds.read(1)
        lon, lat = centres_lonlat(ds)
    assert np.array_equal(data, arrays["elevation"])
    want = geo_stub.stub_elevation(lon, lat)
    assert np.abs(data - want).max() < 0.5  # the stub's metres at the pixel centres
    assert data.min() < 0 < data.max()


def test_elevation_geotiff_resampled_is_the_area_mean(world, tmp_path):
    out = tmp_path / "dem.tif"
    export(world, out, BOX, resolution=8000, layer="elevation", progress=False)
    arrays, transform = world.region(BOX, 8000, layers=["elevation"])
    with rasterio.open(out) as ds:
        assert ds.transform == transform
        data = ds.read(1)
        lon, lat = centres_lonlat(ds)
    assert np.array_equal(data, arrays["elevation"])
    # an area mean of a smooth field: close to its value at the centre
    assert np.abs(data - geo_stub.stub_elevation(lon, lat)).mean() < 60


@pytest.mark.parametrize(
    ("layer", "klasses"), [("landcover", C.LANDCOVER), ("water", C.WATER_KINDS)]
)
def test_class_geotiff_is_uint8_with_the_legend_colour_map(world, tmp_path, layer, klasses):
    bbox, res = pixel_region(5, 4200, 2700, 300, 260)
    out = tmp_path / f"{layer}.tif"
    export(world, out, bbox, resolution=res, layer=layer, progress=False)
    arrays, _ = world.region(bbox, res, layers=[layer])
    with rasterio.open(out) as ds:
        assert (ds.count, ds.dtypes[0], ds.nodata) == (1, "uint8", None)
        cmap = ds.colormap(1)
        assert all(cmap[k.id] == (*k.color, 255) for k in klasses)
        assert ds.tags()[f"CLASS_{klasses[1].id}"] == klasses[1].name
        data = ds.read(1)
    assert np.array_equal(data, arrays[layer])
    assert set(np.unique(data)) <= {k.id for k in klasses} and len(np.unique(data)) >= 2
    if layer == "water":  # the stub's ocean is where it lies below 0 m
        elev, _ = world.region(bbox, res, layers=["elevation"])
        assert (elev["elevation"][data == C.OCEAN] < 0).all()


def test_layer_export_errors(world, tmp_path):
    with pytest.raises(ExportError, match="--layer is exported as a GeoTIFF"):
        export(world, tmp_path / "a.mbtiles", BOX, zooms=range(2, 3), layer="water")
    with pytest.raises(UnknownLayer, match="unknown layer 'lava'"):
        export(world, tmp_path / "a.tif", BOX, resolution=8000, layer="lava")
    with pytest.raises(ExportError, match="takes --resolution"):
        export(world, tmp_path / "a.tif", BOX, zooms=range(2, 3), layer="water")
    assert list(tmp_path.iterdir()) == []


def test_layer_export_of_a_world_without_geography(stubbed, tiny_model, tmp_path):
    cfg = tmp_path / "config"
    earth = (CONFIG_DIR / "worlds" / "earth.toml").read_text()
    write_world(cfg, "bare", earth + '\n[geography]\nkind = "none"\n')
    bare = World.load("bare", cfg, model=tiny_model)
    with pytest.raises(UnknownLayer, match="no geography layers"):
        export(bare, tmp_path / "a.tif", BOX, resolution=8000, layer="elevation")
    assert not (tmp_path / "a.tif").exists()


def test_failed_layer_export_leaves_no_file(world, tmp_path, monkeypatch):
    out = tmp_path / "dem.tif"
    out.write_bytes(b"the previous export")

    def failing(*args, **kw):
        raise RuntimeError("layer failed")

    monkeypatch.setattr(world, "layer", failing)
    with pytest.raises(RuntimeError, match="layer failed"):
        export(world, out, BOX, resolution=8000, layer="elevation", progress=False)
    assert out.read_bytes() == b"the previous export"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_cli_export_layer(stubbed, tmp_path_factory, tmp_path):
    model = save_tiny_model(tmp_path_factory.mktemp("tiny-model"))
    out = tmp_path / "dem.tif"
    args = ["export", "earth", "--bbox", "20,40,25,48", "--resolution", "20000",
            "--layer", "elevation", "-o", str(out), "--model", str(model)]  # fmt: skip
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "export earth elevation:" in result.output and f"wrote {out}" in result.output
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 3857 and ds.dtypes[0] == "float32"
    bad = ["export", "earth", "--bbox", "20,40,25,48", "--zooms", "3", "--layer", "water",
           "-o", str(tmp_path / "x.mbtiles"), "--model", str(model)]  # fmt: skip
    result = CliRunner().invoke(main, bad)
    assert result.exit_code == 2
    assert "--layer is exported as a GeoTIFF" in result.stderr
