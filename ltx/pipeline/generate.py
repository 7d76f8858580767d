"""Text/image/keyframe/audio → video with sound, and extension of an existing clip, from :class:`ModelParts`.

Stages: encode prompts → (encode images / audio) → stage 1 at the requested size (half size when upscaling) →
optional 2× latent upscale + refinement with image guides re-encoded at full size → guides dropped → decode.
Progress is reported over all sampling steps of all stages as ``progress(done, total)``; ``cancel()`` is checked
before every model call.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from ..errors import InputError
from ..text.processor import TextContexts
from ..transformer import RunOptions
from .components import ModelParts
from .denoiser import Denoiser
from .extend import audio_overlap, plan_extension, stitch
from .latents import AUDIO_MEL_BINS, VideoSize
from .media import image_to_pixels, pixels_to_frames
from .request import Request
from .sampling import SamplerOptions
from .schedules import STAGE2_SIGMAS, ltxv_sigmas, make_sigmas
from .stage import LatentCondition, run_stage


@dataclass
class Result:
    """Latents (guides removed) and, when decoded, uint8 frames ``(B, F, H, W, 3)`` and a waveform ``(B, 2, S)``."""

    video_latent: torch.Tensor
    audio_latent: torch.Tensor | None
    frames: torch.Tensor | None = None
    waveform: torch.Tensor | None = None
    sample_rate: int | None = None


def _need(part, name: str, why: str):
    if part is None:
        raise InputError(f"{why} needs a {name}; load one and pass it in ModelParts.{name}.")
    return part


def _contexts(parts: ModelParts, req: Request) -> tuple[TextContexts, TextContexts | None]:
    enc = _need(parts.prompt_encoder, "prompt_encoder", "Encoding the prompt")
    needs_negative = any(g.needs_uncond for g in (req.video_guidance, req.audio_guidance, req.upscale_guidance))
    return enc.encode(req.prompt), (enc.encode(req.negative_prompt) if needs_negative else None)


def _conditions(parts: ModelParts, req: Request, size: VideoSize, dtype, device) -> list[LatentCondition]:
    if not req.images:
        return []
    codec = _need(parts.video_codec, "video_codec", "Image conditioning")
    out = []
    for guide in req.images:
        frame = guide.resolve_frame(size.frames)
        pixels = image_to_pixels(guide.image, size.height, size.width, crf=req.image_crf, dtype=dtype, device=device)
        latent = codec.encode(pixels)
        # guide tokens sit on latent-frame boundaries of 8 pixel frames (the last frame is allowed)
        out.append(LatentCondition(latent, frame, guide.strength, guide.attention, guide.as_guide))
    return out


def _audio_latent(parts: ModelParts, req: Request, size: VideoSize) -> torch.Tensor | None:
    if req.audio is None:
        return None
    codec = _need(parts.audio_codec, "audio_codec", "Audio conditioning")
    wave = req.audio if req.audio.ndim == 3 else req.audio.unsqueeze(0)
    latent = codec.encode(wave, int(req.audio_sample_rate or 16000))
    frames = size.audio_frames
    if latent.shape[2] < frames:  # pad silence-equivalent zeros (the normalised mean) at the end
        latent = torch.nn.functional.pad(latent, (0, 0, 0, frames - latent.shape[2]))
    return latent[:, :, :frames]


def _free(parts: ModelParts | None = None, *, transformer: bool = False, text: bool = False) -> None:
    """Release memory between stages: Gemma after the prompts are encoded (results stay cached), the transformer
    parked on the CPU before decoding (moved back by the next generation), then the allocator's cache."""
    if parts is not None and text and hasattr(parts.prompt_encoder, "free"):
        parts.prompt_encoder.free()
    if parts is not None and transformer and parts.device is not None and torch.device(parts.device).type != "cpu":
        parts.transformer.to("cpu")
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _ready(parts: ModelParts) -> None:
    if parts.device is not None and next(parts.transformer.parameters()).device != torch.device(parts.device):
        parts.transformer.to(parts.device)


def _decode(parts: ModelParts, result: Result) -> Result:
    codec = _need(parts.video_codec, "video_codec", "Decoding")
    result.frames = pixels_to_frames(codec.decode(result.video_latent))
    if result.audio_latent is not None and parts.audio_codec is not None:
        result.waveform, result.sample_rate = parts.audio_codec.decode(result.audio_latent)
    return result


def _sigmas(parts: ModelParts, req: Request) -> torch.Tensor:
    return make_sigmas(req.schedule, req.steps, distilled_model=parts.distilled, custom=req.sigmas,
                       max_shift=req.max_shift, base_shift=req.base_shift)


def _stage2_sigmas(req: Request) -> torch.Tensor:
    if not req.upscale_steps:  # None or 0: the official stage-2 (distilled) sigmas
        return torch.tensor(STAGE2_SIGMAS, dtype=torch.float32)
    sig = ltxv_sigmas(req.upscale_steps)
    sig = sig[sig <= req.upscale_denoise]
    if sig[0] < req.upscale_denoise:
        sig = torch.cat([torch.tensor([req.upscale_denoise]), sig])
    return sig


