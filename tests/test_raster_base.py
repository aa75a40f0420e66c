"""Raster bases (issue 16): a GeoTIFF as a world's base, over a fallback world, feathered.

The scenes are small GeoTIFFs written here with rasterio: an RGB scene in UTM 32N (600 m px,
native zoom 8, so the fallback's cascade from zoom 4 is short), a 16-bit one with nodata on its
western third, and broken files for every error. The fallback world is Blue Marble at zoom 4
without geography, and every model is the tiny random one, so the file stays fast.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import mercantile
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.warp import reproject

from generator import tiles
from generator.cli import main
from generator.errors import ImageInputError, WorldConfigError
from generator.metrics import box_down2, psnr
from generator.sources.compose import feather_weight
from generator.sources.raster import RasterSource, parse_rescale
from generator.world import World
from generator.world_config import load_world_config
from tests.helpers import luminance, seam_ratio, write_world
from tests.serving_helpers import save_tiny_model, stop_process

REPO = Path(__file__).resolve().parent.parent
UTM32 = CRS.from_epsg(32632)
#: a 600 m/px scene centred near 45° N, 9° E (Mercator 848 m/px → native zoom 8)
ORIGIN = (500_000.0 - 384 * 600.0, 4_983_000.0 + 384 * 600.0)


def scene_pixels(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth, textured (3, h, w) scene in 40..215 (no clipping under resampling)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    noise = gaussian_filter(rng.normal(0, 1, (3, h, w)), (0, 6, 6))
    noise /= noise.std()
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = np.stack([np.sin(xx / 40), np.cos(yy / 55), np.sin((xx + yy) / 70)])
    return np.clip(128 + 30 * ramp + 25 * noise, 40, 215).astype(np.uint8)


def write_tif(path: Path, data: np.ndarray, *, nodata=None, crs=UTM32, res=600.0) -> Path:
    """Write a tiled GeoTIFF with overviews (2, 4) and return its path."""
    transform = Affine(res, 0.0, ORIGIN[0], 0.0, -res, ORIGIN[1])
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
        tiled=True,
        blockxsize=256,
        blockysize=256,
    ) as ds:
        ds.write(data)
        ds.build_overviews([2, 4], Resampling.average)
    return path


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> dict[str, Path]:
    """The scenes and broken files of this module, written once."""
    d = tmp_path_factory.mktemp("scenes")
    rgb = scene_pixels(768, 768)
    out = {"rgb": write_tif(d / "rgb.tif", rgb)}
    v16 = 500 + rgb.astype(np.uint16) * 40  # 2,100..9,100: a 16-bit reflectance-like range
    v16[:, :, :256] = 0  # nodata on the western third
    out["u16"] = write_tif(d / "u16.tif", v16, nodata=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rasterio: "no geotransform" when writing one
        with rasterio.open(
            d / "nogeo.tif", "w", driver="GTiff", width=32, height=32, count=3, dtype="uint8"
        ) as ds:
            ds.write(rgb[:, :32, :32])
    local = CRS.from_wkt('LOCAL_CS["arbitrary",UNIT["metre",1],AXIS["E",EAST],AXIS["N",NORTH]]')
    out["local"] = write_tif(d / "local.tif", rgb[:, :64, :64], crs=local)
    out["nogeo"] = d / "nogeo.tif"
    (d / "junk.tif").write_bytes(b"this is not a TIFF")
    out["junk"] = d / "junk.tif"
    return out


FLAT = """
title = "flat"
seed = 5
max_zoom = 14
[base]
kind = "bluemarble"
zoom = 4
[geography]
kind = "none"
"""


def raster_toml(path: Path, extra: str = "", fallback: str = "flat") -> str:
    """A raster world over the fallback, with its seed and geography (as world new writes)."""
    return f"""
