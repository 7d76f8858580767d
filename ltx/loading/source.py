"""One protocol for everything weights are read from: :class:`TensorSource`.

Implemented by the checked ``.safetensors`` file (:class:`~.safetensors_file.SafetensorsFile`), the LTX-2 GGUF file
(:class:`~.gguf_checkpoint.GGUFCheckpointFile`), the Gemma views over safetensors shards and GGUF files
(:class:`~.gemma_tensors.GemmaTensors`, :class:`~.gemma_gguf.GemmaGGUFTensors`) and any in-memory state dict
(:class:`StateDictSource`). The loaders (:func:`~.materialize.materialize`, :func:`~.resolve.resolve_config`) only
talk to this protocol, so a new format is one new class, not a new branch in every loader.

Mirrors ``ltx_core.loader.primitives.StateDictLoader`` (``metadata`` + ``load``), except that tensors are described
before any is read (names, dtypes, shapes) and read one at a time into the target dtype and device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from ..errors import CheckpointError


@dataclass(frozen=True)
class TensorInfo:
    """What a file says about one tensor before it is read: ``dtype`` is the stored type's name (safetensors
    ``"BF16"``, ``"F8_E4M3"`` …; GGUF ``"Q8_0"``, ``"Q4_K"`` …), ``shape`` the logical torch-order shape and
    ``nbytes`` the stored size."""

    dtype: str
    shape: tuple[int, ...]
    nbytes: int


class TensorSource(Protocol):
    """Named tensors with their description, metadata and a config, read lazily.

    Attributes:
        name: what to call the source in messages (a file name).
        tensors: name → :class:`TensorInfo`, known without reading any data.
        metadata: the file's metadata (safetensors ``__metadata__``: str → str; GGUF: every key/value field).
    """

    name: str
    tensors: Mapping[str, TensorInfo]
    metadata: Mapping[str, Any]

    def config(self) -> dict[str, Any] | None:
        """The model config stored with the weights (``__metadata__["config"]`` parsed), or None when absent.

        Raises:
            CheckpointError: the stored config is not valid JSON.
        """
        ...

    def read(self, names: Mapping[str, str], *, dtype: torch.dtype | None,
             device: torch.device) -> dict[str, torch.Tensor]:
        """``{target: tensor name}`` → ``{target: tensor}`` in ``dtype`` on ``device`` (``meta``: read on CPU), each
        tensor in its logical torch-order shape (:attr:`TensorInfo.shape`).

        Floating tensors are cast to ``dtype``; None keeps the stored dtype (block-quantised GGUF types become
        float32). Integer tensors keep theirs.

        Raises:
            CheckpointError: a tensor cannot be read or dequantised.
        """
        ...

    def quantized_type(self, name: str) -> Any | None:
        """The GGML type when ``name`` is a Linear weight this source keeps block-quantised (it loads as
        ``gguf_loader.GGUFLinear`` through :meth:`read_quantized`), None when it loads as a plain tensor.

        Raises:
            CheckpointError: the stored type cannot be dequantised.
        """
        ...

    def read_quantized(self, name: str, *, device: torch.device) -> torch.Tensor:
        """The stored blocks of a tensor :meth:`quantized_type` names: uint8 of shape ``(out, in_bytes)`` (on CPU a
        view of the memory map).

        Raises:
            CheckpointError: the source keeps no quantised weights, or the data is truncated.
        """
        ...


class PlainWeights:
    """The quantisation half of :class:`TensorSource` for sources whose tensors all load as plain tensors."""

    name: str

    def quantized_type(self, name: str) -> None:
        """Always None: every tensor loads as a plain tensor."""
        return None

    def read_quantized(self, name: str, *, device: torch.device) -> torch.Tensor:
        """Plain sources hold no stored blocks (shape ``(out, in_bytes)``); :func:`~.materialize.materialize` never asks
        (:meth:`quantized_type` is always None).

        Raises:
            CheckpointError: always.
        """
        raise CheckpointError(f"{self.name}: tensor {name} is not stored block-quantised.")


def read_device(device: torch.device | str) -> torch.device:
    """Where to read a tensor for ``device``: the device itself, or the CPU for ``meta``."""
    device = torch.device(device)
    return torch.device("cpu") if device.type == "meta" else device


def cast(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """``tensor`` (any shape, kept) in ``dtype`` when it is floating point and a dtype is given, otherwise
    unchanged."""
    if dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype:
        return tensor.to(dtype)
    return tensor


#: safetensors dtype names
DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
_DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


class StateDictSource(PlainWeights):
    """An in-memory ``name → tensor`` mapping (e.g. a Hugging Face ``state_dict()``, tensors of any shape) as a
    :class:`TensorSource`; ``tensors`` describes each by dtype name, shape and size."""

    def __init__(self, state: Mapping[str, torch.Tensor], *, name: str = "state dict") -> None:
        self.name = name
        self.state = state
        self.metadata: dict[str, Any] = {}
        self.tensors: dict[str, TensorInfo] = {
            k: TensorInfo(_DTYPE_NAMES.get(v.dtype, str(v.dtype)), tuple(v.shape),
                          v.element_size() * math.prod(v.shape))
            for k, v in state.items()}

    def config(self) -> None:
        """Always None: a state dict carries no config."""
        return None

    def read(self, names: Mapping[str, str], *, dtype: torch.dtype | None,
             device: torch.device) -> dict[str, torch.Tensor]:
        """``{target: key}`` → the mapping's tensors (each shape kept), cast to ``dtype`` when floating, on
        ``device``."""
        return {target: cast(self.state[key], dtype).to(device=device) for target, key in names.items()}


def as_source(tensors: Mapping[str, torch.Tensor] | TensorSource, *, name: str = "state dict") -> TensorSource:
    """``tensors`` itself when it is a :class:`TensorSource`, a :class:`StateDictSource` over it when it is a plain
    mapping of tensors of any shape (sources are not mappings)."""
    return StateDictSource(tensors, name=name) if isinstance(tensors, Mapping) else tensors
