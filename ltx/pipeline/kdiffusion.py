"""Drive our denoiser with any k-diffusion-style sampler (ComfyUI's SAMPLER objects use this calling convention).

k-diffusion samplers see one tensor ``x`` and call ``model(x, sigma · s_in, **extra_args)`` for the denoised
estimate. :class:`PackedStreams` packs the video and audio tokens into ``x`` ``(B, T_v·C_v + T_a·C_a)`` and
:class:`KDiffusionModel` unpacks, runs the :class:`~.denoiser.Denoiser` (guidance, conditioning masks) and packs
the x0 back, so ``sampler(model, x, sigmas, extra_args=…, callback=…, disable=…)`` works unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from .sampling import Cancelled, Denoise
from .track import Track


@dataclass(frozen=True)
class PackedStreams:
    """Shapes of the two token streams inside one flat ``(B, N)`` tensor."""

    video: tuple[int, ...]
    audio: tuple[int, ...] | None

    @staticmethod
    def of(video: Track, audio: Track | None) -> PackedStreams:
        return PackedStreams(tuple(video.latent.shape), None if audio is None else tuple(audio.latent.shape))

    def pack(self, v: torch.Tensor, a: torch.Tensor | None) -> torch.Tensor:
        parts = [v.flatten(1)] + ([a.flatten(1)] if a is not None else [])
        return torch.cat(parts, dim=1)

    def unpack(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        n_v = math.prod(self.video[1:])
        v = x[:, :n_v].reshape(self.video)
        a = None if self.audio is None else x[:, n_v:].reshape(self.audio)
        return v, a


class KDiffusionModel:
    """``model(x, sigma, **extra)`` → packed x0 for k-diffusion samplers (``sigma`` ``(B,)`` or scalar)."""

    def __init__(self, denoise: Denoise, video: Track, audio: Track | None, sigmas: torch.Tensor,
                 cancel: Callable[[], bool] | None = None) -> None:
        self.denoise, self.video, self.audio = denoise, video, audio
        self.layout = PackedStreams.of(video, audio)
        self.sigmas = sigmas.float().cpu()
        self.cancel = cancel

    def _step(self, sigma: float) -> int:
        return int(torch.argmin((self.sigmas - sigma).abs()))

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **_extra: object) -> torch.Tensor:
        if self.cancel is not None and self.cancel():
            raise Cancelled("Generation was cancelled.")
        s = sigma.reshape(-1)[0] if isinstance(sigma, torch.Tensor) else torch.tensor(float(sigma))
        v, a = self.layout.unpack(x)
        video = replace(self.video, latent=v.to(self.video.latent.dtype))
        audio = None if self.audio is None else replace(self.audio, latent=a.to(self.audio.latent.dtype))
        x0_v, x0_a = self.denoise(video, audio, s.float(), self._step(float(s)))
        return self.layout.pack(x0_v, x0_a).to(x.dtype)

    def tracks(self, x: torch.Tensor) -> tuple[Track, Track | None]:
        """The final packed ``x`` back as tracks (guides still attached)."""
        v, a = self.layout.unpack(x)
        return replace(self.video, latent=v), (None if self.audio is None else replace(self.audio, latent=a))


def sample_with(sampler: Callable[..., torch.Tensor], denoise: Denoise, video: Track, audio: Track | None,
                sigmas: torch.Tensor, *, progress: Callable[[int, int], None] | None = None,
                cancel: Callable[[], bool] | None = None, **sampler_kwargs) -> tuple[Track, Track | None]:
    """Run a k-diffusion-style ``sampler(model, x, sigmas, extra_args, callback, disable, **kw)`` on the tracks."""
    model = KDiffusionModel(denoise, video, audio, sigmas, cancel)
    total = len(sigmas) - 1

    def callback(info: dict) -> None:
        if progress is not None:
            progress(int(info["i"]) + 1, total)

    x = model.layout.pack(video.latent, None if audio is None else audio.latent)
    out = sampler(model, x, sigmas, extra_args={}, callback=callback, disable=True, **sampler_kwargs)
    return model.tracks(out)
