"""The memory planner: peak device memory per stage of a generation, and the settings that make it fit a budget.

Stages: "stage 1" (the denoising forwards at the first pass's size: half the width and height with ``upscale``),
"stage 2" (the refinement at full size, with ``upscale``) and "video decode" (the video VAE's convolutional decoder,
or LTX-2.5's diffusion decoder: :mod:`.diffusion_decode`). Each denoising stage's
peak = resident transformer weights + what the stage holds (latents, contexts) + the forward's activation peak
(:func:`~.activations.forward_phases`) + one dequantised layer for quantised files. Parts are assumed to be freed
between stages (``free_between_stages``, the CLI's default). A fixed ``reserve`` covers the CUDA context, kernel
workspaces and allocator fragmentation.

Choices, cheapest first: ``ffn_chunks`` 1, 2, 4, … 64 without weight streaming, then the same with streaming
(≈ 2 blocks resident); the convolutional VAE decode is untiled when it fits, else
:func:`~..video_vae.tiling.auto_tiling`; the diffusion decoder decodes in the tiles the pipeline gives it
(:data:`~..video_vae.diffusion.DEFAULT_DIFFUSION_TILING`). No ltx-core counterpart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config import TransformerConfig
from ..errors import InputError
from ..pipeline.latents import VideoSize
from ..video_vae.config import VideoVAEConfig
from ..video_vae.diffusion import DEFAULT_DIFFUSION_TILING, DiffusionDecoderConfig
from ..video_vae.tiling import TilingConfig, auto_tiling, estimate_decode_bytes
from .activations import StageTokens, forward_phases, input_bytes
from .budget import format_bytes
from .diffusion_decode import diffusion_decode_peak
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
    reserve ≤ budget; ``decoder`` the video decoder planned: "vae" (convolutional) or "diffusion" (LTX-2.5's, in
    the fixed tiles ``tiling``)."""

    stages: tuple[StagePlan, ...]
    ffn_chunks: int
    offload: bool
    tiling: TilingConfig | None
    budget: int | None
    reserve: int = DEFAULT_RESERVE
    notes: tuple[str, ...] = field(default=())
    decoder: str = "vae"

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
        if not any(s.name == "video decode" for s in self.stages):
            tiling = ": not planned (give --vae)"
        elif self.decoder == "diffusion":
            tiling = f": diffusion decoder, {_tiles(self.tiling)}"
        else:
            tiling = " untiled" if self.tiling is None else (
                f" tiles {self.tiling.tile_pixels or 'full'} px / {self.tiling.tile_frames or 'all'} frames")
        budget = "no budget" if self.budget is None else (
            f"budget {format_bytes(self.budget)} (reserve {format_bytes(self.reserve)})")
        lines.append(f"choices: ffn_chunks {self.ffn_chunks}, offload {'on' if self.offload else 'off'}, "
                     f"VAE decode{tiling}; {budget}: {'fits' if self.fits else 'DOES NOT FIT'}")
        return "\n".join(lines + list(self.notes))


def _tiles(tiling: TilingConfig | None) -> str:
    """``tiles 512 px / 80 frames (overlap 160 px / 40 frames)`` or ``untiled``."""
    if tiling is None:
        return "untiled"
    return (f"tiles {tiling.tile_pixels or 'full'} px / {tiling.tile_frames or 'all'} frames (overlap "
            f"{tiling.overlap_pixels} px / {tiling.overlap_frames} frames)")


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


