"""Builders the tests share: trained-like re-initialisation of reference modules, tiny files in the official
layouts (latent upsampler, checkpoints and LoRAs that ComfyUI core's loaders accept) and GGUF files of random
quantised blocks. Test modules import them from here, never from each other."""

from __future__ import annotations

import math

import numpy as np
import torch
from gguf import GGML_QUANT_SIZES, GGUFWriter
from gguf import GGMLQuantizationType as Q

from rs_ltxv.ltx.tiny import write_core_compatible_checkpoint  # noqa: F401  (re-exported for the tests)
from rs_ltxv.ltx.tiny_parts import write_tiny_lora as write_lora  # noqa: F401
from rs_ltxv.ltx.tiny_parts import write_tiny_upsampler  # noqa: F401

# ----------------------------------------------------------------------------------- trained-like initialisation


def realistic_init(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Re-initialise a transformer like a trained network so every path matters: Linear weights ~ N(0, 1/fan_in)
    (activations keep their scale), q/k RMSNorm weights ~ 1 + N(0, 0.1²) (sharp attention, so RoPE and masks
    change outputs). Other modules keep their weights. For conv nets see :func:`realistic_conv_init`."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in module.modules():
            if isinstance(mod, torch.nn.Linear):
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) * mod.in_features**-0.5)
                if mod.bias is not None:
                    mod.bias.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.02)
            elif isinstance(mod, torch.nn.RMSNorm) and mod.weight is not None:
                mod.weight.copy_(1 + 0.1 * torch.randn(mod.weight.shape, generator=gen))
    return module


def stft_basis(n_fft: int) -> torch.Tensor:
    """``(n_fft + 2, 1, n_fft)``: periodic-Hann-windowed DFT rows, cosines then negative sines (the BWE's STFT)."""
    n = torch.arange(n_fft, dtype=torch.float64)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    win = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    ang = 2 * math.pi * k * n / n_fft
    return torch.cat([torch.cos(ang) * win, -torch.sin(ang) * win], 0)[:, None, :].float()


def realistic_conv_init(module: torch.nn.Module, seed: int, *, last_gain: float = 1.0) -> torch.nn.Module:
    """Re-initialise like a trained conv net (audio VAE, vocoders, latent upsamplers): conv weights ~ N(0, 1/fan_in)
    (activations keep their scale), small biases, GroupNorm affine ≈ (1, 0), SnakeBeta log-α/β ~ N(0, 0.3²), latent
    statistics std ∈ [0.5, 1.5], mean ~ N(0, 0.3²), BWE STFT bases = windowed DFT and a real slaney mel filterbank
    (librosa). Kaiser / blur filters keep the values ltx-core computed. ``last_gain`` scales every ``conv_post``
    (keeps vocoder outputs off ±1). Returns ``module.eval()``."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, mod in module.named_modules():
            if isinstance(mod, torch.nn.ConvTranspose1d):
                fan_in = mod.in_channels * mod.kernel_size[0] / mod.stride[0]
            elif isinstance(mod, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
                fan_in = mod.in_channels // mod.groups * math.prod(mod.kernel_size)
            elif isinstance(mod, torch.nn.GroupNorm):
                mod.weight.copy_(1 + 0.1 * torch.randn(mod.weight.shape, generator=gen))
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=gen))
                continue
            else:
                for pname in ("alpha", "beta"):
                    p = getattr(mod, pname, None)
                    if isinstance(p, torch.nn.Parameter):
                        p.copy_(0.3 * torch.randn(p.shape, generator=gen))
                continue
            gain = last_gain if name.endswith("conv_post") else 1.0
            mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) * gain * fan_in**-0.5)
            if mod.bias is not None:
                mod.bias.copy_(0.02 * torch.randn(mod.bias.shape, generator=gen))
        for name, buf in module.named_buffers():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "std-of-means":
                buf.copy_(torch.rand(buf.shape, generator=gen) + 0.5)
            elif leaf == "mean-of-means":
                buf.copy_(0.3 * torch.randn(buf.shape, generator=gen))
            elif leaf == "forward_basis":
                buf.copy_(stft_basis(buf.shape[-1]))
            elif leaf == "inverse_basis":
                buf.copy_(0.01 * torch.randn(buf.shape, generator=gen))
            elif leaf == "mel_basis":
                import librosa

                n_mels, bins = buf.shape
                fb = librosa.filters.mel(sr=16000, n_fft=2 * (bins - 1), n_mels=n_mels, fmin=0.0, fmax=8000.0)
                buf.copy_(torch.from_numpy(fb))
    return module.eval()


# ------------------------------------------------------------------------------------ tiny files, official layouts


# tiny upsamplers, core-compatible checkpoints and LoRAs are written by the library (``python -m rs_ltxv tiny --set``
# writes them too): ``write_tiny_upsampler``, ``write_core_compatible_checkpoint`` and ``write_lora`` are imported above


# ------------------------------------------------------------------------------------------------ GGUF blocks

#: byte offsets of the fp16 scale fields per block (d, dmin, m); every other byte is random
SCALE_FIELDS = {
    Q.Q8_0: (0,), Q.Q4_0: (0,), Q.Q4_1: (0, 2), Q.Q5_0: (0,), Q.Q5_1: (0, 2), Q.IQ4_NL: (0,), Q.IQ4_XS: (0,),
    Q.Q2_K: (80, 82), Q.Q3_K: (108,), Q.Q4_K: (0, 2), Q.Q5_K: (0, 2), Q.Q6_K: (208,),
}


def random_blocks(qtype: Q, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Valid random blocks: random bytes with every fp16 scale set to a finite value in ±0.1."""
    block, size = GGML_QUANT_SIZES[qtype]
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, (*shape[:-1], shape[-1] // block * size), dtype=np.uint8)
    blocks = raw.reshape(-1, size)
    for at in SCALE_FIELDS[qtype]:
        blocks[:, at:at + 2] = rng.uniform(-0.1, 0.1, (blocks.shape[0], 1)).astype(np.float16).view(np.uint8)
    return raw


def write_gguf(path, tensors: dict[str, tuple[np.ndarray, Q]], arch="ltxv", meta=None):
    """A GGUF file written with ``gguf.GGUFWriter``: ``tensors`` maps names to (data, type), where F32 / F16 data
    are arrays of values and every other type raw blocks; ``meta`` is ``(key, writer method, value)`` triples."""
    writer = GGUFWriter(str(path), arch=arch)
    for key, fn, value in meta or ():
        getattr(writer, fn)(key, value)
    for name, (data, qtype) in tensors.items():
        if qtype in (Q.F32, Q.F16):
            writer.add_tensor(name, data)
        else:
            writer.add_tensor(name, data, raw_shape=data.shape, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
