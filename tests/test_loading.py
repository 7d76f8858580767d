"""Checkpoint loading: official single files, transformer-only files (with/without prefix and metadata), dtypes,
and every error path a user can hit."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file, save_file

from rs_ltxv.ltx.config import Version
from rs_ltxv.ltx.errors import CheckpointError
from rs_ltxv.ltx.loading import load_text_connectors, load_transformer, open_checkpoint
from rs_ltxv.ltx.transformer import StreamInput

from conftest import assert_close
from reference import ltx_core_ref as R
from reference.builders import realistic_init


def _run(model, ref, seed=0):
    video = R.random_modality(ref, "video", batch=1, tokens_or_grid=(2, 2, 3), text_len=16, sigma=0.6, seed=seed)
    audio = R.random_modality(ref, "audio", batch=1, tokens_or_grid=7, text_len=16, sigma=0.6, seed=seed + 1)
    with torch.no_grad():
        return model(StreamInput(**video), StreamInput(**audio))


def test_official_file_metadata_and_version(pair):
    assert pair.checkpoint.config_source == "metadata"
    assert pair.checkpoint.version is Version(pair.variant)
    assert pair.checkpoint.model_version is not None
    expected = pair.ref.config["transformer"]
    assert pair.checkpoint.config.num_layers == expected["num_layers"]
    assert pair.checkpoint.config.cross_attention_adaln == (pair.variant == "2.3")


@pytest.mark.parametrize("prefix", ["model.diffusion_model.", ""], ids=["prefixed", "bare"])
def test_transformer_only_file_without_metadata(pair, tmp_path, prefix):
    path = tmp_path / "split.safetensors"
    R.write_transformer_only(pair.ref, path, prefix=prefix, with_metadata=False)
    if pair.variant == "2.0":  # head counts of un-gated layouts are not visible in shapes
        with pytest.raises(CheckpointError, match="Cannot infer"):
            open_checkpoint(path)
        return
    ckpt = open_checkpoint(path)
    assert ckpt.config_source == "inferred"
    # caption_channels (the Gemma width) is not used by the LTX-2.3 transformer, so shapes cannot tell it
    assert replace(ckpt.config, caption_channels=24) == pair.checkpoint.config
    model = load_transformer(ckpt, dtype=torch.float32)
    for a, b in zip(_run(model, pair.ref), _run(pair.model, pair.ref), strict=True):
        # same weights; only memory alignment differs, which can change BLAS rounding in the last bit
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_ltx2_layout_inferred_with_real_head_widths(tmp_path):
    """LTX-2 (un-gated) files without metadata: heads come from the released head widths (128 video, 64 audio)."""
    cfg = R.tiny_config("2.0", video_heads=1, video_head_dim=128, audio_heads=1, audio_head_dim=64,
                        caption_channels=128, connector_heads=1)
    ref = R.build_reference("2.0", cfg=cfg, seed=3)
    realistic_init(ref.transformer, 4)
    R.write_checkpoint(ref, tmp_path / "with_meta.safetensors")
    R.write_transformer_only(ref, tmp_path / "bare.safetensors", prefix="", with_metadata=False)
    inferred = open_checkpoint(tmp_path / "bare.safetensors")
    assert inferred.config_source == "inferred"
    assert inferred.config == open_checkpoint(tmp_path / "with_meta.safetensors").config
    ours = load_transformer(inferred, dtype=torch.float32)
    rv, ra = R.run_transformer(ref, **_ref_inputs(ref))
    with torch.no_grad():
        ov, oa = ours(*(StreamInput(**d) for d in _ref_inputs(ref).values()))
    assert_close(ov, rv, "inferred 2.0 video")
    assert_close(oa, ra, "inferred 2.0 audio")


def _ref_inputs(ref):
    return {
        "video": R.random_modality(ref, "video", batch=1, tokens_or_grid=(2, 1, 2), text_len=16, sigma=0.5),
        "audio": R.random_modality(ref, "audio", batch=1, tokens_or_grid=5, text_len=16, sigma=0.5, seed=1),
    }


def test_load_in_bfloat16(pair):
    model = load_transformer(pair.checkpoint, dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert not any(p.requires_grad for p in model.parameters())
    text = load_text_connectors(pair.checkpoint, dtype=torch.bfloat16)
    assert {p.dtype for p in text.parameters()} == {torch.bfloat16}


def test_parameters_are_not_meta_and_match_file(pair):
    sd = load_file(str(pair.path))
    for name, p in pair.model.state_dict().items():
        assert p.device.type == "cpu"
        assert torch.equal(p, sd["model.diffusion_model." + name])


# ---- error paths ---------------------------------------------------------------------------------------------
def _rewrite(src, dst, *, drop=(), add=None, metadata=None):
    sd = load_file(str(src))
    for k in drop:
        sd.pop(k)
    sd.update(add or {})
    meta = metadata
    if meta is None:
        with open(src, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            meta = json.loads(fh.read(n)).get("__metadata__", {})
    save_file(sd, str(dst), metadata=meta)
    return dst


def test_truncated_file(pair, tmp_path):
    path = tmp_path / "cut.safetensors"
    shutil.copy(pair.path, path)
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size - 1000)
    with pytest.raises(CheckpointError, match="truncated"):
        open_checkpoint(path)


@pytest.mark.parametrize("content, match", [(b"abc", "too small"), (b"\xff" * 64, "not a readable"),
                                            (b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}xxxxxx", "corrupt")])
def test_not_a_safetensors_file(tmp_path, content, match):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        open_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        open_checkpoint(tmp_path / "nope.safetensors")


def test_gguf_is_routed_elsewhere(tmp_path):
    with pytest.raises(CheckpointError, match="GGUF"):
        open_checkpoint(tmp_path / "model.gguf")


@pytest.mark.parametrize("keys, match", [
    (["double_blocks.0.img_attn.qkv.weight"], "Flux"),
    (["model.diffusion_model.input_blocks.0.0.weight"], "Stable Diffusion"),
    (["model.diffusion_model.patchify_proj.weight", "model.diffusion_model.transformer_blocks.0.attn1.to_q.weight"],
     "LTX-Video"),
    (["foo.weight"], "not an LTX-2"),
])
def test_foreign_files(tmp_path, keys, match):
    path = tmp_path / "other.safetensors"
    save_file({k: torch.zeros(2, 2) for k in keys}, str(path))
    with pytest.raises(CheckpointError, match=match):
        open_checkpoint(path)


def test_missing_tensor(pair, tmp_path):
    key = "model.diffusion_model.transformer_blocks.1.ff.net.2.bias"
    path = _rewrite(pair.path, tmp_path / "m.safetensors", drop=[key])
    with pytest.raises(CheckpointError, match=r"missing 1 tensor\(s\): transformer_blocks.1.ff.net.2.bias"):
        load_transformer(path)


def test_unexpected_tensor(pair, tmp_path):
    path = _rewrite(pair.path, tmp_path / "u.safetensors",
                    add={"model.diffusion_model.transformer_blocks.0.extra.weight": torch.zeros(3)})
    with pytest.raises(CheckpointError, match="unexpected 1 tensor"):
        load_transformer(path)


def test_scale_beside_a_float_weight_is_named(pair, tmp_path):
    """FP8 files load (tests/test_quant_loading.py); a scale beside a weight stored in float is a damaged file."""
    path = _rewrite(pair.path, tmp_path / "f.safetensors",
                    add={"model.diffusion_model.transformer_blocks.0.attn1.to_q.weight_scale": torch.ones(())})
    with pytest.raises(CheckpointError, match=r"to_q has a quantisation scale but its weight is stored as F32"):
        load_transformer(path)


def test_config_that_does_not_describe_the_file(pair, tmp_path):
    cfg = json.loads(json.dumps(pair.ref.config))
    cfg["transformer"]["num_layers"] = 3
    path = _rewrite(pair.path, tmp_path / "c.safetensors", metadata={"config": json.dumps(cfg)})
    with pytest.raises(CheckpointError, match="missing"):
        load_transformer(path)
    cfg["transformer"]["num_layers"] = 2
    cfg["transformer"]["attention_head_dim"] = 8
    cfg["transformer"]["cross_attention_dim"] = 16
    path = _rewrite(pair.path, tmp_path / "c2.safetensors", metadata={"config": json.dumps(cfg)})
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_transformer(path)


def test_unsupported_config_value(pair, tmp_path):
    cfg = json.loads(json.dumps(pair.ref.config))
    cfg["transformer"]["qk_norm"] = "layer_norm"
    path = _rewrite(pair.path, tmp_path / "q.safetensors", metadata={"config": json.dumps(cfg)})
    with pytest.raises(CheckpointError, match="qk_norm"):
        open_checkpoint(path)


def test_config_version_disagrees_with_tensors(pair, tmp_path):
    other = "2.0" if pair.variant == "2.3" else "2.3"
    cfg = {"transformer": R.tiny_config(other)["transformer"]}
    path = _rewrite(pair.path, tmp_path / "v.safetensors", metadata={"config": json.dumps(cfg)})
    with pytest.raises(CheckpointError, match="tensors are LTX"):
        open_checkpoint(path)


def test_text_connectors_need_the_projection(pair, tmp_path):
    path = tmp_path / "t.safetensors"
    R.write_transformer_only(pair.ref, path, with_metadata=True)
    with pytest.raises(CheckpointError, match="text_projection"):
        load_text_connectors(path)