seed = 5
max_zoom = 12
[base]
kind = "raster"
path = "{path}"
fallback = "{fallback}"
{extra}
[geography]
kind = "none"
"""


@pytest.fixture(scope="module")
def cfg(tmp_path_factory, scenes) -> Path:
    """A config folder: the fallback ``flat``, the worlds ``scene`` and ``scene16``."""
    d = tmp_path_factory.mktemp("config")
    write_world(d, "flat", FLAT)
    write_world(d, "scene", raster_toml(scenes["rgb"]))
    write_world(d, "scene16", raster_toml(scenes["u16"], 'rescale = "2000,9500"'))
    return d


@pytest.fixture(scope="module")
def world(cfg, tiny_model) -> World:
    """The raster world over ``flat`` (one shared in-memory cache for the module)."""
    return World.load("scene", cfg, model=tiny_model)


def centre_tile(src: RasterSource, z: int) -> mercantile.Tile:
    w, s, e, n = src.bounds()
    return mercantile.tile((w + e) / 2, (s + n) / 2, z)


def reference(path: Path, z: int, x: int, y: int, bands=(1, 2, 3)) -> np.ndarray:
    """GDAL's reprojection of the file onto tile (z, x, y), done here independently."""
    b = mercantile.xy_bounds(x, y, z)
    res = (b.right - b.left) / 256
    dst = np.zeros((3, 256, 256), np.float32)
    with rasterio.open(path) as ds:
        reproject(
            rasterio.band(ds, list(bands)),
            dst,
            dst_transform=Affine(res, 0.0, b.left, 0.0, -res, b.top),
            dst_crs="EPSG:3857",
            resampling=Resampling.bilinear,
        )
    return dst.transpose(1, 2, 0)


# ---- the source ------------------------------------------------------------------------------
def test_native_zoom_is_the_coarsest_not_coarser_than_the_data(scenes):
    src = RasterSource(scenes["rgb"])
    # 600 m at 45.0° N is 848 Mercator m; zoom 8 has 611 m px, zoom 7 1223 m
    assert 840 < src.mercator_res < 860
    assert src.native_zoom == 8
    tms = tiles.tms()
    assert tms.matrix(8).cellSize <= src.mercator_res < tms.matrix(7).cellSize


def test_native_tiles_reproduce_gdals_reprojection(scenes):
    src = RasterSource(scenes["rgb"])
    t = centre_tile(src, src.native_zoom)
    rgb, alpha = src.read(t.z, t.x, t.y)
    assert rgb.dtype == np.uint8 and rgb.shape == (256, 256, 3) and alpha.shape == (256, 256)
    assert alpha.min() == 1.0  # the centre tile lies inside the scene
    ref = reference(scenes["rgb"], t.z, t.x, t.y)
    assert psnr(rgb.astype(np.float64), ref.astype(np.float64)) >= 40.0


def test_footprint_and_alpha(scenes):
    src = RasterSource(scenes["rgb"])
    w, s, e, n = src.bounds()
    assert w < 9.0 < e and s < 45.0 < n
    far = mercantile.tile(w - 5, s - 5, 8)
    rgb, alpha = src.read(far.z, far.x, far.y)
    assert alpha.max() == 0.0
    edge = mercantile.tile(w, (s + n) / 2, 8)  # across the western edge
    _, alpha = src.read(edge.z, edge.x, edge.y)
    assert 0.05 < alpha.mean() < 0.95 and set(np.unique(alpha)) == {0.0, 1.0}


def test_sixteen_bit_rescale_and_nodata(scenes):
    src = RasterSource(scenes["u16"], rescale="2000,9500")
    t = centre_tile(src, 8)
    rgb, alpha = src.read(t.z, t.x, t.y)
    assert alpha.min() == 1.0
    ref = reference(scenes["u16"], t.z, t.x, t.y)
    want = np.clip(np.rint((ref - 2000) * 255 / 7500), 0, 255)
    assert np.abs(rgb.astype(np.float64) - want).max() <= 2
    w, s, e, n = src.bounds()
    west = mercantile.tile(w + 0.2, (s + n) / 2, 8)  # in the nodata third
    _, alpha = src.read(west.z, west.x, west.y)
    assert alpha.mean() < 0.5
    auto = RasterSource(scenes["u16"])  # no rescale: the file's own 2-98 % stretch
    assert auto.auto_rescale and all(2000 <= lo < hi <= 9200 for lo, hi in auto.rescale)


