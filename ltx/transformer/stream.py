"""Inputs of one modality stream and the per-forward state the blocks consume (ltx-core: ``Modality`` and
``TransformerArgs``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .modulation import Modulation
from .rope import RopeTables


@dataclass(frozen=True)
class StreamInput:
    """What the caller gives the transformer for one modality (video or audio).

    Attributes:
        latent: ``(B, T, C)`` patchified latent tokens (video: ``C = 128`` latent channels; audio: 8 ch × 16 mel).
        sigma: ``(B,)`` the step's noise level σ (drives the other stream's AV cross-attention and, on LTX-2.3, the
            prompt AdaLN).
        timesteps: ``(B, T)`` (or ``(B, T, 1)``) per-token σ, i.e. ``denoise_mask · σ``.
        positions: ``(B, n_axes, T, 2)`` ``[start, end)`` bounds; video axes (seconds, pixels, pixels), audio
            (seconds,). See :mod:`rs_ltxv.ltx.tokens`.
        context: ``(B, S, D_ctx)`` text context from the connectors.
        context_mask: optional ``(B, S)`` 0/1 mask (or an additive float mask) over the context.
        attention_mask: optional ``(B, T, T)`` self-attention weights in ``[0, 1]`` (guide tokens with an attention
            strength); converted to a log-space additive bias.
        enabled: a disabled stream is not updated by its own blocks but still feeds the other stream's
            cross-attention (frozen audio in audio-to-video).
        keyframes_mask: optional ``(B, T)`` or ``(B, T, 1)`` per-token marker, non-zero on tokens whose latent
            encodes a single pixel frame (the first latent frame, generated keyframe slots); those tokens get the
            LTX-2.5 keyframe absolute position embedding. None: no token marked; models without the embedding (2.0,
            2.3) and the audio stream ignore it.

    Mirrors ``ltx_core.model.transformer.modality.Modality``.
    """

    latent: torch.Tensor
    sigma: torch.Tensor
    timesteps: torch.Tensor
    positions: torch.Tensor
    context: torch.Tensor
    context_mask: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    enabled: bool = True
    keyframes_mask: torch.Tensor | None = None

    def slice_tokens(self, start: int, stop: int) -> StreamInput:
        """The same stream restricted to tokens ``[start, stop)`` (attention mask rows only; the keyframe marker
        too)."""
        ts = self.timesteps.reshape(self.timesteps.shape[0], -1)
        mask = None if self.attention_mask is None else self.attention_mask[:, start:stop]
        marker = self.keyframes_mask
        if marker is not None:
            marker = marker.reshape(marker.shape[0], -1)[:, start:stop]
        return replace(
            self,
            latent=self.latent[:, start:stop],
            timesteps=ts[:, start:stop],
            positions=self.positions[:, :, start:stop],
            attention_mask=mask,
            keyframes_mask=marker,
        )


@dataclass(frozen=True)
class StreamState:
    """Per-forward state of one stream, built once by the model's preprocessing and read by every block.

    Attributes:
        x: ``(B, T, D)`` hidden tokens.
        context: ``(B, S, D)`` projected text context; ``context_bias`` ``(B, 1, 1, S)`` additive or None.
        ada: block AdaLN modulation rows (``coef·D``); ``out_emb``: embedded timestep rows for the output layer.
        rope: self-attention RoPE tables; ``cross_rope``: temporal-only RoPE for AV cross-attention.
        cross_ada ``(B, 1, 4D)`` / cross_gate ``(B, 1, D)``: AV cross-attention modulation from the other stream's σ.
        prompt_ada: ``(B, 1, 2D)`` LTX-2.3 context modulation from this stream's σ.
        self_bias: ``(B, 1, T, T)`` additive self-attention bias or None.

    Mirrors ``ltx_core.model.transformer.transformer_args.TransformerArgs``.
    """

    x: torch.Tensor
    context: torch.Tensor
    context_bias: torch.Tensor | None
    ada: Modulation
    out_emb: Modulation
    rope: RopeTables
    cross_rope: RopeTables | None
    cross_ada: torch.Tensor | None
    cross_gate: torch.Tensor | None
    prompt_ada: torch.Tensor | None
    self_bias: torch.Tensor | None
    enabled: bool
