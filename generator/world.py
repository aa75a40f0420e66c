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
import threading
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from . import tiles
from .base import BaseLevel, BlueMarbleBase, ContinentsBase
from .errors import InvalidTile, ModelLoadError
from .models.sr_model import SuperResolutionModel, default_model_path
from .planner import Geometry
from .pyramid import Pyramid
from .store import Store
from .world_config import WorldConfig, load_world_config

if TYPE_CHECKING:
    from affine import Affine

#: Version of the cascade code (planner, blend, correction, sampler loop). Bump it whenever a
#: change alters tile bytes for the same config and model.
CASCADE_VERSION = "1"

_models: dict[str, SuperResolutionModel] = {}
_models_lock = threading.Lock()


def load_model(path: str, config_dir: Path | None = None) -> SuperResolutionModel:
    """Load (once per process) the built-in model or a model folder.

    Relative paths are taken from the config folder's parent (the repository root).
    """
    if path == "builtin":
        resolved = default_model_path()
    else:
        p = Path(path).expanduser()
        if not p.is_absolute() and config_dir is not None and (config_dir.parent / p).exists():
            p = config_dir.parent / p
        resolved = p
    key = str(resolved.resolve()) if resolved.exists() else str(resolved)
    with _models_lock:
        if key not in _models:
            if not resolved.exists():
                raise ModelLoadError(f"model path {path!r} does not exist ({resolved})")
            _models[key] = SuperResolutionModel.from_pretrained(resolved)
        return _models[key]


def make_base(config: WorldConfig) -> BaseLevel:
    """Return the base level a config names."""
    if config.base.kind == "bluemarble":
        return BlueMarbleBase(config.base.zoom, config.tile_size)
    return ContinentsBase(config.seed, config.base.zoom, config.tile_size)


class World:
    """One world: config + model + pyramid."""

    def __init__(
        self,
        name: str,
        config: WorldConfig,
        model: SuperResolutionModel,
        store: Store | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.model = model
        self.geometry = Geometry(config.tile_size, config.sampler.margin)
        self.pyramid = Pyramid(
            key_prefix=self.content_hash,
            base=make_base(config),
            model=model,
            seed=config.seed,
            geometry=self.geometry,
            store=store,
            steps=config.model.steps,
        )

    @classmethod
    def load(
        cls,
        name: str,
        config_dir: Path | str | None = None,
        store: Store | None = None,
        model: SuperResolutionModel | str | None = None,
    ) -> World:
        """Load a world by name from ``config_dir/worlds/NAME.toml`` (default: the repo's)."""
        cdir = Path(config_dir) if config_dir is not None else None
        config = load_world_config(name, cdir)
        if isinstance(model, SuperResolutionModel):
            m = model
        else:
            m = load_model(model or config.model.path, cdir)
        return cls(name, config, m, store)

    @property
    def identity(self) -> dict[str, object]:
        """Return everything that decides tile bytes."""
        c = self.config
        return {
            "seed": c.seed,
            "tile_size": c.tile_size,
            "base": c.base.model_dump(),
            "model": self.model.identity,
            "steps": c.model.steps or self.model.info.num_inference_steps,
            "sampler": c.sampler.model_dump(),
            "cascade": CASCADE_VERSION,
        }

    @cached_property
    def content_hash(self) -> str:
        """Return a short hash of :attr:`identity` (the cache-key prefix and ETag seed).

        Computed once: a world's config and model do not change after loading.
        """
        blob = json.dumps(self.identity, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

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
        progress: Callable[[int], object] | None = None,
    ) -> tuple[np.ndarray, Affine]:
        """Return the image of a lon/lat box at ``resolution`` ground m/px, and its transform.

        ``bbox`` is (W, S, E, N) in degrees (``W > E`` crosses the antimeridian). The image is
        (H, W, 3) uint8 in EPSG:3857 and the ``affine.Affine`` transform maps (col, row) to the
        pixel's top-left corner, as rasterio and GDAL expect. Tiles come from the finest zoom not
        coarser than asked and are box-filtered down (see :mod:`generator.region`).

        Raises:
            InvalidRegion: a bad box or resolution, or one finer than :attr:`max_zoom`.
        """
        from .region import region

        return region(self.tile_array, bbox, resolution, self.max_zoom, progress=progress)

    def resolution(self, z: int, y: int) -> float:
        """Return the ground resolution (m/px) of tile row y at zoom z."""
        return tiles.ground_resolution(z, y, self.config.tile_size)

    def beyond_training(self, z: int, y: int) -> bool:
        """Return True when the tile is finer than the model's trained range (extrapolated)."""
        return z > self.config.base.zoom and self.model.beyond_training(self.resolution(z, y))
