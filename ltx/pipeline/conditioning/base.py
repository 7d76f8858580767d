"""The conditioning protocol: every way to steer a stage is a small object applied to the stage's latent state.

A stage starts from un-noised tracks (zeros or given latents); each :class:`Conditioning` in the stage's list is
applied in order and may overwrite tokens and their denoise mask (image-to-video, audio prefix), append guide tokens
with their own positions and attention weights (keyframes, reference video), or change the masks only (frozen audio,
retake). Mirrors ltx-core's ``ltx_core.conditioning.item.ConditioningItem`` (``apply_to(latent_state,
latent_tools)``), with both streams in one state so a kind may touch either.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from ..latents import VideoSize
from ..track import Track


@dataclass(frozen=True)
class StageState:
    """The latent state of one stage before noise: ``video`` tokens ``(B, F'·H'·W' [+ guides], C)``, ``audio`` tokens
    ``(B, T [+ guides], 128)`` or None (no sound), and ``size``, the stage's output size (pixel frames, pixels, fps)
    that positions and frame indices refer to."""

    video: Track
    audio: Track | None
    size: VideoSize

    def with_video(self, video: Track) -> StageState:
        """This state with ``video`` replaced."""
        return replace(self, video=video)

    def with_audio(self, audio: Track | None) -> StageState:
        """This state with ``audio`` replaced."""
        return replace(self, audio=audio)


@runtime_checkable
class Conditioning(Protocol):
    """One kind of conditioning: ``apply(state) -> state``. What it adds shows in the returned tracks: the denoise
    mask (``Track.mask``, 0 = keep the clean value), appended tokens (after ``Track.generated``, dropped after
    sampling) and the attention weights (``Track.attention``). Implementations are frozen dataclasses of tensors and
    numbers, so a stage job can carry them to other processes (``rs_ltxv.distributed.wire``).

    Raises (from ``apply``):
        InputError: the conditioning does not fit the stage (size, frame range, missing stream).
    """

    def apply(self, state: StageState) -> StageState:
        """The state with this conditioning applied."""
