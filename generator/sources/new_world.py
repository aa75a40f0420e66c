"""``orbis world new NAME --base scene.tif``: write a world config over the user's raster.

The new world copies what decides the cascade's bytes from its fallback world (seed, model,
steps, sampler, geography), so that far from the footprint its generated tiles are the
fallback's, byte for byte (:mod:`generator.sources.compose`). The TOML is validated before it
is written, and written atomically.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ..errors import OrbisError, UnknownWorld
from ..world_config import WorldConfig, default_config_dir, load_world_config, world_names
from .raster import RasterSource


@dataclass(frozen=True)
class NewWorld:
    """What ``orbis world new`` wrote."""

    path: Path
    native_zoom: int
    max_zoom: int
    bounds: tuple[float, float, float, float]
    describe: str

    def summary(self) -> str:
        """Return the lines printed for the user: file, zoom range, footprint."""
        w, s, e, n = self.bounds
        return (
            f"wrote {self.path}\n"
            f"zooms 0-{self.native_zoom}: the data (native zoom {self.native_zoom}); "
            f"{self.native_zoom + 1}-{self.max_zoom}: generated below it\n"
            f"footprint (W,S,E,N): {w:.5f},{s:.5f},{e:.5f},{n:.5f}\n"
            f"{self.describe}"
        )


def _q(v: object) -> str:
    """A TOML value (JSON's string escapes are TOML basic strings' for these values)."""
    return json.dumps(v, ensure_ascii=False)


def _path_for_toml(base: Path, config_dir: Path) -> str:
    """Relative to the config folder's parent when the file lies under it, else absolute."""
    p = base.expanduser().resolve()
    root = config_dir.resolve().parent
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return str(p)


def new_world(
    name: str,
    base: Path,
    *,
    fallback: str = "earth",
    config_dir: Path | None = None,
    force: bool = False,
    bands: tuple[int, ...] | None = None,
    rescale: str | None = None,
    feather: int | None = None,
) -> NewWorld:
    """Write ``CONFIG/worlds/NAME.toml`` with a raster base; return what was written.

    Raises:
        ImageInputError: the raster cannot be used (missing, unreadable, no georeference…).
        OrbisError: a bad name, an existing world without ``force``, an unknown fallback.
    """
    cdir = Path(config_dir) if config_dir is not None else default_config_dir()
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise OrbisError(f"world name {name!r} is not valid (letters, digits, '-' and '_')")
    out = cdir / "worlds" / f"{name}.toml"
    if out.exists() and not force:
        raise OrbisError(f"{out} exists; pass --force to replace it")
    src = RasterSource(base, bands=bands, rescale=rescale)  # ImageInputError: one line
    fb: WorldConfig | None = None
    if fallback != "none":
        if fallback == name:
            raise OrbisError(f"world {name!r} cannot be its own fallback")
        try:
            fb = load_world_config(fallback, cdir)
        except UnknownWorld:
            known = ", ".join(world_names(cdir)) or "none"
            raise OrbisError(
                f"--fallback: unknown world {fallback!r} in {cdir} (known: {known}, or 'none')"
            ) from None
    nz = src.native_zoom
    max_zoom = max(fb.max_zoom if fb is not None else 22, min(nz + 4, 30))
    w, s, e, n = src.bounds()
    lines = [
        f"# {name}: {base.name} as the base (native zoom {nz}); written by `orbis world new`.",
        f"# Outside its footprint: {'black' if fb is None else f'the {fallback} world'}; seed,",
        "# model, sampler and geography are the fallback's, so far from the data the tiles are",
        "# the fallback's too.",
        f"title = {_q(f'{name} ({base.name} over {fallback})')}",
        f"seed = {fb.seed if fb is not None else 0}",
        f"max_zoom = {max_zoom}",
        f"attribution = {_q(f'Imagery: {base.name}; generated below zoom {nz} by orbis')}",
        f"center = [{(s + n) / 2:.6f}, {(w + e) / 2:.6f}, {max(nz - 2, 0)}]",
        "",
        "[base]",
        'kind = "raster"',
        f"path = {_q(_path_for_toml(base, cdir))}",
        f"fallback = {_q(fallback)}",
    ]
    if bands is not None:
        lines.append(f"bands = {list(bands)}")
    if rescale is not None:
        lines.append(f"rescale = {_q(rescale)}")
    if feather is not None:
        lines.append(f"feather = {feather}")
    if fb is not None:
        lines += ["", "[model]", f"path = {_q(fb.model.path)}"]
        if fb.model.steps is not None:
            lines.append(f"steps = {fb.model.steps}")
        lines += ["", "[sampler]", f"margin = {fb.sampler.margin}"]
        lines += [
            "",
            "[geography]",
            f"kind = {_q(fb.geography_kind)}",
            f"follow = {'true' if fb.geography.follow else 'false'}",
        ]
    text = "\n".join(lines) + "\n"
    try:  # what we write must load: a bug here is not the user's to find
        WorldConfig.model_validate(tomllib.loads(text))
    except (ValidationError, tomllib.TOMLDecodeError) as exc:
        raise OrbisError(
            f"internal error: the config written for {name!r} is invalid: {exc}"
        ) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    return NewWorld(out, nz, max_zoom, src.bounds(), src.describe())
