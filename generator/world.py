"""``World``: the Python API of orbis. ``World.load("earth").tile(z, x, y)`` → PIL image.

A world is its config (``config/worlds/NAME.toml``), its model and a cache. Its
:attr:`~World.content_hash` covers everything that decides tile bytes (seed, base, model identity
with a digest of its weights, sampler settings, the code version of the cascade) and nothing that
does not (title, max zoom, runtime knobs): it prefixes every cache key, so two versions can never
mix in one cache.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from . import tiles
from .base import BaseLevel, BlueMarbleBase, ContinentsBase
from .conditioning import CONDITIONING_VERSION, GeographyConditioner
from .errors import (
    ImageInputError,
    InvalidTile,
    ModelLoadError,
    OrbisError,
    UnknownLayer,
    WorldConfigError,
)
from .follow import WaterFollower
from .geography import LAYERS, Geography, make_geography
from .models.sr_model import SuperResolutionModel, default_model_path
from .paint import PAINT_VERSION, Edits, LayoutPainter
from .parallel import EVAL_THREADS
from .planner import Geometry
from .pyramid import Pyramid
from .shade import SHADE_VERSION, ReliefShader
from .stages import Stage
from .store import Store
from .world_config import WorldConfig, default_config_dir, load_world_config

if TYPE_CHECKING:
    from affine import Affine

    from .geography.overrides import Overrides
    from .models.diffusers_backend import DiffusersModel
    from .sources import ImagerySource

    AnyModel = SuperResolutionModel | DiffusersModel

#: Version of the cascade code (planner, blend, correction, sampler loop). Bump it whenever a
#: change alters tile bytes for the same config and model. (How evaluations run, the intra-op
#: thread count and the batch, has its own key, ``evaluation``, in :attr:`World.identity`.)
CASCADE_VERSION = "1"

_models: dict[str, AnyModel] = {}
_models_lock = threading.Lock()


def load_model(
    path: str,
    config_dir: Path | None = None,
    *,
    device: str = "cpu",
    dtype: str = "float32",
) -> AnyModel:
    """Load (once per process) the built-in model, a model folder or a cached hub id.

    A folder with ``model_index.json`` is a diffusers checkpoint (SD, Text2Earth, SD ×4
    upscaler: :mod:`generator.models.diffusers_backend`); one with ``orbis_model.json`` is a
    built-in-layout model. ``owner/name`` that is not a local path is a hub id, read from the
    local Hugging Face cache only. Relative paths are taken from the config folder's parent (the
    repository root). ``device``/``dtype`` apply to diffusers checkpoints (the built-in model
    runs on the CPU in float32).
    """
    from .models.diffusers_backend import (
        is_diffusers_checkpoint,
        load_diffusers_model,
        looks_like_hub_id,
    )

    if path == "builtin":
        resolved = default_model_path()
    else:
        p = Path(path).expanduser()
        if not p.is_absolute() and config_dir is not None and (config_dir.parent / p).exists():
            p = config_dir.parent / p
        resolved = p
    key = str(resolved.resolve()) if resolved.exists() else str(resolved)
    with _models_lock:
        if not resolved.exists() and looks_like_hub_id(path):
            hub_key = f"hub:{path}|{device}|{dtype}"
            if hub_key not in _models:
                _models[hub_key] = load_diffusers_model(path, device=device, dtype=dtype)
            return _models[hub_key]
        if not resolved.exists():
            raise ModelLoadError(f"model path {path!r} does not exist ({resolved})")
        if is_diffusers_checkpoint(resolved):
            key = f"{key}|{device}|{dtype}"
            if key not in _models:
                _models[key] = load_diffusers_model(resolved, device=device, dtype=dtype)
            return _models[key]
        if key not in _models:
            _models[key] = SuperResolutionModel.from_pretrained(resolved)
        return _models[key]


def _layout_defaults(model: DiffusersModel) -> dict[str, float | int]:
    # Text2Earth's README samples with guidance 4.0; SD's pipelines default to 7.5, the ×4
    # upscaler's to 9.0. 20 DDIM steps: a tile server pays for every window.
    guidance = {"text2earth": 4.0, "sd": 7.5, "upscaler": 9.0}[model.layout]
    return {"steps": 20, "guidance_scale": guidance, "strength": 0.6, "noise_level": 20}


def split_level_prefix(prompt: str) -> tuple[int | None, str]:
    """Split Text2Earth's ``"{L}_GOOGLE_LEVEL_{text}"`` into (L, text); (None, prompt) if absent.

    Raises:
        ModelLoadError: a level outside 0..18 (0 = none, 10..18 trained).
    """
    m = re.match(r"^\s*(\d+)_GOOGLE_LEVEL_(.*)$", prompt, re.DOTALL)
    if m is None:
        return None, prompt
    level = int(m.group(1))
    if level > 18:
        raise ModelLoadError(f"Text2Earth level {level} in the prompt is not in 0..18")
    return level, m.group(2)


def _sampling(model: DiffusersModel, keys: list[object], prompt: str | None, steps: int | None):
    """Resolve a latent stage's settings: the range's key, then [model]'s, then the default."""
    from .samplers.latent import LatentSampling

    d = _layout_defaults(model)

    def pick(name: str, default: object) -> object:
        for k in keys:
            v = getattr(k, name, None)
            if v is not None:
                return v
        return default

    text = prompt if prompt is not None else str(pick("prompt", ""))
    level = None
    if model.layout == "text2earth":
        # Text2Earth's own prompt syntax fixes the label for every zoom: honour it, as its
        # pipeline does (the prefix is stripped from the text the encoder sees)
        level, text = split_level_prefix(text)
    sampling = LatentSampling(
        prompt=text,
        level=level,
        negative_prompt=str(pick("negative_prompt", "")),
        steps=int(steps or d["steps"]),
        guidance_scale=float(pick("guidance_scale", d["guidance_scale"])),  # type: ignore[arg-type]
        strength=float(pick("strength", d["strength"])),  # type: ignore[arg-type]
        noise_level=int(pick("noise_level", d["noise_level"])),  # type: ignore[arg-type]
    )
    if model.layout == "upscaler" and sampling.noise_level > model.max_noise_level:
        raise ModelLoadError(
            f"noise_level {sampling.noise_level} exceeds the upscaler's max_noise_level "
            f"{model.max_noise_level}"
        )
    return sampling


