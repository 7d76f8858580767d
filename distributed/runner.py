"""The pipeline's stage runner for multi-GPU runs: :class:`DistributedStageRunner` runs each denoising stage on the
Ray workers instead of in this process (``ModelParts.stage_runner``, set by :func:`rs_ltxv.distributed.attach`)."""

from __future__ import annotations

from typing import Any

import torch

from ..ltx.errors import InputError
from ..ltx.pipeline.sampling import Callbacks
from ..ltx.pipeline.stage import StageInputs
from .config import ParallelConfig
from .pool import get_pool
from .recipe import LoadRecipe
from .wire import encode_stage


class DistributedStageRunner:
    """Called exactly like :func:`~rs_ltxv.ltx.pipeline.stage.run_stage` (``ltx_pipelines.utils.helpers.
    denoise_audio_video``: a denoiser, :class:`~rs_ltxv.ltx.pipeline.stage.StageInputs`, callbacks) and returning the
    same latents, computed by ``config.gpus`` sequence-parallel ranks that load the model of ``recipe`` themselves
    (a :class:`~rs_ltxv.ltx.pipeline.protocols.StageRunnerProtocol`).

    The noise generator passed as ``inputs.seed`` continues from the state the workers ended with, so a two-stage run
    draws the same noise as in one process; ``progress`` is called once per step, ``cancel`` stops every rank at
    the same step. With ``config.keep_loaded`` False the workers are stopped after each stage.
    """

    def __init__(self, config: ParallelConfig, recipe: LoadRecipe) -> None:
        self.config = config.check()
        self.recipe = recipe
        self._fault: dict[str, Any] | None = None

    def inject_fault(self, fault: dict[str, Any] | None) -> None:
        """**Test-only**: the next stage's workers act out ``fault`` (see :class:`~.worker.RankWorker`)."""
        self._fault = fault

    def __call__(self, denoise: Any, inputs: StageInputs, callbacks: Callbacks | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(video latent (B, C, F', H', W'), audio latent (B, 8, T, 16) | None)`` of one stage, on
        ``inputs.device``.

        Raises:
            InputError: an external (k-diffusion-style) sampler, which cannot run inside the workers; a value
                that cannot travel (see :func:`~.wire.encode_stage`).
            Cancelled / NonFiniteError / CheckpointError …: as :func:`~rs_ltxv.ltx.pipeline.stage.run_stage` on
                the workers.
            DistributedError: a worker died, hung or failed (see :meth:`~.pool.WorkerPool.run_stage`).
        """
        if not isinstance(inputs.sampler, str):
            raise InputError(f"Multi-GPU runs use the built-in samplers (euler, euler_ancestral, res_2s); "
                             f"{type(inputs.sampler).__name__} runs in this process only. Pick a built-in sampler or "
                             "remove the Multi-GPU node.")
        callbacks = callbacks or Callbacks()
        stage = encode_stage(denoise, inputs)
        fault, self._fault = self._fault, None
        pool = get_pool(self.config)
        try:
            pool.ensure_loaded(self.recipe)
            result = pool.run_stage(stage, progress=callbacks.progress, cancel=callbacks.cancel, fault=fault)
        finally:
            if not self.config.keep_loaded:
                pool.shutdown()
        if isinstance(inputs.seed, torch.Generator) and result.get("seed_state") is not None:
            inputs.seed.set_state(result["seed_state"])
        audio = result.get("audio")
        return result["video"].to(inputs.device), None if audio is None else audio.to(inputs.device)
