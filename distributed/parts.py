"""Model parts for a multi-GPU run in one call: everything but the transformer's weights loaded here, the
denoising stages on Ray workers that load the checkpoint themselves."""

from __future__ import annotations

import os
from typing import Any

import torch

from ..ltx.loading import open_checkpoint
from ..ltx.pipeline.parts import load_model_parts
from ..ltx.pipeline.protocols import ModelParts
from ..ltx.transformer import LTXAVTransformer
from .attach import attach
from .config import ParallelConfig
from .recipe import LoadRecipe, LoraPatch, dtype_name


def load_parallel_parts(
    checkpoint: str | os.PathLike,
    config: ParallelConfig,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cuda",
    loras: tuple[LoraPatch, ...] = (),
    distilled: bool | None = None,
    **parts_kwargs: Any,
) -> ModelParts:
    """:func:`~rs_ltxv.ltx.pipeline.parts.load_model_parts` for a run on ``config.gpus`` Ray workers: the text
    encoder, VAEs and upsampler load here on ``device`` (they run in this process), the transformer only as its
    config (meta device, no weights read); each worker loads ``checkpoint`` in ``dtype`` with ``loras``. Then
    :func:`~rs_ltxv.ltx.pipeline.generate.generate` / ``extend`` as usual. ``parts_kwargs``: the other arguments of
    ``load_model_parts`` (``text_encoder``, ``upsampler``, ``video_vae``, …).

    Raises:
        InputError: as :func:`~rs_ltxv.distributed.attach` (bad config, more ranks than heads or GPUs), or a dtype
            the workers cannot load.
        CheckpointError / ConfigError: as ``load_model_parts``.
        DistributedError: Ray is missing or cannot start / reach the cluster.
    """
    ckpt = open_checkpoint(checkpoint)
    with torch.device("meta"):
        shell = LTXAVTransformer(ckpt.config)
    recipe = LoadRecipe(os.path.abspath(checkpoint), dtype_name(dtype),
                        ckpt.is_distilled if distilled is None else distilled, tuple(loras))
    parts = load_model_parts(checkpoint, dtype=dtype, device=device, distilled=distilled, transformer=shell,
                             **parts_kwargs)
    parts.device, parts.compute_dtype, parts.compute_device = None, dtype, torch.device(device)
    return attach(parts, config, recipe)
