"""Tiled decoding with the diffusion video decoder (tiny float32 config): one tile = untiled bit for bit; the
stage 1-3 latent windows reproduce the full-volume stage-4 input; tiled vs untiled within the documented blend
tolerance and exact away from the seams; peak intermediate tensor size flat when the video gets longer."""

from __future__ import annotations

import pytest
import torch

from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.random_weights import random_init
from rs_ltxv.ltx.video_vae import TilingConfig
from rs_ltxv.ltx.video_vae.diffusion import (
    TILED_MEAN_TOLERANCE,
    TILED_TOLERANCE,
    DiffusionVideoDecoder,
    context_frames,
    decode_diffusion_tiled,
    iter_decode_diffusion_tiled,
)
from rs_ltxv.ltx.video_vae.diffusion.model import frames_after
from rs_ltxv.ltx.video_vae.diffusion.tiny import tiny_diffusion_config
from rs_ltxv.ltx.video_vae.tiling import spans

from reference.builders import realistic_init

LATENT = 8
#: the tiling whose seams TILED_TOLERANCE was measured on: 6-cell tiles, 3-cell overlaps (cells: 2 frames, 16 px)
MEASURED = TilingConfig(tile_pixels=96, overlap_pixels=48, tile_frames=32, overlap_frames=16)


@pytest.fixture(scope="module")
def decoder() -> DiffusionVideoDecoder:
    return realistic_init(random_init(DiffusionVideoDecoder(tiny_diffusion_config(LATENT)), 0, std=0.1), 1).eval()


def _latent(frames: int, height: int = 3, width: int = 3, seed: int = 4) -> torch.Tensor:
    return torch.randn(1, LATENT, frames, height, width, generator=torch.Generator().manual_seed(seed))


def _decode(decoder, latent, tiling=None):
    with torch.inference_mode():
        if tiling is None:
            return decoder(latent, torch.Generator().manual_seed(3))
        return decode_diffusion_tiled(decoder, latent, tiling, generator=torch.Generator().manual_seed(3))


def test_one_tile_is_the_untiled_decode(decoder):
    latent = _latent(3, 2, 3)  # below the windows' minimum rows: edge-padded and cropped on both paths
    untiled = _decode(decoder, latent)
    assert untiled.shape == (1, 3, 17, 64, 96)
    assert torch.equal(_decode(decoder, latent, TilingConfig(tile_pixels=512, tile_frames=512)), untiled)
    with torch.inference_mode():
        chunks = list(iter_decode_diffusion_tiled(decoder, latent, None, generator=torch.Generator().manual_seed(3)))
    assert [first for first, _ in chunks] == [0]
    assert torch.equal(chunks[0][1], untiled)


def test_latent_windows_reproduce_the_full_stage4_input(decoder):
    """Stages 1-3 on a window with ``context_frames`` latent frames of halo equal the full volume inside it: the
    windows of temporal tiles change nothing before stage 4."""
    halo = context_frames(decoder.config)
    assert halo == 4  # 1 + 1 + 1/2 frames of reach, rounded up, + 1
    with torch.inference_mode():
        x, _ = decoder.prepare(_latent(11))
        full = decoder.features(x)
        strides = [s[0] for s in decoder.config.upsample_strides[:-1]]
        for w0, w1 in ((2, 13), (1, 12), (3, 12)):
            window = decoder.features(x[:, :, w0:w1], first=False)
            offset = frames_after(w0, strides)
            lo = frames_after(w0 + halo, strides)  # first stage-4 frame of latent frame w0 + halo
            hi = full.shape[1] if w1 == x.shape[2] else frames_after(w1 - halo, strides)
            delta = (window[:, lo - offset:hi - offset] - full[:, lo:hi]).abs().max().item()
            assert delta <= 1e-5 * full.abs().max().item(), (w0, w1, delta)
            short = decoder.features(x[:, :, w0 + halo - 1:w1], first=False)  # one frame of halo too few
            cut = frames_after(w0 + halo - 1, strides)
            assert not torch.allclose(short[:, lo - cut:hi - cut], full[:, lo:hi], atol=1e-4)


