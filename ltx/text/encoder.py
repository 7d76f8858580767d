"""Prompt text → :class:`TextContexts` in one call: tokenizer → Gemma-3 → feature extractor → connectors.

ltx-core (``ltx_core.text_encoders.gemma.encoders.base_encoder.GemmaTextEncoder.encode`` with
``ltx_core.text_encoders.gemma.tokenizer.LTXVGemmaTokenizer``) tokenises every prompt to 1024 tokens with left padding
and runs Gemma on all of them. Here Gemma runs only on the real tokens, which gives ltx-core's contexts
(``tests/test_prompt_encoder.py`` proves it):

* with left padding, a real token attends only to real tokens (causal + padding mask), and the real tokens get
  RoPE positions ``1024 − n … 1023`` in ltx-core — we give them the same positions, so each layer computes the
  same values for them (the sliding window counts token distance, which is unchanged);
* the feature extractor's statistics (V1: mean/min/max over the valid tokens; V2: per token) only read real tokens,
  and padded rows are zeroed;
* the connectors then see a 1024-token sequence whose padded rows are replaced by learnable registers; that is
  rebuilt exactly (features left-padded to 1024 with a 0/1 mask), because the registers take part in the
  connectors' attention and the context length stays 1024 like ltx-core's.

So Gemma's cost and memory scale with the prompt length instead of 1024. Results are cached per prompt text (a
bounded LRU) and :meth:`PromptEncoder.free` drops Gemma when the transformer needs the memory.
"""

from __future__ import annotations

import gc
from collections import OrderedDict
from collections.abc import Sequence

import torch

from ...ops import resolve_backend
from ..errors import ConfigError, InputError
from .gemma import GemmaTextModel
from .gemma4 import Gemma4TextModel
from .processor import TextConnectors, TextContexts
from .tokenizer import GemmaTokenizer


