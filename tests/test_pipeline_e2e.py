"""End to end against ltx-pipelines 1.0.0's distilled two-stage flow on tiny random weights (float32, CPU):
image-conditioned stage 1 at half size → 2× latent upsampler → stage 2 with the image re-encoded at full size →
VAE decode and vocoder. The reference side (``reference.ltx_pipelines_ref``) is composed from ltx-pipelines' own
functions exactly as ``DistilledPipeline.__call__`` does (minus prompt encoding — both sides get the same contexts —
and the CUDA synchronisation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rs_ltxv.ltx.pipeline.generate import generate
from rs_ltxv.ltx.pipeline.guidance import GuidanceParams
from rs_ltxv.ltx.pipeline.parts import load_model_parts
from rs_ltxv.ltx.pipeline.request import ImageGuide, Request

from reference.ltx_pipelines_ref import FPS, FRAMES, SEED, H, W, build_models, run_reference


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("e2e"))


@pytest.mark.parametrize("keyframes", [False, True], ids=["image-to-video", "first-last-keyframes"])
def test_distilled_two_stage_matches_reference(models, keyframes):
    tref, enc, dec, audio, ups, ckpt, ups_path, ctx = models
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)
    rv, ra, rpix, rwave = run_reference(tref, enc, dec, audio, ups, ctx, image, keyframes)
    guides = (ImageGuide(image, 0, 1.0, as_guide=True), ImageGuide(image, -1, 0.8)) if keyframes \
        else (ImageGuide(image, 0, 1.0),)
    parts = load_model_parts(ckpt, upsampler=ups_path, dtype=torch.float32, tiling=None)
    assert parts.distilled  # from model_version metadata
    none = GuidanceParams()
    req = Request(width=W, height=H, frames=FRAMES, fps=FPS, seed=SEED, steps=8, schedule="auto", upscale=True,
                  images=guides, video_guidance=none, audio_guidance=none, image_crf=33)
    out = generate(parts, req, contexts=(ctx, None))
    scale = lambda t: max(1.0, t.abs().max().item())  # noqa: E731
    # float32 throughout; the only differences are summation order (SDPA kernels, fused ops): 1e-5 relative
    assert (out.video_latent - rv).abs().max().item() <= 1e-5 * scale(rv)
    assert (out.audio_latent - ra).abs().max().item() <= 1e-5 * scale(ra)
    ref_frames = ((rpix.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1)
    assert (out.frames.int() - ref_frames.int()).abs().max().item() <= 1
    assert out.sample_rate == 24000
    assert (out.waveform - rwave).abs().max().item() <= 1e-5 * scale(rwave)
    # the comparison is not trivial: real signal, and the image really conditions the result
    assert rv.std() > 0.1
    assert rwave.abs().max() > 1e-3
    assert ref_frames.float().std() > 5
    lsb = (out.frames.int() - ref_frames.int()).abs().max()
    print(f"\nmax|Δ| video latent {(out.video_latent - rv).abs().max():.2e} (max {scale(rv):.2f}), audio latent "
          f"{(out.audio_latent - ra).abs().max():.2e}, frames {lsb} LSB, "
          f"waveform {(out.waveform - rwave).abs().max():.2e}")
