"""The built-in model: a resolution-conditioned ×2 super-resolution diffusion model.

A stock diffusers ``UNet2DModel`` sees the noisy *residual* (target minus the bilinear ×2 upsample
of the parent) concatenated with that upsampled parent, 6 channels in all, and predicts v. The
ground resolution is told through ``class_embed_type="timestep"``: a scalar label (an affine map of
log2 m/px, :func:`resolution_label`) is embedded sinusoidally and added to the timestep embedding,
as MetaEarth does, with no custom layer. Predicting the residual over the upsampled parent trains
fast and leaves colour to the parent.

On disk the model is a diffusers-style folder::

    orbis_model.json            identity (model id + version) and sampling constants
    unet/config.json            UNet2DModel config
    unet/diffusion_pytorch_model.safetensors
    scheduler/scheduler_config.json
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from diffusers import DDIMScheduler, UNet2DModel

from ..errors import ModelLoadError
from . import conditions

MODEL_FILE = "orbis_model.json"


def resolution_label(mpp: float | torch.Tensor) -> torch.Tensor:
    """Map ground resolution (m/px) to the UNet's class label: 40 · (log2 m/px + 4).

    0.0625 m/px → 0 and 156 km/px (z0) → ≈850, inside the 0–1000 range the sinusoidal timestep
    embedding is built for.
    """
    m = torch.as_tensor(mpp, dtype=torch.float32)
    return 40.0 * (torch.log2(m) + 4.0)


def class_labels(unet: UNet2DModel, mpp: float | torch.Tensor) -> torch.Tensor | None:
    """Return the UNet's class labels for ``mpp``, or None for a UNet without the embedding."""
    return resolution_label(mpp) if unet.config.class_embed_type is not None else None


def build_unet(
    block_out_channels: tuple[int, ...] = (16, 32, 64, 128),
    layers_per_block: int = 1,
    add_attention: bool = True,
    unshuffle: int = 1,
    resolution_embedding: bool = True,
    cond_channels: int = 0,
) -> UNet2DModel:
    """Return a fresh (random) UNet of the built-in layout.

    ``add_attention`` keeps the mid-block self-attention (global context at the coarsest level);
    tiny test models drop it, since at their shallow depth it would attend over every pixel.
    ``unshuffle`` > 1 makes the UNet work on a space-to-depth view of the image (``s``×``s``
    pixel blocks as channels): a lossless, free "latent" that divides the pixels a convolution
    visits by s² (the model study, docs/model-study.md, chose s = 2 for v2).
    ``resolution_embedding=False`` drops the m/px label (only for the study's ablation).
    ``cond_channels`` > 0 adds that many input planes after the parent (model v3's conditioning
    features, :mod:`generator.models.conditions`, on the UNet's grid).
    """
    n = len(block_out_channels)
    c = 3 * unshuffle * unshuffle
    return UNet2DModel(
        sample_size=64,
        in_channels=2 * c + cond_channels,
        out_channels=c,
        block_out_channels=block_out_channels,
        layers_per_block=layers_per_block,
        down_block_types=("DownBlock2D",) * n,
        up_block_types=("UpBlock2D",) * n,
        class_embed_type="timestep" if resolution_embedding else None,
        norm_num_groups=8,
        add_attention=add_attention,
    )


def build_scheduler() -> DDIMScheduler:
    """Return the training/sampling noise schedule (cosine, v-prediction, trailing spacing)."""
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="v_prediction",
        timestep_spacing="trailing",
        clip_sample=False,
        set_alpha_to_one=False,
    )


@dataclass
class ModelInfo:
    """Identity and sampling constants of a built-in model folder (``orbis_model.json``)."""

    model_id: str = "orbis-sr"
    version: str = "0"
    residual_scale: float = 0.1
    num_inference_steps: int = 4
    #: finest and coarsest output resolutions seen in training (m/px)
    trained_mpp: tuple[float, float] = (10.0, 15000.0)
    #: space-to-depth factor of the UNet's input and output (1: pixel space)
    pixel_unshuffle: int = 1
    #: conditioning feature set (``conditions.VERSION``; "" for a model told only the parent)
    conditions: str = ""
    notes: dict[str, str] = field(default_factory=dict)


class PointwiseConv2d(torch.nn.Conv2d):
    """A 1×1 convolution evaluated as a matrix product, so its floats ignore the thread count.

    oneDNN splits a 1×1 convolution's reduction differently with 1 and 2 intra-op threads (its
    last bits differ); MKL's matrix product of the same numbers does not, nor do the UNet's
    3×3 convolutions, group norms and SiLUs at 1 and 2 threads on the windows' shapes (tested
    in ``tests/test_determinism.py``). The parameters and the state dict are those of
    ``nn.Conv2d``: checkpoints load and save unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``conv2d(x)`` for a 1×1, stride-1, unpadded, ungrouped kernel."""
        y = torch.matmul(self.weight[:, :, 0, 0], x.flatten(2))
        if self.bias is not None:
            y = y + self.bias[:, None]
        return y.view(x.shape[0], self.out_channels, *x.shape[2:])


def make_thread_invariant(unet: torch.nn.Module) -> int:
    """Turn the plain 1×1 convolutions of ``unet`` into :class:`PointwiseConv2d`; return how many.

    Only the module's class changes (same parameters, same state dict keys), in place.
    """
    n = 0
    for mod in unet.modules():
        if (
            type(mod) is torch.nn.Conv2d
            and mod.kernel_size == (1, 1)
            and mod.stride == (1, 1)
            and mod.padding in ((0, 0), "valid")
            and mod.dilation == (1, 1)
            and mod.groups == 1
        ):
            mod.__class__ = PointwiseConv2d
            n += 1
    return n


