"""Attach Ray workers to model parts (:func:`attach`) and stop them (:func:`shutdown`)."""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from ..ltx.errors import CheckpointError, InputError
from .config import ParallelConfig
from .recipe import RECIPE_DTYPES, LoadRecipe
from .runner import DistributedStageRunner

if TYPE_CHECKING:
    from ..ltx.pipeline.protocols import ModelParts


def attach(parts: ModelParts, config: ParallelConfig, recipe: LoadRecipe) -> ModelParts:
    """``parts`` (a copy) whose stages run on ``config.gpus`` Ray workers that load ``recipe`` themselves
    (``stage_runner`` = :class:`DistributedStageRunner`). Everything is checked here, before any worker starts;
    Ray is started (or joined) to count its GPUs / CPUs.

    Raises:
        InputError: a bad ``config`` (:meth:`ParallelConfig.check`); more ranks than the transformer's video or
            audio attention heads; more ranks than GPUs (or CPUs) Ray sees; ``recipe`` is not a :class:`LoadRecipe`
            or names an unknown dtype.
        CheckpointError: ``recipe.checkpoint`` does not exist here.
        DistributedError: Ray is not installed or cannot start / reach the cluster.
    """
    from .cluster import check_capacity, import_ray

    config.check()
    if not isinstance(recipe, LoadRecipe):
        raise InputError(f"attach needs a LoadRecipe (checkpoint path, dtype, LoRA patches); got "
                         f"{type(recipe).__name__}.")
    if recipe.dtype not in RECIPE_DTYPES:
        raise InputError(f"LoadRecipe.dtype must be one of {', '.join(RECIPE_DTYPES)}; got {recipe.dtype!r}.")
    cfg = parts.transformer.config
    heads = min(cfg.num_attention_heads, cfg.audio_num_attention_heads)
    if config.gpus > heads:
        raise InputError(f"gpus={config.gpus} is more than this model's attention heads ({cfg.num_attention_heads} "
                         f"video, {cfg.audio_num_attention_heads} audio); use gpus ≤ {heads}.")
    if not os.path.exists(recipe.checkpoint):
        raise CheckpointError(f"{recipe.checkpoint} does not exist; the workers load the model from this path "
                              "(it must exist at the same path on every node).")
    import_ray(local=config.ray_address is None)
    check_capacity(config)
    return dataclasses.replace(parts, stage_runner=DistributedStageRunner(config, recipe))


def shutdown() -> None:
    """Stop the workers (their weights are freed); the next multi-GPU run starts new ones."""
    from .pool import shutdown_pool

    shutdown_pool()
