"""``orbis upscale`` on georeferenced GeoTIFFs (``generator.geoupscale``), with the tiny model.

The output must lie exactly over the input (same CRS, same bounds, transform scaled by 2^-k,
2^k × the pixels) and be the input's detail, not a new picture: the output box-downsampled by
2^k is within 30 dB PSNR of the input (the parent correction of every step makes it so; the
figures measured here are 42.6 dB for k = 1 and 43.1 dB for k = 2 with the tiny model, see
``test_output_downsampled_is_the_input``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from PIL import Image

from generator import geoupscale
from generator.cli import main
from tests.helpers import psnr
from tests.serving_helpers import save_tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def smooth(h: int, w: int, seed: int = 0, bands: int = 3, scale: float = 1.0) -> np.ndarray:
    """Smooth, textured bands (n, h, w) well inside 0..255·scale (no clipping in the steps)."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for i in range(bands):
        f = rng.uniform(0.05, 0.2, 2)
        out.append(128 + 50 * np.sin(f[0] * u + i) * np.cos(f[1] * v - i) + 10 * np.sin(0.5 * u))
    return np.stack(out) * scale


def write_tif(path: Path, data: np.ndarray, crs: str, transform: Affine, **kw) -> Path:
    profile = {
        "driver": "GTiff",
        "count": data.shape[0],
        "height": data.shape[1],
        "width": data.shape[2],
        "dtype": kw.pop("dtype", "uint8"),
        "crs": crs,
        "transform": transform,
        **kw,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(profile["dtype"]))
    return path


def box_down(a: np.ndarray, f: int) -> np.ndarray:
    h, w = a.shape[0] // f, a.shape[1] // f
    return a[: h * f, : w * f].reshape(h, f, w, f, -1).astype(np.float64).mean(axis=(1, 3))


#: a 10 m UTM 32N scene over the Alps and a 0.0005° lon/lat one over Paris
UTM = ("EPSG:32632", Affine(10, 0, 500000, 0, -10, 5100000))
LONLAT = ("EPSG:4326", Affine(0.0005, 0, 2.30, 0, -0.0005, 48.90))


@pytest.mark.parametrize(
    ("grid", "levels"), [(UTM, 1), (LONLAT, 1), pytest.param(UTM, 2, marks=pytest.mark.slow)]
)
def test_output_lies_over_the_input(model_dir, tmp_path, grid, levels):
    crs, transform = grid
    src = write_tif(tmp_path / "in.tif", smooth(48, 64), crs, transform)
    out = tmp_path / "out.tif"
    r = run("upscale", src, "--levels", levels, "--model", model_dir, "-o", out)
    assert r.exit_code == 0, r.output
    f = 2**levels
    with rasterio.open(src) as a, rasterio.open(out) as b:
        assert b.crs == a.crs
        assert b.bounds == pytest.approx(tuple(a.bounds), abs=1e-9)
        assert (b.height, b.width) == (a.height * f, a.width * f)
        assert b.transform.almost_equals(a.transform @ Affine.scale(1 / f))
        assert b.count == 3 and b.dtypes == ("uint8",) * 3
        up = b.read().transpose(1, 2, 0)
        inp = a.read().transpose(1, 2, 0)
    got = psnr(box_down(up, f), inp.astype(np.float64))
    assert got >= 30, got
    assert up.std() > 0.5 * inp.std()  # detail, not a flat image


@pytest.mark.slow
def test_output_downsampled_is_the_input(model_dir, tmp_path):
    """The figure quoted in the docs: PSNR of the output box-downsampled by 2^k vs the input."""
    src = write_tif(tmp_path / "in.tif", smooth(64, 64, seed=3), *UTM)
    figures = {}
    for k in (1, 2):
        out = tmp_path / f"out{k}.tif"
        r = run("upscale", src, "--levels", k, "--model", model_dir, "-o", out)
        assert r.exit_code == 0, r.output
        with rasterio.open(src) as a, rasterio.open(out) as b:
            figures[k] = psnr(
                box_down(b.read().transpose(1, 2, 0), 2**k),
                a.read().transpose(1, 2, 0).astype(np.float64),
            )
    print("PSNR of output ↓2^k vs input:", {k: round(v, 1) for k, v in figures.items()})
    assert min(figures.values()) >= 30, figures


def test_centre_latitude_and_resolution_come_from_the_raster(tmp_path):
    src = write_tif(tmp_path / "in.tif", smooth(40, 40), *UTM)
    geo = geoupscale.read_geotiff(src)
    # UTM 32N, easting 500 km (the central meridian 9°E), northing ≈ 5100 km − 200 m ≈ 46.04°N
    assert geo.lon == pytest.approx(9.0, abs=0.01) and geo.lat == pytest.approx(46.04, abs=0.02)
    assert geo.mpp == pytest.approx(10.0, rel=0.01)  # k0 = 0.9996 on the central meridian
    # 10 m at 46°N is Web Mercator zoom log2(156543 · cos 46° / 10) ≈ 13.4
    assert geo.zoom == pytest.approx(
        math.log2(156543.03 * math.cos(math.radians(46.04)) / 10), abs=0.02
    )
    assert geoupscale.output_zoom(geo, 2) == 15
    ll = geoupscale.read_geotiff(write_tif(tmp_path / "ll.tif", smooth(40, 40), *LONLAT))
    assert ll.lat == pytest.approx(48.89, abs=0.01)
    assert ll.mpp == pytest.approx(math.sqrt(0.0005 * 111_230 * 0.0005 * 73_300), rel=0.02)


