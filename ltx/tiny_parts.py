"""Tiny random-weight versions of every other model part, for the demo and tests (no downloads).

* :func:`tiny_component_config` — checkpoint-style ``vae`` / ``audio_vae`` / ``vocoder`` config sections (LTX-2.3
  video VAE layout, LTX-2 vocoder at 24 kHz) sized for a CPU.
* :func:`tiny_component_state` — their tensors under the official prefixes (``vae.``, ``audio_vae.``, ``vocoder.``).
* :func:`write_tiny_gemma` — a Hugging Face-style Gemma-3 folder (config.json, model.safetensors, tokenizer.model)
  whose tokenizer is a small SentencePiece BPE model trained on the spot; the Gemma width/depth match the tiny LTX
  checkpoint's text projection.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from .audio import AudioDecoder, AudioEncoder, AudioVAEConfig, build_vocoder, vocoder_config_from_dict
from .random_weights import random_init
from .text.gemma import GemmaTextModel
from .text.gemma_config import GemmaConfig
from .video_vae import VideoDecoder, VideoEncoder, VideoVAEConfig

_RES = ["res_x", {"num_layers": 1}]


def tiny_component_config(latent_channels: int = 16, audio_channels: int = 1) -> dict[str, Any]:
    """``vae``, ``audio_vae`` and ``vocoder`` sections; ``audio_channels`` × 16 mel bins = audio token width."""
    vae = {
        "dims": 3, "in_channels": 3, "out_channels": 3, "latent_channels": latent_channels, "patch_size": 4,
        "norm_layer": "pixel_norm", "latent_log_var": "uniform", "causal_decoder": False,
        "timestep_conditioning": False, "decoder_base_channels": 4, "spatial_padding_mode": "zeros",
        "encoder_blocks": [_RES, ["compress_space_res", {"multiplier": 2}], _RES, ["compress_time_res",
                           {"multiplier": 2}], _RES, ["compress_all_res", {"multiplier": 2}], _RES,
                           ["compress_all_res", {"multiplier": 1}], _RES],
        "decoder_blocks": [_RES, ["compress_space", {"multiplier": 2}], _RES, ["compress_time", {"multiplier": 2}],
                           _RES, ["compress_all", {"multiplier": 1}], _RES, ["compress_all", {"multiplier": 2}], _RES],
    }
    audio_vae = {
        "model": {"params": {"ddconfig": {
            "double_z": True, "mel_bins": 64, "z_channels": audio_channels, "resolution": 256, "in_channels": 2,
            "out_ch": 2, "ch": audio_channels * 16, "ch_mult": [1, 1, 2], "num_res_blocks": 1, "attn_resolutions": [],
            "dropout": 0.0, "mid_block_add_attention": False, "norm_type": "pixel", "causality_axis": "height"},
            "sampling_rate": 16000}},
        "preprocessing": {"stft": {"filter_length": 1024, "hop_length": 160, "causal": True}},
    }
    vocoder = {"upsample_initial_channel": 32, "resblock": "1", "upsample_rates": [6, 5, 2, 2, 2],
               "upsample_kernel_sizes": [16, 15, 8, 4, 4], "resblock_kernel_sizes": [3, 7, 11],
               "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "stereo": True,
               "output_sampling_rate": 24000}
    return {"vae": vae, "audio_vae": audio_vae, "vocoder": vocoder}


def _init(module: torch.nn.Module, seed: int, std: float = 0.05) -> dict[str, torch.Tensor]:
    random_init(module, seed, std)
    return module.state_dict()


def tiny_component_state(config: dict[str, Any], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights (each of its parameter's shape) of the video VAE, audio VAE and vocoder of ``config`` (the
    sections of :func:`tiny_component_config`) under the official prefixes.

    Raises:
        ConfigError: a section of ``config`` that its ``from_dict`` rejects.
    """
    vae_cfg = VideoVAEConfig.from_dict(config["vae"])
    sd: dict[str, torch.Tensor] = {}
    for name, cls in (("encoder", VideoEncoder), ("decoder", VideoDecoder)):
        for k, v in _init(cls(vae_cfg), seed).items():
            key = f"vae.{k}" if k.startswith("per_channel_statistics.") else f"vae.{name}.{k}"
            sd[key] = v
    audio_cfg = AudioVAEConfig.from_dict(config["audio_vae"])
    for name, cls in (("encoder", AudioEncoder), ("decoder", AudioDecoder)):
        for k, v in _init(cls(audio_cfg), seed + 1).items():
            key = f"audio_vae.{k}" if k.startswith("per_channel_statistics.") else f"audio_vae.{name}.{k}"
            sd[key] = v
    vocoder = build_vocoder(vocoder_config_from_dict(config["vocoder"]))
    sd.update({f"vocoder.{k}": v for k, v in _init(vocoder, seed + 2, std=0.1).items()})
    return {k: v.contiguous() for k, v in sd.items()}


_CORPUS = [
    "A red fox runs through a snowy forest at dawn while birds sing.",
    "Waves crash on a rocky shore under a stormy sky; thunder rolls in the distance.",
    "A chef chops vegetables in a busy kitchen, pans sizzle and people talk.",
    "Close-up of a cat yawning in warm afternoon light, soft music plays.",
    "A drone flies over a city at night, cars hum below and neon signs flicker.",
    "Two friends laugh on a park bench as leaves fall around them.",
]


def write_tiny_gemma(directory: str | os.PathLike, hidden: int = 24, layers: int = 2, seed: int = 0) -> Path:
    """A Gemma-3 folder with random weights and a freshly trained SentencePiece tokenizer; returns its path."""
    import sentencepiece as spm

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    model_bytes = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(_CORPUS * 20), model_writer=model_bytes, vocab_size=320,
                                   model_type="bpe", byte_fallback=True, pad_id=0, eos_id=1, bos_id=2, unk_id=3,
                                   character_coverage=1.0, minloglevel=2)
    (out / "tokenizer.model").write_bytes(model_bytes.getvalue())
    cfg = GemmaConfig(vocab_size=320, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=hidden // 2,
                      query_pre_attn_scalar=hidden // 2, sliding_window=16)
    (out / "config.json").write_text(json.dumps(cfg.to_hf_dict(), indent=2))
    with torch.device("meta"):
        model = GemmaTextModel(cfg)
    state = _init(model, seed, std=0.2)
    save_file({f"model.{k}": v.contiguous() for k, v in state.items()}, str(out / "model.safetensors"))
    return out
