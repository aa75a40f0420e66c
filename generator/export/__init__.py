"""Exports of a world for GIS tools and simulators: MBTiles, PMTiles and GeoTIFF.

``export(world, out, bbox, zooms=…)`` writes the tiles of a box over a zoom range into an
MBTiles 1.3 or PMTiles v3 archive; ``export(world, out, bbox, resolution=…)`` writes a GeoTIFF
in EPSG:3857 of the box at a ground resolution (built by :mod:`generator.region`, as
``World.region`` is); with ``layer=`` (``elevation``, ``landcover``, ``water``) that GeoTIFF
holds a geography layer instead of the imagery: float32 metres, or uint8 class ids with the
legend as a colour map. The output type follows the suffix of ``out``.

Every export is estimated first (tiles, how many are cached, windows to generate), refused over
a size limit unless forced, shown with a progress bar, and written to a temporary file renamed
into place at the end, so an interrupted export never leaves a corrupt file behind. Tiles are
encoded by ``generator.formats`` (the server's encoder), so an archived tile has the very bytes
the server sends for the same address and format; bytes already cached under the server's key
(:mod:`generator.encoded`: served, or seeded with ``orbis seed --formats``) are reused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from .. import tiles
from ..errors import ExportError
from ..region import Bbox, check_bbox, plan_region
from .common import (
    MAX_ARCHIVE_TILES,
    MAX_GEOTIFF_TILES,
    archive_tiles,
    atomic_path,
    center_of,
    check_size,
    header_bounds,
    parse_zooms,
)

if TYPE_CHECKING:
    from ..world import World

__all__ = [
    "MAX_ARCHIVE_TILES",
    "MAX_GEOTIFF_TILES",
    "LAYER_EXPORTS",
    "Estimate",
    "ExportResult",
    "estimate_tiles",
    "export",
    "export_kind",
    "parse_zooms",
]

#: geography layers a GeoTIFF export can hold (``--layer``)
LAYER_EXPORTS = ("elevation", "landcover", "water")
KINDS = {".mbtiles": "mbtiles", ".pmtiles": "pmtiles", ".tif": "geotiff", ".tiff": "geotiff"}
#: the default tile encoding of archives: lossless and byte-identical to the server's ``.png``
#: tiles; ``jpg`` is several times smaller (see docs/export.md)
DEFAULT_FORMAT = "png"


@dataclass(frozen=True)
class Estimate:
    """The work an export needs, known before it starts."""

    tiles: int
    cached: int
    #: windows (model runs of ``steps`` evaluations each) to generate the uncached tiles,
    #: counting those tiles' own windows only (ancestors outside the export come on top)
    windows: int

    def describe(self) -> str:
        """Return a one-line summary for the command line."""
        return (
            f"{self.tiles:,} tiles ({self.cached:,} cached, "
            f"{self.tiles - self.cached:,} to generate: about {self.windows:,} windows)"
        )


@dataclass(frozen=True)
class ExportResult:
    """What was written."""

    path: Path
    kind: str
    tiles: int
    bytes: int
    seconds: float
    #: GeoTIFF only: source zoom and the image size
    zoom: int | None = None
    width: int | None = None
    height: int | None = None


def export_kind(out: Path) -> str:
    """Return ``mbtiles``, ``pmtiles`` or ``geotiff`` from the file's suffix.

    Raises:
        ExportError: any other suffix.
    """
    kind = KINDS.get(out.suffix.lower())
    if kind is None:
        known = ", ".join(KINDS)
        raise ExportError(f"cannot tell the export type of {str(out)!r}: use one of {known}")
    return kind


def estimate_tiles(world: World, ts: Iterable[tiles.Tile]) -> Estimate:
    """Count tiles, those already cached and the windows the rest need (below the base)."""
    count = cached = 0
    windows: set[object] = set()
    pyramid = world.pyramid
    for t in ts:
        count += 1
        if pyramid.is_cached(t):
            cached += 1
        elif t.z > pyramid.base_zoom:
            windows.update(
                w for w in world.geometry.windows_for_tile(t) if not pyramid.is_cached(w)
            )
    return Estimate(count, cached, len(windows))


def _encoded(
    world: World, ts: list[tiles.Tile], fmt: str, workers: int, bar: tqdm
) -> Iterator[tuple[tiles.Tile, bytes]]:
    """Yield (tile, encoded bytes) in the order of ``ts``; tiles are made and encoded on a few
    threads (encoding and cache reads overlap). Bytes the server or ``orbis seed --formats``
    cached are reused as they are; those encoded here are cached under the server's key."""
    from ..encoded import encoded_tile
    from ..formats import ImageFormat

    encoder = ImageFormat.parse(fmt)

    def one(t: tiles.Tile) -> bytes:
        return encoded_tile(world, t.z, t.x, t.y, encoder)[0]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        # bounded look-ahead: submit a window of tiles at a time so memory stays flat
        chunk = max(64, 8 * workers)
        for i in range(0, len(ts), chunk):
            part = ts[i : i + chunk]
            for t, data in zip(part, pool.map(one, part), strict=True):
                bar.update(1)
                yield t, data


