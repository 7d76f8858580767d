"""LTX-2.5 through the library and the CLI on the tiny 2.5 set (``python -m rs_ltxv tiny DIR --set --version 2.5``:
the official split files, Gemma-4 bundled with its projection, both video decoders, the duration head): text → MP4
with sound, ``--frames auto``, both decoders, and the sampling defaults chosen by the checkpoint's version."""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import replace

import av
import pytest
import torch

from rs_ltxv.__main__ import main
from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.pipeline.defaults import (
    DEFAULT_AUDIO_GUIDANCE,
    DEFAULT_VIDEO_GUIDANCE,
    NO_GUIDANCE,
    markdown_table,
    model_defaults,
    resolve_request,
)
from rs_ltxv.ltx.pipeline.generate import generate
from rs_ltxv.ltx.pipeline.guidance import GuidanceParams
from rs_ltxv.ltx.pipeline.latents import VideoSize
from rs_ltxv.ltx.pipeline.parts import load_model_parts
from rs_ltxv.ltx.pipeline.request import Request
from rs_ltxv.ltx.pipeline.run_setup import begin_run
from rs_ltxv.ltx.tiny import (
    LTX25_AUDIO_VAE,
    LTX25_DURATION_HEAD,
    LTX25_GEMMA,
    LTX25_TRANSFORMER,
    LTX25_VIDEO_VAE,
    LTX25_VIDEO_VAE_CONV,
)

F32 = torch.float32


@pytest.fixture(scope="module")
def models(ltx25_set):
    """The tiny LTX-2.5 set, written by the CLI (``tiny DIR --set --version 2.5``)."""
    return ltx25_set


@pytest.fixture(scope="module")
def parts(models):
    """Library parts with the convolutional decoder and the duration head."""
    return load_model_parts(models[LTX25_TRANSFORMER.name], text_encoder=models[LTX25_GEMMA.name],
                            video_vae=models[LTX25_VIDEO_VAE_CONV.name], audio_vae=models[LTX25_AUDIO_VAE.name],
                            duration_head=models[LTX25_DURATION_HEAD.name], dtype=F32, decoder="vae")


def test_the_table_follows_ltx_pipelines():
    d25 = model_defaults("2.5.0", True)
    assert (d25.steps, d25.sampler, d25.upscale_sampler, d25.ancestral_noise_offset) == (8, "euler_ancestral",
                                                                                         "euler", 10000)
    assert (d25.video_guidance, d25.audio_guidance) == (NO_GUIDANCE, NO_GUIDANCE)
    assert (d25.image_crf, d25.fps, d25.decoder, d25.auto_frames) == (18, 24.0, "diffusion", True)
    full25 = model_defaults("2.5", False)
    assert (full25.steps, full25.sampler, full25.image_crf) == (30, "euler", 18)
    assert full25.video_guidance is DEFAULT_VIDEO_GUIDANCE
    for version in ("2.0", "2.3"):  # unchanged from before LTX-2.5
        for distilled in (False, True):
            d = model_defaults(version, distilled)
            assert (d.steps, d.sampler, d.image_crf, d.decoder, d.auto_frames) == (30, "euler", 33, "vae", False)
    assert model_defaults("2.7.1", True).generation == "2.5"  # a newer version gets the closest known row
    assert model_defaults("", False).generation == "2.0"
    assert "| LTX-2.5 distilled | 8 (distilled σ) | euler_ancestral" in markdown_table()


def test_readme_shows_the_table():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    begin = "<!-- model-defaults:begin (generated from ltx/pipeline/defaults.py; do not edit) -->"
    shown = readme[readme.index(begin) + len(begin): readme.index("<!-- model-defaults:end -->")]
    assert shown.strip() == markdown_table().strip(), "README defaults table is stale: regenerate it"


