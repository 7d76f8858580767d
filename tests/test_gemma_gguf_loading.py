"""Gemma-3 text encoders from GGUF through ``load_gemma`` / ``load_gemma_tokenizer`` / ``load_prompt_encoder``.

Tiny Gemmas are written the way llama.cpp's converter writes them (``gemma3`` metadata, ``blk.N.*`` names, norm
weights stored as ``1 + w``, the SentencePiece vocabulary as ``tokenizer.ggml.*``) with ``gguf_loader``'s encoder, and
must reproduce ``transformers``' ``Gemma3TextModel`` on the weights the file stands for (dequantised independently
with ``gguf.quants``). The slow test runs the real Gemma-3 270M Q4_K_M file from the ``.gguf`` alone."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import dequantize as np_dequantize
from safetensors.torch import save_file
from torch import nn

from rs_ltxv.gguf_loader import GGUFLinear
from rs_ltxv.gguf_loader.writer import encode
from rs_ltxv.ltx.errors import CheckpointError
from rs_ltxv.ltx.loading.gemma import load_gemma, load_gemma_tokenizer
from rs_ltxv.ltx.text.gemma_config import GemmaConfig

from conftest import assert_close
from reference import gemma_ref as G

Q = GGMLQuantizationType
# Gemma3TextModel names → llama.cpp names (written out here, independently of gguf_loader.names)
_BLOCK = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
          "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
          "input_layernorm": "attn_norm", "post_attention_layernorm": "post_attention_norm",
          "pre_feedforward_layernorm": "ffn_norm", "post_feedforward_layernorm": "post_ffw_norm",
          "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
TEXTS = ["A cat walks slowly across a sunny kitchen floor.", "1234 5678 numbers, ÄÖÜ é ß", "zebra ⊕ 東京  two  spaces"]


def gguf_name(name: str) -> str:
    if name == "embed_tokens.weight":
        return "token_embd.weight"
    if name == "norm.weight":
        return "output_norm.weight"
    _, layer, rest = name.split(".", 2)
    return f"blk.{layer}.{_BLOCK[rest.removesuffix('.weight')]}.weight"


VOCAB = G.tiny_sentencepiece_vocabulary()


def write_gemma_gguf(path: Path, hf, qtype: Q | None = Q.F32, *, arch: str = "gemma3", vocab: bool = True,
                     skip_metadata: tuple[str, ...] = ()) -> Path:
    """``hf`` (a ``Gemma3TextModel``) as llama.cpp writes it; matrices in ``qtype`` where their rows allow (else F32),
    vectors in F32, norm weights as ``1 + w``."""
    cfg = hf.config
    writer = GGUFWriter(str(path), arch=arch)
    meta = {
        "context_length": cfg.max_position_embeddings, "embedding_length": cfg.hidden_size,
        "block_count": cfg.num_hidden_layers, "feed_forward_length": cfg.intermediate_size,
        "head_count": cfg.num_attention_heads, "head_count_kv": cfg.num_key_value_heads,
        "key_length": cfg.head_dim, "value_length": cfg.head_dim, "sliding_window": cfg.sliding_window,
        "layer_norm_rms_eps": cfg.rms_norm_eps, "rope_freq_base": cfg.rope_parameters["full_attention"]["rope_theta"],
    }
    factor = cfg.rope_parameters["full_attention"].get("factor")
    if factor:
        meta["rope_scaling_factor"] = factor
    for key, value in meta.items():
        if key not in skip_metadata:
            getattr(writer, f"add_{key}")(value)
    if vocab:
        tokens, scores, types = VOCAB
        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_add_space_prefix(False)
        for kind, value in (("bos", 2), ("eos", 1), ("pad", 0), ("unk", 3)):
            getattr(writer, f"add_{kind}_token_id")(value)
    for name, tensor in hf.state_dict().items():
        if name.endswith("norm.weight"):
            tensor = tensor + 1.0
        qt = qtype if tensor.ndim == 2 and tensor.shape[-1] % 32 == 0 else Q.F32
        data = encode(tensor, qt)
        if qt == Q.F32:
            writer.add_tensor(gguf_name(name), data)
        else:
            writer.add_tensor(gguf_name(name), data, raw_shape=data.shape, raw_dtype=qt)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def stored_weights(hf, qtype: Q) -> dict[str, torch.Tensor]:
    """The weights a file written by :func:`write_gemma_gguf` stands for, dequantised by ``gguf.quants`` (NumPy)."""
    out = {}
    for name, tensor in hf.state_dict().items():
        norm = name.endswith("norm.weight")
        value = tensor + 1.0 if norm else tensor
        qt = qtype if value.ndim == 2 and value.shape[-1] % 32 == 0 else Q.F32
        if qt != Q.F32:
            array = np_dequantize(encode(value, qt), qt).astype(np.float32).reshape(value.shape)
            value = torch.from_numpy(np.ascontiguousarray(array))
        out[name] = value - 1.0 if norm else value
    return out


@pytest.fixture(scope="module")
def hf():
    return G.tiny_hf_gemma_for_gguf()


@pytest.fixture(scope="module")
def inputs(hf):
    g = torch.Generator().manual_seed(42)
    ids = torch.randint(4, hf.config.vocab_size, (2, 11), generator=g)
    mask = torch.ones(2, 11, dtype=torch.int64)
    mask[1, :5] = 0
    return ids, mask


def states_of(model, inputs) -> list[torch.Tensor]:
    ids, mask = inputs
    with torch.no_grad():
        return [s[mask.bool()] for s in model(ids, mask)]


def reference_states(hf, weights, inputs) -> list[torch.Tensor]:
    ref = G.tiny_hf_gemma_for_gguf()
    ref.load_state_dict(weights)
    ids, mask = inputs
    return [s[mask.bool()] for s in G.run_hf(ref, ids, mask)]


# measured max|Δ| / max|ref| over all hidden states against the float model (seed 41): BF16 1.2e-2, Q8_0 3.2e-2
QUANT_ERROR = {Q.F32: 1e-5, Q.BF16: 2.5e-2, Q.Q8_0: 5e-2}


@pytest.mark.parametrize("qtype", [Q.F32, Q.BF16, Q.Q8_0], ids=lambda q: q.name)
def test_tiny_gguf_matches_transformers(hf, inputs, tmp_path, qtype):
    path = write_gemma_gguf(tmp_path / "gemma-tiny.gguf", hf, qtype)
    model = load_gemma(path, dtype=torch.float32)
    assert model.config == GemmaConfig.from_hf_dict(hf.config.to_dict())
    attn = model.layers[0].self_attn
    assert isinstance(attn.q_proj, GGUFLinear if qtype == Q.Q8_0 else nn.Linear)
    assert model.embed_tokens.weight.dtype == model.norm.weight.dtype == torch.float32
    ours = states_of(model, inputs)
    # exact: transformers on the weights the file stands for
    for i, (o, r) in enumerate(zip(ours, reference_states(hf, stored_weights(hf, qtype), inputs), strict=True)):
        assert_close(o, r, f"{qtype.name} state {i}")
    # close: the float model, within the quantisation error
    ids, mask = inputs
    floats = [s[mask.bool()] for s in G.run_hf(hf, ids, mask)]
    worst = max(((o - r).abs().max() / r.abs().max()).item() for o, r in zip(ours, floats, strict=True))
    assert worst <= QUANT_ERROR[qtype], f"{qtype.name}: relative error {worst:.3e}"
    if qtype != Q.F32:
        assert worst > 1e-5  # the quantisation is really in the file
    # dequantised on load: plain Linear layers, same numbers
    plain = load_gemma(path, dtype=torch.float32, dequantize=True)
    assert isinstance(plain.layers[0].self_attn.q_proj, nn.Linear)
    for o, p in zip(ours, states_of(plain, inputs), strict=True):
        assert_close(p, o, "dequantize=True")


def test_quantised_weights_stay_mapped_and_bf16_compute(hf, inputs, tmp_path):
    path = write_gemma_gguf(tmp_path / "q8.gguf", hf, Q.Q8_0)
    model = load_gemma(path, dtype=torch.bfloat16)
    linears = [m for m in model.modules() if isinstance(m, GGUFLinear)]
    assert len(linears) == 7 * hf.config.num_hidden_layers
    assert {m.qweight.dtype for m in linears} == {torch.uint8}
    assert model.embed_tokens.weight.dtype == torch.bfloat16
    ref = load_gemma(path, dtype=torch.float32)
    ids, mask = inputs
    with torch.no_grad():
        out, expected = model(ids, mask)[-1].float(), ref(ids, mask)[-1]
    assert (out - expected)[mask.bool()].abs().max() <= 0.05 * max(1.0, expected.abs().max().item())


def test_tokenizer_from_gguf_vocabulary(hf, tmp_path):
    import sentencepiece as spm

    path = write_gemma_gguf(tmp_path / "tok.gguf", hf)
    tokenizer = load_gemma_tokenizer(path, max_length=64)
    sp = spm.SentencePieceProcessor(model_proto=G.train_tiny_sentencepiece())
    for text in TEXTS + G.CORPUS:
        assert tokenizer.encode(text) == [2, *sp.encode(text.strip())], text
    assert tokenizer.vocab_size == len(VOCAB[0])
    assert tokenizer.bos_id == 2
    assert tokenizer.max_length == 64
    # the same from the vocabulary remembered while loading the weights
    model_path = write_gemma_gguf(tmp_path / "both.gguf", hf)
    load_gemma(model_path, dtype=torch.float32)
    assert load_gemma_tokenizer(model_path).encode(TEXTS[0]) == tokenizer.encode(TEXTS[0])


def test_whitespace_runs_and_foreign_vocabularies():
    """llama.cpp writes Gemma's user-defined whitespace-run pieces with real spaces; they must still match."""
    from rs_ltxv.ltx.text.tokenizer_gguf import tokenizer_from_gguf_metadata

    tokens, scores, types = VOCAB
    meta = {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": [*tokens, "  ", "   "],
            "tokenizer.ggml.scores": [*scores, 0.0, 0.0], "tokenizer.ggml.token_type": [*types, 4, 4]}
    tokenizer = tokenizer_from_gguf_metadata(meta)
    two, three = len(tokens), len(tokens) + 1
    assert two in tokenizer.encode("a  b")
    assert three in tokenizer.encode("a   b")
    assert two not in tokenizer.encode("a b")
    with pytest.raises(CheckpointError, match="'gpt2' tokenizer"):
        tokenizer_from_gguf_metadata({**meta, "tokenizer.ggml.model": "gpt2"})
    with pytest.raises(CheckpointError, match="do not match"):
        tokenizer_from_gguf_metadata({**meta, "tokenizer.ggml.scores": scores})