def _metadata(world: World, bbox: Bbox, zooms: range, fmt: str) -> dict[str, str]:
    c = world.config
    w, s, e, n = header_bounds(bbox)
    lon, lat = center_of(bbox)
    return {
        "name": c.title or world.name,
        "format": fmt,
        "bounds": f"{w:.6f},{s:.6f},{e:.6f},{n:.6f}",
        "center": f"{lon:.6f},{lat:.6f},{zooms.start}",
        "minzoom": str(zooms.start),
        "maxzoom": str(zooms.stop - 1),
        "attribution": c.attribution,
        "description": (
            f"orbis world {world.name!r} (version {world.content_hash}): generated imagery, "
            f"zooms {zooms.start}-{zooms.stop - 1}"
        ),
        "type": "baselayer",
        "version": "1.0.0",
        "generator": f"orbis {package_version('orbis')}",
        "orbis_world": world.name,
        "orbis_version": world.content_hash,
    }


def export(
    world: World,
    out: Path | str,
    bbox: Iterable[float],
    *,
    zooms: range | None = None,
    resolution: float | None = None,
    fmt: str = DEFAULT_FORMAT,
    layer: str | None = None,
    force: bool = False,
    workers: int | None = None,
    progress: bool | None = None,
    echo: Callable[[str], object] | None = None,
) -> ExportResult:
    """Export ``bbox`` (lon/lat W,S,E,N) of ``world`` to ``out`` (.mbtiles, .pmtiles, .tif).

    Archives take ``zooms``; a GeoTIFF takes ``resolution`` (ground m/px) and, with ``layer``,
    holds that geography layer instead of the imagery. ``progress=None``
    shows a bar only on a terminal; ``echo`` receives the estimate line before work starts.

    Raises:
        ExportError: unknown suffix, the wrong one of zooms/resolution, a layer for an archive,
            or over the size limit without ``force``.
        UnknownLayer: a layer the world does not have.
        InvalidRegion: a bad box, zoom range or resolution.
    """
    out = Path(out)
    kind = export_kind(out)
    box = check_bbox(bbox)
    say = echo or (lambda _msg: None)
    workers = workers or min(4, os.cpu_count() or 1)
    start = time.perf_counter()
    if layer is not None and kind != "geotiff":
        raise ExportError(f"--layer is exported as a GeoTIFF (-o OUT.tif), not {kind.upper()}")

    if kind == "geotiff" and layer is not None:
        return _export_layer(world, out, box, resolution, zooms, layer, force, progress, say)
    if kind == "geotiff":
        if resolution is None or zooms is not None:
            raise ExportError("a GeoTIFF export takes --resolution (m/px), not --zooms")
        plan = plan_region(box, resolution, world.max_zoom)
        check_size(plan.tile_count, MAX_GEOTIFF_TILES, "source tiles", force)
        est = estimate_tiles(world, plan.tiles())
        say(
            f"export {world.name}: {plan.width}×{plan.height} px at {resolution:g} m/px "
            f"from zoom {plan.zoom}: {est.describe()} -> {out}"
        )
        from ..region import assemble
        from .geotiff import write_geotiff

        with tqdm(total=plan.tile_count, unit="tile", disable=_disable(progress)) as bar:
            image = assemble(plan, world.tile_array, progress=bar.update)
        tags = {
            "TIFFTAG_SOFTWARE": f"orbis {package_version('orbis')}",
            "ORBIS_WORLD": world.name,
            "ORBIS_VERSION": world.content_hash,
            "ORBIS_ZOOM": str(plan.zoom),
            "ORBIS_RESOLUTION": f"{resolution:g}",
        }
        with atomic_path(out) as tmp:
            write_geotiff(tmp, image, plan.transform, tags)
        return ExportResult(
            out,
            kind,
            plan.tile_count,
            out.stat().st_size,
            time.perf_counter() - start,
            plan.zoom,
            plan.width,
            plan.height,
        )

    if zooms is None or resolution is not None:
        raise ExportError(f"an {kind.upper()} export takes --zooms A-B, not --resolution")
    if zooms.stop - 1 > world.max_zoom:
        raise ExportError(f"zoom {zooms.stop - 1} is above this world's maximum {world.max_zoom}")
    ts = archive_tiles(box, zooms)
    check_size(len(ts), MAX_ARCHIVE_TILES, "tiles", force)
    est = estimate_tiles(world, ts)
    say(f"export {world.name} zooms {zooms.start}-{zooms.stop - 1}: {est.describe()} -> {out}")
    meta = _metadata(world, box, zooms, fmt)
    with (
        tqdm(total=len(ts), unit="tile", disable=_disable(progress)) as bar,
        atomic_path(out) as tmp,
    ):
        items = _encoded(world, ts, fmt, workers, bar)
        if kind == "mbtiles":
            from .mbtiles import write_mbtiles

            count = write_mbtiles(tmp, items, meta)
        else:
            from .pmtiles_archive import write_pmtiles

            lon, lat = center_of(box)
            count = write_pmtiles(
                tmp,
                items,
                fmt=fmt,
                bounds=header_bounds(box),
                center=(lon, lat, zooms.start),
                metadata={k: v for k, v in meta.items() if k != "format"},
            )
    return ExportResult(out, kind, count, out.stat().st_size, time.perf_counter() - start)


