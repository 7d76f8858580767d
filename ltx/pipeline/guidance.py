"""Guidance on x0 predictions: CFG, STG, modality isolation and rescale, per stream (the official multimodal guider,
``ltx_core.components.guiders.MultiModalGuider``).

For one stream with the conditional prediction ``c``::

    pred = c + (cfg − 1)(c − uncond_text) + stg·(c − perturbed) + (modality − 1)(c − isolated)
    pred *= rescale·std(c)/std(pred) + (1 − rescale)          (when rescale ≠ 0)

Passes: ``uncond_text`` uses the negative prompt; ``perturbed`` skips the stream's self-attention in ``stg_blocks``;
``isolated`` skips audio↔video cross-attention in every block. A pass is only needed when its scale is active.
Distilled checkpoints run conditional-only (``cfg = 1, stg = 0, modality = 1``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from ..errors import InputError


@dataclass(frozen=True)
class GuidanceParams:
    """Guidance of one stream; mirrors ``ltx_core.components.guiders.MultiModalGuiderParams`` (``cfg_scale``,
    ``stg_scale``, ``stg_blocks``, ``rescale_scale``, ``modality_scale``, ``skip_step``). ``stg_blocks`` are
    transformer block indices; ``skip_step`` k reuses the previous prediction on k of every k + 1 steps.

    ``std_per_item`` computes the rescale std per batch item (``MultiModalGuider.calculate`` uses one std over the
    whole tensor; identical for batch 1)."""

    cfg: float = 1.0
    stg: float = 0.0
    stg_blocks: tuple[int, ...] = field(default_factory=tuple)
    rescale: float = 0.0
    modality: float = 1.0
    skip_step: int = 0
    std_per_item: bool = True

    @property
    def needs_uncond(self) -> bool:
        """CFG is on (``cfg`` ≠ 1): a negative-prompt pass is needed
        (``MultiModalGuider.do_unconditional_generation``)."""
        return not math.isclose(self.cfg, 1.0)

    @property
    def needs_perturbed(self) -> bool:
        """STG is on (``stg`` ≠ 0): a pass with self-attention skipped in ``stg_blocks`` is needed
        (``MultiModalGuider.do_perturbed_generation``)."""
        return not math.isclose(self.stg, 0.0)

    @property
    def needs_isolated(self) -> bool:
        """Modality guidance is on (``modality`` ≠ 1): a pass without audio↔video cross-attention is needed
        (``MultiModalGuider.do_isolated_modality_generation``)."""
        return not math.isclose(self.modality, 1.0)

    def skips(self, step: int) -> bool:
        """Reuse the previous step's prediction at ``step`` (every ``skip_step + 1``-th step is computed);
        ``MultiModalGuider.should_skip_step``."""
        return self.skip_step != 0 and step % (self.skip_step + 1) != 0


def _std(x: torch.Tensor, per_item: bool) -> torch.Tensor:
    if not per_item or x.shape[0] == 1:
        return x.std()
    return x.flatten(1).std(dim=1).view(-1, *([1] * (x.ndim - 1)))


def guide(
    params: GuidanceParams,
    cond: torch.Tensor,
    uncond: torch.Tensor | float = 0.0,
    perturbed: torch.Tensor | float = 0.0,
    isolated: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    """Combine the passes of one stream (module docstring's formula); inactive passes may be given as 0.

    ``cond`` and the active passes are x0 predictions of one shape, e.g. ``(B, T, C)`` tokens; the result has that
    shape. Mirrors ``ltx_core.components.guiders.MultiModalGuider.calculate`` (with ``std_per_item`` and batch > 1
    the rescale std is taken per batch item)."""
    pred = (
        cond
        + (params.cfg - 1) * (cond - uncond)
        + params.stg * (cond - perturbed)
        + (params.modality - 1) * (cond - isolated)
    )
    if params.rescale != 0:
        factor = _std(cond, params.std_per_item) / _std(pred, params.std_per_item)
        pred = pred * (params.rescale * factor + (1 - params.rescale))
    return pred


@dataclass(frozen=True)
class SigmaBinnedGuidance:
    """Guidance that changes with σ: ``bins`` maps an upper σ bound to the params used for σ ≤ that bound
    (and above the next smaller bound); σ above every bound uses the largest bound's params."""

    bins: tuple[tuple[float, GuidanceParams], ...]

    @staticmethod
    def from_mapping(mapping: Mapping[float, GuidanceParams]) -> SigmaBinnedGuidance:
        """Bins from ``{σ upper bound: params}`` (any order); ``MultiModalGuiderFactory.from_dict``.

        Raises:
            InputError: ``mapping`` is empty.
        """
        if not mapping:
            raise InputError("sigma-binned guidance needs at least one entry")
        return SigmaBinnedGuidance(tuple(sorted(mapping.items(), key=lambda kv: kv[0], reverse=True)))

    def at(self, sigma: float) -> GuidanceParams:
        """The params for ``sigma``: those of the smallest bound ≥ σ, else of the largest bound
        (``MultiModalGuiderFactory.params``)."""
        bounds = [b for b, _ in self.bins if b >= float(sigma)]
        key = bounds[-1] if bounds else self.bins[0][0]
        return next(p for b, p in self.bins if b == key)
