"""LTX-2.5 temporal ×2 latent upsampler (and the spatial + temporal kind) against diffusers 0.42.1
``LTX2LatentUpsamplerModel`` and ltx-core 1.0.0 ``LatentUpsampler``, loaded from files in the official layout (flat
``config`` metadata as ``LatentUpsamplerConfigurator`` reads it); the normalisation wrapper against diffusers'
``LTX2DFRTemporalRefinePipeline.upsample_latents``; the frame rule F → 2F − 1; the tiny writer; error paths."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel
from diffusers.pipelines.ltx2.pipeline_ltx2_dfr_temporal_refine import LTX2DFRTemporalRefinePipeline
from ltx_core.model.upsampler import LatentUpsamplerConfigurator
from safetensors.torch import save_file

from rs_ltxv.ltx.errors import CheckpointError, InputError
from rs_ltxv.ltx.loading.upsampler import load_upsampler
from rs_ltxv.ltx.tiny_parts import write_tiny_temporal_upsampler
from rs_ltxv.ltx.upsampler import UpsamplerConfig, upsample_latent

from conftest import assert_close
from reference.builders import realistic_conv_init

KINDS = {"temporal": False, "spatial+temporal": True}
B, C, F, H, W = 2, 16, 3, 4, 5


def _official_config(spatial: bool) -> dict:
    return {"in_channels": C, "mid_channels": 32, "num_blocks_per_stage": 2, "dims": 3, "spatial_upsample": spatial,
            "temporal_upsample": True, "spatial_scale": 2.0, "rational_resampler": False}


def _write(path, model: torch.nn.Module, config: dict | None) -> str:
    state = {k: v.contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=None if config is None else {"config": json.dumps(config)})
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """kind → (official config, diffusers model, file path)."""
    directory = tmp_path_factory.mktemp("temporal")
    out = {}
    for i, (kind, spatial) in enumerate(KINDS.items()):
        cfg = _official_config(spatial)
        ref = LTX2LatentUpsamplerModel(in_channels=C, mid_channels=32, num_blocks_per_stage=2, dims=3,
                                       spatial_upsample=spatial, temporal_upsample=True,
                                       use_rational_resampler=False)
        realistic_conv_init(ref, seed=40 + i)
        out[kind] = (cfg, ref, _write(directory / f"{kind}.safetensors", ref, cfg))
    return out


def _latent(seed: int) -> torch.Tensor:
    return torch.randn(B, C, F, H, W, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", KINDS)
@torch.no_grad()
def test_parity_with_diffusers_and_ltx_core(models, kind):
    cfg, ref, path = models[kind]
    ours = load_upsampler(path, dtype=torch.float32)
    assert ours.cfg == UpsamplerConfig.from_dict(cfg)
    x = _latent(1)
    expected = ref(x)
    scale = 2 if KINDS[kind] else 1
    assert expected.shape == (B, C, 2 * F - 1, scale * H, scale * W)
    delta = assert_close(ours(x), expected, f"{kind} vs diffusers")
    core = LatentUpsamplerConfigurator.from_config(cfg).eval()
    core.load_state_dict(ref.state_dict())
    assert_close(ours(x), core(x), f"{kind} vs ltx-core")
    print(f"temporal upsampler {kind}: max|Δ| vs diffusers {delta:.2e}, max|ref| {expected.abs().max():.2f}")


@torch.no_grad()
def test_normalisation_wrapper_matches_diffusers_pipeline(models):
    _, ref, path = models["temporal"]
    g = torch.Generator().manual_seed(3)
    mean, std = torch.randn(C, generator=g) * 0.3, torch.rand(C, generator=g) + 0.5
    stub = SimpleNamespace(vae=SimpleNamespace(latents_mean=mean, latents_std=std,
                                               config=SimpleNamespace(scaling_factor=1.0)),
                           _normalize_latents=LTX2DFRTemporalRefinePipeline._normalize_latents,
                           _denormalize_latents=LTX2DFRTemporalRefinePipeline._denormalize_latents)
    x = _latent(2)
    expected = LTX2DFRTemporalRefinePipeline.upsample_latents(stub, x, ref)
    assert_close(upsample_latent(x, load_upsampler(path), mean, std), expected, "upsample_latent (temporal)")


@pytest.mark.parametrize("kind", KINDS)
def test_config_inferred_without_metadata(models, kind, tmp_path):
    cfg, ref, _ = models[kind]
    path = _write(tmp_path / "bare.safetensors", ref, None)
    assert load_upsampler(path).cfg == UpsamplerConfig.from_dict(cfg)


def test_frame_rule():
    temporal = UpsamplerConfig(in_channels=C, mid_channels=32, spatial_upsample=False, temporal_upsample=True)
    spatial = UpsamplerConfig(in_channels=C, mid_channels=32)
    # latent frames and pixel frames follow the same rule: 8(F-1)+1 pixels → 8(2F-2)+1 = 2(n-1)+1
    assert [temporal.frames_after(f) for f in (1, 2, 3, 16)] == [1, 3, 5, 31]
    assert temporal.frames_after(121) == 241
    assert (temporal.frames_after(8 * (F - 1) + 1) - 1) // 8 + 1 == 2 * F - 1
    assert spatial.frames_after(121) == 121
    assert (temporal.frame_rate_factor, spatial.frame_rate_factor) == (2, 1)
    with pytest.raises(InputError, match="positive integer"):
        temporal.frames_after(0)


@pytest.mark.parametrize("spatial", [False, True])
@torch.no_grad()
def test_tiny_writer(tmp_path, spatial):
    path = write_tiny_temporal_upsampler(tmp_path / "t.safetensors", channels=C, spatial=spatial)
    model = load_upsampler(path)
    assert (model.cfg.temporal_upsample, model.cfg.spatial_upsample) == (True, spatial)
    y = model(_latent(4))
    assert y.shape == (B, C, 2 * F - 1, *((2 * H, 2 * W) if spatial else (H, W)))
    assert torch.isfinite(y).all()


def test_errors(models, tmp_path):
    cfg, ref, path = models["temporal"]
    state = {k: v.contiguous() for k, v in ref.state_dict().items()}
    # metadata of a spatial-only model on temporal tensors (ltx-core's default spatial_upsample true)
    save_file(state, str(tmp_path / "s.safetensors"), {"config": json.dumps({**cfg, "temporal_upsample": False,
                                                                             "spatial_upsample": True})})
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_upsampler(tmp_path / "s.safetensors")
    # spatial + temporal metadata on temporal-only tensors: the Conv3d has 2×, not 8× the channels
    save_file(state, str(tmp_path / "st.safetensors"), {"config": json.dumps({**cfg, "spatial_upsample": True})})
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_upsampler(tmp_path / "st.safetensors")
    # temporal upsampling needs 3-D convolutions
    save_file(state, str(tmp_path / "d.safetensors"), {"config": json.dumps({**cfg, "dims": 2})})
    with pytest.raises(CheckpointError, match="dims=3"):
        load_upsampler(tmp_path / "d.safetensors")
    # a latent of the wrong rank
    with pytest.raises(InputError, match="expects"):
        load_upsampler(path)(torch.zeros(1, C, 4, 4))
