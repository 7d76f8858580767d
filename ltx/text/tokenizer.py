"""Gemma-3 tokenizer with LTX's rules: plain text (no chat template), ``text.strip()``, BOS prepended, no EOS,
truncation to 1024 tokens (BOS included), left padding with id 0 and a 0/1 attention mask.

Sources (table :data:`LOADERS`): a SentencePiece ``tokenizer.model`` or the same bytes embedded in ComfyUI's Gemma
file (tensor ``spiece_model``) through the ``sentencepiece`` package, or a Hugging Face ``tokenizer.json`` through
``tokenizers``. Both packages are ComfyUI requirements; each is imported only when its format is used.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CheckpointError, InputError

MAX_LENGTH = 1024
PAD_ID = 0


@dataclass(frozen=True)
class TokenBatch:
    """``ids`` ``(B, T)`` int64, left-padded with the pad id; ``mask`` ``(B, T)`` int64, 1 on real tokens.

    ltx-core returns the same as ``(id, mask)`` pairs (``LTXVGemmaTokenizer.tokenize_with_weights``).
    """

    ids: torch.Tensor
    mask: torch.Tensor


def _module(name: str, what: str):
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise CheckpointError(f"Reading {what} needs the Python package '{name}' (pip install {name}); ComfyUI "
                              "installs it with its requirements.") from exc


class _SentencePiece:
    def __init__(self, model_bytes: bytes, what: str = "The SentencePiece tokenizer model") -> None:
        self.what = what
        spm = _module("sentencepiece", "a SentencePiece tokenizer")
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(model_bytes)
        except (RuntimeError, OSError, UnicodeDecodeError) as exc:  # the last: its error text holds bad bytes
            raise CheckpointError(f"{self.what} is corrupt ({str(exc)[:200]}).") from exc

    def encode(self, text: str) -> list[int]:
        return list(self.sp.EncodeAsIds(text))

    def piece_id(self, piece: str) -> int | None:
        idx = self.sp.PieceToId(piece)
        try:
            return None if idx == self.sp.unk_id() and piece != self.sp.IdToPiece(idx) else idx
        except UnicodeDecodeError as exc:  # a piece that is not UTF-8: the model file is corrupt
            raise CheckpointError(f"{self.what} is corrupt ({str(exc)[:200]}).") from exc

    def vocab_size(self) -> int:
        return self.sp.GetPieceSize()


class _HFTokenizers:
    def __init__(self, path: Path) -> None:
        tk = _module("tokenizers", "a tokenizer.json")
        try:
            self.tok = tk.Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise CheckpointError(f"{path} is not a readable tokenizer.json ({exc}).") from exc

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False).ids)

    def piece_id(self, piece: str) -> int | None:
        return self.tok.token_to_id(piece)

    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()


LOADERS: dict[str, Callable[[Path], object]] = {
    ".model": lambda p: _SentencePiece(p.read_bytes(), what=f"{p.name} (a SentencePiece tokenizer model)"),
    ".json": _HFTokenizers,
}


class GemmaTokenizer:
    """Prompt text → :class:`TokenBatch` the way LTX tokenises for Gemma-3.

    ``backend`` is a loaded tokenizer (see :data:`LOADERS`); ``max_length`` in tokens, BOS included. Mirrors
    ``ltx_core.text_encoders.gemma.tokenizer.LTXVGemmaTokenizer`` (without the Hugging Face ``AutoTokenizer``).
    """

    def __init__(self, backend, *, max_length: int = MAX_LENGTH) -> None:
        self.backend = backend
        self.max_length = max_length
        bos = backend.piece_id("<bos>")
        self.bos_id = 2 if bos is None else bos
        self.pad_id = PAD_ID

    @classmethod
    def from_file(cls, path: str | os.PathLike, **kw) -> GemmaTokenizer:
        """``tokenizer.model``, ``tokenizer.json``, or a folder holding one of them (``.model`` preferred).

        Raises:
            CheckpointError: no such file, an unknown format, an unreadable file, or the reading package
                (``sentencepiece`` / ``tokenizers``) is missing.
        """
        path = Path(path)
        if path.is_dir():
            found = [path / n for n in ("tokenizer.model", "tokenizer.json") if (path / n).is_file()]
            if not found:
                raise CheckpointError(f"{path} has no tokenizer.model or tokenizer.json. Copy the Gemma-3 tokenizer "
                                      "files into that folder.")
            path = found[0]
        if not path.is_file():
            raise CheckpointError(f"Tokenizer file not found: {path}")
        loader = LOADERS.get(path.suffix)
        if loader is None:
            raise CheckpointError(f"{path.name}: unknown tokenizer format '{path.suffix}'; expected a SentencePiece "
                                  "tokenizer.model or a Hugging Face tokenizer.json.")
        return cls(loader(path), **kw)

    @classmethod
    def from_bytes(cls, model_bytes: bytes, **kw) -> GemmaTokenizer:
        """A serialised SentencePiece model (ComfyUI's ``spiece_model`` tensor as bytes).

        Raises:
            CheckpointError: the bytes are not a SentencePiece model, or ``sentencepiece`` is not installed.
        """
        return cls(_SentencePiece(model_bytes), **kw)

    @property
    def vocab_size(self) -> int:
        """Number of pieces in the vocabulary."""
        return self.backend.vocab_size()

    def encode(self, text: str) -> list[int]:
        """``[BOS] + pieces(text.strip())``, truncated to ``max_length`` tokens.

        Raises:
            InputError: ``text`` is not a string.
        """
        if not isinstance(text, str):
            raise InputError(f"A prompt must be a string; got {type(text).__name__}.")
        return [self.bos_id, *self.backend.encode(text.strip())][: self.max_length]

    def __call__(self, prompts: str | Sequence[str], *, pad_to: int | None = None) -> TokenBatch:
        """Tokenise and left-pad to ``pad_to`` tokens (default ``max_length``, as LTX does; 0 = the longest);
        returns ``ids`` / ``mask`` ``(B, T)``. Mirrors ``LTXVGemmaTokenizer.tokenize_with_weights``.

        Raises:
            InputError: a prompt is not a string, or is longer than ``pad_to``.
        """
        texts = [prompts] if isinstance(prompts, str) else list(prompts)
        encoded = [self.encode(t) for t in texts]
        length = self.max_length if pad_to is None else pad_to
        length = max(length, max((len(e) for e in encoded), default=0)) if length == 0 else length
        if any(len(e) > length for e in encoded):
            raise InputError(f"pad_to={length} is shorter than a prompt ({max(len(e) for e in encoded)} tokens).")
        ids = torch.full((len(texts), length), self.pad_id, dtype=torch.int64)
        mask = torch.zeros((len(texts), length), dtype=torch.int64)
        for row, tokens in enumerate(encoded):
            if tokens:
                ids[row, length - len(tokens):] = torch.tensor(tokens, dtype=torch.int64)
                mask[row, length - len(tokens):] = 1
        return TokenBatch(ids, mask)
