"""Loading LTX-2.5's diffusion video decoder: the tiny file in the official layout (standalone ``decoder.*`` and
single-file ``vae.decoder.*``), skipped extras, static gates loaded as stored, config inferred without metadata,
the video VAE loader's ``decoder`` choice, and the error paths (truncated, wrong or incomplete files)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from rs_ltxv.ltx.errors import CheckpointError, InputError
from rs_ltxv.ltx.loading.diffusion_decoder import (
    infer_diffusion_decoder,
    is_diffusion_vae_file,
    load_diffusion_decoder,
    open_diffusion_decoder,
)
from rs_ltxv.ltx.loading.video_vae import load_video_decoder, load_video_vae
from rs_ltxv.ltx.random_weights import random_init
from rs_ltxv.ltx.tiny import write_tiny_checkpoint
from rs_ltxv.ltx.video_vae import TilingConfig
from rs_ltxv.ltx.video_vae.diffusion import DiffusionDecoderConfig, DiffusionVideoDecoder, decode_diffusion_tiled
from rs_ltxv.ltx.video_vae.diffusion.tiny import (
    tiny_diffusion_config,
    tiny_diffusion_vae_state,
    write_tiny_diffusion_decoder,
)

from conftest import assert_close

LATENT = 16


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("dvae")
    return {"standalone": write_tiny_diffusion_decoder(root / "ltx-2.5-video-vae-bf16.safetensors", LATENT),
            "single": write_tiny_diffusion_decoder(root / "single.safetensors", LATENT, prefix="vae."), "root": root}


def _expected() -> DiffusionVideoDecoder:
    """The tiny decoder built in memory from the writer's tensors."""
    tensors, _ = tiny_diffusion_vae_state(LATENT)
    decoder = DiffusionVideoDecoder(tiny_diffusion_config(LATENT))
    state = {k[len("decoder."):]: v for k, v in tensors.items() if k.startswith("decoder.")}
    state.update({k: v for k, v in tensors.items() if k.startswith("per_channel_statistics.")})
    decoder.load_state_dict(state, strict=True)
    return decoder.eval()


def _run(decoder, latent=None) -> torch.Tensor:
    latent = torch.randn(1, LATENT, 3, 2, 3, generator=torch.Generator().manual_seed(1)) if latent is None else latent
    with torch.inference_mode():
        return decoder(latent, torch.Generator().manual_seed(2))


def test_official_layout_loads_as_stored(files):
    path = files["standalone"]
    with safe_open(str(path), "pt") as fh:
        keys, meta = set(fh.keys()), json.loads(fh.metadata()["config"])["vae"]
    assert "decoder.det_stages.0.0.attn.qkv.weight" in keys  # fused Q/K/V, as the official file stores it
    assert "decoder.t_embedder.mlp.0.weight" in keys
    assert "per_channel_statistics.mean-of-means" in keys
    assert (meta["_class_name"], meta["decoder"]["_class_name"], meta["model_output_type"]) == (
        "CausalDiffusionVAE", "NADiffusionDecoder", "x0")
    ckpt = open_diffusion_decoder(path)
    assert ckpt.config_source == "metadata"
    assert ckpt.config == tiny_diffusion_config(LATENT)
    assert is_diffusion_vae_file(path)
    ours = load_diffusion_decoder(ckpt)
    assert_close(_run(ours), _run(_expected()), "loaded vs in-memory")