def test_unset_settings_take_the_model_defaults_and_given_ones_win():
    d25 = model_defaults("2.5", True)
    resolved = resolve_request(Request(prompt="x"), d25)
    assert (resolved.steps, resolved.sampler, resolved.upscale_sampler, resolved.image_crf) == (
        8, "euler_ancestral", "euler", 18)
    assert (resolved.video_guidance, resolved.audio_guidance) == (NO_GUIDANCE, NO_GUIDANCE)
    assert resolve_request(resolved, d25) == resolved  # idempotent
    given = GuidanceParams(cfg=3.0, stg=1.0, stg_blocks=(28,), rescale=0.7, modality=3.0)  # equal, not the default
    assert given == DEFAULT_VIDEO_GUIDANCE
    mine = resolve_request(Request(prompt="x", steps=4, sampler="euler", image_crf=30, video_guidance=given,
                                   audio_guidance=replace(DEFAULT_AUDIO_GUIDANCE, cfg=5.0)), d25)
    assert (mine.steps, mine.sampler, mine.upscale_sampler, mine.image_crf) == (4, "euler", "euler", 30)
    assert mine.video_guidance is given
    assert mine.audio_guidance.cfg == 5.0
    old = resolve_request(Request(prompt="x"), model_defaults("2.3", True))
    assert (old.steps, old.sampler, old.image_crf, old.video_guidance) == (30, "euler", 33, DEFAULT_VIDEO_GUIDANCE)


def test_ancestral_noise_is_seeded_as_ltx_pipelines(parts):
    req = resolve_request(Request(prompt="a fox", width=64, height=64, frames=9, seed=5),
                          model_defaults("2.5", True))
    run = begin_run(parts, req, VideoSize(9, 64, 64, 24.0), contexts=None, progress=None)
    stage1 = run.stage_inputs(req, run.stage1, run.sigmas)
    refine = run.stage_inputs(req, run.stage1, run.sigmas, refine=True)
    assert (stage1.sampler, stage1.sampler_options.seed) == ("euler_ancestral", 5 + 10000)
    assert (refine.sampler, refine.sampler_options.seed) == ("euler", 5 + 1)


def test_library_text_to_video_with_sound_and_predicted_length(parts):
    ticks = []
    result = generate(parts, Request(prompt="A red fox runs through the snow, birds sing.", width=64, height=64,
                                     frames=0, fps=6.0), progress=lambda d, t: ticks.append(t))
    frames = result.frames.shape[1]
    assert frames % 8 == 1
    assert 6 <= frames <= 20 * 6 + 1  # the duration head's 1…20 s at 6 fps
    assert result.video_latent.shape[2] == 1 + (frames - 1) // 8
    assert result.waveform is not None
    assert result.waveform.shape[-1] > 0
    assert set(ticks) == {8}  # distilled LTX-2.5: the 8 distilled steps


def test_defaults_equal_the_same_settings_given_explicitly(parts):
    base = Request(prompt="a fox", width=64, height=64, frames=9, fps=8.0, seed=2, decode=False)
    by_model = generate(parts, base)
    explicit = generate(parts, replace(base, steps=8, sampler="euler_ancestral", video_guidance=NO_GUIDANCE,
                                       audio_guidance=NO_GUIDANCE))
    assert torch.equal(by_model.video_latent, explicit.video_latent)
    euler = generate(parts, replace(base, sampler="euler"))
    assert not torch.equal(by_model.video_latent, euler.video_latent)


def test_frames_auto_without_a_duration_head_is_refused_before_sampling(parts):
    with pytest.raises(InputError, match="duration head"):
        generate(replace(parts, duration_head=None), Request(prompt="a fox", width=64, height=64, frames=0))


def test_frames_auto_with_audio_takes_its_length_not_the_duration_heads(parts):
    """Audio to video with frames 0: 8k + 1 frames covering the audio (1 s at 8 fps: 9 frames), the user's audio
    kept whole; no duration head needed (it would cut the audio)."""
    wave = torch.sin(torch.linspace(0, 2 * math.pi * 440, 16000))[None]
    result = generate(replace(parts, duration_head=None), Request(prompt="a fox", width=64, height=64, frames=0,
                                                                  fps=8.0, steps=1, audio=wave,
                                                                  audio_sample_rate=16000))
    assert result.frames.shape[1] == 9
    assert result.waveform.shape[-1] == round(9 / 8 * 16000)
    assert torch.equal(result.waveform[0, :, :16000], wave)


def test_frames_auto_on_an_ltx23_model_asks_for_a_number(parts):
    with pytest.raises(InputError, match="give a number of frames"):
        generate(replace(parts, transformer=_Versioned("2.3")), Request(prompt="a fox", width=64, height=64,
                                                                        frames=0))


