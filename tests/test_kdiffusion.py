"""A k-diffusion-style sampler (the calling convention of ComfyUI's SAMPLER objects) drives our denoiser."""

from __future__ import annotations

from dataclasses import replace

import torch

from rs_ltxv.ltx.loading import load_transformer
from rs_ltxv.ltx.pipeline.conditioning import ReplaceLatentFrames
from rs_ltxv.ltx.pipeline.denoiser import Denoiser
from rs_ltxv.ltx.pipeline.kdiffusion import sample_with
from rs_ltxv.ltx.pipeline.latents import VideoSize
from rs_ltxv.ltx.pipeline.sampling import sample
from rs_ltxv.ltx.pipeline.schedules import make_sigmas
from rs_ltxv.ltx.pipeline.stage import StageInputs, noise_tracks, prepare_tracks
from rs_ltxv.ltx.text import TextContexts
from rs_ltxv.ltx.tiny import write_tiny_checkpoint


def k_euler(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """Euler in k-diffusion's form: d = (x − denoised)/σ; x += d·(σ_next − σ)."""
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **(extra_args or {}))
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "denoised": denoised})
        x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
    return x


def test_k_diffusion_euler_equals_our_euler(tmp_path):
    model = load_transformer(write_tiny_checkpoint(tmp_path / "t.safetensors", "2.3", dtype=torch.float32),
                             dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    vd, ad = model.context_dim
    ctx = TextContexts(torch.randn(1, 8, vd, generator=g), torch.randn(1, 8, ad, generator=g), torch.ones(1, 8))
    size = VideoSize(17, 64, 64, 24.0)
    cond = ReplaceLatentFrames(torch.randn(1, 128, 1, 2, 2, generator=g), 0, 1.0)
    video, audio = prepare_tracks(StageInputs(size, torch.zeros(1), channels=128, conditioning=(cond,)))
    video, audio = noise_tracks(video, audio, seed=3)
    sigmas = make_sigmas("ltxv", 4)
    ours_v, ours_a = sample(Denoiser(model, ctx), video, audio, sigmas)
    seen = []
    k_v, k_a = sample_with(k_euler, Denoiser(model, ctx), video, audio, sigmas,
                           progress=lambda i, n: seen.append((i, n)))
    torch.testing.assert_close(k_v.latent, ours_v.latent, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(k_a.latent, ours_a.latent, rtol=1e-5, atol=1e-5)
    assert seen == [(i, 4) for i in range(1, 5)]
    # the conditioned first frame stays exact through the k-diffusion path too
    torch.testing.assert_close(k_v.latent[:, :4], video.clean[:, :4], rtol=0, atol=1e-6)


def test_a_skipped_guidance_step_still_keeps_conditioned_tokens(tmp_path):
    """With ``skip_step`` the guided x0 of the last computed step is reused, and blended with the clean latent on
    every step like ltx-pipelines' loop (``post_process_latent`` after each denoise): a half-kept first frame stays
    half kept on the skipped step too."""
    from rs_ltxv.ltx.pipeline.guidance import GuidanceParams

    model = load_transformer(write_tiny_checkpoint(tmp_path / "t.safetensors", "2.3", dtype=torch.float32),
                             dtype=torch.float32)
    g = torch.Generator().manual_seed(1)
    vd, ad = model.context_dim
    ctx = TextContexts(torch.randn(1, 8, vd, generator=g), torch.randn(1, 8, ad, generator=g), torch.ones(1, 8))
    cond = ReplaceLatentFrames(torch.randn(1, 128, 1, 2, 2, generator=g), 0, 0.5)
    video, audio = noise_tracks(*prepare_tracks(StageInputs(VideoSize(17, 64, 64, 24.0), torch.zeros(1), channels=128,
                                                            conditioning=(cond,))), seed=3)
    skip_every_other = GuidanceParams(skip_step=1)
    denoiser = Denoiser(model, ctx, None, skip_every_other, skip_every_other)
    denoiser(video, audio, torch.tensor(0.9), 0)
    last_v, _ = denoiser._last
    moved = replace(video, latent=video.latent + 0.1)
    x0_v, _ = denoiser(moved, audio, torch.tensor(0.8), 1)  # skipped: reuses step 0's prediction
    torch.testing.assert_close(x0_v, moved.blend_x0(last_v), rtol=0, atol=0)
    assert not torch.equal(x0_v[:, :4], last_v[:, :4])  # the half-kept frame is blended, not the raw prediction