def test_single_file_names_and_other_components(files):
    path = files["root"] / "single_more.safetensors"
    tensors = load_file(str(files["single"]))
    tensors["model.diffusion_model.patchify_proj.weight"] = torch.zeros(4, 16)
    tensors["audio_vae.decoder.conv_in.conv.weight"] = torch.zeros(2, 2, 3, 3)
    tensors["vae.decoder.coarse_head.weight"] = torch.zeros(3, 4)  # bundled preview head: skipped
    tensors["vae.decoder.type_emb"] = torch.zeros(2, 16)  # unused embedding: skipped
    with safe_open(str(files["single"]), "pt") as fh:
        save_file(tensors, str(path), metadata=fh.metadata())
    ours = load_diffusion_decoder(path, dtype=torch.float32)
    assert_close(_run(ours), _run(_expected()), "loaded vs in-memory")
    half = load_diffusion_decoder(path, dtype=torch.bfloat16)
    assert half.conv_in.weight.dtype == torch.bfloat16


def test_static_gates_load_as_stored_and_equal_folded_weights(files):
    """An older standalone file's ``gate_msa`` / ``gate_mlp`` / ``gate_ctx``: kept as parameters, the result equals
    ltx-core's fold into ``attn.proj`` / ``mlp.w_down`` / ``context_proj``."""
    tensors = load_file(str(files["standalone"]))
    gen = torch.Generator().manual_seed(5)
    folded = dict(tensors)
    targets = {"gate_msa": ("attn.proj.weight", "attn.proj.bias"), "gate_mlp": ("mlp.w_down.weight",),
               "gate_ctx": ("context_proj.weight", "context_proj.bias")}
    for b in range(2):
        for gate, names in targets.items():
            value = 1 + 0.3 * torch.randn(16, generator=gen)
            tensors[f"decoder.diff_blocks.{b}.{gate}"] = value
            for name in names:
                w = folded[f"decoder.diff_blocks.{b}.{name}"]
                folded[f"decoder.diff_blocks.{b}.{name}"] = value[:, None] * w if w.ndim == 2 else value * w
    with safe_open(str(files["standalone"]), "pt") as fh:
        meta = fh.metadata()
    gated, plain = files["root"] / "gated.safetensors", files["root"] / "folded.safetensors"
    save_file(tensors, str(gated), metadata=meta)
    save_file(folded, str(plain), metadata=meta)
    ckpt = open_diffusion_decoder(gated)
    assert ckpt.config.gates == ("gate_msa", "gate_mlp", "gate_ctx")
    ours, want = _run(load_diffusion_decoder(ckpt)), _run(load_diffusion_decoder(plain))
    assert not torch.equal(want, _run(_expected()))
    assert_close(ours, want, "gated vs folded")


def test_config_inferred_without_metadata(tmp_path):
    cfg = DiffusionDecoderConfig(latent_channels=8, head_dim=16, stage_channels=(128, 64, 32, 32, 16),
                                 stage_depths=(1, 2, 1, 1, 2), stage5_channels=16, t_emb_dim=32)
    with torch.device("meta"):
        decoder = DiffusionVideoDecoder(cfg)
    state = random_init(decoder, 0).state_dict()
    tensors = {f"decoder.{k}": v for k, v in state.items() if not k.startswith("per_channel")}
    tensors.update({f"per_channel_statistics.{s}": torch.ones(8) for s in ("mean-of-means", "std-of-means")})
    save_file(tensors, str(tmp_path / "bare.safetensors"))
    ckpt = open_diffusion_decoder(tmp_path / "bare.safetensors")
    assert ckpt.config_source == "inferred"
    assert ckpt.config == cfg
    shapes = {k[len("decoder."):]: tuple(v.shape) for k, v in tensors.items() if k.startswith("decoder.")}
    shapes["upsamples.1.proj.weight"] = (4 * 64, 128)  # the released strides cannot explain this
    with pytest.raises(CheckpointError, match="strides"):
        infer_diffusion_decoder(shapes)