def test_bands_select_and_grey(scenes):
    bgr = RasterSource(scenes["rgb"], bands=(3, 2, 1))
    rgb = RasterSource(scenes["rgb"])
    grey = RasterSource(scenes["rgb"], bands=(2,))
    t = centre_tile(rgb, 8)
    a, b, g = (s.read(t.z, t.x, t.y)[0] for s in (rgb, bgr, grey))
    assert np.array_equal(a[..., ::-1], b)
    assert np.array_equal(g[..., 0], a[..., 1]) and np.array_equal(g[..., 2], a[..., 1])
    assert bgr.identity() != rgb.identity()


def test_identity_follows_the_file_bytes(tmp_path, scenes):
    p = tmp_path / "copy.tif"
    p.write_bytes(scenes["rgb"].read_bytes())
    first = RasterSource(p).identity()
    assert first == RasterSource(scenes["rgb"]).identity()  # bytes, not the name
    data = scene_pixels(768, 768, seed=1)
    write_tif(p, data)
    os.utime(p, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert RasterSource(p).identity()["sha256"] != first["sha256"]


@pytest.mark.parametrize(
    ("key", "kwargs", "fragment"),
    [
        ("missing", {}, "no such file"),
        ("junk", {}, "not a raster GDAL can read"),
        ("nogeo", {}, "not georeferenced"),
        ("local", {}, "unknown CRS 'arbitrary'"),
        ("rgb", {"bands": (1, 2, 5)}, "band 5 does not exist (the file has 3 bands"),
        ("rgb", {"bands": (1, 2)}, "give 1 (grey) or 3"),
        ("rgb", {"rescale": "9,1"}, "rescale"),
    ],
)
def test_bad_input_is_one_line_naming_the_file(scenes, tmp_path, key, kwargs, fragment):
    path = scenes.get(key, tmp_path / "missing.tif")
    with pytest.raises(ImageInputError) as exc:
        RasterSource(path, **kwargs)
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg and fragment in msg, msg


def test_parse_rescale_forms():
    assert parse_rescale("0,3000", 3) == ((0.0, 3000.0),) * 3
    assert parse_rescale(["0,1", "0,2", "0,3"], 3)[2] == (0.0, 3.0)
    assert parse_rescale([0, 255], 1) == ((0.0, 255.0),)
    with pytest.raises(ValueError, match="2 ranges for 3 bands"):
        parse_rescale(["0,1", "0,2"], 3)


# ---- config -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("base", "key", "fragment"),
    [
        ('kind = "xyz"\nurl = "http://h/{z}/{x}.png"\nmax_zoom = 9', "base.url", "no {y}"),
        ('kind = "xyz"\nurl = "ftp://h/{z}/{x}/{y}"\nmax_zoom = 9', "base.url", "http"),
        ('kind = "xyz"\nurl = "http://{s}.h/{z}/{x}/{y}"\nmax_zoom = 9', "base.url", "{s}"),
        ('kind = "xyz"\nurl = "http://h/{z}/{x}/{y}.png"', "base", "needs url and max_zoom"),
        ('kind = "raster"', "base", "needs path"),
        ('kind = "raster"\npath = "a.tif"\nzoom = 5', "base", "takes no zoom"),
        ('kind = "raster"\npath = "a.tif"\nurl = "http://x/{z}/{x}/{y}"', "base", "url is only"),
        ('kind = "bluemarble"\npath = "a.tif"', "base", "path is only for"),
        ('kind = "raster"\npath = "a.tif"\nbands = [1, 2]', "base.bands", "give 1 band"),
        ('kind = "raster"\npath = "a.tif"\nrescale = "3"', "base.rescale", "min,max"),
        ('kind = "raster"\npath = "a.tif"\nfeather = 999', "base.feather", "256"),
    ],
)
def test_config_errors_name_the_key(tmp_path, base, key, fragment):
    """The TOML file, the key and the problem in one line (the xyz URL rule is the source's)."""
    write_world(tmp_path, "w", f"seed = 1\n[base]\n{base}\n")
    with pytest.raises(WorldConfigError) as exc:
        load_world_config("w", tmp_path)
    assert exc.value.key == key and fragment in str(exc.value), str(exc.value)
    assert "\n" not in str(exc.value)


