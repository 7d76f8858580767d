"""Gemma-4 tokenizer with LTX's rules, from the Hugging Face ``tokenizer.json`` that the bundled LTX-2.5 text-encoder
file embeds (the uint8 ``tokenizer_json`` tensor) through the ``tokenizers`` package.

Gemma-4's tokenizer adds no BOS, so ltx-core 1.2.0 prepends one unless the text already begins with it
(``ltx_core.text_encoders.gemma.tokenizer.LTXGemmaTokenizer.tokenize_with_weights``): ``text.strip()``, pieces with
the tokenizer's own special tokens matched in the text, BOS prepended when the first piece is not BOS, truncation to
1024 tokens, left padding with the pad id. The BOS / pad pieces come from ``tokenizer_config.json`` (an
``hf_asset__tokenizer_config.json`` tensor of the same file) when it names them, else ``<bos>`` / ``<pad>``.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import CheckpointError, InputError
from .tokenizer import MAX_LENGTH, GemmaTokenizer, _module


class JsonTokenizer:
    """A Hugging Face ``tokenizer.json`` held in memory, read by the ``tokenizers`` package: ``encode`` (pieces
    without the post-processor's special tokens), ``piece_id``, ``vocab_size`` (the interface of
    :data:`.tokenizer.LOADERS`' backends).

    Raises:
        CheckpointError: the bytes are not a readable ``tokenizer.json`` or ``tokenizers`` is not installed.
    """

    def __init__(self, data: bytes, what: str = "tokenizer.json") -> None:
        tk = _module("tokenizers", "a tokenizer.json")
        try:
            self.tok = tk.Tokenizer.from_str(data.decode("utf-8"))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON; bad UTF-8 a UnicodeDecodeError
            raise CheckpointError(f"{what} is not a readable tokenizer.json ({str(exc)[:200]}). The file is "
                                  "truncated or corrupt; download it again.") from exc

    def encode(self, text: str) -> list[int]:
        """``text`` → piece ids (added special tokens in the text are matched, none is added)."""
        return list(self.tok.encode(text, add_special_tokens=False).ids)

    def piece_id(self, piece: str) -> int | None:
        """The id of ``piece``, None when the vocabulary lacks it."""
        return self.tok.token_to_id(piece)

    def vocab_size(self) -> int:
        """Number of pieces, added tokens included."""
        return self.tok.get_vocab_size()


def _token_name(value: Any) -> str | None:
    """A ``tokenizer_config.json`` special-token entry: a string or ``{"content": …}``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class Gemma4Tokenizer(GemmaTokenizer):
    """Prompt text → :class:`~.tokenizer.TokenBatch` the way ltx-core 1.2.0 tokenises for Gemma-4: BOS prepended
    only when the text's first piece is not BOS.

    Args:
        backend: a loaded tokenizer (:class:`JsonTokenizer`).
        max_length: tokens, BOS included (1024 in LTX).
        bos_token / pad_token: piece names (from ``tokenizer_config.json``); ids fall back to ``bos_id`` /
            ``pad_id`` when the vocabulary lacks them.

    Mirrors ``ltx_core.text_encoders.gemma.tokenizer.LTXGemmaTokenizer`` over
    ``ltx_core.text_encoders.gemma.gemma_assets.build_gemma_hf_tokenizer`` (without ``transformers``).

    Raises:
        CheckpointError: neither ``bos_token`` nor ``<bos>`` is in the vocabulary and no ``bos_id`` is given.
    """

    def __init__(self, backend, *, max_length: int = MAX_LENGTH, bos_token: str | None = None,
                 pad_token: str | None = None, bos_id: int | None = None, pad_id: int = 0) -> None:
        super().__init__(backend, max_length=max_length)
        bos = backend.piece_id(bos_token or "<bos>")
        if bos is None and bos_id is None:
            raise CheckpointError(f"The Gemma-4 tokenizer has no BOS piece {bos_token or '<bos>'!r}; LTX's prompt "
                                  "path needs one. The tokenizer does not belong to the LTX-2.5 text encoder.")
        self.bos_id = bos if bos is not None else int(bos_id)
        pad = backend.piece_id(pad_token or "<pad>")
        self.pad_id = pad if pad is not None else pad_id

    @classmethod
    def from_json(cls, tokenizer_json: bytes, tokenizer_config: bytes | None = None, *,
                  what: str = "tokenizer.json", **kw) -> Gemma4Tokenizer:
        """A tokenizer from ``tokenizer.json`` bytes and, when given, ``tokenizer_config.json`` bytes (its
        ``bos_token`` / ``pad_token``). ``kw`` as the constructor (``max_length``, ``bos_id`` …).

        Raises:
            CheckpointError: unreadable ``tokenizer.json`` or ``tokenizer_config.json``; no BOS piece.
        """
        names: dict[str, str] = {}
        if tokenizer_config is not None:
            try:
                cfg = json.loads(tokenizer_config)
            except (ValueError, UnicodeDecodeError) as exc:
                raise CheckpointError(f"The tokenizer_config.json beside {what} is not valid JSON ({exc}).") from exc
            if isinstance(cfg, dict):
                for key in ("bos_token", "pad_token"):
                    name = _token_name(cfg.get(key))
                    if name is not None:
                        names[key] = name
        return cls(JsonTokenizer(tokenizer_json, what), **names, **kw)

    def encode(self, text: str) -> list[int]:
        """``pieces(text.strip())`` with BOS prepended unless they start with it, truncated to ``max_length``.

        Raises:
            InputError: ``text`` is not a string.
        """
        if not isinstance(text, str):
            raise InputError(f"A prompt must be a string; got {type(text).__name__}.")
        ids = self.backend.encode(text.strip())[: self.max_length]
        if not ids or ids[0] != self.bos_id:
            ids = [self.bos_id, *ids]
        return ids[: self.max_length]
