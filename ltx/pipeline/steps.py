"""Single sampler steps on x0 (denoised) predictions for rectified flow (``x_σ = (1 − σ)·x0 + σ·ε``).

* :func:`euler_step` — ``x + (σ_next − σ)·(x − x0)/σ`` computed in float32
  (``ltx_core.components.diffusion_steps.EulerDiffusionStep``).
* :func:`euler_ancestral_step` — step down to ``σ_down < σ_next`` then re-noise to ``σ_next`` (``eta`` = 0 is Euler);
  the rectified-flow formulation ComfyUI uses for ``euler_ancestral`` (``sample_euler_ancestral_RF``).
* :func:`sde_coefficients` / :func:`res2s_sde_step` — the SDE re-noising used by the res_2s sampler
  (``σ_up = 0.5·σ_next``; ``ltx_core.components.diffusion_steps.Res2sDiffusionStep``), see
  :mod:`rs_ltxv.ltx.pipeline.res2s`.
"""

from __future__ import annotations

import torch


def euler_step(x: torch.Tensor, x0: torch.Tensor, sigma: float | torch.Tensor,
               sigma_next: float | torch.Tensor) -> torch.Tensor:
    """One Euler step from ``sigma`` to ``sigma_next``: ``x`` and ``x0`` of one shape, e.g. tokens ``(B, T, C)``;
    result in that shape and ``x``'s dtype. ``sigma_next`` may be a tensor broadcasting against ``x``. Mirrors
    ``EulerDiffusionStep.step`` (velocity from ``ltx_core.utils.to_velocity``).

    Raises ``ValueError`` when ``sigma`` is 0 (as ``to_velocity``; the schedules never step from σ = 0)."""
    sigma_f = float(sigma)
    if sigma_f == 0:
        raise ValueError("sigma can't be 0 in an Euler step")
    velocity = ((x.float() - x0.float()) / sigma_f).to(x.dtype)
    dt = torch.as_tensor(sigma_next, dtype=torch.float32) - torch.as_tensor(sigma, dtype=torch.float32)
    return (x.float() + velocity.float() * dt).to(x.dtype)


def euler_ancestral_step(x: torch.Tensor, x0: torch.Tensor, sigma: float, sigma_next: float, *, eta: float,
                         noise: torch.Tensor | None, s_noise: float = 1.0) -> torch.Tensor:
    """Rectified-flow Euler-ancestral: deterministic step to ``σ_down``, then fresh ``noise`` (scaled by ``s_noise``)
    up to ``σ_next``. ``x``, ``x0`` and ``noise`` share one shape, e.g. ``(B, T, C)``; the result has it, in ``x``'s
    dtype. ``noise`` may be None when ``eta`` is 0 or ``σ_next`` is 0 (the step is then deterministic). One step of
    ComfyUI's ``comfy.k_diffusion.sampling.sample_euler_ancestral_RF``."""
    sigma, sigma_next = float(sigma), float(sigma_next)
    if sigma_next == 0 or eta == 0:
        ratio = sigma_next / sigma
        return (ratio * x.float() + (1 - ratio) * x0.float()).to(x.dtype)
    sigma_down = sigma_next * (1 + (sigma_next / sigma - 1) * eta)
    alpha_next, alpha_down = 1 - sigma_next, 1 - sigma_down
    renoise = max(sigma_next**2 - sigma_down**2 * alpha_next**2 / alpha_down**2, 0.0) ** 0.5
    ratio = sigma_down / sigma
    out = ratio * x.float() + (1 - ratio) * x0.float()
    out = (alpha_next / alpha_down) * out + noise.float() * (s_noise * renoise)
    return out.to(x.dtype)


def sde_coefficients(sigma_next: torch.Tensor, sigma_up: torch.Tensor,
                     sigma_max: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(alpha_ratio, sigma_down, sigma_up)`` of a variance-preserving re-noise given ``sigma_up`` (tensors of
    ``sigma_next``'s shape, here 0-d). ``Res2sDiffusionStep.get_sde_coeff`` with ``sigma_up`` given (ours does not
    clamp ``sigma_up`` in place)."""
    sigma_up = torch.minimum(sigma_up, sigma_next * 0.9999)
    signal = (torch.ones_like(sigma_next) if sigma_max is None else sigma_max) - sigma_next
    residual = (sigma_next**2 - sigma_up**2).clamp(min=0) ** 0.5
    alpha_ratio = signal + residual
    sigma_down = residual / alpha_ratio
    sigma_up = torch.nan_to_num(sigma_up, 0.0)
    sigma_down = torch.where(torch.isnan(sigma_down), sigma_next.to(sigma_down.dtype), sigma_down)
    return torch.nan_to_num(alpha_ratio, 1.0), sigma_down, sigma_up


def res2s_sde_step(sample: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor,
                   noise: torch.Tensor) -> torch.Tensor:
    """Move ``sample`` (at ``sigma``) towards the deterministic target ``denoised`` (at ``sigma_next``) and inject
    ``noise`` with ``σ_up = 0.5·σ_next``. Returns ``denoised`` unchanged when ``σ_next`` or ``σ_up`` is 0.

    ``sample``, ``denoised`` and ``noise`` share one shape, e.g. ``(B, T, C)`` (float64 in the sampler); σ are 0-d
    tensors. The result has that shape, in ``denoised``'s dtype. Mirrors ``Res2sDiffusionStep.step``."""
    alpha_ratio, sigma_down, sigma_up = sde_coefficients(sigma_next, sigma_next * 0.5)
    if bool(torch.any(sigma_up == 0)) or bool(torch.any(sigma_next == 0)):
        return denoised
    eps = (sample - denoised) / (sigma - sigma_next)
    target = sample - sigma * eps
    return (alpha_ratio * (target + sigma_down * eps) + sigma_up * noise).to(denoised.dtype)
