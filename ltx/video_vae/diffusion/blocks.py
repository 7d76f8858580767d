"""Blocks of the diffusion video decoder (all channels-last ``(B, T, H, W, C)``): the gated MLP, the plain and the
AdaLN-modulated neighbourhood-attention blocks, the pixel-shuffle upsampler, the shared AdaLN-Zero projection and the
timestep embedder, each named as the official file names its tensors."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ...transformer.timestep import sinusoidal_embedding
from .attention import NeighbourhoodAttention
from .config import Triple

#: tokens per SwiGLU slice: the three hidden-width tensors of one slice are what stays alive
MLP_TOKENS = 16384
#: AdaLN-Zero chunks: scale/shift/gate of attention, scale/shift/gate of the MLP, context gate
ADALN_CHUNKS = 7


class GatedMLP(nn.Module):
    """``w_down(silu(w_gate(x)) · w_up(x))``, no biases, evaluated :data:`MLP_TOKENS` tokens at a time (pointwise
    over tokens, so slicing changes only how much hidden-width memory is alive). Keys: ``w_up``, ``w_gate``,
    ``w_down``.

    Mirrors ``ltx_core.model.video_vae.transformer.swiglu.SwiGLU`` (diffusers: ``LTX2VideoVaeSwiGLU``).
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w_up = nn.Linear(dim, hidden, bias=False)
        self.w_gate = nn.Linear(dim, hidden, bias=False)
        self.w_down = nn.Linear(hidden, dim, bias=False)

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_down(F.silu(self.w_gate(x)) * self.w_up(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, …, dim)`` → same shape."""
        tokens = math.prod(x.shape[:-1])
        if tokens <= MLP_TOKENS:
            return self._mlp(x)
        flat = x.reshape(tokens, x.shape[-1])
        out = torch.empty_like(flat)
        for start in range(0, tokens, MLP_TOKENS):
            out[start:start + MLP_TOKENS] = self._mlp(flat[start:start + MLP_TOKENS])
        return out.reshape(x.shape)


class NABlock(nn.Module):
    """Pre-norm block of the deterministic stages: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``. Keys:
    ``norm1``, ``attn``, ``norm2``, ``mlp``.

    Mirrors ``ltx_core.model.video_vae.transformer.blocks.NABlock`` (diffusers: ``LTX2VideoVaeNABlock``).
    """

    def __init__(self, dim: int, kernel: Triple, head_dim: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(dim, eps=1e-6)
        self.attn = NeighbourhoodAttention(dim, kernel, head_dim)
        self.norm2 = nn.RMSNorm(dim, eps=1e-6)
        self.mlp = GatedMLP(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, H, W, dim)`` → same shape."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DiffusionNABlock(nn.Module):
    """Denoising block: add ``context_proj(context)``, then an attention and an MLP residual, each on the RMS-normed
    input modulated by ``(1 + scale) · x + shift`` (shared AdaLN-Zero chunks plus this block's
    ``scale_shift_table`` row). The residuals are ungated; an older file's static per-channel gates (``gate_msa``,
    ``gate_mlp``, ``gate_ctx``, ``(dim,)``) multiply the attention output, the MLP output and the projected context
    when present (ltx-core folds them into the preceding Linear at load time: the same product).

    Keys: ``context_proj``, ``scale_shift_table`` ``(7, dim)``, ``norm1``, ``attn``, ``norm2``, ``mlp``[, gates].

    Mirrors ``ltx_core.model.video_vae.transformer.combined.block.CombinedDiffusionNABlock`` (diffusers:
    ``LTX2VideoVaeDiffusionNABlock``).
    """

    def __init__(self, dim: int, kernel: Triple, head_dim: int, hidden: int, context_channels: int,
                 gates: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.context_proj = nn.Linear(context_channels, dim)
        self.scale_shift_table = nn.Parameter(torch.zeros(ADALN_CHUNKS, dim))
        self.norm1 = nn.RMSNorm(dim, eps=1e-6)
        self.attn = NeighbourhoodAttention(dim, kernel, head_dim)
        self.norm2 = nn.RMSNorm(dim, eps=1e-6)
        self.mlp = GatedMLP(dim, hidden)
        self.gate_names = gates
        for name in gates:
            self.register_parameter(name, nn.Parameter(torch.ones(dim)))

    def _gated(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return x * getattr(self, name) if name in self.gate_names else x

    def forward(self, x: torch.Tensor, context: torch.Tensor, modulation: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """``x`` ``(B, T, H, W, dim)``, ``context`` ``(B, T, H, W, context_channels)``, ``modulation`` the 7
        ``(B, 1, 1, 1, dim)`` chunks of :class:`AdaLNZero` → ``(B, T, H, W, dim)``."""
        table = self.scale_shift_table.view(ADALN_CHUNKS, 1, 1, 1, 1, -1)
        scale_msa, shift_msa, scale_mlp, shift_mlp = (modulation[i] + table[i] for i in (0, 1, 3, 4))
        x = x + self._gated("gate_ctx", self.context_proj(context))
        x = x + self._gated("gate_msa", self.attn(self.norm1(x) * (1 + scale_msa) + shift_msa))
        return x + self._gated("gate_mlp", self.mlp(self.norm2(x) * (1 + scale_mlp) + shift_mlp))


class PixelShuffleUpsample(nn.Module):
    """``proj`` (Linear, ``C → stride_t·stride_h·stride_w·C / reduction``) then depth-to-space; with a temporal
    stride of 2 the duplicate first frame is dropped (``drop_first``), which keeps the causal 1 + 2k frame rule.
    A window that does not start at frame 0 keeps it: there both frames of its first input are real. Key:
    ``proj``.

    Mirrors ``ltx_core.model.video_vae.transformer.layers.LinearPixelShuffleUpsample`` (diffusers:
    ``LTX2VideoVaePixelShuffleUpsampler``).
    """

    def __init__(self, channels: int, stride: Triple, reduction: int) -> None:
        super().__init__()
        self.stride = tuple(stride)
        self.out_channels = channels // reduction
        self.proj = nn.Linear(channels, math.prod(stride) * self.out_channels)

    def forward(self, x: torch.Tensor, drop_first: bool = True) -> torch.Tensor:
        """``(B, T, H, W, C)`` → ``(B, s_t·T [− 1], s_h·H, s_w·W, C / reduction)``."""
        st, sh, sw = self.stride
        x = rearrange(self.proj(x), "b t h w (c p1 p2 p3) -> b (t p1) (h p2) (w p3) c", p1=st, p2=sh, p3=sw)
        return x[:, 1:] if st == 2 and drop_first else x


class AdaLNZero(nn.Module):
    """Timestep embedding ``(B, t_emb_dim)`` → 7 ``(B, 1, 1, 1, dim)`` chunks: ``proj(silu(t_emb))``. Key:
    ``proj``. Only the scale/shift chunks (0, 1, 3, 4) are used.

    Mirrors ``ltx_core.model.video_vae.transformer.layers.AdaLNZero`` (diffusers: ``LTX2VideoVaeAdaLNZero``).
    """

    def __init__(self, dim: int, t_emb_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(t_emb_dim, ADALN_CHUNKS * dim)

    def forward(self, t_emb: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(B, t_emb_dim)`` → 7 × ``(B, 1, 1, 1, dim)``."""
        return tuple(c[:, None, None, None, :] for c in self.proj(F.silu(t_emb)).chunk(ADALN_CHUNKS, dim=-1))


class TimestepMLP(nn.Module):
    """Scaled timestep ``(B,)`` → ``(B, dim)``: 256 sinusoid features (cos, sin) → ``mlp`` (Linear, SiLU, Linear).
    Keys ``mlp.0``, ``mlp.2``, as the official file stores them (ltx-core renames them to
    ``timestep_embedder.linear_{1,2}`` on load).

    Mirrors ``ltx_core.model.transformer.timestep_embedding.PixArtAlphaCombinedTimestepSizeEmbeddings`` as the
    diffusion decoder uses it.
    """

    def __init__(self, dim: int, features: int = 256) -> None:
        super().__init__()
        self.features = features
        self.mlp = nn.Sequential(nn.Linear(features, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, timestep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``(B,)`` (already × ``timestep_scale_multiplier``) → ``(B, dim)`` in ``dtype``."""
        return self.mlp(sinusoidal_embedding(timestep.flatten(), self.features).to(dtype))
