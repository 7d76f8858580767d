"""Model parts for a multi-GPU run in one call: everything but the transformer's weights loaded here, the
denoising stages on Ray workers that load the checkpoint themselves."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from ..ltx.loading import open_checkpoint
from ..ltx.lora import LoraInput, check_lora_patches, read_loras
from ..ltx.pipeline.parts import load_model_parts
from ..ltx.pipeline.protocols import ModelParts
from ..ltx.transformer import LTXAVTransformer
from .attach import attach
from .config import ParallelConfig
from .recipe import LoadRecipe, dtype_name


def load_parallel_parts(
    checkpoint: str | os.PathLike,
    config: ParallelConfig,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cuda",
    loras: Sequence[LoraInput] = (),
    distilled: bool | None = None,
    **parts_kwargs: Any,
) -> ModelParts:
    """:func:`~rs_ltxv.ltx.pipeline.parts.load_model_parts` for a run on ``config.gpus`` Ray workers: the text
    encoder, VAEs and upsampler load here on ``device`` (they run in this process), the transformer only as its
    config (meta device, no weights read); each worker loads ``checkpoint`` in ``dtype`` with ``loras`` (LoRA files
    as ``LoraSpec(path, strength)`` / ``(path, strength)``, read here against the transformer's names and sent as
    :class:`~rs_ltxv.ltx.lora.LoraPatch` es, or ready patches). Then
    :func:`~rs_ltxv.ltx.pipeline.generate.generate` / ``extend`` as usual. ``parts_kwargs``: the other arguments of
    ``load_model_parts`` (``text_encoder``, ``upsampler``, ``video_vae``, …).

    Raises:
        InputError: as :func:`~rs_ltxv.distributed.attach` (bad config, more ranks than heads or GPUs), a dtype
            the workers cannot load, or a LoRA that is missing, not a plain LoRA or made for another model.
        CheckpointError / ConfigError: as ``load_model_parts``.
        DistributedError: Ray is missing or cannot start / reach the cluster.
    """
    ckpt = open_checkpoint(checkpoint)
    with torch.device("meta"):
        shell = LTXAVTransformer(ckpt.config)
    patches = read_loras(shell, loras)
    check_lora_patches(shell, patches)
    recipe = LoadRecipe(os.path.abspath(checkpoint), dtype_name(dtype),
                        ckpt.is_distilled if distilled is None else distilled, patches)
    parts = load_model_parts(checkpoint, dtype=dtype, device=device, distilled=distilled, transformer=shell,
                             **parts_kwargs)
    parts.device, parts.compute_dtype, parts.compute_device = None, dtype, torch.device(device)
    return attach(parts, config, recipe)
