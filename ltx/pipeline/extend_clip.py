"""Continue a clip — video latent and its sound — by a chunk of new frames, optionally through the 2× upscale pass.

The bookkeeping (chunk size, overlap, stitching) is :mod:`.extend`; this module runs the stages.

Upscale (``req.upscale``): the clip arrives at full size and the result must be full size, so the chunk (overlap +
new frames) follows the two-stage recipe of :func:`~.generate.generate`:

1. **half size**: the chunk is sampled at half width and height with the overlap as guide tokens — the clip's last
   ``overlap`` latent frames **downscaled 2× in latent space** (2×2 average pooling; the VAE's per-channel
   normalisation is affine, so pooling normalised latents equals pooling raw ones) — plus the audio prefix and any
   image guides encoded at half size;
2. the chunk's video latent is upscaled 2× with ``parts.upsampler``;
3. **refinement at full size** (``upscale_steps`` / ``upscale_guidance`` / ``upscale_denoise``, noise continuing the
   same seeded stream) with the clip's **full-resolution** overlap latent as guide tokens, the audio prefix again,
   and image guides at full size;
4. stitched to the clip exactly as without upscaling.

Why pool in latent space instead of decoding the overlap, resizing the pixels and encoding them again: the half-size
pass only has to continue the motion and layout coarsely, the refinement pass sees the exact overlap, and the VAE
round trip would cost a full-size decode plus an encode and require the video VAE in every extension.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import InputError
from ..text.processor import TextContexts
from .common import Result, image_conditions
from .conditioning import AudioPrefix, Conditioning, KeyframeGuide
from .defaults import defaults_for_parts, resolve_request
from .extend import audio_overlap, plan_extension, stitch
from .id_lora import reference_audio_conditions, reference_audio_latent
from .latents import VideoSize
from .preview import PreviewHook
from .protocols import ModelParts
from .request import Request
from .run_setup import begin_run, finish_run
from .two_stage import run_stages


def downscale_latent(latent: torch.Tensor) -> torch.Tensor:
    """Video latent ``(B, C, F, H, W)`` → ``(B, C, F, H/2, W/2)`` by 2×2 spatial average pooling (H, W even)."""
    return torch.nn.functional.avg_pool3d(latent.float(), kernel_size=(1, 2, 2)).to(latent.dtype)


def extend(parts: ModelParts, req: Request, video_latent: torch.Tensor, audio_latent: torch.Tensor | None, *,
           new_frames: int, overlap_frames: int = 16, overlap_strength: float = 1.0,
           contexts: tuple[TextContexts, TextContexts | None] | None = None,
           progress: Callable[[int, int], None] | None = None, cancel: Callable[[], bool] | None = None,
           preview: PreviewHook | None = None) -> Result:
    """Continue a clip by ``new_frames`` pixel frames (multiple of 8), keeping its sound.

    ``video_latent`` ``(B, 128, F, H/32, W/32)`` and ``audio_latent`` ``(B, 8, T, 16)`` (25 latent frames per
    second) are the clip; the last ``overlap_frames`` pixel frames guide the new chunk (strength
    ``overlap_strength``) and are cross-faded; ``req.images`` are placed relative to the chunk (frame −1 = the new
    last frame). With ``req.upscale`` the chunk goes through the half-size pass, the 2× upsampler and a full-size
    refinement (module docstring); the pixel width and height (latent × 32) must then be multiples of 64 and
    ``parts.upsampler`` is needed. Returns latents ``(B, 128, F + new_frames/8, H/32, W/32)`` and the matching audio
    (and, with ``req.decode``, the whole extended clip decoded). ``preview(done, total, image)`` as in
    :func:`~.generate.generate` (pictures of the chunk being made). ``req.reference_audio`` (ID-LoRA) is appended to
    the chunk's audio in both stages, as in :func:`~.generate.generate`; it needs a clip with sound.

    Raises:
        InputError: frame counts that are not positive multiples of 8, an overlap as long as the clip or IC-LoRA
            ``req.reference_videos`` (extend does not take them) (before any model call), reference audio for a clip
            without sound, a missing part, or settings that do not fit the model.
        NonFiniteError: the model's prediction became NaN or infinite at some step.
        Cancelled: ``cancel()`` returned True.
    """
    if req.reference_videos:
        raise InputError("extend does not take IC-LoRA reference videos (req.reference_videos): they steer generate "
                         "only. Drop them from the request for the extension.")
    plan = plan_extension(video_latent.shape[2], new_frames, overlap_frames, req.fps)
    if req.reference_audio is not None and audio_latent is None:
        raise InputError("reference_audio steers the clip's sound; extend a clip with an audio latent or drop the "
                         "reference audio.")
    full = VideoSize(plan.chunk_pixel_frames, video_latent.shape[3] * 32, video_latent.shape[4] * 32, req.fps,
                     batch=video_latent.shape[0])
    req = resolve_request(req, defaults_for_parts(parts))  # unset settings: the model's (.defaults)
    run = begin_run(parts, req, full, contexts=contexts, progress=progress, cancel=cancel, preview=preview)
    dtype, device = run.dtype, run.device
    voice = reference_audio_latent(parts, req)  # ID-LoRA reference speech, in both stages
    overlap = video_latent[:, :, -plan.overlap:].to(device=device, dtype=dtype)
    prefix = chunk_audio = None
    if audio_latent is not None:
        tail, _n = audio_overlap(plan, audio_latent)
        prefix = AudioPrefix(tail.to(device=device, dtype=dtype), overlap_strength)
        # the chunk's sound spans overlap + new frames (8 pixel frames per latent frame, no causal first frame)
        chunk_audio = torch.zeros(audio_latent.shape[0], audio_latent.shape[1], plan.audio_frames(plan.chunk_frames),
                                  audio_latent.shape[3], dtype=dtype, device=device)

    def conditioning(size: VideoSize, stage: int) -> list[Conditioning]:
        guide = downscale_latent(overlap) if req.upscale and stage == 1 else overlap
        return [KeyframeGuide(guide, 0, overlap_strength), *image_conditions(parts, req, size, dtype, device),
                *([prefix] if prefix is not None else []), *reference_audio_conditions(voice, dtype, device)]

    v, a = run_stages(parts, req, run, conditioning, audio_latent=chunk_audio, with_audio=audio_latent is not None)
    video = stitch(video_latent.to(device=v.device, dtype=v.dtype), v, plan.overlap, dim=2)
    audio = None
    if audio_latent is not None:
        n = prefix.latent.shape[2]
        audio = stitch(audio_latent.to(device=a.device, dtype=a.dtype), a, n, dim=2)[:, :, : plan.total_audio_frames]
    return finish_run(parts, req, Result(video, audio), cancel)
