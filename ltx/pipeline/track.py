"""A stream being denoised (video or audio), in tokens, with its conditioning.

``latent``/``clean`` ``(B, T, C)``, ``mask`` ``(B, T, 1)`` denoise strength per token (1 = generate, 0 = keep the
clean value), ``positions`` ``(B, n_axes, T, 2)``, ``attention`` optional ``(B, T, T)`` self-attention weights,
``keyframes`` optional ``(B, T, 1)`` keyframe marker (1 on tokens whose latent encodes a single pixel frame: the
video's first latent frame; appended guide and reference tokens are 0), read only by LTX-2.5's keyframe embedding.
The first ``generated`` tokens are the stream itself; appended guide tokens follow and are dropped by
:meth:`Track.without_guides` after sampling.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..errors import InputError
from ..tokens import guide_attention_weights, video_positions, video_to_tokens


@dataclass(frozen=True)
class Track:
    """One stream being denoised (module docstring for the fields' shapes); ``generated`` = tokens of the stream
    itself, before any guide tokens. Mirrors ``ltx_core.types.LatentState`` (``latent``, ``clean_latent``,
    ``denoise_mask``, ``positions``, ``attention_mask``, ``keyframes_mask`` as ``keyframes``) plus ``generated``,
    which ``LatentTools`` keep in their target shape. ``reference`` ``[start, stop)``: the appended ID-LoRA reference
    tokens (:class:`~.conditioning.reference_audio.ReferenceAudio`) that identity guidance leaves out of its extra
    pass; ``(0, 0)`` without. ``keyframes`` None: no token marked (the audio stream)."""

    latent: torch.Tensor
    clean: torch.Tensor
    mask: torch.Tensor
    positions: torch.Tensor
    attention: torch.Tensor | None
    generated: int
    reference: tuple[int, int] = (0, 0)
    keyframes: torch.Tensor | None = None

    @staticmethod
    def from_latent(tokens: torch.Tensor, positions: torch.Tensor, marked: int = 0) -> Track:
        """A fully generated stream (mask 1, no guides) starting from ``tokens`` ``(B, T, C)`` (zeros for a new
        video), with ``positions`` ``(B, n_axes, T, 2)``; ``clean`` is a copy of ``tokens``; the first ``marked``
        tokens carry the keyframe marker (a video's first latent frame, ``H'·W'`` tokens; 0: no marker). Like
        ``ltx_core.tools.LatentTools.create_initial_state`` (``VideoLatentTools._first_frame_keyframes_mask``,
        ltx-core 1.2.0)."""
        mask = torch.ones(*tokens.shape[:2], 1, dtype=torch.float32, device=tokens.device)
        keyframes = None
        if marked > 0:
            keyframes = torch.zeros_like(mask)
            keyframes[:, :marked] = 1.0
        return Track(tokens, tokens.clone(), mask, positions, None, tokens.shape[1], keyframes=keyframes)

    def extended_keyframes(self, count: int, marked: bool = False) -> torch.Tensor | None:
        """The keyframe marker ``(B, T + count, 1)`` for ``count`` appended tokens, marked or not; None when there is
        no marker and the new tokens are unmarked. Every conditioning that appends tokens calls it, so the marker
        stays aligned with the tokens. Mirrors ``ltx_core.conditioning.mask_utils.extend_keyframes_mask``."""
        if self.keyframes is None and not marked:
            return None
        existing = self.keyframes if self.keyframes is not None else torch.zeros_like(self.mask)
        pad = torch.full((existing.shape[0], count, existing.shape[2]), float(marked), dtype=existing.dtype,
                         device=existing.device)
        return torch.cat([existing, pad], 1)

    def timesteps(self, sigma: torch.Tensor) -> torch.Tensor:
        """Per-token σ ``(B, T)`` = mask · σ."""
        return (self.mask * sigma)[..., 0]

    def noised(self, noise: torch.Tensor, scale: float = 1.0) -> Track:
        """``noise·(mask·scale) + latent·(1 − mask·scale)`` with ``noise`` ``(B, T, C)`` like ``latent``, in the
        latent's dtype (``ltx_core.components.noisers.GaussianNoiser``, given its noise)."""
        m = self.mask * scale
        return replace(self, latent=(noise * m + self.latent * (1 - m)).to(self.latent.dtype))

    def blend_x0(self, x0: torch.Tensor) -> torch.Tensor:
        """Keep conditioned tokens: ``x0·mask + clean·(1 − mask)`` for x0 ``(B, T, C)``, in ``x0``'s dtype
        (``ltx_pipelines.utils.helpers.post_process_latent``)."""
        return (x0 * self.mask + self.clean.float() * (1 - self.mask)).to(x0.dtype)

    def without_guides(self) -> Track:
        """The first ``generated`` tokens only (guide tokens dropped), mask reset to 1; like
        ``ltx_core.tools.LatentTools.clear_conditioning`` (which also drops the attention mask)."""
        n = self.generated
        attention = None if self.attention is None else self.attention[:, :n, :n]
        keyframes = None if self.keyframes is None else self.keyframes[:, :n]
        return Track(self.latent[:, :n], self.clean[:, :n], torch.ones_like(self.mask[:, :n]),
                     self.positions[:, :, :n], attention, n, keyframes=keyframes)

    def without_reference(self) -> Track:
        """This track without its reference tokens ``[start, stop)`` (latent, clean, mask, positions, keyframe
        marker, attention rows and columns); ``reference`` becomes ``(0, 0)``. The same track when it has none."""
        start, stop = self.reference
        if stop <= start:
            return self

        def cut(t: torch.Tensor, dim: int) -> torch.Tensor:
            return torch.cat([t.narrow(dim, 0, start), t.narrow(dim, stop, t.shape[dim] - stop)], dim)

        attention = None if self.attention is None else cut(cut(self.attention, 1), 2)
        keyframes = None if self.keyframes is None else cut(self.keyframes, 1)
        return Track(cut(self.latent, 1), cut(self.clean, 1), cut(self.mask, 1), cut(self.positions, 2), attention,
                     self.generated, keyframes=keyframes)

    # -- conditioning ---------------------------------------------------------------------------------------------
    def replace_prefix(self, tokens: torch.Tensor, strength: float) -> Track:
        """Write ``tokens`` ``(B, n, C)`` over the first ``n`` tokens (latent and clean) with denoise mask
        ``1 − strength``; used for the audio prefix of an extension.

        Raises:
            InputError: ``n`` is larger than the stream.
        """
        n = tokens.shape[1]
        if n > self.generated:
            raise InputError(f"{n} conditioning tokens do not fit a stream of {self.generated}.")
        latent, clean, mask = self.latent.clone(), self.clean.clone(), self.mask.clone()
        latent[:, :n] = tokens.to(latent.dtype)
        clean[:, :n] = tokens.to(clean.dtype)
        mask[:, :n] = 1.0 - strength
        return replace(self, latent=latent, clean=clean, mask=mask)

    def replace_frames(self, latent: torch.Tensor, latent_frame: int, strength: float, grid: tuple[int, int, int]
                       ) -> Track:
        """Write ``latent`` ``(B, C, f, H, W)`` into latent frames ``[latent_frame, latent_frame + f)`` of a video
        track of ``grid`` ``(F, H, W)``, with denoise mask ``1 − strength`` there (strength 1 keeps them exactly).
        ``ltx_core.conditioning.types.latent_cond.VideoConditionByLatentIndex``.

        Raises:
            InputError: ``latent``'s height / width differ from the grid's, or its frames run past the end.
        """
        f, h, w = grid
        if tuple(latent.shape[-2:]) != (h, w) or latent_frame + latent.shape[2] > f:
            raise InputError(f"conditioning latent {tuple(latent.shape)} does not fit latent frame {latent_frame} "
                             f"of a {f}×{h}×{w} latent; resize the image to the video size.")
        tokens = video_to_tokens(latent).to(self.latent.dtype)
        start = latent_frame * h * w
        stop = start + tokens.shape[1]
        latent_, clean, mask = self.latent.clone(), self.clean.clone(), self.mask.clone()
        latent_[:, start:stop] = tokens
        clean[:, start:stop] = tokens
        mask[:, start:stop] = 1.0 - strength
        return replace(self, latent=latent_, clean=clean, mask=mask)

    def append_guide(self, latent: torch.Tensor, pixel_frame: int, strength: float, fps: float,
                     attention_strength: float | None = None, *, single_frame: bool = False) -> Track:
        """Append ``latent`` ``(B, C, f, H, W)`` as guide tokens placed at pixel frame ``pixel_frame`` with denoise
        mask ``1 − strength``; ``attention_strength`` in [0, 1] weights attention between them and the video; not
        keyframe-marked. Positions are those of pixel frame ``pixel_frame`` onwards at ``fps``
        (``ltx_core.conditioning.types.keyframe_cond.VideoConditionByKeyframeIndex``; with an attention strength,
        wrapped in ``ConditioningItemAttentionStrengthWrapper``). ``single_frame``: each token's time span becomes
        one pixel frame ``[t, t + 1)`` (ltx-core 1.2.0's ``num_pixel_frames == 1``)."""
        tokens = video_to_tokens(latent).to(self.latent.dtype)
        b, m = tokens.shape[:2]
        if single_frame:  # in pixel frames, narrowed, then seconds: ltx-core's order of operations
            positions = video_positions(b, *latent.shape[2:], 1.0, frame_offset=pixel_frame, device=tokens.device,
                                        dtype=torch.float32).clone()
            positions[:, 0, :, 1] = positions[:, 0, :, 0] + 1
            positions[:, 0] /= fps
            positions = positions.to(self.positions.dtype)
        else:
            positions = video_positions(b, *latent.shape[2:], fps, frame_offset=pixel_frame, device=tokens.device,
                                        dtype=self.positions.dtype)
        mask = torch.full((b, m, 1), 1.0 - strength, dtype=self.mask.dtype, device=tokens.device)
        attention = self.attention
        if attention_strength is not None or attention is not None:
            attention = guide_attention_weights(
                attention, num_noisy=self.generated, num_existing=self.latent.shape[1], num_new=m,
                strength=1.0 if attention_strength is None else attention_strength, batch=b, device=tokens.device)
        return Track(torch.cat([self.latent, tokens], 1), torch.cat([self.clean, tokens], 1),
                     torch.cat([self.mask, mask], 1), torch.cat([self.positions, positions], 2), attention,
                     self.generated, self.reference, self.extended_keyframes(m))
