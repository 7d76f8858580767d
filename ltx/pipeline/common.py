"""Pieces shared by :func:`~.generate.generate` and :func:`~.extend_clip.extend`: the result type, prompt / image /
audio conditioning, σ schedules of the two stages, the 2× upscale size rules, memory release between stages and a
progress counter over all stages."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from ..errors import InputError
from ..text.processor import TextContexts
from .checks import check_stg_blocks
from .conditioning import Conditioning, KeyframeGuide, ReplaceLatentFrames
from .defaults import model_defaults
from .interrupt import interruptible
from .latents import VideoSize
from .media import image_to_pixels, pixels_to_frames
from .protocols import ModelParts
from .request import Request
from .schedules import STAGE2_SIGMAS, ltxv_sigmas, make_sigmas


@dataclass
class Result:
    """Latents (guides removed) and, when decoded, uint8 frames ``(B, F, H, W, 3)`` and a waveform ``(B, 2, S)``."""

    video_latent: torch.Tensor
    audio_latent: torch.Tensor | None
    frames: torch.Tensor | None = None
    waveform: torch.Tensor | None = None
    sample_rate: int | None = None


def need(part, name: str, why: str):
    """``part`` (a model part of :class:`ModelParts` called ``name``), checked to be there for ``why``.

    Raises:
        InputError: ``part`` is None; the message says which ``ModelParts`` field to fill.
    """
    if part is None:
        raise InputError(f"{why} needs a {name}; load one and pass it in ModelParts.{name}.")
    return part


def encode_contexts(parts: ModelParts, req: Request,
                    cancel: Callable[[], bool] | None = None) -> tuple[TextContexts, TextContexts | None]:
    """The prompt's contexts and, when any guidance needs it (CFG ≠ 1), the negative prompt's: video ``(1, S, D_v)``
    and audio ``(1, S, D_a)`` each. ``cancel`` is asked before every Gemma layer. Mirrors
    ``ltx_pipelines.utils.helpers.encode_prompts``.

    Raises:
        InputError: ``parts.prompt_encoder`` is None.
        Cancelled: ``cancel()`` returned True.
    """
    enc = need(parts.prompt_encoder, "prompt_encoder", "Encoding the prompt")
    needs_negative = any(g.needs_uncond for g in (req.video_guidance, req.audio_guidance, req.upscale_guidance))
    with interruptible(enc, getattr(enc, "gemma", None), cancel=cancel):
        return enc.encode(req.prompt), (enc.encode(req.negative_prompt) if needs_negative else None)


def image_conditioning(latent: torch.Tensor, pixel_frame: int, strength: float = 1.0,
                       attention_strength: float | None = None, as_guide: bool = False,
                       num_pixel_frames: int | None = None) -> Conditioning:
    """An encoded image ``(B, C, 1, H', W')`` at ``pixel_frame`` as a conditioning object, by the rule of
    ``ltx_pipelines.utils.helpers.combined_image_conditionings``: at frame 0 without an attention strength (and
    without ``as_guide``) it replaces the first latent frame (:class:`~.conditioning.ReplaceLatentFrames`), anywhere
    else it becomes guide tokens (:class:`~.conditioning.KeyframeGuide` with ``num_pixel_frames``)."""
    if pixel_frame == 0 and attention_strength is None and not as_guide:
        return ReplaceLatentFrames(latent, 0, strength)
    return KeyframeGuide(latent, pixel_frame, strength, attention_strength, num_pixel_frames)


def image_conditions(parts: ModelParts, req: Request, size: VideoSize, dtype, device) -> list[Conditioning]:
    """The request's images as conditioning for a stage of ``size``: each image gets the H.264 CRF round trip
    (``req.image_crf``), is resized to cover ``size`` and centre-cropped, and is encoded by the video VAE to a latent
    ``(1, 128, 1, H/32, W/32)`` placed at its pixel frame (negative frames count from the end of ``size.frames``) by
    :func:`image_conditioning`.

    Mirrors ``ltx_pipelines.utils.helpers.combined_image_conditionings``.

    Raises:
        InputError: images are given but ``parts.video_vae`` is None, a frame lies outside the video, or an image is
            not uint8 RGB ``(H, W, 3)``.
    """
    if not req.images:
        return []
    vae = need(parts.video_vae, "video_vae", "Image conditioning")
    span = _guide_pixel_frames(parts)
    out = []
    for guide in req.images:
        frame = guide.resolve_frame(size.frames)
        pixels = image_to_pixels(guide.image, size.height, size.width, crf=req.image_crf, dtype=dtype, device=device)
        latent = vae.encode(pixels)
        # guide tokens sit on latent-frame boundaries of 8 pixel frames (the last frame is allowed)
        out.append(image_conditioning(latent, frame, guide.strength, guide.attention, guide.as_guide, span))
    return out


def _guide_pixel_frames(parts: ModelParts) -> int | None:
    """The model version's image-guide time span (:attr:`~.defaults.ModelDefaults.guide_pixel_frames`)."""
    config = getattr(parts.transformer, "config", None)
    if config is None:
        return None
    return model_defaults(config.version, parts.distilled).guide_pixel_frames


