"""Extension keeps the clip before the overlap, cross-fades the overlap, appends the new frames and keeps sound;
guides are removed before anything is returned. Uses a real tiny transformer (latent level, no decode)."""

from __future__ import annotations

import pytest
import torch

from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.loading import load_transformer
from rs_ltxv.ltx.pipeline.extend import linear_blend, plan_extension, stitch
from rs_ltxv.ltx.pipeline.generate import extend, generate
from rs_ltxv.ltx.pipeline.guidance import GuidanceParams
from rs_ltxv.ltx.pipeline.protocols import ModelParts
from rs_ltxv.ltx.pipeline.request import Request
from rs_ltxv.ltx.text import TextContexts
from rs_ltxv.ltx.tiny import write_tiny_checkpoint

NO_GUIDANCE = GuidanceParams()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "t.safetensors", "2.3", dtype=torch.float32)
    model = load_transformer(path, dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    vd, ad = model.context_dim
    ctx = TextContexts(torch.randn(1, 8, vd, generator=g), torch.randn(1, 8, ad, generator=g), torch.ones(1, 8))
    return ModelParts(model), (ctx, None)


def _req(**kw):
    base = dict(width=64, height=64, frames=25, fps=24.0, steps=3, schedule="ltxv", decode=False,
                video_guidance=NO_GUIDANCE, audio_guidance=NO_GUIDANCE)
    base.update(kw)
    return Request(**base)


def test_generate_shapes_and_determinism(tiny):
    parts, ctx = tiny
    a = generate(parts, _req(seed=3), contexts=ctx)
    b = generate(parts, _req(seed=3), contexts=ctx)
    c = generate(parts, _req(seed=4), contexts=ctx)
    assert a.video_latent.shape == (1, 128, 4, 2, 2)
    assert a.audio_latent.shape == (1, 8, round(25 / 24 * 25), 16)
    assert torch.equal(a.video_latent, b.video_latent)
    assert torch.equal(a.audio_latent, b.audio_latent)
    assert not torch.equal(a.video_latent, c.video_latent)


def test_extend_keeps_blends_and_appends(tiny):
    parts, ctx = tiny
    first = generate(parts, _req(seed=1), contexts=ctx)
    old_v, old_a = first.video_latent, first.audio_latent
    out = extend(parts, _req(seed=2), old_v, old_a, new_frames=16, overlap_frames=8, contexts=ctx)
    plan = plan_extension(old_v.shape[2], 16, 8, 24.0)
    # length as requested: 25 + 16 pixel frames = 6 latent frames; audio covers the new duration
    assert out.video_latent.shape == (1, 128, 6, 2, 2)
    assert out.audio_latent.shape[2] == plan.total_audio_frames == round(41 / 24 * 25)
    # everything before the overlap is unchanged, video and audio
    assert torch.equal(out.video_latent[:, :, :3], old_v[:, :, :3])
    n_audio = plan.audio_frames(plan.overlap)
    assert torch.equal(out.audio_latent[:, :, : old_a.shape[2] - n_audio], old_a[:, :, : old_a.shape[2] - n_audio])
    # the overlap is a blend of old and new (not a copy of either); the kept audio overlap (strength 1) is exact
    assert not torch.equal(out.video_latent[:, :, 3], old_v[:, :, 3])
    # (cross-fading a span with an identical copy of itself changes it only by float rounding)
    torch.testing.assert_close(out.audio_latent[:, :, old_a.shape[2] - n_audio: old_a.shape[2]],
                               old_a[:, :, -n_audio:], rtol=1e-6, atol=1e-6)


def test_stitch_and_blend_math():
    old = torch.zeros(1, 1, 5)
    new = torch.ones(1, 1, 4)
    out = stitch(old, new, overlap=2, dim=2)
    assert out.shape[2] == 7
    torch.testing.assert_close(out[0, 0], torch.tensor([0, 0, 0, 1 / 3, 2 / 3, 1, 1]))
    torch.testing.assert_close(linear_blend(torch.zeros(3), torch.ones(3), 0), torch.tensor([0.25, 0.5, 0.75]))


@pytest.mark.parametrize("new, overlap, match", [(12, 8, "multiple of 8"), (16, 4, "multiple of 8"),
                                                 (16, 32, "shorter than the clip")])
def test_bad_extension_requests(new, overlap, match):
    with pytest.raises(InputError, match=match):
        plan_extension(4, new, overlap, 24.0)


def test_size_errors_are_clear(tiny):
    parts, ctx = tiny
    with pytest.raises(InputError, match="8·k \\+ 1"):
        generate(parts, _req(frames=24), contexts=ctx)
    with pytest.raises(InputError, match="multiple of 32"):
        generate(parts, _req(width=100), contexts=ctx)
    with pytest.raises(InputError, match="upsampler"):
        generate(parts, _req(upscale=True), contexts=ctx)
