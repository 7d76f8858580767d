"""Multi-GPU (and multi-machine) generation: Ray workers, one per GPU, running every denoising stage with Ulysses
sequence parallelism.

Use: ``parts = load_parallel_parts(checkpoint_path, ParallelConfig(gpus=2), text_encoder=…)`` (or, for parts you
built yourself, ``attach(parts, ParallelConfig(gpus=2), LoadRecipe(checkpoint_path, "bfloat16"))``), then
:func:`~rs_ltxv.ltx.pipeline.generate.generate` / ``extend`` as usual; :func:`shutdown` stops the workers. Ray is
imported only when a run needs it, never by importing this package.
"""

from __future__ import annotations

from .attach import attach, shutdown
from .config import ParallelConfig
from .errors import DistributedError, WorkerDied
from .parts import load_parallel_parts
from .recipe import LoadRecipe, LoraPatch, load_from_recipe
from .runner import DistributedStageRunner

__all__ = ["DistributedError", "DistributedStageRunner", "LoadRecipe", "LoraPatch", "ParallelConfig", "WorkerDied",
           "attach", "load_from_recipe", "load_parallel_parts", "shutdown"]
