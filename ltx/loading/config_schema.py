"""JSON types of the config sections stored in model files, checked before the section is parsed.

The ``from_dict`` readers convert with ``int()``, ``float()``, ``tuple()`` and ``.get()``; a string, a list, null or
a NaN where a number belongs would raise a raw ``TypeError`` / ``ValueError`` / ``AttributeError`` there.
:func:`check_section` checks every key a reader uses against :data:`SCHEMAS` first (integers also against
:data:`~.config_limits.INT_RANGES`), so each problem is a :class:`ConfigError` naming the JSON key. Keys a reader
does not use are not checked; a missing key takes the reader's default.

Kinds: ``int``, ``num`` (int or float), ``bool``, ``str``, ``text`` (a string or a number), ``ints`` (list of ints),
``intss`` (list of lists of ints), ``strs``, ``blocks`` (video VAE ``[name, params]`` pairs), a nested schema (a JSON
object); a trailing ``?`` (a ``"?"`` key in a nested schema) also accepts null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..audio.config import AudioVAEConfig, BWEVocoderConfig, VocoderConfig
from ..config import TransformerConfig
from ..errors import ConfigError
from ..text.gemma_config import GemmaConfig
from ..upsampler import UpsamplerConfig
from ..video_vae.config import VideoVAEConfig
from .config_limits import MAX_ITEMS, MAX_TEXT, check_float, check_int

Schema = dict[str, Any]

_CONNECTOR: Schema = {"num_attention_heads": "int", "attention_head_dim": "int", "num_layers": "int",
                      "num_learnable_registers": "int", "positional_embedding_max_pos": "ints",
                      "apply_gated_attention": "bool"}
TRANSFORMER: Schema = {
    **{k: "int" for k in ("num_layers", "num_attention_heads", "attention_head_dim", "cross_attention_dim",
                          "audio_num_attention_heads", "audio_attention_head_dim", "audio_cross_attention_dim",
                          "in_channels", "out_channels", "audio_in_channels", "audio_out_channels",
                          "caption_channels")},
    **{k: "num" for k in ("norm_eps", "positional_embedding_theta", "timestep_scale_multiplier",
                          "av_ca_timestep_scale_multiplier")},
    "positional_embedding_max_pos": "ints", "audio_positional_embedding_max_pos": "ints",
    "apply_gated_attention": "bool", "cross_attention_adaln": "bool", "rope_type": "str",
    "ff_bias": "bool", "audio_ff_bias": "bool", "use_keyframes_abs_pos_embedding": "bool",
    "use_prompt_adaln_single": "bool",
    "frequencies_precision": "str",
    **{f"connector_{k}": v for k, v in _CONNECTOR.items()},
    **{f"audio_connector_{k}": v for k, v in _CONNECTOR.items() if k != "apply_gated_attention"},
}
_BLOCK_PARAMS: Schema = {"num_layers": "int", "multiplier": "int?", "residual": "bool", "inject_noise": "bool"}
VIDEO_VAE: Schema = {
    "dims": "int", "in_channels": "int", "out_channels": "int", "latent_channels": "int", "patch_size": "int",
    "decoder_base_channels": "int", "causal_decoder": "bool", "timestep_conditioning": "bool", "norm_layer": "str",
    "latent_log_var": "str", "spatial_padding_mode": "str?", "encoder_blocks": "blocks", "decoder_blocks": "blocks",
}
AUDIO_VAE: Schema = {
    "model": {"params": {"sampling_rate": "int", "ddconfig": {
        "ch": "int", "out_ch": "int", "ch_mult": "ints", "num_res_blocks": "int", "attn_resolutions": "ints?",
        "resolution": "int", "z_channels": "int", "double_z": "bool", "in_channels": "int", "mel_bins": "int?",
        "norm_type": "str", "causality_axis": "str?", "mid_block_add_attention": "bool", "resamp_with_conv": "bool",
        "attn_type": "str"}}},
    "preprocessing": {"stft": {"hop_length": "int", "filter_length": "int", "causal": "bool"},
                      "mel": {"n_mel_channels": "int?"}},
    "variables": {"mel_bins": "int?"},
}
VOCODER: Schema = {
    "resblock_kernel_sizes": "ints", "upsample_rates": "ints", "upsample_kernel_sizes": "ints",
    "resblock_dilation_sizes": "intss", "upsample_initial_channel": "int", "resblock": "text",
    "output_sampling_rate": "int", "activation": "text", "use_tanh_at_final": "bool", "use_bias_at_final": "bool",
    "stereo": "bool",
}
BWE_VOCODER: Schema = {"vocoder": VOCODER, "bwe": {**VOCODER, **{k: "int" for k in (
    "input_sampling_rate", "output_sampling_rate", "hop_length", "n_fft", "num_mels")}}}
UPSAMPLER: Schema = {"in_channels": "int", "mid_channels": "int", "num_blocks_per_stage": "int", "dims": "int",
                     "spatial_upsample": "bool", "temporal_upsample": "bool", "spatial_scale": "num",
                     "rational_resampler": "bool"}
_ROPE: Schema = {"rope_type": "str", "type": "str", "factor": "num", "rope_theta": "num"}
GEMMA: Schema = {
    **{k: "int?" for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                           "num_attention_heads", "num_key_value_heads", "head_dim", "sliding_window",
                           "max_position_embeddings", "pad_token_id", "bos_token_id")},
    "query_pre_attn_scalar": "num?", "rms_norm_eps": "num?", "model_type": "str", "hidden_activation": "str",
    "hidden_act": "str", "layer_types": "strs?", "sliding_window_pattern": "int", "rope_theta": "num",
    "rope_local_base_freq": "num", "rope_scaling": {**_ROPE, "?": True},
    "rope_parameters": {"sliding_attention": {**_ROPE, "?": True}, "full_attention": {**_ROPE, "?": True}, "?": True},
}


def _kind_error(where: str, path: str, value: Any, kind: str) -> ConfigError:
    return ConfigError(f"{where}: config key {path} = {str(value)[:60]} is not {kind}. The config is corrupt or "
                       "hand-edited; use the official file or pass a config.")


def _list(where: str, path: str, value: Any, kind: str) -> list:
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise _kind_error(where, path, value, f"a list of at most {MAX_ITEMS} items ({kind})")
    return value


def _check_value(where: str, path: str, key: str, value: Any, kind: Any) -> None:
    if isinstance(kind, dict):
        if value is None and kind.get("?"):
            return
        check_section(where, value, kind, path=path)
        return
    if kind.endswith("?"):
        if value is None:
            return
        kind = kind[:-1]
    if kind == "int":
        check_int(where, path, value, key)
    elif kind == "num":
        check_float(where, path, value)
    elif kind in ("bool", "str"):
        if not isinstance(value, bool if kind == "bool" else str) or (kind == "str" and len(value) > MAX_TEXT):
            raise _kind_error(where, path, value, f"a {kind}")
    elif kind == "text":
        if isinstance(value, bool) or not isinstance(value, str | int | float) or len(str(value)) > MAX_TEXT:
            raise _kind_error(where, path, value, "a string or a number")
    elif kind in ("ints", "intss", "strs"):
        for i, item in enumerate(_list(where, path, value, kind)):
            _check_value(where, f"{path}[{i}]", key, item, {"ints": "int", "intss": "ints", "strs": "str"}[kind])
    elif kind == "blocks":
        for i, item in enumerate(_list(where, path, value, "[name, params] pairs")):
            if isinstance(item, list) and len(item) == 2 and isinstance(item[1], dict):
                check_section(where, item[1], _BLOCK_PARAMS, path=f"{path}[{i}][1]")


def check_section(where: str, section: Any, schema: Schema, *, path: str = "config") -> None:
    """``section`` is a JSON object whose keys in ``schema`` have the right kinds and ranges.

    Raises:
        ConfigError: it is not an object, or a key has a value of the wrong kind or out of range; the message
            starts with ``where`` and names the key (``config.model.params.ddconfig.ch``).
    """
    if not isinstance(section, Mapping):
        raise _kind_error(where, path, section, "a JSON object")
    for key, kind in schema.items():
        if key != "?" and key in section:
            _check_value(where, f"{path}.{key}", key, section[key], kind)


def _gemma(where: str, raw: Any) -> None:
    if isinstance(raw, Mapping) and "text_config" in raw:
        raw = raw["text_config"] if raw["text_config"] is not None else {}
    check_section(where, raw, GEMMA)


def _vocoder(where: str, raw: Any) -> None:
    is_bwe = isinstance(raw, Mapping) and "bwe" in raw
    check_section(where, raw, BWE_VOCODER if is_bwe else VOCODER)


#: config type (as passed to :func:`~.resolve.resolve_config`) → the check of its raw JSON section
RAW_CHECKS = {
    TransformerConfig: lambda where, raw: check_section(where, raw, TRANSFORMER),
    VideoVAEConfig: lambda where, raw: check_section(where, raw, VIDEO_VAE),
    AudioVAEConfig: lambda where, raw: check_section(where, raw, AUDIO_VAE),
    (VocoderConfig, BWEVocoderConfig): _vocoder,
    UpsamplerConfig: lambda where, raw: check_section(where, raw, UPSAMPLER),
    GemmaConfig: _gemma,
}


def check_raw(where: str, raw: Any, config_type: type | tuple[type, ...]) -> None:
    """Check a raw config section for ``config_type`` before it is parsed (any JSON object when the type has no
    schema).

    Raises:
        ConfigError: see :func:`check_section`.
    """
    check = RAW_CHECKS.get(config_type)
    if check is not None:
        check(where, raw)
    elif not isinstance(raw, Mapping):
        raise _kind_error(where, "config", raw, "a JSON object")
