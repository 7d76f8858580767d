"""Tiny random-weight video VAEs of the official reference (ltx-core 1.0.0), written as official checkpoints.

Everything model-related calls ltx-core's own ``VideoEncoderConfigurator`` / ``VideoDecoderConfigurator`` on a
checkpoint-style ``{"vae": {...}}`` config; nothing is re-implemented. Layouts:

* "2.0": encoder space/time/all/all ×2 (res downsamplers), decoder 3× residual ``compress_all`` (×2), reflect padding;
* "2.3": encoder multipliers 2,2,2,1, decoder ``compress_space``/``compress_time``/``compress_all`` ×(2,2,1,2),
  no residual, zeros padding.

Files: official (``vae.encoder.*``, ``vae.decoder.*``, ``vae.per_channel_statistics.*`` + ``config`` metadata) or
ComfyUI split (no ``vae.`` prefix, metadata optional).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import ltx_core_ref  # noqa: F401  (torchaudio stub + ltx_core.loader import order)

# isort: split
import torch
from ltx_core.model.video_vae import VideoDecoderConfigurator, VideoEncoderConfigurator
from ltx_core.model.video_vae.video_vae import VideoDecoder, VideoEncoder
from safetensors.torch import save_file

LAYOUTS = ("2.0", "2.3")


def vae_config(layout: str, *, latent_channels: int = 16, base_channels: int = 4, layers: int = 1,
               timestep_conditioning: bool = False, inject_noise: bool = False) -> dict[str, Any]:
    """A checkpoint-style ``config["vae"]`` dict of a tiny VAE in the given layout."""
    res = {"num_layers": layers}
    if inject_noise:
        res = {**res, "inject_noise": True}
    enc_mults = (2, 2, 2, 2) if layout == "2.0" else (2, 2, 2, 1)
    enc: list[Any] = [["res_x", {"num_layers": layers}]]
    for kind, mult in zip(("compress_space_res", "compress_time_res", "compress_all_res", "compress_all_res"),
                          enc_mults, strict=True):
        enc += [[kind, {"multiplier": mult}], ["res_x", {"num_layers": layers}]]
    dec: list[Any] = [["res_x", res]]
    if layout == "2.0":
        for _ in range(3):
            dec += [["compress_all", {"residual": True, "multiplier": 2}], ["res_x", res]]
        pad = "reflect"
    else:
        for kind, mult in (("compress_space", 2), ("compress_time", 2), ("compress_all", 1), ("compress_all", 2)):
            dec += [[kind, {"multiplier": mult}], ["res_x", res]]
        pad = "zeros"
    return {
        "_class_name": "CausalVideoAutoencoder", "dims": 3, "in_channels": 3, "out_channels": 3,
        "latent_channels": latent_channels, "patch_size": 4, "norm_layer": "pixel_norm", "latent_log_var": "uniform",
        "causal_decoder": False, "timestep_conditioning": timestep_conditioning,
        "decoder_base_channels": base_channels, "spatial_padding_mode": pad,
        "encoder_blocks": enc, "decoder_blocks": dec,
    }


def _init(module: torch.nn.Module, gen: torch.Generator) -> None:
    """Trained-like weights: conv/linear ~ N(0, 1/fan_in) (activations keep their scale through residual stacks),
    biases N(0, 0.02²), AdaLN tables and noise scales N(0, 0.1²); scalar parameters are kept."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2 and "scale_shift_table" not in name:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) * fan_in**-0.5)
            elif p.dim() >= 1:
                std = 0.02 if name.endswith("bias") else 0.1
                p.copy_(torch.randn(p.shape, generator=gen) * std)


def build_reference(cfg: dict[str, Any], seed: int = 0) -> tuple[VideoEncoder, VideoDecoder]:
    """ltx-core encoder and decoder for ``{"vae": cfg}``, re-initialised realistically, sharing statistics."""
    enc = VideoEncoderConfigurator.from_config({"vae": cfg}).eval()
    dec = VideoDecoderConfigurator.from_config({"vae": cfg}).eval()
    gen = torch.Generator().manual_seed(seed)
    _init(enc, gen)
    _init(dec, gen)
    channels = cfg["latent_channels"]
    mean = torch.randn(channels, generator=gen) * 0.5
    std = 0.5 + torch.rand(channels, generator=gen)
    for model in (enc, dec):
        stats = model.per_channel_statistics
        stats.get_buffer("mean-of-means").copy_(mean)
        stats.get_buffer("std-of-means").copy_(std)
    return enc, dec


def state_dict(enc: VideoEncoder, dec: VideoDecoder, *, prefix: str = "vae.",
               extra_stats: bool = True) -> dict[str, torch.Tensor]:
    """Checkpoint tensors: ``{prefix}encoder.*``, ``{prefix}decoder.*``, ``{prefix}per_channel_statistics.*``
    (plus the unused ``channel`` / ``mean-of-stds`` entries of the real files when ``extra_stats``)."""
    sd: dict[str, torch.Tensor] = {}
    for part, model in (("encoder", enc), ("decoder", dec)):
        for k, v in model.state_dict().items():
            if not k.startswith("per_channel_statistics."):
                sd[f"{prefix}{part}.{k}"] = v.detach().clone().contiguous()
    for k, v in enc.state_dict().items():
        if k.startswith("per_channel_statistics."):
            sd[f"{prefix}{k}"] = v.detach().clone().contiguous()
    if extra_stats:
        n = enc.latent_channels
        sd[f"{prefix}per_channel_statistics.channel"] = torch.arange(n, dtype=torch.float32)
        sd[f"{prefix}per_channel_statistics.mean-of-stds"] = torch.ones(n)
    return sd


def write_checkpoint(enc: VideoEncoder, dec: VideoDecoder, cfg: dict[str, Any], path: str | Path, *,
                     prefix: str = "vae.", with_metadata: bool = True,
                     extra: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Write an official (``prefix="vae."``) or ComfyUI split (``prefix=""``) VAE file; returns the tensors."""
    sd = state_dict(enc, dec, prefix=prefix)
    sd.update(extra or {})
    meta = {"config": json.dumps({"vae": cfg})} if with_metadata else None
    save_file(sd, str(path), metadata=meta)
    return sd


def random_video(frames: int, height: int, width: int, seed: int = 0, batch: int = 1) -> torch.Tensor:
    """Smooth-ish pixels in [-1, 1] ``(B, 3, F, H, W)``: a random field upsampled, so convs see structure."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, frames, max(1, height // 8), max(1, width // 8), generator=gen) * 2 - 1
    smooth = torch.nn.functional.interpolate(coarse, size=(frames, height, width), mode="trilinear")
    return (smooth + 0.1 * torch.randn(smooth.shape, generator=gen)).clamp(-1, 1)


def random_latent(channels: int, frames: int, height: int, width: int, seed: int = 0, batch: int = 1) -> torch.Tensor:
    """Normalised latents ``(B, C, F', H', W')`` ~ N(0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, frames, height, width, generator=gen)
