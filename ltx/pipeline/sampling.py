"""Sampling loops over σ schedules for a video (+ audio) track, driven by a :class:`Denoiser`.

Samplers (table :data:`SAMPLERS`): ``euler`` (the official default), ``euler_ancestral`` (``eta``; 0 = Euler),
``res_2s`` (the official HQ second-order SDE sampler). A ``progress(step, total)`` callback runs after every step,
then an optional ``preview(step, total, x0 video tokens)`` (for ``res_2s`` the x0 of the step's second model call),
and ``cancel()`` is checked before every model call; it raises :class:`Cancelled`. The loops get them as one
:class:`Callbacks`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from ..errors import Cancelled, InputError
from ..tokens import tokens_to_video
from .latents import offset_seed
from .res2s import res2s_coefficients
from .steps import euler_ancestral_step, euler_step, res2s_sde_step
from .track import Track

#: ``denoise(video, audio, sigma, step) -> (x0_video (B, T_v, C_v), x0_audio (B, T_a, C_a) | None)``, x0 blended
#: with the clean tokens (a :class:`~.denoiser.Denoiser`; ``ltx_pipelines.utils.types.DenoisingFunc`` + its
#: ``post_process_latent``)
Denoise = Callable[[Track, Track | None, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor | None]]


@dataclass(frozen=True)
class SamplerOptions:
    """Settings of the built-in samplers beyond σ: ``eta`` / ``s_noise`` (``euler_ancestral``: 0 = Euler, 1 = full
    ancestral noise), ``seed`` of the stochastic samplers' own CPU noise (``res_2s`` draws its substep noise from
    ``seed + 10000``), and for ``res_2s`` the dtype of its intermediate states (``model_dtype``, default: the
    latent's; ltx-pipelines uses the model dtype) and the anchor refinement ``bongmath`` — as
    ``ltx_pipelines.utils.samplers.res2s_audio_video_denoising_loop``'s ``model_dtype`` / ``bongmath``."""

    eta: float = 1.0  # euler_ancestral
    s_noise: float = 1.0
    seed: int = 0  # stochastic samplers' noise
    model_dtype: torch.dtype | None = None  # res_2s: dtype of the intermediate states (reference: the model dtype)
    bongmath: bool = True  # res_2s anchor refinement


@dataclass(frozen=True)
class Callbacks:
    """How a sampling loop talks to its host: ``progress(done, total)`` after every step, ``cancel() -> bool``
    before every model call (True stops the run with :class:`Cancelled`; a host may also raise its own interrupt),
    and ``preview(done, total, x0)`` after every step (after ``progress``) with the step's video x0: with ``grid``
    ``(F', H', W')`` set (:func:`~.stage.run_stage` sets the stage's) the video latent ``(B, C, F', H', W')`` — the
    first ``F'·H'·W'`` tokens, guide tokens dropped — else the loop's tokens ``(B, T_v, C)`` as they are
    (:mod:`.preview` turns a latent into a picture)."""

    progress: Callable[[int, int], None] | None = None
    cancel: Callable[[], bool] | None = None
    preview: Callable[[int, int, torch.Tensor], None] | None = None
    grid: tuple[int, int, int] | None = None

    def check_cancel(self) -> None:
        """Raises :class:`Cancelled` when ``cancel()`` says so."""
        if self.cancel is not None and self.cancel():
            raise Cancelled("Generation was cancelled.")

    def report(self, done: int, total: int) -> None:
        """Tell the host that ``done`` of ``total`` steps are finished (nothing without ``progress``)."""
        if self.progress is not None:
            self.progress(done, total)

    def show(self, done: int, total: int, x0_video: torch.Tensor) -> None:
        """``preview(done, total, x0)`` for the step's video x0 tokens ``(B, T_v, C)``, as a latent
        ``(B, C, F', H', W')`` when ``grid`` is set (nothing without ``preview``)."""
        if self.preview is None:
            return
        if self.grid is not None:
            f, h, w = self.grid
            x0_video = tokens_to_video(x0_video[:, : f * h * w], f, h, w)
        self.preview(done, total, x0_video)

    def step_done(self, done: int, total: int, x0_video: torch.Tensor) -> None:
        """:meth:`report`, then :meth:`show` the step's video x0 tokens ``(B, T_v, C)``."""
        self.report(done, total)
        self.show(done, total, x0_video)


def _tracks(video: Track, audio: Track | None, v: torch.Tensor, a: torch.Tensor | None):
    return replace(video, latent=v), (None if audio is None else replace(audio, latent=a))


def sample_euler(denoise: Denoise, video: Track, audio: Track | None, sigmas: torch.Tensor, opts: SamplerOptions,
                 callbacks: Callbacks) -> tuple[Track, Track | None]:
    """Euler over ``sigmas`` ``(n + 1,)``: one model call and one :func:`~.steps.euler_step` per stream and step on
    the tracks' latents ``(B, T, C)``; ``opts`` is unused. Mirrors
    ``ltx_pipelines.utils.samplers.euler_denoising_loop`` with
    ``ltx_core.components.diffusion_steps.EulerDiffusionStep``.

    Raises:
        Cancelled: ``callbacks.cancel()`` returned True before a model call.
    """
    n = len(sigmas) - 1
    for i in range(n):
        callbacks.check_cancel()
        x0_v, x0_a = denoise(video, audio, sigmas[i], i)
        v = euler_step(video.latent, x0_v, sigmas[i], sigmas[i + 1])
        a = None if audio is None else euler_step(audio.latent, x0_a, sigmas[i], sigmas[i + 1])
        video, audio = _tracks(video, audio, v, a)
        callbacks.step_done(i + 1, n, x0_v)
    return video, audio


def _ancestral(track: Track, x0: torch.Tensor, sigma: float, sigma_next: float, opts: SamplerOptions,
               gen: torch.Generator) -> torch.Tensor:
    """Per-token ancestral step: a token with denoise mask m moves from m·σ to m·σ_next (kept tokens stay put)."""
    noise = torch.randn(track.latent.shape, generator=gen).to(track.latent)
    out = euler_ancestral_step(track.latent, x0, sigma, sigma_next, eta=opts.eta, noise=noise, s_noise=opts.s_noise)
    if bool((track.mask == 1).all()):
        return out
    full = track.mask == 1
    plain = euler_step(track.latent, x0, sigma, sigma_next)  # partially kept tokens follow the deterministic path
    return torch.where(full, out, plain)


def sample_euler_ancestral(denoise: Denoise, video: Track, audio: Track | None, sigmas: torch.Tensor,
                           opts: SamplerOptions, callbacks: Callbacks) -> tuple[Track, Track | None]:
    """Rectified-flow Euler-ancestral over ``sigmas`` ``(n + 1,)`` (:func:`~.steps.euler_ancestral_step`, ``opts.eta``,
    ``opts.s_noise``), as ComfyUI's ``comfy.k_diffusion.sampling.sample_euler_ancestral_RF``. Noise ``(B, T, C)`` per
    stream and step (video, then audio) comes from one CPU generator seeded with ``opts.seed``; partially kept
    tokens (0 < mask < 1) take the deterministic Euler step.

    Raises:
        Cancelled: ``callbacks.cancel()`` returned True before a model call.
    """
    gen = torch.Generator().manual_seed(opts.seed)
    n = len(sigmas) - 1
    for i in range(n):
        callbacks.check_cancel()
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        x0_v, x0_a = denoise(video, audio, sigmas[i], i)
        v = _ancestral(video, x0_v, s, s_next, opts, gen)
        a = None if audio is None else _ancestral(audio, x0_a, s, s_next, opts, gen)
        video, audio = _tracks(video, audio, v, a)
        callbacks.step_done(i + 1, n, x0_v)
    return video, audio


def _res2s_noise(like: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Unit noise of ``like``'s shape ``(B, T, C)`` (float64, CPU), normalised globally and then per batch item over
    the last two dims (``ltx_pipelines.utils.samplers._get_new_noise``)."""
    noise = torch.randn(like.shape, generator=gen, dtype=torch.float64)
    noise = (noise - noise.mean()) / noise.std()
    return (noise - noise.mean(dim=(-2, -1), keepdim=True)) / noise.std(dim=(-2, -1), keepdim=True)


def sample_res2s(denoise: Denoise, video: Track, audio: Track | None, sigmas: torch.Tensor, opts: SamplerOptions,
                 callbacks: Callbacks) -> tuple[Track, Track | None]:
    """res_2s over ``sigmas`` ``(n + 1,)``: per step, stage 1 at σ, an SDE-noised midpoint at √(σ·σ_next), RK
    combination, SDE step noise (two model calls). When the schedule ends at 0 the last step ends at σ = 0.0011
    instead and one final denoise there gives the result (``2n + 1`` model calls).

    Mirrors ``ltx_pipelines.utils.samplers.res2s_audio_video_denoising_loop`` (``legacy_mode``, one scalar σ per
    step) with ``ltx_core.components.diffusion_steps.Res2sDiffusionStep``; noise ``(B, T, C)`` is drawn in float64
    on the CPU from ``opts.seed`` (steps) and ``opts.seed + 10000`` (substeps). Works without an audio track.

    Raises:
        Cancelled: ``callbacks.cancel()`` returned True before a model call.
    """
    dtype = opts.model_dtype or video.latent.dtype
    gen_step = torch.Generator().manual_seed(opts.seed)
    gen_sub = torch.Generator().manual_seed(offset_seed(opts.seed, 10000))
    n = len(sigmas) - 1
    if sigmas[-1] == 0:
        sigmas = torch.cat([sigmas[:-1], torch.tensor([0.0011, 0.0], device=sigmas.device)])
    hs = -torch.log(sigmas[1:].double().cpu() / sigmas[:-1].double().cpu())
    tracks = [t for t in (video, audio) if t is not None]

    def run(states: list[Track], sigma: torch.Tensor, step: int) -> list[torch.Tensor]:
        callbacks.check_cancel()
        out = denoise(states[0], states[1] if len(states) > 1 else None, sigma, step)
        return [out[0]] + ([out[1]] if len(states) > 1 else [])

    for i in range(n):
        sigma, sigma_next = sigmas[i].double(), sigmas[i + 1].double()
        anchors = [t.latent.double() for t in tracks]
        x0_1 = [t.blend_x0(x) for t, x in zip(tracks, run(tracks, sigmas[i], i), strict=True)]
        h = hs[i].item()
        a21, b1, b2 = res2s_coefficients(h)
        sub_sigma = torch.sqrt(sigma * sigma_next)
        eps1 = [x.double() - anc for x, anc in zip(x0_1, anchors, strict=True)]
        mids = []
        for t, anc, e in zip(tracks, anchors, eps1, strict=True):
            mid = anc + h * a21 * e
            mid = res2s_sde_step(anc, mid, sigma, sub_sigma, _res2s_noise(t.latent, gen_sub))
            mids.append(t.blend_x0(mid))
        if opts.bongmath and h < 0.5 and sigma > 0.03:
            for _ in range(100):
                anchors = [m - h * a21 * e for m, e in zip(mids, eps1, strict=True)]
                eps1 = [x.double() - anc for x, anc in zip(x0_1, anchors, strict=True)]
        mid_tracks = [replace(t, latent=m.to(dtype)) for t, m in zip(tracks, mids, strict=True)]
        x0_2 = [t.blend_x0(x) for t, x in zip(tracks, run(mid_tracks, sub_sigma.float(), i), strict=True)]
        new = []
        for t, anc, e1, x2 in zip(tracks, anchors, eps1, x0_2, strict=True):
            e2 = x2.double() - anc
            nxt = anc + h * (b1 * e1 + b2 * e2)
            nxt = res2s_sde_step(anc, nxt, sigma, sigma_next, _res2s_noise(t.latent, gen_step))
            new.append(replace(t, latent=t.blend_x0(nxt).to(dtype)))
        tracks = new
        callbacks.step_done(i + 1, n, x0_2[0])
    if sigmas[-1] == 0:
        final = run(tracks, sigmas[n], n)
        tracks = [replace(t, latent=t.blend_x0(x).to(dtype)) for t, x in zip(tracks, final, strict=True)]
    return tracks[0], (tracks[1] if len(tracks) > 1 else None)


SAMPLERS: dict[str, Callable[..., tuple[Track, Track | None]]] = {
    "euler": sample_euler,
    "euler_ancestral": sample_euler_ancestral,
    "res_2s": sample_res2s,
}


def sample(denoise: Denoise, video: Track, audio: Track | None, sigmas: torch.Tensor, sampler: str = "euler",
           options: SamplerOptions | None = None, progress: Callable[[int, int], None] | None = None,
           cancel: Callable[[], bool] | None = None, *,
           preview: Callable[[int, int, torch.Tensor], None] | None = None) -> tuple[Track, Track | None]:
    """Run the built-in ``sampler`` (a name of :data:`SAMPLERS`) over ``sigmas``, a float ``(steps + 1,)`` schedule
    from the tracks' current σ down (usually to 0); returns the final tracks, latents ``(B, T, C)`` with guides
    still attached. ``progress(done, total)`` runs after every step, then ``preview(done, total, x0 video tokens
    (B, T_v, C))`` (:class:`Callbacks`).

    Raises:
        InputError: ``sampler`` is not a built-in name.
        Cancelled: ``cancel()`` returned True before a model call.
    """
    if sampler not in SAMPLERS:
        raise InputError(f"Unknown sampler {sampler!r}; choose one of: {', '.join(SAMPLERS)}.")
    return SAMPLERS[sampler](denoise, video, audio, sigmas, options or SamplerOptions(),
                             Callbacks(progress, cancel, preview))
