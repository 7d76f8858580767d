"""GGUF checkpoints of the LTX-2 / LTX-2.3 transformer (+ embeddings connectors, + text projection when present).

:class:`GGUFCheckpointFile` is the :class:`~.source.TensorSource` of a ``.gguf`` file under the official names
(:class:`~.source.TensorInfo` with torch-order shapes and the GGML type name as ``dtype``, ``metadata``,
``config()``), so :func:`~.checkpoint.open_checkpoint` validates it, reads the ``config`` metadata or infers the
config from shapes exactly as for safetensors, and :func:`~.materialize.materialize` loads it: every ``nn.Linear``
whose weight is stored quantised (BF16 and block types, :meth:`GGUFCheckpointFile.quantized_type`) becomes a
``GGUFLinear`` holding the raw bytes; F32/F16 weights, biases, norms, tables and registers become ordinary tensors in
``dtype`` (None: as stored; quantised non-Linear tensors become float32). On CPU, raw bytes and as-stored tensors are
views of the memory map.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from gguf import GGMLQuantizationType

from ...gguf_loader import GGUFError, GGUFFile, check_supported, ltx_key
from ...gguf_loader.names import DIFFUSION_PREFIX, LTX_ARCHITECTURES
from ..errors import CheckpointError
from .config_json import parse_config_text
from .source import TensorInfo, read_device

#: architecture strings other GGUF tools write; their files load by tensor names (ComfyUI-GGUF's compatibility mode)
COMPAT_ARCHITECTURES = ("pig", "cow")
#: weights of these types load as ordinary tensors; every other type stays quantised in a GGUFLinear
PLAIN_TYPES = (GGMLQuantizationType.F32, GGMLQuantizationType.F16)


class GGUFCheckpointFile:
    """A validated GGUF file seen through official LTX-2 tensor names (``tensors``: name → :class:`TensorInfo`).

    Mirrors ComfyUI-GGUF's ``loader.gguf_sd_loader`` (header, architecture check, ``comfy.gguf.orig_shape.*``), with
    names under ``model.diffusion_model.`` (which it strips) and without its ``GGMLTensor`` wrapper.

    A file whose ``general.architecture`` is another tool's string (:data:`COMPAT_ARCHITECTURES`, e.g. ``'pig'``)
    but whose tensors are an LTX-2 transformer loads by its tensor names, as ComfyUI-GGUF does; :attr:`note` says so.

    Raises:
        CheckpointError: the file is missing, not GGUF, truncated, of another architecture whose tensors are not an
            LTX-2 transformer, or holds one tensor under two prefixes.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        try:
            self.gguf = GGUFFile(path)
            self.gguf.check_data()
        except GGUFError as exc:
            raise CheckpointError(str(exc)) from exc
        #: why the file was accepted although its architecture string is not an LTX one (None: it is)
        self.note: str | None = architecture_note(self.gguf)
        self.path, self.size, self.name = self.gguf.path, self.gguf.size, self.gguf.path.name
        self.metadata: dict[str, Any] = self.gguf.metadata
        self.keys: dict[str, str] = {}  # official name → GGUF key
        for key in self.gguf.tensors:
            name = ltx_key(key)
            if name in self.keys:
                raise CheckpointError(f"{self.name} holds both '{self.keys[name]}' and '{key}', which are the "
                                      "same tensor under two prefixes. The file is malformed; convert it again.")
            self.keys[name] = key
        self.tensors: dict[str, TensorInfo] = {
            name: TensorInfo(t.type_name, t.shape, t.nbytes)
            for name, key in self.keys.items() for t in (self.gguf.tensors[key],)}

    def qtype(self, name: str) -> GGMLQuantizationType:
        """The stored GGML type of the official tensor ``name``."""
        return self.gguf.tensors[self.keys[name]].qtype

    def config(self) -> dict[str, Any] | None:
        """The ``config`` metadata parsed as JSON (as in the official ``.safetensors``), None when absent.

        Raises:
            CheckpointError: the ``config`` metadata is not a valid, bounded JSON object
                (:func:`~.config_json.parse_config_text`).
        """
        raw = self.metadata.get("config")
        return None if raw is None else parse_config_text(f"{self.name}: the 'config' metadata", raw)

    def quantized_type(self, name: str) -> GGMLQuantizationType | None:
        """The GGML type of a weight kept quantised (anything but F32/F16), None for F32/F16.

        Raises:
            CheckpointError: the stored type has no dequantiser here.
        """
        try:
            qtype = check_supported(self.qtype(name), f"{self.name}: tensor {self.keys[name]}")
        except GGUFError as exc:
            raise CheckpointError(str(exc)) from exc
        return None if qtype in PLAIN_TYPES else qtype

    def read_quantized(self, name: str, *, device: torch.device) -> torch.Tensor:
        """The stored blocks of ``name``: uint8 of shape ``(out, in_bytes)`` on ``device`` (on CPU a view of the
        memory map).

        Raises:
            CheckpointError: the tensor's data is truncated.
        """
        try:
            return self.gguf.raw(self.keys[name], read_device(device))
        except GGUFError as exc:
            raise CheckpointError(str(exc)) from exc

    def read_tensor(self, name: str, *, dtype: torch.dtype | None, device: torch.device) -> torch.Tensor:
        """One tensor in its logical torch-order shape, dequantised into ``dtype`` (None: F32/F16/BF16 as stored,
        other types float32) on ``device``. Mirrors ComfyUI-GGUF's ``dequant.dequantize_tensor``.

        Raises:
            CheckpointError: the data is truncated or of a type that cannot be dequantised.
        """
        try:
            return self.gguf.tensor(self.keys[name], dtype, read_device(device))
        except GGUFError as exc:
            raise CheckpointError(str(exc)) from exc

    def read(self, names: Mapping[str, str], *, dtype: torch.dtype | None,
             device: torch.device) -> dict[str, torch.Tensor]:
        """Like :meth:`SafetensorsFile.read`: ``{target: official name}`` → dequantised tensors, each in its logical
        shape.

        Raises:
            CheckpointError: see :meth:`read_tensor`.
        """
        return {target: self.read_tensor(name, dtype=dtype, device=device) for target, name in names.items()}


