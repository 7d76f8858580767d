"""Retake (regenerate a time range, keep the rest): the masks equal ltx-pipelines 1.0.0's ``TemporalRegionMask``
token for token; a retake stage equals the reference's ``noise_video_state`` / ``noise_audio_state`` +
``euler_denoising_loop`` on tiny random weights; :func:`retake` leaves every latent outside the range bit-identical
(video only, audio only, both; float32 and bfloat16 models); bad ranges are refused before any model call; the CLI
runs end to end on tiny files."""

from __future__ import annotations

import pytest
import torch

from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.loading import load_transformer
from rs_ltxv.ltx.pipeline.conditioning import TemporalRegionMask
from rs_ltxv.ltx.pipeline.conditioning.time_range import audio_frame_region, video_frame_region
from rs_ltxv.ltx.pipeline.denoiser import Denoiser
from rs_ltxv.ltx.pipeline.generate import generate
from rs_ltxv.ltx.pipeline.guidance import GuidanceParams
from rs_ltxv.ltx.pipeline.latents import VideoSize
from rs_ltxv.ltx.pipeline.protocols import ModelParts
from rs_ltxv.ltx.pipeline.reference_guide import ReferenceVideoGuide
from rs_ltxv.ltx.pipeline.request import Request
from rs_ltxv.ltx.pipeline.retake import check_retake, clip_seconds, retake
from rs_ltxv.ltx.pipeline.schedules import make_sigmas
from rs_ltxv.ltx.pipeline.stage import StageInputs, prepare_tracks, run_stage
from rs_ltxv.ltx.text import TextContexts
from rs_ltxv.ltx.tiny import write_tiny_checkpoint

from conftest import assert_close
from reference import ltx_core_ref as R
from reference.builders import realistic_init

NO_GUIDANCE = GuidanceParams()


# ------------------------------------------------------------------------------------------------ masks vs reference

def _reference_masks(size: VideoSize, start: float, end: float, video: bool, audio: bool):
    from ltx_core.components.patchifiers import AudioPatchifier, VideoLatentPatchifier
    from ltx_core.tools import AudioLatentTools, VideoLatentTools
    from ltx_core.types import AudioLatentShape, VideoLatentShape, VideoPixelShape
    from ltx_pipelines.retake import TemporalRegionMask as Ref

    pixel = VideoPixelShape(size.batch, size.frames, size.height, size.width, size.fps)
    vtools = VideoLatentTools(VideoLatentPatchifier(patch_size=1),
                              VideoLatentShape.from_pixel_shape(pixel, latent_channels=4), size.fps)
    atools = AudioLatentTools(AudioPatchifier(patch_size=1), AudioLatentShape.from_video_pixel_shape(pixel))
    vstate = vtools.create_initial_state("cpu", torch.float32)
    astate = atools.create_initial_state("cpu", torch.float32)
    # the reference keeps a stream with start = end = 0 (RetakePipeline's regenerate_video / _audio = False)
    vmask = Ref(start if video else 0.0, end if video else 0.0, size.fps).apply_to(vstate, vtools).denoise_mask
    amask = Ref(start if audio else 0.0, end if audio else 0.0, size.fps).apply_to(astate, atools).denoise_mask
    return vmask, amask, atools.target_shape.frames