def test_video_vae_loader_chooses_the_decoder(files, tmp_path):
    path = files["standalone"]
    vae = load_video_vae(path)  # decoder="auto": the file's diffusion decoder, and its conv encoder
    assert isinstance(vae.decoder, DiffusionVideoDecoder)
    assert vae.config.latent_channels == LATENT
    video = torch.rand(1, 3, 9, 64, 96) * 2 - 1
    latent = vae.encode(video)
    assert latent.shape == (1, LATENT, 2, 2, 3)
    pixels = vae.decode(latent, generator=torch.Generator().manual_seed(2))
    assert torch.equal(pixels, _run(vae.decoder, latent))
    tiling = TilingConfig(tile_pixels=None, tile_frames=32, overlap_frames=16)
    with torch.inference_mode():
        tiled = decode_diffusion_tiled(vae.decoder, latent, tiling, generator=torch.Generator().manual_seed(2))
    assert torch.equal(vae.decode(latent, tiling, generator=torch.Generator().manual_seed(2)), tiled)
    assert load_video_vae(path, decoder="diffusion").decoder is not None
    with pytest.raises(CheckpointError, match="conv"):
        load_video_vae(path, decoder="vae")
    with pytest.raises(CheckpointError, match="load_diffusion_decoder"):
        load_video_decoder(path)
    with pytest.raises(InputError, match="decoder"):
        load_video_vae(path, decoder="best")
    conv = write_tiny_checkpoint(tmp_path / "ltx23.safetensors", "2.3", full=True)
    assert not is_diffusion_vae_file(conv)
    with pytest.raises(CheckpointError, match=r"ltx-2\.5-video-vae-bf16"):
        load_video_vae(conv, decoder="diffusion")
    with pytest.raises(CheckpointError, match="convolutional"):
        open_diffusion_decoder(conv)


def _rewrite(src, dst, change, meta_change=None):
    tensors = load_file(str(src))
    with safe_open(str(src), "pt") as fh:
        meta = dict(fh.metadata())
    change(tensors)
    if meta_change is not None:
        meta_change(meta)
    save_file(tensors, str(dst), metadata=meta)
    return dst


def _drop(name):
    return lambda t: t.pop(name)


def _wider_metadata(meta):
    vae = json.loads(meta["config"])
    vae["vae"]["decoder"]["t_emb_dim"] = 48
    meta["config"] = json.dumps(vae)


@pytest.mark.parametrize("change,meta_change,match", [
    (_drop("decoder.diff_blocks.1.attn.qkv.bias"), None, "missing 1 tensor"),
    (_drop("per_channel_statistics.std-of-means"), None, "per_channel_statistics"),
    (lambda t: t.update({"decoder.diff_blocks.0.extra.weight": torch.zeros(2)}), None, "unexpected"),
    (lambda t: None, _wider_metadata, "wrong shape"),
    (lambda t: [t.pop(k) for k in list(t) if k.startswith("decoder.")], None, "encoder but no decoder"),
])
def test_incomplete_or_mismatched_files(files, tmp_path, change, meta_change, match):
    path = _rewrite(files["standalone"], tmp_path / "bad.safetensors", change, meta_change)
    with pytest.raises(CheckpointError, match=match):
        load_diffusion_decoder(path)


def test_truncated_foreign_and_missing_files(files, tmp_path):
    data = files["standalone"].read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated|download"):
        load_diffusion_decoder(tmp_path / "cut.safetensors")
    save_file({"model.diffusion_model.patchify_proj.weight": torch.zeros(4, 4)}, str(tmp_path / "dit.safetensors"))
    with pytest.raises(CheckpointError, match="transformer"):
        load_diffusion_decoder(tmp_path / "dit.safetensors")
    save_file({"double_blocks.0.img_attn.qkv.weight": torch.zeros(2, 2)}, str(tmp_path / "flux.safetensors"))
    with pytest.raises(CheckpointError, match="Flux"):
        load_diffusion_decoder(tmp_path / "flux.safetensors")
    with pytest.raises(CheckpointError, match="GGUF"):
        load_diffusion_decoder(tmp_path / "vae.gguf")
    with pytest.raises(CheckpointError, match="not found"):
        load_diffusion_decoder(tmp_path / "absent.safetensors")
