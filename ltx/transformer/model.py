"""The LTX-2 / LTX-2.3 / LTX-2.5 audio-video diffusion transformer.

Module and parameter names are the official checkpoint names (after the ``model.diffusion_model.`` prefix), so
official single files, ComfyUI's split files, GGUF files and LoRAs map one to one.

The forward returns the **velocity** of each stream; :func:`velocity_to_x0` turns it into the denoised estimate.
The preprocessing builds RoPE tables and timestep modulation only for the tokens it is given, so a contiguous slice
of a stream (with its positions and timesteps) yields exactly the slice of the full sequence's tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from ...ops import resolve_backend
from ..config import TransformerConfig
from ..errors import InputError
from .block import AVTransformerBlock, RunOptions
from .modulation import Modulation, distinct_timesteps
from .perturbations import Perturbations
from .rope import rope_tables
from .stream import StreamInput, StreamState
from .timestep import AdaLayerNormSingle


class CaptionProjection(nn.Module):
    """LTX-2 (19B) only: Linear → GELU(tanh) → Linear from the connector width to the stream width.

    Mirrors ``ltx_core.model.transformer.text_projection.PixArtAlphaTextProjection``.
    """

    def __init__(self, in_features: int, hidden: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_features, hidden)
        self.linear_2 = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Text context ``(B, S, in_features)`` → ``(B, S, hidden)``."""
        return self.linear_2(nn.functional.gelu(self.linear_1(x), approximate="tanh"))


@dataclass(frozen=True)
class _StreamSpec:
    """One stream's geometry and the names of its top-level modules, so video and audio share the code."""

    prefix: str  # "" for video, "audio_" for audio
    heads: int
    dim: int
    max_pos: tuple[int, ...]
    channels: int
    cross_adaln: str  # AV cross-attention scale/shift AdaLN fed with the other stream's sigma
    gate_adaln: str  # AV cross-attention gate AdaLN


