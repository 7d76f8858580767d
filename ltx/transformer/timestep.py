"""Timestep embeddings and the single AdaLN projection (PixArt-α "adaLN-single") of LTX-2."""

from __future__ import annotations

import math

import torch
from torch import nn

SINUSOID_CHANNELS = 256


def sinusoidal_embedding(timesteps: torch.Tensor, channels: int = SINUSOID_CHANNELS) -> torch.Tensor:
    """``(N,)`` timesteps (already ×1000) → ``(N, channels)`` float32 ``[cos, sin]`` features, max period 10000.

    Mirrors ``ltx_core.model.transformer.timestep_embedding.get_timestep_embedding`` with ``flip_sin_to_cos=True``
    and no frequency shift (ltx-core's ``Timesteps(256, True, 0)``).
    """
    half = channels // 2
    exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half
    angles = timesteps[:, None].float() * torch.exp(exponent)[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class TimestepEmbedder(nn.Module):
    """Linear → SiLU → Linear on the sinusoidal features. Keys: ``linear_1``, ``linear_2``.

    Mirrors ``ltx_core.model.transformer.timestep_embedding.TimestepEmbedding``.
    """

    def __init__(self, dim: int, in_channels: int = SINUSOID_CHANNELS) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Sinusoidal features ``(N, in_channels)`` → ``(N, dim)``."""
        return self.linear_2(nn.functional.silu(self.linear_1(features)))


class _CombinedEmbedding(nn.Module):
    """Holds ``timestep_embedder`` (checkpoint key ``emb.timestep_embedder.*``); ltx-core's
    ``PixArtAlphaCombinedTimestepSizeEmbeddings``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.timestep_embedder = TimestepEmbedder(dim)

    def forward(self, timesteps: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.timestep_embedder(sinusoidal_embedding(timesteps).to(dtype))


class AdaLayerNormSingle(nn.Module):
    """Timestep → (modulation ``(N, coef·dim)``, embedded timestep ``(N, dim)``).

    Keys: ``emb.timestep_embedder.linear_{1,2}``, ``linear``.

    Mirrors ``ltx_core.model.transformer.adaln.AdaLayerNormSingle`` (diffusers:
    ``diffusers.models.transformers.transformer_ltx2.LTX2AdaLayerNormSingle``).
    """

    def __init__(self, dim: int, coefficient: int) -> None:
        super().__init__()
        self.coefficient = coefficient
        self.emb = _CombinedEmbedding(dim)
        self.linear = nn.Linear(dim, coefficient * dim)

    def forward(self, timesteps: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``timesteps`` ``(N,)`` (σ × ``timestep_scale_multiplier``) → (modulation ``(N, coefficient·dim)``,
        embedded timestep ``(N, dim)``), both in ``dtype``."""
        embedded = self.emb(timesteps, dtype)
        return self.linear(nn.functional.silu(embedded)), embedded
