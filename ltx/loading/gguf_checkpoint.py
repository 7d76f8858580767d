"""GGUF checkpoints of the LTX-2 / LTX-2.3 transformer (+ embeddings connectors, + text projection when present).

:class:`GGUFCheckpointFile` presents a ``.gguf`` file the way :class:`SafetensorsFile` presents a ``.safetensors``
one (official names, :class:`TensorInfo` with torch-order shapes and the GGML type name as ``dtype``, ``metadata``,
``config()``), so :func:`open_checkpoint` validates it, reads the ``config`` metadata or infers the config from
shapes exactly as for safetensors. :func:`materialize_gguf` then builds the module on meta and fills it: every
``nn.Linear`` whose weight is stored quantised (BF16 and block types) becomes a :class:`GGUFLinear` holding the raw
bytes; F32/F16 weights, biases, norms, tables and registers become ordinary tensors in ``dtype`` (None: as stored;
quantised non-Linear tensors become float32). On CPU, raw bytes and as-stored tensors are views of the memory map.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from gguf import GGMLQuantizationType
from torch import nn

from ...gguf_loader import GGUFError, GGUFFile, check_supported, ltx_key, replace_linears
from ...gguf_loader.names import LTX_ARCHITECTURES
from ...gguf_loader.reader import STORED_DTYPES
from ..errors import CheckpointError
from .materialize import check_names
from .safetensors_file import TensorInfo

#: weights of these types load as ordinary tensors; every other type stays quantised in a GGUFLinear
PLAIN_TYPES = (GGMLQuantizationType.F32, GGMLQuantizationType.F16)


class GGUFCheckpointFile:
    """A validated GGUF file seen through official LTX-2 tensor names (``tensors``: name → :class:`TensorInfo`)."""

    def __init__(self, path: str | os.PathLike) -> None:
        try:
            self.gguf = GGUFFile(path)
            self.gguf.check_data()
            self.gguf.require_architecture(*LTX_ARCHITECTURES, what="an LTX-2 / LTX-2.3 transformer")
        except GGUFError as exc:
            raise CheckpointError(str(exc)) from exc
        self.path, self.size = self.gguf.path, self.gguf.size
        self.metadata: dict[str, Any] = self.gguf.metadata
        self.keys: dict[str, str] = {}  # official name → GGUF key
        for key in self.gguf.tensors:
            name = ltx_key(key)
            if name in self.keys:
                raise CheckpointError(f"{self.path.name} holds both '{self.keys[name]}' and '{key}', which are the "
                                      "same tensor under two prefixes. The file is malformed; convert it again.")
            self.keys[name] = key
        self.tensors: dict[str, TensorInfo] = {
            name: TensorInfo(t.type_name, t.shape, t.nbytes)
            for name, key in self.keys.items() for t in (self.gguf.tensors[key],)}

    def qtype(self, name: str) -> GGMLQuantizationType:
        return self.gguf.tensors[self.keys[name]].qtype

    def config(self) -> dict[str, Any] | None:
        try:
            return self.gguf.config()
        except GGUFError as exc:
            raise CheckpointError(str(exc)) from exc

    def read_tensor(self, name: str, *, dtype: torch.dtype | None, device: torch.device) -> torch.Tensor:
        """One tensor dequantised into ``dtype`` (None: F32/F16/BF16 as stored, other types float32)."""
        open_device = torch.device("cpu") if device.type == "meta" else device
        try:
            return self.gguf.tensor(self.keys[name], dtype, open_device)
        except GGUFError as exc:
            raise CheckpointError(str(exc)) from exc

    def read(self, names: dict[str, str], *, dtype: torch.dtype | None,
             device: torch.device) -> dict[str, torch.Tensor]:
        """Like :meth:`SafetensorsFile.read`: ``{target: official name}`` → dequantised tensors."""
        return {target: self.read_tensor(name, dtype=dtype, device=device) for target, name in names.items()}


def _check_names(module: nn.Module, source: GGUFCheckpointFile, names: dict[str, str], what: str) -> None:
    check_names(module, {k: tuple(v.shape) for k, v in source.tensors.items()}, names, what=what,
                file_name=source.path.name)


def materialize_gguf(
    factory: Callable[[], nn.Module],
    source: GGUFCheckpointFile,
    names: dict[str, str],
    *,
    what: str,
    dtype: torch.dtype | None,
    device: torch.device,
) -> nn.Module:
    """Build ``factory()`` on meta, check ``names`` (module name → official file name) against it, swap quantised
    Linear layers for :class:`GGUFLinear` and assign every tensor. Returns the module in eval mode."""
    with torch.device("meta"):
        module = factory()
    _check_names(module, source, names, what)
    for key in names.values():
        try:
            check_supported(source.qtype(key), f"{source.path.name}: tensor {source.keys[key]}")
        except GGUFError as exc:
            raise CheckpointError(str(exc)) from exc
    qtypes, bias_dtypes = {}, {}
    for path, child in module.named_modules():
        if isinstance(child, nn.Linear) and f"{path}.weight" in names:
            qtype = source.qtype(names[f"{path}.weight"])
            if qtype not in PLAIN_TYPES:
                qtypes[path] = qtype
                if child.bias is not None:
                    bias_dtypes[path] = dtype or STORED_DTYPES.get(source.qtype(names[f"{path}.bias"]), torch.float32)
    replace_linears(module, qtypes, bias_dtypes)
    state = {}
    for target in module.state_dict():
        if target.endswith(".qweight"):
            key = source.keys[names[target[: -len("qweight")] + "weight"]]
            state[target] = source.gguf.raw(key, "cpu" if device.type == "meta" else device)
        else:
            state[target] = source.read_tensor(names[target], dtype=dtype, device=device)
    module.load_state_dict(state, strict=True, assign=True)
    return module.eval().requires_grad_(False)
