"""IC-LoRA reference videos: guide tokens, positions, denoise and attention masks equal ltx-core's
``VideoConditionByReferenceLatent`` (+ ``ConditioningItemAttentionStrengthWrapper``) on the same latents; the pixel
mask → token weights equal ``ICLoraPipeline._downsample_mask_to_latent``; the LoRA metadata factor; frame count and
aspect handling; a tiny generate with a reference video (real tiny transformer and video VAE)."""

from __future__ import annotations

from dataclasses import replace

import av
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from rs_ltxv.distributed import wire
from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.pipeline.conditioning import KeyframeGuide, ReferenceVideo, reference_token_mask
from rs_ltxv.ltx.pipeline.generate import generate
from rs_ltxv.ltx.pipeline.guidance import GuidanceParams
from rs_ltxv.ltx.pipeline.ic_lora import (
    load_video,
    read_reference_downscale_factor,
    reference_condition,
    reference_downscale_factor,
    usable_frames,
)
from rs_ltxv.ltx.pipeline.latents import VideoSize
from rs_ltxv.ltx.pipeline.media import resize_and_center_crop, write_mp4
from rs_ltxv.ltx.pipeline.parts import load_model_parts
from rs_ltxv.ltx.pipeline.reference_guide import ReferenceVideoGuide
from rs_ltxv.ltx.pipeline.request import Request
from rs_ltxv.ltx.pipeline.stage import StageInputs, prepare_tracks
from rs_ltxv.ltx.text import TextContexts
from rs_ltxv.ltx.tiny import write_tiny_checkpoint

from reference import ltx_core_ref  # noqa: F401  (torchaudio stub, ltx_core import order)

C = 16
SIZE = VideoSize(17, 128, 192, 24.0)  # latent grid 3 × 4 × 6
TOL = 1e-5


def _latent(frames: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, C, frames, h, w, generator=torch.Generator().manual_seed(seed))


def _core_state(items):
    from ltx_core.components.patchifiers import VideoLatentPatchifier
    from ltx_core.tools import VideoLatentTools
    from ltx_core.types import VideoLatentShape

    tools = VideoLatentTools(VideoLatentPatchifier(1), VideoLatentShape(1, C, *SIZE.latent_grid), SIZE.fps)
    state = tools.create_initial_state("cpu", torch.float32)
    for item in items:
        state = item.apply_to(state, tools)
    return state


def _core_items(spec):
    from ltx_core.conditioning import (
        ConditioningItemAttentionStrengthWrapper,
        VideoConditionByKeyframeIndex,
        VideoConditionByReferenceLatent,
    )

    out = []
    for kind, latent, a, strength, attention in spec:
        item = (VideoConditionByKeyframeIndex(latent, a, strength) if kind == "key"
                else VideoConditionByReferenceLatent(latent, a, strength))
        if attention is not None:
            item = ConditioningItemAttentionStrengthWrapper(item, attention)
        out.append(item)
    return out


def _our_items(spec):
    return [KeyframeGuide(latent, a, strength, attention) if kind == "key"
            else ReferenceVideo(latent, a, strength, attention) for kind, latent, a, strength, attention in spec]


REF2 = _latent(3, 2, 3, seed=1)  # a half-size reference (factor 2) of the 3 × 4 × 6 grid
REF1 = _latent(2, 4, 6, seed=2)  # a same-size reference, shorter than the video
MASK = torch.rand(1, 18, generator=torch.Generator().manual_seed(3))
CASES = {
    "factor 1, no attention mask": [("ref", REF1, 1, 1.0, None)],
    "factor 2, strength 0.7, scalar attention": [("ref", REF2, 2, 0.7, 0.5)],
    "factor 2, per-token attention mask": [("ref", REF2, 2, 1.0, MASK)],
    "after a keyframe with attention": [("key", _latent(1, 4, 6, 4), 8, 1.0, 0.8), ("ref", REF2, 2, 1.0, None)],
    "keyframe then masked reference": [("key", _latent(1, 4, 6, 4), 16, 0.9, None), ("ref", REF2, 2, 1.0, MASK)],
    "two references": [("ref", REF2, 2, 1.0, 0.3), ("ref", REF1, 1, 0.5, None)],
}


