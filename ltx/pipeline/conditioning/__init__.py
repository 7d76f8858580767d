"""Conditioning as objects: one protocol (:class:`~.base.Conditioning`, ``apply(state) -> state``) and one small
frozen class per kind, as ltx-core's ``ltx_core/conditioning/types``.

* :class:`~.latent_frames.ReplaceLatentFrames` — image-to-video (``VideoConditionByLatentIndex``);
* :class:`~.keyframe.KeyframeGuide` — guide tokens at a pixel frame, optional attention strength
  (``VideoConditionByKeyframeIndex`` + ``ConditioningItemAttentionStrengthWrapper``);
* :class:`~.audio_prefix.AudioPrefix` — the first audio latent frames kept (extension overlap);
* :class:`~.frozen_audio.FrozenAudio` — the whole audio kept (audio-to-video);
* :class:`~.reference_video.ReferenceVideo` — an IC-LoRA reference (control) video as guide tokens on the output grid
  (``VideoConditionByReferenceLatent``);
* :class:`~.reference_audio.ReferenceAudio` — ID-LoRA reference speech as audio tokens before t = 0
  (``AudioConditionByReferenceLatent``, ltx-core 1.2.0);
* :class:`~.time_range.TemporalRegionMask` — regenerate a time range, keep the rest (retake;
  ``ltx_pipelines.retake.TemporalRegionMask``).
"""

from .audio_prefix import AudioPrefix
from .base import Conditioning, StageState
from .frozen_audio import FrozenAudio
from .keyframe import KeyframeGuide
from .latent_frames import ReplaceLatentFrames
from .reference_audio import ReferenceAudio, reference_audio_positions
from .reference_video import ReferenceVideo, reference_token_mask
from .time_range import TemporalRegionMask

__all__ = ["AudioPrefix", "Conditioning", "FrozenAudio", "KeyframeGuide", "ReferenceAudio", "ReferenceVideo",
           "ReplaceLatentFrames", "StageState", "TemporalRegionMask", "reference_audio_positions",
           "reference_token_mask"]
