"""x0 predictions of the transformer for a video (+ audio) track at one σ, with the official multimodal guidance.

Per step up to four forwards: conditional; negative prompt (CFG); STG (each stream's self-attention skipped in its
``stg_blocks``); modality isolation (audio↔video cross-attention skipped everywhere). Each is run only when a
stream's guidance needs it; distilled runs are conditional-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import InputError
from ..text.processor import TextContexts
from ..transformer import LTXAVTransformer, Perturbations, RunOptions, StreamInput, skip, velocity_to_x0
from .guidance import GuidanceParams, SigmaBinnedGuidance, guide
from .track import Track

Guidance = GuidanceParams | SigmaBinnedGuidance


def _at(g: Guidance, sigma: float) -> GuidanceParams:
    return g.at(sigma) if isinstance(g, SigmaBinnedGuidance) else g


@dataclass
class Denoiser:
    """Callable ``(video, audio, sigma, step) -> (x0_video, x0_audio)`` on :class:`~.track.Track` s: x0 ``(B, T, C)``
    per stream (same shape as the track's latent, guide tokens included), already blended with the clean tokens;
    ``sigma`` a 0-d tensor, ``step`` the index into the schedule (for ``skip_step``). ``x0_audio`` is None without
    an audio track.

    Mirrors ``ltx_pipelines.utils.helpers.multi_modal_guider_denoising_func`` (σ-binned guidance:
    ``multi_modal_guider_factory_denoising_func``) with ``post_process_latent`` folded in. Calling it raises
    :class:`~rs_ltxv.ltx.errors.InputError` when CFG ≠ 1 and ``negative`` is None.

    Attributes:
        positive / negative: text contexts of the prompt and of the negative prompt (negative needed for CFG > 1).
        video_guidance / audio_guidance: guidance per stream (constant or σ-binned).
    """

    model: LTXAVTransformer
    positive: TextContexts
    negative: TextContexts | None = None
    video_guidance: Guidance = field(default_factory=GuidanceParams)
    audio_guidance: Guidance = field(default_factory=GuidanceParams)
    options: RunOptions = field(default_factory=RunOptions)
    _last: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)

    def _inputs(self, track: Track | None, sigma: torch.Tensor, context: torch.Tensor, enabled: bool = True):
        if track is None:
            return None
        batch = track.latent.shape[0]
        return StreamInput(latent=track.latent, sigma=sigma.reshape(1).expand(batch).to(track.latent.device),
                           timesteps=track.timesteps(sigma), positions=track.positions,
                           context=context.expand(batch, -1, -1) if context.shape[0] == 1 else context,
                           attention_mask=track.attention, enabled=enabled)

    def _x0(self, video: Track | None, audio: Track | None, sigma: torch.Tensor, ctx: TextContexts,
            ptb: Perturbations | None, enabled: tuple[bool, bool] = (True, True)):
        v_in = self._inputs(video, sigma, ctx.video, enabled[0])
        a_in = self._inputs(audio, sigma, ctx.audio, enabled[1])
        with torch.no_grad():
            v, a = self.model(v_in, a_in, ptb, self.options)
        v = None if v is None else velocity_to_x0(v_in.latent, v, v_in.timesteps)
        a = None if a is None else velocity_to_x0(a_in.latent, a, a_in.timesteps)
        return v, a

    def __call__(self, video: Track, audio: Track | None, sigma: torch.Tensor, step: int):
        s = float(sigma)
        vg, ag = _at(self.video_guidance, s), _at(self.audio_guidance, s)
        v_skip, a_skip = vg.skips(step), ag.skips(step) or audio is None
        if v_skip and a_skip and self._last[0] is not None:  # reuse the guided x0, blended like every step
            last_v, last_a = self._last
            return video.blend_x0(last_v), (None if audio is None else audio.blend_x0(last_a))
        batch = video.latent.shape[0]
        cond_v, cond_a = self._x0(video, audio, sigma, self.positive, None, (not v_skip, not a_skip))
        uncond = perturbed = isolated = (0.0, 0.0)
        if vg.needs_uncond or (audio is not None and ag.needs_uncond):
            if self.negative is None:
                raise InputError("CFG > 1 needs a negative prompt context (negative=...).")
            uncond = self._x0(video, audio, sigma, self.negative, None)
        stg_rules = []
        if vg.needs_perturbed:
            stg_rules.append(skip("skip_video_self_attn", vg.stg_blocks))
        if audio is not None and ag.needs_perturbed:
            stg_rules.append(skip("skip_audio_self_attn", ag.stg_blocks))
        if stg_rules:
            perturbed = self._x0(video, audio, sigma, self.positive, Perturbations.same_for_batch(batch, stg_rules))
        if audio is not None and (vg.needs_isolated or ag.needs_isolated):
            rules = [skip("skip_a2v_cross_attn"), skip("skip_v2a_cross_attn")]
            isolated = self._x0(video, audio, sigma, self.positive, Perturbations.same_for_batch(batch, rules))
        last_v, last_a = self._last
        x0_v = last_v if v_skip and last_v is not None else guide(vg, cond_v, uncond[0], perturbed[0], isolated[0])
        x0_a = None
        if audio is not None:
            x0_a = last_a if a_skip and last_a is not None else guide(ag, cond_a, uncond[1], perturbed[1],
                                                                       isolated[1])
        self._last = (x0_v, x0_a)
        return video.blend_x0(x0_v), (None if audio is None else audio.blend_x0(x0_a))

    def reset(self) -> None:
        """Forget the previous step's prediction (the one ``skip_step`` reuses), e.g. before another run."""
        self._last = (None, None)