def test_a_tms_template_is_a_valid_xyz_base(tmp_path):
    write_world(
        tmp_path,
        "w",
        'seed = 1\n[base]\nkind = "xyz"\nurl = "http://h/{z}/{x}/{-y}.png"\nmax_zoom = 9\n',
    )
    assert load_world_config("w", tmp_path).base.url == "http://h/{z}/{x}/{-y}.png"


def test_world_errors_name_the_toml_and_key(tmp_path, scenes, tiny_model):
    write_world(tmp_path, "flat", FLAT)
    for name, extra, key, fragment in [
        ("gone", None, "base.path", "no such file"),
        ("band", "bands = [7]", "base.bands", "band 7 does not exist"),
        ("low", None, "max_zoom", "below the data's native zoom 8"),
    ]:
        path = tmp_path / "nope.tif" if name == "gone" else scenes["rgb"]
        text = raster_toml(path, extra or "")
        if name == "low":
            text = text.replace("max_zoom = 12", "max_zoom = 6")
        write_world(tmp_path, name, text)
        with pytest.raises(WorldConfigError) as exc:
            World.load(name, tmp_path, model=tiny_model)
        assert exc.value.key == key and fragment in str(exc.value), str(exc.value)
        assert f"{name}.toml" in exc.value.file


def test_relative_path_is_taken_from_the_config_folders_parent(tmp_path, scenes, tiny_model):
    cdir = tmp_path / "config"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "s.tif").write_bytes(scenes["rgb"].read_bytes())
    write_world(cdir, "rel", raster_toml(Path("data/s.tif"), fallback="none"))
    w = World.load("rel", cdir, model=tiny_model)
    assert w.source.path == cdir.parent / "data" / "s.tif" and w.pyramid.base_zoom == 8


def test_fallback_loop_is_an_error(tmp_path, scenes, tiny_model):
    write_world(tmp_path, "a", raster_toml(scenes["rgb"], fallback="b"))
    write_world(tmp_path, "b", raster_toml(scenes["rgb"], fallback="a"))
    with pytest.raises(WorldConfigError, match=r"loop \(a → b → a\)"):
        World.load("a", tmp_path, model=tiny_model)


def test_builtin_worlds_keep_their_identity(earth):
    # the new [base] keys default to None and are not dumped: the content hash is unchanged
    assert earth.identity["base"] == {"kind": "bluemarble", "zoom": 4}


def test_content_hash_covers_source_fallback_and_feather(cfg, scenes, tiny_model, world):
    ident = world.identity["base"]
    assert ident["source"]["sha256"] == RasterSource(scenes["rgb"]).identity()["sha256"]
    assert ident["fallback"] == world.fallback.content_hash and ident["feather"] == 32
    write_world(cfg, "scene_f8", raster_toml(scenes["rgb"], "feather = 8"))
    write_world(cfg, "scene_none", raster_toml(scenes["rgb"], fallback="none"))
    write_world(cfg, "scene_b", raster_toml(scenes["rgb"], "bands = [3, 2, 1]"))
    hashes = {World.load(n, cfg, model=tiny_model).content_hash for n in ("scene_f8", "scene_none")}
    hashes.add(World.load("scene_b", cfg, model=tiny_model).content_hash)
    assert len(hashes | {world.content_hash}) == 4


