"""The nodes' pure parts: ComfyUI data ↔ library conversions and node inputs → Request. No ComfyUI needed."""

from __future__ import annotations

import pytest
import torch

from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.text.processor import TextContexts
from rs_ltxv.nodes import convert, specs


def _image(h=40, w=60, value=0.5):
    return torch.full((2, h, w, 3), value)


def test_defaults_become_the_request():
    req = convert.build_request(specs.GENERATE, {})
    assert (req.width, req.height, req.frames, req.fps, req.steps, req.seed) == (768, 512, 97, 25.0, 20, 0)
    v, a = req.video_guidance, req.audio_guidance
    assert (v.cfg, v.stg, v.stg_blocks, v.modality, v.rescale) == (3.0, 1.0, (28,), 3.0, 0.7)
    assert (a.cfg, a.stg, a.stg_blocks) == (7.0, 1.0, (28,))
    assert (req.max_shift, req.base_shift, req.sampler, req.attention_mode, req.ffn_chunks) == (
        2.05, 0.95, "euler_ancestral", "auto", 1)
    assert (req.upscale, req.upscale_steps, req.upscale_guidance.cfg, req.upscale_denoise) == (False, 10, 3.0, 0.5)
    assert (req.decode, req.image_crf, req.images, req.audio, req.sigmas) == (False, 35, (), None, None)


def test_widget_values_reach_the_request():
    req = convert.build_request(specs.GENERATE, dict(
        width=512, height=320, num_frames=25, steps=8, cfg=1.0, seed=7, frame_rate=24.0, attention_mode="default",
        ffn_chunks=8, stg_scale=0.0, stg_blocks="3, 5", audio_cfg=1.0, modality_scale=1.0, rescale=0.0,
        upscale=True, upscale_steps=4, upscale_cfg=1.0, upscale_denoise=0.6, decode=True, sampler_name="euler",
        max_shift=1.5, base_shift=0.5, sigmas=torch.tensor([1.0, 0.5, 0.0])))
    assert (req.width, req.height, req.frames, req.steps, req.seed, req.fps) == (512, 320, 25, 8, 7, 24.0)
    assert (req.attention_mode, req.ffn_chunks, req.sampler, req.max_shift, req.base_shift) == (
        "sdpa", 8, "euler", 1.5, 0.5)
    assert req.video_guidance.stg_blocks == (3, 5)
    assert not req.video_guidance.needs_uncond
    assert req.sigmas == (1.0, 0.5, 0.0)
    assert req.upscale
    assert req.decode
    assert req.upscale_denoise == 0.6


def test_guide_images_land_on_first_middle_last():
    req = convert.build_request(specs.GENERATE, dict(
        num_frames=121, first_image=_image(value=0.0), middle_image=_image(value=0.5), last_image=_image(value=1.0),
        first_strength=1.0, middle_strength=0.5, last_strength=0.25, image_strength=0.8))
    frames = [(g.frame, g.strength, g.attention) for g in req.images]
    assert frames == [(0, 0.8, 1.0), (56, 0.8, 0.5), (-1, 0.8, 0.25)]
    first, middle, last = (g.image for g in req.images)
    assert first.shape == (40, 60, 3)
    assert first.dtype.name == "uint8"
    assert (first.max(), middle.max(), last.min()) == (0, 128, 255)
    assert convert.middle_frame(97) == 48
    assert convert.middle_frame(9) == 0


def test_extend_request_only_has_the_last_guide():
    req = convert.build_request(specs.EXTEND, dict(last_image=_image(), frame_rate=24.0))
    assert [g.frame for g in req.images] == [-1]
    assert req.fps == 24.0
    assert req.frames == 121  # frames unused


@pytest.mark.parametrize(("name", "message"), [("guider", "GUIDER cannot drive RS LTXV"),
                                               ("sampler", "no sampler_function")])
def test_unusable_overrides_say_why(name, message):
    with pytest.raises(InputError, match=message):
        convert.build_request(specs.GENERATE, {name: object()})


def test_bad_stg_blocks_and_sigmas():
    with pytest.raises(InputError, match="stg_blocks"):
        convert.build_request(specs.GENERATE, {"stg_blocks": "28, last"})
    with pytest.raises(InputError, match="sigmas"):
        convert.build_request(specs.GENERATE, {"sigmas": torch.tensor([1.0])})
    assert convert.parse_blocks(" ") == ()


def test_audio_in_and_out():
    wave = torch.randn(1, 2, 4410)  # 0.1 s: longer than the mel front end's minimum
    req = convert.build_request(specs.GENERATE, {"audio": {"waveform": wave, "sample_rate": 44100}})
    assert torch.equal(req.audio, wave[0])
    assert req.audio_sample_rate == 44100
    with pytest.raises(InputError, match="audio"):
        convert.audio_to_waveform({"waveform": torch.zeros(2, 10)})
    out = convert.waveform_to_audio(torch.ones(1, 2, 5), 48000)
    assert out["waveform"].shape == (1, 2, 5)
    assert out["sample_rate"] == 48000
    assert convert.waveform_to_audio(None, None)["waveform"].abs().sum() == 0


def test_frames_to_image_and_latents():
    frames = torch.randint(0, 256, (2, 3, 8, 16, 3), dtype=torch.uint8)
    image = convert.frames_to_image(frames)
    assert image.shape == (6, 8, 16, 3)
    assert image.dtype == torch.float32
    assert torch.allclose(image[4], frames[1, 1].float() / 255)
    latent = convert.video_latent_dict(torch.zeros(1, 128, 4, 2, 3), 24.0)
    assert convert.video_latent_from(latent).shape == (1, 128, 4, 2, 3)
    assert latent["frame_rate"] == 24.0
    with pytest.raises(InputError, match="video LATENT"):
        convert.video_latent_from({"samples": torch.zeros(1, 8, 4, 16)})
    assert convert.audio_latent_from(convert.audio_latent_dict(None)) is None
    audio = torch.zeros(1, 8, 5, 16)
    assert convert.audio_latent_from(convert.audio_latent_dict(audio)) is not None
    with pytest.raises(InputError):
        convert.image_to_uint8(torch.zeros(3, 4, 5))


def test_conditioning_round_trip_and_core_conditioning_is_refused():
    ctx = TextContexts(video=torch.randn(1, 8, 4), audio=torch.randn(1, 8, 2), mask=torch.ones(1, 8))
    back = convert.conditioning_to_contexts(convert.contexts_to_conditioning(ctx), "positive")
    assert back.video is ctx.video
    assert back.audio is ctx.audio
    assert back.mask is ctx.mask
    core = [[torch.randn(1, 7, 3840), {"pooled_output": None}]]
    with pytest.raises(InputError, match="RS LTXV Text Encode"):
        convert.conditioning_to_contexts(core, "positive")
    with pytest.raises(InputError, match="expected CONDITIONING"):
        convert.conditioning_to_contexts(None, "negative")