def _decode_stage(vae: VideoVAEConfig | DiffusionDecoderConfig, size: VideoSize, tiling: TilingConfig | None,
                  e: int, vae_weights: int) -> StagePlan:
    f, h, w = size.latent_grid
    if isinstance(vae, DiffusionDecoderConfig):
        peak = diffusion_decode_peak(vae, (size.batch, vae.latent_channels, f, h, w), tiling, e)
        return StagePlan("video decode", f * h * w, {"weights": vae_weights, "output video": peak.video,
                                                     "activations": peak.activations}, f"decoder {peak.phase}")
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
                vae: VideoVAEConfig | DiffusionDecoderConfig | None = None, vae_weights: int = 0,
                ffn_chunks: int | None = None, offload: bool | None = None, reserve: int = DEFAULT_RESERVE,
                diffusion_tiling: TilingConfig | None = DEFAULT_DIFFUSION_TILING) -> MemoryPlan:
    """Predict each stage's peak and pick ``ffn_chunks``, ``offload`` and VAE tiling to fit ``budget`` bytes.

    Args:
        config: the transformer; size: the output video (pixels, frames); budget: device bytes (None: no choice,
            the cheapest settings); weights: from the checkpoint header (:func:`~.weights.weights_from_infos`),
            default a float model of ``config`` at ``dtype``; upscale: two passes (half size, then full);
            images: image guides (see :func:`stage_tokens`); vae / vae_weights: the video decoder's config — the
            convolutional :class:`VideoVAEConfig` or LTX-2.5's :class:`DiffusionDecoderConfig` — and its weight
            bytes (None: the decode is not planned); ffn_chunks / offload: fixed instead of chosen;
            diffusion_tiling: the tiles the diffusion decoder decodes in (the pipeline's default; not chosen).

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
    if isinstance(vae, DiffusionDecoderConfig):
        decode = _decode_stage(vae, size, diffusion_tiling, e, vae_weights)
        return MemoryPlan((*best, decode), chosen[0], chosen[1], diffusion_tiling, budget, reserve,
                          decoder="diffusion")
    tiling = None
    decode = _decode_stage(vae, size, None, e, vae_weights)
    if limit is not None and decode.peak > limit:
        tiling = auto_tiling(vae, size.video_latent_shape(vae.latent_channels), max(limit - vae_weights, 1), e)
        decode = _decode_stage(vae, size, tiling, e, vae_weights)
    return MemoryPlan((*best, decode), chosen[0], chosen[1], tiling, budget, reserve)


def require_fit(plan: MemoryPlan, size: VideoSize, fits_frames: int | None = None, *,
                needed: int | None = None) -> MemoryPlan:
    """``plan`` when it fits its budget.

    Args:
        fits_frames: the most frames that fit at this width and height (:func:`max_frames`; 0: not even 1;
            None: unknown);
        needed: the least budget this job fits in (:func:`min_budget`), named in the message when given.

    Raises:
        InputError: it does not; the message names the stage, its peak, the budget and what to change: when even
            the size-independent part (weights + reserve) exceeds the budget, only a larger budget or a quantised
            file helps; otherwise fewer frames (``fits_frames`` when known), a smaller size or more GPUs.
    """
    if plan.fits:
        return plan
    assert plan.budget is not None
    worst = max(plan.stages, key=lambda s: s.peak)
    job = f"{size.width}×{size.height}×{size.frames} frames does not fit {format_bytes(plan.budget)}"
    minimum = (f" This job needs at least {format_bytes(needed)} (--vram); a quantised checkpoint (FP8 / INT8 / "
               "NVFP4, GGUF) lowers it." if needed is not None else
               " A larger budget or a quantised checkpoint (FP8 / INT8 / NVFP4, GGUF) is needed.")
    fixed = max(plan.stages, key=lambda s: s.parts.get("weights", 0) + s.parts.get("dequantised layer", 0))
    fixed_bytes = fixed.parts.get("weights", 0) + fixed.parts.get("dequantised layer", 0)
    if worst.name == "video decode" and plan.decoder == "diffusion":
        settings = f"the diffusion decoder's {_tiles(plan.tiling)}"
    elif worst.name == "video decode":
        settings = "VAE decode " + ("untiled" if plan.tiling is None else "with the smallest tiles")
    else:
        settings = f"ffn_chunks {plan.ffn_chunks} and offload {'on' if plan.offload else 'off'}"
    if fixed_bytes + plan.reserve > plan.budget:
        what = "video VAE" if fixed.name == "video decode" else "transformer"
        raise InputError(f"{job}: the {what} weights alone ({fixed.name}) need {format_bytes(fixed_bytes)} + "
                         f"{format_bytes(plan.reserve)} reserve, whatever the size or frame count.{minimum}")
    gpus = "" if worst.name == "video decode" else ", or more GPUs (--gpus N splits the tokens)"
    if fits_frames == 0:
        advice = f"Even 1 frame does not fit at this size: use a smaller width/height{gpus}."
    else:
        fewer = f"at most {fits_frames} frames" if fits_frames else "fewer frames"
        advice = f"Use {fewer} at this size, a smaller width/height{gpus}."
    extra = "" if needed is None else f" This job needs at least {format_bytes(needed)} (--vram)."
    raise InputError(f"{job}: {worst.name} needs {format_bytes(worst.peak)} + {format_bytes(plan.reserve)} reserve "
                     f"even with {settings}. {advice}{extra}")


def min_budget(config: TransformerConfig, size: VideoSize, **kwargs: object) -> int:
    """The least budget (bytes, reserve included) the job fits in: its peak with the most frugal settings
    (``ffn_chunks`` 64, offload on, the smallest VAE tiles); ``kwargs`` as :func:`plan_memory` (not ``budget``)."""
    plan = plan_memory(config, size, 1, **kwargs)  # type: ignore[arg-type]
    return plan.peak + plan.reserve


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
