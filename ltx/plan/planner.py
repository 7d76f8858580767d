"""The memory planner: peak device memory per stage of a generation, and the settings that make it fit a budget.

Stages: "stage 1" (the denoising forwards at the first pass's size: half the width and height with ``upscale``),
"stage 2" (the refinement at full size, with ``upscale``) and "video decode" (the video VAE). Each denoising stage's
peak = resident transformer weights + what the stage holds (latents, contexts) + the forward's activation peak
(:func:`~.activations.forward_phases`) + one dequantised layer for quantised files. Parts are assumed to be freed
between stages (``free_between_stages``, the CLI's default). A fixed ``reserve`` covers the CUDA context, kernel
workspaces and allocator fragmentation.

Choices, cheapest first: ``ffn_chunks`` 1, 2, 4, … 64 without weight streaming, then the same with streaming
(≈ 2 blocks resident); the VAE decode is untiled when it fits, else :func:`~..video_vae.tiling.auto_tiling`.
No ltx-core counterpart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config import TransformerConfig
from ..errors import InputError
from ..pipeline.latents import VideoSize
from ..video_vae.config import VideoVAEConfig
from ..video_vae.tiling import TilingConfig, auto_tiling, estimate_decode_bytes
from .activations import StageTokens, forward_phases, input_bytes
from .budget import format_bytes
from .weights import TransformerWeights, weights_from_config

FFN_CHUNK_CHOICES = (1, 2, 4, 8, 16, 32, 64)
DEFAULT_RESERVE = 1 << 30  # CUDA context + workspaces + fragmentation, bytes


@dataclass(frozen=True)
class StagePlan:
    """One stage's predicted peak (bytes) and its parts: ``parts`` maps "weights", "stage tensors",
    "activations", … to bytes (their sum is ``peak``); ``phase`` names the activation phase at the peak."""

    name: str
    tokens: int
    parts: dict[str, int]
    phase: str = ""

    @property
    def peak(self) -> int:
        """Sum of the parts, bytes."""
        return sum(self.parts.values())


@dataclass(frozen=True)
class MemoryPlan:
    """The planner's answer: per-stage peaks and the chosen ``ffn_chunks``, ``offload`` (block streaming) and VAE
    ``tiling`` (None = untiled); ``budget`` and ``reserve`` in bytes; ``fits`` whether every stage's peak +
    reserve ≤ budget."""

    stages: tuple[StagePlan, ...]
    ffn_chunks: int
    offload: bool
    tiling: TilingConfig | None
    budget: int | None
    reserve: int = DEFAULT_RESERVE
    notes: tuple[str, ...] = field(default=())

    @property
    def peak(self) -> int:
        """The largest stage peak, bytes."""
        return max(s.peak for s in self.stages)

    @property
    def fits(self) -> bool:
        """True without a budget, else every stage fits ``budget − reserve``."""
        return self.budget is None or self.peak + self.reserve <= self.budget

    def format(self) -> str:
        """A human-readable table: one line per stage with its parts, then the choices."""
        lines = []
        for s in self.stages:
            parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in s.parts.items())
            phase = f" (peak in {s.phase})" if s.phase else ""
            lines.append(f"{s.name:<13} {s.tokens:>8} tokens  peak {format_bytes(s.peak):>11}{phase}: {parts}")
        tiling = "untiled" if self.tiling is None else (
            f"tiles {self.tiling.tile_pixels or 'full'} px / {self.tiling.tile_frames or 'all'} frames")
        budget = "no budget" if self.budget is None else (
            f"budget {format_bytes(self.budget)} (reserve {format_bytes(self.reserve)})")
        lines.append(f"choices: ffn_chunks {self.ffn_chunks}, offload {'on' if self.offload else 'off'}, "
                     f"VAE decode {tiling}; {budget}: {'fits' if self.fits else 'DOES NOT FIT'}")
        return "\n".join(lines + list(self.notes))


def stage_tokens(size: VideoSize, *, upscale: bool = False, images: int = 0, text_tokens: int = 1024,
                 audio: bool = True) -> list[tuple[str, StageTokens]]:
    """The denoising stages of a request and their token counts. ``images`` image guides: each counted as one
    extra latent frame of guide tokens (keyframe guides; first-frame images add none, so this is the worst case)
    and making the timesteps per token."""
    sizes = [("stage 1", VideoSize(size.frames, size.height // 2, size.width // 2, size.fps, size.batch)),
             ("stage 2", size)] if upscale else [("stage 1", size)]
    out = []
    for name, s in sizes:
        _f, h, w = s.latent_grid
        out.append((name, StageTokens(video=s.batch * (s.video_tokens + images * h * w),
                                      audio=s.batch * s.audio_frames if audio else 0, text=text_tokens,
                                      per_token_timesteps=images > 0)))
    return out


def _denoise_stage(name: str, cfg: TransformerConfig, tokens: StageTokens, weights: TransformerWeights, e: int,
                   chunks: int, offload: bool) -> StagePlan:
    phases = forward_phases(cfg, tokens, e, chunks)
    phase = max(phases, key=phases.get)
    parts = {"weights": weights.resident(offload), "stage tensors": input_bytes(cfg, tokens, e),
             "activations": phases[phase]}
    if weights.largest_quantised:
        parts["dequantised layer"] = weights.largest_quantised
    return StagePlan(name, tokens.video + tokens.audio, parts, phase)


def _decode_stage(vae: VideoVAEConfig, size: VideoSize, tiling: TilingConfig | None, e: int,
                  vae_weights: int) -> StagePlan:
    f, h, w = size.latent_grid
    if tiling is None:
        act = estimate_decode_bytes(vae, f, h, w, batch=size.batch, element_size=e)
    else:
        tf = f if tiling.tile_frames is None else min(f, tiling.tile_frames // vae.decoder_temporal_upsampling)
        ts = max(h, w) if tiling.tile_pixels is None else tiling.tile_pixels // vae.decoder_spatial_upsampling
        act = estimate_decode_bytes(vae, tf, min(ts, h), min(ts, w), batch=size.batch, element_size=e, full_width=w)
    return StagePlan("video decode", f * h * w, {"weights": vae_weights, "activations": act})


def plan_memory(config: TransformerConfig, size: VideoSize, budget: int | None = None, *,
                weights: TransformerWeights | None = None, dtype: torch.dtype = torch.bfloat16,
                upscale: bool = False, images: int = 0, text_tokens: int = 1024, audio: bool = True,
                vae: VideoVAEConfig | None = None, vae_weights: int = 0, ffn_chunks: int | None = None,
                offload: bool | None = None, reserve: int = DEFAULT_RESERVE) -> MemoryPlan:
    """Predict each stage's peak and pick ``ffn_chunks``, ``offload`` and VAE tiling to fit ``budget`` bytes.

    Args:
        config: the transformer; size: the output video (pixels, frames); budget: device bytes (None: no choice,
            the cheapest settings); weights: from the checkpoint header (:func:`~.weights.weights_from_infos`),
            default a float model of ``config`` at ``dtype``; upscale: two passes (half size, then full);
            images: image guides (see :func:`stage_tokens`); vae / vae_weights: the video VAE's config and weight
            bytes (None: the decode is not planned); ffn_chunks / offload: fixed instead of chosen.

    Returns:
        The :class:`MemoryPlan` (check ``fits``; :func:`require_fit` raises when it does not).
    """
    e = torch.empty((), dtype=dtype).element_size()
    weights = weights or weights_from_config(config, dtype)
    stages = stage_tokens(size, upscale=upscale, images=images, text_tokens=text_tokens, audio=audio)
    limit = None if budget is None else budget - reserve
    offloads = [offload] if offload is not None else [False, True]
    chunk_choices = [ffn_chunks] if ffn_chunks is not None else list(FFN_CHUNK_CHOICES)
    best: list[StagePlan] = []
    chosen = (chunk_choices[0], offloads[0])
    for off in offloads:
        for c in chunk_choices:
            plans = [_denoise_stage(n, config, t, weights, e, c, off) for n, t in stages]
            best, chosen = plans, (c, off)
            if limit is None or max(p.peak for p in plans) <= limit:
                break
        else:
            continue
        break
    if vae is None:
        return MemoryPlan(tuple(best), chosen[0], chosen[1], None, budget, reserve,
                          ("video decode not planned: no video VAE config (give the VAE file).",))
    tiling = None
    decode = _decode_stage(vae, size, None, e, vae_weights)
    if limit is not None and decode.peak > limit:
        tiling = auto_tiling(vae, size.video_latent_shape(vae.latent_channels), max(limit - vae_weights, 1), e)
        decode = _decode_stage(vae, size, tiling, e, vae_weights)
    return MemoryPlan((*best, decode), chosen[0], chosen[1], tiling, budget, reserve)


def require_fit(plan: MemoryPlan, size: VideoSize, fits_frames: int | None = None) -> MemoryPlan:
    """``plan`` when it fits its budget.

    Raises:
        InputError: it does not; the message names the stage, its peak, the budget and what to change (fewer
            frames — ``fits_frames`` when known —, a smaller size, more GPUs).
    """
    if plan.fits:
        return plan
    worst = max(plan.stages, key=lambda s: s.peak)
    fewer = f"at most {fits_frames} frames" if fits_frames else "fewer frames"
    raise InputError(
        f"{size.width}×{size.height}×{size.frames} frames does not fit {format_bytes(plan.budget)}: {worst.name} "
        f"needs {format_bytes(worst.peak)} + {format_bytes(plan.reserve)} reserve even with ffn_chunks "
        f"{plan.ffn_chunks} and offload {'on' if plan.offload else 'off'}. Use {fewer} at this size, a smaller "
        "width/height, or more GPUs (--gpus N splits the tokens).")


def max_frames(config: TransformerConfig, size: VideoSize, budget: int, **kwargs: object) -> int | None:
    """The most frames (8k+1) at ``size``'s width and height whose plan fits ``budget`` (None when even 1 frame
    does not); ``kwargs`` as :func:`plan_memory`."""
    dtype = kwargs.get("dtype", torch.bfloat16)
    kwargs.setdefault("weights", weights_from_config(config, dtype))  # type: ignore[arg-type]

    def fits(frames: int) -> bool:
        s = VideoSize(frames, size.height, size.width, size.fps, size.batch)
        return plan_memory(config, s, budget, **kwargs).fits

    if not fits(1):
        return None
    lo, hi = 0, max(1, (size.frames - 1) // 8)  # in units of 8 frames
    while fits(8 * hi + 1) and hi < 1 << 16:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(8 * mid + 1) else (lo, mid)
    return 8 * lo + 1
