"""GGUF LTX-2 checkpoints through the normal loader: the tiny reference models (both layouts) written with
gguf.GGUFWriter as Q8_0 and BF16, with/without prefix and config metadata, plus every error a user can hit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize, quantize
from safetensors.torch import load_file, save_file

from rs_ltxv.__main__ import main
from rs_ltxv.gguf_loader import GGUFLinear
from rs_ltxv.gguf_loader.writer import write_gguf
from rs_ltxv.ltx.errors import CheckpointError
from rs_ltxv.ltx.loading import load_text_connectors, load_transformer, open_checkpoint
from rs_ltxv.ltx.transformer import StreamInput

from conftest import assert_close
from reference import ltx_core_ref as R

DIFF = "model.diffusion_model."


def _inputs(pair, dtype=torch.float32):
    video = R.random_modality(pair.ref, "video", batch=2, tokens_or_grid=(2, 2, 3), text_len=16, sigma=[0.7, 0.3])
    audio = R.random_modality(pair.ref, "audio", batch=2, tokens_or_grid=7, text_len=16, sigma=[0.6, 0.2], seed=1)
    cast = {k: (v.to(dtype) if k in ("latent", "context") else v) for k, v in video.items()}
    cast_a = {k: (v.to(dtype) if k in ("latent", "context") else v) for k, v in audio.items()}
    return StreamInput(**cast), StreamInput(**cast_a)


def _run(model, pair, dtype=torch.float32):
    with torch.no_grad():
        return model(*_inputs(pair, dtype))


def _q8_for_linears(name: str, t: torch.Tensor) -> Q:
    """What converters do: quantise 2-D Linear weights whose rows fit the 32-value blocks, keep the rest F32."""
    return Q.Q8_0 if name.endswith(".weight") and t.ndim == 2 and t.shape[1] % 32 == 0 else Q.F32


def _write(pair, path, qtype, *, prefix=DIFF, metadata=True, keys=None):
    sd = load_file(str(pair.path))
    sd = {(prefix + k[len(DIFF):] if k.startswith(DIFF) else k): v for k, v in sd.items()}
    if keys is not None:
        sd = {k: v for k, v in sd.items() if keys(k)}
    meta = {"config": json.dumps(pair.ref.config), "model_version": f"{pair.variant}.0"} if metadata else {}
    return write_gguf(path, sd, qtype, metadata=meta)


def _rel(a, b):
    return ((a - b).float().norm() / b.float().norm()).item()


@pytest.mark.parametrize("prefix", [DIFF, ""], ids=["prefixed", "bare"])
def test_q8_0_gguf_matches_float32_within_quantisation_error(pair, tmp_path, prefix):
    path = _write(pair, tmp_path / "q8.gguf", _q8_for_linears, prefix=prefix)
    ckpt = open_checkpoint(path)
    assert ckpt.config_source == "metadata"
    assert ckpt.config == pair.checkpoint.config
    model = load_transformer(ckpt, dtype=torch.float32)
    quantised = [m for m in model.modules() if isinstance(m, GGUFLinear)]
    n_q8 = sum(1 for k, t in load_file(str(pair.path)).items()
               if k.startswith(DIFF) and "embeddings_connector" not in k and _q8_for_linears(k, t) is Q.Q8_0)
    assert len(quantised) == n_q8 > 20
    assert all(m.qtype is Q.Q8_0 for m in quantised)
    assert all(m.qweight.dtype == torch.uint8 for m in quantised)
    # 1) exactly the float model carrying gguf's own NumPy dequantisation of the same Q8_0 bytes (float rounding)
    sd = load_file(str(pair.path))
    oracle = {k: (torch.from_numpy(dequantize(quantize(v.numpy(), Q.Q8_0), Q.Q8_0).copy())
                  if _q8_for_linears(k, v) is Q.Q8_0 else v) for k, v in sd.items()}
    save_file(oracle, str(tmp_path / "oracle.safetensors"), metadata={"config": json.dumps(pair.ref.config)})
    reference = load_transformer(tmp_path / "oracle.safetensors", dtype=torch.float32)
    ours = _run(model, pair)
    for a, b, what in zip(ours, _run(reference, pair), ("video", "audio"), strict=True):
        assert_close(a, b, f"{pair.variant} Q8_0 vs numpy-dequantised {what}")
    # 2) the quantisation error against float32: measured relative L2 3.5e-3…8.8e-3, max|Δ|/max|ref| 3.3e-3…9.3e-3
    # (both layouts, benchmarks/gguf_memory.py prints the same figures); bound 3e-2 = ~3× the worst measured
    for a, b in zip(ours, _run(pair.model, pair), strict=True):
        rel, worst = _rel(a, b), (a - b).abs().max().item() / b.abs().max().item()
        assert 1e-4 < rel < 3e-2, rel  # > 1e-4: the weights really are quantised
        assert worst < 3e-2, worst


def test_bf16_gguf_equals_bf16_safetensors(pair, tmp_path):
    sd = {k: v.to(torch.bfloat16) for k, v in load_file(str(pair.path)).items()}
    st = tmp_path / "bf16.safetensors"
    save_file(sd, str(st), metadata={"config": json.dumps(pair.ref.config)})
    gg = write_gguf(tmp_path / "bf16.gguf", sd, Q.BF16, metadata={"config": json.dumps(pair.ref.config)})
    for dtype in (torch.bfloat16, torch.float32):
        plain = load_transformer(st, dtype=dtype)
        quant = load_transformer(gg, dtype=dtype)
        assert sum(isinstance(m, GGUFLinear) for m in quant.modules()) > 40
        for a, b in zip(_run(quant, pair, dtype), _run(plain, pair, dtype), strict=True):
            assert a.dtype == dtype
            assert torch.equal(a, b)
    text_plain = load_text_connectors(st, dtype=torch.bfloat16)
    text_quant = load_text_connectors(gg, dtype=torch.bfloat16)
    assert any(isinstance(m, GGUFLinear) for m in text_quant.modules())
    states = [torch.randn(1, 8, 24).to(torch.bfloat16) for _ in range(pair.ref.num_gemma_states)]
    mask = torch.ones(1, 8, dtype=torch.int64)
    with torch.no_grad():
        a, b = text_quant(states, mask), text_plain(states, mask)
    assert torch.equal(a.video, b.video)
    assert torch.equal(a.audio, b.audio)


def test_gguf_without_metadata_infers_config(pair, tmp_path):
    path = _write(pair, tmp_path / "bare.gguf", _q8_for_linears, prefix="", metadata=False,
                  keys=lambda k: not k.startswith("text_embedding_projection."))
    if pair.variant == "2.0":  # un-gated heads are invisible in shapes, as for safetensors
        with pytest.raises(CheckpointError, match="Cannot infer"):
            open_checkpoint(path)
        return
    ckpt = open_checkpoint(path)
    assert ckpt.config_source == "inferred"
    assert ckpt.config.num_layers == pair.checkpoint.config.num_layers
    model = load_transformer(ckpt, dtype=torch.float32)
    for ours, ref in zip(_run(model, pair), _run(pair.model, pair), strict=True):
        assert _rel(ours, ref) < 1e-2


def test_lora_patch_on_loaded_gguf_model(pair, tmp_path):
    model = load_transformer(_write(pair, tmp_path / "q8.gguf", _q8_for_linears), dtype=torch.float32)
    layer = model.transformer_blocks[0].attn1.to_q
    assert isinstance(layer, GGUFLinear)
    x = torch.randn(3, layer.in_features)
    base = layer(x)
    delta = torch.randn(layer.out_features, 4) @ torch.randn(4, layer.in_features) * 0.01
    layer.patches.append(delta)
    torch.testing.assert_close(layer(x), base + x @ delta.T, rtol=1e-5, atol=1e-5)
    layer.patches.clear()
    assert torch.equal(layer(x), base)


# ------------------------------------------------------------------------------------------------ errors and CLI
def _small_2_3():
    from rs_ltxv.ltx.tiny import tiny_config, tiny_state_dict

    cfg = tiny_config("2.3")
    return cfg, tiny_state_dict(cfg, seed=1)


def test_wrong_architecture(tmp_path):
    _, sd = _small_2_3()
    path = write_gguf(tmp_path / "flux.gguf", sd, Q.F32, arch="flux")
    with pytest.raises(CheckpointError, match=r"architecture 'flux', not an LTX-2"):
        open_checkpoint(path)
    path = write_gguf(tmp_path / "gemma.gguf", {"token_embd.weight": torch.zeros(8, 32)}, Q.F32, arch="gemma3")
    with pytest.raises(CheckpointError, match="architecture 'gemma3'"):
        load_transformer(path)
    with pytest.raises(CheckpointError, match=r"e\.g\. token_embd\.weight\) are not an LTX-2 transformer"):
        load_transformer(path)


def test_ltx_tensors_under_another_tools_architecture_string_load_by_names(tmp_path, capsys):
    """Files from other GGUF tools label LTX weights 'pig' / 'cow' (ComfyUI-GGUF's compatibility mode): they load by
    tensor names, equal to the same file labelled 'ltxv', and `info` says so; a 'pig' file of other tensors and an
    LTX file labelled as another model are still refused."""
    cfg, sd = _small_2_3()
    meta = {"config": json.dumps({"transformer": cfg.to_dict()})}
    pig = write_gguf(tmp_path / "pig.gguf", sd, _q8_for_linears, arch="pig", metadata=meta)
    ltxv = write_gguf(tmp_path / "ltxv.gguf", sd, _q8_for_linears, metadata=meta)
    ckpt = open_checkpoint(pig)
    assert "'pig'" in ckpt.file.note
    assert open_checkpoint(ltxv).file.note is None
    a, b = load_transformer(ckpt), load_transformer(ltxv)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert main(["info", str(pig)]) == 0
    out = capsys.readouterr().out
    assert "loaded by its tensor names" in out
    assert "LTX model:" in out
    with pytest.raises(CheckpointError, match=r"architecture 'flux'.* tensors are an LTX-2 transformer"):
        open_checkpoint(write_gguf(tmp_path / "flux.gguf", sd, Q.F32, arch="flux"))
    other = write_gguf(tmp_path / "pig2.gguf", {"token_embd.weight": torch.zeros(8, 32)}, Q.F32, arch="pig")
    with pytest.raises(CheckpointError, match=r"architecture 'pig'.* are not an LTX-2 transformer"):
        open_checkpoint(other)


def test_unsupported_quant_type_named(tmp_path):
    """MXFP4 is a valid GGML type (the gguf package writes it) that RS-LTXV does not dequantise."""
    cfg, sd = _small_2_3()
    name = DIFF + "transformer_blocks.0.attn1.to_q.weight"  # (32, 32): one MXFP4 block per row
    meta = {"config": json.dumps({"transformer": cfg.to_dict()})}
    path = write_gguf(tmp_path / "mxfp4.gguf", sd, lambda n, t: Q.MXFP4 if n == name else Q.F32, metadata=meta)
    ckpt = open_checkpoint(path)  # opening and `info` work; loading names the type
    assert ckpt.file.tensors[name].dtype == "MXFP4"
    with pytest.raises(CheckpointError, match=r"to_q\.weight is stored as MXFP4, which RS-LTXV cannot dequantise"):
        load_transformer(ckpt)


def test_unknown_type_id(tmp_path):
    """A type id the gguf package does not know at all (a newer llama.cpp): patched into the tensor table."""
    _, sd = _small_2_3()
    name = DIFF + "transformer_blocks.0.attn1.to_q.weight"
    path = tmp_path / "unknown.gguf"
    write_gguf(path, sd, Q.F32)
    data = bytearray(path.read_bytes())
    at = data.index(name.encode()) + len(name) + 4 + 8 * 2  # name, n_dims (u32), 2 dims (u64) → type (u32)
    assert int.from_bytes(data[at:at + 4], "little") == Q.F32
    data[at:at + 4] = (200).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="GGML type this gguf package does not know"):
        open_checkpoint(path)


def test_shape_mismatch(tmp_path):
    cfg, sd = _small_2_3()
    sd[DIFF + "transformer_blocks.1.attn2.to_v.weight"] = torch.zeros(32, 64)
    meta = {"config": json.dumps({"transformer": cfg.to_dict()})}
    path = write_gguf(tmp_path / "shape.gguf", sd, Q.F32, metadata=meta)
    with pytest.raises(CheckpointError, match=r"wrong shape: transformer_blocks\.1\.attn2\.to_v\.weight"):
        load_transformer(path)


def test_truncated_gguf(tmp_path):
    _, sd = _small_2_3()
    write_gguf(tmp_path / "t.gguf", sd, Q.BF16)
    data = (tmp_path / "t.gguf").read_bytes()
    for cut in (len(data) * 2 // 3, 200):  # tensor data cut / header cut
        bad = tmp_path / f"cut{cut}.gguf"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=r"truncated|corrupt"):
            open_checkpoint(bad)

def test_info_error_on_truncated_gguf(tmp_path, capsys):
    _, sd = _small_2_3()
    data = Path(write_gguf(tmp_path / "t.gguf", sd, Q.BF16)).read_bytes()
    (tmp_path / "cut.gguf").write_bytes(data[: len(data) // 2])
    assert main(["info", str(tmp_path / "cut.gguf")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cut.gguf is truncated")
    assert "download it again" in err


def test_info_on_gguf(pair, tmp_path, capsys):
    path = _write(pair, tmp_path / "q8.gguf", _q8_for_linears)
    assert main(["info", path]) == 0
    out = capsys.readouterr().out
    assert "architecture:  ltxv" in out
    assert "Q8_0" in out
    assert "config" in out
    assert main(["info", path, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["architecture"] == "ltxv"
    assert d["tensor_count"] == len(load_file(str(pair.path)))
    assert set(d["types"]) == {"F32", "Q8_0"}
    assert d["ltx"]["version"] == {"2.0": "LTX-2", "2.3": "LTX-2.3"}[pair.variant]
    assert d["ltx"]["components"]["transformer"]["dtypes"]["Q8_0"] > 0