def build_stages(
    config: WorldConfig,
    model: AnyModel,
    config_dir: Path | None,
    *,
    prompt: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    override: bool = False,
) -> tuple[Stage, ...]:
    """Return the zoom ranges of a world made by other models than the default built-in path.

    ``[[model.ranges]]`` first, then, when the default model is a diffusers checkpoint, a stage
    for every other generated level. ``override`` (``--model``) drops the ranges: one model
    makes every level. ``prompt`` (``--prompt``) replaces the prompt of every text model.

    Raises:
        ModelLoadError: a range's model cannot be loaded.
        OrbisError: a prompt is given but no model of the world takes one.
    """
    stages: list[Stage] = []
    if not override:
        for r in config.model.ranges:
            m = load_model(r.path, config_dir, device=device, dtype=dtype)
            if isinstance(m, SuperResolutionModel):
                stages.append(Stage(r.zooms, m, r.steps or m.info.num_inference_steps))
            else:
                stages.append(
                    Stage(r.zooms, m, 0, _sampling(m, [r, config.model], prompt, r.steps))
                )
    if not isinstance(model, SuperResolutionModel):
        zooms = (config.base.zoom + 1, max(config.max_zoom, 30))
        sampling = _sampling(model, [config.model], prompt, config.model.steps)
        stages.append(Stage(zooms, model, 0, sampling))
    has_text_model = any(st.latent for st in stages)
    if prompt is not None and not has_text_model:
        raise OrbisError(
            "--prompt needs a text-conditioned model (a diffusers checkpoint); "
            "the built-in model takes none"
        )
    keys = [config.model, *config.model.ranges]
    if not override and not has_text_model and any(k.prompt is not None for k in keys):
        raise OrbisError(
            "the world sets a prompt, but none of its models is text-conditioned "
            "(the built-in model takes none)"
        )
    return tuple(stages)


