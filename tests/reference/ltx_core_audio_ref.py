"""Tiny ltx-core 1.0.0 audio VAE, vocoders and latent upsamplers for parity tests, written as official files.

Everything is built with ltx-core's own configurators from checkpoint-style config dicts (as in the shared
``tiny_ref.py``) and re-initialised like trained networks (:func:`reference.builders.realistic_conv_init`), then
saved with the official prefixes (``audio_vae.encoder.`` / ``audio_vae.decoder.`` /
``audio_vae.per_channel_statistics.`` / ``vocoder.``; upsamplers without prefix) and ``__metadata__["config"]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# isort: off
from . import ltx_core_ref  # noqa: F401  (first: installs the torchaudio stub and imports ltx_core.loader)

import torch
from ltx_core.model.audio_vae import AudioDecoderConfigurator, AudioEncoderConfigurator, VocoderConfigurator
from ltx_core.model.upsampler import LatentUpsamplerConfigurator
from safetensors.torch import save_file

from .builders import realistic_conv_init

# isort: on


def audio_vae_config(attention: bool = False) -> dict[str, Any]:
    """Tiny ``audio_vae`` section. ``ch`` must equal ``z_channels · mel_bins / 4`` (statistics are sized by ``ch``).
    ``attention`` turns on the mid-block attention and attention at resolution 128 (off in the released models)."""
    dd = {"double_z": True, "mel_bins": 64, "z_channels": 1, "resolution": 256, "in_channels": 2, "out_ch": 2,
          "ch": 16, "ch_mult": [1, 1, 2], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0,
          "mid_block_add_attention": False, "norm_type": "pixel", "causality_axis": "height"}
    if attention:
        dd.update({"z_channels": 2, "ch": 32, "num_res_blocks": 2, "attn_resolutions": [128],
                   "mid_block_add_attention": True})
    return {"model": {"params": {"ddconfig": dd, "sampling_rate": 16000}},
            "preprocessing": {"stft": {"filter_length": 1024, "hop_length": 160, "causal": True}}}


def vocoder_config(variant: str) -> dict[str, Any]:
    """Tiny ``vocoder`` section: flat HiFi-GAN (2.0) or nested BigVGAN-v2 + BWE (2.3)."""
    if variant == "2.0":
        return {"upsample_initial_channel": 32, "resblock": "1", "upsample_rates": [6, 5, 2, 2, 2],
                "upsample_kernel_sizes": [16, 15, 8, 4, 4], "resblock_kernel_sizes": [3, 7, 11],
                "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "stereo": True,
                "output_sampling_rate": 24000}
    common = {"resblock": "AMP1", "resblock_kernel_sizes": [3, 7, 11], "stereo": True, "activation": "snakebeta",
              "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "use_tanh_at_final": False,
              "use_bias_at_final": False}
    voc = {**common, "upsample_initial_channel": 64, "upsample_rates": [5, 2, 2, 2, 2, 2],
           "upsample_kernel_sizes": [11, 4, 4, 4, 4, 4]}
    bwe = {**common, "upsample_initial_channel": 32, "upsample_rates": [6, 5, 2, 2, 2],
           "upsample_kernel_sizes": [12, 11, 4, 4, 4], "apply_final_activation": False, "input_sampling_rate": 16000,
           "output_sampling_rate": 48000, "hop_length": 80, "n_fft": 512, "win_size": 512, "num_mels": 64}
    return {"vocoder": voc, "bwe": bwe}


UPSAMPLER_KINDS = ("x2-rational", "x2", "x1.5", "temporal-x2")


def upsampler_config(kind: str) -> dict[str, Any]:
    base = {"in_channels": 16, "mid_channels": 32, "num_blocks_per_stage": 1, "dims": 3, "spatial_upsample": True,
            "temporal_upsample": False, "spatial_scale": 2.0, "rational_resampler": False}
    extra = {"x2-rational": {"rational_resampler": True}, "x2": {},
             "x1.5": {"rational_resampler": True, "spatial_scale": 1.5},
             "temporal-x2": {"spatial_upsample": False, "temporal_upsample": True}}[kind]
    return {**base, **extra}


@dataclass
class AudioReference:
    config: dict[str, Any]
    encoder: torch.nn.Module
    decoder: torch.nn.Module
    vocoder: torch.nn.Module


def build_audio(variant: str, seed: int = 0, attention: bool = False) -> AudioReference:
    """ltx-core AudioEncoder / AudioDecoder / Vocoder (2.0) or VocoderWithBWE (2.3), realistically initialised; the
    decoder shares the encoder's statistics (one ``audio_vae.per_channel_statistics`` in the files)."""
    cfg = {"audio_vae": audio_vae_config(attention), "vocoder": vocoder_config(variant)}
    enc = realistic_conv_init(AudioEncoderConfigurator.from_config(cfg), seed)
    dec = realistic_conv_init(AudioDecoderConfigurator.from_config(cfg), seed + 1)
    dec.per_channel_statistics.load_state_dict(enc.per_channel_statistics.state_dict())
    voc = realistic_conv_init(VocoderConfigurator.from_config(cfg), seed + 2,
                              last_gain=0.3 if variant == "2.0" else 0.005)
    return AudioReference(cfg, enc, dec, voc)


def audio_state_dict(ref: AudioReference, parts: tuple[str, ...] = ("encoder", "decoder", "vocoder")
                     ) -> dict[str, torch.Tensor]:
    """Official-format tensors of the chosen parts."""
    sd: dict[str, torch.Tensor] = {}
    for part in ("encoder", "decoder"):
        if part in parts:
            for k, v in getattr(ref, part).state_dict().items():
                key = f"audio_vae.{k}" if k.startswith("per_channel_statistics.") else f"audio_vae.{part}.{k}"
                sd[key] = v
    if "vocoder" in parts:
        sd.update({f"vocoder.{k}": v for k, v in ref.vocoder.state_dict().items()})
    return {k: v.contiguous().clone() for k, v in sd.items()}


def write_audio_file(ref: AudioReference, path: Path, *, parts: tuple[str, ...] = ("encoder", "decoder", "vocoder"),
                     metadata: bool = True, extra: dict[str, torch.Tensor] | None = None) -> Path:
    sd = audio_state_dict(ref, parts)
    sd.update(extra or {})
    save_file(sd, str(path), metadata={"config": json.dumps(ref.config)} if metadata else None)
    return path


def build_upsampler(kind: str, seed: int = 0) -> tuple[dict[str, Any], torch.nn.Module]:
    cfg = upsampler_config(kind)
    return cfg, realistic_conv_init(LatentUpsamplerConfigurator.from_config(cfg), seed)


def write_upsampler_file(cfg: dict[str, Any], model: torch.nn.Module, path: Path, metadata: bool = True) -> Path:
    sd = {k: v.contiguous().clone() for k, v in model.state_dict().items()}
    save_file(sd, str(path), metadata={"config": json.dumps(cfg)} if metadata else None)
    return path