# ---- composition -------------------------------------------------------------------------
def test_interior_native_tiles_are_the_source_exactly(world):
    t = centre_tile(world.source, 8)
    rgb, alpha = world.source.read_margin(8, t.x, t.y, 32)
    assert alpha.min() == 1.0
    assert np.array_equal(world.tile_array(8, t.x, t.y), rgb[32:-32, 32:-32])


@pytest.mark.slow
def test_outside_the_footprint_is_the_fallbacks_bytes(world):
    w, s, e, n = world.source.bounds()
    for z in (6, 8):  # above and at the native zoom
        t = mercantile.tile(w - 3, s - 3, z)
        assert np.array_equal(world.tile_array(z, t.x, t.y), world.fallback.tile_array(z, t.x, t.y))


@pytest.mark.slow
def test_generated_tiles_far_outside_equal_the_fallbacks(cfg, tiny_model, world):
    # same seed, model, sampler and (no) geography: the same windows give the same pixels, so
    # the world hands such tiles to its fallback; generating them here gives the same bytes
    assert world.pyramid.delegate is not None
    w, s, e, n = world.source.bounds()
    t = mercantile.tile(w - 12, s - 9, 9)  # > 5 native-zoom tiles (1.4° each) away
    want = world.fallback.tile_array(9, t.x, t.y)
    before = world.pyramid.stats.snapshot()["windows_generated"]
    assert np.array_equal(world.tile_array(9, t.x, t.y), want)
    assert world.pyramid.stats.snapshot()["windows_generated"] == before  # delegated
    alone = World.load("scene", cfg, model=tiny_model)
    alone.pyramid.delegate = None
    assert np.array_equal(alone.tile_array(9, t.x, t.y), want)  # generated: the same bytes
    assert alone.pyramid.stats.snapshot()["windows_generated"] > 0
    near = centre_tile(world.source, 9)
    assert world._delegate(tiles.Tile(near.x, near.y, 9)) is None


def test_no_delegation_when_the_cascade_differs(cfg, scenes, tiny_model):
    write_world(cfg, "scene_seed", raster_toml(scenes["rgb"]).replace("seed = 5", "seed = 6"))
    assert World.load("scene_seed", cfg, model=tiny_model).pyramid.delegate is None


@pytest.mark.slow
def test_above_native_reads_the_source_not_4_to_the_k_tiles(cfg, tiny_model):
    w = World.load("scene", cfg, model=tiny_model)  # fresh cache
    t = centre_tile(w.source, 6)
    w.tile_array(6, t.x, t.y)
    assert w.pyramid.stats.snapshot()["tiles_generated"] <= 2  # this tile (+ no children)
    t7 = centre_tile(w.source, 7)
    parent = w.tile_array(7, t7.x, t7.y).astype(np.float64)
    kids = np.zeros((512, 512, 3))
    for (dx, dy), k in tiles.children(tiles.Tile(t7.x, t7.y, 7)).items():
        kids[dy * 256 : (dy + 1) * 256, dx * 256 : (dx + 1) * 256] = w.tile_array(8, k.x, k.y)
    assert psnr(box_down2(kids), parent) >= 33.0


def edge_tiles(world: World, z: int) -> tuple[mercantile.Tile, mercantile.Tile]:
    """The tile across the scene's western edge at its centre row, and the one east of it."""
    w, s, e, n = world.source.bounds()
    t = mercantile.tile(w + 0.01, (s + n) / 2, z)
    return t, mercantile.Tile(t.x + 1, t.y, z)