def make_source(config: WorldConfig, config_dir: Path | None, file: str) -> ImagerySource:
    """Return the imagery source of a ``raster`` or ``xyz`` world.

    A relative ``path`` is taken from the config folder's parent (the repository root for the
    shipped config), as model paths are.

    Raises:
        WorldConfigError: the raster cannot be used (names the TOML, the key and the file).
    """
    b = config.base
    if b.kind == "raster":
        from .sources.raster import RasterSource

        assert b.path is not None
        p = Path(b.path).expanduser()
        if not p.is_absolute():
            p = (config_dir or default_config_dir()).parent / p
        try:
            return RasterSource(p, bands=b.bands, rescale=b.rescale, tile_size=config.tile_size)
        except ImageInputError as exc:
            msg = str(exc)
            key = "base.bands" if ": band" in msg else "base.rescale" if "rescale" in msg else ""
            raise WorldConfigError(file, key or "base.path", msg) from None
    from .sources.xyz import XyzSource

    opts: dict[str, object] = {
        k: getattr(b, k) for k in ("timeout", "retries", "headers", "bounds") if getattr(b, k)
    }
    if b.retries == 0:
        opts["retries"] = 0
    return XyzSource(b.url, max_zoom=b.max_zoom, tile_size=config.tile_size, **opts)  # type: ignore[arg-type]


def make_base(
    config: WorldConfig,
    *,
    source: ImagerySource | None = None,
    fallback: World | None = None,
) -> BaseLevel:
    """Return the base level a config names (``source`` and ``fallback`` for raster/xyz)."""
    if config.base.is_source:
        from .sources.compose import SourceBase, black

        assert source is not None
        if fallback is None:
            return SourceBase(source, black(config.tile_size), feather=config.base.feather_px)
        fb = fallback.pyramid
        return SourceBase(
            source,
            lambda z, x, y: fb.tile(tiles.Tile(x, y, z)),
            feather=config.base.feather_px,
            fallback_identity=fallback.content_hash,
        )
    if config.base.kind == "bluemarble":
        return BlueMarbleBase(config.base.zoom, config.tile_size)
    return ContinentsBase(config.seed, config.base.zoom, config.tile_size)


_fallbacks: dict[tuple[object, ...], tuple[object, World]] = {}
_fallbacks_lock = threading.RLock()


def _fallback_world(
    name: str,
    config_dir: Path | None,
    store: Store | None,
    model: object,
    runtime: dict[str, object],
    chain: tuple[str, ...],
) -> World:
    """Load a raster world's fallback once per (config, store, model, runtime) in a process.

    Several raster worlds over the same fallback then share its pyramid (hot cache, single
    flight), not only its store. A world with a private store (None) gets a private fallback.
    """
    key = (name, str(config_dir), id(store), id(model), tuple(sorted(runtime.items())))
    with _fallbacks_lock:
        if store is not None and key in _fallbacks:
            return _fallbacks[key][1]
        world = World.load(name, config_dir, store, model, _chain=chain, **runtime)  # type: ignore[arg-type]
        if store is not None:
            _fallbacks[key] = (store, world)  # the store is held: its id stays unique
        return world


def _load_overrides(config: WorldConfig, config_dir: Path | None, name: str) -> Overrides | None:
    """Read and check a world's overrides and layout parameters (None: it has none).

    Override paths are relative to the TOML's folder.

    Raises:
        WorldConfigError: an override that cannot be used (names the TOML, the entry, the
            override file, the feature and the problem), or overrides on a world without a
            geography.
    """
    entries = [o.as_entry() for o in config.layers.override]
    params = {k: v.model_dump() for k, v in config.layout.params.items()}
    if not entries and not params:
        return None
    folder = (config_dir or default_config_dir()) / "worlds"
    file = str(folder / f"{name}.toml")
    if config.geography_kind == "none":
        key = "layers.override" if entries else "layout.params"
        raise WorldConfigError(file, key, "needs a geography ([geography] kind is none)")
    from .geography.overrides import OverrideError, load_overrides

    try:
        return load_overrides(entries, folder, params)
    except OverrideError as exc:
        key = "layout.params" if exc.index is None else f"layers.override.{exc.index}"
        raise WorldConfigError(file, key, str(exc)) from None


