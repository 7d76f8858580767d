"""Tiled video VAE encode/decode: exactness with one tile, blend weights, seams, memory budget."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import pytest
import torch

from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.video_vae import (
    TilingConfig,
    VideoDecoder,
    VideoEncoder,
    VideoVAEConfig,
    auto_tiling,
    decode_tiled,
    encode_tiled,
    estimate_decode_bytes,
    iter_decode_tiled,
)
from rs_ltxv.ltx.video_vae.tiling import plan_axes, spans

from reference import ltx_core_vae_ref as R


def _ours(raw: dict, seed: int = 1) -> tuple[VideoEncoder, VideoDecoder]:
    enc, dec = R.build_reference(raw, seed=seed)
    cfg = VideoVAEConfig.from_dict(raw)
    ours_e, ours_d = VideoEncoder(cfg).eval(), VideoDecoder(cfg).eval()
    ours_e.load_state_dict(enc.state_dict())
    ours_d.load_state_dict(dec.state_dict())
    return ours_e.requires_grad_(False), ours_d.requires_grad_(False)


@pytest.fixture(scope="module", params=R.LAYOUTS)
def vae(request):
    return request.param, *_ours(R.vae_config(request.param))


def test_tiles_covering_the_input_equal_untiled_exactly(vae):
    _, enc, dec = vae
    latent = R.random_latent(16, 2, 2, 3, seed=1)
    whole = TilingConfig(tile_pixels=1024, overlap_pixels=64, tile_frames=64, overlap_frames=16)
    with torch.inference_mode():
        assert torch.equal(decode_tiled(dec, latent, whole), dec(latent))
        video = R.random_video(9, 64, 96, seed=2)
        assert torch.equal(encode_tiled(enc, video, whole), enc(video))


def test_blend_weights_partition_unity():
    for length in (1, 5, 9, 11, 23):
        for tile, overlap in ((4, 2), (6, 3), (8, 2), (3, 2)):
            got = spans(length, tile, overlap)
            assert got[0][0] == 0
            assert got[-1][1] == length
            assert all(b - a == min(tile, length) for a, b in got)
            assert all(got[i + 1][0] <= got[i][1] - min(overlap, length - 1) for i in range(len(got) - 1))
        t_plan, h_plan, _ = plan_axes((1, 16, length, length, 3), TilingConfig(64, 32, 32, 16), 32, 8, decode=True)
        for plan, frames, scale in ((t_plan, 1 + 8 * (length - 1), None), (h_plan, 32 * length, 32)):
            total = torch.zeros(frames, dtype=torch.float64)
            for (a, _), w in zip(plan.spans, plan.weights, strict=True):
                s = 8 * a if scale is None else a * scale
                total[s: s + w.numel()] += w
                assert (w > 0).all()
            assert torch.allclose(total, torch.ones_like(total), atol=1e-12)


def test_local_decoder_is_exact_away_from_seams():
    """A decoder without res blocks has a receptive field of ≈ 3.1 latent cells per side. Where one tile alone has
    weight 1 and its cut edges are ≥ 3.2 latent cells away, the tiled output must equal the untiled one: this pins
    tile placement (time offsets of 1 + 8k clips, pixel offsets) and weight normalisation."""
    raw = R.vae_config("2.3", layers=0)
    _, dec = _ours(raw, seed=5)
    latent = R.random_latent(16, 20, 2, 2, seed=3)
    tiling = TilingConfig(tile_pixels=None, tile_frames=80, overlap_frames=16)  # latent spans [0,10) [8,18) [10,20)
    with torch.inference_mode():
        full, tiled = dec(latent), decode_tiled(dec, latent, tiling)
    # frames of tile [0,10) with weight 1: [0, 64); its cut edge is at frame 73 → exact below 8·(10 − 3.2) ≈ 54
    assert (tiled[:, :, :49] - full[:, :, :49]).abs().max() <= 1e-5 * full.abs().max()
    assert (tiled[:, :, 60:] - full[:, :, 60:]).abs().max() > 1e-3  # seams do differ (the test is sensitive)
    latent = R.random_latent(16, 1, 16, 2, seed=4)
    tiling = TilingConfig(tile_pixels=320, overlap_pixels=64, tile_frames=None)  # rows [0,10) [6,16)
    with torch.inference_mode():
        full, tiled = dec(latent), decode_tiled(dec, latent, tiling)
    # tile [0,10) alone on rows [0, 192), cut edge at 320 px; tile [6,16) alone on [320, 512), cut edge at 192 px
    assert (tiled[..., :192, :] - full[..., :192, :]).abs().max() <= 1e-5 * full.abs().max()
    assert (tiled[..., 320:, :] - full[..., 320:, :]).abs().max() <= 1e-5 * full.abs().max()
    assert (tiled[..., 224:288, :] - full[..., 224:288, :]).abs().max() > 1e-3


def test_tiled_decode_close_to_untiled(vae):
    """Bound: mean|Δ| ≤ 0.35·std(untiled) and ≤ 0.5 × the error of decoding one latent frame (with its
    predecessor) at a time. The tiny random decoders have a receptive field wider than the tiles (≈6.6 latent
    frames/cells per side vs. 2–3 of overlap), so seams are not invisible here; measured mean|Δ|/std 0.13–0.24 and
    0.18–0.28 of the frame-at-a-time error. A misplaced tile (off by one frame) or unnormalised weights give ≈1·std."""
    layout, _, dec = vae
    latent = R.random_latent(16, 9, 2, 2, seed=3)
    with torch.inference_mode():
        full = dec(latent)
        tiled = decode_tiled(dec, latent, TilingConfig(tile_pixels=None, tile_frames=48, overlap_frames=24))
        pairs = [dec(latent[:, :, :1])] + [dec(latent[:, :, k - 1: k + 1])[:, :, 1:] for k in range(1, 9)]
        naive = torch.cat(pairs, dim=2)
    err, naive_err = (tiled - full).abs().mean().item(), (naive - full).abs().mean().item()
    print(f"LTX-{layout} temporal tiles: mean|Δ| {err:.3f} (std {full.std():.3f}), frame-at-a-time {naive_err:.3f}")
    assert err <= 0.35 * full.std().item()
    assert err <= 0.5 * naive_err
    latent = R.random_latent(16, 1, 8, 8, seed=4)
    with torch.inference_mode():
        full = dec(latent)
        tiled = decode_tiled(dec, latent, TilingConfig(tile_pixels=192, overlap_pixels=96, tile_frames=None))
    err = (tiled - full).abs().mean().item()
    print(f"LTX-{layout} spatial tiles: mean|Δ| {err:.3f} (std {full.std():.3f})")
    assert err <= 0.35 * full.std().item()


def test_tiled_encode_close_to_untiled(vae):
    """Same bound as the decoder (measured mean|Δ|/std ≈ 0.35–0.4 for 4-cell tiles with 2 cells of overlap, so
    larger tiles are used here: 6 cells with 3 of overlap)."""
    _, enc, _ = vae
    video = R.random_video(9, 64, 256, seed=6)
    with torch.inference_mode():
        full = enc(video)
        tiled = encode_tiled(enc, video, TilingConfig(tile_pixels=192, overlap_pixels=96, tile_frames=None))
    assert tiled.shape == full.shape == (1, 16, 2, 2, 8)
    assert (tiled - full).abs().mean() <= 0.5 * full.std()
    # time: causal, so the earlier tile keeps the overlap and its latents are exact (spans (0,4) (2,6));
    # measured mean|Δ|/std 0.16–0.18 over the whole latent
    video = R.random_video(41, 64, 64, seed=7)
    with torch.inference_mode():
        full = enc(video)
        tiled = encode_tiled(enc, video, TilingConfig(tile_pixels=None, tile_frames=32, overlap_frames=16))
    assert (tiled[:, :, :4] - full[:, :, :4]).abs().max() <= 1e-5 * full.abs().max()
    assert (tiled - full).abs().mean() <= 0.35 * full.std()


def test_streaming_chunks_are_contiguous_and_flat(vae):
    _, _, dec = vae
    latent = R.random_latent(16, 6, 2, 2, seed=7)
    tiling = TilingConfig(tile_pixels=None, tile_frames=32, overlap_frames=16)
    with torch.inference_mode():
        chunks = list(iter_decode_tiled(dec, latent, tiling))
        whole = decode_tiled(dec, latent, tiling)
    assert [c[0] for c in chunks] == [0, 16]  # latent spans (0,4) (2,6)
    assert torch.equal(torch.cat([c[1] for c in chunks], dim=2), whole)


def test_tiling_config_errors(vae):
    _, _, dec = vae
    latent = R.random_latent(16, 5, 2, 2)
    with pytest.raises(InputError, match="at least 16 frames"):
        decode_tiled(dec, latent, TilingConfig(tile_pixels=None, tile_frames=16, overlap_frames=8))
    with pytest.raises(InputError, match="multiples of 32"):
        decode_tiled(dec, latent, TilingConfig(tile_pixels=100))
    with pytest.raises(InputError, match="at least 2 latent cells"):
        decode_tiled(dec, latent, TilingConfig(tile_pixels=32, overlap_pixels=0))
    with pytest.raises(InputError, match="smaller than the tile"):
        decode_tiled(dec, latent, TilingConfig(tile_pixels=64, overlap_pixels=64))
    with pytest.raises(InputError, match="`out` has shape"):
        decode_tiled(dec, latent, TilingConfig(), out=torch.empty(1, 3, 5, 64, 64))


def _peak_bytes(fn) -> int:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True,
                                record_shapes=True, with_stack=True) as prof:
        fn()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        path = Path(tmp) / "timeline.raw.json"
        prof.export_memory_timeline(str(path), device="cpu")
        sizes = json.loads(path.read_text())[1]
    totals = [sum(s) for s in sizes]
    return max(totals) - totals[0]


def test_memory_budget_picks_tiles_that_fit():
    _, dec = _ours(R.vae_config("2.3"), seed=2)
    cfg = dec.config
    latent = R.random_latent(16, 9, 2, 2, seed=8)
    untiled = auto_tiling(cfg, tuple(latent.shape), 2**40)
    assert untiled.tile_pixels is None
    assert untiled.tile_frames is None
    budget = 10 * 2**20
    assert estimate_decode_bytes(cfg, 9, 2, 2) > budget  # untiled would not fit
    tiling = auto_tiling(cfg, tuple(latent.shape), budget)
    assert tiling.tile_frames is not None
    assert tiling.overlap_frames >= 16
    out = torch.empty(1, 3, 65, 64, 64)
    with torch.inference_mode():
        peak_full = _peak_bytes(lambda: dec(latent))
        peak = _peak_bytes(lambda: decode_tiled(dec, latent, memory_budget=budget, out=out))
    print(f"budget {budget / 2**20:.0f} MiB: {tiling}, measured peak {peak / 2**20:.1f} MiB "
          f"(untiled {peak_full / 2**20:.1f} MiB)")
    assert peak <= budget < peak_full
