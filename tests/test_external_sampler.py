"""A k-diffusion-style sampler given as ``Request.sampler`` (what a connected ComfyUI SAMPLER becomes) runs in every
pass of generate and extend and matches the built-in samplers; the node adapter converts SAMPLERs and refuses GUIDERs
clearly. Real tiny models (transformer, VAEs, upsampler), float32, CPU."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.pipeline.extend_clip import extend
from rs_ltxv.ltx.pipeline.generate import generate
from rs_ltxv.ltx.pipeline.guidance import GuidanceParams
from rs_ltxv.ltx.pipeline.kdiffusion import ExternalSampler, FlowSampling
from rs_ltxv.ltx.pipeline.latents import VideoSize
from rs_ltxv.ltx.pipeline.parts import load_model_parts
from rs_ltxv.ltx.pipeline.request import ImageGuide, Request
from rs_ltxv.ltx.text import TextContexts
from rs_ltxv.ltx.tiny import write_tiny_checkpoint
from rs_ltxv.nodes import convert, specs

from reference.builders import write_tiny_upsampler

NO_GUIDANCE = GuidanceParams()
TOL = dict(rtol=1e-5, atol=1e-5)


def k_euler(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """Euler in k-diffusion's form: d = (x − denoised)/σ; x += d·(σ_next − σ)."""
    extra_args = extra_args or {}
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "denoised": denoised})
        d = (x - denoised) / sigmas[i]
        x = x + d * (sigmas[i + 1] - sigmas[i])
    return x


