"""Tiles/s of a Text2Earth-sized model on a CUDA GPU (random weights, the real configs).

    .venv/bin/python bench/gpu_text2earth.py [--device cuda] [--dtype float16] [--batch 4]
    .venv/bin/python bench/gpu_text2earth.py --count     # parameter count only (no GPU needed)

Text2Earth is Stable Diffusion 2 with a timestep-type class embedding on the UNet (the
resolution label). Its "1.3 B parameters" are the whole model: the SD-2 UNet (865 M, plus the
class embedding), the OpenCLIP ViT-H text tower (354 M) and the SD VAE (84 M). The configs below
are SD-2's (``stabilityai/stable-diffusion-2-1-base`` layout) with ``class_embed_type =
"timestep"``; ``--count`` prints the parameter counts.

The measurement: the ``planet`` world with this model for every level below its base (z4), with
orbis's defaults for Text2Earth (20 DDIM steps, img2img strength 0.6 so 12 run, guidance 4.0 so
2 UNet evaluations each), windows of one level batched ``--batch`` at a time. It renders the
2×2 z5 tiles under one z4 tile cold (warm-up: kernels are chosen), then an 8×8 block of z5
tiles beside it, parents cached: tiles/s, windows/s and UNet evaluations/s of that block.
Writes bench/results/gpu_text2earth.json.
Without a CUDA device it says so and exits 0 (nothing measured).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from common import ROOT, save

UNET = {
    "sample_size": 32,  # 256 px / 8; the UNet itself takes any multiple of 8
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280, 1280),
    "down_block_types": (
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ),
    "up_block_types": (
        "UpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
    ),
    "cross_attention_dim": 1024,
    "attention_head_dim": (5, 10, 20, 20),
    "use_linear_projection": True,
    "class_embed_type": "timestep",  # Text2Earth's resolution label
}
VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 4,
    "sample_size": 256,
    "scaling_factor": 0.18215,
}
TEXT = {  # OpenCLIP ViT-H/14 text tower as SD-2 ships it (23 of its 24 layers)
    "vocab_size": 49408,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 23,
    "num_attention_heads": 16,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 512,
}
SCHEDULER = {
    "_class_name": "DDIMScheduler",
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "v_prediction",
    "timestep_spacing": "leading",
}


def build(device: str):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device(device):
        unet = UNet2DConditionModel(**UNET)
        vae = AutoencoderKL(**VAE)
        text = CLIPTextModel(CLIPTextConfig(**TEXT))
    return unet, vae, text


def count() -> dict[str, int]:
    unet, vae, text = build("meta")
    n = {k: sum(p.numel() for p in m.parameters()) for k, m in [("unet", unet), ("vae", vae)]}
    n["text_encoder"] = sum(p.numel() for p in text.parameters())
    n["total"] = sum(n.values())
    return n


def measure(device: str, dtype_name: str, batch: int) -> dict:
    import tempfile

    from diffusers.utils import logging as diffusers_logging
    from transformers import CLIPTokenizer

    from generator.models.diffusers_backend import DTYPES, DiffusersInfo, DiffusersModel
    from generator.models.diffusers_tiny import tiny_tokenizer_files
    from generator.world import World, build_stages
    from generator.world_config import load_world_config

    dtype = DTYPES[dtype_name]
    torch.manual_seed(0)
    unet, vae, text = build(device)
    diffusers_logging.set_verbosity_error()  # the note on casting with .to(): intended here
    unet.to(dtype)
    vae.to(torch.float32 if dtype == torch.float16 else dtype)
    with tempfile.TemporaryDirectory() as tmp:
        tiny_tokenizer_files(Path(tmp))  # ids of a tiny vocabulary: the text tower's cost is once
        tokenizer = CLIPTokenizer.from_pretrained(tmp, model_max_length=77)
    model = DiffusersModel(
        unet=unet,
        vae=vae,
        text_encoder=text,
        tokenizer=tokenizer,
        scheduler_config=SCHEDULER,
        info=DiffusersInfo("text2earth-random", "0", "text2earth", trained_mpp=(0.5, 128.0)),
        digest="random",
        device=device,
        dtype=dtype_name,
    )
    config = load_world_config("planet", ROOT / "config")
    stages = build_stages(config, model, None, prompt="farmland and a river")
    w = World("planet", config, model, stages=stages, batch=batch)
    t0 = time.perf_counter()
    for x, y in [(16, 10), (17, 10), (16, 11), (17, 11)]:
        w.tile_array(5, x, y)
    torch.cuda.synchronize()
    warm = time.perf_counter() - t0
    before = w.pyramid.stats.snapshot()
    t0 = time.perf_counter()
    for y in range(12, 20):
        for x in range(18, 26):
            w.tile_array(5, x, y)
    torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    after = w.pyramid.stats.snapshot()
    wins = after["windows_generated"] - before["windows_generated"]
    evals = after["model_evals"] - before["model_evals"]
    return {
        "device": torch.cuda.get_device_name(0),
        "dtype": dtype_name,
        "batch": batch,
        "warmup_seconds": warm,
        "tiles": 64,
        "seconds": secs,
        "tiles_per_s": 64 / secs,
        "windows_per_s": wins / secs,
        "unet_evals_per_s": evals / secs,
        "sampling": stages[0].sampling.__dict__,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="float16", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--count", action="store_true", help="print parameter counts and exit")
    args = ap.parse_args()
    params = count()
    print("parameters:", {k: f"{v / 1e6:.1f} M" for k, v in params.items()})
    if args.count:
        return 0
    if not args.device.startswith("cuda") or not torch.cuda.is_available():
        print(
            "gpu_text2earth: no CUDA device here: nothing measured "
            "(run it on a machine with a GPU: --device cuda --dtype float16)"
        )
        return 0
    result = measure(args.device, args.dtype, args.batch)
    print(result)
    print(save("gpu_text2earth", {"parameters": params, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
