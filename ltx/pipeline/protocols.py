"""What the generation pipeline needs from each model part, as small protocols, and :class:`ModelParts`, the
bundle of them that :func:`~.generate.generate` and :func:`~.extend_clip.extend` take.

The pipeline is written against these, so the port's own modules, ComfyUI's objects (through adapters) and test
doubles built from real tiny models all plug in the same way. Protocols carry a ``Protocol`` suffix (as in
ltx-core's ``protocols.py``); the classes that implement them keep the plain names: :class:`~..text.encoder.
PromptEncoder`, :class:`~.parts.VideoVAEAdapter` (around :class:`~..video_vae.VideoVAE`),
:class:`~..audio.audio_vae.AudioVAE` and :class:`~.parts.UpsamplerAdapter` (around
:class:`~..upsampler.LatentUpsampler`). :func:`~.parts.load_model_parts` builds a :class:`ModelParts` from files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from ..text.processor import TextContexts
from ..transformer import LTXAVTransformer


class PromptEncoderProtocol(Protocol):
    def encode(self, prompts: str) -> TextContexts:
        """Prompt text → video/audio contexts ``(1, S, D)`` for the transformer."""


class VideoVAEProtocol(Protocol):
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(B, 3, F, H, W)`` in ``[-1, 1]`` (F = 8k+1) → normalised latent ``(B, C, 1 + (F − 1)/8, H/32, W/32)``."""

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalised latent → pixels ``(B, 3, F, H, W)`` in ``[-1, 1]``."""


class AudioVAEProtocol(Protocol):
    def encode(self, waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """``(B, channels, samples)`` at ``sample_rate`` → latent ``(B, 8, T, 16)`` (25 frames per second)."""

    def decode(self, latent: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Latent ``(B, 8, T, 16)`` → (waveform ``(B, 2, samples)``, its sample rate)."""


class LatentUpsamplerProtocol(Protocol):
    def __call__(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalised video latent → normalised latent at 2× width and height."""


@dataclass
class ModelParts:
    """Everything a generation may use; only ``transformer`` is always required."""

    transformer: LTXAVTransformer
    prompt_encoder: PromptEncoderProtocol | None = None
    video_vae: VideoVAEProtocol | None = None  # pixels ↔ latents (ltx-core: VideoEncoder + VideoDecoder)
    audio_vae: AudioVAEProtocol | None = None  # waveform ↔ latents (ltx-core: AudioEncoder/AudioDecoder + Vocoder)
    upsampler: LatentUpsamplerProtocol | None = None  # ltx-core: LatentUpsampler
    distilled: bool = False
    device: torch.device | str | None = None  # where the transformer runs (it is parked on the CPU between uses)
    #: dtype / device of the latents and activations when the weights do not tell (FP8 weights, weights that a
    #: host such as ComfyUI streams to the GPU per layer); None: those of the transformer's first parameter
    compute_dtype: torch.dtype | None = None
    compute_device: torch.device | None = None
