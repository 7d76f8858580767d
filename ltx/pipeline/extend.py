"""Extending a generated clip — video **and audio** — with an overlapping continuation.

Given the previous latents (video ``(B, C, F, H, W)``, audio ``(B, 8, T, 16)``), ``new_frames`` pixel frames are
generated as a chunk that starts ``overlap_frames`` pixel frames before the end of the clip:

1. the last ``overlap_frames / 8`` latent frames become guide tokens at pixel frame 0 of the chunk (strength
   ``overlap_strength``), and the audio of the same span is kept at the start of the chunk's audio;
2. the chunk (overlap + new) is sampled;
3. the overlap is blended linearly from the old clip to the new chunk, and the rest is appended.

The result has ``F + new_frames / 8`` latent frames (``pixel frames + new_frames``) and the matching audio length;
everything before the overlap is returned unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InputError
from ..tokens import AUDIO_LATENTS_PER_SECOND, VIDEO_SCALE


@dataclass(frozen=True)
class ExtensionPlan:
    """Latent bookkeeping of one extension (all counts in latent frames unless named ``*_pixel``)."""

    old_frames: int
    overlap: int
    new: int
    fps: float

    @property
    def chunk_frames(self) -> int:
        """Latent frames of the chunk that is sampled: overlap + new."""
        return self.overlap + self.new

    @property
    def chunk_pixel_frames(self) -> int:
        """The chunk in pixel frames, ``8·(chunk_frames − 1) + 1`` (the size its stage is run at)."""
        return (self.chunk_frames - 1) * VIDEO_SCALE[0] + 1

    @property
    def total_frames(self) -> int:
        """Latent frames of the extended clip: old + new."""
        return self.old_frames + self.new

    @property
    def total_audio_frames(self) -> int:
        """Audio latent frames of the extended clip (25 per second of its pixel frames)."""
        pixel = (self.total_frames - 1) * VIDEO_SCALE[0] + 1
        return round(pixel / self.fps * AUDIO_LATENTS_PER_SECOND)

    def audio_frames(self, latent_frames: int) -> int:
        """Audio latent frames covering ``latent_frames`` video latent frames (8 pixel frames each)."""
        return round(latent_frames * VIDEO_SCALE[0] / self.fps * AUDIO_LATENTS_PER_SECOND)


def check_extension_frames(new_frames: int, overlap_frames: int) -> None:
    """New and overlap frame counts are positive multiples of 8 pixel frames (checkable before the clip is read).

    Raises:
        InputError: either count is not a positive multiple of 8.
    """
    t = VIDEO_SCALE[0]
    for what, value in (("new frames", new_frames), ("overlap frames", overlap_frames)):
        if isinstance(value, bool) or not isinstance(value, int) or value < t or value % t or value > 10**6:
            raise InputError(f"{what} must be a positive multiple of {t}; got {value!r}.")


def plan_extension(old_latent_frames: int, new_frames: int, overlap_frames: int, fps: float) -> ExtensionPlan:
    """Validate the request (multiples of 8 pixel frames, overlap inside the clip) and size the chunk.

    Raises:
        InputError: frame counts that are not multiples of 8, or an overlap as long as the clip.
    """
    t = VIDEO_SCALE[0]
    check_extension_frames(new_frames, overlap_frames)
    overlap = overlap_frames // t
    if overlap >= old_latent_frames:
        longest = (old_latent_frames - 1) * t
        hint = f" Use an overlap of at most {longest} frames." if longest >= t else " The clip is too short to extend."
        raise InputError(f"overlap ({overlap_frames} frames) must be shorter than the clip "
                         f"({(old_latent_frames - 1) * t + 1} frames).{hint}")
    return ExtensionPlan(old_latent_frames, overlap, new_frames // t, fps)


def linear_blend(old: torch.Tensor, new: torch.Tensor, dim: int) -> torch.Tensor:
    """Cross-fade two equally long spans along ``dim`` (same shape, e.g. latents ``(B, C, n, H, W)`` with ``dim``
    2): the weight of ``old`` falls from ``n/(n+1)`` to ``1/(n+1)``. Computed in float32, returned in ``old``'s
    dtype."""
    n = old.shape[dim]
    w = 1.0 - torch.arange(1, n + 1, dtype=torch.float32, device=old.device) / (n + 1)
    shape = [1] * old.ndim
    shape[dim] = n
    w = w.view(shape)
    return (old.float() * w + new.float() * (1 - w)).to(old.dtype)


def stitch(old: torch.Tensor, chunk: torch.Tensor, overlap: int, dim: int) -> torch.Tensor:
    """``old[:-overlap] ‖ blend(old[-overlap:], chunk[:overlap]) ‖ chunk[overlap:]`` along ``dim``
    (:func:`linear_blend`). ``old`` and ``chunk`` agree except along ``dim``, e.g. video latents ``(B, C, F, H, W)``
    and ``(B, C, f, H, W)`` with ``dim`` 2 give ``(B, C, F + f − overlap, H, W)``; audio latents ``(B, 8, T, 16)``
    likewise."""
    if overlap == 0:
        return torch.cat([old, chunk], dim=dim)
    keep = old.narrow(dim, 0, old.shape[dim] - overlap)
    blended = linear_blend(old.narrow(dim, old.shape[dim] - overlap, overlap), chunk.narrow(dim, 0, overlap), dim)
    return torch.cat([keep, blended, chunk.narrow(dim, overlap, chunk.shape[dim] - overlap)], dim=dim)


def audio_overlap(plan: ExtensionPlan, audio: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The audio latent frames of ``audio`` ``(B, 8, T, 16)`` that cover the video overlap: ``(tail, n)`` with
    ``tail = audio[:, :, T − n:]`` ``(B, 8, n, 16)`` and ``n = min(plan.audio_frames(plan.overlap), T)``."""
    n = min(plan.audio_frames(plan.overlap), audio.shape[2])
    return audio[:, :, audio.shape[2] - n:], n