def k_euler_ancestral_rf(model, x, sigmas, extra_args=None, callback=None, disable=None, eta=1.0, s_noise=1.0,
                         noise_sampler=None):
    """Rectified-flow Euler-ancestral in k-diffusion's form (step down to σ_down, re-noise up to σ_next)."""
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **(extra_args or {}))
        if sigmas[i + 1] == 0:
            x = denoised
            continue
        down = sigmas[i + 1] * (1 + (sigmas[i + 1] / sigmas[i] - 1) * eta)
        a_next, a_down = 1 - sigmas[i + 1], 1 - down
        renoise = (sigmas[i + 1] ** 2 - down**2 * a_next**2 / a_down**2) ** 0.5
        x = down / sigmas[i] * x + (1 - down / sigmas[i]) * denoised
        x = a_next / a_down * x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * renoise
    return x


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("ext")
    ckpt = write_tiny_checkpoint(d / "t.safetensors", "2.3", dtype=torch.float32, full=True)
    parts = load_model_parts(ckpt, upsampler=str(write_tiny_upsampler(d / "up.safetensors")), dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    vd, ad = parts.transformer.context_dim
    ctx = TextContexts(torch.randn(1, 8, vd, generator=g), torch.randn(1, 8, ad, generator=g), torch.ones(1, 8))
    neg = TextContexts(torch.randn(1, 8, vd, generator=g), torch.randn(1, 8, ad, generator=g), torch.ones(1, 8))
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return parts, (ctx, neg), image


def _req(**kw) -> Request:
    base = dict(width=64, height=64, frames=17, fps=24.0, steps=3, schedule="ltxv", decode=False, seed=5,
                video_guidance=NO_GUIDANCE, audio_guidance=NO_GUIDANCE, sampler="euler")
    base.update(kw)
    return Request(**base)


GENERATE_CASES = {
    "first frame + audio": dict(images="first"),
    "last frame as guide tokens, attention 0.5": dict(images="last"),
    "cfg + stg + modality guidance": dict(video_guidance=GuidanceParams(cfg=3.0, stg=1.0, stg_blocks=(1,),
                                                                        modality=2.0, rescale=0.5)),
    "2x upscale, both passes": dict(width=128, height=128, upscale=True, upscale_steps=3, upscale_denoise=0.8,
                                    images="first"),
}


def _images(image, which):
    return {"first": (ImageGuide(image, 0),), "last": (ImageGuide(image, -1, attention=0.5),)}.get(which, ())


@pytest.mark.parametrize("case", GENERATE_CASES)
def test_k_euler_equals_builtin_euler_in_generate(tiny, case):
    parts, ctx, image = tiny
    kw = dict(GENERATE_CASES[case])
    kw["images"] = _images(image, kw.get("images"))
    ours = generate(parts, _req(**kw), contexts=ctx)
    ticks = []
    ext = generate(parts, _req(**kw, sampler=ExternalSampler(k_euler, name="k_euler")), contexts=ctx,
                   progress=lambda i, n: ticks.append((i, n)))
    torch.testing.assert_close(ext.video_latent, ours.video_latent, **TOL)
    torch.testing.assert_close(ext.audio_latent, ours.audio_latent, **TOL)
    total = 3 + (3 if kw.get("upscale") else 0)
    assert ticks == [(i, total) for i in range(1, total + 1)]
    other = generate(parts, _req(**kw, seed=6, sampler=ExternalSampler(k_euler)), contexts=ctx)
    assert not torch.allclose(other.video_latent, ours.video_latent, **TOL)  # the comparison can fail


@pytest.mark.parametrize("upscale", [False, True])
def test_k_euler_equals_builtin_euler_in_extend(tiny, upscale):
    parts, ctx, _image = tiny
    size = dict(width=128, height=128) if upscale else {}
    clip = generate(parts, _req(seed=1, frames=25, **size), contexts=ctx)
    kw = dict(upscale=upscale, upscale_steps=2, upscale_denoise=0.7, **size)
    args = (clip.video_latent, clip.audio_latent)
    ours = extend(parts, _req(**kw), *args, new_frames=16, overlap_frames=8, overlap_strength=0.9, contexts=ctx)
    ext = extend(parts, _req(**kw, sampler=ExternalSampler(k_euler)), *args, new_frames=16, overlap_frames=8,
                 overlap_strength=0.9, contexts=ctx)
    torch.testing.assert_close(ext.video_latent, ours.video_latent, **TOL)
    torch.testing.assert_close(ext.audio_latent, ours.audio_latent, **TOL)


def _noise_like_builtin(size: VideoSize, channels: int, audio_channels: int, seed: int):
    """A k-diffusion noise sampler drawing the built-in euler_ancestral's noise: per step video tokens, then audio."""
    gen = torch.Generator().manual_seed(seed)
    f, h, w = size.latent_grid
    shapes = [(size.batch, f * h * w, channels), (size.batch, size.audio_frames, audio_channels * 16)]

    def sampler(_sigma, _sigma_next):
        return torch.cat([torch.randn(s, generator=gen).flatten(1) for s in shapes], dim=1)
    return sampler


def test_k_ancestral_with_the_same_noise_equals_builtin_ancestral(tiny):
    """Stochastic samplers add noise to kept tokens too; they are put back before each call, so a strength-1 first
    frame and the audio come out exactly like the built-in sampler's."""
    parts, ctx, image = tiny
    req = _req(sampler="euler_ancestral", eta=1.0, images=(ImageGuide(image, 0),))
    ours = generate(parts, req, contexts=ctx)
    cfg = parts.transformer.config
    noise = _noise_like_builtin(VideoSize(17, 64, 64, 24.0), cfg.in_channels, cfg.audio_in_channels // 16,
                                req.seed + 1)
    k = ExternalSampler(k_euler_ancestral_rf, {"eta": 1.0, "noise_sampler": noise})
    ext = generate(parts, replace(req, sampler=k), contexts=ctx)
    torch.testing.assert_close(ext.video_latent, ours.video_latent, **TOL)
    torch.testing.assert_close(ext.audio_latent, ours.audio_latent, **TOL)
    plain = generate(parts, replace(req, sampler="euler"), contexts=ctx)
    assert not torch.allclose(plain.video_latent, ours.video_latent, **TOL)


def test_sampler_sees_seed_model_sampling_and_every_pass(tiny):
    parts, ctx, _image = tiny
    seen = []

    def spy(model, x, sigmas, extra_args=None, callback=None, disable=None, flag=None):
        ms = model.inner_model.inner_model.model_sampling
        assert ms is model.inner_model.model_patcher.get_model_object("model_sampling")
        seen.append((extra_args["seed"], flag, len(sigmas), x.dtype, type(ms).__name__))
        return k_euler(model, x, sigmas, extra_args, callback)

    generate(parts, _req(width=128, height=128, upscale=True, upscale_steps=2, upscale_denoise=0.6,
                         sampler=ExternalSampler(spy, {"flag": "on"})), contexts=ctx)
    assert seen == [(6, "on", 4, torch.float32, "FlowSampling"), (6, "on", 3, torch.float32, "FlowSampling")]


def test_flow_sampling_matches_the_noising():
    """CONST's noise scaling (σ·ε + (1 − σ)·x) and x0 from a velocity, as our tracks are noised and denoised."""
    ms = FlowSampling()
    x, eps, v = torch.randn(2, 5), torch.randn(2, 5), torch.randn(2, 5)
    torch.testing.assert_close(ms.noise_scaling(torch.tensor(0.3), eps, x), 0.3 * eps + 0.7 * x)
    torch.testing.assert_close(ms.calculate_denoised(torch.tensor([0.3, 0.5]), v, x),
                               x - v * torch.tensor([[0.3], [0.5]]))
    assert (ms.percent_to_sigma(0.0), ms.percent_to_sigma(0.25), ms.percent_to_sigma(1.0)) == (1.0, 0.75, 0.0)


def _cfg_pp(model, x, sigmas, extra_args=None, callback=None, disable=None):
    opts = dict(extra_args["model_options"], sampler_post_cfg_function=[lambda args: args["denoised"]])
    return model(x, sigmas[0] * x.new_ones([1]), model_options=opts)


def _needs_core_model(model, x, sigmas, extra_args=None, callback=None, disable=None):
    return model.inner_model.inner_model.diffusion_model(x)


@pytest.mark.parametrize("fn, match", [(_cfg_pp, "without '_cfg_pp'"),
                                       (_needs_core_model, "model.inner_model.inner_model.diffusion_model")])
def test_samplers_needing_core_internals_say_which(tiny, fn, match):
    parts, ctx, _image = tiny
    with pytest.raises(InputError, match=match):
        generate(parts, _req(sampler=ExternalSampler(fn, name=fn.__name__)), contexts=ctx)


# ---------------------------------------------------------------------------------------------- node adapter

class KSAMPLER:  # the shape of core's comfy.samplers.KSAMPLER
    def __init__(self, fn, extra_options=None):
        self.sampler_function, self.extra_options = fn, extra_options or {}

    def sample(self, *args, **kwargs):
        raise AssertionError("never called: RS LTXV runs sampler_function itself")


class CustomLoop(KSAMPLER):
    def sample(self, *args, **kwargs):
        return None


def sample_euler_ancestral(*args, **kwargs):
    return k_euler(*args)


@pytest.mark.parametrize("sampler", [KSAMPLER(sample_euler_ancestral, {"eta": 0.5}),
                                     SimpleNamespace(sampler_function=sample_euler_ancestral,
                                                     extra_options={"eta": 0.5})])
def test_build_request_turns_a_sampler_into_external_sampler(sampler):
    for spec in (specs.GENERATE, specs.EXTEND):
        req = convert.build_request(spec, {"sampler": sampler, "sampler_name": "res_2s"})
        assert isinstance(req.sampler, ExternalSampler)
        assert req.sampler.fn is sample_euler_ancestral
        assert dict(req.sampler.options) == {"eta": 0.5}
        assert req.sampler.name == "euler_ancestral"
        assert req.sampler.model_sampling is None  # no ComfyUI here: the library's FlowSampling is used
    assert convert.build_request(specs.GENERATE, {"sampler_name": "res_2s"}).sampler == "res_2s"


@pytest.mark.parametrize("sampler, match", [(CustomLoop(k_euler), r"overrides sample\(\) \(CustomLoop\)"),
                                            (object(), "no sampler_function")])
def test_samplers_with_their_own_loop_are_refused(sampler, match):
    with pytest.raises(InputError, match=match) as err:
        convert.build_request(specs.EXTEND, {"sampler": sampler})
    assert "RS LTXV Extend" in str(err.value)
    assert "KSamplerSelect" in str(err.value)


def test_guider_refusal_says_why_and_what_to_use():
    with pytest.raises(InputError) as err:
        convert.build_request(specs.GENERATE, {"guider": object()})
    msg = str(err.value)
    assert msg == convert.GUIDER_REFUSAL.format(node="RS LTXV Generate")
    for word in ("core's own sampling loop", "multimodal guidance", "cfg", "stg_scale", "audio_cfg",
                 "modality_scale", "rescale"):
        assert word in msg
