"""A checked view of a ``.safetensors`` file: header, metadata, tensor names/shapes/dtypes, memory-mapped reads.

The header is parsed and validated before any tensor is touched, so a truncated or foreign file fails with a message
that says what is wrong instead of a Rust panic or a half-loaded model. :class:`SafetensorsFile` is a
:class:`~.source.TensorSource` (its tensors always load as plain tensors).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ..errors import CheckpointError
from .source import DTYPES, PlainWeights, TensorInfo, cast, read_device

__all__ = ["DTYPES", "SafetensorsFile", "TensorInfo"]

_MAX_HEADER = 100 * 1024 * 1024



class SafetensorsFile(PlainWeights):
    """Validated header of one file. ``tensors`` maps names to :class:`TensorInfo`; ``metadata`` is
    ``__metadata__`` (str → str). Mirrors ``ltx_core.loader.sft_loader.SafetensorsModelStateDictLoader`` (its
    ``metadata`` is :meth:`config`; its ``load`` is :meth:`read`, one tensor at a time).

    Raises:
        CheckpointError: the file is missing, too small, truncated or has a corrupt header.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.name = self.path.name
        if self.path.is_dir():
            raise CheckpointError(f"{self.path} is a folder, not a .safetensors file. Give the model file's path.")
        if not self.path.is_file():
            raise CheckpointError(f"Checkpoint not found: {self.path}")
        size = self.path.stat().st_size
        with open(self.path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{self.path.name} is {size} bytes — too small to be a .safetensors file. "
                                      "The download is probably incomplete; download it again.")
            (header_len,) = struct.unpack("<Q", head)
            if header_len > min(size - 8, _MAX_HEADER):
                raise CheckpointError(
                    f"{self.path.name} is not a readable .safetensors file (header length {header_len} bytes, file "
                    f"{size} bytes). It is either truncated or a different format (.ckpt/.pt/.gguf renamed?).")
            try:
                header = json.loads(fh.read(header_len))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise CheckpointError(f"{self.path.name} has a corrupt .safetensors header ({exc}). "
                                      "Download the file again.") from exc
        self.metadata: dict[str, str] = header.pop("__metadata__", None) or {}
        self.tensors: dict[str, TensorInfo] = {}
        data_end = 0
        for name, entry in header.items():
            start, end = entry["data_offsets"]
            self.tensors[name] = TensorInfo(entry["dtype"], tuple(entry["shape"]), end - start)
            data_end = max(data_end, end)
        expected = 8 + header_len + data_end
        if size < expected:
            raise CheckpointError(
                f"{self.path.name} is truncated: the header describes {expected:,} bytes but the file has {size:,} "
                f"({100 * size / expected:.1f}%). The download or copy did not finish; download it again.")
        self.size = size

    def config(self) -> dict[str, Any] | None:
        """``json.loads(metadata["config"])`` or None when absent.

        Raises:
            CheckpointError: the config is not valid JSON.
        """
        raw = self.metadata.get("config")
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{self.path.name}: __metadata__['config'] is not valid JSON ({exc}).") from exc

    def read(
        self, names: Mapping[str, str], *, dtype: torch.dtype | None, device: torch.device
    ) -> dict[str, torch.Tensor]:
        """Read tensors ``{target_name: file_key}`` one at a time from the memory map into ``device``/``dtype``, each in
        its stored shape.

        Floating tensors are cast to ``dtype`` (None keeps the stored dtype); integer tensors keep theirs. Mirrors
        ``ltx_core.loader.sft_loader.SafetensorsStateDictLoader.load``.
        """
        with safe_open(str(self.path), framework="pt", device=str(read_device(device))) as fh:
            return {target: cast(fh.get_tensor(key), dtype) for target, key in names.items()}