def _cli(models, tmp_path, *extra):
    out = tmp_path / "out.mp4"
    argv = ["generate", "--checkpoint", str(models[LTX25_TRANSFORMER.name]), "--text-encoder",
            str(models[LTX25_GEMMA.name]), "--audio-vae", str(models[LTX25_AUDIO_VAE.name]), "--prompt",
            "A red fox runs through the snow, birds sing.", "--width", "64", "--height", "64", "--dtype", "fp32",
            "--device", "cpu", "-o", str(out), *extra]
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out, err.getvalue()


def _streams(path):
    with av.open(str(path)) as container:
        kinds = {s.type for s in container.streams}
        frames = sum(1 for _ in container.decode(video=0))
    return kinds, frames


def test_cli_frames_auto_with_the_diffusion_decoder(models, tmp_path):
    code, out, err = _cli(models, tmp_path, "--vae", str(models[LTX25_VIDEO_VAE.name]), "--duration-head",
                          str(models[LTX25_DURATION_HEAD.name]), "--frames", "auto", "--fps", "4", "--steps", "2")
    assert code == 0, err
    kinds, frames = _streams(out)
    assert kinds == {"video", "audio"}
    assert frames % 8 == 1
    assert "defaults: LTX-2.5 distilled" in err


def test_cli_convolutional_decoder_and_given_frames(models, tmp_path):
    code, out, err = _cli(models, tmp_path, "--vae", str(models[LTX25_VIDEO_VAE_CONV.name]), "--decoder", "vae",
                          "--frames", "9", "--steps", "2")
    assert code == 0, err
    assert _streams(out) == ({"video", "audio"}, 9)


def test_cli_refuses_what_the_files_lack_before_loading(models, tmp_path):
    code, _, err = _cli(models, tmp_path, "--vae", str(models[LTX25_VIDEO_VAE_CONV.name]), "--frames", "auto")
    assert code == 2
    assert "duration head" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = _cli(models, tmp_path, "--vae", str(models[LTX25_VIDEO_VAE_CONV.name]), "--decoder", "diffusion",
                        "--frames", "9")
    assert code == 2
    assert "ltx-2.5-video-vae-bf16" in err


def test_demo_runs_the_ltx25_architecture(tmp_path):
    from rs_ltxv.ltx.pipeline.cli import run_demo

    out = run_demo(tmp_path / "demo.mp4", seconds=0.4, steps=2, width=64, height=64, fps=20.0, version="2.5")
    assert _streams(out) == ({"video", "audio"}, 9)
    assert (tmp_path / "tiny-models" / "tiny-gemma-4.safetensors").is_file()


def test_image_guides_span_one_pixel_frame_on_ltx25_only(parts):
    """ltx-core 1.2.0 (the 2.5 reference) narrows a single-image guide's tokens to ``[t, t + 1)``; 2.0 / 2.3 keep
    their latent frame's span (ltx-core 1.0.0, the parity reference of those models)."""
    from rs_ltxv.ltx.pipeline.common import image_conditions
    from rs_ltxv.ltx.pipeline.conditioning import KeyframeGuide
    from rs_ltxv.ltx.pipeline.request import ImageGuide

    image = torch.randint(0, 256, (64, 64, 3), dtype=torch.uint8).numpy()
    req = Request(prompt="a fox", width=64, height=64, frames=17, fps=8.0, images=[ImageGuide(image, frame=-1)],
                  image_crf=0)
    size = VideoSize(frames=17, height=64, width=64, fps=8.0)
    (guide,) = image_conditions(parts, req, size, F32, "cpu")
    assert isinstance(guide, KeyframeGuide)
    assert guide.num_pixel_frames == 1
    older = replace(parts, transformer=_Versioned("2.3"))
    (old_guide,) = image_conditions(older, req, size, F32, "cpu")
    assert old_guide.num_pixel_frames is None


class _Versioned:
    """Stands in for a transformer whose config says ``version`` (only the version is read)."""

    def __init__(self, version: str) -> None:
        from rs_ltxv.ltx.config import Version

        self.config = type("Config", (), {"version": Version(version)})()