def conditioning_audio(parts: ModelParts, req: Request, size: VideoSize) -> torch.Tensor | None:
    """The request's conditioning waveform (``(C, S)`` or ``(B, C, S)`` at ``req.audio_sample_rate`` Hz, 16000 when
    unset) encoded by the audio VAE to a latent ``(B, 8, T, 16)`` (B = 1 for ``(C, S)``) with ``T = size.audio_frames``
    (25 latent frames per second of video): cut to the video's duration, or zero-padded at the end when shorter.
    None without audio.

    Mirrors the audio encoding of ``ltx_pipelines.a2vid_two_stage.A2VidPipelineTwoStage`` (``encode_audio``, then
    cut to ``AudioLatentShape.from_duration``); the zero padding is ours.

    Raises:
        InputError: audio is given but ``parts.audio_vae`` is None, or the waveform is unusable.
        CheckpointError: the audio VAE has no encoder weights.
    """
    if req.audio is None:
        return None
    audio_vae = need(parts.audio_vae, "audio_vae", "Audio conditioning")
    wave = req.audio if req.audio.ndim == 3 else req.audio.unsqueeze(0)
    latent = audio_vae.encode(wave, int(req.audio_sample_rate or 16000))
    frames = size.audio_frames
    if latent.shape[2] < frames:  # pad silence-equivalent zeros (the normalised mean) at the end
        latent = torch.nn.functional.pad(latent, (0, 0, 0, frames - latent.shape[2]))
    return latent[:, :, :frames]


def free_memory(parts: ModelParts | None = None, *, transformer: bool = False, text: bool = False) -> None:
    """Release memory between stages: Gemma after the prompts are encoded (results stay cached), the transformer
    parked on the CPU before decoding (moved back by the next generation), then the allocator's cache."""
    if parts is not None and text and hasattr(parts.prompt_encoder, "free"):
        parts.prompt_encoder.free()
    if parts is not None and transformer and parts.device is not None and torch.device(parts.device).type != "cpu":
        if parts.offload is not None:  # the blocks already live on the CPU
            parts.offload.place("cpu")
        else:
            parts.transformer.to("cpu")
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def placement(parts: ModelParts) -> tuple[torch.dtype, torch.device]:
    """(dtype, device) of the latents and activations: the parts' compute settings, else the first parameter's."""
    param = next(parts.transformer.parameters())
    return parts.compute_dtype or param.dtype, parts.compute_device or param.device


def check_parts(parts: ModelParts, req: Request, *, has_contexts: bool) -> None:
    """What the request needs from the model parts, checked before any step runs: the STG blocks exist in the
    transformer, a prompt encoder (unless contexts are given), an audio VAE for conditioning audio, an upsampler for
    the 2× pass and a video VAE when decoding.

    Raises:
        InputError: naming the missing part or the blocks that do not exist.
    """
    guidances = {"video": req.video_guidance, "audio": req.audio_guidance}
    if req.upscale:
        guidances["upscale"] = req.upscale_guidance
    check_stg_blocks(guidances, parts.transformer.config.num_layers)
    if not has_contexts:
        need(parts.prompt_encoder, "prompt_encoder", "Encoding the prompt")
    if req.audio is not None:
        need(parts.audio_vae, "audio_vae", "Conditioning on audio")
    if req.reference_audio is not None:
        need(parts.audio_vae, "audio_vae", "Reference audio (ID-LoRA)")
    if req.upscale:
        need(parts.upsampler, "upsampler", "The 2× upscale pass")
    if req.decode:
        need(parts.video_vae, "video_vae", "Decoding")