def test_feather_has_no_seam(cfg, scenes, tiny_model):
    # a black fallback against a bright scene: the hardest edge there is; stretched contrast
    write_world(cfg, "scene_black", raster_toml(scenes["rgb"], fallback="none"))
    write_world(cfg, "scene_hard", raster_toml(scenes["rgb"], "feather = 0", fallback="none"))
    soft = World.load("scene_black", cfg, model=tiny_model)
    hard = World.load("scene_hard", cfg, model=tiny_model)
    t, _ = edge_tiles(soft, 8)

    def steps(img: np.ndarray) -> np.ndarray:
        lum = luminance(img)
        lum = (lum - lum.min()) / (np.ptp(lum) + 1e-9) * 255  # contrast stretched
        return np.abs(np.diff(lum, axis=1))

    a, b = soft.tile_array(8, t.x, t.y), hard.tile_array(8, t.x, t.y)
    sa, sb = steps(a), steps(b)
    inside = RasterSource(scenes["rgb"]).read(8, t.x, t.y)[1][:, 1:] > 0
    interior = float(np.percentile(steps(soft.source.read(8, t.x + 1, t.y)[0]), 99.9))
    # calibrated: the hard cut jumps ~150 levels; the scene's own steps are ≤ ~10
    assert sb.max() > 8 * interior
    assert sa.max() <= 2.0 * interior + 255 * 1.5 / 32, (sa.max(), interior)
    assert np.array_equal(a[inside.all(axis=1)][:, -64:], b[inside.all(axis=1)][:, -64:])


@pytest.mark.slow
def test_feather_weight_agrees_across_tiles(world):
    # the same pixel gets the same weight whichever tile holds it: no seam at the tile edge
    t, right = edge_tiles(world, 8)
    left_img, right_img = world.tile_array(8, t.x, t.y), world.tile_array(8, right.x, right.y)
    assert seam_ratio(left_img, right_img) < 1.6
    inside = np.ones((40, 40), bool)
    inside[:, :5] = False
    wgt = feather_weight(inside, 8.0)
    assert wgt[:, :5].max() == 0 and wgt[:, 13:].min() == 1.0 and np.all(np.diff(wgt[0]) >= 0)


