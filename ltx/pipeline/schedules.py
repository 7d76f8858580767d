"""Sigma schedules (noise levels from 1 to 0) for LTX-2 sampling.

* ``ltxv`` — the LTX-2 scheduler (``ltx_core.components.schedulers.LTX2Scheduler``): ``linspace(1, 0, steps + 1)``
  warped by a shift that grows with the number of latent tokens (``base_shift`` at 1024 tokens → ``max_shift`` at
  4096; 4096 when no latent is given), then stretched so the last non-zero sigma equals ``terminal``.
* ``distilled`` — the 8 sigmas the distilled checkpoints were trained with; ``stage2`` — the 3 refinement sigmas of
  the second (upscaled) stage, starting at 0.909375 (``ltx_pipelines.utils.constants.DISTILLED_SIGMA_VALUES`` /
  ``STAGE_2_DISTILLED_SIGMA_VALUES``).
* ``linear_quadratic`` — linear then quadratic (older LTX-Video default;
  ``ltx_core.components.schedulers.LinearQuadraticScheduler``).

All functions return float32 ``(steps + 1,)`` tensors ending in 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..errors import InputError

DISTILLED_SIGMAS: tuple[float, ...] = (1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0)
STAGE2_SIGMAS: tuple[float, ...] = (0.909375, 0.725, 0.421875, 0.0)
BASE_SHIFT_TOKENS = 1024
MAX_SHIFT_TOKENS = 4096


def token_shift(tokens: int, max_shift: float = 2.05, base_shift: float = 0.95) -> float:
    """The scheduler's shift for a latent of ``tokens`` tokens (linear between the two anchors; ``sigma_shift`` in
    ``LTX2Scheduler.execute``)."""
    slope = (max_shift - base_shift) / (MAX_SHIFT_TOKENS - BASE_SHIFT_TOKENS)
    return tokens * slope + (base_shift - slope * BASE_SHIFT_TOKENS)


def ltxv_sigmas(
    steps: int,
    tokens: int | None = None,
    *,
    max_shift: float = 2.05,
    base_shift: float = 0.95,
    stretch: bool = True,
    terminal: float = 0.1,
) -> torch.Tensor:
    """The LTX-2 scheduler: float32 σ of shape ``(steps + 1,)`` from 1 down to 0, the last non-zero one equal to
    ``terminal`` when ``stretch``. Mirrors ``ltx_core.components.schedulers.LTX2Scheduler.execute`` (which for one
    step divides 0 by 0 when stretching; here one step gives ``[1, 0]``).

    Args:
        steps: number of sampling steps (the result has ``steps + 1`` values).
        tokens: latent tokens ``F'·H'·W'`` (the official pipelines pass none → 4096).

    Raises:
        InputError: ``steps`` < 1.
    """
    if steps < 1:
        raise InputError(f"steps must be at least 1, got {steps}")
    shift = token_shift(MAX_SHIFT_TOKENS if tokens is None else tokens, max_shift, base_shift)
    sigmas = torch.linspace(1.0, 0.0, steps + 1)
    sigmas = torch.where(sigmas != 0, math.exp(shift) / (math.exp(shift) + (1 / sigmas - 1)), 0)
    if stretch and steps > 1:  # one step has nothing to stretch (the reference divides 0 by 0 there)
        nonzero = sigmas != 0
        one_minus = 1.0 - sigmas[nonzero]
        sigmas[nonzero] = 1.0 - one_minus / (one_minus[-1] / (1.0 - terminal))
    return sigmas.to(torch.float32)


def linear_quadratic_sigmas(
    steps: int, threshold_noise: float = 0.025, linear_steps: int | None = None
) -> torch.Tensor:
    """Linear steps up to ``threshold_noise`` then a quadratic ramp (LTX-Video's schedule): float32 σ of shape
    ``(steps + 1,)`` from 1 to 0. Mirrors ``ltx_core.components.schedulers.LinearQuadraticScheduler.execute``."""
    if steps == 1:
        return torch.tensor([1.0, 0.0])
    linear_steps = steps // 2 if linear_steps is None else linear_steps
    linear = [i * threshold_noise / linear_steps for i in range(linear_steps)]
    diff = linear_steps - threshold_noise * steps
    quad_steps = steps - linear_steps
    quad = []
    if quad_steps > 0:
        a = diff / (linear_steps * quad_steps**2)
        b = threshold_noise / linear_steps - 2 * diff / quad_steps**2
        c = a * linear_steps**2
        quad = [a * i**2 + b * i + c for i in range(linear_steps, steps)]
    return torch.tensor([1.0 - x for x in [*linear, *quad, 1.0]], dtype=torch.float32)


def _fixed(values: Sequence[float]) -> Callable[..., torch.Tensor]:
    def make(steps: int | None = None, tokens: int | None = None, **_: object) -> torch.Tensor:
        if steps is not None and steps != len(values) - 1:
            raise InputError(f"this schedule has exactly {len(values) - 1} steps; got steps={steps}")
        return torch.tensor(values, dtype=torch.float32)

    return make


SCHEDULES: dict[str, Callable[..., torch.Tensor]] = {
    "ltxv": lambda steps, tokens=None, **kw: ltxv_sigmas(steps, tokens, **kw),
    "distilled": _fixed(DISTILLED_SIGMAS),
    "stage2": _fixed(STAGE2_SIGMAS),
    "linear_quadratic": lambda steps, tokens=None, **_shift: linear_quadratic_sigmas(steps),
}


def make_sigmas(
    name: str,
    steps: int,
    *,
    tokens: int | None = None,
    distilled_model: bool = False,
    custom: Sequence[float] | torch.Tensor | None = None,
    **kwargs: float | bool,
) -> torch.Tensor:
    """Pick a schedule by name. ``"auto"`` is the distilled list for a distilled checkpoint at 8 steps, else ``ltxv``.

    ``custom`` (explicit sigmas) wins over the name; it must be strictly decreasing, start ≤ 1 and end at 0.
    Returns float32 σ of shape ``(steps + 1,)`` (``custom``: its own length, flattened); ``kwargs`` go to
    :func:`ltxv_sigmas` (``max_shift``, ``base_shift``, ``stretch``, ``terminal``).

    Raises:
        InputError: invalid ``custom`` sigmas, an unknown name, ``steps`` < 1 for ``ltxv``, or a fixed list
            (``distilled``, ``stage2``) asked for another number of steps.
    """
    if custom is not None:
        sigmas = torch.as_tensor(custom, dtype=torch.float32).flatten()
        if sigmas.numel() < 2 or sigmas[0] > 1 or sigmas[-1] != 0 or not bool((sigmas[1:] < sigmas[:-1]).all()):
            raise InputError("custom sigmas must be strictly decreasing, start at most 1.0 and end with 0.0; "
                             f"got {sigmas.tolist()}")
        return sigmas
    if name == "auto":
        name = "distilled" if distilled_model and steps == len(DISTILLED_SIGMAS) - 1 else "ltxv"
    if name not in SCHEDULES:
        raise InputError(f"Unknown schedule {name!r}; choose one of: auto, {', '.join(SCHEDULES)}.")
    return SCHEDULES[name](steps, tokens=tokens, **kwargs)