def test_the_model_is_told_the_rasters_lat_and_resolution(model_dir, tmp_path, monkeypatch):
    import generator.geoupscale as gu

    seen = []

    def spy(image, zoom, model, lat=0.0, seed=0, mpp=None, **kw):
        seen.append((zoom, lat, mpp))
        return np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)

    monkeypatch.setattr(gu, "upscale_array", spy)
    src = write_tif(tmp_path / "in.tif", smooth(40, 40), *UTM)
    r = run("upscale", src, "--levels", 2, "--model", model_dir, "-o", tmp_path / "o.tif")
    assert r.exit_code == 0, r.output
    (z1, lat1, m1), (z2, lat2, m2) = seen
    assert (z1, z2) == (14, 15) and lat1 == lat2 == pytest.approx(46.04, abs=0.02)
    assert m1 == pytest.approx(5.0, rel=0.01) and m2 == pytest.approx(2.5, rel=0.01)
    assert "EPSG:32632" in r.output and "zoom 15" in r.output


def test_16_bit_multiband_with_bands_and_rescale(model_dir, tmp_path, monkeypatch):
    import generator.geoupscale as gu

    monkeypatch.setattr(
        gu, "upscale_array", lambda im, *a, **k: np.repeat(np.repeat(im, 2, axis=0), 2, axis=1)
    )
    data = smooth(32, 32, bands=4, scale=10.0)  # reflectances ≈ 800..1800 in 4 bands
    src = write_tif(tmp_path / "s2.tif", data, *UTM, dtype="uint16")
    out = tmp_path / "o.tif"
    args = ["--bands", "3,2,1", "--rescale", "0,2560", "--model", model_dir, "-o", out]
    r = run("upscale", src, *args)
    assert r.exit_code == 0, r.output
    with rasterio.open(out) as b:
        got = b.read()[:, ::2, ::2].astype(np.float64)
    want = np.clip(np.rint(data[[2, 1, 0]] / 10.0), 0, 255)
    assert np.abs(got - want).max() <= 1
    # without --rescale: the raster base's 2-98 % stretch (the output spans most of 0..255)
    r = run("upscale", src, "--bands", "4,3,2", "--model", model_dir, "-o", out)
    assert r.exit_code == 0, r.output
    with rasterio.open(out) as b:
        v = b.read()
    assert v.min() == 0 and v.max() == 255


def test_nodata_becomes_the_outputs_mask(model_dir, tmp_path, monkeypatch):
    import generator.geoupscale as gu

    monkeypatch.setattr(
        gu, "upscale_array", lambda im, *a, **k: np.repeat(np.repeat(im, 2, axis=0), 2, axis=1)
    )
    data = smooth(32, 32)
    data[:, :, :8] = 0
    src = write_tif(tmp_path / "in.tif", data, *UTM, nodata=0)
    out = tmp_path / "o.tif"
    assert run("upscale", src, "--model", model_dir, "-o", out).exit_code == 0
    with rasterio.open(out) as b:
        mask = b.dataset_mask()
    assert mask[:, :16].max() == 0 and mask[:, 16:].min() == 255


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--bands", "5,3,2"], "band 5 does not exist"),
        (["--rescale", "10,5"], "rescale"),
        (["-o", "{tmp}/out.png"], "must be .tif"),
    ],
)
def test_bad_geotiff_options_are_one_line_errors(model_dir, tmp_path, args, fragment):
    src = write_tif(tmp_path / "in.tif", smooth(32, 32, bands=4), *UTM)
    args = [a.format(tmp=tmp_path) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "o.tif")]
    r = run("upscale", src, *args, "--model", model_dir)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("orbis: error: "), r.stderr
    assert fragment in lines[0] and "Traceback" not in r.output
    assert not (tmp_path / "o.tif").exists() and not (tmp_path / "out.png").exists()


def test_plain_images_still_need_a_zoom_and_keep_working(model_dir, tmp_path):
    Image.fromarray(smooth(24, 24).transpose(1, 2, 0).astype(np.uint8)).save(tmp_path / "a.png")
    r = run("upscale", tmp_path / "a.png", "--model", model_dir, "-o", tmp_path / "o.png")
    assert r.exit_code == 2 and "--zoom is needed" in r.stderr
    # a TIFF without georeference is a plain image too (as before)
    Image.fromarray(smooth(24, 24).transpose(1, 2, 0).astype(np.uint8)).save(tmp_path / "b.tif")
    assert not geoupscale.is_georeferenced(tmp_path / "b.tif")
    args = ["--zoom", "6", "--levels", "2", "--model", model_dir]
    r = run("upscale", tmp_path / "b.tif", *args, "-o", tmp_path / "o.png")
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "o.png") as im:
        assert im.size == (96, 96)
        up = np.asarray(im.convert("RGB"))
    assert psnr(box_down(up, 4), smooth(24, 24).transpose(1, 2, 0).astype(np.uint8)) >= 30
    r = run("upscale", tmp_path / "b.tif", "--zoom", "1", "--levels", "2", "--model", model_dir,
            "-o", tmp_path / "o.png")  # fmt: skip
    assert r.exit_code == 2 and "below zoom 0" in r.stderr