@pytest.mark.slow
def test_levels_below_native_exist_and_are_deterministic(cfg, tiny_model, world):
    t = centre_tile(world.source, 9)
    a = world.tile_array(9, t.x, t.y)
    fresh = World.load("scene", cfg, model=tiny_model)
    assert fresh.content_hash == world.content_hash
    assert np.array_equal(a, fresh.tile_array(9, t.x, t.y))
    assert fresh.pyramid.stats.snapshot()["windows_generated"] > 0  # generated, not read
    parent = world.tile_array(8, t.x // 2, t.y // 2).astype(np.float64)
    half = parent[(t.y % 2) * 128 : (t.y % 2) * 128 + 128, (t.x % 2) * 128 : (t.x % 2) * 128 + 128]
    assert psnr(box_down2(a.astype(np.float64)), half) >= 33.0  # the parent correction holds


# ---- CLI ------------------------------------------------------------------------------------
def test_world_new_writes_a_world_and_refuses_to_overwrite(tmp_path, scenes, tiny_model):
    runner = CliRunner()
    cdir = tmp_path / "cfg"
    write_world(cdir, "flat", FLAT)
    args = ["world", "new", "mine", "--base", str(scenes["rgb"]), "--fallback", "flat"]
    r = runner.invoke(main, [*args, "--config", str(cdir)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "zooms 0-8: the data (native zoom 8); 9-14" in r.output
    assert "footprint (W,S,E,N): " in r.output
    cfg = load_world_config("mine", cdir)
    assert cfg.base.kind == "raster" and cfg.seed == 5 and cfg.geography_kind == "none"
    w = World.load("mine", cdir, model=tiny_model)
    assert w.pyramid.base_zoom == 8 and w.fallback is not None and w.fallback.name == "flat"

    again = runner.invoke(main, [*args, "--config", str(cdir)])
    assert again.exit_code == 2 and "exists; pass --force" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    forced = runner.invoke(main, [*args, "--config", str(cdir), "--force"])
    assert forced.exit_code == 0, forced.output

    env = {"ORBIS_CONFIG": str(cdir)}
    for bad, fragment in [
        (["--base", str(tmp_path / "none.tif")], "no such file"),
        (["--base", str(scenes["nogeo"])], "not georeferenced"),
        (["--base", str(scenes["rgb"]), "--bands", "4"], "band 4 does not exist"),
        (["--base", str(scenes["rgb"]), "--fallback", "nope"], "unknown world 'nope'"),
    ]:
        r = runner.invoke(main, ["world", "new", "other", *bad], env=env)
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and fragment in lines[0], r.stderr
        assert lines[0].startswith("orbis: error: ")
    assert not (cdir / "worlds" / "other.toml").exists()


def test_render_a_raster_world(tmp_path, cfg, world):
    model = save_tiny_model(tmp_path / "model")
    t = centre_tile(world.source, 8)
    out = tmp_path / "t.png"
    r = CliRunner().invoke(
        main,
        ["render", "scene", f"8/{t.x}/{t.y}", "-o", str(out), "--config", str(cfg)]
        + ["--model", str(model)],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    from PIL import Image

    with Image.open(out) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), world.tile_array(8, t.x, t.y))


# ---- HTTP -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_real_server_serves_a_raster_world(tmp_path, cfg, world):
    model = save_tiny_model(tmp_path / "model")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "generator.cli", "serve", "--config", str(cfg)]
    cmd += ["--port", str(port), "--cache", "memory", "--model", str(model)]
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.25)
        t = centre_tile(world.source, 8)
        with httpx.Client(base_url=base, timeout=60) as client:
            r = client.get(f"/tiles/scene/8/{t.x}/{t.y}.png")
            assert r.status_code == 200 and r.headers["content-type"] == "image/png"
            from tests.serving_helpers import decode_array

            assert np.array_equal(decode_array(r.content), world.tile_array(8, t.x, t.y))
            info = {w["name"]: w for w in client.get("/worlds").json()}
            assert info["scene"]["base_zoom"] == 8
            bad = client.get("/tiles/scene/13/0/0.png")  # above the world's max_zoom 12
            assert 400 <= bad.status_code < 500
    finally:
        stop_process(proc, timeout=30)
    assert "Traceback" not in log.read_text()


def test_the_water_edit_acts_outside_the_data_only(world):
    from generator.planner import Rect
    from generator.sources.compose import FootprintFollower

    class Brighten:  # a stand-in for the water edit: changes every pixel
        def edit(self, z, rect, img, parent, context=None):
            return img + 0.5

    base = world.pyramid.base
    f = FootprintFollower(Brighten(), base)
    inner = centre_tile(world.source, 10)  # two levels below the native zoom, in the data
    rect = Rect(inner.y * 256, inner.x * 256, 288, 288)
    img = np.random.default_rng(0).uniform(-1, 1, (3, 288, 288)).astype(np.float32)
    assert np.array_equal(f.edit(10, rect, img, None), img)  # the data's pixels, exactly
    w, s, e, n = world.source.bounds()
    far = mercantile.tile(w - 3, s - 3, 10)
    rect = Rect(far.y * 256, far.x * 256, 288, 288)
    assert base.weight_rect(10, rect) is None
    assert np.array_equal(f.edit(10, rect, img, None), img + 0.5)  # the edit, exactly
    edge = mercantile.tile(w, (s + n) / 2, 10)
    ramps = [
        base.weight_rect(10, Rect(edge.y * 256, (edge.x + i) * 256, 256, 256)) for i in range(6)
    ]
    ramps = [r for r in ramps if r is not None and r.min() < 0.5 < r.max()]
    assert ramps and all(np.all(np.diff(r, axis=1) >= -1e-6) for r in ramps)  # fades in eastward
    assert world.identity["base"]["follow"] == "outside the data"
