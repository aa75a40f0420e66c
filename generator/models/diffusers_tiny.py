"""Tiny randomly initialised diffusers checkpoints, written like real ones (tests, benchmarks).

``save_tiny_checkpoint(path, layout)`` writes a complete pipeline folder (``model_index.json``,
``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/`` and, for the upscaler,
``low_res_scheduler/``) with safetensors weights, in the layout of SD-2, Text2Earth or the SD ×4
upscaler but a few hundred kB in size. Nothing is downloaded: the tokenizer's byte-level BPE
vocabulary is built here (the 256 byte symbols, their end-of-word forms and a few merges).
The loader then reads it exactly as it reads a real checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .diffusers_backend import Layout

_WORDS = ("forest", "desert", "city", "farm", "river", "snow", "sea", "field", "green")


def _bytes_to_unicode() -> list[str]:
    # GPT-2/CLIP byte-level alphabet: printable bytes map to themselves, the rest above 255
    bs = list(range(ord("!"), ord("~") + 1))
    bs += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs, strict=True))]


def tiny_tokenizer_files(folder: Path) -> None:
    """Write a CLIP tokenizer (vocab.json, merges.txt, configs) with a tiny BPE vocabulary."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = _bytes_to_unicode()
    vocab: dict[str, int] = {}
    for s in symbols + [s + "</w>" for s in symbols]:
        vocab.setdefault(s, len(vocab))
    merges: list[str] = []
    for word in _WORDS:  # left-to-right merges building each word, as BPE training would
        cur = word[0]
        for i, ch in enumerate(word[1:], start=1):
            nxt = ch + ("</w>" if i == len(word) - 1 else "")
            merge = f"{cur} {nxt}"
            if merge not in merges:
                merges.append(merge)
            cur = cur + nxt
            vocab.setdefault(cur, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CLIPTokenizer",
                "model_max_length": 16,
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
            }
        )
    )


def _scheduler_config(prediction_type: str) -> dict[str, object]:
    return {
        "_class_name": "DDIMScheduler",
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "clip_sample": False,
        "set_alpha_to_one": False,
        "steps_offset": 1,
        "prediction_type": prediction_type,
        "timestep_spacing": "leading",
    }


def save_tiny_checkpoint(path: str | Path, layout: Layout = "sd", seed: int = 0) -> Path:
    """Write a tiny random checkpoint of ``layout`` to ``path`` and return the folder.

    The UNet has block channels (16, 32, 32) (stride 4; cross-attention at the lowest level and
    in the mid block, as SD has it at every level but the first), the VAE three blocks
    (down-sampling ×4 as the ×4 upscaler's, 4 latent channels, no mid-block attention; scaling
    0.08333 for the upscaler as the real one), the text encoder two layers of width 32 over the
    tiny vocabulary, 16 tokens long. The decoder's output layer is scaled ×0.1 (see below).
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tiny_tokenizer_files(root / "tokenizer")
    with open(root / "tokenizer" / "vocab.json") as f:
        vocab_size = len(json.load(f))
    text_config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=16,
        projection_dim=32,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )
    CLIPTextModel(text_config).save_pretrained(root / "text_encoder", safe_serialization=True)
    upscaler = layout == "upscaler"
    unet_kwargs: dict[str, object] = {
        "sample_size": 16,
        "in_channels": 7 if upscaler else 4,
        "out_channels": 4,
        "layers_per_block": 1,
        "block_out_channels": (16, 32, 32),
        "down_block_types": ("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        "cross_attention_dim": 32,
        "attention_head_dim": (2, 4, 4),
        "use_linear_projection": True,
        "norm_num_groups": 8,
    }
    if layout == "text2earth":
        unet_kwargs["class_embed_type"] = "timestep"
    if upscaler:
        unet_kwargs["num_class_embeds"] = 1000
    UNet2DConditionModel(**unet_kwargs).save_pretrained(root / "unet", safe_serialization=True)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(8, 16, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        mid_block_add_attention=False,
        sample_size=32,
        scaling_factor=0.08333 if upscaler else 0.18215,
    )
    # A random decoder paints full-range noise that the 0..255 quantisation clips, and clipping
    # breaks the parent correction's exact means; ×0.1 on its last layer keeps tiny tiles in
    # range (the built-in tiny model's residual scale plays the same part).
    with torch.no_grad():
        vae.decoder.conv_out.weight.mul_(0.1)
        vae.decoder.conv_out.bias.mul_(0.1)
    vae.save_pretrained(root / "vae", safe_serialization=True)
    sched = root / "scheduler"
    sched.mkdir(exist_ok=True)
    pred = "v_prediction" if layout != "sd" else "epsilon"
    (sched / "scheduler_config.json").write_text(json.dumps(_scheduler_config(pred)))
    index: dict[str, object] = {
        "_class_name": "StableDiffusionUpscalePipeline" if upscaler else "StableDiffusionPipeline",
        "_diffusers_version": "0.30.0",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "safety_checker": [None, None],
        "feature_extractor": [None, None],
    }
    if upscaler:
        low = root / "low_res_scheduler"
        low.mkdir(exist_ok=True)
        cfg = {
            "_class_name": "DDPMScheduler",
            "num_train_timesteps": 1000,
            "beta_start": 0.0001,
            "beta_end": 0.02,
            "beta_schedule": "scaled_linear",
            "clip_sample": False,
        }
        (low / "scheduler_config.json").write_text(json.dumps(cfg))
        index["low_res_scheduler"] = ["diffusers", "DDPMScheduler"]
        index["max_noise_level"] = 350
    (root / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    return root
