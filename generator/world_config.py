"""World configs: ``config/worlds/NAME.toml`` read strictly.

A world TOML is written by a human, so unlike diffusers' lenient model configs an unknown key, a
missing required key or a value out of range is an error that names the file, the key and the
problem (:class:`WorldConfigError`). Fields that decide tile bytes (seed, base, model, sampler)
form the world's *identity*; the rest (title, max zoom, attribution) only describe it.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import UnknownWorld, WorldConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: keys of ``[base]`` that only users' own imagery takes (``raster``, ``xyz``)
SOURCE_KEYS = (
    "path",
    "url",
    "max_zoom",
    "bands",
    "rescale",
    "fallback",
    "feather",
    "timeout",
    "retries",
    "headers",
    "bounds",
)
#: keys of an ``xyz`` base alone
XYZ_KEYS = ("url", "max_zoom", "timeout", "retries", "headers", "bounds")


class BaseConfig(_Strict):
    """The base level: real imagery (``bluemarble``), a seeded continent map (``continents``),
    or the user's own imagery: a GeoTIFF/COG (``raster``) or a tile server (``xyz``).

    The source keys default to None and are dumped with ``exclude_none``, so the built-in
    worlds' identity (and content hash) is what it was before they existed.
    """

    kind: Literal["bluemarble", "continents", "raster", "xyz"]
    zoom: int = Field(
        4, ge=1, le=6, description="zoom level of the base; levels above are box means"
    )
    path: str | None = Field(
        None, min_length=1, description="raster: a GeoTIFF/COG; relative to the config's parent"
    )
    url: str | None = Field(
        None, min_length=1, description="xyz: a tile URL template with {z}, {x} and {y}"
    )
    max_zoom: int | None = Field(
        None, strict=True, ge=0, le=30, description="xyz: the upstream's finest zoom"
    )
    bands: tuple[StrictInt, ...] | None = Field(
        None, min_length=1, max_length=3, description="1-based bands: one (grey) or R, G, B"
    )
    rescale: str | tuple[str, ...] | None = Field(
        None, description="'min,max' for all bands, or one per band (TiTiler's rescale)"
    )
    fallback: str | None = Field(
        None,
        min_length=1,
        description="world shown outside the footprint and under nodata (default earth; "
        "'none': black)",
    )
    feather: int | None = Field(
        None,
        strict=True,
        ge=0,
        le=256,
        description="width of the blend across the footprint edge, in native-zoom px (32)",
    )

    timeout: float | None = Field(
        None, gt=0, le=300, description="xyz: seconds for each of connect, read, write (10)"
    )
    retries: int | None = Field(
        None,
        strict=True,
        ge=0,
        le=10,
        description="xyz: further attempts after a connect error, timeout or 5xx (2)",
    )
    headers: dict[str, str] | None = Field(
        None, description="xyz: sent with every request (an API key, a User-Agent); not hashed"
    )
    bounds: tuple[float, float, float, float] | None = Field(
        None, description="xyz: the upstream's footprint [west, south, east, north] in degrees"
    )

    @property
    def is_source(self) -> bool:
        """Return True for the user's own imagery (``raster`` or ``xyz``)."""
        return self.kind in ("raster", "xyz")

    @property
    def fallback_world(self) -> str:
        """Return the fallback world's name ('none': no world, black)."""
        return self.fallback or "earth"

    @property
    def feather_px(self) -> int:
        """Return the feather width in native-zoom pixels (default 32)."""
        return 32 if self.feather is None else self.feather

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        # one rule for the config and the source: http(s), {z}/{x}/{y} or TMS {-y}, nothing else
        from .sources.xyz import validate_url

        return None if v is None else validate_url(v)

    @field_validator("bands")
    @classmethod
    def _check_bands(cls, v: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if v is not None:
            if len(v) not in (1, 3):
                raise ValueError(f"give 1 band (grey) or 3 (R, G, B), got {list(v)}")
            if any(b < 1 for b in v):
                raise ValueError(f"bands are numbered from 1, got {list(v)}")
        return v

    @field_validator("rescale")
    @classmethod
    def _check_rescale(cls, v: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        if v is not None:
            from .sources.raster import parse_rescale

            parse_rescale(v, 1 if isinstance(v, str) else max(len(v), 1))
        return v

    @field_validator("bounds")
    @classmethod
    def _check_bounds(
        cls, v: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if v is not None:
            w, s, e, n = v
            if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
                raise ValueError(
                    f"bounds must be [west, south, east, north] with west < east in ±180 and "
                    f"south < north in ±90, got {list(v)}"
                )
        return v

    @field_validator("fallback")
    @classmethod
    def _check_fallback(cls, v: str | None) -> str | None:
        if v is not None and not v.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"fallback {v!r} is not a world name (letters, digits, '-', '_')")
        return v

    @model_validator(mode="after")
    def _check_kind(self) -> BaseConfig:
        given = [k for k in SOURCE_KEYS if getattr(self, k) is not None]
        if not self.is_source:
            if given:
                raise ValueError(f"{given[0]} is only for kind 'raster' or 'xyz'")
            return self
        if "zoom" in self.model_fields_set:
            raise ValueError(f"kind {self.kind!r} takes no zoom: its native zoom is the data's")
        if self.kind == "raster":
            if self.path is None:
                raise ValueError("kind 'raster' needs path (a GeoTIFF or COG)")
            for k in XYZ_KEYS:
                if getattr(self, k) is not None:
                    raise ValueError(f"{k} is only for kind 'xyz'")
        else:
            if self.url is None or self.max_zoom is None:
                raise ValueError("kind 'xyz' needs url and max_zoom")
            for k in ("path", "bands", "rescale"):
                if getattr(self, k) is not None:
                    raise ValueError(f"{k} is only for kind 'raster'")
        return self


class _Sampling(_Strict):
    """Sampling settings of text-conditioned (diffusers) models; unset → the model's default.

    The built-in model takes none of them: a world whose only model is the built-in one and
    that sets a prompt is refused when it is loaded.
    """

    prompt: str | None = Field(None, max_length=1000, description="text prompt")
    negative_prompt: str | None = Field(
        None, max_length=1000, description="unconditional text of classifier-free guidance"
    )
    guidance_scale: float | None = Field(
        None, ge=0.0, le=30.0, description="classifier-free guidance scale (≤ 1: none)"
    )
    strength: float | None = Field(
        None, gt=0.0, le=1.0, description="img2img strength from the parent (1: from noise)"
    )
    noise_level: int | None = Field(
        None, strict=True, ge=0, le=1000, description="×4 upscaler: noise on the low-res image"
    )


class ModelRange(_Sampling):
    """A zoom range generated by another model (``[[model.ranges]]``).

    Each level is still conditioned on the level above it, whichever model made that one.
    """

    zooms: tuple[StrictInt, StrictInt] = Field(..., description="first and last zoom, inclusive")
    path: str = Field(..., min_length=1, description="'builtin', a model folder or a hub id")
    steps: int | None = Field(None, ge=1, le=1000, description="sampler steps")

    @model_validator(mode="after")
    def _check_zooms(self) -> ModelRange:
        a, b = self.zooms
        if a > b:
            raise ValueError(f"zooms must be [first, last] with first <= last, got [{a}, {b}]")
        return self


class ModelConfig(_Sampling):
    """Which model generates the levels below the base (and, per zoom range, which others)."""

    path: str = Field("builtin", description="'builtin', a model folder or a hub id")
    steps: int | None = Field(
        None, ge=1, le=1000, description="sampler steps; model default if unset"
    )
    ranges: tuple[ModelRange, ...] = Field(
        (), description="zoom ranges generated by other models (``[[model.ranges]]``)"
    )

    @model_validator(mode="after")
    def _check_ranges(self) -> ModelConfig:
        spans = sorted(r.zooms for r in self.ranges)
        for (a0, a1), (b0, b1) in zip(spans, spans[1:], strict=False):
            if b0 <= a1:
                raise ValueError(f"zoom ranges [{a0}, {a1}] and [{b0}, {b1}] overlap")
        return self

    def range_for(self, z: int) -> ModelRange | None:
        """Return the range that generates zoom z, or None (the default ``path``)."""
        return next((r for r in self.ranges if r.zooms[0] <= z <= r.zooms[1]), None)


class SamplerConfig(_Strict):
    """Window geometry of the cascade."""

    margin: int = Field(
        32, strict=True, ge=8, le=128, multiple_of=8, description="window overlap in px"
    )


class GeographyConfig(_Strict):
    """Which geography lies beneath the pixels (``[geography]``); unset → from the base.

    ``earth`` (real shores, rivers, relief, climate) goes with the Blue Marble base, ``planet``
    (procedural, from the continent map's own fields) with the continents base; ``none`` turns
    the layers off (the imagery then follows only its parent, as before the geography existed).
    """

    kind: Literal["earth", "planet", "none"] | None = Field(
        None, description="earth, planet or none; default: earth for bluemarble, planet otherwise"
    )
    follow: bool = Field(
        True, description="make the imagery follow the water layer (coasts, lakes, rivers)"
    )
    paint: bool = Field(
        True,
        description="paint the layout layer into the imagery (fields, roads, streets, roofs)",
    )
    shade: bool = Field(
        True,
        description="shade the imagery by the elevation layer's relief (sunlit and shaded slopes)",
    )


class OverrideConfig(_Strict):
    """One ``[[layers.override]]``: a GeoJSON or GeoTIFF that replaces or steers a layer for a
    region (see :mod:`generator.geography.overrides`); checked when the world is loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    path: str = Field(..., min_length=1, description="GeoJSON or GeoTIFF, relative to the TOML")
    layer: Literal["landcover", "water", "roads", "layout"] = Field(
        ..., description="the layer it overrides"
    )
    klass: str | None = Field(
        None, alias="class", min_length=1, description="one class for every feature"
    )
    property: str | None = Field(
        None, min_length=1, description="GeoJSON: the property holding each feature's class"
    )
    values: dict[str, str] | None = Field(
        None, description="GeoTIFF: raster value → land-cover class name (default: class ids)"
    )
    fill: str | None = Field(
        None, min_length=1, description="water 'land': the land cover of former water"
    )

    @model_validator(mode="after")
    def _check(self) -> OverrideConfig:
        if self.klass is not None and self.property is not None:
            raise ValueError("give class (one for every feature) or property, not both")
        if self.fill is not None and self.layer != "water":
            raise ValueError("fill is only for layer 'water'")
        return self

    def as_entry(self) -> dict[str, object]:
        """Return the table as :func:`generator.geography.overrides.load_overrides` takes it."""
        return {
            "path": self.path,
            "layer": self.layer,
            "class": self.klass,
            "property": self.property,
            "values": self.values,
            "fill": self.fill,
        }


class LayersConfig(_Strict):
    """``[layers]``: the user's own data over the world's layers (``[[layers.override]]``)."""

    override: tuple[OverrideConfig, ...] = Field((), description="overrides, later ones on top")


class ClassParamsConfig(_Strict):
    """``[layout.params.<land-cover class>]``: scales of the layout's generators (1: as is)."""

    field_scale: float = Field(1.0, ge=0.25, le=4.0, description="parcel widths and lengths")
    road_density: float = Field(1.0, ge=0.0, le=4.0, description="links and farm tracks")
    building_density: float = Field(
        1.0, ge=0.0, le=1.0, description="share of the generated buildings kept (thins them)"
    )


class LayoutConfig(_Strict):
    """``[layout]``: per-class parameters of the layout layer."""

    params: dict[str, ClassParamsConfig] = Field(
        default_factory=dict, description="per land-cover class (e.g. cropland, urban)"
    )

    @field_validator("params")
    @classmethod
    def _check_params(cls, v: dict[str, ClassParamsConfig]) -> dict[str, ClassParamsConfig]:
        from .geography.overrides import LANDCOVER_NAMES, landcover_id

        for name in v:
            if name not in LANDCOVER_NAMES:
                landcover_id(name)  # raises with the list of classes
        return v


class WorldConfig(_Strict):
    """One world."""

    title: str = ""
    seed: int = Field(..., strict=True, ge=0, lt=2**63)
    max_zoom: int = Field(22, strict=True, ge=0, le=30)
    tile_size: Literal[256] = 256
    attribution: str = "Imagery generated by orbis"
    center: tuple[float, float, int] = (0.0, 0.0, 3)
    base: BaseConfig
    model: ModelConfig = ModelConfig()
    sampler: SamplerConfig = SamplerConfig()
    geography: GeographyConfig = GeographyConfig()
    layers: LayersConfig = LayersConfig()
    layout: LayoutConfig = LayoutConfig()

    @property
    def geography_kind(self) -> str:
        """Return the geography this world has: the config's, else the one its base implies."""
        if self.geography.kind is not None:
            return self.geography.kind
        if self.base.is_source:
            # the real-world layers under the user's imagery when the fallback is the earth;
            # other fallbacks: set [geography] kind (the planet's layers belong to its base)
            return "earth" if self.base.fallback_world == "earth" else "none"
        return "earth" if self.base.kind == "bluemarble" else "planet"

    @model_validator(mode="after")
    def _check(self) -> WorldConfig:
        lat, lon, zoom = self.center
        if not (-85.06 <= lat <= 85.06 and -180 <= lon <= 180 and 0 <= zoom <= self.max_zoom):
            raise ValueError(
                f"center must be [lat in ±85.06, lon in ±180, zoom in 0..max_zoom], got "
                f"{list(self.center)}"
            )
        if not self.base.is_source and self.max_zoom < self.base.zoom:
            raise ValueError(f"max_zoom {self.max_zoom} is below base.zoom {self.base.zoom}")
        for r in self.model.ranges:
            if self.base.is_source:  # the native zoom is the data's: checked when loaded
                break
            if r.zooms[0] <= self.base.zoom or r.zooms[1] > self.max_zoom:
                raise ValueError(
                    f"model.ranges: zooms {list(r.zooms)} must lie in base.zoom+1.."
                    f"max_zoom ({self.base.zoom + 1}..{self.max_zoom})"
                )
        return self


def default_config_dir() -> Path:
    """Return the config folder: ``$ORBIS_CONFIG`` or ``config/`` of the source tree."""
    env = os.environ.get("ORBIS_CONFIG")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "config"


def world_names(config_dir: Path | None = None) -> list[str]:
    """Return the names of the worlds in a config folder, sorted."""
    d = (config_dir or default_config_dir()) / "worlds"
    return sorted(p.stem for p in d.glob("*.toml"))


def load_world_config(name: str, config_dir: Path | None = None) -> WorldConfig:
    """Read and validate ``worlds/NAME.toml``.

    Raises:
        UnknownWorld: no such file (the message lists the worlds that exist).
        WorldConfigError: the TOML is malformed or a key is wrong.
    """
    config_dir = config_dir or default_config_dir()
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise UnknownWorld(f"world name {name!r} is not valid (letters, digits, '-' and '_')")
    path = config_dir / "worlds" / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(world_names(config_dir)) or "none"
        raise UnknownWorld(f"unknown world {name!r} (known: {known})")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise WorldConfigError(str(path), "(file)", f"not valid TOML: {exc}") from None
    try:
        return WorldConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise WorldConfigError(str(path), key, msg) from None