def looks_ltx(gguf: GGUFFile) -> bool:
    """Whether the file's tensor names hold an LTX-2 transformer (``patchify_proj`` and ``audio_patchify_proj``)."""
    names = {ltx_key(k).removeprefix(DIFFUSION_PREFIX) for k in gguf.tensors}
    return {"patchify_proj.weight", "audio_patchify_proj.weight"} <= names


def architecture_note(gguf: GGUFFile) -> str | None:
    """None for an LTX architecture string (or none); for a compatibility-mode string (:data:`COMPAT_ARCHITECTURES`:
    files written by other GGUF tools) whose tensors are an LTX-2 transformer, a note that the file loads by its
    tensor names (ComfyUI-GGUF ``loader.gguf_sd_loader`` accepts the same strings).

    Raises:
        CheckpointError: another architecture, or a compatibility string over tensors that are not an LTX-2
            transformer; the message says what the tensors are (a few are named).
    """
    arch = gguf.architecture
    if arch is None or arch in LTX_ARCHITECTURES:
        return None
    ltx = looks_ltx(gguf)
    if ltx and arch in COMPAT_ARCHITECTURES:
        return (f"general.architecture is '{arch}' (a file written by another GGUF tool), not "
                f"{' / '.join(repr(a) for a in LTX_ARCHITECTURES)}; loaded by its tensor names, which are an LTX-2 "
                "transformer.")
    names = [ltx_key(k).removeprefix(DIFFUSION_PREFIX) for k in gguf.tensors]
    found = (f"Its {len(names)} tensors are an LTX-2 transformer, but the label says another model; convert it "
             "with a current LTX GGUF tool or use the .safetensors file." if ltx else
             f"Its tensors ({len(names)}, e.g. {', '.join(names[:3])}) are not an LTX-2 transformer.")
    raise CheckpointError(f"{gguf.path.name} is a GGUF of architecture '{arch}', not an LTX-2 / LTX-2.3 transformer "
                          f"(expected {' or '.join(repr(a) for a in LTX_ARCHITECTURES)}). {found}")
