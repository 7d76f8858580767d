"""Drive our denoiser with any k-diffusion-style sampler (ComfyUI's SAMPLER objects use this calling convention).

k-diffusion samplers see one tensor ``x`` and call ``model(x, sigma · s_in, **extra_args)`` for the denoised
estimate. :class:`PackedStreams` packs the video and audio tokens into ``x`` ``(B, T_v·C_v + T_a·C_a)`` (float32)
and :class:`KDiffusionModel` unpacks, runs the :class:`~.denoiser.Denoiser` (guidance, conditioning masks) and packs
the x0 back, so ``sampler(model, x, sigmas, extra_args=…, callback=…, disable=…)`` works unchanged.

What ComfyUI's samplers (``comfy/k_diffusion/sampling.py``) reach for besides ``model(x, sigma)``, and what we give:

* ``model.inner_model.inner_model.model_sampling`` (ancestral samplers pick their rectified-flow variant when it is a
  ``comfy.model_sampling.CONST``; lcm calls ``noise_scaling``) and ``model.inner_model.model_patcher
  .get_model_object("model_sampling")`` (the SDE / log-SNR samplers): a :class:`FlowSampling`, or the object given
  in :attr:`ExternalSampler.model_sampling` — the node adapter passes a subclass of core's ``CONST`` there, because
  only ``nodes/`` may import ComfyUI and the ``isinstance`` checks need core's class;
* ``extra_args["seed"]`` (their noise samplers are seeded from it) and ``extra_args["model_options"]``;
* anything else (core's model, conds, CFG++ post-CFG hooks) raises :class:`~..errors.InputError` naming it.

Conditioning: the tracks arrive already noised by :func:`~.stage.noise_tracks` (``σ₀·ε + (1 − σ₀)·latent`` per token,
scaled by its denoise mask), i.e. what ``CONST.noise_scaling`` gives. Fully kept tokens (mask 0: a strength-1 first
frame, guide tokens, the audio prefix) are put back to their clean value before every model call and at the end —
ComfyUI's ``KSamplerX0Inpaint`` does the same — so stochastic samplers cannot drift them. Partially kept tokens
(strength < 1) follow whatever the sampler does (the built-in ``euler_ancestral`` steps them deterministically).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from ..errors import InputError
from .sampling import Cancelled, Denoise
from .track import Track


@dataclass(frozen=True)
class ExternalSampler:
    """A k-diffusion-style sampler ``fn(model, x, sigmas, extra_args, callback, disable, **options) -> x`` to use
    instead of a built-in one (a ComfyUI SAMPLER's ``sampler_function`` + ``extra_options``).

    ``model_sampling`` replaces the default :class:`FlowSampling` seen by the sampler (a hook for an object that
    also passes ComfyUI's ``isinstance(…, CONST)`` checks)."""

    fn: Callable[..., torch.Tensor]
    options: Mapping[str, Any] = field(default_factory=dict)
    name: str = "external"
    model_sampling: Any = None


class FlowSampling:
    """Rectified flow ``x_σ = (1 − σ)·x0 + σ·ε``, σ ∈ [0, 1]: the part of ComfyUI's ``CONST`` +
    ``ModelSamplingDiscreteFlow`` (shift 1, multiplier 1000) interface that samplers use. σ and tensors are unitless;
    ``timestep`` is σ·1000. Tensors are ``(B, …)`` (here the packed ``(B, N)``); σ is a scalar or ``(B,)``, broadcast
    over the trailing dimensions (ComfyUI's ``reshape_sigma``)."""

    sigma_min = 1e-3
    sigma_max = 1.0
    multiplier = 1000.0

    @property
    def sigmas(self) -> torch.Tensor:
        """The 1000 σ of the discrete model, ``(1000,)`` from 0.001 to 1 (``ModelSamplingDiscreteFlow.sigmas``)."""
        return torch.linspace(self.sigma_min, self.sigma_max, 1000)

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """σ → model timestep σ·1000, same shape as ``sigma``."""
        return sigma * self.multiplier

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        """Model timestep → σ = timestep / 1000 (shift 1), same shape as ``timestep``."""
        return timestep / self.multiplier

    def percent_to_sigma(self, percent: float) -> float:
        """Fraction of the sampling run (0 = start) → σ = 1 − percent, clamped to [0, 1]."""
        return min(max(1.0 - percent, 0.0), 1.0)

    @staticmethod
    def _shape(sigma: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
        s = torch.as_tensor(sigma, device=like.device, dtype=like.dtype)
        return s.view(()) if s.numel() == 1 else s.view(s.shape[:1] + (1,) * (like.ndim - 1))

    def calculate_input(self, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Model input for the noisy sample ``noise`` ``(B, …)``: unchanged (``CONST.calculate_input``)."""
        return noise

    def calculate_denoised(self, sigma: torch.Tensor, model_output: torch.Tensor,
                           model_input: torch.Tensor) -> torch.Tensor:
        """x0 from a velocity prediction: ``model_input − σ·model_output``, both ``(B, …)`` of one shape
        (``CONST.calculate_denoised``)."""
        return model_input - model_output * self._shape(sigma, model_output)

    def noise_scaling(self, sigma: torch.Tensor, noise: torch.Tensor, latent_image: torch.Tensor,
                      max_denoise: bool = False) -> torch.Tensor:
        """Noise a clean latent to σ: ``σ·noise + (1 − σ)·latent_image``, both ``(B, …)`` of one shape
        (``CONST.noise_scaling``; ``max_denoise`` is ignored, as there)."""
        s = self._shape(sigma, noise)
        return s * noise + (1.0 - s) * latent_image

    def inverse_noise_scaling(self, sigma: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """``latent / (1 − σ)`` for a ``(B, …)`` latent (``CONST.inverse_noise_scaling``)."""
        return latent / (1.0 - self._shape(sigma, latent))


class _Missing:
    """Stands for a part of ComfyUI's model we do not have; any attribute access says which and why."""

    def __init__(self, path: str, sampler: str, **known: Any) -> None:
        self.__dict__.update(known)
        self._path, self._sampler = path, sampler

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise InputError(f"The sampler {self._sampler!r} needs {self._path}.{name}, a part of ComfyUI's own model "
                         "that RS LTXV does not have; pick a k-diffusion sampler (euler, euler_ancestral, heun, "
                         "dpmpp_2m, dpmpp_2m_sde, lms, …) or a built-in sampler_name.")


class _PatcherView(_Missing):
    def get_model_object(self, name: str) -> Any:
        return self.model_sampling if name == "model_sampling" else getattr(self, name)


@dataclass(frozen=True)
class PackedStreams:
    """Shapes of the two token streams inside one flat ``(B, N)`` tensor."""

    video: tuple[int, ...]
    audio: tuple[int, ...] | None

    @staticmethod
    def of(video: Track, audio: Track | None) -> PackedStreams:
        """The layout of these tracks: their latents' shapes ``(B, T, C)``."""
        return PackedStreams(tuple(video.latent.shape), None if audio is None else tuple(audio.latent.shape))

    def pack(self, v: torch.Tensor, a: torch.Tensor | None = None) -> torch.Tensor:
        """Video ``(B, T_v, C_v)`` and audio ``(B, T_a, C_a)`` (or None) → ``(B, T_v·C_v + T_a·C_a)``, video first."""
        parts = [v.flatten(1)] + ([a.flatten(1)] if a is not None else [])
        return torch.cat(parts, dim=1)

    def unpack(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Inverse of :meth:`pack`: ``(B, N)`` → (video ``(B, T_v, C_v)``, audio ``(B, T_a, C_a)`` or None), as views
        where possible, in ``x``'s dtype."""
        n_v = math.prod(self.video[1:])
        v = x[:, :n_v].reshape(self.video)
        a = None if self.audio is None else x[:, n_v:].reshape(self.audio)
        return v, a


class KDiffusionModel:
    """``model(x, sigma, **extra)`` → packed x0 ``(B, N)`` for k-diffusion samplers (``x`` ``(B, N)`` as
    :class:`PackedStreams` lays it out, ``sigma`` ``(B,)`` or scalar); plays the part of ComfyUI's
    ``comfy.samplers.KSamplerX0Inpaint`` around the model. The denoise step index passed on is that of the schedule
    σ nearest to ``sigma``.

    A call raises :class:`~rs_ltxv.ltx.errors.InputError` when ``model_options`` carries ComfyUI CFG hooks (CFG++
    samplers) and :class:`~rs_ltxv.ltx.errors.Cancelled` when ``cancel()`` says so; reaching for a part of ComfyUI's
    model that is not offered (``inner_model…``) raises :class:`~rs_ltxv.ltx.errors.InputError` naming it."""

    def __init__(self, denoise: Denoise, video: Track, audio: Track | None, sigmas: torch.Tensor,
                 cancel: Callable[[], bool] | None = None, model_sampling: Any = None, name: str = "external") -> None:
        self.denoise, self.video, self.audio = denoise, video, audio
        self.layout = PackedStreams.of(video, audio)
        self.sigmas = sigmas.float().cpu()
        self.cancel = cancel
        self.name = name
        self.model_sampling = model_sampling if model_sampling is not None else FlowSampling()
        base = _Missing("model.inner_model.inner_model", name, model_sampling=self.model_sampling)
        self.inner_model = _Missing("model.inner_model", name, model_sampling=self.model_sampling, inner_model=base,
                                    model_patcher=_PatcherView("model.inner_model.model_patcher", name,
                                                               model_sampling=self.model_sampling))
        tracks = [video] + ([audio] if audio is not None else [])
        self._keep = self.layout.pack(*[(t.mask == 0).expand_as(t.latent) for t in tracks])
        self._clean = self.layout.pack(*[t.clean.float() for t in tracks])

    def _step(self, sigma: float) -> int:
        return int(torch.argmin((self.sigmas - sigma).abs()))

    def keep_conditioning(self, x: torch.Tensor) -> torch.Tensor:
        """Packed ``x`` ``(B, N)`` with fully kept tokens (denoise mask 0) set to their clean value, in ``x``'s dtype
        (what ComfyUI's ``KSamplerX0Inpaint`` does for a mask)."""
        return torch.where(self._keep.to(x.device), self._clean.to(x), x)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, model_options: Mapping[str, Any] | None = None,
                 **_extra: object) -> torch.Tensor:
        hooks = [k for k in ("sampler_post_cfg_function", "sampler_pre_cfg_function", "sampler_cfg_function")
                 if (model_options or {}).get(k)]
        if hooks:
            raise InputError(f"The sampler {self.name!r} hooks into ComfyUI's CFG ({', '.join(hooks)}; CFG++ samplers "
                             "do this). RS LTXV applies its own multimodal guidance, so use the same sampler without "
                             "'_cfg_pp'.")
        if self.cancel is not None and self.cancel():
            raise Cancelled("Generation was cancelled.")
        s = sigma.reshape(-1)[0] if isinstance(sigma, torch.Tensor) else torch.tensor(float(sigma))
        v, a = self.layout.unpack(self.keep_conditioning(x))
        video = replace(self.video, latent=v.to(self.video.latent.dtype))
        audio = None if self.audio is None else replace(self.audio, latent=a.to(self.audio.latent.dtype))
        x0_v, x0_a = self.denoise(video, audio, s.float(), self._step(float(s)))
        return self.layout.pack(x0_v, x0_a).to(x.dtype)

    def tracks(self, x: torch.Tensor) -> tuple[Track, Track | None]:
        """The final packed ``x`` ``(B, N)`` back as tracks with latents ``(B, T, C)`` in their dtype (kept tokens
        exact, guides still attached)."""
        v, a = self.layout.unpack(self.keep_conditioning(x))
        video = replace(self.video, latent=v.to(self.video.latent.dtype))
        return video, (None if self.audio is None else replace(self.audio, latent=a.to(self.audio.latent.dtype)))


def sample_with(sampler: Callable[..., torch.Tensor], denoise: Denoise, video: Track, audio: Track | None,
                sigmas: torch.Tensor, *, progress: Callable[[int, int], None] | None = None,
                cancel: Callable[[], bool] | None = None, seed: int | None = None, model_sampling: Any = None,
                name: str | None = None, preview: Callable[[int, int, torch.Tensor], None] | None = None,
                **sampler_kwargs) -> tuple[Track, Track | None]:
    """Run a k-diffusion-style ``sampler(model, x, sigmas, extra_args, callback, disable, **kw)`` on the tracks
    (already noised for ``sigmas[0]``); ``seed`` goes to ``extra_args["seed"]`` for the sampler's own noise.
    The sampler's ``callback(info)`` after each step drives ``progress(done, total)`` and then
    ``preview(done, total, x0 video tokens (B, T_v, C))`` with the video part of ``info["denoised"]``.

    ``sigmas`` is the float ``(steps + 1,)`` schedule; the sampler sees the tracks packed into one float32 ``(B, N)``
    tensor. Returns the tracks with their latents ``(B, T, C)`` replaced (kept tokens exact, guides still attached).
    Like ``comfy.samplers.KSAMPLER.sample`` without its ``noise_scaling`` (done by :func:`~.stage.noise_tracks`) and
    ``inverse_noise_scaling`` (the identity for schedules ending at σ = 0).

    Raises:
        InputError: the sampler needs a part of ComfyUI's model or a CFG hook that RS-LTXV does not offer.
        Cancelled: ``cancel()`` returned True.
    """
    name = name or getattr(sampler, "__name__", "external")
    model = KDiffusionModel(denoise, video, audio, sigmas, cancel, model_sampling, name)
    total = len(sigmas) - 1

    def callback(info: dict) -> None:
        done = min(int(info["i"]) + 1, total)
        if progress is not None:
            progress(done, total)
        if preview is not None and info.get("denoised") is not None:
            preview(done, total, model.layout.unpack(info["denoised"])[0])

    x = model.layout.pack(video.latent.float(), None if audio is None else audio.latent.float())
    extra: dict[str, Any] = {"model_options": {}}
    if seed is not None:
        extra["seed"] = int(seed)
    out = sampler(model, x, sigmas, extra_args=extra, callback=callback, disable=True, **sampler_kwargs)
    return model.tracks(out)


def sample_external(ext: ExternalSampler, denoise: Denoise, video: Track, audio: Track | None, sigmas: torch.Tensor,
                    *, seed: int | None = None, progress: Callable[[int, int], None] | None = None,
                    cancel: Callable[[], bool] | None = None,
                    preview: Callable[[int, int, torch.Tensor], None] | None = None) -> tuple[Track, Track | None]:
    """:func:`sample_with` for an :class:`ExternalSampler` (its options, name and model_sampling hook); ``sigmas``
    ``(steps + 1,)``, tracks and ``progress`` / ``preview`` as there. Raises as :func:`sample_with`."""
    return sample_with(ext.fn, denoise, video, audio, sigmas, progress=progress, cancel=cancel, seed=seed,
                       model_sampling=ext.model_sampling, name=ext.name, preview=preview, **dict(ext.options))
