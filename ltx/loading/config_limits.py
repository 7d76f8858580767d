"""Plausible ranges of every size-like config field, checked on the config object before any model is built.

:func:`check_config` walks a config dataclass (:class:`~rs_ltxv.ltx.config.TransformerConfig`, the video / audio VAE,
vocoder, upsampler and Gemma configs, and the dataclasses inside them) by its type hints: every ``int`` field must be
an integer (not a bool) in its range, every ``float`` finite, every ``bool`` / ``str`` / enum of its type, every tuple
at most :data:`MAX_ITEMS` long with elements of the right type. It runs whatever the config came from (given, the
file's metadata, or inferred from tensor names such as ``transformer_blocks.999999999.*``), so a file describing
10⁹ layers is refused in microseconds instead of building 10⁹ blocks on the meta device.

The bounds are far above the released models (LTX-2.3 22B: 48 layers, video width 32 × 128 = 4096, audio width
2048, captions 3840, 128 latent channels; Gemma-3 12B: 48 layers, width 3840, vocabulary 262 208); a field not listed
in :data:`INT_RANGES` gets :data:`DEFAULT_INT_RANGE`. Fields a model computes CPU buffers from (FFT sizes, mel bins,
resampling ratios) are bounded tighter, since those buffers are real memory even on the meta device.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import types
import typing
from typing import Any

from ..errors import ConfigError

_LAYERS = (0, 256)
_HEADS = (1, 1024)
_HEAD_DIM = (1, 4096)
_WIDTH = (1, 65_536)
_RATE = (1, 192_000)
_FFT = (2, 8192)
_MELS = (1, 512)
_KERNEL = (1, 256)
#: field (or JSON key) name → inclusive (min, max); for tuples, the range of each element
INT_RANGES: dict[str, tuple[int, int]] = {
    "num_layers": _LAYERS, "num_hidden_layers": (1, 256), "num_res_blocks": (0, 64), "num_blocks_per_stage": (0, 64),
    "num_attention_heads": _HEADS, "audio_num_attention_heads": _HEADS, "num_key_value_heads": _HEADS,
    "attention_head_dim": _HEAD_DIM, "audio_attention_head_dim": _HEAD_DIM, "head_dim": _HEAD_DIM,
    "cross_attention_dim": _WIDTH, "audio_cross_attention_dim": _WIDTH, "caption_channels": _WIDTH,
    "hidden_size": _WIDTH, "intermediate_size": (1, 262_144), "num_learnable_registers": (0, 65_536),
    "positional_embedding_max_pos": (1, 1 << 20), "audio_positional_embedding_max_pos": (1, 1 << 20),
    "in_channels": _WIDTH, "out_channels": _WIDTH, "audio_in_channels": _WIDTH, "audio_out_channels": _WIDTH,
    "latent_channels": (1, 8192), "patch_size": (1, 64), "decoder_base_channels": (1, 8192), "multiplier": (1, 8),
    "dims": (1, 3), "ch": (1, 8192), "out_ch": (1, 64), "ch_mult": (1, 64), "attn_resolutions": (0, 1 << 20),
    "resolution": (1, 1 << 20), "z_channels": (1, 8192), "mid_channels": _WIDTH,
    "mel_bins": _MELS, "num_mels": _MELS, "n_mel_channels": _MELS, "n_fft": _FFT, "filter_length": _FFT,
    "mel_hop_length": (1, 8192), "hop_length": (1, 8192), "sample_rate": _RATE, "sampling_rate": _RATE,
    "input_sampling_rate": _RATE, "output_sampling_rate": _RATE, "upsample_initial_channel": _WIDTH,
    "resblock_kernel_sizes": _KERNEL, "upsample_kernel_sizes": _KERNEL, "upsample_rates": (1, 64),
    "resblock_dilation_sizes": (1, 64), "vocab_size": (1, 1 << 20), "sliding_window": (1, 1 << 24),
    "max_position_embeddings": (1, 1 << 24), "pad_token_id": (0, 1 << 20), "bos_token_id": (0, 1 << 20),
    "eos_token_id": (0, 1 << 20), "sliding_window_pattern": (1, 256),
}
DEFAULT_INT_RANGE = (0, 65_536)
MAX_FLOAT = 1e12
MAX_ITEMS = 64
#: tuple fields that may be longer than :data:`MAX_ITEMS` (one entry per layer)
LONG_ITEMS = {"layer_types": 256}
MAX_TEXT = 256
#: upper bounds on derived sizes: channel growth of a video VAE half, BWE resampling ratio
MAX_CHANNEL_GROWTH = 4096
MAX_RESAMPLE_RATIO = 16


def _fail(where: str, name: str, value: Any, wanted: str) -> ConfigError:
    return ConfigError(f"{where}: {name} = {str(value)[:60]} is not {wanted}. The config does not describe a model "
                       "RS-LTXV can load (corrupt or hand-edited metadata?); use the official file or pass a config.")


def check_int(where: str, name: str, value: Any, key: str | None = None) -> None:
    """``value`` is an integer (not a bool) in the range of ``key`` (default: ``name``).

    Raises:
        ConfigError: it is not; the message names ``where`` and ``name``.
    """
    lo, hi = INT_RANGES.get(key or name, DEFAULT_INT_RANGE)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _fail(where, name, value, f"an integer from {lo:,} to {hi:,}")


def check_float(where: str, name: str, value: Any) -> None:
    """``value`` is a finite number (not a bool) of magnitude at most :data:`MAX_FLOAT`.

    Raises:
        ConfigError: it is not.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and abs(value) <= MAX_FLOAT):
        raise _fail(where, name, value, f"a finite number of magnitude at most {MAX_FLOAT:g}")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check(where: str, name: str, key: str, value: Any, hint: Any) -> None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is int:
        check_int(where, name, value, key)
    elif hint is float:
        check_float(where, name, value)
    elif hint is bool or hint is str:
        if not isinstance(value, hint) or (hint is str and len(value) > MAX_TEXT):
            raise _fail(where, name, value, f"a {hint.__name__}")
    elif isinstance(hint, type) and issubclass(hint, enum.Enum):
        if not isinstance(value, hint):
            raise _fail(where, name, value, f"one of {[m.value for m in hint]}")
    elif dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            raise _fail(where, name, value, f"a {hint.__name__}")
        check_config(where, value, prefix=f"{name}.")
    elif origin is tuple:
        limit = LONG_ITEMS.get(key, MAX_ITEMS)
        if not isinstance(value, tuple) or len(value) > limit:
            raise _fail(where, name, value, f"a list of at most {limit} items")
        for i, item in enumerate(value):
            _check(where, f"{name}[{i}]", key, item, args[0])