CASES = [  # (pixel frames, fps, start, end, video, audio)
    (17, 24.0, 0.2, 0.5, True, True),
    (17, 24.0, 0.0, 1 / 24, True, True),  # the causal first frame only
    (25, 25.0, 0.04, 0.36, True, True),  # boundaries exactly on pixel-frame times
    (121, 24.0, 2.0, 3.5, True, True),  # long clip: times where bfloat16 positions would round
    (121, 30.0, 1.3, 4.0333, True, False),
    (49, 24.0, 0.5, 1.0, False, True),
    (97, 23.976, 1.001, 2.5025, True, True),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize(("frames", "fps", "start", "end", "video", "audio"), CASES)
def test_masks_equal_reference(frames, fps, start, end, video, audio, dtype):
    size = VideoSize(frames, 64, 96, fps)
    rv, ra, audio_frames = _reference_masks(size, start, end, video, audio)
    inputs = StageInputs(size, torch.tensor([1.0, 0.0]), channels=4, dtype=dtype,
                         audio_latent=torch.zeros(1, 8, audio_frames, 16, dtype=dtype),
                         conditioning=(TemporalRegionMask(start, end, video, audio),))
    v, a = prepare_tracks(inputs)
    assert v.mask.dtype == rv.dtype == torch.float32
    assert torch.equal(v.mask, rv.expand_as(v.mask)), (v.mask[0, :, 0], rv)
    assert torch.equal(a.mask, ra.expand_as(a.mask)), (a.mask[0, :, 0], ra)
    assert bool(v.mask.any()) == video  # something is regenerated (or nothing)
    assert bool(a.mask.any()) == audio
    # the per-frame helpers the recipe uses to copy the kept frames back agree with the token masks
    f, h, w = size.latent_grid
    assert torch.equal(v.mask[0, :, 0].view(f, h * w)[:, 0].bool(), video_frame_region(f, fps, start, end) & video)
    assert torch.equal(a.mask[0, :, 0].bool(), audio_frame_region(audio_frames, start, end) & audio)


def test_mask_leaves_guide_tokens_alone():
    from rs_ltxv.ltx.pipeline.conditioning import KeyframeGuide

    size = VideoSize(17, 64, 96, 24.0)
    guide = KeyframeGuide(torch.ones(1, 4, 1, 2, 3), 8, strength=0.75)
    v, _ = prepare_tracks(StageInputs(size, torch.tensor([1.0, 0.0]), channels=4, with_audio=False,
                                      conditioning=(guide, TemporalRegionMask(0.5, 0.7))))
    assert v.generated == 18
    assert v.mask.shape[1] == 24
    assert torch.equal(v.mask[0, 18:, 0], torch.full((6,), 0.25))


# ---------------------------------------------------------------------------------------- one stage vs reference

SIZE = VideoSize(frames=17, height=64, width=96, fps=24.0)  # latent 3 × 2 × 3, audio 18 frames


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    cfg = R.tiny_config("2.3", in_channels=128, audio_in_channels=128)
    ref = R.build_reference("2.3", cfg=cfg, seed=41)
    realistic_init(ref.transformer, 42)
    path = tmp_path_factory.mktemp("retake") / "ckpt.safetensors"
    R.write_checkpoint(ref, path)
    ours = load_transformer(path, dtype=torch.float32)
    g = torch.Generator().manual_seed(43)
    vdim, adim = ours.context_dim
    ctx = {k: torch.randn(1, 16, d, generator=g) for k, d in (("v", vdim), ("a", adim))}
    clip = (torch.randn(1, 128, 3, 2, 3, generator=g), torch.randn(1, 8, 18, 16, generator=g))
    return ref, ours, ctx, clip


def _reference_stage(ref, ctx, clip, sigmas, start, end, video, audio, seed):
    from ltx_core.components.diffusion_steps import EulerDiffusionStep
    from ltx_core.components.noisers import GaussianNoiser
    from ltx_core.model.transformer import X0Model
    from ltx_core.types import VideoPixelShape
    from ltx_pipelines.retake import TemporalRegionMask as Ref
    from ltx_pipelines.utils.helpers import noise_audio_state, noise_video_state, simple_denoising_func
    from ltx_pipelines.utils.samplers import euler_denoising_loop
    from ltx_pipelines.utils.types import PipelineComponents

    shape = VideoPixelShape(1, SIZE.frames, SIZE.height, SIZE.width, SIZE.fps)
    noiser = GaussianNoiser(torch.Generator().manual_seed(seed))
    comps = PipelineComponents(torch.float32, torch.device("cpu"))
    denoise_fn = simple_denoising_func(ctx["v"], ctx["a"], X0Model(ref.transformer))
    with torch.no_grad():  # as RetakePipeline.__call__: video state, audio state, one Euler loop
        vs, vt = noise_video_state(shape, noiser, [Ref(start if video else 0.0, end if video else 0.0, SIZE.fps)],
                                   comps, torch.float32, torch.device("cpu"), initial_latent=clip[0])
        as_, at = noise_audio_state(shape, noiser, [Ref(start if audio else 0.0, end if audio else 0.0, SIZE.fps)],
                                    comps, torch.float32, torch.device("cpu"), initial_latent=clip[1])
        vs, as_ = euler_denoising_loop(sigmas, vs, as_, EulerDiffusionStep(), denoise_fn)
        return vt.unpatchify(vt.clear_conditioning(vs)).latent, at.unpatchify(at.clear_conditioning(as_)).latent


@pytest.mark.parametrize(("video", "audio"), [(True, True), (True, False), (False, True)],
                         ids=["both", "video", "audio"])
def test_stage_matches_reference(setup, video, audio):
    ref, ours, ctx, clip = setup
    sigmas = make_sigmas("distilled", 8)
    start, end = 0.3, 0.55
    rv, ra = _reference_stage(ref, ctx, clip, sigmas, start, end, video, audio, seed=7)
    denoiser = Denoiser(ours, TextContexts(ctx["v"], ctx["a"], torch.ones(1, 16)), None, NO_GUIDANCE, NO_GUIDANCE)
    ov, oa = run_stage(denoiser, StageInputs(SIZE, sigmas, seed=7, channels=128, video_latent=clip[0],
                                             audio_latent=clip[1],
                                             conditioning=(TemporalRegionMask(start, end, video, audio),)))
    assert_close(ov, rv, "retake video")
    assert_close(oa, ra, "retake audio")
    # kept latent frames come out exactly as given (float32 Euler: a kept token's velocity is exactly 0)
    fv = video_frame_region(3, SIZE.fps, start, end) & video
    fa = audio_frame_region(18, start, end) & audio
    assert torch.equal(ov[:, :, ~fv], clip[0][:, :, ~fv])
    assert torch.equal(rv[:, :, ~fv], clip[0][:, :, ~fv])
    assert torch.equal(oa[:, :, ~fa], clip[1][:, :, ~fa])
    assert fv.any() == video
    assert fa.any() == audio
    if video:
        assert not torch.equal(ov[:, :, fv], clip[0][:, :, fv])
    if audio:
        assert not torch.equal(oa[:, :, fa], clip[1][:, :, fa])


# ------------------------------------------------------------------------------------------------- the recipe

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "t.safetensors", "2.3", dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    parts = {}
    for dtype in (torch.float32, torch.bfloat16):
        model = load_transformer(path, dtype=dtype)
        vd, ad = model.context_dim
        ctx = TextContexts(torch.randn(1, 8, vd, generator=g).to(dtype), torch.randn(1, 8, ad, generator=g).to(dtype),
                           torch.ones(1, 8))
        parts[dtype] = (ModelParts(model), (ctx, None))
    return parts


def _req(**kw):
    base = dict(width=64, height=64, frames=41, fps=24.0, steps=3, schedule="ltxv", decode=False,
                video_guidance=NO_GUIDANCE, audio_guidance=NO_GUIDANCE)
    base.update(kw)
    return Request(**base)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("sampler", ["euler", "euler_ancestral"])
@pytest.mark.parametrize(("video", "audio"), [(True, True), (True, False), (False, True)],
                         ids=["both", "video", "audio"])
def test_retake_keeps_everything_outside_the_range(tiny, dtype, sampler, video, audio):
    parts, ctx = tiny[torch.float32]
    clip = generate(parts, _req(seed=1), contexts=ctx)  # float32 latents (1, 128, 6, 2, 2), audio 43 frames
    parts, ctx = tiny[dtype]
    start, end = 0.5, 1.0
    out = retake(parts, _req(seed=2, sampler=sampler), clip.video_latent, clip.audio_latent, start_time=start,
                 end_time=end, regenerate_video=video, regenerate_audio=audio, contexts=ctx)
    assert out.video_latent.dtype == out.audio_latent.dtype == torch.float32  # the input's, not the model's
    assert out.video_latent.shape == clip.video_latent.shape
    assert out.audio_latent.shape == clip.audio_latent.shape
    fv = video_frame_region(6, 24.0, start, end) & video
    fa = audio_frame_region(clip.audio_latent.shape[2], start, end) & audio
    assert fv.sum() == (2 if video else 0)
    assert fa.sum() == (13 if audio else 0)
    assert torch.equal(out.video_latent[:, :, ~fv], clip.video_latent[:, :, ~fv])
    assert torch.equal(out.audio_latent[:, :, ~fa], clip.audio_latent[:, :, ~fa])
    if video:
        assert not torch.equal(out.video_latent[:, :, fv], clip.video_latent[:, :, fv])
    if audio:
        assert not torch.equal(out.audio_latent[:, :, fa], clip.audio_latent[:, :, fa])


def test_retake_without_sound_and_determinism(tiny):
    parts, ctx = tiny[torch.float32]
    clip = generate(parts, _req(seed=1), contexts=ctx)
    a = retake(parts, _req(seed=5), clip.video_latent, None, start_time=0.0, end_time=0.3, contexts=ctx)
    b = retake(parts, _req(seed=5), clip.video_latent, None, start_time=0.0, end_time=0.3, contexts=ctx)
    assert a.audio_latent is None
    assert torch.equal(a.video_latent, b.video_latent)
    assert torch.equal(a.video_latent[:, :, 2:], clip.video_latent[:, :, 2:])  # 0.3 s < pixel frame 9 = frame 2
    assert not torch.equal(a.video_latent[:, :, :2], clip.video_latent[:, :, :2])


BAD = [  # (start, end, regenerate_video, regenerate_audio, with audio, words)
    (0.5, 0.5, True, True, True, "must be after start_time"),
    (0.8, 0.2, True, True, True, "must be after start_time"),
    (-0.1, 0.5, True, True, True, "outside the clip"),
    (1.8, 1.9, True, True, True, "outside the clip"),  # the clip is 41 / 24 = 1.708 s
    (0.5, 1.8, True, True, True, "runs past the end"),
    (float("nan"), 0.5, True, True, True, "finite"),
    (0.0, float("inf"), True, True, True, "finite"),
    (0.0, 0.5, False, False, True, "nothing to regenerate"),
    (0.0, 0.5, False, True, False, "no audio latent"),
]


@pytest.mark.parametrize(("start", "end", "video", "audio", "with_audio", "words"), BAD)
def test_bad_ranges_are_refused_before_any_model_call(tiny, start, end, video, audio, with_audio, words):
    parts, ctx = tiny[torch.float32]
    v, a = torch.zeros(1, 128, 6, 2, 2), torch.zeros(1, 8, 43, 16) if with_audio else None
    calls = []
    with pytest.raises(InputError, match=words):
        retake(parts, _req(), v, a, start_time=start, end_time=end, regenerate_video=video, regenerate_audio=audio,
               contexts=ctx, cancel=lambda: calls.append(1) or False)
    assert calls == []


def test_bad_latents_and_settings_are_refused(tiny):
    parts, ctx = tiny[torch.float32]
    v, a = torch.zeros(1, 128, 6, 2, 2), torch.zeros(1, 8, 43, 16)
    cases = [
        (dict(video_latent=torch.zeros(128, 6, 2, 2)), "video latent must be"),
        (dict(audio_latent=torch.zeros(2, 8, 43, 16)), "audio latent must be"),
        (dict(video_latent=torch.zeros(1, 16, 6, 2, 2)), "16 channels"),
        (dict(req=_req(upscale=True)), "upscale off"),
        (dict(req=_req(reference_videos=(ReferenceVideoGuide(torch.zeros(9, 64, 64, 3, dtype=torch.uint8)),))),
         "reference videos"),
    ]
    for change, words in cases:
        kw = dict(req=_req(), video_latent=v, audio_latent=a)
        kw.update(change)
        with pytest.raises(InputError, match=words):
            retake(parts, kw["req"], kw["video_latent"], kw["audio_latent"], start_time=0.0, end_time=0.5,
                   contexts=ctx)
    assert clip_seconds(6, 24.0) == 41 / 24
    check_retake(v, a, 24.0, 0.0, 41 / 24)  # the whole clip is a valid range


# ------------------------------------------------------------------------------------------------------ CLI

@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    from rs_ltxv.ltx.tiny_parts import write_tiny_gemma

    d = tmp_path_factory.mktemp("models")
    return (str(write_tiny_checkpoint(d / "ltx.safetensors", "2.3", dtype=torch.float32, full=True)),
            str(write_tiny_gemma(d / "gemma")))


def test_cli_generate_then_retake(tiny_files, tmp_path):
    from safetensors.torch import load_file

    from rs_ltxv.__main__ import main

    ckpt, gemma = tiny_files
    common = ["--checkpoint", ckpt, "--text-encoder", gemma, "--steps", "2", "--dtype", "fp32", "--device", "cpu",
              "--stg-block", "1"]
    first = tmp_path / "first.mp4"
    assert main(["generate", *common, "--prompt", "a fox", "--width", "64", "--height", "64", "--frames", "25",
                 "--fps", "25", "-o", str(first)]) == 0
    again = tmp_path / "again.mp4"
    # --start / --end: argparse's abbreviations of --start-time / --end-time
    assert main(["retake", *common, "--prompt", "a wolf", "--from", str(first.with_suffix(".latents.safetensors")),
                 "--start", "0.3", "--end", "0.6", "--no-audio", "-o", str(again)]) == 0
    old = load_file(first.with_suffix(".latents.safetensors"))
    new = load_file(again.with_suffix(".latents.safetensors"))
    region = video_frame_region(4, 25.0, 0.3, 0.6)
    assert region.tolist() == [False, True, True, False]
    assert torch.equal(new["video"][:, :, ~region], old["video"][:, :, ~region])
    assert not torch.equal(new["video"][:, :, region], old["video"][:, :, region])
    assert torch.equal(new["audio"], old["audio"])  # --no-audio: the sound is kept
    assert again.stat().st_size > 0


# ------------------------------------------------------------------------------------------------------ node

@pytest.fixture(scope="module")
def node_inputs(tmp_path_factory):
    from rs_ltxv.ltx.loading import load_prompt_encoder, open_checkpoint
    from rs_ltxv.ltx.loading.audio import load_audio_vae
    from rs_ltxv.ltx.loading.video_vae import load_video_vae
    from rs_ltxv.ltx.pipeline.parts import VideoVAEAdapter
    from rs_ltxv.ltx.tiny_parts import write_tiny_gemma
    from rs_ltxv.nodes.comfy_model import LTXVModule
    from rs_ltxv.nodes.loaders import text_encode

    work = tmp_path_factory.mktemp("node")
    path = write_tiny_checkpoint(work / "tiny-ltx-2.3.safetensors", "2.3", dtype=torch.float32, full=True)
    ckpt = open_checkpoint(path)
    encoder = load_prompt_encoder(write_tiny_gemma(work / "tiny-gemma"), ckpt, dtype=torch.float32)
    return dict(model=LTXVModule(load_transformer(ckpt, dtype=torch.float32), source=path),
                vae=VideoVAEAdapter(load_video_vae(path, dtype=torch.float32), None),
                audio_vae=load_audio_vae(path, dtype=torch.float32),
                positive=text_encode(encoder, "A red fox runs through the snow, birds sing.")[0],
                negative=text_encode(encoder, "blurry")[0])


def test_node_retakes_the_range_and_decodes(node_inputs):
    from rs_ltxv.nodes.ltxv_generate import run_generate
    from rs_ltxv.nodes.ltxv_retake import run_retake

    small = dict(steps=2, seed=3, frame_rate=25.0, stg_blocks="1")
    latent, audio_latent, _, _ = run_generate(None, **node_inputs, **small, width=64, height=64, num_frames=25)
    new, new_audio, images, audio = run_retake(None, **node_inputs, **dict(small, seed=4, frame_rate=12.0),
                                               latent=latent, audio_latent=audio_latent, start_time=0.3,
                                               end_time=0.6, decode=True)
    region = video_frame_region(4, 25.0, 0.3, 0.6)  # the clip's own 25 fps wins over the widget's 12
    assert region.tolist() == [False, True, True, False]
    assert torch.equal(new["samples"][:, :, ~region], latent["samples"][:, :, ~region])
    assert not torch.equal(new["samples"][:, :, region], latent["samples"][:, :, region])
    fa = audio_frame_region(audio_latent["samples"].shape[2], 0.3, 0.6)
    assert torch.equal(new_audio["samples"][:, :, ~fa], audio_latent["samples"][:, :, ~fa])
    assert new["frame_rate"] == 25.0
    assert images.shape == (25, 64, 64, 3)
    assert audio["waveform"].shape[-1] > 0
    with pytest.raises(InputError, match="runs past the end"):
        run_retake(None, **node_inputs, **small, latent=latent, audio_latent=audio_latent, start_time=0.5,
                   end_time=2.0)
    with pytest.raises(InputError, match="no audio latent"):
        run_retake(None, **node_inputs, **small, latent=latent, start_time=0.5, end_time=0.9,
                   regenerate_video=False)
