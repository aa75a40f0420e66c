"""Pretrained diffusers checkpoints as orbis models: SD-1/2, Text2Earth and the SD ×4 upscaler.

A checkpoint is a diffusers pipeline folder (``model_index.json`` and one sub-folder per
component) given as a local directory or as a hub id already in the local Hugging Face cache.
Only the stock component classes are accepted (``UNet2DConditionModel``, ``AutoencoderKL``,
``CLIPTextModel``, ``CLIPTokenizer`` and a scheduler config), only safetensors weights are read
(``use_safetensors=True``) and remote code is never run: a checkpoint is data, not a program.

The layout is read from the configs, not from the pipeline's class name alone:

- ``sd``: a 4-channel latent UNet with cross-attention (SD-1/2 text-to-image, and fine-tunes);
- ``text2earth``: the same SD-2 layout with ``class_embed_type == "timestep"`` on the UNet: the
  Google map level L (10..18, 0 = none) is a class label embedded like a timestep, and the text
  is prefixed ``"{L}_GOOGLE_LEVEL_"`` in the prompt Text2Earth was trained with;
- ``upscaler``: ``StableDiffusionUpscalePipeline`` (a 7-channel UNet: 4 latent + 3 low-res image
  channels, ``noise_level`` class labels, a ``low_res_scheduler``, VAE scaling 0.08333).

The pipelines' ``__call__`` are not used: they draw their noise from a ``torch.Generator``,
while orbis needs every window's noise to be a crop of the world's noise field
(:mod:`generator.samplers.latent` is the denoising loop).

Hub ids are resolved with ``local_files_only=True``: orbis never downloads weights by itself (a
tile server must not start a multi-GB download on a request path, and the weights must be the
ones whose digest is in the world's content hash). Fetch them once with the Hugging Face CLI.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import torch

from ..errors import ModelLoadError

Layout = Literal["sd", "text2earth", "upscaler"]

#: dtypes a model can run in (``--dtype``); float32 is the CPU default
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}

#: component classes orbis knows how to drive; anything else is refused (no remote code)
_COMPONENT_CLASSES: dict[str, tuple[str, ...]] = {
    "unet": ("UNet2DConditionModel",),
    "vae": ("AutoencoderKL",),
    "text_encoder": ("CLIPTextModel",),
    "tokenizer": ("CLIPTokenizer", "CLIPTokenizerFast"),
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")

#: Text2Earth's levels: Google map level L ↔ 2**(17 - L) m/px (its README), trained on 10..18
T2E_LEVELS = (10, 18)


def google_level(mpp: float) -> int:
    """Return Text2Earth's resolution label L for a ground resolution (m/px).

    Text2Earth defines ``resolution = 2**(17 - L)`` m/px for L in 10..18 (128 m .. 0.5 m). orbis
    tells the model the tile's real m/px (zoom is ground resolution, at the tile's latitude), so
    L is rounded from it and clamped to the trained range: a z12 tile at the equator (38 m/px)
    gets 12, the same tile row near 60° N (19 m/px) gets 13.
    """
    level = round(17.0 - math.log2(mpp))
    return int(min(max(level, T2E_LEVELS[0]), T2E_LEVELS[1]))


@dataclass
class DiffusersInfo:
    """Identity and sampling defaults of a loaded checkpoint (mirrors the built-in ModelInfo)."""

    model_id: str
    version: str
    layout: Layout
    num_inference_steps: int = 20
    #: finest and coarsest resolutions the model knows (m/px); unknown → the whole pyramid
    trained_mpp: tuple[float, float] = (0.0, 156543.034)
    notes: dict[str, str] = field(default_factory=dict)


class DiffusersModel:
    """A loaded diffusers checkpoint: UNet, VAE, text encoder, tokenizer and scheduler config.

    Attributes hold the stock diffusers/transformers modules; the sampling loop lives in
    :mod:`generator.samplers.latent`. Text embeddings are computed once per prompt.
    """

    kind = "diffusers"

    def __init__(
        self,
        *,
        unet: Any,
        vae: Any,
        text_encoder: Any,
        tokenizer: Any,
        scheduler_config: dict[str, Any],
        info: DiffusersInfo,
        low_res_scheduler_config: dict[str, Any] | None = None,
        max_noise_level: int = 350,
        digest: str = "",
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        self.unet = unet.eval()
        self.vae = vae.eval()
        self.text_encoder = text_encoder.eval()
        self.tokenizer = tokenizer
        self.scheduler_config = scheduler_config
        self.low_res_scheduler_config = low_res_scheduler_config
        self.max_noise_level = max_noise_level
        self.info = info
        self.layout: Layout = info.layout
        self.digest = digest
        self.device = torch.device(device)
        self.dtype = DTYPES[dtype]
        self.dtype_name = dtype
        self._embeds: dict[str, torch.Tensor] = {}

    # ---- what the pyramid needs to know ----------------------------------------------
    @property
    def identity(self) -> str:
        """Return ``id@layout+digest`` (and the dtype unless float32): changes with the weights.

        The dtype is part of it because float16 moves pixels by more than the ±1 that the
        contract allows between device kinds: two workers sharing a cache must not mix them.
        """
        suffix = "" if self.dtype_name == "float32" else f"/{self.dtype_name}"
        return f"{self.info.model_id}@{self.layout}+{self.digest}{suffix}"

    @property
    def vae_scale(self) -> int:
        """Return the VAE's down-sampling factor (8 for SD, 4 for the ×4 upscaler)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_channels(self) -> int:
        """Return the number of latent channels."""
        return int(self.vae.config.latent_channels)

    @property
    def unet_stride(self) -> int:
        """Return the factor latent sizes must be a multiple of (the UNet's down-sampling)."""
        return 2 ** (len(self.unet.config.block_out_channels) - 1)

    @property
    def takes_prompt(self) -> bool:
        """Return True: every supported layout is text-conditioned."""
        return True

    def beyond_training(self, mpp: float) -> bool:
        """Return True when a tile is finer than anything the model was trained on."""
        return mpp < self.info.trained_mpp[0] / 2

    # ---- text conditioning --------------------------------------------------------------
    @torch.inference_mode()
    def embed(self, text: str) -> torch.Tensor:
        """Return the text encoder's last hidden state for ``text`` (1, 77, D), cached.

        Padded to the tokenizer's max length, as SD was trained; the empty string is the
        unconditional embedding of classifier-free guidance.
        """
        if text not in self._embeds:
            ids = self.tokenizer(
                [text],
                padding="max_length",
                max_length=self.tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids.to(self.device)
            out = self.text_encoder(ids)[0]
            self._embeds[text] = out.to(self.dtype)
        return self._embeds[text]


# ---- loading --------------------------------------------------------------------------
def is_diffusers_checkpoint(path: Path) -> bool:
    """Return True when a folder holds a diffusers pipeline (``model_index.json``)."""
    return (path / "model_index.json").is_file()


def looks_like_hub_id(ref: str) -> bool:
    """Return True for ``owner/name`` references that are not an existing local path."""
    return bool(_HUB_ID.match(ref)) and not Path(ref).expanduser().exists()


def resolve_hub_id(repo_id: str) -> Path:
    """Return the local snapshot folder of a hub id, from the Hugging Face cache only.

    Raises:
        ModelLoadError: the id is not in the local cache (the message says how to fetch it).
    """
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - a dependency of diffusers
        raise ModelLoadError("hub ids need huggingface_hub installed") from None
    try:
        folder = snapshot_download(repo_id, local_files_only=True)
    except (LocalEntryNotFoundError, HFValidationError, OSError, ValueError):
        raise ModelLoadError(
            f"model {repo_id!r} is neither a local folder nor in the local Hugging Face cache "
            f"(orbis never downloads: run `hf download {repo_id}` first, or pass a folder)"
        ) from None
    return Path(folder)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"cannot read {what} {str(path)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{what} {str(path)!r} is not a JSON object")
    return data


