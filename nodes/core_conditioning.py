"""Core CONDITIONING for LTX-2 / LTX-2.3 (LTXAVTextEncoderLoader + CLIPTextEncode) → our :class:`TextContexts`.

What core puts in the CONDITIONING (``comfy/text_encoders/lt.py``, ``LTXAVTEModel.encode_token_weights``): the
stacked Gemma-3 hidden states of the prompt's valid tokens (left padding cut off), already through the checkpoint's
text projection (our feature extractor), **before** the embeddings connectors:

* LTX-2 (``text_embedding_projection.aggregate_embed``): ``(B, T, 3840)``, one tensor for both streams;
* LTX-2.3 (``video_aggregate_embed`` / ``audio_aggregate_embed``): ``(B, T, 4096 + 2048)``, video then audio;

float32, with ``{"unprocessed_ltxav_embeds": True}`` in the entry's dict. Core runs the connectors later, inside
its diffusion model (``LTXAVModel.preprocess_text_embeds``): valid tokens, then learnable registers up to a
multiple of the register count that is at least 1024 tokens, no attention mask. Old ComfyUI text-encoder files
that carry their own connectors (core's "compat mode") put finished contexts ``(B, S, D_v + D_a)`` without the flag.

Here the connectors are ours, running on the connector weights held by core's MODEL (no copy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..ltx.errors import InputError
from ..ltx.text.processor import TextContexts
from .core_interop import compute_placement, config_from_core, connectors_from_core, padded_length

UNPROCESSED_KEY = "unprocessed_ltxav_embeds"


def is_core_conditioning(cond: Any) -> bool:
    """A CONDITIONING whose first entry is ``[tensor (B, T, D), dict]`` without our own keys."""
    from .convert import AUDIO_KEY

    try:
        tensor, extra = cond[0][0], cond[0][1]
    except (IndexError, KeyError, TypeError):
        return False
    return isinstance(tensor, torch.Tensor) and isinstance(extra, Mapping) and AUDIO_KEY not in extra


def _entry(cond: Any, what: str) -> tuple[torch.Tensor, Mapping[str, Any]]:
    """The features ``(B, T, D)`` and dict of a single-entry core CONDITIONING; :class:`InputError` otherwise."""
    if not is_core_conditioning(cond):
        raise InputError(f"{what}: expected CONDITIONING from CLIP Text Encode (with LTXAV Text Encoder Loader) or "
                         "RS LTXV Text Encode.")
    if len(cond) > 1:
        raise InputError(f"{what}: this CONDITIONING has {len(cond)} entries (combined or timestep-ranged prompts); "
                         "RS LTXV Generate takes one prompt. Connect a single CLIP Text Encode.")
    tensor, extra = cond[0][0], cond[0][1]
    if tensor.ndim != 3:
        raise InputError(f"{what}: expected text features (batch, tokens, width); got {tuple(tensor.shape)}.")
    return tensor, extra


def split_features(features: torch.Tensor, unprocessed: bool, widths: tuple[int, int],
                   context_dims: tuple[int, int], what: str = "conditioning",
                   ) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Core's features ``(B, T, D)`` → (video, audio, needs_connectors).

    Args:
        widths: connector input widths (video, audio); LTX-2: both the Gemma width, LTX-2.3: 4096 / 2048.
        context_dims: transformer context widths (video, audio) — finished contexts come as their concatenation.

    Returns:
        video ``(B, T, widths[0])`` and audio ``(B, T, widths[1])`` features with ``needs_connectors`` True, or
        finished contexts ``(B, T, context_dims[i])`` with False.

    Raises:
        InputError: ``D`` fits neither (a text encoder that does not belong to this checkpoint).
    """
    width = features.shape[-1]
    if not unprocessed and width == sum(context_dims):
        return features[..., :context_dims[0]], features[..., context_dims[0]:], False
    if width == sum(widths):
        return features[..., :widths[0]], features[..., widths[0]:], True
    if widths[0] == widths[1] == width:
        return features, features, True
    raise InputError(f"{what}: text features of width {width} do not fit this model (expects {widths[0]} or "
                     f"{sum(widths)}). Use the text encoder file (and projection) that belongs to this checkpoint.")


def contexts_from_core(conditioning: Any, patcher: Any, what: str = "positive") -> TextContexts:
    """Core CONDITIONING → :class:`TextContexts` ``video (B, S, D_v)``, ``audio (B, S, D_a)``, ``mask (B, S)`` of
    ones, computed like core does (``S`` = padded length, ≥ 1024). ``patcher`` is the core MODEL whose connectors
    are used; load it first (``load_models_gpu``) so they run on its device. Mirrors core's
    ``comfy.ldm.lightricks.av_model.LTXAVModel.preprocess_text_embeds``.

    Raises:
        InputError: not a single core LTX CONDITIONING, features that do not fit the model, or ``patcher`` is not a
            core LTX-2 MODEL.
    """
    features, extra = _entry(conditioning, what)
    cfg = config_from_core(patcher)
    video_conn, audio_conn = connectors_from_core(patcher)
    widths = (video_conn.config.inner_dim, audio_conn.config.inner_dim)
    context_dims = (cfg.inner_dim, cfg.audio_inner_dim) if cfg.caption_proj_before_connector else (
        cfg.caption_channels, cfg.caption_channels)
    dtype, device = compute_placement(patcher)
    features = features.to(device=device, dtype=dtype)
    video, audio, run = split_features(features, bool(extra.get(UNPROCESSED_KEY)), widths, context_dims, what)
    if run:
        video, audio = (_run_connector(conn, x) for conn, x in ((video_conn, video), (audio_conn, audio)))
    mask = torch.ones(video.shape[:2], dtype=torch.int64, device=video.device)
    return TextContexts(video=video, audio=audio, mask=mask)


def _run_connector(connector: torch.nn.Module, features: torch.Tensor) -> torch.Tensor:
    """Valid tokens ``(B, T, D)`` → zero-pad to core's length with a mask, then our connector (which puts the
    registers where the padding is) → ``(B, S, D)``."""
    batch, tokens, _ = features.shape
    length = padded_length(tokens, connector.config.num_learnable_registers)
    padded = torch.nn.functional.pad(features, (0, 0, 0, length - tokens))
    mask = (torch.arange(length, device=features.device) < tokens).to(torch.int64).expand(batch, -1)
    with torch.no_grad():
        return connector(padded, mask)
