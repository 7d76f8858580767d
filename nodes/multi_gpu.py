"""RS LTXV Multi-GPU (Ray): ``MODEL → MODEL``. Puts a ``rs_ltxv.distributed.ParallelConfig`` on a clone of the
MODEL as the object patch ``parallel`` (:data:`~.comfy_model.PARALLEL`); RS LTXV Generate / Extend see it and run
their denoising stages on Ray workers (:func:`parallel_parts`). The shared MODEL is never changed, and neither this
module nor the node imports Ray: the workers start when a Generate / Extend runs.
"""

from __future__ import annotations

from typing import Any

from ..ltx.errors import InputError
from ..ltx.pipeline.protocols import ModelParts
from . import comfy_model, specs
from .load_recipe import USE_OUR_LOADER, load_recipe

WHAT = specs.MULTI_GPU.display_name


def parallel_config(gpus: int, ray_address: str = "", comm_timeout_s: float = 120.0, keep_loaded: bool = True,
                    backend: str = "auto") -> Any:
    """The node's inputs → a checked ``ParallelConfig`` (``ray_address`` "" → None: a local Ray).

    Raises:
        InputError: a value out of range (``ParallelConfig.check``).
    """
    from ..distributed import ParallelConfig

    config = ParallelConfig(gpus=int(gpus), ray_address=ray_address.strip() or None, backend=backend,
                            comm_timeout_s=float(comm_timeout_s), keep_loaded=bool(keep_loaded))
    config.check()
    return config


def with_parallel(model: Any, gpus: int = 2, ray_address: str = "", comm_timeout_s: float = 120.0,
                  keep_loaded: bool = True, backend: str = "auto") -> tuple[Any]:
    """The node: a clone of ``model`` carrying the ``parallel`` object patch; ``gpus`` = 1 returns ``model`` itself.

    Raises:
        InputError: a bad setting, or a MODEL the workers cannot rebuild (core's loaders: no file path; not a
            ComfyUI MODEL). Its LoRA patches are checked when Generate / Extend run.
    """
    if model is None:
        raise InputError(f"{WHAT}: connect a MODEL from RS LTXV Model Loader (LoRA loaders may sit between).")
    config = parallel_config(gpus, ray_address, comm_timeout_s, keep_loaded, backend)
    if config.gpus == 1:
        return (model,)
    module = getattr(model, "model", None)
    if not isinstance(module, comfy_model.LTXVModule) or not hasattr(model, "clone"):
        raise InputError(f"{WHAT}: model is a {comfy_model.describe(model)}, which the GPU workers cannot load on "
                         f"their own (core's loaders keep no file path). {USE_OUR_LOADER}")
    if module.source is None:
        raise InputError(f"{WHAT}: this model was built in memory, not loaded from a file. {USE_OUR_LOADER}")
    clone = model.clone()
    clone.add_object_patch(comfy_model.PARALLEL, config)
    return (clone,)


def parallel_parts(parts: ModelParts, model: Any, config: Any, what: str) -> ModelParts:
    """Attach Ray workers to ``parts`` (``rs_ltxv.distributed.attach``) for a MODEL carrying ``config``: the workers
    load the checkpoint with the MODEL's LoRA themselves (:func:`~.load_recipe.load_recipe`); ``parts.transformer``
    (not loaded onto the GPU) only describes the model to the driver.

    Raises:
        InputError: the MODEL carries a patch that is not a plain LoRA, Ray is missing, or ``gpus`` is more than
            the model's heads or the GPUs Ray sees (checked before any worker loads the model).
    """
    from ..distributed import attach

    return attach(parts, config, load_recipe(model, what))
