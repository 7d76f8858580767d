"""Video VAE parity: ours (loaded from an official-format file) vs ltx-core 1.0.0, both layouts, float32; and the
decoder/encoder vs diffusers 0.42.1 ``AutoencoderKLLTX2Video`` with renamed weights."""

from __future__ import annotations

import re

import pytest
import torch

from rs_ltxv.ltx.errors import ConfigError, InputError
from rs_ltxv.ltx.loading.video_vae import load_video_vae
from rs_ltxv.ltx.video_vae import VideoDecoder, VideoEncoder, VideoVAEConfig, patchify, unpatchify

from conftest import assert_close
from reference import ltx_core_vae_ref as R

LAYOUTS = R.LAYOUTS


@pytest.fixture(scope="module", params=[(layout, tc) for layout in LAYOUTS for tc in (False, True)],
                ids=lambda p: f"ltx{p[0]}{'-timestep' if p[1] else ''}")
def vae_pair(request, tmp_path_factory):
    layout, conditioned = request.param
    cfg = R.vae_config(layout, timestep_conditioning=conditioned, inject_noise=conditioned)
    enc, dec = R.build_reference(cfg, seed=3)
    path = tmp_path_factory.mktemp("vae") / f"vae-{layout}.safetensors"
    R.write_checkpoint(enc, dec, cfg, path)
    return layout, conditioned, cfg, enc, dec, load_video_vae(path, dtype=torch.float32)


def test_encode_matches_ltx_core(vae_pair):
    layout, _, _, enc, _, ours = vae_pair
    video = R.random_video(17, 64, 64, seed=5)
    with torch.no_grad():
        ref = enc(video)
    out = ours.encode(video)
    assert out.shape == (1, 16, 3, 2, 2)
    delta = assert_close(out, ref, f"encode {layout}")
    print(f"encode LTX-{layout}: max|Δ| {delta:.2e}, max|ref| {ref.abs().max():.2f}")


def test_decode_matches_ltx_core(vae_pair):
    layout, conditioned, _, _, dec, ours = vae_pair
    latent = R.random_latent(16, 3, 2, 2, seed=6)
    with torch.no_grad():
        ref = dec(latent, generator=torch.Generator().manual_seed(9))
    out = ours.decode(latent, generator=torch.Generator().manual_seed(9))
    assert out.shape == (1, 3, 17, 64, 64)
    delta = assert_close(out, ref, f"decode {layout}")
    print(f"decode LTX-{layout} timestep={conditioned}: max|Δ| {delta:.2e}, max|ref| {ref.abs().max():.2f}")
    if conditioned:  # the timestep really changes the output (the conditioning path is exercised)
        other = ours.decode(latent, timestep=0.5, generator=torch.Generator().manual_seed(9))
        with torch.no_grad():
            ref_other = dec(latent, timestep=torch.tensor([0.5]), generator=torch.Generator().manual_seed(9))
        assert_close(other, ref_other, "decode timestep 0.5")
        assert (other - out).abs().max() > 1e-2


def test_patchify_channel_order_matches_reference():
    from ltx_core.model.video_vae.ops import patchify as ref_patchify

    x = torch.randn(2, 3, 5, 8, 12)
    assert torch.equal(patchify(x, 4), ref_patchify(x, patch_size_hw=4, patch_size_t=1))
    assert torch.equal(unpatchify(patchify(x, 4), 4), x)
    # width offset varies slower than height offset: channel 1 is pixel (row 1, col 0) of the patch
    assert torch.equal(patchify(x, 4)[:, 1], x[:, 0, :, 1::4, 0::4])


def test_frame_count_and_size_errors(vae_pair):
    *_, ours = vae_pair
    with pytest.raises(InputError, match=r"Trim or pad the video to 9 or 17 frames"):
        ours.encode(torch.zeros(1, 3, 12, 64, 64))
    with pytest.raises(InputError, match=r"not a multiple of 32"):
        ours.encode(torch.zeros(1, 3, 9, 64, 80))
    with pytest.raises(InputError, match=r"3 channels"):
        ours.encode(torch.zeros(1, 4, 9, 64, 64))
    with pytest.raises(InputError, match=r"decodes \(B, 16"):
        ours.decode(torch.zeros(1, 8, 2, 2, 2))


def test_config_round_trip_and_errors():
    for layout in LAYOUTS:
        cfg = VideoVAEConfig.from_dict(R.vae_config(layout))
        assert VideoVAEConfig.from_dict(cfg.to_dict()) == cfg
        assert (cfg.spatial_compression, cfg.temporal_compression) == (32, 8)
        assert (cfg.decoder_spatial_upsampling, cfg.decoder_temporal_upsampling) == (32, 8)
    with pytest.raises(ConfigError, match="attn_res_x"):
        VideoVAEConfig.from_dict({"encoder_blocks": [], "decoder_blocks": [["attn_res_x", {"num_layers": 1}]]})
    with pytest.raises(ConfigError, match="latent_log_var"):
        VideoVAEConfig.from_dict({"latent_log_var": "none"})


