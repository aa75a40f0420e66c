"""Exports (``generator.export``, ``orbis export``): MBTiles, PMTiles and GeoTIFF read back with
the tools a user would open them with (sqlite3, Protomaps' pmtiles reader, rasterio).

Boxes sit at zooms up to the base (4), where tiles need no model evaluation, so tests are fast.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from pmtiles.reader import MmapSource, Reader, all_tiles
from pmtiles.tile import TileType

import generator.export as export_mod
from generator import tiles
from generator.cli import main
from generator.errors import ExportError, InvalidRegion
from generator.export import export, parse_zooms
from generator.export.common import archive_tiles
from generator.export.geotiff import overview_factors
from generator.region import Bbox, plan_region
from generator.store import MemoryStore
from tests.serving_helpers import decode_array, save_tiny_model
from tileserver.formats import ImageFormat

#: the Balkans: 1 tile at zoom 2, 1×2 at zoom 3, 2×2 at zoom 4
BOX = Bbox(20.0, 40.0, 25.0, 48.0)


def encoded(world, t: tiles.Tile, fmt: str = "png") -> bytes:
    return ImageFormat(fmt).encode_image(world.tile_array(t.z, t.x, t.y))


# ---- MBTiles ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mbtiles(earth, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mbtiles") / "box.mbtiles"
    export(earth, out, BOX, zooms=range(2, 5), progress=False)
    return out


def test_mbtiles_metadata_follows_the_1_3_spec(earth, mbtiles):
    with sqlite3.connect(mbtiles) as db:
        meta = dict(db.execute("SELECT name, value FROM metadata"))
    for key in ("name", "format", "bounds", "center", "minzoom", "maxzoom", "attribution",
                "description", "type", "version"):  # fmt: skip
        assert meta[key], key
    assert meta["format"] == "png" and meta["type"] == "baselayer"
    assert (meta["minzoom"], meta["maxzoom"]) == ("2", "4")
    assert [float(v) for v in meta["bounds"].split(",")] == pytest.approx(list(BOX))
    lon, lat, z = meta["center"].split(",")
    assert (float(lon), float(lat), z) == (pytest.approx(22.5), pytest.approx(44.0), "2")
    assert meta["attribution"] == earth.config.attribution
    assert meta["orbis_version"] == earth.content_hash


def test_mbtiles_rows_are_tms_and_tiles_are_the_server_bytes(earth, mbtiles):
    with sqlite3.connect(mbtiles) as db:
        rows = {(z, c, r): bytes(d) for z, c, r, d in db.execute("SELECT * FROM tiles")}
    expected = archive_tiles(BOX, range(2, 5))
    assert len(rows) == len(expected) == 1 + 2 + 4
    for t in expected:
        tms_row = (1 << t.z) - 1 - t.y  # TMS: row 0 at the bottom
        assert rows[(t.z, t.x, tms_row)] == encoded(earth, t), t
    # XYZ row 5 at zoom 4 is 5; in TMS it is 10
    assert (4, 8, 10) in rows and (4, 8, 5) not in rows


def test_mbtiles_has_the_unique_tile_index(mbtiles):
    with sqlite3.connect(mbtiles) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO tiles VALUES (4, 8, 10, x'00')")


def test_gdal_reads_the_mbtiles_at_its_max_zoom(earth, mbtiles):
    t = tiles.tms()
    cell = t.matrix(4).cellSize
    with rasterio.open(mbtiles) as ds:
        assert ds.driver == "MBTiles" and ds.crs.to_epsg() == 3857
        assert ds.transform.a == pytest.approx(cell)
        px0 = round((ds.transform.c - t.xy_bbox.left) / cell)
        py0 = round((t.xy_bbox.top - ds.transform.f) / cell)
        data = ds.read([1, 2, 3]).transpose(1, 2, 0)
    region, _ = earth.region(*_pixel_region(4, px0, py0, ds.width, ds.height))
    assert np.array_equal(data, region)


def _pixel_region(z: int, px0: int, py0: int, w: int, h: int):
    """The (bbox, ground m/px) whose region is global pixels [px0, px0+w) × [py0, py0+h)."""
    t = tiles.tms()
    cell = t.matrix(z).cellSize
    west, north = t.lnglat(t.xy_bbox.left + px0 * cell, t.xy_bbox.top - py0 * cell)
    east, south = t.lnglat(t.xy_bbox.left + (px0 + w) * cell, t.xy_bbox.top - (py0 + h) * cell)
    lat_c = t.lnglat(0, t.xy_bbox.top - (py0 + h / 2) * cell).y
    return (west, south, east, north), cell * np.cos(np.radians(lat_c))


def test_mbtiles_jpg_tiles_are_jpeg(earth, tmp_path):
    out = tmp_path / "box.mbtiles"
    export(earth, out, BOX, zooms=range(3, 4), fmt="jpg", progress=False)
    with sqlite3.connect(out) as db:
        assert db.execute("SELECT value FROM metadata WHERE name='format'").fetchone() == ("jpg",)
        data = db.execute("SELECT tile_data FROM tiles").fetchone()[0]
    assert data[:3] == b"\xff\xd8\xff"
    assert decode_array(data).shape == (256, 256, 3)


# ---- PMTiles ------------------------------------------------------------------------------------
def test_pmtiles_round_trip(earth, tmp_path):
    out = tmp_path / "box.pmtiles"
    result = export(earth, out, BOX, zooms=range(2, 5), progress=False)
    assert result.tiles == 7 and result.bytes == out.stat().st_size
    with open(out, "rb") as f:
        reader = Reader(MmapSource(f))
        header = reader.header()
        assert header["tile_type"] == TileType.PNG
        assert (header["min_zoom"], header["max_zoom"]) == (2, 4)
        assert header["min_lon_e7"] == 200_000_000 and header["max_lat_e7"] == 480_000_000
        assert header["clustered"]
        assert reader.metadata()["name"] == earth.config.title
        for t in archive_tiles(BOX, range(2, 5)):
            assert reader.get(t.z, t.x, t.y) == encoded(earth, t), t
        assert reader.get(4, 0, 0) is None
        assert len(list(all_tiles(reader.get_bytes))) == 7


# ---- GeoTIFF ------------------------------------------------------------------------------------
def test_geotiff_is_georeferenced_and_holds_the_region(earth, tmp_path):
    # pixels 2100..2700 × 1300..1600 of zoom 4 at exactly zoom 4's resolution: a crop of tiles
    t = tiles.tms()
    cell = t.matrix(4).cellSize
    bbox, res = _pixel_region(4, 2100, 1300, 600, 300)
    out = tmp_path / "box.tif"
    result = export(earth, out, bbox, resolution=res, progress=False)
    assert (result.zoom, result.width, result.height) == (4, 600, 300)

    arr, transform = earth.region(bbox, res)
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 3857
        assert ds.transform == transform
        assert ds.transform.a == pytest.approx(cell) and ds.transform.e == pytest.approx(-cell)
        assert ds.transform.c == pytest.approx(t.xy_bbox.left + 2100 * cell)
        assert ds.transform.f == pytest.approx(t.xy_bbox.top - 1300 * cell)
        assert (ds.width, ds.height, ds.count) == (600, 300, 3)
        assert ds.compression.value == "DEFLATE" and ds.profile["tiled"]
        assert ds.overviews(1) == [2, 4]
        data = ds.read().transpose(1, 2, 0)
    assert np.array_equal(data, arr)
    mosaic = np.concatenate(
        [np.concatenate([earth.tile_array(4, x, y) for x in range(8, 11)], axis=1) for y in (5, 6)]
    )
    assert np.array_equal(data, mosaic[1300 - 1280 : 1600 - 1280, 2100 - 2048 : 2700 - 2048])


def test_geotiff_resampled_matches_world_region(earth, tmp_path):
    out = tmp_path / "box.tif"
    export(earth, out, BOX, resolution=8000, progress=False)
    arr, transform = earth.region(BOX, 8000)
    with rasterio.open(out) as ds:
        assert ds.transform == transform
        assert np.array_equal(ds.read().transpose(1, 2, 0), arr)


@pytest.mark.parametrize(
    ("size", "factors"),
    [
        ((200, 256), []),  # fits one block: no overview
        ((600, 300), [2, 4]),  # 300×150, then 150×75 fits a block
        ((200, 900), [2, 4]),
        ((5000, 4000), [2, 4, 8]),  # at most three levels
    ],
)
def test_overview_factors(size, factors):
    assert overview_factors(*size) == factors


# ---- limits, atomicity, arguments ---------------------------------------------------------------
def test_an_export_over_the_limit_needs_force(earth, tmp_path, monkeypatch):
    monkeypatch.setattr(export_mod, "MAX_ARCHIVE_TILES", 5)
    out = tmp_path / "big.mbtiles"
    with pytest.raises(ExportError, match=r"7 tiles, over the limit of 5 .*--force"):
        export(earth, out, BOX, zooms=range(2, 5), progress=False)
    assert not out.exists()
    assert export(earth, out, BOX, zooms=range(2, 5), force=True, progress=False).tiles == 7


def test_geotiff_over_the_limit_needs_force(earth, tmp_path, monkeypatch):
    monkeypatch.setattr(export_mod, "MAX_GEOTIFF_TILES", 1)
    with pytest.raises(ExportError, match="source tiles, over the limit of 1"):
        export(earth, tmp_path / "a.tif", BOX, resolution=8000, progress=False)


@pytest.mark.parametrize("suffix", [".mbtiles", ".pmtiles", ".tif"])
def test_a_failed_export_leaves_no_file(earth, tmp_path, monkeypatch, suffix):
    out = tmp_path / f"box{suffix}"
    out.write_bytes(b"the previous export")
    calls = []

    def failing(z, x, y):
        calls.append((z, x, y))
        if len(calls) > 2:
            raise RuntimeError("generation failed")
        return np.zeros((256, 256, 3), np.uint8)

    monkeypatch.setattr(earth, "tile_array", failing)
    # nothing cached: earlier exports' encoded tiles would be reused without calling tile_array
    monkeypatch.setattr(earth.pyramid, "store", MemoryStore())
    monkeypatch.setattr(earth.pyramid, "_hot", MemoryStore())
    kw = {"resolution": 8000} if suffix == ".tif" else {"zooms": range(2, 5)}
    with pytest.raises(RuntimeError, match="generation failed"):
        export(earth, out, BOX, progress=False, workers=1, **kw)
    assert out.read_bytes() == b"the previous export"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no partial file left


@pytest.mark.parametrize(
    ("text", "zooms"),
    [("3", range(3, 4)), ("0-4", range(0, 5)), (" 2-2 ", range(2, 3))],
)
def test_parse_zooms(text, zooms):
    assert parse_zooms(text, max_zoom=22) == zooms


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a-b", "integers"),
        ("1-2-3", "A-B"),
        ("5-3", "not be above"),
        ("3-23", "maximum zoom 22"),
        ("-1", "integers"),  # a negative zoom: '' and '1'
    ],
)
def test_bad_zooms_are_errors(text, message):
    with pytest.raises(InvalidRegion, match=message):
        parse_zooms(text, max_zoom=22)


def test_archive_tiles_across_the_antimeridian():
    got = archive_tiles(Bbox(170, -10, -170, 10), range(3, 4))
    assert {(t.x, t.y) for t in got} == {(0, 3), (0, 4), (7, 3), (7, 4)}


def test_geotiff_plan_uses_the_zoom_of_the_resolution():
    # 8 km/px at 44°N is 11.1 km/px projected: zoom 4 (9.8 km) is the finest not coarser
    assert plan_region(BOX, 8000, max_zoom=22).zoom == 4


# ---- the command line ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_cli_export_mbtiles(model_dir, tmp_path):
    out = tmp_path / "box.mbtiles"
    result = run("export", "earth", "--bbox", "20,40,25,48", "--zooms", "3-4", "-o", out,
                 "--model", model_dir)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "6 tiles (0 cached, 6 to generate" in result.output
    assert f"wrote {out} (6 tiles" in result.output
    with sqlite3.connect(out) as db:
        assert db.execute("SELECT count(*) FROM tiles").fetchone() == (6,)


def test_cli_export_geotiff(model_dir, tmp_path):
    out = tmp_path / "box.tif"
    result = run("export", "earth", "--bbox", "20,40,25,48", "--resolution", "20000", "-o", out,
                 "--model", model_dir)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "from zoom 3" in result.output
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 3857 and ds.count == 3


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--zooms", "3-4", "-o", "x.geojson"], "cannot tell the export type"),
        (["--zooms", "3-4", "-o", "x.tif"], "GeoTIFF export takes --resolution"),
        (["--resolution", "10", "-o", "x.mbtiles"], "MBTILES export takes --zooms"),
        (["-o", "x.pmtiles"], "PMTILES export takes --zooms"),
        (["--bbox", "5,44,15", "--zooms", "3", "-o", "x.mbtiles"], "four numbers"),
        (["--zooms", "3-30", "-o", "x.mbtiles"], "maximum zoom 22"),
        (["--zooms", "0-12", "-o", "x.mbtiles"], "over the limit of 10,000"),
        (["--resolution", "0.001", "-o", "x.tif"], "finer than this world's maximum zoom"),
    ],
)
def test_cli_export_errors_are_one_line(model_dir, tmp_path, args, fragment):
    if "--bbox" not in args:
        args = ["--bbox", "20,40,25,48", *args]
    args = [str(tmp_path / a) if a.startswith("x.") else a for a in args]
    result = run("export", "earth", *args, "--model", model_dir)
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("orbis: error: "), result.stderr
    assert fragment in lines[0]
    assert list(tmp_path.iterdir()) == []
