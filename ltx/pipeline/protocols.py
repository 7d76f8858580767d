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
from typing import Any, Protocol

import torch

from ..offload import BlockOffload
from ..text.processor import TextContexts
from ..transformer import LTXAVTransformer


class PromptEncoderProtocol(Protocol):
    """Prompt text → transformer contexts: Gemma-3 then the text connectors
    (``ltx_core.text_encoders.gemma.encoders.base_encoder.GemmaTextEncoder`` then
    ``ltx_core.text_encoders.gemma.embeddings_processor.EmbeddingsProcessor``); implemented by
    :class:`~..text.encoder.PromptEncoder`."""

    def encode(self, prompts: str) -> TextContexts:
        """Prompt text → video/audio contexts ``(1, S, D_v)`` / ``(1, S, D_a)`` for the transformer."""


class VideoVAEProtocol(Protocol):
    """Pixels ↔ normalised video latents (``ltx_core.model.video_vae.video_vae.VideoEncoder`` + ``VideoDecoder``);
    implemented by :class:`~.parts.VideoVAEAdapter`."""

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(B, 3, F, H, W)`` in ``[-1, 1]`` (F = 8k+1) → normalised latent ``(B, C, 1 + (F − 1)/8, H/32, W/32)``."""

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalised latent ``(B, C, F', H', W')`` → pixels ``(B, 3, 1 + 8(F' − 1), 32H', 32W')`` in ``[-1, 1]``."""


class AudioVAEProtocol(Protocol):
    """Waveform ↔ normalised audio latents (``ltx_core.model.audio_vae.audio_vae.AudioEncoder`` / ``AudioDecoder`` +
    ``ltx_core.model.audio_vae.vocoder.Vocoder``); implemented by :class:`~..audio.audio_vae.AudioVAE`."""

    def encode(self, waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """``(B, channels, samples)`` at ``sample_rate`` Hz → latent ``(B, 8, T, 16)`` (25 latent frames per
        second)."""

    def decode(self, latent: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Latent ``(B, 8, T, 16)`` → (waveform ``(B, 2, samples)``, its sample rate in Hz)."""


class LatentUpsamplerProtocol(Protocol):
    """Normalised video latent → the same at 2× width and height (``ltx_core.model.upsampler.model.upsample_video``
    with the spatial ×2 ``LatentUpsampler``); implemented by :class:`~.parts.UpsamplerAdapter`."""

    def __call__(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalised video latent ``(B, C, F, H, W)`` → normalised latent ``(B, C, F, 2H, 2W)``."""


class DurationPredictorProtocol(Protocol):
    """Prompt contexts → clip length (LTX-2.5 duration head: ``ltx_pipelines.utils.blocks.DurationPredictor``);
    implemented by :class:`~.parts.DurationHeadAdapter`."""

    def __call__(self, contexts: TextContexts, fps: float, min_seconds: float, max_seconds: float) -> int:
        """The prompt's contexts (video ``(1, S, D_v)``, audio ``(1, S, D_a)``) → pixel frames ``8k + 1`` at ``fps``
        frames per second, clamped to ``[min_seconds, max_seconds]``."""


class StageRunnerProtocol(Protocol):
    """Runs one denoising stage somewhere else (e.g. on Ray workers, :mod:`rs_ltxv.distributed`), called exactly like
    :func:`~.stage.run_stage` (``ltx_pipelines.utils.helpers.denoise_audio_video``) and returning the same."""

    def __call__(self, denoise: Any, inputs: Any, callbacks: Any = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(video latent (B, C, F', H', W'), audio latent (B, 8, T, 16) | None)`` of one stage; ``denoise`` is a
        :class:`~.denoiser.Denoiser`, ``inputs`` a :class:`~.stage.StageInputs`, ``callbacks`` a
        :class:`~.sampling.Callbacks` or None."""


@dataclass
class ModelParts:
    """Everything a generation may use; only ``transformer`` is always required."""

    transformer: LTXAVTransformer
    prompt_encoder: PromptEncoderProtocol | None = None
    video_vae: VideoVAEProtocol | None = None  # pixels ↔ latents (ltx-core: VideoEncoder + VideoDecoder)
    audio_vae: AudioVAEProtocol | None = None  # waveform ↔ latents (ltx-core: AudioEncoder/AudioDecoder + Vocoder)
    upsampler: LatentUpsamplerProtocol | None = None  # ltx-core: LatentUpsampler
    duration_head: DurationPredictorProtocol | None = None  # LTX-2.5: frames = 0 → the length from the prompt
    distilled: bool = False
    device: torch.device | str | None = None  # where the transformer runs (it is parked on the CPU between uses)
    #: dtype / device of the latents and activations when the weights do not tell (FP8 weights, weights that a
    #: host such as ComfyUI streams to the GPU per layer); None: those of the transformer's first parameter
    compute_dtype: torch.dtype | None = None
    compute_device: torch.device | None = None
    #: runs the denoising stages elsewhere (multi-GPU: :func:`rs_ltxv.distributed.attach`); None: in this process
    stage_runner: StageRunnerProtocol | None = None
    #: streams the transformer's blocks from CPU memory to ``device`` (``load_model_parts(offload=True)``,
    #: ``--offload``); the pipeline then places and parks only the non-block weights. None: fully resident
    offload: BlockOffload | None = None