def generate(parts: ModelParts, req: Request, *, contexts: tuple[TextContexts, TextContexts | None] | None = None,
             progress: Callable[[int, int], None] | None = None,
             cancel: Callable[[], bool] | None = None) -> Result:
    """Run a whole generation. ``contexts`` (positive, negative) skips prompt encoding when given."""
    _ready(parts)
    model = parts.transformer
    param = next(model.parameters())
    dtype, device = param.dtype, param.device
    full = VideoSize(req.frames, req.height, req.width, req.fps)
    if req.upscale:
        _need(parts.upscaler, "upscaler", "The 2× upscale pass")
        if req.height % 64 or req.width % 64:
            raise InputError(f"With upscale on, width and height must be multiples of 64 (stage 1 runs at half "
                             f"size); got {req.width}×{req.height}.")
    stage1 = replace(full, height=full.height // 2, width=full.width // 2) if req.upscale else full
    positive, negative = contexts if contexts is not None else _contexts(parts, req)
    if req.free_between_stages and contexts is None:
        _free(parts, text=True)
    sigmas = _sigmas(parts, req)
    sigmas2 = _stage2_sigmas(req) if req.upscale else None
    total = len(sigmas) - 1 + (len(sigmas2) - 1 if sigmas2 is not None else 0)
    done = [0]

    def tick(_i: int, _n: int) -> None:
        done[0] += 1
        if progress:
            progress(done[0], total)

    options = RunOptions(attention_backend=req.attention, ff_chunks=max(1, req.ff_chunks))
    audio_latent = _audio_latent(parts, req, stage1)
    with_audio = req.generate_audio or audio_latent is not None
    channels = model.config.in_channels
    audio_channels = model.config.audio_in_channels // AUDIO_MEL_BINS
    sampler_opts = SamplerOptions(eta=req.eta, seed=req.seed + 1)

    noise = torch.Generator().manual_seed(req.seed)  # one stream for both stages, like the reference
    denoiser = Denoiser(model, positive, negative, req.video_guidance, req.audio_guidance, options)
    v, a = run_stage(denoiser, stage1, sigmas, channels=channels, audio_channels=audio_channels, seed=noise,
                     sampler=req.sampler,
                     sampler_options=sampler_opts, conditions=_conditions(parts, req, stage1, dtype, device),
                     audio_latent=audio_latent, with_audio=with_audio, audio_frozen=audio_latent is not None,
                     dtype=dtype, device=device, progress=tick, cancel=cancel)
    if req.upscale:
        if req.free_between_stages:
            _free(parts)
        v = parts.upscaler(v)
        denoiser2 = Denoiser(model, positive, negative, req.upscale_guidance, req.upscale_guidance, options)
        v, a = run_stage(denoiser2, full, sigmas2, channels=channels, audio_channels=audio_channels,
                         seed=noise, sampler=req.sampler,
                         sampler_options=sampler_opts, conditions=_conditions(parts, req, full, dtype, device),
                         video_latent=v, audio_latent=a, with_audio=with_audio,
                         audio_frozen=audio_latent is not None, noise_scale=float(sigmas2[0]), dtype=dtype,
                         device=device, progress=tick, cancel=cancel)
    result = Result(v, a)
    if req.decode:
        if req.free_between_stages:
            _free(parts, transformer=True)
        result = _decode(parts, result)
    return result


def extend(parts: ModelParts, req: Request, video_latent: torch.Tensor, audio_latent: torch.Tensor | None, *,
           new_frames: int, overlap_frames: int = 16, overlap_strength: float = 1.0,
           contexts: tuple[TextContexts, TextContexts | None] | None = None,
           progress: Callable[[int, int], None] | None = None, cancel: Callable[[], bool] | None = None) -> Result:
    """Continue a clip by ``new_frames`` pixel frames (multiple of 8), keeping its sound: the last
    ``overlap_frames`` guide the new chunk and are cross-faded; ``req.images`` are placed relative to the chunk
    (use frame −1 for the new last frame)."""
    _ready(parts)
    model = parts.transformer
    param = next(model.parameters())
    plan = plan_extension(video_latent.shape[2], new_frames, overlap_frames, req.fps)
    chunk = VideoSize(plan.chunk_pixel_frames, video_latent.shape[3] * 32, video_latent.shape[4] * 32, req.fps,
                      batch=video_latent.shape[0])
    positive, negative = contexts if contexts is not None else _contexts(parts, req)
    sigmas = _sigmas(parts, req)
    overlap_latent = video_latent[:, :, -plan.overlap:].to(param.dtype)
    conditions = [LatentCondition(overlap_latent, 0, overlap_strength, as_guide=True)]
    conditions += _conditions(parts, req, chunk, param.dtype, param.device)
    prefix = chunk_audio = None
    if audio_latent is not None:
        tail, _n = audio_overlap(plan, audio_latent)
        prefix = (tail.to(param.dtype), overlap_strength)
        # the chunk's sound spans overlap + new frames (8 pixel frames per latent frame, no causal first frame)
        chunk_audio = torch.zeros(audio_latent.shape[0], audio_latent.shape[1], plan.audio_frames(plan.chunk_frames),
                                  audio_latent.shape[3], dtype=param.dtype, device=param.device)
    denoiser = Denoiser(model, positive, negative, req.video_guidance, req.audio_guidance,
                        RunOptions(attention_backend=req.attention, ff_chunks=max(1, req.ff_chunks)))
    v, a = run_stage(denoiser, chunk, sigmas, channels=model.config.in_channels,
                     audio_channels=model.config.audio_in_channels // AUDIO_MEL_BINS, seed=req.seed,
                     sampler=req.sampler,
                     sampler_options=SamplerOptions(eta=req.eta, seed=req.seed + 1), conditions=conditions,
                     audio_latent=chunk_audio, with_audio=audio_latent is not None, audio_prefix=prefix,
                     dtype=param.dtype,
                     device=param.device, progress=progress, cancel=cancel)
    video = stitch(video_latent.to(v.dtype), v, plan.overlap, dim=2)
    audio = None
    if audio_latent is not None:
        n = prefix[0].shape[2]
        audio = stitch(audio_latent.to(a.dtype), a, n, dim=2)[:, :, : plan.total_audio_frames]
    result = Result(video, audio)
    return _decode(parts, result) if req.decode else result
