"""A generation or extension request: every user-facing setting, with the official defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InputError
from .checks import check_request
from .defaults import DEFAULT_AUDIO_GUIDANCE, DEFAULT_VIDEO_GUIDANCE
from .guidance import GuidanceParams
from .kdiffusion import ExternalSampler
from .reference_guide import ReferenceVideoGuide

DEFAULT_NEGATIVE_PROMPT = (
    "blurry, out of focus, overexposed, underexposed, low contrast, washed out colors, excessive noise, grainy "
    "texture, poor lighting, flickering, motion blur, distorted proportions, unnatural skin tones, deformed facial "
    "features, asymmetrical face, missing facial features, extra limbs, disfigured hands, wrong hand count, "
    "artifacts around text, inconsistent perspective, camera shake, incorrect depth of field, background too sharp, "
    "background clutter, distracting reflections, harsh shadows, inconsistent lighting direction, color banding, "
    "cartoonish rendering, 3D CGI look, unrealistic materials, uncanny valley effect, incorrect ethnicity, wrong "
    "gender, exaggerated expressions, wrong gaze direction, mismatched lip sync, silent or muted audio, distorted "
    "voice, robotic voice, echo, background noise, off-sync audio, incorrect dialogue, added dialogue, repetitive "
    "speech, jittery movement, awkward pauses, incorrect timing, unnatural transitions, inconsistent framing, tilted "
    "camera, flat lighting, inconsistent tone, cinematic oversaturation, stylized filters, or AI artifacts."
)


@dataclass(frozen=True)
class ImageGuide:
    """A conditioning image (uint8 ``(H, W, 3)``) at pixel frame ``frame`` (negative counts from the end: −1 = last).

    ``strength`` is the denoise strength kept (1 = exact); ``attention`` the guide's attention strength (guide
    tokens only; None = no attention mask). Frame 0 replaces the first latent frame unless ``as_guide`` (or an
    attention strength) asks for appended guide tokens; other frames are always guide tokens."""

    image: np.ndarray | torch.Tensor
    frame: int = 0
    strength: float = 1.0
    attention: float | None = None
    as_guide: bool = False

    def resolve_frame(self, frames: int) -> int:
        """The guide's pixel frame in a video of ``frames`` pixel frames, negative frames counted from the end.

        Raises:
            InputError: the frame lies outside ``0 … frames − 1``.
        """
        frame = self.frame if self.frame >= 0 else frames + self.frame
        if not 0 <= frame < frames:
            raise InputError(f"image frame {self.frame} is outside the video's {frames} frames.")
        return frame


@dataclass(frozen=True)
class Request:
    """Settings of one generation (stage 1, optional 2× upscale + refinement, decode). Sizes are in pixels
    (``width``, ``height``: multiples of 32, of 64 with ``upscale``), ``frames`` in pixel frames (8k+1, or
    :data:`~.defaults.AUTO_FRAMES` 0: predicted from the prompt by the duration head), ``fps`` in frames per second,
    ``audio_sample_rate`` in Hz; σ values in [0, 1].

    Left unset, ``steps``, ``sampler``, ``image_crf`` and the video / audio guidance are the model's
    (:mod:`.defaults`, chosen from the checkpoint's version when the run starts: LTX-2 / 2.3 30 steps, Euler, CFG 3 /
    7, STG 1 at block 28, rescale 0.7, modality 3, CRF 33; LTX-2.5 the same with CRF 18, and distilled 2.5 8
    distilled steps, no guidance, Euler-ancestral). Anything given explicitly is used as given.

    Building one runs :func:`~.checks.check_request`, which raises :class:`~rs_ltxv.ltx.errors.InputError` on the
    first invalid setting."""

    prompt: str = ""
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    width: int = 768
    height: int = 512
    frames: int = 121
    fps: float = 24.0
    seed: int = 0
    steps: int | None = None  # None: the model's (30; distilled LTX-2.5: 8)
    schedule: str = "auto"  # auto | ltxv | distilled | linear_quadratic
    sigmas: tuple[float, ...] | None = None
    max_shift: float = 2.05
    base_shift: float = 0.95
    sampler: str | ExternalSampler | None = None  # euler | euler_ancestral | res_2s, a k-diffusion-style sampler,
    # or None: the model's (euler; distilled LTX-2.5: euler_ancestral in stage 1, euler after the 2x upsampler)
    eta: float = 1.0
    video_guidance: GuidanceParams = DEFAULT_VIDEO_GUIDANCE  # this object = the model's (see .defaults)
    audio_guidance: GuidanceParams = DEFAULT_AUDIO_GUIDANCE
    images: tuple[ImageGuide, ...] = ()
    reference_videos: tuple[ReferenceVideoGuide, ...] = ()  # IC-LoRA control videos (stage 1 only)
    image_crf: float | None = None  # None: the model's (33; LTX-2.5: 18)
    audio: torch.Tensor | None = None  # (channels, samples) conditioning waveform, kept fixed
    audio_sample_rate: int | None = None
    generate_audio: bool = True
    reference_audio: torch.Tensor | None = None  # (channels, samples) ID-LoRA reference speech (~5 s), all of it used
    reference_audio_sample_rate: int | None = None
    identity_guidance: float = 3.0  # Denoiser.identity_guidance: used only with reference_audio (0 = no extra pass)
    identity_guidance_start: float = 0.0  # fractions of the run (σ = 1 − fraction) where identity guidance is on
    identity_guidance_end: float = 1.0
    upscale: bool = False  # needs ModelParts.upsampler
    upscale_steps: int | None = None  # None or 0: the official stage-2 distilled sigmas
    upscale_guidance: GuidanceParams = field(default_factory=GuidanceParams)
    upscale_sampler: str | ExternalSampler | None = None  # the refinement's sampler; None: ``sampler`` when given,
    # else the model's (euler)
    upscale_denoise: float = 0.909375
    decode: bool = True
    attention_mode: str = "auto"  # RunOptions.attention_mode: auto | sdpa | sage | flash
    ffn_chunks: int = 1  # RunOptions.ffn_chunks: feed-forward token chunks (1 = no chunking)
    free_between_stages: bool = False

    def __post_init__(self) -> None:
        check_request(self)  # bad settings fail here, before any model is loaded
