"""Extension through the 2× upscale pass: the chunk is sampled at half size with the overlap downscaled, upscaled
2×, refined at full size with the full-resolution overlap as guide, then stitched. Real tiny transformer, VAEs and
upsampler (float32, CPU)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
import torch
from safetensors.torch import save_file

from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.pipeline.extend import plan_extension
from rs_ltxv.ltx.pipeline.extend_clip import downscale_latent, extend
from rs_ltxv.ltx.pipeline.generate import extend as extend_reexported
from rs_ltxv.ltx.pipeline.generate import generate
from rs_ltxv.ltx.pipeline.guidance import GuidanceParams
from rs_ltxv.ltx.pipeline.kdiffusion import ExternalSampler
from rs_ltxv.ltx.pipeline.parts import load_model_parts
from rs_ltxv.ltx.pipeline.request import Request
from rs_ltxv.ltx.text import TextContexts
from rs_ltxv.ltx.tiny import random_init, write_tiny_checkpoint
from rs_ltxv.ltx.tokens import video_to_tokens
from rs_ltxv.ltx.upsampler import LatentUpsampler, UpsamplerConfig

NO_GUIDANCE = GuidanceParams()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("extup")
    ckpt = write_tiny_checkpoint(d / "t.safetensors", "2.3", dtype=torch.float32, full=True)
    cfg = UpsamplerConfig(in_channels=16, mid_channels=32, num_blocks_per_stage=1)
    save_file({k: v.contiguous() for k, v in random_init(LatentUpsampler(cfg), seed=5).state_dict().items()},
              str(d / "up.safetensors"), metadata={"config": json.dumps(asdict(cfg))})
    parts = load_model_parts(ckpt, upsampler=d / "up.safetensors", dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    vd, ad = parts.transformer.context_dim
    ctx = TextContexts(torch.randn(1, 8, vd, generator=g), torch.randn(1, 8, ad, generator=g), torch.ones(1, 8))
    clip = generate(parts, _req(seed=1, upscale=False), contexts=(ctx, None))
    return parts, (ctx, None), clip


def _req(**kw) -> Request:
    base = dict(width=128, height=128, frames=25, fps=24.0, steps=3, schedule="ltxv", decode=False, seed=2,
                video_guidance=NO_GUIDANCE, audio_guidance=NO_GUIDANCE, upscale=True, upscale_steps=2,
                upscale_denoise=0.7)
    base.update(kw)
    return Request(**base)


def test_downscale_latent_averages_2x2_blocks():
    x = torch.arange(16.0).reshape(1, 1, 1, 4, 4)
    torch.testing.assert_close(downscale_latent(x)[0, 0, 0], torch.tensor([[2.5, 4.5], [10.5, 12.5]]))
    assert extend_reexported is extend


@pytest.mark.parametrize("with_audio", [True, False])
def test_upscaled_extension_shapes_kept_part_and_audio(tiny, with_audio):
    parts, ctx, clip = tiny
    old_v, old_a = clip.video_latent, (clip.audio_latent if with_audio else None)
    ticks = []
    out = extend(parts, _req(), old_v, old_a, new_frames=16, overlap_frames=8, contexts=ctx,
                 progress=lambda i, n: ticks.append((i, n)))
    plan = plan_extension(old_v.shape[2], 16, 8, 24.0)
    assert out.video_latent.shape == (1, 16, 6, 4, 4)  # full size: 128 px = 4 latent pixels
    assert torch.isfinite(out.video_latent).all()
    assert torch.equal(out.video_latent[:, :, :3], old_v[:, :, :3])  # everything before the overlap is unchanged
    assert not torch.equal(out.video_latent[:, :, 3], old_v[:, :, 3])  # the overlap is cross-faded
    assert ticks == [(i, 5) for i in range(1, 6)]  # 3 half-size steps + 2 refinement steps
    if with_audio:
        n = plan.audio_frames(plan.overlap)
        keep = old_a.shape[2] - n
        assert out.audio_latent.shape == (1, old_a.shape[1], plan.total_audio_frames, 16)
        assert torch.equal(out.audio_latent[:, :, :keep], old_a[:, :, :keep])
        torch.testing.assert_close(out.audio_latent[:, :, keep: old_a.shape[2]], old_a[:, :, keep:],
                                   rtol=1e-6, atol=1e-6)  # strength-1 audio overlap kept through both passes
        assert torch.isfinite(out.audio_latent).all()
    else:
        assert out.audio_latent is None


def test_half_size_pass_sees_downscaled_overlap_and_refinement_the_full_one(tiny):
    parts, ctx, clip = tiny
    passes = []

    def spy(model, x, sigmas, extra_args=None, callback=None, disable=None):
        video = model.video
        passes.append((video.latent.shape[1] - video.generated, video.clean[:, video.generated:].clone()))
        return x

    extend(parts, _req(sampler=ExternalSampler(spy)), clip.video_latent, clip.audio_latent, new_frames=16,
           overlap_frames=8, contexts=ctx)
    overlap = clip.video_latent[:, :, -1:]
    (n1, guide1), (n2, guide2) = passes
    assert (n1, n2) == (4, 16)  # one latent frame of 2×2 tokens at half size, 4×4 at full size
    torch.testing.assert_close(guide1, video_to_tokens(downscale_latent(overlap)))
    torch.testing.assert_close(guide2, video_to_tokens(overlap))


def test_upscaled_extension_is_deterministic_and_differs_from_one_pass(tiny):
    parts, ctx, clip = tiny
    args = (clip.video_latent, clip.audio_latent)
    a = extend(parts, _req(), *args, new_frames=8, overlap_frames=8, contexts=ctx)
    b = extend(parts, _req(), *args, new_frames=8, overlap_frames=8, contexts=ctx)
    c = extend(parts, _req(upscale=False), *args, new_frames=8, overlap_frames=8, contexts=ctx)
    assert torch.equal(a.video_latent, b.video_latent)
    assert torch.equal(a.audio_latent, b.audio_latent)
    assert a.video_latent.shape == c.video_latent.shape
    assert not torch.allclose(a.video_latent[:, :, -1], c.video_latent[:, :, -1])


def test_upscaled_extension_decodes_at_full_size(tiny):
    parts, ctx, clip = tiny
    out = extend(parts, _req(decode=True), clip.video_latent, clip.audio_latent, new_frames=8, overlap_frames=8,
                 contexts=ctx)
    assert out.frames.shape == (1, 33, 128, 128, 3)
    assert out.waveform is not None


@pytest.mark.parametrize("latent_size, drop_upsampler, match", [
    (3, False, "multiples of 64"),  # 96 px: the half-size pass would be 48 px
    (4, True, "upsampler"),
])
def test_upscaled_extension_errors(tiny, latent_size, drop_upsampler, match):
    parts, ctx, clip = tiny
    parts = replace(parts, upsampler=None) if drop_upsampler else parts
    video = clip.video_latent[:, :, :, :latent_size, :latent_size]
    with pytest.raises(InputError, match=match):
        extend(parts, _req(), video, None, new_frames=8, overlap_frames=8, contexts=ctx)
