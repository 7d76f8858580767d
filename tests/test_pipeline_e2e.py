"""End to end against ltx-pipelines 1.0.0's distilled two-stage flow on tiny random weights (float32, CPU):
image-conditioned stage 1 at half size → 2× latent upsampler → stage 2 with the image re-encoded at full size →
VAE decode and vocoder. The reference side is composed from ltx-pipelines' own functions exactly as
``DistilledPipeline.__call__`` does (minus prompt encoding — both sides get the same contexts — and the CUDA
synchronisation)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from rs_ltxv.ltx.pipeline.generate import generate
from rs_ltxv.ltx.pipeline.guidance import GuidanceParams
from rs_ltxv.ltx.pipeline.media import image_to_pixels
from rs_ltxv.ltx.pipeline.parts import load_model_parts
from rs_ltxv.ltx.pipeline.request import ImageGuide, Request
from rs_ltxv.ltx.text import TextContexts

from conftest import realistic_init
from reference import ltx_core_audio_ref as RA
from reference import ltx_core_ref as R
from reference import ltx_core_vae_ref as RV

W, H, FRAMES, FPS, SEED = 128, 128, 17, 24.0, 9


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("e2e"))


def build_models(d):
    """Reference modules and the same weights written as an official single file + an upsampler file."""
    cfg = R.tiny_config("2.3", in_channels=16, audio_in_channels=128)
    tref = R.build_reference("2.3", cfg=cfg, seed=1)
    realistic_init(tref.transformer, 2)
    vae_cfg = RV.vae_config("2.3", latent_channels=16)
    enc, dec = RV.build_reference(vae_cfg, seed=3)
    audio_cfg = RA.audio_vae_config()
    audio_cfg["model"]["params"]["ddconfig"].update(z_channels=8, ch=128)  # 8 × 16 latent mel bins, as released
    audio = RA.build_audio("2.0", seed=4)
    full_cfg = {"audio_vae": audio_cfg, "vocoder": RA.vocoder_config("2.0")}
    from ltx_core.model.audio_vae import AudioDecoderConfigurator

    audio.decoder = RA.realistic_init(AudioDecoderConfigurator.from_config(full_cfg), 5)
    ups_cfg, ups = RA.build_upsampler("x2", seed=6)
    ckpt = d / "ltx.safetensors"
    R.write_checkpoint(tref, ckpt)
    from safetensors.torch import load_file

    sd = load_file(str(ckpt))
    sd.update(RV.state_dict(enc, dec))
    sd.update({f"audio_vae.decoder.{k}": v.contiguous() for k, v in audio.decoder.state_dict().items()
               if not k.startswith("per_channel_statistics.")})
    sd.update({f"audio_vae.{k}": v.contiguous() for k, v in audio.decoder.state_dict().items()
               if k.startswith("per_channel_statistics.")})
    sd.update({f"vocoder.{k}": v.contiguous() for k, v in audio.vocoder.state_dict().items()})
    meta = {"config": json.dumps({**tref.config, "vae": vae_cfg, **full_cfg}), "model_version": "2.3.0-distilled"}
    save_file(sd, str(ckpt), metadata=meta)
    ups_path = RA.write_upsampler_file(ups_cfg, ups, d / "ups.safetensors")
    g = torch.Generator().manual_seed(7)
    ctx = TextContexts(torch.randn(1, 16, 32, generator=g), torch.randn(1, 16, 16, generator=g), torch.ones(1, 16))
    return tref, enc, dec, audio, ups, ckpt, ups_path, ctx


def run_reference(tref, enc, dec, audio, ups, ctx, image, keyframes):
    from ltx_core.components.diffusion_steps import EulerDiffusionStep
    from ltx_core.components.noisers import GaussianNoiser
    from ltx_core.conditioning import VideoConditionByKeyframeIndex, VideoConditionByLatentIndex
    from ltx_core.model.transformer import X0Model
    from ltx_core.model.upsampler import upsample_video
    from ltx_core.types import VideoPixelShape
    from ltx_pipelines.utils.constants import DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES
    from ltx_pipelines.utils.helpers import denoise_audio_video, simple_denoising_func
    from ltx_pipelines.utils.samplers import euler_denoising_loop
    from ltx_pipelines.utils.types import PipelineComponents

    comps = PipelineComponents(torch.float32, torch.device("cpu"))
    comps.video_latent_channels = 16
    noiser = GaussianNoiser(torch.Generator().manual_seed(SEED))
    fn = simple_denoising_func(ctx.video, ctx.audio, X0Model(tref.transformer))

    def loop(s, v, a, stepper):
        return euler_denoising_loop(s, v, a, stepper, fn)

    def conditions(h, w):
        latent = enc(image_to_pixels(image, h, w, crf=33))
        if keyframes:  # KeyframeInterpolationPipeline: every image as appended guide tokens
            return [VideoConditionByKeyframeIndex(latent, 0, 1.0), VideoConditionByKeyframeIndex(latent, 16, 0.8)]
        return [VideoConditionByLatentIndex(latent, 1.0, 0)]

    with torch.no_grad():
        v, a = denoise_audio_video(VideoPixelShape(1, FRAMES, H // 2, W // 2, FPS), conditions(H // 2, W // 2),
                                   noiser, torch.Tensor(DISTILLED_SIGMA_VALUES), EulerDiffusionStep(), loop, comps,
                                   torch.float32, torch.device("cpu"))
        up = upsample_video(latent=v.latent[:1], video_encoder=enc, upsampler=ups)
        s2 = torch.Tensor(STAGE_2_DISTILLED_SIGMA_VALUES)
        v, a = denoise_audio_video(VideoPixelShape(1, FRAMES, H, W, FPS), conditions(H, W), noiser, s2,
                                   EulerDiffusionStep(), loop, comps, torch.float32, torch.device("cpu"),
                                   noise_scale=s2[0], initial_video_latent=up, initial_audio_latent=a.latent)
        pixels = dec(v.latent)
        wave = audio.vocoder(audio.decoder(a.latent))
    return v.latent, a.latent, pixels, wave


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
    assert rv.std() > 0.1 and rwave.abs().max() > 1e-3 and ref_frames.float().std() > 5
    lsb = (out.frames.int() - ref_frames.int()).abs().max()
    print(f"\nmax|Δ| video latent {(out.video_latent - rv).abs().max():.2e} (max {scale(rv):.2f}), audio latent "
          f"{(out.audio_latent - ra).abs().max():.2e}, frames {lsb} LSB, "
          f"waveform {(out.waveform - rwave).abs().max():.2e}")