def _cross_checks(where: str, cfg: Any) -> None:
    """Sizes derived from several fields: the channel growth of each video VAE half, the BWE resampling ratio."""
    for half in ("encoder_blocks", "decoder_blocks"):
        growth = math.prod(b.multiplier or (1 if b.name == "res_x" else 2) for b in getattr(cfg, half, ()))
        if growth > MAX_CHANNEL_GROWTH:
            raise _fail(where, half, f"blocks multiplying the channels by {growth}", f"at most ×{MAX_CHANNEL_GROWTH}")
    rates = getattr(cfg, "input_sampling_rate", None), getattr(cfg, "output_sampling_rate", None)
    if None not in rates and rates[1] > MAX_RESAMPLE_RATIO * rates[0]:
        raise _fail(where, "output_sampling_rate / input_sampling_rate", rates[1] / rates[0],
                    f"at most {MAX_RESAMPLE_RATIO}")


def check_config(where: str, cfg: Any, *, prefix: str = "") -> None:
    """Check every field of the config dataclass ``cfg`` (recursively) against its type hint and range; any other
    object has nothing to check.

    Raises:
        ConfigError: a field of the wrong type or out of its range (module docstring); the message starts with
            ``where`` and names the field.
    """
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        return
    hints = _hints(type(cfg))
    for f in dataclasses.fields(cfg):
        _check(where, prefix + f.name, f.name, getattr(cfg, f.name), hints[f.name])
    _cross_checks(where, cfg)