class SuperResolutionModel:
    """UNet + scheduler + :class:`ModelInfo`, saved and loaded the diffusers way.

    Its evaluations give the same floats with 1 and 2 intra-op threads
    (:func:`make_thread_invariant`), so ``generator.parallel`` may give a lone window both
    cores of a 2-core share without changing a bit.
    """

    #: intra-op thread counts whose evaluations are bit-identical (generator.parallel)
    invariant_threads: tuple[int, ...] = (1, 2)

    def __init__(self, unet: UNet2DModel, scheduler: DDIMScheduler, info: ModelInfo) -> None:
        make_thread_invariant(unet)
        self.unet = unet.eval()
        self.scheduler = scheduler
        self.info = info
        self._digest: str | None = None

    @property
    def identity(self) -> str:
        """Return ``model_id@version+digest``: changes whenever the weights change."""
        if self._digest is None:
            h = hashlib.sha256()
            for k, v in sorted(self.unet.state_dict().items()):
                h.update(k.encode())
                h.update(v.detach().cpu().contiguous().numpy().tobytes())
            self._digest = h.hexdigest()[:12]
        return f"{self.info.model_id}@{self.info.version}+{self._digest}"

    @property
    def conditioned(self) -> bool:
        """Return True for a model that takes the geography's conditioning features (v3)."""
        return bool(self.info.conditions)

    @property
    def stride(self) -> int:
        """Return the multiple (px) a window's height and width must be."""
        return 2 ** (len(self.unet.config.block_out_channels) - 1) * self.info.pixel_unshuffle

    def beyond_training(self, mpp: float) -> bool:
        """Return True when a tile of this resolution is finer than anything trained on."""
        return mpp < self.info.trained_mpp[0] / 2

    def save_pretrained(self, path: str | Path) -> None:
        """Write the model folder (safetensors weights, JSON configs)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.unet.save_pretrained(path / "unet", safe_serialization=True)
        self.scheduler.save_pretrained(path / "scheduler")
        (path / MODEL_FILE).write_text(json.dumps(asdict(self.info), indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, path: str | Path) -> SuperResolutionModel:
        """Load a model folder written by :meth:`save_pretrained`.

        Raises:
            ModelLoadError: the folder, a component or a file is missing or unreadable.
        """
        path = Path(path)
        if not path.is_dir():
            raise ModelLoadError(f"model path {str(path)!r} is not a directory")
        for part in (MODEL_FILE, "unet/config.json", "scheduler/scheduler_config.json"):
            if not (path / part).is_file():
                raise ModelLoadError(f"model folder {str(path)!r} lacks {part}")
        if not (path / "unet" / "diffusion_pytorch_model.safetensors").is_file():
            raise ModelLoadError(
                f"model folder {str(path)!r} has no unet/diffusion_pytorch_model.safetensors "
                "(only safetensors weights are loaded)"
            )
        try:
            raw = json.loads((path / MODEL_FILE).read_text())
            raw["trained_mpp"] = tuple(raw.get("trained_mpp", (10.0, 15000.0)))
            info = ModelInfo(**raw)
            if info.conditions and info.conditions != conditions.VERSION:
                raise ValueError(
                    f"conditioning features {info.conditions!r} unknown "
                    f"(this orbis reads {conditions.VERSION!r})"
                )
            unet = UNet2DModel.from_pretrained(
                path / "unet", use_safetensors=True, low_cpu_mem_usage=False
            )
            scheduler = DDIMScheduler.from_pretrained(path / "scheduler")
            # safetensors tensors are views at arbitrary file offsets; unaligned weights make CPU
            # kernels take other code paths and change the last bits of the output. Own copies
            # make a loaded model compute exactly what the in-memory one did.
            with torch.no_grad():
                for t in list(unet.parameters()) + list(unet.buffers()):
                    t.data = t.data.clone()
        except (OSError, ValueError, TypeError, json.JSONDecodeError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"cannot load model from {str(path)!r}: {first}") from None
        return cls(unet, scheduler, info)


#: the shipped built-in model (``generator/weights/<name>``); v1 stays for comparison
DEFAULT_MODEL = "orbis-sr-v2"
PREVIOUS_MODEL = "orbis-sr-v1"
#: the geography-conditioned model (issue 14), shipped beside v2
CONDITIONED_MODEL = "orbis-sr-v3"


def weights_path(name: str) -> Path:
    """Return the folder of a shipped model's weights."""
    return Path(__file__).resolve().parent.parent / "weights" / name


def default_model_path() -> Path:
    """Return the folder of the shipped built-in model weights."""
    return weights_path(DEFAULT_MODEL)


def random_model(
    block_out_channels: tuple[int, ...] = (8, 16),
    seed: int = 0,
    steps: int = 2,
    conditioned: bool = False,
) -> SuperResolutionModel:
    """Return a tiny randomly initialised model (tests, benchmarks of the mechanism);
    ``conditioned`` makes it take v3's conditioning features."""
    torch.manual_seed(seed)
    k = len(conditions.FEATURES) if conditioned else 0
    unet = build_unet(block_out_channels, add_attention=False, cond_channels=k)
    return SuperResolutionModel(
        unet,
        build_scheduler(),
        ModelInfo(
            model_id="random",
            version=str(seed),
            num_inference_steps=steps,
            conditions=conditions.VERSION if conditioned else "",
        ),
    )


def log2_mpp(mpp: float) -> float:
    """Return log2 of a ground resolution (helper for docs and metrics)."""
    return math.log2(mpp)