# ------------------------------------------------------------------------------------------------ diffusers 0.42.1
def _diffusers_names(sd: dict[str, torch.Tensor], part: str) -> dict[str, torch.Tensor]:
    """Official names → diffusers: decoder ``up_blocks.0`` → ``mid_block``, odd → ``up_blocks.k.upsamplers.0``,
    even → ``up_blocks.k-1``; encoder even (not last) → ``down_blocks.k``, odd → ``down_blocks.k.downsamplers.0``,
    last → ``mid_block``; ``res_blocks`` → ``resnets``."""
    blocks = "up_blocks" if part == "decoder" else "down_blocks"
    last = max(int(m.group(1)) for k in sd if (m := re.match(rf"{blocks}\.(\d+)\.", k)))

    def rename(key: str) -> str:
        m = re.match(rf"{blocks}\.(\d+)\.(.*)$", key)
        if not m:
            return key
        i, rest = int(m.group(1)), m.group(2).replace("res_blocks.", "resnets.")
        if part == "decoder":
            head = "mid_block" if i == 0 else (f"up_blocks.{i // 2}.upsamplers.0" if i % 2
                                               else f"up_blocks.{i // 2 - 1}")
        else:
            head = "mid_block" if i == last else (f"down_blocks.{i // 2}.downsamplers.0" if i % 2
                                                  else f"down_blocks.{i // 2}")
        return f"{head}.{rest}"

    return {rename(k): v for k, v in sd.items() if not k.startswith("per_channel_statistics.")}


def _diffusers_vae(layout: str):
    from diffusers import AutoencoderKLLTX2Video

    if layout == "2.0":
        dec = dict(decoder_block_out_channels=(8, 16, 32), decoder_layers_per_block=(1, 1, 1, 1),
                   decoder_spatio_temporal_scaling=(True, True, True), upsample_type=("spatiotemporal",) * 3,
                   upsample_residual=(True, True, True), upsample_factor=(2, 2, 2),
                   decoder_spatial_padding_mode="reflect",
                   block_out_channels=(32, 64, 128, 256), encoder_spatial_padding_mode="reflect")
    else:
        dec = dict(decoder_block_out_channels=(8, 16, 16, 32), decoder_layers_per_block=(1, 1, 1, 1, 1),
                   decoder_spatio_temporal_scaling=(True, True, True, True),
                   # diffusers reverses every per-block tuple except upsample_type: that one is in decoder order
                   upsample_type=("spatiotemporal", "spatiotemporal", "temporal", "spatial"),
                   upsample_residual=(False,) * 4, upsample_factor=(2, 2, 1, 2), decoder_inject_noise=(False,) * 5,
                   decoder_spatial_padding_mode="zeros",
                   block_out_channels=(32, 64, 128, 128), encoder_spatial_padding_mode="zeros")
    return AutoencoderKLLTX2Video(latent_channels=16, layers_per_block=(1, 1, 1, 1, 1), decoder_causal=False,
                                  encoder_causal=True, timestep_conditioning=False, **dec).eval()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_matches_diffusers(layout, tmp_path):
    cfg = R.vae_config(layout)
    enc, dec = R.build_reference(cfg, seed=4)
    path = tmp_path / "vae.safetensors"
    R.write_checkpoint(enc, dec, cfg, path)
    ours = load_video_vae(path, dtype=torch.float32)
    theirs = _diffusers_vae(layout)
    for part, module in (("decoder", ours.decoder), ("encoder", ours.encoder)):
        sd = _diffusers_names(module.state_dict(), part)
        getattr(theirs, part).load_state_dict(sd, strict=True)  # every tensor maps one to one
    stats = ours.decoder.per_channel_statistics
    mean = stats.get_buffer("mean-of-means").view(1, -1, 1, 1, 1)
    std = stats.get_buffer("std-of-means").view(1, -1, 1, 1, 1)
    latent = R.random_latent(16, 3, 2, 3, seed=8)
    with torch.no_grad():
        ref = theirs.decoder(latent * std + mean, causal=False)
    delta = assert_close(ours.decode(latent), ref, f"decoder vs diffusers {layout}")
    video = R.random_video(17, 64, 96, seed=2)
    with torch.no_grad():
        ref_latent = (theirs.encoder(video)[:, :16] - mean) / std
    delta_e = assert_close(ours.encode(video), ref_latent, f"encoder vs diffusers {layout}")
    print(f"diffusers LTX-{layout}: decode max|Δ| {delta:.2e}, encode max|Δ| {delta_e:.2e}")


def test_other_block_kinds_match_ltx_core():
    """Block kinds the released models do not use (plain strided convs, ``res_x_y``, ``compress_all_x_y``), group
    norm, per-channel log-variance and a residual decoder ``compress_all``: still equal to ltx-core."""
    raw = {**R.vae_config("2.3", latent_channels=32, base_channels=32), "norm_layer": "group_norm",
           "latent_log_var": "per_channel",
           "encoder_blocks": [["res_x", 1], ["compress_time", {}], ["res_x_y", {"multiplier": 2}],
                              ["compress_space", {}], ["compress_all_x_y", {"multiplier": 2}],
                              ["compress_all_res", {"multiplier": 1}], ["res_x", 1]],
           "decoder_blocks": [["res_x", 1], ["compress_space", {"multiplier": 1}], ["res_x_y", {"multiplier": 2}],
                              ["compress_time", {"multiplier": 2}],
                              ["compress_all", {"multiplier": 2, "residual": True}], ["res_x", 1]]}
    enc, dec = R.build_reference(raw, seed=2)
    cfg = VideoVAEConfig.from_dict(raw)
    ours_e, ours_d = VideoEncoder(cfg).eval(), VideoDecoder(cfg).eval()
    ours_e.load_state_dict(enc.state_dict())
    ours_d.load_state_dict(dec.state_dict())
    video, latent = R.random_video(17, 64, 64, seed=1), R.random_latent(32, 3, 2, 2, seed=2)
    with torch.inference_mode():
        assert_close(ours_e(video), enc(video), "encoder, other blocks")
        assert_close(ours_d(latent), dec(latent), "decoder, other blocks")