def test_tiled_matches_untiled_within_the_blend_tolerance(decoder):
    """MEASURED tiling (temporal and spatial seams): max|Δ| ≤ TILED_TOLERANCE · max|untiled|, mean|Δ| ≤
    TILED_MEAN_TOLERANCE · mean|untiled| (the values in the docstring of rs_ltxv.ltx.video_vae.diffusion.tiled)."""
    latent = _latent(7, 4, 5)
    untiled, tiled = _decode(decoder, latent), _decode(decoder, latent, MEASURED)
    delta = (tiled - untiled).abs()
    assert delta.max() > 1e-3  # there are seams
    assert delta.max() <= TILED_TOLERANCE * untiled.abs().max()
    assert delta.mean() <= TILED_MEAN_TOLERANCE * untiled.abs().mean()


def test_temporal_tiles_are_exact_away_from_the_seams(decoder):
    """Frames farther than stages 4-5's reach (4 frames) from every inner tile border equal the untiled decode."""
    latent, tiling = _latent(7), TilingConfig(tile_pixels=None, tile_frames=32, overlap_frames=16)
    untiled, tiled = _decode(decoder, latent), _decode(decoder, latent, tiling)
    cells = frames_after(7, [1, 2, 2])
    borders = set()
    for i, (a, b) in enumerate(spans(cells, 16, 8)):
        borders |= ({2 * a - 1} if i else set()) | ({2 * b - 1} if b < cells else set())
    assert len(borders) >= 2
    far = [f for f in range(untiled.shape[2]) if all(abs(f - b) > 4 for b in borders)]
    near = [f for f in range(untiled.shape[2]) if f not in far]
    assert len(far) >= 8
    assert (tiled[:, :, far] - untiled[:, :, far]).abs().max() <= 1e-5 * untiled.abs().max()
    assert (tiled[:, :, near] - untiled[:, :, near]).abs().max() > 1e-3


def _peak_numel(decoder: DiffusionVideoDecoder, run) -> int:
    """Largest output (elements) of any module of ``decoder`` during ``run()``."""
    peak = [0]

    def hook(_module, _inputs, output):
        for t in output if isinstance(output, tuple) else (output,):
            if isinstance(t, torch.Tensor):
                peak[0] = max(peak[0], t.numel())

    handles = [m.register_forward_hook(hook) for m in decoder.modules()]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return peak[0]


def test_peak_intermediate_size_is_flat_in_video_length(decoder):
    """Doubling the frames (121 → 249) leaves the largest intermediate tensor of a tiled decode unchanged; the
    untiled decode's grows with the video."""
    tiling = TilingConfig(tile_pixels=None, tile_frames=48, overlap_frames=16)
    short, long = _latent(16), _latent(32)
    tiled_short = _peak_numel(decoder, lambda: _decode(decoder, short, tiling))
    tiled_long = _peak_numel(decoder, lambda: _decode(decoder, long, tiling))
    untiled_long = _peak_numel(decoder, lambda: _decode(decoder, long))
    assert tiled_long == tiled_short
    assert untiled_long > 3 * tiled_long


@pytest.mark.parametrize("tiling,match", [
    (TilingConfig(tile_pixels=40, overlap_pixels=16), "multiples of 16"),  # not whole 16-px cells
    (TilingConfig(tile_pixels=32, overlap_pixels=16), "at least 48 px"),  # below stage 4/5 windows
    (TilingConfig(tile_pixels=None, tile_frames=16, overlap_frames=16), "shorter"),
])
def test_bad_tilings_are_refused(decoder, tiling, match):
    with pytest.raises(InputError, match=match):
        _decode(decoder, _latent(3), tiling)
