"""A checked view of a ``.safetensors`` file: header, metadata, tensor names/shapes/dtypes, memory-mapped reads.

The header is parsed and validated before any tensor is touched, so a truncated or foreign file fails with a message
that says what is wrong instead of a Rust panic or a half-loaded model. :class:`SafetensorsFile` is a
:class:`~.source.TensorSource` (its tensors always load as plain tensors).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ..errors import CheckpointError
from .config_json import parse_config_text
from .safetensors_header import MAX_HEADER_BYTES, parse_header, reading
from .source import DTYPES, PlainWeights, TensorInfo, cast, read_device

__all__ = ["DTYPES", "SafetensorsFile", "TensorInfo"]


class SafetensorsFile(PlainWeights):
    """Validated header of one file. ``tensors`` maps names to :class:`TensorInfo`; ``metadata`` is
    ``__metadata__`` (str → str). Mirrors ``ltx_core.loader.sft_loader.SafetensorsModelStateDictLoader`` (its
    ``metadata`` is :meth:`config`; its ``load`` is :meth:`read`, one tensor at a time).

    Raises:
        CheckpointError: the file is missing, too small, truncated or has a corrupt header (every entry is checked
            by :func:`~.safetensors_header.parse_header`).
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
            if header_len > size - 8 or header_len < 2:
                raise CheckpointError(
                    f"{self.path.name} is not a readable .safetensors file (header length {header_len} bytes, file "
                    f"{size} bytes). It is either truncated or a different format (.ckpt/.pt/.gguf renamed?).")
            if header_len > MAX_HEADER_BYTES:
                raise CheckpointError(f"{self.path.name}: the .safetensors header length field says {header_len:,} "
                                      f"bytes; RS-LTXV reads headers up to {MAX_HEADER_BYTES:,} bytes (real model "
                                      "files: under 1 MiB). The file is corrupt; download it again.")
            raw = fh.read(header_len)
        self.metadata, self.tensors = parse_header(self.path.name, raw, size - 8 - header_len, size)
        self.size = size

    def config(self) -> dict[str, Any] | None:
        """``json.loads(metadata["config"])`` or None when absent.

        Raises:
            CheckpointError: the config is not a valid, bounded JSON object
                (:func:`~.config_json.parse_config_text`).
        """
        raw = self.metadata.get("config")
        return None if raw is None else parse_config_text(f"{self.path.name}: __metadata__['config']", raw)

    def read(
        self, names: Mapping[str, str], *, dtype: torch.dtype | None, device: torch.device
    ) -> dict[str, torch.Tensor]:
        """Read tensors ``{target_name: file_key}`` one at a time from the memory map into ``device``/``dtype``, each in
        its stored shape.

        Floating tensors are cast to ``dtype`` (None keeps the stored dtype); integer tensors keep theirs. Mirrors
        ``ltx_core.loader.sft_loader.SafetensorsStateDictLoader.load``.

        Raises:
            CheckpointError: the file changed or cannot be read any more (:func:`~.safetensors_header.reading`).
        """
        with reading(self.path.name), safe_open(str(self.path), framework="pt",
                                                device=str(read_device(device))) as fh:
            return {target: cast(fh.get_tensor(key), dtype) for target, key in names.items()}
