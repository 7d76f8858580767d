"""Loading Gemma-3 from Hugging Face folders (sharded, every name layout), ComfyUI single files (float8 with scales,
embedded tokenizer), any state dict (``build_gemma``), and the errors for what we cannot read."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from rs_ltxv.ltx.errors import CheckpointError, ConfigError
from rs_ltxv.ltx.loading.gemma import build_gemma, infer_gemma_config, load_gemma, load_gemma_tokenizer
from rs_ltxv.ltx.text.gemma_config import GEMMA3_12B, GemmaConfig

from conftest import assert_close
from reference import gemma_ref as G


@pytest.fixture(scope="module")
def hf():
    return G.tiny_hf_gemma(seed=21)


@pytest.fixture(scope="module")
def inputs(hf):
    g = torch.Generator().manual_seed(22)
    ids = torch.randint(4, hf.config.vocab_size, (2, 10), generator=g)
    mask = torch.ones(2, 10, dtype=torch.int64)
    mask[1, :4] = 0
    return ids, mask


def check_equal(model, hf_model, inputs, what):
    ids, mask = inputs
    ref = G.run_hf(hf_model, ids, mask)
    with torch.no_grad():
        out = model(ids, mask)
    keep = mask.bool()
    for i, (o, r) in enumerate(zip(out, ref, strict=True)):
        assert_close(o[keep], r[keep], f"{what} state {i}")


def test_hf_folder_sharded(hf, inputs, tmp_path):
    from transformers import Gemma3ForCausalLM

    lm = Gemma3ForCausalLM(hf.config)
    lm.model.load_state_dict(hf.state_dict())
    lm.save_pretrained(str(tmp_path), max_shard_size="20KB")
    shards = list(tmp_path.glob("model-*.safetensors"))
    assert len(shards) > 1
    assert (tmp_path / "model.safetensors.index.json").is_file()
    model = load_gemma(tmp_path, dtype=torch.float32)
    assert model.config == GemmaConfig.from_hf_dict(hf.config.to_dict())
    check_equal(model, hf, inputs, "HF folder")


@pytest.mark.parametrize("prefix", ["language_model.model.", "model.language_model.", ""])
def test_multimodal_and_bare_names(hf, inputs, tmp_path, prefix):
    state = {prefix + k: v.clone() for k, v in hf.state_dict().items()}
    state["vision_tower.vision_model.post_layernorm.weight"] = torch.ones(3)  # ignored: no vision tower
    state["multi_modal_projector.mm_soft_emb_norm.weight"] = torch.ones(3)
    half = len(state) // 2
    names = sorted(state)
    save_file({k: state[k] for k in names[:half]}, str(tmp_path / "a.safetensors"))
    save_file({k: state[k] for k in names[half:]}, str(tmp_path / "b.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gemma3", "text_config": hf.config.to_dict()}))
    check_equal(load_gemma(tmp_path, dtype=torch.float32), hf, inputs, prefix or "bare")


@pytest.mark.parametrize("fp8", [None, "comfy_quant", "scaled_fp8"])
def test_comfyui_single_file(hf, inputs, tmp_path, fp8):
    spiece = G.train_tiny_sentencepiece()
    path = tmp_path / "gemma_3_tiny_it.safetensors"
    effective = G.write_comfy_file(hf.state_dict(), path, spiece=spiece, fp8=fp8)
    config = GemmaConfig.from_hf_dict(hf.config.to_dict())
    model = load_gemma(path, dtype=torch.float32, config=config)
    if fp8:
        assert model.layers[0].self_attn.q_proj.weight.dtype == torch.float32
        reference = G.tiny_hf_gemma(seed=21)
        reference.load_state_dict(effective)  # the weights the file stands for, dequantised independently
        assert not torch.equal(reference.layers[0].mlp.up_proj.weight, hf.layers[0].mlp.up_proj.weight)
    else:
        reference = hf
    check_equal(model, reference, inputs, f"ComfyUI {fp8}")
    assert load_gemma_tokenizer(path).encode("a cat") == G.tiny_tokenizer_ids("a cat")


def test_bf16_load(hf, inputs, tmp_path):
    path = tmp_path / "g.safetensors"
    G.write_comfy_file(hf.state_dict(), path, spiece=None, fp8="comfy_quant")
    model = load_gemma(path, dtype=torch.bfloat16, config=GemmaConfig.from_hf_dict(hf.config.to_dict()))
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    ids, mask = inputs
    with torch.no_grad():
        out = model(ids, mask)[-1].float()
        ref = load_gemma(path, dtype=torch.float32, config=model.config)(ids, mask)[-1]
    assert (out - ref)[mask.bool()].abs().max() <= 0.05 * max(1.0, ref.abs().max().item())


def test_config_inferred_for_known_sizes():
    with torch.device("meta"):
        from rs_ltxv.ltx.text.gemma import GemmaTextModel

        state = GemmaTextModel(GEMMA3_12B).state_dict()
    assert infer_gemma_config(state) == GEMMA3_12B
    tiny = G.tiny_hf_gemma(seed=1).state_dict()
    with pytest.raises(ConfigError, match=r"config\.json"):
        infer_gemma_config(tiny)


def test_build_from_any_state_dict(hf, inputs):
    config = GemmaConfig.from_hf_dict(hf.config.to_dict())
    state = {k: v.to(torch.bfloat16) for k, v in hf.state_dict().items()}  # e.g. from a GGUF dequantiser
    model = build_gemma(config, state, dtype=torch.float32)
    assert model.embed_tokens.weight.dtype == torch.float32
    state.pop("layers.3.mlp.up_proj.weight")
    with pytest.raises(CheckpointError, match="missing 1"):
        build_gemma(config, state)
    wrong = dict(hf.state_dict())
    wrong["norm.weight"] = torch.zeros(5)
    with pytest.raises(CheckpointError, match="wrong shape"):
        build_gemma(config, wrong)


def test_unreadable_formats_are_named(hf, tmp_path):
    gguf = tmp_path / "gemma.gguf"  # GGUF Gemmas load (tests/test_gemma_gguf_loading.py); broken ones are named
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(CheckpointError, match=r"gemma\.gguf .*(truncated|corrupt)"):
        load_gemma(gguf)
    from rs_ltxv.gguf_loader.writer import write_gguf

    ltx_gguf = write_gguf(tmp_path / "ltx.gguf", {"transformer_blocks.0.attn1.to_q.weight": torch.zeros(32, 32)})
    with pytest.raises(CheckpointError, match="architecture 'ltxv', not a Gemma-3 text encoder"):
        load_gemma(ltx_gguf)
    pt = tmp_path / "gemma.bin"
    pt.write_bytes(b"\0" * 64)
    with pytest.raises(CheckpointError, match="unsupported text-encoder format"):
        load_gemma(pt)
    ltx = tmp_path / "ltx.safetensors"
    save_file({"model.diffusion_model.proj_in.weight": torch.zeros(2, 2)}, str(ltx))
    with pytest.raises(CheckpointError, match="LTX video model"):
        load_gemma(ltx)
    other = tmp_path / "clip.safetensors"
    save_file({"text_model.encoder.layers.0.mlp.fc1.weight": torch.zeros(2, 2)}, str(other))
    with pytest.raises(CheckpointError, match="text_model"):
        load_gemma(other)
    nvfp4 = tmp_path / "gemma_fp4.safetensors"
    G.write_comfy_file(hf.state_dict(), nvfp4, spiece=None, fp8="comfy_quant")
    from safetensors.torch import load_file

    state = load_file(str(nvfp4))
    state["model.layers.0.mlp.up_proj.comfy_quant"] = torch.tensor(list(b'{"format": "nvfp4"}'), dtype=torch.uint8)
    save_file(state, str(nvfp4))
    with pytest.raises(CheckpointError, match="nvfp4"):
        load_gemma(nvfp4, config=GemmaConfig.from_hf_dict(hf.config.to_dict()))
    with pytest.raises(CheckpointError, match="not found"):
        load_gemma(tmp_path / "absent.safetensors")
    truncated = tmp_path / "trunc.safetensors"
    truncated.write_bytes((tmp_path / "clip.safetensors").read_bytes()[:-4])
    with pytest.raises(CheckpointError, match="truncated"):
        load_gemma(truncated)
    folder = tmp_path / "shards"
    folder.mkdir()
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "model-1.safetensors"}}))
    with pytest.raises(CheckpointError, match="missing"):
        load_gemma(folder)