class LTXAVTransformer(nn.Module):
    """Audio-video transformer of LTX-2 (``cfg.cross_attention_adaln`` False), LTX-2.3 (True) or LTX-2.5 (2.3 with
    ``cfg.ff_bias`` False and ``cfg.use_keyframes_abs_pos_embedding``: a learned ``keyframes_abs_pos_embedding``
    ``(1, D)`` added after ``patchify_proj`` to the video tokens marked in ``StreamInput.keyframes_mask``).

    Mirrors ``ltx_core.model.transformer.model.LTXModel`` (diffusers:
    ``diffusers.models.transformers.transformer_ltx2.LTX2VideoTransformer3DModel``).

    Raises:
        ConfigError: ``cfg`` fails :meth:`TransformerConfig.validate`.
    """

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        cfg.validate()
        self.config = cfg
        vd, ad, coef = cfg.inner_dim, cfg.audio_inner_dim, cfg.adaln_coefficient

        self.patchify_proj = nn.Linear(cfg.in_channels, vd)
        if cfg.use_keyframes_abs_pos_embedding:
            self.keyframes_abs_pos_embedding = nn.Parameter(torch.empty(1, vd))
        self.adaln_single = AdaLayerNormSingle(vd, coef)
        self.scale_shift_table = nn.Parameter(torch.empty(2, vd))
        self.norm_out = nn.LayerNorm(vd, elementwise_affine=False, eps=cfg.norm_eps)
        self.proj_out = nn.Linear(vd, cfg.out_channels)

        self.audio_patchify_proj = nn.Linear(cfg.audio_in_channels, ad)
        self.audio_adaln_single = AdaLayerNormSingle(ad, coef)
        self.audio_scale_shift_table = nn.Parameter(torch.empty(2, ad))
        self.audio_norm_out = nn.LayerNorm(ad, elementwise_affine=False, eps=cfg.norm_eps)
        self.audio_proj_out = nn.Linear(ad, cfg.audio_out_channels)

        if not cfg.caption_proj_before_connector:
            self.caption_projection = CaptionProjection(cfg.caption_channels, vd)
            self.audio_caption_projection = CaptionProjection(cfg.caption_channels, ad)
        if cfg.cross_attention_adaln:
            self.prompt_adaln_single = AdaLayerNormSingle(vd, 2)
            self.audio_prompt_adaln_single = AdaLayerNormSingle(ad, 2)

        self.av_ca_video_scale_shift_adaln_single = AdaLayerNormSingle(vd, 4)
        self.av_ca_audio_scale_shift_adaln_single = AdaLayerNormSingle(ad, 4)
        self.av_ca_a2v_gate_adaln_single = AdaLayerNormSingle(vd, 1)
        self.av_ca_v2a_gate_adaln_single = AdaLayerNormSingle(ad, 1)

        self.transformer_blocks = nn.ModuleList(AVTransformerBlock(i, cfg) for i in range(cfg.num_layers))

        self._video = _StreamSpec("", cfg.num_attention_heads, vd, cfg.positional_embedding_max_pos, cfg.in_channels,
                                  "av_ca_video_scale_shift_adaln_single", "av_ca_a2v_gate_adaln_single")
        self._audio = _StreamSpec("audio_", cfg.audio_num_attention_heads, ad, cfg.audio_positional_embedding_max_pos,
                                  cfg.audio_in_channels, "av_ca_audio_scale_shift_adaln_single",
                                  "av_ca_v2a_gate_adaln_single")

    @property
    def context_dim(self) -> tuple[int, int]:
        """Width ``(D_video_ctx, D_audio_ctx)`` of the text context each stream expects (after the connectors)."""
        cfg = self.config
        if cfg.caption_proj_before_connector:
            return cfg.inner_dim, cfg.audio_inner_dim
        return cfg.caption_channels, cfg.caption_channels

    # -- preprocessing --------------------------------------------------------------------------------------------
    def _module(self, spec: _StreamSpec, name: str) -> nn.Module | None:
        return getattr(self, spec.prefix + name, None)

    def _check(self, name: str, s: StreamInput, spec: _StreamSpec, ctx_dim: int) -> None:
        if s.latent.ndim != 3 or s.latent.shape[-1] != spec.channels:
            raise InputError(f"{name} latent tokens must be (B, T, {spec.channels}); got {tuple(s.latent.shape)}. "
                             "Patchify latents with rs_ltxv.ltx.tokens first.")
        b, t = s.latent.shape[:2]
        n_axes = len(spec.max_pos)
        if s.positions.ndim != 4 or tuple(s.positions.shape[:3]) != (b, n_axes, t) or s.positions.shape[3] != 2:
            raise InputError(f"{name} positions must be (B, {n_axes}, T, 2) = ({b}, {n_axes}, {t}, 2); "
                             f"got {tuple(s.positions.shape)}.")
        if s.timesteps.numel() != b * t:
            raise InputError(f"{name} timesteps must have one value per token (B, T) = ({b}, {t}); "
                             f"got {tuple(s.timesteps.shape)}.")
        if s.keyframes_mask is not None and (s.keyframes_mask.numel() != b * t or s.keyframes_mask.shape[0] != b):
            raise InputError(f"{name} keyframes_mask must have one value per token (B, T) or (B, T, 1) = ({b}, {t}); "
                             f"got {tuple(s.keyframes_mask.shape)}.")
        if s.context.ndim != 3 or s.context.shape[0] != b or s.context.shape[-1] != ctx_dim:
            raise InputError(f"{name} context must be (B, S, {ctx_dim}) with B = {b}; got {tuple(s.context.shape)}. "
                             "Is the text context from the connectors of this checkpoint?")

    @staticmethod
    def _sigma(s: StreamInput, batch: int) -> torch.Tensor:
        sigma = s.sigma.reshape(-1)
        if sigma.numel() == 1:
            sigma = sigma.expand(batch)
        if sigma.numel() != batch:
            raise InputError(f"sigma must have one value per batch item ({batch}); got {tuple(s.sigma.shape)}.")
        return sigma

    def _prepare(self, s: StreamInput, spec: _StreamSpec, other: StreamInput | None) -> StreamState:
        cfg = self.config
        dtype = s.latent.dtype
        x = self._module(spec, "patchify_proj")(s.latent)
        batch = x.shape[0]
        x = add_keyframe_embedding(x, s.keyframes_mask, self._module(spec, "keyframes_abs_pos_embedding"))
        mult = cfg.timestep_scale_multiplier

        values, index = distinct_timesteps(s.timesteps.reshape(batch, -1))
        mod_rows, emb_rows = self._module(spec, "adaln_single")(values * mult, dtype)

        prompt_ada = None
        prompt_adaln = self._module(spec, "prompt_adaln_single")
        if prompt_adaln is not None:
            prompt_ada, _ = prompt_adaln(self._sigma(s, batch) * mult, dtype)
            prompt_ada = prompt_ada.unsqueeze(1)

        context = s.context
        projection = self._module(spec, "caption_projection")
        if projection is not None:
            context = projection(context)
        context_bias = s.context_mask
        if context_bias is not None and not torch.is_floating_point(context_bias):
            context_bias = (context_bias - 1).to(dtype).reshape(batch, 1, -1, context_bias.shape[-1])
            context_bias = context_bias * torch.finfo(dtype).max

        rope = rope_tables(s.positions, dim=spec.dim, heads=spec.heads, max_pos=spec.max_pos,
                           theta=cfg.positional_embedding_theta, layout=cfg.rope_layout,
                           double_precision=cfg.double_precision_rope, dtype=dtype)

        cross_rope = cross_ada = cross_gate = None
        if other is not None:
            cross_max = max(cfg.positional_embedding_max_pos[0], cfg.audio_positional_embedding_max_pos[0])
            cross_rope = rope_tables(s.positions[:, 0:1], dim=cfg.audio_cross_attention_dim, heads=spec.heads,
                                     max_pos=(cross_max,), theta=cfg.positional_embedding_theta,
                                     layout=cfg.rope_layout, double_precision=cfg.double_precision_rope, dtype=dtype)
            cross_t = self._sigma(other, batch) * mult
            cross_ada, _ = getattr(self, spec.cross_adaln)(cross_t, dtype)
            gate_factor = cfg.av_ca_timestep_scale_multiplier / mult
            cross_gate, _ = getattr(self, spec.gate_adaln)(cross_t * gate_factor, dtype)
            cross_ada, cross_gate = cross_ada.unsqueeze(1), cross_gate.unsqueeze(1)

        return StreamState(
            x=x,
            context=context.reshape(batch, -1, x.shape[-1]),
            context_bias=context_bias,
            ada=Modulation(mod_rows, index),
            out_emb=Modulation(emb_rows, index),
            rope=rope,
            cross_rope=cross_rope,
            cross_ada=cross_ada,
            cross_gate=cross_gate,
            prompt_ada=prompt_ada,
            self_bias=attention_bias(s.attention_mask, dtype),
            enabled=s.enabled,
        )

    def check_inputs(self, video: StreamInput | None, audio: StreamInput | None) -> None:
        """Check both streams' shapes against this model (what :meth:`prepare` checks first).

        Raises:
            InputError: both streams are None, or a stream's latent ``(B, T, C)``, positions ``(B, n_axes, T, 2)``,
                timesteps ``(B, T)`` or context ``(B, S, D_ctx)`` has the wrong shape.
        """
        if video is None and audio is None:
            raise InputError("Give at least one of video or audio to the transformer.")
        v_ctx, a_ctx = self.context_dim
        if video is not None:
            self._check("video", video, self._video, v_ctx)
        if audio is not None:
            self._check("audio", audio, self._audio, a_ctx)

    def prepare(
        self, video: StreamInput | None, audio: StreamInput | None
    ) -> tuple[StreamState | None, StreamState | None]:
        """Project tokens and build RoPE / modulation for exactly the given tokens of each stream.

        Returns a :class:`StreamState` per given stream (``x`` ``(B, T, D)``), None for a missing one. Mirrors
        ``ltx_core.model.transformer.transformer_args.MultiModalTransformerArgsPreprocessor.prepare``.

        Raises:
            InputError: both streams are None, or a stream's latent ``(B, T, C)``, positions ``(B, n_axes, T, 2)``,
                timesteps ``(B, T)``, context ``(B, S, D_ctx)`` or sigma ``(B,)`` has the wrong shape.
        """
        self.check_inputs(video, audio)
        v_state = self._prepare(video, self._video, audio) if video is not None else None
        a_state = self._prepare(audio, self._audio, video) if audio is not None else None
        return v_state, a_state

    # -- output ---------------------------------------------------------------------------------------------------
    def output(self, video: StreamState | None, audio: StreamState | None
               ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Final norm, modulation and projection of each stream's state after the blocks: video
        ``(B, T_v, out_channels)``, audio ``(B, T_a, audio_out_channels)`` velocities (None for a missing stream).

        Mirrors ``ltx_core.model.transformer.model.LTXModel._process_output``.
        """
        return (None if video is None else self._output(video, self._video),
                None if audio is None else self._output(audio, self._audio))

    def _output(self, s: StreamState, spec: _StreamSpec) -> torch.Tensor:
        table = self._module(spec, "scale_shift_table")
        emb = s.out_emb.per_token()
        table = table.to(device=emb.device, dtype=emb.dtype)
        shift, scale = table[0] + emb, table[1] + emb
        x = self._module(spec, "norm_out")(s.x) * (1 + scale) + shift
        return self._module(spec, "proj_out")(x)

    def forward(
        self,
        video: StreamInput | None,
        audio: StreamInput | None = None,
        perturbations: Perturbations | None = None,
        options: RunOptions | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Velocity of each given stream: video ``(B, T_v, out_channels)``, audio ``(B, T_a, audio_out_channels)``.

        Mirrors ``ltx_core.model.transformer.model.LTXModel.forward`` (which returns velocities too).

        Args:
            video, audio: stream inputs; either may be None (video-only or audio-only runs).
            perturbations: per-batch-item attention skips for guidance (STG, modality isolation).
            options: attention backend and feed-forward chunking for this call.

        Raises:
            InputError: as :meth:`prepare`.
            AttentionBackendError: ``options.attention_mode`` is unknown or not installed.
        """
        v, a = self.prepare(video, audio)
        options = options or RunOptions()
        if isinstance(options.attention_mode, str):
            device = (v or a).x.device
            options = replace(options, attention_mode=resolve_backend(options.attention_mode, device))
        for block in self.transformer_blocks:
            v, a = block(v, a, perturbations, options)
        return self.output(v, a)


def add_keyframe_embedding(x: torch.Tensor, marker: torch.Tensor | None, embedding: torch.Tensor | None
                           ) -> torch.Tensor:
    """``x`` ``(B, T, D)`` plus ``embedding`` ``(1, D)`` on the tokens where ``marker`` ``(B, T)`` / ``(B, T, 1)`` is
    non-zero (``x + [marker > 0]·embedding`` in ``x``'s dtype); ``x`` unchanged when either is None.

    Mirrors ``ltx_core.model.transformer.transformer_args.apply_keyframes_absolute_embedding`` (ltx-core 1.2.0).
    """
    if marker is None or embedding is None:
        return x
    on = (marker.reshape(x.shape[0], -1, 1) > 0).to(device=x.device, dtype=x.dtype)
    return x + on * embedding.to(device=x.device, dtype=x.dtype)


def attention_bias(weights: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """``(B, T, T)`` attention weights in ``[0, 1]`` → ``(B, 1, T, T)`` additive bias: ``log(w)``, and the dtype's
    minimum where ``w ≤ 0`` (fully masked). None stays None.

    Mirrors ``ltx_core.model.transformer.transformer_args.TransformerArgsPreprocessor._prepare_self_attention_mask``.
    """
    if weights is None:
        return None
    finfo = torch.finfo(dtype)
    # one temporary of the weights' size (the sequence-parallel ranks each build the full (T, T) bias)
    bias = weights.clamp(min=finfo.tiny).log_().to(dtype)
    bias.masked_fill_(~(weights > 0), finfo.min)
    return bias.unsqueeze(1)


def velocity_to_x0(latent: torch.Tensor, velocity: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """Denoised estimate ``x0 = x − v·t`` ``(B, T, C)``, computed in float32 and returned in ``latent``'s dtype.

    Mirrors ``ltx_core.utils.to_denoised`` (as used by ``ltx_core.model.transformer.model.X0Model``).

    Args:
        latent: ``(B, T, C)`` noisy tokens; velocity: ``(B, T, C)``; timesteps: per-token σ ``(B, T)``/``(B, T, 1)``
            or a scalar σ.
    """
    t = timesteps.float()
    if t.ndim == 2:
        t = t.unsqueeze(-1)
    return (latent.float() - velocity.float() * t).to(latent.dtype)
