"""x0 predictions of the transformer for a video (+ audio) track at one σ, with the official multimodal guidance.

Per step up to five forwards: conditional; negative prompt (CFG); STG (each stream's self-attention skipped in its
``stg_blocks``); modality isolation (audio↔video cross-attention skipped everywhere); identity guidance (the
conditional pass without the audio track's ID-LoRA reference tokens). Each is run only when a stream's guidance needs
it; distilled runs are conditional-only.
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
        identity_guidance: scale ``s`` of ID-LoRA identity guidance (0 = off, no extra pass). When ``s ≠ 0``, the
            audio track has reference tokens (``Track.reference``) and σ lies in the range below, one more
            conditional pass runs on the same video track and the audio track without its reference tokens, and
            after the multimodal guidance ``x0 += s · (cond − noref)`` on every video token and on every audio token
            except those reference tokens (which get no identity term). Mirrors ComfyUI's ``LTXVReferenceAudio``
            post-CFG function (``cfg_result + (cond_pred − pred_noref) · scale``, negative and perturbed passes keep
            its reference tokens).
        identity_start / identity_end: the part of the run where identity guidance is on, as fractions ``p`` of it
            mapped to ``σ = 1 − p`` (:meth:`~.kdiffusion.FlowSampling.percent_to_sigma`): on while ``1 −
            identity_end ≤ σ ≤ 1 − identity_start``. ComfyUI's ``start_percent`` / ``end_percent`` go through its
            model sampling's shift instead (LTXAV's default 2.37: ``p = 0.5`` ↔ ``σ ≈ 0.91``); the defaults 0 and 1
            (the whole run) mean the same in both.
    """

    model: LTXAVTransformer
    positive: TextContexts
    negative: TextContexts | None = None
    video_guidance: Guidance = field(default_factory=GuidanceParams)
    audio_guidance: Guidance = field(default_factory=GuidanceParams)
    options: RunOptions = field(default_factory=RunOptions)
    identity_guidance: float = 0.0
    identity_start: float = 0.0
    identity_end: float = 1.0
    _last: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)

    def _inputs(self, track: Track | None, sigma: torch.Tensor, context: torch.Tensor, enabled: bool = True):
        if track is None:
            return None
        batch = track.latent.shape[0]
        return StreamInput(latent=track.latent, sigma=sigma.reshape(1).expand(batch).to(track.latent.device),
                           timesteps=track.timesteps(sigma), positions=track.positions,
                           context=context.expand(batch, -1, -1) if context.shape[0] == 1 else context,
                           attention_mask=track.attention, enabled=enabled, keyframes_mask=track.keyframes)

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
        identity = self._identity(video, audio, sigma, (not v_skip, not a_skip), cond_v, cond_a)
        last_v, last_a = self._last
        x0_v = last_v if v_skip and last_v is not None else guide(vg, cond_v, uncond[0], perturbed[0], isolated[0])
        x0_a = None
        if audio is not None:
            x0_a = last_a if a_skip and last_a is not None else guide(ag, cond_a, uncond[1], perturbed[1],
                                                                       isolated[1])
        if identity is not None:
            if not (v_skip and last_v is not None):
                x0_v = x0_v + identity[0]
            if not (a_skip and last_a is not None):
                x0_a = x0_a + identity[1]
        self._last = (x0_v, x0_a)
        return video.blend_x0(x0_v), (None if audio is None else audio.blend_x0(x0_a))

    def identity_active(self, audio: Track | None, sigma: float) -> bool:
        """Whether identity guidance runs its extra pass at ``sigma``: a non-zero scale, an audio track with
        reference tokens and ``1 − identity_end ≤ sigma ≤ 1 − identity_start``."""
        if not self.identity_guidance or audio is None or audio.reference[1] <= audio.reference[0]:
            return False
        return 1.0 - self.identity_end <= sigma <= 1.0 - self.identity_start

    def _identity(self, video: Track, audio: Track | None, sigma: torch.Tensor, enabled: tuple[bool, bool],
                  cond_v: torch.Tensor, cond_a: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(s·(cond_v − noref_v), s·(cond_a − noref_a))`` shaped like the conditional x0 (zeros on the audio
        reference tokens), or None when identity guidance is off at this σ."""
        if not self.identity_active(audio, float(sigma)):
            return None
        noref_v, noref_a = self._x0(video, audio.without_reference(), sigma, self.positive, None, enabled)
        s = self.identity_guidance
        delta_v = s * (cond_v - noref_v) if enabled[0] else torch.zeros_like(cond_v)
        delta_a = torch.zeros_like(cond_a)
        if enabled[1]:
            start, stop = audio.reference
            delta_a[:, :start] = s * (cond_a[:, :start] - noref_a[:, :start])
            delta_a[:, stop:] = s * (cond_a[:, stop:] - noref_a[:, start:])
        return delta_v, delta_a

    def reset(self) -> None:
        """Forget the previous step's prediction (the one ``skip_step`` reuses), e.g. before another run."""
        self._last = (None, None)
