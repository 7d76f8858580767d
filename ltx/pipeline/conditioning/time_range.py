"""Retake: regenerate a time range of a clip and keep the rest (``ltx_pipelines.retake.TemporalRegionMask``).

A token is regenerated (denoise mask 1) when its time span ``[t0, t1)`` in seconds overlaps ``[start_time,
end_time)``: ``t1 > start_time and t0 < end_time``; every other token keeps its given value (mask 0). Spans are those
of the tokens' RoPE positions, computed here in float32 whatever the model dtype:

* video: a latent frame's pixel frames ÷ fps, with the causal first frame covering one pixel frame (latent frame
  ``k ≥ 1`` spans pixel frames ``[8k − 7, 8k + 1)``) — ``get_pixel_coords(..., causal_fix=True) / fps``;
* audio: an audio latent frame's seconds (25 per second, causal: frame ``k ≥ 1`` spans ``[(4k − 3)·0.01,
  (4k + 1)·0.01)``) — ``AudioPatchifier.get_patch_grid_bounds``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ...tokens import audio_positions, video_positions
from ..track import Track
from .base import StageState


def in_range(bounds: torch.Tensor, start_time: float, end_time: float) -> torch.Tensor:
    """Bool ``(…)`` for float32 time spans ``bounds`` ``(…, 2)`` in seconds: the span overlaps ``[start_time,
    end_time)`` (the reference's ``(t_end > start) & (t_start < end)``)."""
    t_start, t_end = bounds.unbind(dim=-1)
    return (t_end > start_time) & (t_start < end_time)


def video_token_region(grid: tuple[int, int, int], fps: float, start_time: float, end_time: float,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """Bool ``(F'·H'·W',)`` over the video tokens of latent ``grid`` ``(F', H', W')`` at ``fps`` (token order
    frame, row, column): True where the token's latent frame overlaps the range.

    Raises:
        InputError: ``fps`` is not positive.
    """
    bounds = video_positions(1, *grid, fps, device=device, dtype=torch.float32)[0, 0]  # (N, 2) seconds
    return in_range(bounds, start_time, end_time)


def video_frame_region(frames: int, fps: float, start_time: float, end_time: float,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """Bool ``(F',)``: which of ``frames`` video latent frames overlap the range (:func:`video_token_region` per
    frame)."""
    return video_token_region((frames, 1, 1), fps, start_time, end_time, device)


def audio_frame_region(frames: int, start_time: float, end_time: float,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """Bool ``(T,)``: which of ``frames`` audio latent frames (one token each) overlap the range."""
    bounds = audio_positions(1, frames, device=device, dtype=torch.float32)[0, 0]  # (T, 2) seconds
    return in_range(bounds, start_time, end_time)


def _masked(track: Track, region: torch.Tensor) -> Track:
    """``track`` with the mask of its own tokens (not appended guide tokens) set to ``region`` (1 / 0)."""
    mask = track.mask.clone()
    mask[:, : track.generated] = region.to(device=mask.device, dtype=mask.dtype)[None, :, None]
    return replace(track, mask=mask)


@dataclass(frozen=True)
class TemporalRegionMask:
    """Set the denoise mask to 1 on tokens whose time span overlaps ``[start_time, end_time)`` seconds and to 0 on
    all others, for the video (``regenerate_video``) and the audio (``regenerate_audio``); a stream not regenerated
    gets mask 0 everywhere (kept exactly). Overwrites the masks set before it; appended guide tokens are left alone;
    a stage without audio ignores ``regenerate_audio``. The video's spans use the stage's fps. Mirrors
    ``ltx_pipelines.retake.TemporalRegionMask`` (one item per stream there, with ``start = end = 0`` for a stream
    that is kept)."""

    start_time: float
    end_time: float
    regenerate_video: bool = True
    regenerate_audio: bool = True

    def apply(self, state: StageState) -> StageState:
        """The state with both streams' masks set from the time range."""
        video = state.video
        device = video.mask.device
        if self.regenerate_video:
            region = video_token_region(state.size.latent_grid, state.size.fps, self.start_time, self.end_time,
                                        device)
        else:
            region = torch.zeros(video.generated, dtype=torch.bool, device=device)
        state = state.with_video(_masked(video, region))
        if state.audio is not None:
            n = state.audio.generated
            region = (audio_frame_region(n, self.start_time, self.end_time, device) if self.regenerate_audio
                      else torch.zeros(n, dtype=torch.bool, device=device))
            state = state.with_audio(_masked(state.audio, region))
        return state