def test_gguf_errors_are_checkpoint_errors(hf, tmp_path):
    wrong = write_gemma_gguf(tmp_path / "llama.gguf", hf, arch="llama")
    with pytest.raises(CheckpointError, match=r"architecture 'llama'.*Gemma-3"):
        load_gemma(wrong)
    with pytest.raises(CheckpointError, match="architecture 'llama'"):
        load_gemma_tokenizer(wrong)
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(CheckpointError):
        load_gemma(garbage)
    good = write_gemma_gguf(tmp_path / "good.gguf", hf, Q.Q8_0).read_bytes()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(good[: len(good) - 4096])
    with pytest.raises(CheckpointError, match="truncated"):
        load_gemma(truncated)
    renamed = tmp_path / "renamed.gguf"
    save_file({"x": torch.zeros(2)}, str(renamed))
    with pytest.raises(CheckpointError, match="not a GGUF file"):
        load_gemma(renamed)
    incomplete = write_gemma_gguf(tmp_path / "incomplete.gguf", hf, skip_metadata=("head_count",))
    with pytest.raises(CheckpointError, match=r"attention\.head_count"):
        load_gemma(incomplete)
    no_vocab = write_gemma_gguf(tmp_path / "novocab.gguf", hf, vocab=False)
    assert load_gemma(no_vocab, dtype=torch.float32).config.num_hidden_layers == hf.config.num_hidden_layers
    with pytest.raises(CheckpointError, match="no tokenizer"):
        load_gemma_tokenizer(no_vocab)
    fewer = G.tiny_hf_gemma_for_gguf(num_hidden_layers=2)
    mixed = write_gemma_gguf(tmp_path / "mixed.gguf", fewer)
    with pytest.raises(CheckpointError, match="does not match its Gemma config"):
        load_gemma(mixed, config=GemmaConfig.from_hf_dict(hf.config.to_dict()))


