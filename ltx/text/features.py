"""Feature extractors: the stacked Gemma hidden states ``(B, T, D, L)`` → one context vector per token.

* V1 (LTX-2): per sample and layer, statistics over the valid tokens × hidden dim: ``8·(x − mean)/(max − min)``;
  padded tokens zeroed; ``aggregate_embed`` Linear(D·L → D, no bias); the same features feed video and audio.
* V2 (LTX-2.3): per-token RMS norm over D of each layer; padded tokens zeroed; scaled by √(out/D) and projected by
  ``video_aggregate_embed`` / ``audio_aggregate_embed`` (with bias) to the two stream widths.

Flattening order is ``(d, layer)`` with the layer fastest, as ``ltx_core.text_encoders.gemma.feature_extractor``.
Checkpoint prefix: ``text_embedding_projection.``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _stack(hidden_states: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
    return torch.stack(list(hidden_states), dim=-1) if isinstance(hidden_states, (list, tuple)) else hidden_states


def normalize_v1(encoded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(B, T, D, L)`` + 0/1 mask ``(B, T)`` → ``(B, T, D·L)`` scaled to the valid tokens' range, pads zeroed.

    Mirrors ``ltx_core.text_encoders.gemma.feature_extractor._norm_and_concat_padded_batch`` (diffusers:
    ``diffusers.pipelines.ltx2.connectors.per_layer_masked_mean_norm``).
    """
    b, t, d, layers = encoded.shape
    valid = mask.bool()[:, :, None, None]
    lengths = mask.sum(dim=-1)
    eps = 1e-6
    mean = encoded.masked_fill(~valid, 0.0).sum(dim=(1, 2), keepdim=True) / ((lengths * d).view(b, 1, 1, 1) + eps)
    x_min = encoded.masked_fill(~valid, float("inf")).amin(dim=(1, 2), keepdim=True)
    x_max = encoded.masked_fill(~valid, float("-inf")).amax(dim=(1, 2), keepdim=True)
    normed = (8 * (encoded - mean) / (x_max - x_min + eps)).reshape(b, t, d * layers)
    return normed.masked_fill(~valid[:, :, :, 0], 0.0)


def normalize_v2(encoded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(B, T, D, L)`` + 0/1 mask ``(B, T)`` → per-token, per-layer RMS-normalised ``(B, T, D·L)``, pads zeroed.

    Mirrors ``ltx_core.text_encoders.gemma.feature_extractor.norm_and_concat_per_token_rms`` (diffusers:
    ``diffusers.pipelines.ltx2.connectors.per_token_rms_norm``).
    """
    b, t, d, layers = encoded.shape
    normed = encoded * torch.rsqrt(torch.mean(encoded**2, dim=2, keepdim=True) + 1e-6)
    normed = normed.reshape(b, t, d * layers)
    return torch.where(mask.bool().unsqueeze(-1), normed, torch.zeros_like(normed))


def _padding_is_left(mask: torch.Tensor) -> bool:
    """True when every row's valid tokens form a suffix (left padding) — what the V1 statistics assume."""
    first_valid = mask.int().argmax(dim=-1)
    lengths = mask.sum(dim=-1)
    return bool((first_valid + lengths == mask.shape[-1]).all() | (lengths == 0).all())


class FeatureExtractorV1(nn.Module):
    """LTX-2: shared features for both streams. Keys: ``aggregate_embed.weight``.

    Mirrors ``ltx_core.text_encoders.gemma.feature_extractor.FeatureExtractorV1``.
    """

    def __init__(self, gemma_dim: int, num_states: int) -> None:
        super().__init__()
        self.aggregate_embed = nn.Linear(gemma_dim * num_states, gemma_dim, bias=False)

    def forward(self, hidden_states, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``L`` hidden states ``(B, T, D)`` (or one ``(B, T, D, L)``) + 0/1 ``mask`` ``(B, T)`` (left padding) →
        (video, audio) features, the same ``(B, T, D)`` tensor twice."""
        encoded = _stack(hidden_states)
        features = self.aggregate_embed(normalize_v1(encoded, mask).to(encoded.dtype))
        return features, features


class FeatureExtractorV2(nn.Module):
    """LTX-2.3: separate video and audio projections. Keys: ``{video,audio}_aggregate_embed.{weight,bias}``.

    Mirrors ``ltx_core.text_encoders.gemma.feature_extractor.FeatureExtractorV2``.
    """

    def __init__(self, gemma_dim: int, num_states: int, video_dim: int, audio_dim: int) -> None:
        super().__init__()
        self.gemma_dim = gemma_dim
        self.video_aggregate_embed = nn.Linear(gemma_dim * num_states, video_dim)
        self.audio_aggregate_embed = nn.Linear(gemma_dim * num_states, audio_dim)

    def forward(self, hidden_states, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``L`` hidden states ``(B, T, D)`` (or one ``(B, T, D, L)``) + 0/1 ``mask`` ``(B, T)`` → video features
        ``(B, T, video_dim)`` and audio features ``(B, T, audio_dim)``."""
        encoded = _stack(hidden_states)
        normed = normalize_v2(encoded, mask).to(encoded.dtype)
        outs = []
        for proj in (self.video_aggregate_embed, self.audio_aggregate_embed):
            outs.append(proj(normed * math.sqrt(proj.out_features / self.gemma_dim)))
        return outs[0], outs[1]
