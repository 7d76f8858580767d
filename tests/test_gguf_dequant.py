"""GGUF reader and torch dequantisation against the gguf package's NumPy reference, on files written here with
gguf.GGUFWriter: every supported type bit-exact, metadata round trip, shapes, GGUFLinear, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader
from gguf.quants import dequantize as np_dequantize
from gguf.quants import quantize as np_quantize

from rs_ltxv.gguf_loader import SUPPORTED, GGUFError, GGUFFile, GGUFLinear, UnsupportedQuantError, dequantize

from reference.builders import SCALE_FIELDS, random_blocks, write_gguf

NUMPY_QUANTIZABLE = (Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1)
SHAPE = (3, 2, 512)  # torch order; 3-D so the reversed GGUF dims are exercised


@pytest.fixture(scope="module")
def all_types(tmp_path_factory):
    """One file with a tensor of every supported type: quantised from floats where gguf can, random blocks for
    every block type (K- and IQ-quants included)."""
    rng = np.random.default_rng(0)
    values = rng.standard_normal(SHAPE).astype(np.float32)
    tensors = {"f32": (values, Q.F32), "f16": (values.astype(np.float16), Q.F16)}
    for qtype in NUMPY_QUANTIZABLE:
        tensors[f"quantized.{qtype.name}"] = (np_quantize(values, qtype), qtype)
    for i, qtype in enumerate(SCALE_FIELDS):
        tensors[f"random.{qtype.name}"] = (random_blocks(qtype, SHAPE, seed=i + 1), qtype)
    path = write_gguf(tmp_path_factory.mktemp("gguf") / "all.gguf", tensors)
    return GGUFFile(path), GGUFReader(path), values


def test_every_listed_type_is_supported():
    listed = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
              "IQ4_NL", "IQ4_XS"}
    assert {t.name for t in SUPPORTED} == listed


def test_dequantisation_equals_numpy_reference(all_types):
    file, reader, values = all_types
    seen = set()
    for t in reader.tensors:
        ours = file.tensor(t.name, torch.float32)
        ref = np_dequantize(t.data, t.tensor_type) if t.tensor_type not in (Q.F32, Q.F16) else t.data
        assert tuple(ours.shape) == SHAPE == ref.shape, t.name
        assert np.array_equal(ours.numpy(), ref.astype(np.float32)), f"{t.name}: not bit-identical"
        # the blocks carry real values
        assert np.isfinite(ref).all(), t.name
        assert np.abs(ref).max() > 0, t.name
        seen.add(t.tensor_type)
        if t.name.startswith("quantized."):  # sanity: the round trip is close to the input
            assert np.abs(ref - values).max() < 0.5 * np.abs(values).max()
    assert seen == set(SUPPORTED)


def test_dequantise_into_dtype_and_stored_dtype(all_types):
    file, _, _ = all_types
    assert file.tensor("f16").dtype == torch.float16
    assert file.tensor("quantized.BF16").dtype == torch.bfloat16
    assert file.tensor("random.Q6_K").dtype == torch.float32
    q = file.tensor("random.Q4_K", torch.bfloat16)
    assert torch.equal(q, file.tensor("random.Q4_K").to(torch.bfloat16))
    raw = file.raw("random.Q5_K")
    assert raw.dtype == torch.uint8
    assert raw.shape == (3, 2, 512 // 256 * 176)
    assert torch.equal(dequantize(raw, Q.Q5_K, SHAPE), file.tensor("random.Q5_K"))


@pytest.mark.cuda
def test_dequantisation_runs_on_the_weights_device(all_types):
    file, _, _ = all_types
    for name in ("random.Q4_K", "random.IQ4_XS", "quantized.Q8_0"):
        on_gpu = file.tensor(name, torch.float32, "cuda")
        assert on_gpu.is_cuda
        assert torch.equal(on_gpu.cpu(), file.tensor(name))


def test_metadata_round_trip(tmp_path):
    config = {"transformer": {"num_layers": 48}}
    meta = [("config", "add_string", json.dumps(config)), ("model_version", "add_string", "2.3.0"),
            ("rs.count", "add_uint32", 7), ("rs.scale", "add_float32", 0.5), ("rs.flag", "add_bool", True),
            ("rs.names", "add_array", ["a", "bc"]), ("rs.dims", "add_array", [1, 2, 3]),
            ("comfy.gguf.orig_shape.pos", "add_array", [1, 64])]
    path = write_gguf(tmp_path / "m.gguf", {"pos": (np.arange(64, dtype=np.float32), Q.F32),
                                            "w": (np.zeros((5, 32), np.float32), Q.F32)}, meta=meta)
    f = GGUFFile(path)
    assert f.architecture == "ltxv"
    assert f.config() == config
    assert f.version == 3
    md = f.metadata
    assert (md["model_version"], md["rs.count"], md["rs.flag"], md["rs.names"], md["rs.dims"]) == (
        "2.3.0", 7, True, ["a", "bc"], [1, 2, 3])
    assert md["rs.scale"] == pytest.approx(0.5)
    assert md["general.architecture"] == "ltxv"
    assert f.tensors["w"].shape == (5, 32)  # GGUF stores [32, 5]
    # ComfyUI's orig_shape
    assert f.tensors["pos"].shape == (1, 64)
    assert f.tensor("pos").shape == (1, 64)
    assert torch.equal(f.tensor("pos").flatten(), torch.arange(64, dtype=torch.float32))
    assert f.type_counts() == {"F32": 2}


def test_errors(tmp_path):
    iq2 = np.random.default_rng(0).integers(0, 255, (4, 66), dtype=np.uint8)
    path = write_gguf(tmp_path / "iq2.gguf", {"w": (iq2, Q.IQ2_XXS)}, arch="gemma3")
    f = GGUFFile(path)  # readable: info works on any type
    assert f.tensors["w"].type_name == "IQ2_XXS"
    assert f.tensors["w"].shape == (4, 256)
    with pytest.raises(UnsupportedQuantError, match="IQ2_XXS, which RS-LTXV cannot dequantise"):
        f.tensor("w")
    with pytest.raises(UnsupportedQuantError, match="IQ2_XXS"):
        GGUFLinear(256, 4, Q.IQ2_XXS)
    with pytest.raises(GGUFError, match="architecture 'gemma3', not an LTX"):
        f.require_architecture("ltxv", what="an LTX-2 transformer")
    data = path.read_bytes()
    (tmp_path / "cut.gguf").write_bytes(data[:-100])
    with pytest.raises(GGUFError, match="truncated"):
        GGUFFile(tmp_path / "cut.gguf")
    (tmp_path / "head.gguf").write_bytes(data[:40])
    with pytest.raises(GGUFError, match="truncated"):
        GGUFFile(tmp_path / "head.gguf")
    (tmp_path / "st.gguf").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(GGUFError, match="not a GGUF file"):
        GGUFFile(tmp_path / "st.gguf")
    with pytest.raises(GGUFError, match="not found"):
        GGUFFile(tmp_path / "missing.gguf")


@pytest.mark.parametrize("qtype", [Q.Q8_0, Q.Q4_K, Q.BF16])
def test_gguf_linear(qtype):
    gen = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(8, 256, generator=gen), torch.randn(8, generator=gen)
    raw = np_quantize(weight.numpy(), qtype) if qtype is not Q.Q4_K else random_blocks(Q.Q4_K, (8, 256), seed=5)
    layer = GGUFLinear(256, 8, qtype)
    layer.qweight = torch.from_numpy(raw)
    layer.bias = torch.nn.Parameter(bias, requires_grad=False)
    w = torch.from_numpy(np_dequantize(raw, qtype))
    x = torch.randn(2, 3, 256, generator=gen)
    assert torch.equal(layer(x), torch.nn.functional.linear(x, w, bias))
    xb = x.to(torch.bfloat16)
    out = layer(xb)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, torch.nn.functional.linear(xb, w.to(torch.bfloat16), bias.to(torch.bfloat16)))
    low_rank = torch.randn(8, 2, generator=gen) @ torch.randn(2, 256, generator=gen)
    layer.patches = [low_rank, lambda base: 0.1 * base]  # a tensor delta and a callable of the dequantised weight
    patched = w + low_rank + 0.1 * w
    torch.testing.assert_close(layer(x), torch.nn.functional.linear(x, patched, bias), rtol=1e-6, atol=1e-5)
    assert torch.equal(layer.dequantized_weight(patched=False), w)
    assert layer.qweight.dtype == torch.uint8  # the stored weight was never replaced


def test_name_maps():
    from rs_ltxv.gguf_loader import gemma3_hf_name, ltx_key

    assert ltx_key("diffusion_model.proj_out.weight") == "model.diffusion_model.proj_out.weight"
    assert ltx_key("model.diffusion_model.proj_out.weight") == "model.diffusion_model.proj_out.weight"
    assert ltx_key("transformer_blocks.0.attn1.to_q.weight") == "transformer_blocks.0.attn1.to_q.weight"
    projection = "text_embedding_projection.aggregate_embed.weight"
    assert ltx_key(projection) == projection
    expected = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
                "blk.7.attn_q.weight": "model.layers.7.self_attn.q_proj.weight",
                "blk.7.attn_output.weight": "model.layers.7.self_attn.o_proj.weight",
                "blk.7.attn_k_norm.weight": "model.layers.7.self_attn.k_norm.weight",
                "blk.7.attn_norm.weight": "model.layers.7.input_layernorm.weight",
                "blk.7.post_attention_norm.weight": "model.layers.7.post_attention_layernorm.weight",
                "blk.7.ffn_norm.weight": "model.layers.7.pre_feedforward_layernorm.weight",
                "blk.7.post_ffw_norm.weight": "model.layers.7.post_feedforward_layernorm.weight",
                "blk.7.ffn_down.weight": "model.layers.7.mlp.down_proj.weight"}
    assert {k: gemma3_hf_name(k) for k in expected} == expected
    with pytest.raises(GGUFError, match="not a Gemma-3 tensor name"):
        gemma3_hf_name("blk.0.ssm_conv.weight")
