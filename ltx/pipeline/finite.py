"""Stop a run at the step where the model's prediction stops being finite.

In float16 a layer can overflow to ±inf and everything after becomes NaN: black frames and silent or broken audio
that a user only sees after the whole run (the AAC encoder then fails on NaN samples). :func:`finite_checked` wraps a
denoise function and raises :class:`~rs_ltxv.ltx.errors.NonFiniteError` at the first step whose x0 prediction holds
NaN or ±inf, naming the step, σ and the stream, and suggesting bfloat16. The check is one reduction per stream and
step (a few ms against a transformer forward of seconds).
"""

from __future__ import annotations

import torch

from ..errors import NonFiniteError
from .sampling import Denoise
from .track import Track


def check_finite(stream: str, x: torch.Tensor | None, step: int, sigma: torch.Tensor | float) -> None:
    """Raise :class:`NonFiniteError` if the ``stream`` tensor ``x`` (any shape) holds NaN or ±inf."""
    if x is not None and not bool(torch.isfinite(x).all()):
        dtype = str(x.dtype).removeprefix("torch.")
        hint = " Run in bfloat16 (or float32): float16 overflows in this model." if x.dtype == torch.float16 else (
            " Check the inputs (conditioning images / audio) and the model files.")
        raise NonFiniteError(f"The {stream} prediction became NaN/inf at step {step + 1} (σ = {float(sigma):.4f}, "
                             f"{dtype}); the run was stopped there.{hint}")


def finite_checked(denoise: Denoise) -> Denoise:
    """``denoise`` that raises :class:`NonFiniteError` when its video or audio x0 ``(B, T, C)`` is not finite."""

    def checked(video: Track, audio: Track | None, sigma: torch.Tensor, step: int):
        x0_v, x0_a = denoise(video, audio, sigma, step)
        check_finite("video", x0_v, step, sigma)
        check_finite("audio", x0_a, step, sigma)
        return x0_v, x0_a

    return checked