def ready(parts: ModelParts) -> None:
    """Move the transformer back to ``parts.device`` if it was parked elsewhere (see :func:`free_memory`)."""
    if parts.device is not None and next(parts.transformer.parameters()).device != torch.device(parts.device):
        if parts.offload is not None:  # only the non-block weights live on the device
            parts.offload.place(parts.device)
        else:
            parts.transformer.to(parts.device)


def decode(parts: ModelParts, result: Result, cancel: Callable[[], bool] | None = None) -> Result:
    """Frames ``(B, F, H, W, 3)`` uint8 from the video latent and, when there is an audio latent and an audio VAE,
    the waveform ``(B, 2, S)`` and its sample rate in Hz (``cancel`` is asked before every VAE / vocoder block).
    Fills and returns ``result``.

    Raises:
        InputError: ``parts.video_vae`` is None.
        CheckpointError: the audio VAE lacks its decoder or vocoder weights.
        Cancelled: ``cancel()`` returned True.
    """
    vae = need(parts.video_vae, "video_vae", "Decoding")
    with interruptible(vae, getattr(vae, "vae", None), cancel=cancel):
        result.frames = pixels_to_frames(vae.decode(result.video_latent))
    if result.audio_latent is not None and parts.audio_vae is not None:
        with interruptible(parts.audio_vae, cancel=cancel):
            result.waveform, result.sample_rate = parts.audio_vae.decode(result.audio_latent)
    return result


def stage1_sigmas(parts: ModelParts, req: Request) -> torch.Tensor:
    """σ of the main pass from the request's schedule, steps, custom sigmas and shifts: float32 ``(steps + 1,)``
    from at most 1 down to 0 (custom sigmas: their own length). See :func:`~.schedules.make_sigmas`."""
    return make_sigmas(req.schedule, req.steps, distilled_model=parts.distilled, custom=req.sigmas,
                       max_shift=req.max_shift, base_shift=req.base_shift)


def stage2_sigmas(req: Request) -> torch.Tensor:
    """σ of the refinement pass after a 2× upscale, a float32 ``(n,)`` tensor ending in 0.

    ``upscale_steps`` None or 0: the official stage-2 sigmas ``(4,)`` (:data:`~.schedules.STAGE2_SIGMAS`, as
    ``ltx_pipelines.utils.constants.STAGE_2_DISTILLED_SIGMA_VALUES``). Otherwise the LTXV schedule of
    ``upscale_steps`` steps cut to σ ≤ ``upscale_denoise``, with ``upscale_denoise`` itself prepended when the cut
    does not start there (so ``n`` ≤ ``upscale_steps + 1``)."""
    if not req.upscale_steps:  # None or 0: the official stage-2 (distilled) sigmas
        return torch.tensor(STAGE2_SIGMAS, dtype=torch.float32)
    sig = ltxv_sigmas(req.upscale_steps)
    sig = sig[sig <= req.upscale_denoise]
    if sig[0] < req.upscale_denoise:
        sig = torch.cat([torch.tensor([req.upscale_denoise]), sig])
    return sig


def half_size(parts: ModelParts, req: Request, size: VideoSize) -> VideoSize:
    """The stage-1 size of a 2× upscale run (half width and height, in pixels); checks the upsampler and that width
    and height are multiples of 64 pixels.

    Raises:
        InputError: ``parts.upsampler`` is None, or width / height is not a multiple of 64.
    """
    need(parts.upsampler, "upsampler", "The 2× upscale pass")
    if size.height % 64 or size.width % 64:
        raise InputError(f"With upscale on, width and height must be multiples of 64 (stage 1 runs at half "
                         f"size); got {size.width}×{size.height}.")
    return replace(size, height=size.height // 2, width=size.width // 2)


class StageProgress:
    """Counts sampling steps over all stages: pass :meth:`tick` as a stage's ``progress``; it reports
    ``progress(done, total)``."""

    def __init__(self, total: int, progress: Callable[[int, int], None] | None) -> None:
        self.total, self.done, self.progress = total, 0, progress

    def tick(self, _step: int, _steps: int) -> None:
        """One step of some stage is done (the stage's own counts are ignored): report ``(done, total)``."""
        self.done += 1
        if self.progress:
            self.progress(self.done, self.total)