@pytest.mark.parametrize("case", CASES)
def test_tokens_positions_and_masks_equal_ltx_core(case):
    spec = CASES[case]
    ref = _core_state(_core_items(spec))
    video, _ = prepare_tracks(StageInputs(SIZE, torch.zeros(1), channels=C, conditioning=tuple(_our_items(spec)),
                                          with_audio=False))
    assert video.generated == SIZE.video_tokens
    for ours, theirs, what in ((video.latent, ref.latent, "latent"), (video.clean, ref.clean_latent, "clean"),
                               (video.mask, ref.denoise_mask, "denoise mask"),
                               (video.positions, ref.positions, "positions")):
        assert ours.shape == theirs.shape, what
        assert (ours.float() - theirs.float()).abs().max() <= TOL, what
    if ref.attention_mask is None:
        assert video.attention is None
    else:
        assert video.attention is not None
        assert video.attention.shape == ref.attention_mask.shape
        assert (video.attention - ref.attention_mask.float()).abs().max() <= TOL


def test_factor_stretches_height_and_width_positions_only():
    video, _ = prepare_tracks(StageInputs(SIZE, torch.zeros(1), channels=C, with_audio=False,
                                          conditioning=(ReferenceVideo(REF2, 2),)))
    n = SIZE.video_tokens
    pos = video.positions[0, :, n:]
    assert pos[1].max() == 128
    assert pos[2].max() == 192  # the half-size grid covers the output's pixels
    assert torch.equal(pos[0], video.positions[0, 0, :n].view(3, 4 * 6, 2)[:, :6].reshape(-1, 2))


@pytest.mark.parametrize("frames,grid", [(17, (3, 2, 3)), (9, (2, 4, 6)), (1, (1, 3, 3)), (25, (4, 1, 2))])
def test_mask_downsampling_equals_ic_lora_pipeline(frames, grid):
    from ltx_core.types import VideoLatentShape
    from ltx_pipelines.ic_lora import ICLoraPipeline

    mask = torch.rand(2, 1, frames, 37, 50, generator=torch.Generator().manual_seed(frames))
    theirs = ICLoraPipeline._downsample_mask_to_latent(mask, VideoLatentShape(2, 1, *grid))
    ours = reference_token_mask(mask, grid)
    assert ours.shape == theirs.shape == (2, grid[0] * grid[1] * grid[2])
    assert (ours - theirs).abs().max() <= TOL


def test_mask_with_incompatible_frames_is_refused():
    with pytest.raises(InputError, match="latent frames"):
        reference_token_mask(torch.rand(1, 1, 12, 8, 8), (3, 1, 1))


def test_reference_video_travels_over_the_wire():
    item = ReferenceVideo(REF2, 2, 0.75, MASK)
    back = wire.decode(wire.encode(item))
    assert isinstance(back, ReferenceVideo)
    assert back.downscale_factor == 2
    assert back.strength == 0.75
    assert torch.equal(back.latent, REF2)
    assert torch.equal(back.attention_mask, MASK)


# ------------------------------------------------------------------------------------------------ LoRA metadata

def _lora(path, metadata=None):
    save_file({"diffusion_model.x.lora_A.weight": torch.zeros(2, 4)}, str(path), metadata=metadata)
    return path


