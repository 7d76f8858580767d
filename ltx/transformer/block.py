"""One audio-video transformer block of LTX-2 / LTX-2.3.

Order inside a block (as ``ltx_core.model.transformer.transformer.BasicAVTransformerBlock.forward``): video
self-attention → video text cross-attention → audio self-attention → audio text cross-attention → audio-to-video
then video-to-audio cross-attention (both from the normalised states before either update) → video feed-forward →
audio feed-forward. Every sub-layer is AdaLN-modulated (``rms_norm(x)·(1 + scale) + shift``, output × gate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn

from ..config import TransformerConfig
from .attention import Attention, AttentionKind
from .feed_forward import FeedForward
from .modulation import Modulation
from .perturbations import Perturbations, SkipKind
from .stream import StreamState


@dataclass(frozen=True)
class RunOptions:
    """Per-call execution choices that do not change the math.

    The names are the RS LTXV Generate / Extend inputs' (``attention_mode``, ``ffn_chunks``), used unchanged by
    :class:`~..pipeline.request.Request` and the CLI (``--attention-mode``, ``--ffn-chunks``).

    Attributes:
        attention_mode: an attention backend of :mod:`rs_ltxv.ops.attention` — "sdpa" (default), "sage", "flash",
            "auto" — or a callable ``(q, k, v, mask) -> out`` over ``(B, H, T, D)`` tensors (e.g. a sequence-parallel
            wrapper).
        ffn_chunks: split the feed-forward (``ff`` / ``audio_ff``) over this many token chunks (lower peak memory,
            same result).
        kernels: per-:class:`AttentionKind` kernel overrides ``(kind, (q, k, v, mask) -> out)`` used instead of
            ``attention_mode`` for that kind of attention (the sequence-parallel kernels of
            :mod:`rs_ltxv.distributed`).

    ltx-core has no such object: it fixes the kernel per model
    (``ltx_core.model.transformer.attention.AttentionFunction``) and runs the feed-forward unchunked.
    """

    attention_mode: str | Callable = "sdpa"
    ffn_chunks: int = 1
    kernels: tuple[tuple[AttentionKind, Callable], ...] = ()

    def kernel(self, kind: AttentionKind) -> str | Callable:
        """The kernel for ``kind``: its override from ``kernels``, else ``attention_mode``."""
        for k, fn in self.kernels:
            if k is kind:
                return fn
        return self.attention_mode


def _rms(x: torch.Tensor, eps: float) -> torch.Tensor:
    return nn.functional.rms_norm(x, (x.shape[-1],), eps=eps)


class AVTransformerBlock(nn.Module):
    """Block ``index`` of the transformer: updates the video ``(B, T_v, D_v)`` and audio ``(B, T_a, D_a)`` tokens.

    Checkpoint keys (video / audio): ``attn1``/``audio_attn1``, ``attn2``/``audio_attn2``, ``ff``/``audio_ff``,
    ``scale_shift_table``/``audio_scale_shift_table``, ``audio_to_video_attn``, ``video_to_audio_attn``,
    ``scale_shift_table_a2v_ca_{video,audio}``, and on LTX-2.3 ``prompt_scale_shift_table``/``audio_prompt_…``.
    LTX-2.5 (``cfg.ff_bias`` False): ``ff`` without biases; ``audio_ff`` keeps them.

    Mirrors ``ltx_core.model.transformer.transformer.BasicAVTransformerBlock`` (diffusers:
    ``diffusers.models.transformers.transformer_ltx2.LTX2VideoTransformerBlock``).
    """

    def __init__(self, index: int, cfg: TransformerConfig) -> None:
        super().__init__()
        self.index = index
        self.eps = cfg.norm_eps
        self.cross_attention_adaln = cfg.cross_attention_adaln
        gated, eps = cfg.apply_gated_attention, cfg.norm_eps
        vd, ad = cfg.inner_dim, cfg.audio_inner_dim
        vh, vhd = cfg.num_attention_heads, cfg.attention_head_dim
        ah, ahd = cfg.audio_num_attention_heads, cfg.audio_attention_head_dim
        coef = cfg.adaln_coefficient

        self.attn1 = Attention(vd, vh, vhd, norm_eps=eps, gated=gated)
        self.attn2 = Attention(vd, vh, vhd, context_dim=cfg.cross_attention_dim, norm_eps=eps, gated=gated)
        self.ff = FeedForward(vd, bias=cfg.ff_bias)
        self.scale_shift_table = nn.Parameter(torch.empty(coef, vd))

        self.audio_attn1 = Attention(ad, ah, ahd, norm_eps=eps, gated=gated)
        self.audio_attn2 = Attention(ad, ah, ahd, context_dim=cfg.audio_cross_attention_dim, norm_eps=eps, gated=gated)
        self.audio_ff = FeedForward(ad)
        self.audio_scale_shift_table = nn.Parameter(torch.empty(coef, ad))

        # Q video / KV audio and Q audio / KV video, both with the audio head layout.
        self.audio_to_video_attn = Attention(vd, ah, ahd, context_dim=ad, norm_eps=eps, gated=gated)
        self.video_to_audio_attn = Attention(ad, ah, ahd, context_dim=vd, norm_eps=eps, gated=gated)
        # rows 0-1: a2v scale/shift, rows 2-3: v2a scale/shift, row 4: gate
        self.scale_shift_table_a2v_ca_audio = nn.Parameter(torch.empty(5, ad))
        self.scale_shift_table_a2v_ca_video = nn.Parameter(torch.empty(5, vd))

        if cfg.cross_attention_adaln:
            self.prompt_scale_shift_table = nn.Parameter(torch.empty(2, vd))
            self.audio_prompt_scale_shift_table = nn.Parameter(torch.empty(2, ad))

    # -- sub-layers -----------------------------------------------------------------------------------------------
    def _self_attention(self, s: StreamState, x: torch.Tensor, attn: Attention, table: torch.Tensor,
                        kind: SkipKind, ptb: Perturbations | None, opts: RunOptions) -> torch.Tensor:
        shift, scale, gate = s.ada.values(table, 0, 3)
        normed = _rms(x, self.eps) * (1 + scale) + shift
        skip_all = ptb is not None and ptb.all(kind, self.index)
        keep = None if ptb is None or skip_all else ptb.keep_mask(kind, self.index, x)
        attn_kind = AttentionKind.VIDEO_SELF if kind is SkipKind.VIDEO_SELF_ATTN else AttentionKind.AUDIO_SELF
        out = attn(normed, mask=s.self_bias, pe=s.rope, skip=skip_all, keep=keep, backend=opts.kernel(attn_kind))
        return x + out * gate

    def _text_attention(self, s: StreamState, x: torch.Tensor, attn: Attention, table: torch.Tensor,
                        prompt_table: torch.Tensor | None, opts: RunOptions, kind: AttentionKind) -> torch.Tensor:
        if not self.cross_attention_adaln:
            return x + attn(_rms(x, self.eps), s.context, mask=s.context_bias, backend=opts.kernel(kind))
        shift_q, scale_q, gate = s.ada.values(table, 6, 9)
        shift_kv, scale_kv = Modulation(s.prompt_ada.flatten(1), None).values(prompt_table, 0, 2)
        query = _rms(x, self.eps) * (1 + scale_q) + shift_q
        context = s.context * (1 + scale_kv) + shift_kv
        return x + attn(query, context, mask=s.context_bias, backend=opts.kernel(kind)) * gate

    def _feed_forward(self, s: StreamState, x: torch.Tensor, ff: FeedForward, table: torch.Tensor,
                      opts: RunOptions) -> torch.Tensor:
        shift, scale, gate = s.ada.values(table, 3, 6)
        return x + ff(_rms(x, self.eps) * (1 + scale) + shift, chunks=opts.ffn_chunks) * gate

    @staticmethod
    def _cross_values(s: StreamState, table: torch.Tensor, rows: slice) -> tuple[torch.Tensor, ...]:
        scale, shift = Modulation(s.cross_ada.flatten(1), None).values(table[:4], rows.start, rows.stop)
        (gate,) = Modulation(s.cross_gate.flatten(1), None).values(table[4:], 0, 1)
        return scale, shift, gate

    # -- block ----------------------------------------------------------------------------------------------------
    def forward(
        self,
        video: StreamState | None,
        audio: StreamState | None,
        perturbations: Perturbations | None = None,
        options: RunOptions | None = None,
    ) -> tuple[StreamState | None, StreamState | None]:
        """Run the block on both streams; returns them with ``x`` updated (shapes unchanged: ``(B, T, D)``).

        A stream that is None, disabled or empty is not updated by its own sub-layers; a present stream still feeds
        the other's audio-video cross-attention.

        Args:
            video, audio: per-forward states from :meth:`LTXAVTransformer.prepare`.
            perturbations: per-batch-item attention skips (STG, modality isolation); None = none.
            options: attention backend (already resolved) and feed-forward chunking.
        """
        opts = options or RunOptions()
        ptb = perturbations
        vx = video.x if video is not None else None
        ax = audio.x if audio is not None else None
        run_v = video is not None and video.enabled and vx.numel() > 0
        run_a = audio is not None and audio.enabled and ax.numel() > 0
        run_a2v = run_v and audio is not None and ax.numel() > 0
        run_v2a = run_a and video is not None and vx.numel() > 0

        if run_v:
            vx = self._self_attention(video, vx, self.attn1, self.scale_shift_table, SkipKind.VIDEO_SELF_ATTN,
                                      ptb, opts)
            vx = self._text_attention(video, vx, self.attn2, self.scale_shift_table,
                                      getattr(self, "prompt_scale_shift_table", None), opts, AttentionKind.VIDEO_TEXT)
        if run_a:
            ax = self._self_attention(audio, ax, self.audio_attn1, self.audio_scale_shift_table,
                                      SkipKind.AUDIO_SELF_ATTN, ptb, opts)
            ax = self._text_attention(audio, ax, self.audio_attn2, self.audio_scale_shift_table,
                                      getattr(self, "audio_prompt_scale_shift_table", None), opts,
                                      AttentionKind.AUDIO_TEXT)

        if run_a2v or run_v2a:
            vn, an = _rms(vx, self.eps), _rms(ax, self.eps)
            if run_a2v and not (ptb is not None and ptb.all(SkipKind.A2V_CROSS_ATTN, self.index)):
                v_scale, v_shift, v_gate = self._cross_values(video, self.scale_shift_table_a2v_ca_video, slice(0, 2))
                a_scale, a_shift, _ = self._cross_values(audio, self.scale_shift_table_a2v_ca_audio, slice(0, 2))
                out = self.audio_to_video_attn(vn * (1 + v_scale) + v_shift, an * (1 + a_scale) + a_shift,
                                               pe=video.cross_rope, k_pe=audio.cross_rope,
                                               backend=opts.kernel(AttentionKind.AUDIO_TO_VIDEO)) * v_gate
                keep = None if ptb is None else ptb.keep_mask(SkipKind.A2V_CROSS_ATTN, self.index, vx)
                vx = vx + (out if keep is None else out * keep)
            if run_v2a and not (ptb is not None and ptb.all(SkipKind.V2A_CROSS_ATTN, self.index)):
                a_scale, a_shift, a_gate = self._cross_values(audio, self.scale_shift_table_a2v_ca_audio, slice(2, 4))
                v_scale, v_shift, _ = self._cross_values(video, self.scale_shift_table_a2v_ca_video, slice(2, 4))
                out = self.video_to_audio_attn(an * (1 + a_scale) + a_shift, vn * (1 + v_scale) + v_shift,
                                               pe=audio.cross_rope, k_pe=video.cross_rope,
                                               backend=opts.kernel(AttentionKind.VIDEO_TO_AUDIO)) * a_gate
                keep = None if ptb is None else ptb.keep_mask(SkipKind.V2A_CROSS_ATTN, self.index, ax)
                ax = ax + (out if keep is None else out * keep)
            del vn, an

        if run_v:
            vx = self._feed_forward(video, vx, self.ff, self.scale_shift_table, opts)
        if run_a:
            ax = self._feed_forward(audio, ax, self.audio_ff, self.audio_scale_shift_table, opts)
        new_video = replace(video, x=vx) if video is not None else None
        return new_video, (replace(audio, x=ax) if audio is not None else None)
