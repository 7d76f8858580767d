"""Infer the transformer / connector config from tensor names and shapes (files without ``config`` metadata).

Head counts are not visible in shapes unless the attention is gated (LTX-2.3 ``to_gate_logits`` has one row per
head); otherwise the released models' head widths are assumed (video 128, audio 64, connectors 128).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..config import ConnectorConfig, TransformerConfig
from ..errors import CheckpointError
from .layout import KEYFRAME_EMBEDDING, count_blocks, video_ff_bias_absent
from .source import TensorInfo

DEFAULT_HEAD_DIM = {"video": 128, "audio": 64, "connector": 128}
#: tensors :func:`infer_transformer` reads the widths from
_TRANSFORMER_TENSORS = ("patchify_proj.weight", "audio_patchify_proj.weight", "proj_out.weight",
                        "audio_proj_out.weight", "transformer_blocks.0.attn2.to_k.weight",
                        "transformer_blocks.0.audio_attn2.to_k.weight")


def shape_of(shapes: Mapping[str, tuple[int, ...]], key: str, rank: int, what: str) -> tuple[int, ...]:
    """``shapes[key]``, which must exist with ``rank`` dimensions, each at least 1 (``what`` names the component).

    Raises:
        CheckpointError: the tensor is missing or has another shape.
    """
    if key not in shapes:
        raise CheckpointError(f"The {what} has no '{key}' tensor; the file is incomplete.")
    shape = tuple(shapes[key])
    if len(shape) != rank or min(shape, default=1) < 1:
        raise CheckpointError(f"The {what} tensor '{key}' has shape {list(shape)}; a {rank}-D shape without empty "
                              "dimensions was expected. The file is corrupt or not an LTX-2 model.")
    return shape


def _heads(shapes: dict[str, tuple[int, ...]], gate_key: str, width: int, kind: str) -> tuple[int, int]:
    """(heads, head width) of a ``width``-wide attention: one head per row of the gate ``(H, D)`` when gated, else
    :data:`DEFAULT_HEAD_DIM`; :class:`CheckpointError` when the width is not a multiple of it."""
    if gate_key in shapes:
        heads = shape_of(shapes, gate_key, 2, f"{kind} attention")[0]
        if width % heads:
            raise CheckpointError(f"The {kind} attention gate '{gate_key}' has {heads} rows (heads), which do not "
                                  f"divide the width {width}. The file is corrupt.")
    else:
        head_dim = DEFAULT_HEAD_DIM[kind]
        if width % head_dim:
            raise CheckpointError(f"Cannot infer the {kind} attention heads of a width-{width} model without config "
                                  "metadata. Use a checkpoint with __metadata__['config'] or pass a config.")
        heads = width // head_dim
    return heads, width // heads


def infer_connector(tensors: dict[str, TensorInfo], base: ConnectorConfig) -> ConnectorConfig:
    """Connector geometry (heads, head width, registers, layers, gating) from ``learnable_registers`` ``(R, D)``
    and its blocks' shapes; the rest of ``base`` is kept. ltx-core has no inference
    (``ltx_core.text_encoders.gemma.embeddings_connector.Embeddings1DConnectorConfigurator`` reads the config).

    Raises:
        CheckpointError: no ``learnable_registers`` tensor or not of shape ``(R, D)``, or heads that cannot be
            inferred.
    """
    shapes = {k: v.shape for k, v in tensors.items()}
    registers, width = shape_of(shapes, "learnable_registers", 2, "embeddings connector")
    heads, head_dim = _heads(shapes, "transformer_1d_blocks.0.attn1.to_gate_logits.weight", width, "connector")
    return replace(base, num_attention_heads=heads, attention_head_dim=head_dim, num_learnable_registers=registers,
                   num_layers=count_blocks(shapes, "transformer_1d_blocks"),
                   apply_gated_attention="transformer_1d_blocks.0.attn1.to_gate_logits.weight" in shapes)


def infer_transformer(transformer: dict[str, TensorInfo], connectors: dict[str, dict[str, TensorInfo]],
                      projection: dict[str, TensorInfo] | None) -> TransformerConfig:
    """A :class:`TransformerConfig` matching the tensor shapes of a transformer (+ connectors, + text projection);
    names without the ``model.diffusion_model.`` prefix. Widths come from ``patchify_proj.weight`` ``(D, C_in)``,
    ``proj_out.weight`` ``(C_out, D)`` and the first block's cross-attention keys ``(D, D_context)``; LTX-2.5's
    ``ff_bias`` from the video feed-forward biases (absent: False) and ``use_keyframes_abs_pos_embedding`` from the
    ``keyframes_abs_pos_embedding`` tensor. ltx-core has no inference:
    ``ltx_core.model.transformer.model_configurator.LTXModelConfigurator.from_config`` reads the ``config`` metadata
    only.

    Raises:
        CheckpointError: a tensor the widths are read from is missing or not 2-D; the attention heads cannot be
            inferred (ungated attention of an unusual width, a gate whose rows do not divide the width).
        ConfigError: the inferred config is inconsistent.
    """
    s = {k: v.shape for k, v in transformer.items()}
    missing = [k for k in _TRANSFORMER_TENSORS if k not in s]
    if missing:
        raise CheckpointError(f"Cannot infer the transformer config: tensor(s) {', '.join(missing)} are missing. The "
                              "file is incomplete; use the official checkpoint or one with __metadata__['config'].")
    for key in (*_TRANSFORMER_TENSORS, "caption_projection.linear_1.weight"):
        if key in s:
            shape_of(s, key, 2, "transformer")
    vd, in_ch = s["patchify_proj.weight"]
    ad, audio_in = s["audio_patchify_proj.weight"]
    gated = "transformer_blocks.0.attn1.to_gate_logits.weight" in s
    vh, vhd = _heads(s, "transformer_blocks.0.attn1.to_gate_logits.weight", vd, "video")
    ah, ahd = _heads(s, "transformer_blocks.0.audio_attn1.to_gate_logits.weight", ad, "audio")
    adaln = "prompt_adaln_single.linear.weight" in s
    kw: dict[str, Any] = dict(
        num_layers=count_blocks(s, "transformer_blocks"), num_attention_heads=vh, attention_head_dim=vhd,
        cross_attention_dim=s["transformer_blocks.0.attn2.to_k.weight"][1], audio_num_attention_heads=ah,
        audio_attention_head_dim=ahd, audio_cross_attention_dim=s["transformer_blocks.0.audio_attn2.to_k.weight"][1],
        in_channels=in_ch, out_channels=s["proj_out.weight"][0], audio_in_channels=audio_in,
        audio_out_channels=s["audio_proj_out.weight"][0], apply_gated_attention=gated, cross_attention_adaln=adaln,
        caption_proj_before_connector="caption_projection.linear_1.weight" not in s,
        ff_bias=not video_ff_bias_absent(s), use_keyframes_abs_pos_embedding=KEYFRAME_EMBEDDING in s,
    )
    if "caption_projection.linear_1.weight" in s:
        kw["caption_channels"] = s["caption_projection.linear_1.weight"][1]
    elif projection and "aggregate_embed.weight" in projection:
        kw["caption_channels"] = shape_of({k: v.shape for k, v in projection.items()}, "aggregate_embed.weight", 2,
                                          "text projection")[0]
    cfg = TransformerConfig(**kw)
    for name in ("video_connector", "audio_connector"):
        if name in connectors:
            cfg = replace(cfg, **{name: infer_connector(connectors[name], getattr(cfg, name))})
    cfg.validate()
    return cfg


def infer_gemma_states(projection: dict[str, TensorInfo], gemma_dim: int) -> int:
    """Number of stacked Gemma hidden states the feature extractor expects (49 for Gemma-3 12B): the input width of
    ``aggregate_embed.weight`` (shape ``(D_out, L · gemma_dim)``) divided by ``gemma_dim``.

    Raises:
        CheckpointError: no aggregate projection, one that is not 2-D, or a width that is not a multiple of
            ``gemma_dim``.
    """
    key = next((k for k in ("aggregate_embed.weight", "video_aggregate_embed.weight") if k in projection), None)
    if key is None:
        raise CheckpointError("text_embedding_projection has neither 'aggregate_embed' (LTX-2) nor "
                              "'video_aggregate_embed' (LTX-2.3) weights.")
    flat = shape_of({key: projection[key].shape}, key, 2, "text projection")[1]
    if gemma_dim < 1 or flat % gemma_dim:
        raise CheckpointError(f"text projection input width {flat} is not a multiple of the text encoder width "
                              f"{gemma_dim} (caption_channels).")
    return flat // gemma_dim