class PromptEncoder:
    """Encodes prompts to the transformer's contexts. ``encode("a cat")`` → :class:`TextContexts` with ``video``
    ``(B, 1024, D_v)``, ``audio`` ``(B, 1024, D_a)`` and an all-ones ``mask`` ``(B, 1024)``.

    Args:
        gemma: the Gemma-3 text model, or LTX-2.5's Gemma-4 (its dtype/device are where Gemma runs).
        tokenizer: the matching tokenizer; its ``max_length`` (1024) is the context length.
        connectors: the feature extractor + connectors of the LTX checkpoint (may live on another device/dtype).
        cache_size: prompts kept in the result cache (0 disables it).
        backend: attention backend name for Gemma and the connectors.

    Mirrors ``GemmaTextEncoder.encode`` followed by
    ``ltx_core.text_encoders.gemma.embeddings_processor.EmbeddingsProcessor.process_hidden_states``.

    Raises:
        ConfigError: the Gemma model's depth or width does not match the checkpoint's text projection, or the
            context length is not a multiple of the connectors' registers.
        AttentionBackendError: ``backend`` is unknown or not installed.
    """

    def __init__(self, gemma: GemmaTextModel | Gemma4TextModel, tokenizer: GemmaTokenizer,
                 connectors: TextConnectors, *, cache_size: int = 16, backend: str = "sdpa") -> None:
        cfg = gemma.config
        if connectors.num_gemma_states != cfg.num_hidden_states:
            raise ConfigError(f"The LTX checkpoint's text projection expects {connectors.num_gemma_states} Gemma "
                              f"hidden states but this Gemma has {cfg.num_hidden_layers} layers "
                              f"({cfg.num_hidden_states} states). Use the Gemma text encoder made for this LTX "
                              "version.")
        expected_width = _projection_in_features(connectors) // connectors.num_gemma_states
        if expected_width != cfg.hidden_size:
            raise ConfigError(f"The LTX checkpoint's text projection expects Gemma width {expected_width}, this "
                              f"Gemma has {cfg.hidden_size}. Use the Gemma text encoder made for this LTX version.")
        registers = max(connectors.video_connector.config.num_learnable_registers, 1)
        if tokenizer.max_length % registers:
            raise ConfigError(f"The context length {tokenizer.max_length} must be a multiple of the connectors' "
                              f"{registers} registers.")
        self.gemma: GemmaTextModel | Gemma4TextModel | None = gemma
        self.tokenizer = tokenizer
        self.connectors = connectors
        self.backend = resolve_backend(backend, gemma.device)
        self.cache_size = cache_size
        self._cache: OrderedDict[str, TextContexts] = OrderedDict()

    @property
    def length(self) -> int:
        """Context length (tokens) of every encoded prompt: the tokenizer's ``max_length``."""
        return self.tokenizer.max_length

    @torch.no_grad()
    def hidden_states(self, prompt: str) -> list[torch.Tensor]:
        """Gemma's ``L + 1`` hidden states ``(1, n, D)`` for the ``n`` real tokens of ``prompt`` (RoPE positions
        ``length − n … length − 1``, as in ltx-core's left-padded run).

        Raises:
            InputError: Gemma was freed (:meth:`free`), or ``prompt`` is not a string.
        """
        if self.gemma is None:
            raise InputError("The Gemma text encoder was freed (PromptEncoder.free()); load it again to encode new "
                             "prompts.")
        ids = self.tokenizer.encode(prompt)
        n = len(ids)
        positions = torch.arange(self.length - n, self.length, device=self.gemma.device)
        tokens = torch.tensor([ids], dtype=torch.int64, device=self.gemma.device)
        return self.gemma(tokens, None, positions, backend=self.backend)

    @torch.no_grad()
    def contexts_from_states(self, states: Sequence[torch.Tensor]) -> TextContexts:
        """``L + 1`` hidden states ``(1, n, D)`` of the real tokens → contexts ``(1, length, D_v)`` /
        ``(1, length, D_a)`` (:attr:`length` tokens, left-padded then filled with the connectors' registers)."""
        param = next(self.connectors.parameters())
        states = [s.to(device=param.device, dtype=param.dtype) for s in states]
        n = states[0].shape[1]
        valid = torch.ones(1, n, dtype=torch.int64, device=param.device)
        video_f, audio_f = self.connectors.feature_extractor(states, valid)
        pad = self.length - n
        mask = torch.cat([torch.zeros(1, pad, dtype=torch.int64, device=param.device), valid], dim=1)
        backend = self.backend
        video = self.connectors.video_connector(_left_pad(video_f, pad), mask, backend)
        audio = self.connectors.audio_connector(_left_pad(audio_f, pad), mask, backend)
        return TextContexts(video=video, audio=audio, mask=torch.ones(1, self.length, dtype=torch.int64,
                                                                        device=video.device))

    def encode(self, prompts: str | Sequence[str]) -> TextContexts:
        """One prompt or a list → :class:`TextContexts` ``(B, length, D)`` with ``B`` = number of prompts.

        Raises:
            InputError: no prompt, a prompt that is not a string, or Gemma freed with a prompt not in the cache.
        """
        texts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not texts:
            raise InputError("No prompt given: pass a string or a non-empty list of strings.")
        parts = [self._encode_one(t) for t in texts]
        if len(parts) == 1:
            return parts[0]
        return TextContexts(video=torch.cat([p.video for p in parts]), audio=torch.cat([p.audio for p in parts]),
                            mask=torch.cat([p.mask for p in parts]))

    __call__ = encode

    def _encode_one(self, prompt: str) -> TextContexts:
        if not isinstance(prompt, str):
            raise InputError(f"A prompt must be a string; got {type(prompt).__name__}.")
        key = prompt.strip()
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        result = self.contexts_from_states(self.hidden_states(prompt))
        if self.cache_size > 0:
            self._cache[key] = result
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result

    def cached_prompts(self) -> list[str]:
        """Prompts in the cache, least recently used first."""
        return list(self._cache)

    def clear_cache(self) -> None:
        """Forget every cached prompt."""
        self._cache.clear()

    def free(self) -> None:
        """Drop Gemma (the big part) and release its memory; cached prompts can still be encoded."""
        device = self.gemma.device if self.gemma is not None else None
        self.gemma = None
        gc.collect()
        if device is not None and device.type == "cuda":
            torch.cuda.empty_cache()


def _left_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    return torch.cat([x.new_zeros(x.shape[0], pad, x.shape[2]), x], dim=1) if pad else x


def _projection_in_features(connectors: TextConnectors) -> int:
    fe = connectors.feature_extractor
    linear = fe.aggregate_embed if hasattr(fe, "aggregate_embed") else fe.video_aggregate_embed
    return linear.in_features