def test_prompt_encoder_from_gguf(tmp_path):
    """``load_prompt_encoder(gemma.gguf, ltx.safetensors)`` equals the same encoder read from a Hugging Face
    folder holding the weights the GGUF stands for (o_proj / down_proj in Q8_0, the rest F32)."""
    from transformers import Gemma3ForCausalLM

    from rs_ltxv.ltx.loading import load_prompt_encoder
    from rs_ltxv.ltx.tiny import TINY_GEMMA_DIM, write_tiny_checkpoint

    ltx = write_tiny_checkpoint(tmp_path / "ltx.safetensors", dtype=torch.float32)
    hf = G.tiny_hf_gemma_for_gguf(seed=43, hidden_size=TINY_GEMMA_DIM, num_hidden_layers=2, num_attention_heads=2,
                                  num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16, sliding_window=5,
                                  rope_scaling=None)
    path = write_gemma_gguf(tmp_path / "gemma.gguf", hf, Q.Q8_0)
    encoder = load_prompt_encoder(path, ltx, dtype=torch.float32)
    assert isinstance(encoder.gemma.layers[0].mlp.down_proj, GGUFLinear)
    assert isinstance(encoder.gemma.layers[0].mlp.up_proj, nn.Linear)  # rows of 24: not quantisable, F32

    folder = tmp_path / "hf"
    lm = Gemma3ForCausalLM(hf.config)
    lm.model.load_state_dict(stored_weights(hf, Q.Q8_0))
    lm.save_pretrained(str(folder))
    (folder / "tokenizer.model").write_bytes(G.train_tiny_sentencepiece())
    reference = load_prompt_encoder(folder, ltx, dtype=torch.float32)
    for prompt in TEXTS:
        out, ref = encoder.encode(prompt), reference.encode(prompt)
        assert_close(out.video, ref.video, f"video context {prompt!r}")
        assert_close(out.audio, ref.audio, f"audio context {prompt!r}")
        assert torch.equal(out.mask, ref.mask)


