"""Latent upsampler (x2 with and without the rational resampler, x1.5, temporal x2) against ltx-core 1.0.0, loaded
from standalone files; the normalisation wrapper against ltx-core's ``upsample_video``; loading without metadata and
error paths."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from rs_ltxv.ltx.errors import CheckpointError, InputError
from rs_ltxv.ltx.loading.upsampler import load_upsampler
from rs_ltxv.ltx.upsampler import UpsamplerConfig, pixel_shuffle, upsample_latent

from conftest import assert_close
from reference import ltx_core_audio_ref as ref_lib

EXPECTED = {"x2-rational": (3, 8, 12), "x2": (3, 8, 12), "x1.5": (3, 6, 9), "temporal-x2": (5, 4, 6)}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("upsamplers")
    out = {}
    for i, kind in enumerate(ref_lib.UPSAMPLER_KINDS):
        cfg, model = ref_lib.build_upsampler(kind, seed=30 + i)
        out[kind] = (cfg, model, ref_lib.write_upsampler_file(cfg, model, directory / f"{kind}.safetensors"))
    return out


def _latent(seed: int) -> torch.Tensor:
    return torch.randn(2, 16, 3, 4, 6, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", ref_lib.UPSAMPLER_KINDS)
@torch.no_grad()
def test_parity(files, kind):
    cfg, ref, path = files[kind]
    ours = load_upsampler(path, dtype=torch.float32)
    assert ours.cfg == UpsamplerConfig.from_dict(cfg)
    x = _latent(1)
    expected = ref(x)
    delta = assert_close(ours(x), expected, kind)
    assert expected.shape == (2, 16, *EXPECTED[kind])
    print(f"upsampler {kind}: max|Δ| {delta:.2e}")


@torch.no_grad()
def test_normalisation_wrapper(files):
    from ltx_core.model.upsampler import upsample_video
    from ltx_core.model.video_vae.ops import PerChannelStatistics

    _, ref, path = files["x1.5"]
    stats = PerChannelStatistics(latent_channels=16)
    g = torch.Generator().manual_seed(5)
    stats.get_buffer("std-of-means").copy_(torch.rand(16, generator=g) + 0.5)
    stats.get_buffer("mean-of-means").copy_(torch.randn(16, generator=g) * 0.3)
    encoder = torch.nn.Module()
    encoder.per_channel_statistics = stats
    x = _latent(2)
    expected = upsample_video(x, encoder, ref)
    ours = upsample_latent(x, load_upsampler(path), stats.get_buffer("mean-of-means"), stats.get_buffer("std-of-means"))
    assert_close(ours, expected, "upsample_latent")


@pytest.mark.parametrize("kind", ref_lib.UPSAMPLER_KINDS)
def test_config_inferred_without_metadata(files, kind, tmp_path):
    cfg, ref, _ = files[kind]
    path = ref_lib.write_upsampler_file(cfg, ref, tmp_path / "bare.safetensors", metadata=False)
    assert load_upsampler(path).cfg == UpsamplerConfig.from_dict(cfg)


def test_pixel_shuffle_layout():
    x = torch.arange(2 * 8 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 8, 3, 2, 2)
    y = pixel_shuffle(x, (2, 2, 2))
    assert y.shape == (2, 1, 6, 4, 4)
    # channel c·8 + i·4 + j·2 + k goes to (2f + i, 2h + j, 2w + k)
    assert y[1, 0, 2 * 1 + 1, 2 * 0 + 0, 2 * 1 + 1] == x[1, 1 * 4 + 0 * 2 + 1, 1, 0, 1]
    t = pixel_shuffle(x, (2, 1, 1))
    assert t.shape == (2, 4, 6, 2, 2)
    assert t[0, 3, 5, 1, 0] == x[0, 3 * 2 + 1, 2, 1, 0]


def test_errors(files, tmp_path):
    cfg, ref, path = files["x2"]
    ours = load_upsampler(path)
    with pytest.raises(InputError, match="expects"):
        ours(torch.zeros(1, 8, 2, 2, 2))
    state = {k: v.contiguous() for k, v in ref.state_dict().items()}
    meta = {"config": json.dumps(cfg)}
    # missing tensor
    save_file({k: v for k, v in state.items() if k != "final_conv.bias"}, str(tmp_path / "m.safetensors"), meta)
    with pytest.raises(CheckpointError, match="missing 1 tensor"):
        load_upsampler(tmp_path / "m.safetensors")
    # config that does not describe the file (mid_channels 64 vs 32)
    save_file(state, str(tmp_path / "c.safetensors"), {"config": json.dumps({**cfg, "mid_channels": 64})})
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_upsampler(tmp_path / "c.safetensors")
    # the metadata of a x1.5 model on x2 tensors: unexpected / missing names
    save_file(state, str(tmp_path / "k.safetensors"), {"config": json.dumps(ref_lib.upsampler_config("x1.5"))})
    with pytest.raises(CheckpointError, match="does not match its config"):
        load_upsampler(tmp_path / "k.safetensors")
    # unsupported scale
    save_file(state, str(tmp_path / "s.safetensors"), {"config": json.dumps({**cfg, "spatial_scale": 3.0})})
    with pytest.raises(CheckpointError, match="spatial_scale"):
        load_upsampler(tmp_path / "s.safetensors")
    # truncated
    data = path.read_bytes()
    (tmp_path / "t.safetensors").write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match="truncated"):
        load_upsampler(tmp_path / "t.safetensors")
    # not an upsampler: an LTX model file and a foreign file
    save_file({"audio_vae.decoder.conv_in.conv.weight": torch.zeros(1)}, str(tmp_path / "a.safetensors"))
    with pytest.raises(CheckpointError, match="not a latent upsampler"):
        load_upsampler(tmp_path / "a.safetensors")
    save_file({"double_blocks.0.img_attn.qkv.weight": torch.zeros(1)}, str(tmp_path / "f.safetensors"))
    with pytest.raises(CheckpointError, match="Flux"):
        load_upsampler(tmp_path / "f.safetensors")