def _check_component(root: Path, index: dict[str, Any], name: str) -> None:
    entry = index.get(name)
    if not (isinstance(entry, list) and len(entry) == 2 and entry[1]):
        raise ModelLoadError(
            f"checkpoint {str(root)!r} has no {name} component in model_index.json"
        )
    allowed = _COMPONENT_CLASSES.get(name)
    if allowed is not None and entry[1] not in allowed:
        raise ModelLoadError(
            f"checkpoint {str(root)!r}: {name} is a {entry[1]}, orbis supports "
            f"{' or '.join(allowed)} only (no custom or remote code)"
        )
    if not (root / name).is_dir():
        raise ModelLoadError(f"checkpoint {str(root)!r} lacks the {name}/ folder")
    if name in ("unet", "vae", "text_encoder"):
        if not (root / name / "config.json").is_file():
            raise ModelLoadError(f"checkpoint {str(root)!r} lacks {name}/config.json")
        weights = sorted((root / name).glob("*.safetensors"))
        if not weights:
            others = sorted(p.name for p in (root / name).glob("*.bin"))
            hint = f" (found {others[0]}: convert it to safetensors)" if others else ""
            raise ModelLoadError(
                f"checkpoint {str(root)!r} has no safetensors weights in {name}/{hint}; "
                "only safetensors are loaded"
            )


def detect_layout(root: Path, index: dict[str, Any], unet_config: dict[str, Any]) -> Layout:
    """Return the layout of a checkpoint from its model_index.json and UNet config.

    Raises:
        ModelLoadError: a layout orbis cannot drive (inpainting, depth, SDXL, ...).
    """
    in_ch = unet_config.get("in_channels")
    if index.get("_class_name") == "StableDiffusionUpscalePipeline" or "low_res_scheduler" in index:
        if in_ch != 7:
            raise ModelLoadError(
                f"checkpoint {str(root)!r}: an upscaler UNet must take 7 channels, not {in_ch}"
            )
        return "upscaler"
    if unet_config.get("addition_embed_type") is not None:
        raise ModelLoadError(
            f"checkpoint {str(root)!r}: UNet addition_embed_type "
            f"{unet_config['addition_embed_type']!r} (SDXL-style) is not supported"
        )
    if in_ch != 4:
        raise ModelLoadError(
            f"checkpoint {str(root)!r}: a text-to-image UNet with {in_ch} input channels is not "
            "supported (4 for SD/Text2Earth, 7 for the ×4 upscaler)"
        )
    if unet_config.get("class_embed_type") == "timestep":
        return "text2earth"
    if unet_config.get("class_embed_type") is not None or unet_config.get("num_class_embeds"):
        raise ModelLoadError(
            f"checkpoint {str(root)!r}: UNet class embedding "
            f"{unet_config.get('class_embed_type')!r} is not one orbis knows how to label"
        )
    return "sd"


@lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_digest(root: Path) -> str:
    """Return a digest of every config, tokenizer and weight file of a checkpoint.

    Full file contents are hashed (a few seconds for a 5 GB checkpoint, once per process): a
    fine-tune that keeps names and shapes must still change the world's content hash.
    """
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.suffix not in (".json", ".txt", ".safetensors", ".model"):
            continue
        if p.name.startswith("."):
            continue
        st = p.stat()
        h.update(str(p.relative_to(root)).encode())
        h.update(_file_digest(str(p.resolve()), st.st_size, st.st_mtime_ns).encode())
    return h.hexdigest()[:12]


def _own_copies(module: torch.nn.Module) -> None:
    # safetensors tensors are views at arbitrary file offsets; unaligned weights make CPU kernels
    # take other code paths and change the last bits (see the built-in model's loader).
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            t.data = t.data.clone()


def load_diffusers_model(
    ref: str | Path, *, device: str = "cpu", dtype: str = "float32", name: str | None = None
) -> DiffusersModel:
    """Load a diffusers checkpoint folder (or a cached hub id) as an orbis model.

    Args:
        ref: a folder with ``model_index.json``, or a hub id ``owner/name`` in the local cache.
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:N"``).
        dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"``.
        name: the model id recorded in the identity (default: the hub id or folder name).

    Raises:
        ModelLoadError: missing folder, model_index.json, component, config or safetensors
            weights; an unsupported layout or class; an unusable device or dtype.
    """
    if dtype not in DTYPES:
        raise ModelLoadError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} asked for, but torch sees no CUDA device")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ModelLoadError(f"device {device!r} is not 'cpu' or 'cuda'")
    ref_s = str(ref)
    root = Path(ref_s).expanduser()
    if not root.exists() and looks_like_hub_id(ref_s):
        root = resolve_hub_id(ref_s)
        model_id = ref_s
    else:
        if not root.is_dir():
            raise ModelLoadError(f"model path {ref_s!r} does not exist or is not a directory")
        model_id = name or root.resolve().name
    if not is_diffusers_checkpoint(root):
        raise ModelLoadError(
            f"model folder {str(root)!r} has no model_index.json (not a diffusers pipeline)"
        )
    index = _read_json(root / "model_index.json", "model index")
    for comp in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        _check_component(root, index, comp)
    unet_config = _read_json(root / "unet" / "config.json", "UNet config")
    layout = detect_layout(root, index, unet_config)
    sched_path = root / "scheduler" / "scheduler_config.json"
    if not sched_path.is_file():
        raise ModelLoadError(f"checkpoint {str(root)!r} lacks scheduler/scheduler_config.json")
    scheduler_config = _read_json(sched_path, "scheduler config")
    low_res = None
    if layout == "upscaler":
        _check_component(root, index, "low_res_scheduler")
        low_res = _read_json(
            root / "low_res_scheduler" / "scheduler_config.json", "low-res scheduler config"
        )
    torch_dtype = DTYPES[dtype]
    try:
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # one line per tile on the CLI, not progress bars
        vae_config = _read_json(root / "vae" / "config.json", "VAE config")
        # the VAE overflows in float16 (diffusers' force_upcast): it stays float32 then
        upcast = torch_dtype == torch.float16 and vae_config.get("force_upcast", True)
        common = {"use_safetensors": True, "low_cpu_mem_usage": False}
        unet = UNet2DConditionModel.from_pretrained(
            root / "unet", torch_dtype=torch_dtype, **common
        )
        vae = AutoencoderKL.from_pretrained(
            root / "vae", torch_dtype=torch.float32 if upcast else torch_dtype, **common
        )
        text_encoder = CLIPTextModel.from_pretrained(root / "text_encoder", use_safetensors=True)
        tokenizer = CLIPTokenizer.from_pretrained(root / "tokenizer")
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load checkpoint {str(root)!r}: {first}") from None
    for module in (unet, vae, text_encoder):
        _own_copies(module)
        module.to(device)
    info = DiffusersInfo(
        model_id=model_id,
        version=str(index.get("_diffusers_version", "")),
        layout=layout,
        trained_mpp=(0.5, 128.0) if layout == "text2earth" else (0.0, 156543.034),
    )
    return DiffusersModel(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler_config=scheduler_config,
        low_res_scheduler_config=low_res,
        max_noise_level=int(index.get("max_noise_level", 350)),
        info=info,
        digest=weights_digest(root),
        device=device,
        dtype=dtype,
    )