def test_downscale_factor_from_lora_metadata(tmp_path):
    plain = _lora(tmp_path / "plain.safetensors")
    two = _lora(tmp_path / "two.safetensors", {"reference_downscale_factor": "2"})
    three = _lora(tmp_path / "three.safetensors", {"reference_downscale_factor": "3"})
    assert read_reference_downscale_factor(plain) == 1
    assert read_reference_downscale_factor(two) == 2
    assert reference_downscale_factor([plain, two, two]) == 2
    assert reference_downscale_factor([]) == 1
    with pytest.raises(InputError, match="different reference_downscale_factor"):
        reference_downscale_factor([two, plain, three])
    bad = _lora(tmp_path / "bad.safetensors", {"reference_downscale_factor": "half"})
    with pytest.raises(InputError, match="not a whole number"):
        read_reference_downscale_factor(bad)
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="cannot read"):
        read_reference_downscale_factor(tmp_path / "junk.safetensors")


# ----------------------------------------------------------------------------------------- request checks

def _frames(n: int, h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("guide,kw,match", [
    (ReferenceVideoGuide(np.zeros((5, 64, 64), np.uint8)), {}, "uint8 RGB frames"),
    (ReferenceVideoGuide(np.zeros((5, 64, 64, 3), np.float32)), {}, "uint8 RGB frames"),
    (ReferenceVideoGuide(_frames(5), strength=1.5), {}, "strength must be a number from 0 to 1"),
    (ReferenceVideoGuide(_frames(5), attention=float("nan")), {}, "attention must be a number"),
    (ReferenceVideoGuide(_frames(5), downscale_factor=0), {}, "whole number from 1 to 64"),
    (ReferenceVideoGuide(_frames(5), downscale_factor=2), dict(width=96), "multiple of 64 pixels per side"),
    (ReferenceVideoGuide(_frames(5), downscale_factor=2), dict(width=192, height=128, upscale=True),
     "multiples of 128"),
    (ReferenceVideoGuide(_frames(5), mask=np.zeros(4)), {}, "attention mask must be"),
])
def test_bad_reference_videos_are_refused_when_the_request_is_built(guide, kw, match):
    with pytest.raises(InputError, match=match):
        Request(**{"width": 64, "height": 64, "frames": 17, **kw, "reference_videos": (guide,)})


def test_usable_frames_rule():
    assert [usable_frames(n, 17) for n in (1, 8, 9, 16, 17, 40)] == [1, 1, 9, 9, 17, 17]
    assert usable_frames(200, 121) == 121


# ------------------------------------------------------------------------------------------- with real models

NO_GUIDANCE = GuidanceParams()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from rs_ltxv.ltx.tiny_parts import write_tiny_upsampler

    d = tmp_path_factory.mktemp("iclora")
    ckpt = write_tiny_checkpoint(d / "t.safetensors", "2.3", dtype=torch.float32, full=True)
    parts = load_model_parts(ckpt, upsampler=str(write_tiny_upsampler(d / "up.safetensors")), dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    vd, ad = parts.transformer.context_dim
    ctx = TextContexts(torch.randn(1, 8, vd, generator=g), torch.randn(1, 8, ad, generator=g), torch.ones(1, 8))
    return parts, (ctx, None)


def test_frames_cut_and_aspect_resized_as_documented(tiny):
    parts, _ = tiny
    vae = parts.video_vae
    size = VideoSize(17, 64, 128, 24.0)
    video = _frames(30, 90, 100, seed=4)  # longer than the video and of another aspect ratio
    item = reference_condition(vae, ReferenceVideoGuide(video, downscale_factor=2), size, torch.float32, "cpu")
    expected = resize_and_center_crop(torch.from_numpy(video[:17]).float(), 32, 64) / 127.5 - 1.0
    assert torch.equal(item.latent, vae.encode(expected))
    assert item.latent.shape == (1, C, 3, 1, 2)
    assert item.downscale_factor == 2
    assert item.attention_mask is None
    short = reference_condition(vae, ReferenceVideoGuide(video[:12], attention=0.4), size, torch.float32, "cpu")
    assert short.latent.shape == (1, C, 2, 2, 4)  # 12 frames → the 9-frame prefix
    assert short.attention_mask == 0.4
    mask = np.ones((12, 20, 20), np.float32)
    mask[:, :, :10] = 0.0  # left half off
    masked = reference_condition(vae, ReferenceVideoGuide(video[:12], attention=0.5, mask=mask), size,
                                 torch.float32, "cpu")
    weights = masked.attention_mask.view(2, 2, 4)
    assert torch.allclose(weights[:, :, 0], torch.zeros(2, 2))
    assert torch.allclose(weights[:, :, 3], torch.full((2, 2), 0.5))
    with pytest.raises(InputError, match="mask has 3 frames"):
        reference_condition(vae, ReferenceVideoGuide(video[:12], mask=mask[:3]), size, torch.float32, "cpu")
    with pytest.raises(InputError, match="not a multiple of 96"):
        reference_condition(vae, ReferenceVideoGuide(video, downscale_factor=3), size, torch.float32, "cpu")


def _req(**kw) -> Request:
    base = dict(width=64, height=64, frames=17, fps=24.0, steps=3, schedule="ltxv", decode=False, seed=5,
                video_guidance=NO_GUIDANCE, audio_guidance=NO_GUIDANCE)
    base.update(kw)
    return Request(**base)


def test_generate_with_a_reference_video(tiny):
    parts, ctx = tiny
    guide = ReferenceVideoGuide(_frames(17, 48, 80, seed=6), attention=0.8)
    plain = generate(parts, _req(), contexts=ctx)
    ref = generate(parts, _req(reference_videos=(guide,)), contexts=ctx)
    again = generate(parts, _req(reference_videos=(guide,)), contexts=ctx)
    assert ref.video_latent.shape == plain.video_latent.shape == (1, C, 3, 2, 2)
    assert torch.isfinite(ref.video_latent).all()
    assert not torch.equal(ref.video_latent, plain.video_latent)
    assert torch.equal(ref.video_latent, again.video_latent)
    other = generate(parts, _req(reference_videos=(replace(guide, frames=_frames(17, 48, 80, seed=7)),)),
                     contexts=ctx)
    assert not torch.equal(other.video_latent, ref.video_latent)


def test_generate_with_upscale_adds_the_reference_to_stage_one_only(tiny):
    parts, ctx = tiny
    guide = ReferenceVideoGuide(_frames(9, 64, 64, seed=8), downscale_factor=2)
    seen = []
    original = parts.video_vae.encode

    class Spy:
        def __getattr__(self, name):
            return getattr(parts.video_vae, name)

        def encode(self, pixels):
            seen.append(tuple(pixels.shape))
            return original(pixels)

    spied = replace(parts, video_vae=Spy())
    out = generate(spied, _req(width=128, height=128, upscale=True, upscale_steps=2, upscale_denoise=0.8,
                               reference_videos=(guide,)), contexts=ctx)
    assert out.video_latent.shape == (1, C, 3, 4, 4)
    assert seen == [(1, 3, 9, 32, 32)]  # once, at 1/2 of the 64 × 64 first pass


def test_load_video_reads_frames(tmp_path):
    frames = torch.from_numpy(_frames(9, 32, 48, seed=9))
    path = write_mp4(tmp_path / "ref.mp4", frames, 24.0)
    got = load_video(path)
    assert got.shape == (9, 32, 48, 3)
    assert got.dtype == np.uint8
    assert load_video(path, max_frames=4).shape[0] == 4
    with pytest.raises(InputError, match="Cannot read the video"):
        load_video(tmp_path / "missing.mp4")


def test_node_inputs_become_a_reference_guide():
    from rs_ltxv.nodes import convert, specs

    base = dict(specs.GENERATE.defaults, width=64, height=64, num_frames=17)
    assert convert.build_request(specs.GENERATE, base).reference_videos == ()
    video = torch.rand(12, 40, 50, 3)
    req = convert.build_request(specs.GENERATE, dict(base, reference_video=video, reference_strength=0.9,
                                                     reference_attention=0.5, reference_downscale_factor=2,
                                                     reference_mask=torch.ones(1, 40, 50)))
    (guide,) = req.reference_videos
    assert guide.frames.dtype == torch.uint8
    assert guide.frames.shape == (12, 40, 50, 3)
    assert (guide.strength, guide.attention, guide.downscale_factor) == (0.9, 0.5, 2)
    with pytest.raises(InputError, match="reference_video"):
        convert.build_request(specs.GENERATE, dict(base, reference_video=torch.rand(40, 50, 3)))


def test_extend_refuses_reference_videos_before_any_model_call(tiny):
    from rs_ltxv.ltx.pipeline.extend_clip import extend

    parts, ctx = tiny
    calls = []
    clip = generate(parts, _req(), contexts=ctx)
    req = _req(reference_videos=(ReferenceVideoGuide(_frames(17, 64, 64)),))
    with pytest.raises(InputError, match="extend does not take IC-LoRA reference videos"):
        extend(parts, req, clip.video_latent, clip.audio_latent, new_frames=8, overlap_frames=8, contexts=ctx,
               progress=lambda done, total: calls.append(done))
    assert calls == []  # no sampling step ran
    extend(parts, _req(), clip.video_latent, clip.audio_latent, new_frames=8, overlap_frames=8, contexts=ctx,
           progress=lambda done, total: calls.append(done))
    assert calls  # the same call without the reference samples (so the progress hook would have seen a step)


def test_cli_generate_takes_the_factor_from_the_lora_metadata(tmp_path):
    """``generate --lora IC-LoRA --reference-video``: the reference is encoded at 1/factor of the size, the factor
    read from the LoRA file. Same LoRA weights with and without the metadata: with it the result equals an explicit
    ``--reference-downscale-factor 2`` and differs from factor 1."""
    from safetensors.torch import load_file

    from rs_ltxv.__main__ import main
    from rs_ltxv.ltx.tiny_parts import write_tiny_gemma, write_tiny_lora

    ckpt = write_tiny_checkpoint(tmp_path / "ltx.safetensors", "2.3", dtype=torch.float32, full=True)
    gemma = str(write_tiny_gemma(tmp_path / "gemma"))
    state = load_file(str(ckpt))
    ic = write_tiny_lora(tmp_path / "tiny_ic_lora.safetensors", state, metadata={"reference_downscale_factor": "2"})
    plain = write_tiny_lora(tmp_path / "tiny_plain_lora.safetensors", state)  # same weights, no metadata
    assert read_reference_downscale_factor(ic) == 2
    assert read_reference_downscale_factor(plain) == 1
    ref = write_mp4(tmp_path / "ref.mp4", torch.from_numpy(_frames(17, 48, 80, seed=10)), 24.0)
    common = ["--checkpoint", str(ckpt), "--text-encoder", gemma, "--prompt", "a fox", "--width", "128", "--height",
              "64", "--frames", "17", "--fps", "24", "--steps", "2", "--dtype", "fp32", "--device", "cpu",
              "--stg-block", "1", "--reference-video", ref]

    def run(name, *extra):
        out = tmp_path / f"{name}.mp4"
        assert main(["generate", *common, *extra, "-o", str(out)]) == 0
        with av.open(str(out)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 17
        return load_file(str(out.with_suffix(".latents.safetensors")))["video"]

    from_metadata = run("metadata", "--lora", str(ic))
    explicit = run("explicit", "--lora", str(plain), "--reference-downscale-factor", "2")
    factor_one = run("one", "--lora", str(plain))
    assert torch.equal(from_metadata, explicit)
    assert not torch.equal(from_metadata, factor_one)
    # the flag overrides the file's metadata (with a warning line): the same as the LoRA without metadata
    assert torch.equal(run("override", "--lora", str(ic), "--reference-downscale-factor", "1"), factor_one)
