"""Duration head (LTX-2.5): the natural length of the shot a prompt describes, from the text connectors' outputs.

The head reads the video context ``(B, S_v, D_v)`` and / or the audio context ``(B, S_a, D_a)`` (the connector
outputs, padding already replaced by registers, so no mask), projects each to ``pooler_hidden_dim``, tags it with a
learnt modality embedding, pools the joined tokens with ``num_queries`` learnt queries (one multi-head
cross-attention) and turns the pooled vector into a log-duration with a tanh-GELU MLP; :meth:`DurationHead.forward`
returns ``exp`` of it, in seconds.

:func:`seconds_to_num_frames` turns seconds into pixel frames on the video VAE's causal grid (``8k + 1``):
``round(seconds · fps)`` clamped to ``[max(1, round(min_seconds · fps)), round(max_seconds · fps)]`` (default
1 s – 20 s), floored onto the grid, moved one grid step up when flooring fell under the minimum — the rule of
``diffusers.pipelines.ltx2.duration_head.LTX2DurationHead.predict_num_frames``. ltx-pipelines 1.2.0
(``ltx_pipelines.utils.helpers.seconds_to_clamped_num_frames``) gives the same count except in two corners: bounds
that hold no grid point (e.g. ``[1.0 s, 1.02 s]`` at 24 fps), where it returns a count off the grid and diffusers and
we the nearest grid point, and a minimum under half a frame with a prediction as short, where it raises and we give 1.

Weights: ``duration_head.*`` tensors, in their own file (``model_patches/ltx-2.5-duration-head-bf16.safetensors``)
or next to a transformer; the module names here are those names without the prefix (the pooler keeps PyTorch's
``nn.MultiheadAttention`` layout ``cross_attn.in_proj_weight`` / ``in_proj_bias`` / ``out_proj``). Loading:
:mod:`rs_ltxv.ltx.loading.duration_head`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError, InputError, NonFiniteError

log = logging.getLogger(__name__)

#: the video VAE's temporal compression: pixel frames = 8k + 1
TEMPORAL_COMPRESSION = 8
#: default clamp of the prediction, seconds (``ltx_pipelines.utils.types.AutoDuration``)
MIN_SECONDS = 1.0
MAX_SECONDS = 20.0


@dataclass(frozen=True)
class DurationHeadConfig:
    """Widths of the duration head. The two input widths are the transformer's ``cross_attention_dim`` /
    ``audio_cross_attention_dim`` (the connector outputs); the others are the file's ``config["duration_head"]``.
    Defaults are the released model's.

    Mirrors ``ltx_core.duration_head.model_configurator.DurationHeadConfigurator`` (diffusers:
    ``diffusers.pipelines.ltx2.duration_head.LTX2DurationHead``'s config, ``mlp_hidden`` there ``mlp_hidden_dim``).

    Raises:
        ConfigError: a width under 1, or ``pooler_hidden_dim`` not a multiple of ``num_pooler_heads``.
    """

    video_cross_attention_dim: int = 4096
    audio_cross_attention_dim: int = 2048
    pooler_hidden_dim: int = 256
    num_queries: int = 1
    num_pooler_heads: int = 4
    mlp_hidden: int = 256

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"Duration head config: {f.name} must be a positive integer, got {value!r}.")
        if self.pooler_hidden_dim % self.num_pooler_heads:
            raise ConfigError(f"Duration head config: pooler_hidden_dim {self.pooler_hidden_dim} is not a multiple "
                              f"of num_pooler_heads {self.num_pooler_heads}.")


class PackedCrossAttention(nn.Module):
    """Multi-head attention with PyTorch's packed ``in_proj_weight`` ``(3D, D)`` / ``in_proj_bias`` ``(3D,)`` (q, k,
    v rows in that order) and ``out_proj``, no mask, no dropout. Mirrors ``torch.nn.MultiheadAttention``
    (``batch_first=True``) as ``ltx_core.duration_head.duration_head.AttentionPooler.cross_attn`` uses it.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim))
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, query: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``query`` ``(B, Q, D)`` attends to ``tokens`` ``(B, S, D)`` → ``(B, Q, D)``."""
        wq, wk, wv = self.in_proj_weight.chunk(3)
        bq, bk, bv = self.in_proj_bias.chunk(3)

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

        q, k, v = heads(F.linear(query, wq, bq)), heads(F.linear(tokens, wk, bk)), heads(F.linear(tokens, wv, bv))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.transpose(1, 2).flatten(2))


class DurationAttentionPooler(nn.Module):
    """``num_queries`` learnt queries cross-attend to the tokens: ``(B, S, D)`` → ``(B, num_queries, D)``.

    Mirrors ``ltx_core.duration_head.duration_head.AttentionPooler`` (diffusers:
    ``diffusers.pipelines.ltx2.duration_head.LTX2DurationAttentionPooler``).
    """

    def __init__(self, dim: int, num_queries: int, heads: int) -> None:
        super().__init__()
        self.query_tokens = nn.Parameter(torch.empty(num_queries, dim))
        self.cross_attn = PackedCrossAttention(dim, heads)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, S, D)`` → ``(B, num_queries, D)``."""
        queries = self.query_tokens.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        return self.cross_attn(queries, tokens)


