"""Prompt text → contexts, ours (Gemma on the real tokens only) vs LTX's reference path (tokens left-padded to the
full length → ``transformers`` Gemma-3 → ltx-core's ``EmbeddingsProcessor``) for the LTX-2 and LTX-2.3 layouts;
the prompt cache and freeing Gemma."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

from rs_ltxv.ltx.errors import ConfigError, InputError
from rs_ltxv.ltx.loading import load_prompt_encoder
from rs_ltxv.ltx.loading.gemma import build_gemma
from rs_ltxv.ltx.text.encoder import PromptEncoder
from rs_ltxv.ltx.text.gemma_config import GemmaConfig
from rs_ltxv.ltx.text.tokenizer import GemmaTokenizer

from conftest import assert_close
from reference import gemma_ref as G
from reference import ltx_core_ref as R

LENGTH = 32  # context length of the tiny setup: a multiple of the tiny connectors' 8 registers (real: 1024 / 128)
PROMPTS = ["A cat walks slowly across a sunny kitchen floor.", "hi", "Close-up of a woman laughing " * 4]


@pytest.fixture(scope="module")
def token_folder(tmp_path_factory):
    return G.write_tokenizer_folder(G.train_tiny_sentencepiece(), tmp_path_factory.mktemp("tok"))


def make_encoder(pair, hf, token_folder, **kw) -> PromptEncoder:
    gemma = build_gemma(GemmaConfig.from_hf_dict(hf.config.to_dict()), hf.state_dict(), dtype=torch.float32)
    tokenizer = GemmaTokenizer.from_file(token_folder, max_length=LENGTH)
    return PromptEncoder(gemma, tokenizer, pair.text, **kw)


def reference_contexts(pair, hf, token_folder, prompts):
    ids, mask = G.hf_reference_tokenize(token_folder, prompts, LENGTH)
    states = G.run_hf(hf, ids, mask)
    video, audio, _ = R.run_text_path(pair.ref, states, mask)
    return video, audio, mask


def test_prompt_to_contexts_matches_ltx_core(pair, token_folder):
    hf = G.tiny_hf_gemma_of_width(pair.ref.config["transformer"]["caption_channels"])
    assert hf.config.num_hidden_layers + 1 == pair.ref.num_gemma_states
    encoder = make_encoder(pair, hf, token_folder)
    ref_video, ref_audio, mask = reference_contexts(pair, hf, token_folder, PROMPTS)
    counts = mask.sum(dim=1).tolist()
    # short, > window, truncated
    assert counts[1] < 5 < counts[0] < LENGTH
    assert counts[2] == LENGTH
    out = encoder.encode(PROMPTS)
    assert out.video.shape == ref_video.shape
    assert out.video.shape[1] == LENGTH
    assert_close(out.video, ref_video, f"{pair.variant} video context")
    assert_close(out.audio, ref_audio, f"{pair.variant} audio context")
    assert out.mask.shape == (3, LENGTH)
    assert bool(out.mask.all())


def test_gemma_sees_only_real_tokens(pair, token_folder, monkeypatch):
    hf = G.tiny_hf_gemma_of_width(pair.ref.config["transformer"]["caption_channels"])
    encoder = make_encoder(pair, hf, token_folder)
    seen = []
    original = type(encoder.gemma).forward

    def spy(self, input_ids, *args, **kwargs):
        seen.append(tuple(input_ids.shape))
        return original(self, input_ids, *args, **kwargs)

    monkeypatch.setattr(type(encoder.gemma), "forward", spy)
    encoder.encode("A cat walks slowly.")
    assert seen == [(1, len(encoder.tokenizer.encode("A cat walks slowly.")))]


def test_cache_is_bounded_lru(pair, token_folder):
    hf = G.tiny_hf_gemma_of_width(pair.ref.config["transformer"]["caption_channels"])
    encoder = make_encoder(pair, hf, token_folder, cache_size=2)
    first = encoder.encode("a cat")
    assert encoder.encode("  a cat ") is first  # same tokens → cached result
    encoder.encode("a dog")
    encoder.encode("a cat")  # refresh "a cat"
    encoder.encode("a bird")  # evicts "a dog", the least recently used
    assert encoder.cached_prompts() == ["a cat", "a bird"]
    encoder.clear_cache()
    assert encoder.cached_prompts() == []
    assert torch.equal(encoder.encode("a cat").video, first.video)


def test_free_releases_gemma(pair, token_folder):
    hf = G.tiny_hf_gemma_of_width(pair.ref.config["transformer"]["caption_channels"])
    encoder = make_encoder(pair, hf, token_folder)
    cached = encoder.encode("a cat")
    ref = weakref.ref(encoder.gemma)
    encoder.free()
    gc.collect()
    assert encoder.gemma is None
    assert ref() is None
    assert encoder.encode("a cat") is cached  # cached prompts still work
    with pytest.raises(InputError, match="freed"):
        encoder.encode("a new prompt")


def test_mismatched_gemma_is_a_clear_error(pair, token_folder):
    hidden = pair.ref.config["transformer"]["caption_channels"]
    with pytest.raises(ConfigError, match="hidden states"):
        make_encoder(pair, G.tiny_hf_gemma_of_width(hidden, layers=3), token_folder)
    with pytest.raises(ConfigError, match="width"):
        make_encoder(pair, G.tiny_hf_gemma_of_width(hidden + 8), token_folder)


def test_load_prompt_encoder_with_the_real_context_length(pair, token_folder, tmp_path):
    """Gemma folder (config.json + weights + tokenizer.model) + the LTX checkpoint → contexts of 1024 tokens equal
    to the reference path padded to 1024."""
    from transformers import Gemma3ForCausalLM

    hf = G.tiny_hf_gemma_of_width(pair.ref.config["transformer"]["caption_channels"])
    lm = Gemma3ForCausalLM(hf.config)
    lm.model.load_state_dict(hf.state_dict())
    lm.save_pretrained(str(tmp_path))
    (tmp_path / "tokenizer.model").write_bytes((token_folder / "tokenizer.model").read_bytes())
    encoder = load_prompt_encoder(tmp_path, pair.checkpoint, dtype=torch.float32)
    assert encoder.length == 1024
    out = encoder.encode(PROMPTS[0])
    ids, mask = G.hf_reference_tokenize(token_folder, PROMPTS[:1], 1024)
    ref_video, ref_audio, _ = R.run_text_path(pair.ref, G.run_hf(hf, ids, mask), mask)
    assert_close(out.video, ref_video, f"{pair.variant} video context (1024)")
    assert_close(out.audio, ref_audio, f"{pair.variant} audio context (1024)")