class World:
    """One world: config + model + pyramid."""

    def __init__(
        self,
        name: str,
        config: WorldConfig,
        model: AnyModel,
        store: Store | None = None,
        *,
        stages: tuple[Stage, ...] = (),
        batch: int = 1,
        config_dir: Path | None = None,
        fallback: World | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.model = model
        self.stages = stages
        self._batch = batch if any(st.latent for st in stages) else 1  # built-in: always alone
        self.geometry = Geometry(config.tile_size, config.sampler.margin)
        #: the user's imagery (raster/xyz bases), and the world shown where it has no data
        self.source: ImagerySource | None = None
        self.fallback: World | None = None
        if config.base.is_source:
            file = str((config_dir or default_config_dir()) / "worlds" / f"{name}.toml")
            self.source = make_source(config, config_dir, file)
            if config.max_zoom < self.source.native_zoom:
                raise WorldConfigError(
                    file,
                    "max_zoom",
                    f"{config.max_zoom} is below the data's native zoom {self.source.native_zoom}",
                )
            if fallback is None and config.base.fallback_world != "none":
                fallback = World.load(config.base.fallback_world, config_dir, store)
            self.fallback = fallback
        #: the world's own data over its layers (``[[layers.override]]``, ``[layout.params]``)
        self.overrides = _load_overrides(config, config_dir, name)
        # before the content hash: the planet's layers share it
        self._base = make_base(config, source=self.source, fallback=self.fallback)
        self.pyramid = Pyramid(
            key_prefix=self.content_hash,
            base=self._base,
            model=model,
            seed=config.seed,
            geometry=self.geometry,
            store=store,
            steps=config.model.steps,
            stages=stages,
            batch=batch,
            follower=self._mask_follower(self._follower()),
            conditioner=self._conditioner(),
        )
        if self.fallback is not None and self._same_cascade(self.fallback):
            self.pyramid.delegate = self._delegate

    def _conditioned(self) -> bool:
        """Return True when some model of the world takes the geography's features (v3)."""
        models = [self.model, *(st.model for st in self.stages)]
        return self.geography is not None and any(getattr(m, "conditioned", False) for m in models)

    def _conditioner(self) -> GeographyConditioner | None:
        """Return what tells a conditioned model about each window's ground, or None."""
        return GeographyConditioner(self.geography) if self._conditioned() else None  # type: ignore[arg-type]

    def _mask_follower(self, follower: object) -> object:
        """A raster world edits its imagery toward the layers outside its data only (see
        :class:`~generator.sources.compose.FootprintFollower`)."""
        if follower is None or not self.config.base.is_source:
            return follower
        from .sources.compose import FootprintFollower

        return FootprintFollower(follower, self._base)  # type: ignore[arg-type]

    def _same_cascade(self, other: World) -> bool:
        """Return True when ``other`` generates the same windows from the same parents (every
        identity key but the base's): then, away from the data, its tiles are this world's."""
        mine = {k: v for k, v in self.identity.items() if k != "base"}
        return mine == {k: v for k, v in other.identity.items() if k != "base"}

    def _delegate(self, t: tiles.Tile) -> np.ndarray | None:
        """The fallback's tile when t's cone at the native zoom holds no data, else None.

        A tile reads windows over itself and the tile to its left/top, which read their parents
        with margins; up the cone that reach sums to less than 3 tiles plus 2 follow margins
        of the native zoom (a geometric series: each level's reach halves). Five native tiles
        around t's ancestor are checked against the footprint: a conservative test.
        """
        base = self._base
        nz = base.zoom
        k = t.z - nz
        reach = 5 * self.config.tile_size
        if base.touches(nz, t.x >> k, t.y >> k, reach):  # type: ignore[attr-defined]
            return None
        assert self.fallback is not None
        return self.fallback.pyramid.tile(t)

    def _follower(self) -> WaterFollower | Edits | None:
        """Return the edits of each level's imagery: toward the water layer, the layout, then
        the relief's shading."""
        g = self.config.geography
        if self.geography is None or not (g.follow or g.paint or g.shade):
            return None
        edits: list[object] = []
        if g.follow:
            edits.append(WaterFollower(self.geography, self.config.tile_size))
        if g.paint:
            edits.append(LayoutPainter(self.geography, self.config.tile_size))
        if g.shade:
            edits.append(ReliefShader(self.geography, self.config.tile_size, self.config.seed))
        return edits[0] if len(edits) == 1 else Edits(*edits)  # type: ignore[return-value]

    @classmethod
    def load(
        cls,
        name: str,
        config_dir: Path | str | None = None,
        store: Store | None = None,
        model: AnyModel | str | None = None,
        *,
        prompt: str | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        batch: int | None = None,
        _chain: tuple[str, ...] = (),
    ) -> World:
        """Load a world by name from ``config_dir/worlds/NAME.toml`` (default: the repo's).

        ``model`` (a path, hub id or loaded model) replaces every model of the world, zoom
        ranges included; ``prompt`` replaces every text model's prompt. ``device``, ``dtype``
        and ``batch`` (windows sampled together; default 1 on CPU, 4 on CUDA) are runtime knobs
        of diffusers models; the dtype is part of the content hash, the others are not.
        """
        cdir = Path(config_dir) if config_dir is not None else None
        config = load_world_config(name, cdir)
        if model is not None and not isinstance(model, str):
            m = model
        else:
            m = load_model(model or config.model.path, cdir, device=device, dtype=dtype)
        stages = build_stages(
            config, m, cdir, prompt=prompt, device=device, dtype=dtype, override=model is not None
        )
        if batch is None:
            batch = 1 if device == "cpu" else 4
        fallback = None
        if config.base.is_source and config.base.fallback_world != "none":
            fb = config.base.fallback_world
            if fb in _chain or fb == name:
                loop = " → ".join([*_chain, name, fb])
                raise WorldConfigError(
                    str((cdir or default_config_dir()) / "worlds" / f"{name}.toml"),
                    "base.fallback",
                    f"fallback worlds form a loop ({loop})",
                )
            fallback = _fallback_world(
                fb,
                cdir,
                store,
                model,
                {"prompt": prompt, "device": device, "dtype": dtype, "batch": batch},
                (*_chain, name),
            )
        return cls(
            name,
            config,
            m,
            store,
            stages=stages,
            batch=batch,
            config_dir=cdir,
            fallback=fallback,
        )

    @cached_property
    def geography(self) -> Geography | None:
        """Return the world's geography (water, rivers, elevation, land cover), or None.

        Built on first use; its data indices are built once per machine (see
        :mod:`generator.geography`).
        """
        kind = self.config.geography_kind
        if kind == "none":
            return None
        base = self._base if isinstance(self._base, ContinentsBase) else None
        geo = make_geography(kind, self.config.seed, base_zoom=self.config.base.zoom, base=base)
        if self.overrides is not None:  # the same source, seen through the overrides
            geo = Geography(geo.kind, geo.source, overrides=self.overrides)
        return geo

    def layer(self, name: str, z: int, x: int, y: int) -> np.ndarray:
        """Return geography layer ``name`` of tile (z, x, y) as a (256, 256) array.

        ``water`` and ``landcover`` are uint8 class ids, ``elevation`` and ``distance`` float32
        metres, ``rivers`` float32 coverage (see :data:`generator.geography.LAYERS`).

        Raises:
            InvalidTile: a bad address.
            UnknownLayer: no such layer, or the world has no geography.
        """
        t = self.address(z, x, y)
        if self.geography is None:
            raise UnknownLayer(f"world {self.name!r} has no geography layers ([geography] none)")
        return self.geography.tile(name, t.z, t.x, t.y, self.config.tile_size)

    @property
    def identity(self) -> dict[str, object]:
        """Return everything that decides tile bytes."""
        c = self.config
        return (
            {
                "seed": c.seed,
                "tile_size": c.tile_size,
                # raster/xyz: the source's identity (file digest), the fallback world's
                # content hash and the feather; built-in bases: the config keys they set
                "base": (
                    self._base.identity()  # type: ignore[attr-defined]
                    if c.base.is_source
                    else c.base.model_dump(exclude_none=True)
                ),
                "model": self.model.identity,
                "steps": c.model.steps or self.model.info.num_inference_steps,
                "sampler": c.sampler.model_dump(),
                "cascade": CASCADE_VERSION,
                # the floats depend on the intra-op thread count and on the batch a window is
                # sampled in (docs/design.md "Determinism"): the counts a model's floats ignore
                # (the built-in model: 1 and 2, its 1×1 convolutions as matrix products) and the
                # batch are hashed
                "evaluation": {
                    "intra_op_threads": list(
                        getattr(self.model, "invariant_threads", (EVAL_THREADS,))
                    ),
                    "pointwise": "matmul",
                    "batch": self._batch,
                },
            }
            | self._stages_identity()
            | self._geography_identity()
        )

    def _geography_identity(self) -> dict[str, object]:
        # the layers decide the imagery (it follows the water layer) and the layer tiles' bytes
        if self.geography is None:
            return {}
        out: dict[str, object] = {
            "geography": self.geography.identity,
            "follow": self.config.geography.follow,
        }
        if self.config.geography.paint:  # a world that does not paint keeps its hash
            out["paint"] = PAINT_VERSION
        if self.config.geography.shade:  # a world that does not shade keeps its hash
            out["shade"] = SHADE_VERSION
        if self._conditioned():  # a world of an unconditioned model keeps its hash
            out["conditioning"] = CONDITIONING_VERSION
        return out

    def _stages_identity(self) -> dict[str, object]:
        # Only worlds with other models than the built-in path get the key, so the content hash
        # of a built-in world (and every cache key and ETag built on it) is what it was.
        if not self.stages:
            return {}
        return {
            "stages": [
                {
                    "zooms": list(st.zooms),
                    "model": st.model.identity,
                    "steps": st.steps,
                    "sampling": asdict(st.sampling) if st.sampling is not None else None,
                }
                for st in self.stages
            ]
        }

    def model_for(self, z: int) -> AnyModel:
        """Return the model that makes zoom z."""
        st = self.pyramid.stage_for(z)
        return st.model if st is not None else self.model

    @cached_property
    def content_hash(self) -> str:
        """Return a short hash of :attr:`identity` (the cache-key prefix and ETag seed).

        Computed once: a world's config and model do not change after loading.
        """
        blob = json.dumps(self.identity, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def footprint(self) -> tuple[float, float, float, float] | None:
        """Return the user's imagery's footprint (west, south, east, north) in degrees, or
        None for a world of a built-in base."""
        if not self.config.base.is_source:
            return None
        return tuple(float(v) for v in self._base.source.bounds())  # type: ignore[attr-defined, return-value]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Return where this world has tiles (TileJSON ``bounds``): everywhere, except for a
        source world without a fallback, whose tiles outside its footprint are empty."""
        world = (-180.0, -85.0511287798066, 180.0, 85.0511287798066)
        fp = self.footprint
        if fp is None or self.config.base.fallback_world != "none":
            return world
        w, s, e, n = fp
        return (max(w, -180.0), max(s, world[1]), min(e, 180.0), min(n, world[3]))

    @property
    def max_zoom(self) -> int:
        """Return the deepest zoom this world serves."""
        return self.config.max_zoom

    def address(self, z: int, x: int, y: int, scale: int = 1) -> tiles.Tile:
        """Validate an address against this world (x wraps); ``scale=2`` needs zoom z+1 too.

        Raises:
            InvalidTile: a bad address, or ``@2x`` at the maximum zoom.
        """
        t = tiles.validate(z, x, y, self.config.max_zoom)
        if scale == 2 and z + 1 > self.config.max_zoom:
            raise InvalidTile(
                f"@2x at zoom {z} needs zoom {z + 1}, above the maximum {self.config.max_zoom}"
            )
        return t

    def render(
        self, z: int, x: int, y: int, scale: int = 1, cancel: threading.Event | None = None
    ) -> np.ndarray:
        """Return a tile's pixels; ``scale=2`` is the mosaic of its children (twice the detail).

        Setting ``cancel`` from another thread stops the generation between windows
        (:class:`~generator.errors.Cancelled`); the server does so when its client has gone.
        """
        t = self.address(z, x, y, scale)
        if scale == 1:
            return self.pyramid.tile(t, cancel)
        return self.pyramid.children_mosaic(t, cancel)

    def tile_array(self, z: int, x: int, y: int) -> np.ndarray:
        """Return a tile as uint8 (256, 256, 3)."""
        return self.pyramid.tile(self.address(z, x, y))

    def tile(self, z: int, x: int, y: int) -> Image.Image:
        """Return a tile as an RGB PIL image."""
        return Image.fromarray(self.tile_array(z, x, y), "RGB")

    def region(
        self,
        bbox: Iterable[float],
        resolution: float,
        *,
        layers: Iterable[str] | None = None,
        progress: Callable[[int], object] | None = None,
    ) -> tuple[np.ndarray, Affine] | tuple[dict[str, np.ndarray], Affine]:
        """Return the image of a lon/lat box at ``resolution`` ground m/px, and its transform.

        ``bbox`` is (W, S, E, N) in degrees (``W > E`` crosses the antimeridian). The image is
        (H, W, 3) uint8 in EPSG:3857 and the ``affine.Affine`` transform maps (col, row) to the
        pixel's top-left corner, as rasterio and GDAL expect. Tiles come from the finest zoom not
        coarser than asked and are box-filtered down (see :mod:`generator.region`).

        With ``layers`` (names of :data:`~generator.geography.LAYERS`, and ``imagery`` for the
        pixels) it returns ``({name: array}, transform)``, every array on the same grid: float
        layers area-averaged, class layers (``water``, ``landcover``) by nearest pixel.

        Raises:
            InvalidRegion: a bad box or resolution, or one finer than :attr:`max_zoom`.
            UnknownLayer: a layer that the world does not have.
        """
        from .region import region

        if layers is None:
            return region(self.tile_array, bbox, resolution, self.max_zoom, progress=progress)
        names = list(layers)
        for name in names:
            if name != "imagery" and (self.geography is None or name not in LAYERS):
                have = ", ".join(["imagery", *(LAYERS if self.geography is not None else ())])
                raise UnknownLayer(f"unknown layer {name!r}; layers: {have}")
        out: dict[str, np.ndarray] = {}
        transform = None
        for name in names:
            if name == "imagery":
                out[name], transform = region(
                    self.tile_array, bbox, resolution, self.max_zoom, progress=progress
                )
                continue
            nearest = LAYERS[name].dtype == "uint8"
            out[name], transform = region(
                lambda z, x, y, name=name: self.layer(name, z, x, y),
                bbox,
                resolution,
                self.max_zoom,
                progress=progress,
                resampling="nearest" if nearest else "average",
            )
        assert transform is not None
        return out, transform

    def resolution(self, z: int, y: int) -> float:
        """Return the ground resolution (m/px) of tile row y at zoom z."""
        return tiles.ground_resolution(z, y, self.config.tile_size)

    def beyond_training(self, z: int, y: int) -> bool:
        """Return True when the tile is finer than the model's trained range (extrapolated)."""
        mpp = self.resolution(z, y)
        return z > self.pyramid.base_zoom and self.model_for(z).beyond_training(mpp)