class DurationHead(nn.Module):
    """Connector outputs → predicted shot duration in seconds, ``(B,)`` (see the module docstring).

    Mirrors ``ltx_core.duration_head.duration_head.DurationHead`` (diffusers:
    ``diffusers.pipelines.ltx2.duration_head.LTX2DurationHead``).
    """

    def __init__(self, cfg: DurationHeadConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dim = cfg.pooler_hidden_dim
        self.video_input_proj = nn.Linear(cfg.video_cross_attention_dim, dim)
        self.video_modality_emb = nn.Parameter(torch.empty(dim))
        self.audio_input_proj = nn.Linear(cfg.audio_cross_attention_dim, dim)
        self.audio_modality_emb = nn.Parameter(torch.empty(dim))
        self.attention_pooler = DurationAttentionPooler(dim, cfg.num_queries, cfg.num_pooler_heads)
        self.mlp_hidden = nn.Linear(dim * cfg.num_queries, cfg.mlp_hidden)
        self.mlp_out = nn.Linear(cfg.mlp_hidden, 1)

    def _tokens(self, context: torch.Tensor, width: int, proj: nn.Linear, emb: torch.Tensor,
                what: str) -> torch.Tensor:
        if context.ndim != 3 or context.shape[-1] != width:
            raise InputError(f"The duration head expects a {what} context of shape (B, S, {width}), got "
                             f"{tuple(context.shape)}. Pass the text connectors' {what} output of this model.")
        return proj(context.to(device=emb.device, dtype=emb.dtype)) + emb

    def forward(self, video_context: torch.Tensor | None = None,
                audio_context: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted duration in seconds, ``(B,)`` float, from the video context ``(B, S_v, D_v)`` and / or the audio
        context ``(B, S_a, D_a)`` (either may be None, not both). Inputs are cast to the head's dtype and device.

        Raises:
            InputError: both contexts are None, a context of the wrong width or rank, or different batch sizes.
        """
        cfg = self.cfg
        groups = []
        if video_context is not None:
            groups.append(self._tokens(video_context, cfg.video_cross_attention_dim, self.video_input_proj,
                                       self.video_modality_emb, "video"))
        if audio_context is not None:
            groups.append(self._tokens(audio_context, cfg.audio_cross_attention_dim, self.audio_input_proj,
                                       self.audio_modality_emb, "audio"))
        if not groups:
            raise InputError("The duration head needs the video context, the audio context or both; got neither.")
        if len({g.shape[0] for g in groups}) > 1:
            raise InputError(f"The duration head's video and audio contexts have different batch sizes "
                             f"({groups[0].shape[0]} and {groups[1].shape[0]}).")
        pooled = self.attention_pooler(torch.cat(groups, dim=1)).flatten(1)
        hidden = F.gelu(self.mlp_hidden(pooled), approximate="tanh")
        return self.mlp_out(hidden).squeeze(-1).exp()


def _check_range(frame_rate: float, min_seconds: float, max_seconds: float, temporal_compression: int) -> None:
    if not (math.isfinite(frame_rate) and frame_rate > 0):
        raise InputError(f"frame_rate must be a positive number of frames per second, got {frame_rate}.")
    if not (math.isfinite(min_seconds) and math.isfinite(max_seconds) and 0 <= min_seconds <= max_seconds):
        raise InputError(f"The duration range must satisfy 0 <= min_seconds <= max_seconds, got [{min_seconds}, "
                         f"{max_seconds}] seconds.")
    if isinstance(temporal_compression, bool) or not isinstance(temporal_compression, int) or temporal_compression < 1:
        raise InputError(f"temporal_compression must be a positive integer, got {temporal_compression!r}.")


def seconds_to_num_frames(seconds: float, *, frame_rate: float, min_seconds: float = MIN_SECONDS,
                          max_seconds: float = MAX_SECONDS, temporal_compression: int = TEMPORAL_COMPRESSION) -> int:
    """Pixel frames ``k · temporal_compression + 1`` for a duration of ``seconds`` at ``frame_rate`` fps, clamped to
    ``[min_seconds, max_seconds]`` first (module docstring; ``+inf`` counts as over the maximum).

    Mirrors ``diffusers.pipelines.ltx2.duration_head.LTX2DurationHead.predict_num_frames`` after its forward
    (ltx-pipelines 1.2.0: ``ltx_pipelines.utils.helpers.seconds_to_clamped_num_frames``).

    Raises:
        InputError: ``frame_rate`` not positive, a range that is not ``0 <= min_seconds <= max_seconds``, or a
            ``temporal_compression`` under 1.
        NonFiniteError: ``seconds`` is NaN.
    """
    _check_range(frame_rate, min_seconds, max_seconds, temporal_compression)
    if math.isnan(seconds):
        raise NonFiniteError("The duration head predicted NaN seconds; load it in float32 or pass a frame count.")
    step = temporal_compression
    min_frames = max(1, round(min_seconds * frame_rate))
    max_frames = round(max_seconds * frame_rate)
    raw = round(seconds * frame_rate) if math.isfinite(seconds * frame_rate) else max_frames
    clamped = max(min_frames, min(raw, max_frames))
    frames = (clamped - 1) // step * step + 1
    if frames < min_frames:
        up = frames + step
        if up <= max_frames or abs(up - clamped) < abs(frames - clamped):
            frames = up
        if up > max_frames:
            log.warning("Duration bounds [%.2f s, %.2f s] at %.2f fps hold no frame count of the form k * %d + 1; "
                        "using the nearest, %d frames.", min_seconds, max_seconds, frame_rate, step, frames)
    return frames


@dataclass(frozen=True)
class DurationPrediction:
    """What :func:`predict_duration` found: the head's raw ``seconds``, the pixel ``num_frames`` chosen from them and
    whether the prediction was outside ``[min_seconds, max_seconds]`` (``clamped``)."""

    seconds: float
    num_frames: int
    clamped: bool


@torch.no_grad()
def predict_duration(head: DurationHead, video_context: torch.Tensor | None, audio_context: torch.Tensor | None,
                     *, frame_rate: float, min_seconds: float = MIN_SECONDS, max_seconds: float = MAX_SECONDS,
                     temporal_compression: int = TEMPORAL_COMPRESSION) -> DurationPrediction:
    """The duration head's prediction for one prompt: contexts ``(1, S, D_v)`` / ``(1, S, D_a)`` (the positive
    prompt's connector outputs; either may be None, not both) → :class:`DurationPrediction` (frames from
    :func:`seconds_to_num_frames`). Logs the result, with a warning when it was clamped.

    Mirrors ``ltx_pipelines.utils.blocks.DurationPredictor.__call__`` (diffusers:
    ``diffusers.pipelines.ltx2.duration_head.LTX2DurationHead.predict_num_frames``).

    Raises:
        InputError: a batch other than 1 (one frame count cannot serve several prompts), see also
            :meth:`DurationHead.forward` and :func:`seconds_to_num_frames`.
        NonFiniteError: the prediction is NaN.
    """
    _check_range(frame_rate, min_seconds, max_seconds, temporal_compression)
    batch = {c.shape[0] for c in (video_context, audio_context) if c is not None and c.ndim > 0}
    if batch and batch != {1}:
        raise InputError(f"Predicting the duration needs the contexts of one prompt (batch 1), got batch "
                         f"{sorted(batch)}. Predict one prompt at a time, or give the frame count.")
    seconds = float(head(video_context, audio_context).float().item())
    frames = seconds_to_num_frames(seconds, frame_rate=frame_rate, min_seconds=min_seconds,
                                   max_seconds=max_seconds, temporal_compression=temporal_compression)
    clamped = not min_seconds <= seconds <= max_seconds
    if clamped:
        log.warning("Duration prediction clamped: %.2f s is outside [%.2f s, %.2f s]; using %d frames (%.2f s at "
                    "%.2f fps).", seconds, min_seconds, max_seconds, frames, frames / frame_rate, frame_rate)
    else:
        log.info("Predicted duration %.2f s: %d frames at %.2f fps.", seconds, frames, frame_rate)
    return DurationPrediction(seconds, frames, clamped)


def predict_num_frames(head: DurationHead, video_context: torch.Tensor | None, audio_context: torch.Tensor | None,
                       *, frame_rate: float, min_seconds: float = MIN_SECONDS, max_seconds: float = MAX_SECONDS,
                       temporal_compression: int = TEMPORAL_COMPRESSION) -> int:
    """Pixel frames (``8k + 1``, within ``[min_seconds, max_seconds]`` at ``frame_rate``, default 1–20 s) for the
    prompt whose connector outputs are ``video_context`` ``(1, S, D_v)`` / ``audio_context`` ``(1, S, D_a)``:
    :func:`predict_duration`'s ``num_frames``.

    Mirrors ``diffusers.pipelines.ltx2.duration_head.LTX2DurationHead.predict_num_frames``.

    Raises:
        InputError: as :func:`predict_duration`.
        NonFiniteError: the prediction is NaN.
    """
    return predict_duration(head, video_context, audio_context, frame_rate=frame_rate, min_seconds=min_seconds,
                            max_seconds=max_seconds, temporal_compression=temporal_compression).num_frames