def _export_layer(
    world: World,
    out: Path,
    box: Bbox,
    resolution: float | None,
    zooms: range | None,
    layer: str,
    force: bool,
    progress: bool | None,
    say: Callable[[str], object],
) -> ExportResult:
    """Write one geography layer of ``box`` as a GeoTIFF (``export(..., layer=...)``)."""
    from ..errors import UnknownLayer
    from ..geography import LAYERS
    from ..geography import classes as C
    from .geotiff import write_layer_geotiff

    if resolution is None or zooms is not None:
        raise ExportError("a GeoTIFF export takes --resolution (m/px), not --zooms")
    if layer not in LAYER_EXPORTS:
        raise UnknownLayer(f"unknown layer {layer!r}; layers: {', '.join(LAYER_EXPORTS)}")
    if world.geography is None:
        raise UnknownLayer(f"world {world.name!r} has no geography layers ([geography] none)")
    start = time.perf_counter()
    plan = plan_region(box, resolution, world.max_zoom)
    check_size(plan.tile_count, MAX_GEOTIFF_TILES, "source tiles", force)
    say(
        f"export {world.name} {layer}: {plan.width}×{plan.height} px at {resolution:g} m/px "
        f"from zoom {plan.zoom} ({plan.tile_count:,} layer tiles) -> {out}"
    )
    with tqdm(total=plan.tile_count, unit="tile", disable=_disable(progress)) as bar:
        arrays, transform = world.region(box, resolution, layers=[layer], progress=bar.update)
    info = LAYERS[layer]
    tags = {
        "TIFFTAG_SOFTWARE": f"orbis {package_version('orbis')}",
        "ORBIS_WORLD": world.name,
        "ORBIS_VERSION": world.content_hash,
        "ORBIS_LAYER": layer,
        "ORBIS_ZOOM": str(plan.zoom),
        "ORBIS_RESOLUTION": f"{resolution:g}",
    }
    colormap = None
    if info.dtype == "uint8":
        klasses = C.LANDCOVER if layer == "landcover" else C.WATER_KINDS
        colormap = {k.id: k.color for k in klasses}
        tags.update({f"CLASS_{k.id}": k.name for k in klasses})
    with atomic_path(out) as tmp:
        write_layer_geotiff(
            tmp,
            arrays[layer],
            transform,
            tags,
            colormap=colormap,
            description=f"{layer}: {info.description}",
            units=info.units,
        )
    return ExportResult(
        out,
        "geotiff",
        plan.tile_count,
        out.stat().st_size,
        time.perf_counter() - start,
        plan.zoom,
        plan.width,
        plan.height,
    )


def _disable(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: None hides the bar when stderr is not a terminal."""
    return None if progress is None else not progress
