"""ltx-pipelines 1.0.0's distilled two-stage flow on tiny random weights (float32, CPU), composed from ltx-pipelines'
own functions exactly as ``DistilledPipeline.__call__`` does (minus prompt encoding — callers pass the contexts — and
the CUDA synchronisation), and the tiny models it runs on, also written as an official single file for our loader.
Used by ``tests/test_pipeline_e2e.py`` and ``benchmarks/pipeline_cpu.py``."""

from __future__ import annotations

import json

import torch
from safetensors.torch import save_file

from rs_ltxv.ltx.pipeline.media import image_to_pixels
from rs_ltxv.ltx.text import TextContexts

from . import ltx_core_audio_ref as RA
from . import ltx_core_ref as R
from . import ltx_core_vae_ref as RV
from .builders import realistic_conv_init, realistic_init

W, H, FRAMES, FPS, SEED = 128, 128, 17, 24.0, 9


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

    audio.decoder = realistic_conv_init(AudioDecoderConfigurator.from_config(full_cfg), 5)
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