# ------------------------------------------------------------------------------------ the real Gemma-3 270M file

REAL_NAME = "gemma-3-270m-q4_k_m.gguf"
REAL_CANDIDATES = [os.environ.get("RS_LTXV_GEMMA_GGUF", ""), f"/work/cache/gguf/{REAL_NAME}",
                   f"/work/cache/gemma270m/{REAL_NAME}"]
# public Gemma-3 ids (shared/reference/ltx_reference.md §8), BOS included
PUBLIC_IDS = [("Hello world, žal mi je", [2, 9259, 1902, 236764, 143296, 3628, 2185]),
              ("a  b", [2, 236746, 138, 236763]),
              ("line1\nline2", [2, 1257, 236770, 107, 1257, 236778]),
              ("tab\there", [2, 4823, 255968, 8472])]


@pytest.mark.slow
def test_real_gemma3_270m_from_gguf_alone():
    path = next((Path(p) for p in REAL_CANDIDATES if p and Path(p).is_file()), None)
    if path is None:
        pytest.skip(f"{REAL_NAME} not found (set RS_LTXV_GEMMA_GGUF)")
    from rs_ltxv.gguf_loader import GGUFFile, gemma3_state

    torch.set_num_threads(max(2, torch.get_num_threads()))
    model = load_gemma(path, dtype=torch.float32)
    tokenizer = load_gemma_tokenizer(path)
    for text, ids in PUBLIC_IDS:
        assert tokenizer.encode(text) == ids, text
    assert tokenizer.vocab_size == 262144
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim,
            cfg.query_pre_attn_scalar, cfg.sliding_window, cfg.rms_norm_eps) == (640, 18, 4, 1, 256, 256, 512, 1e-6)
    assert [i for i, t in enumerate(cfg.layer_types) if t == "full_attention"] == [5, 11, 17]
    assert (cfg.rope_local.theta, cfg.rope_global.theta, cfg.rope_global.factor) == (10_000.0, 1_000_000.0, 1.0)
    assert sum(isinstance(m, GGUFLinear) for m in model.modules()) == 7 * 18

    reference = G.hf_gemma_from_state(cfg.to_hf_dict(), gemma3_state(GGUFFile(path)), attn="eager")
    batch = tokenizer(["A golden retriever runs along a beach at sunset, waves rolling in.", "a  b"], pad_to=0)
    keep = batch.mask.bool()
    with torch.no_grad():
        ours = model(batch.ids, batch.mask)
        ref = reference(batch.ids, attention_mask=batch.mask, output_hidden_states=True).hidden_states
    assert len(ours) == len(ref) == 19
    worst = 0.0
    for i, (o, r) in enumerate(zip(ours, ref, strict=True)):
        rel = ((o[keep] - r[keep]).abs().max() / r[keep].abs().max()).item()
        assert rel <= 1e-4, f"hidden state {i}: relative error {rel:.2e}"
        worst = max(worst, rel)
    print(f"real 270M GGUF: worst relative hidden-state error vs transformers {worst:.2e}")
