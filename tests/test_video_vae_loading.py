"""Loading the video VAE: official single files, ComfyUI split files (with and without metadata), one half only,
dtype, and the error paths (truncated, missing tensors, wrong shapes, files that are not a video VAE)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file

from rs_ltxv.ltx.errors import CheckpointError
from rs_ltxv.ltx.loading.video_vae import load_video_decoder, load_video_encoder, load_video_vae, open_video_vae
from rs_ltxv.ltx.video_vae import PaddingMode, VideoVAEConfig

from reference import ltx_core_vae_ref as R


@pytest.fixture(scope="module", params=R.LAYOUTS)
def ref(request, tmp_path_factory):
    cfg = R.vae_config(request.param)
    enc, dec = R.build_reference(cfg, seed=7)
    directory = tmp_path_factory.mktemp(f"vae{request.param}")
    return request.param, cfg, enc, dec, directory


def _outputs(enc, dec):
    video = R.random_video(9, 64, 64, seed=1)
    latent = R.random_latent(16, 2, 2, 2, seed=2)
    with torch.inference_mode():
        return (enc(video) if enc is not None else None), (dec(latent) if dec is not None else None)


def test_official_file_with_other_components(ref):
    """An official single file holds the transformer etc. too; the VAE loader takes only ``vae.*``."""
    _, cfg, enc, dec, directory = ref
    path = directory / "single.safetensors"
    R.write_checkpoint(enc, dec, cfg, path, extra={"model.diffusion_model.patchify_proj.weight": torch.zeros(4, 16),
                                                   "audio_vae.decoder.conv_in.conv.weight": torch.zeros(2, 2, 3, 3)})
    ckpt = open_video_vae(path)
    assert ckpt.config_source == "metadata"
    assert ckpt.config == VideoVAEConfig.from_dict(cfg)
    vae = load_video_vae(ckpt, dtype=torch.float32)
    ours, theirs = _outputs(vae.encoder, vae.decoder), _outputs(enc, dec)
    assert torch.equal(ours[0], theirs[0])
    assert torch.equal(ours[1], theirs[1])


def test_comfy_split_file_with_and_without_metadata(ref):
    layout, cfg, enc, dec, directory = ref
    with_meta, without = directory / "comfy-meta.safetensors", directory / "comfy.safetensors"
    R.write_checkpoint(enc, dec, cfg, with_meta, prefix="")
    R.write_checkpoint(enc, dec, cfg, without, prefix="", with_metadata=False)
    a, b = open_video_vae(with_meta), open_video_vae(without)
    assert (a.config_source, b.config_source) == ("metadata", "inferred")
    expected = VideoVAEConfig.from_dict(cfg)
    if layout == "2.0":  # not visible in shapes: the inferred encoder pads with zeros (the released models' choice)
        expected = replace(expected, encoder_padding=PaddingMode.ZEROS)
    assert b.config == expected
    theirs = _outputs(enc, dec)
    ours = _outputs(load_video_encoder(b), load_video_decoder(b))
    assert torch.equal(ours[1], theirs[1])
    if layout == "2.3":
        assert torch.equal(ours[0], theirs[0])


def test_one_half_and_dtype(ref):
    _, _, enc, dec, directory = ref
    path = directory / "decoder-only.safetensors"
    sd = {k: v for k, v in R.state_dict(enc, dec, prefix="").items() if not k.startswith("encoder.")}
    save_file(sd, str(path))
    vae = load_video_vae(path, dtype=torch.bfloat16)
    assert vae.encoder is None
    assert all(p.dtype == torch.bfloat16 for p in vae.decoder.parameters())
    assert vae.decoder.per_channel_statistics.get_buffer("std-of-means").dtype == torch.bfloat16
    with pytest.raises(CheckpointError, match="without its encoder"):
        vae.encode(torch.zeros(1, 3, 9, 64, 64))
    with pytest.raises(CheckpointError, match="has no video VAE encoder"):
        load_video_encoder(path)
    out = vae.decode(R.random_latent(16, 2, 2, 2).bfloat16())
    assert out.dtype == torch.bfloat16
    assert out.shape == (1, 3, 9, 64, 64)


def test_truncated_file(ref, tmp_path):
    _, cfg, enc, dec, _ = ref
    path = tmp_path / "vae.safetensors"
    R.write_checkpoint(enc, dec, cfg, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_video_vae(path)


def test_missing_tensor(ref, tmp_path):
    _, cfg, enc, dec, _ = ref
    sd = R.state_dict(enc, dec)
    del sd["vae.decoder.up_blocks.0.res_blocks.0.conv2.conv.weight"]
    del sd["vae.per_channel_statistics.mean-of-means"]
    path = tmp_path / "vae.safetensors"
    save_file(sd, str(path), metadata={"config": json.dumps({"vae": cfg})})
    with pytest.raises(CheckpointError, match=r"missing 2 tensor\(s\).*mean-of-means.*conv2\.conv\.weight"):
        load_video_decoder(path)


def test_wrong_shapes_for_config(ref, tmp_path):
    _, cfg, enc, dec, _ = ref
    path = tmp_path / "vae.safetensors"
    R.write_checkpoint(enc, dec, {**cfg, "decoder_base_channels": 8}, path)
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_video_decoder(path)
    R.write_checkpoint(enc, dec, {**cfg, "decoder_blocks": [["attn_res_x", {"num_layers": 1}]]}, path)
    with pytest.raises(CheckpointError, match="unsupported block 'attn_res_x'"):
        open_video_vae(path)


@pytest.mark.parametrize(("keys", "message"), [
    ({"model.diffusion_model.patchify_proj.weight": (4, 16)}, "diffusion model but no video VAE"),
    ({"decoder.up.0.block.0.conv1.conv.weight": (4, 4, 3, 3), "encoder.down.0.block.0.conv1.conv.weight": (4, 4, 3, 3)},
     "audio VAE"),
    ({"double_blocks.0.img_attn.qkv.weight": (4, 4)}, "Flux"),
    ({"something.weight": (2, 2)}, "has no LTX-2 video VAE tensors"),
])
def test_not_a_video_vae(tmp_path, keys, message):
    path = tmp_path / "other.safetensors"
    save_file({k: torch.zeros(s) for k, s in keys.items()}, str(path))
    with pytest.raises(CheckpointError, match=message):
        open_video_vae(path)


def test_plain_strided_encoder_needs_metadata(tmp_path):
    """A block whose stride is invisible in its shapes cannot be inferred: clear error, no guess."""
    raw = {**R.vae_config("2.3"), "encoder_blocks": [["res_x", {"num_layers": 1}], ["compress_time", {}]]}
    cfg = VideoVAEConfig.from_dict(raw)
    from rs_ltxv.ltx.video_vae import VideoEncoder

    enc = VideoEncoder(cfg)
    sd = {f"encoder.{k}": v.contiguous() for k, v in enc.state_dict().items() if "per_channel" not in k}
    path = tmp_path / "enc.safetensors"
    save_file(sd, str(path))
    with pytest.raises(CheckpointError, match="plain strided conv"):
        open_video_vae(path)
