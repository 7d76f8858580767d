"""LTX-2.5 files that do not fit the run are refused with the right message before any weight is read, on the command
line and in ``load_model_parts``: a text encoder that is not the checkpoint's Gemma (or no Gemma at all), an upsampler
that is not the spatial ×2 one, a duration head with an LTX-2 / 2.3 checkpoint; the length of an audio-to-video clip
comes from the audio; the ``defaults:`` line names only what differs from LTX-2.3's defaults."""

from __future__ import annotations

import argparse
import contextlib
import io
import math

import av
import numpy as np
import pytest
import torch

from rs_ltxv.__main__ import main
from rs_ltxv.ltx.errors import CheckpointError, InputError
from rs_ltxv.ltx.tiny import (
    LTX25_AUDIO_VAE,
    LTX25_DURATION_HEAD,
    LTX25_GEMMA,
    LTX25_TRANSFORMER,
    LTX25_VIDEO_VAE,
    LTX25_VIDEO_VAE_CONV,
    write_tiny_checkpoint,
)

SPATIAL_25 = "ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors"


def _write_tone(path, seconds: float, rate: int = 16000):
    wave = np.sin(np.linspace(0, 2 * math.pi * 440 * seconds, int(rate * seconds)))[None].astype(np.float32)
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray((wave * 32767).astype(np.int16), format="s16", layout="mono")
        frame.sample_rate = rate
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def files(ltx25_set, tmp_path_factory):
    """The tiny LTX-2.5 set, a full tiny LTX-2.5 dev checkpoint, a tiny LTX-2.3 one, a Gemma-3 file, a temporal
    upsampler and a 1 s tone."""
    from rs_ltxv.ltx.tiny_parts import write_tiny_gemma_file, write_tiny_temporal_upsampler

    d = tmp_path_factory.mktemp("ltx25-checks")
    out = dict(ltx25_set)
    out["dev25"] = write_tiny_checkpoint(d / "tiny-ltx-2.5-dev.safetensors", "2.5", dtype=torch.float32, full=True)
    out["ckpt23"] = write_tiny_checkpoint(d / "ltx-2.3-tiny.safetensors", "2.3", dtype=torch.float32, full=True)
    out["gemma3"] = write_tiny_gemma_file(d / "gemma_3_12B_it.safetensors")
    out["temporal"] = write_tiny_temporal_upsampler(d / "ltx-2.5-latent-temporal-upscaler-x2-bf16-1.0.safetensors")
    out["tone"] = _write_tone(d / "tone.wav", 1.0)
    return {k: str(v) for k, v in out.items()}


def _run(files, tmp_path, *extra, checkpoint=None, text_encoder=None):
    argv = ["generate", "--checkpoint", checkpoint or files[LTX25_TRANSFORMER.name], "--text-encoder",
            text_encoder or files[LTX25_GEMMA.name], "--prompt", "a fox", "--width", "64", "--height", "64",
            "--dtype", "fp32", "--device", "cpu", "-o", str(tmp_path / "out.mp4"), *extra]
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def _refused(code, err, *words, absent=()):
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err  # one error line, before anything ran
    for word in words:
        assert word in err
    for word in absent:
        assert word not in err


@pytest.fixture
def no_loading(monkeypatch):
    """Fail the test if ``load_model_parts`` reaches the transformer's weights."""
    def refuse(*_a, **_k):
        raise AssertionError("the transformer was loaded before the files were checked")

    monkeypatch.setattr("rs_ltxv.ltx.pipeline.parts.load_transformer", refuse)


def test_a_gemma3_file_with_the_25_transformer_is_named_before_the_parts(files, tmp_path):
    code, err = _run(files, tmp_path, "--vae", files[LTX25_VIDEO_VAE.name], "--audio-vae",
                     files[LTX25_AUDIO_VAE.name], "--frames", "9", text_encoder=files["gemma3"])
    _refused(code, err, "--text-encoder gemma_3_12B_it.safetensors is a Gemma-3 text encoder", "gemma4-12b",
             absent=("connectors",))


def test_a_file_that_is_no_gemma_says_what_it_holds(files, tmp_path, no_loading):
    vae = files[LTX25_VIDEO_VAE.name]
    code, err = _run(files, tmp_path, "--vae", vae, "--audio-vae", files[LTX25_AUDIO_VAE.name], "--frames", "9",
                     text_encoder=vae)
    _refused(code, err, "is not a Gemma text encoder: it holds a video VAE", "gemma4-12b", absent=("connectors",))
    code, err = _run(files, tmp_path, "--frames", "9", "--stg", "0", checkpoint=files["ckpt23"], text_encoder=vae)
    _refused(code, err, "is not a Gemma text encoder", "gemma_3_12B_it")
    from rs_ltxv.ltx.pipeline.parts import load_model_parts

    with pytest.raises(CheckpointError, match="not a Gemma text encoder: it holds a video VAE"):
        load_model_parts(files[LTX25_TRANSFORMER.name], text_encoder=vae, video_vae=vae, dtype=torch.float32)
    with pytest.raises(CheckpointError, match="is a Gemma-3 text encoder"):
        load_model_parts(files[LTX25_TRANSFORMER.name], text_encoder=files["gemma3"], video_vae=vae)


def test_the_temporal_upsampler_is_refused_before_loading_and_the_hint_fits_the_version(files, tmp_path,
                                                                                       no_loading):
    from rs_ltxv.ltx.loading.upsampler import spatial_x2_file
    from rs_ltxv.ltx.pipeline.parts import load_model_parts

    base = ("--vae", files[LTX25_VIDEO_VAE.name], "--audio-vae", files[LTX25_AUDIO_VAE.name], "--frames", "9")
    code, err = _run(files, tmp_path, *base, "--upsampler", files["temporal"])
    _refused(code, err, "temporal ×2", "spatial ×2", SPATIAL_25, absent=("ltx-2.3",))
    with pytest.raises(InputError, match="temporal ×2"):
        load_model_parts(files[LTX25_TRANSFORMER.name], video_vae=files[LTX25_VIDEO_VAE.name],
                         upsampler=files["temporal"])
    assert spatial_x2_file("2.3") == "ltx-2.3-spatial-upscaler-x2-1.1.safetensors"
    assert spatial_x2_file("2.5.0") == SPATIAL_25
    assert spatial_x2_file("2.0").startswith("ltx-2-spatial")


def test_a_vae_given_as_upsampler_says_what_it_is_in_one_sentence(files, tmp_path):
    code, err = _run(files, tmp_path, "--vae", files[LTX25_VIDEO_VAE.name], "--audio-vae",
                     files[LTX25_AUDIO_VAE.name], "--frames", "9", "--upsampler", files[LTX25_VIDEO_VAE.name])
    _refused(code, err, "--upsampler ltx-2.5-video-vae-bf16.safetensors is not a latent upsampler: it holds a video "
             "VAE", SPATIAL_25, absent=("patchify_proj", "LTX-2 / LTX-2.3 checkpoint"))


def test_the_duration_head_is_ltx25_only(files, tmp_path, no_loading):
    from rs_ltxv.ltx.pipeline.parts import load_model_parts

    ckpt23 = files["ckpt23"]
    code, err = _run(files, tmp_path, "--frames", "auto", checkpoint=ckpt23, text_encoder=files["gemma3"])
    _refused(code, err, "LTX-2.3 checkpoint", "give a number of frames", absent=("--duration-head",))
    code, err = _run(files, tmp_path, "--frames", "9", "--duration-head", files[LTX25_DURATION_HEAD.name],
                     checkpoint=ckpt23, text_encoder=files["gemma3"])
    _refused(code, err, "--duration-head", "is LTX-2.5's", "--frames N")
    with pytest.raises(InputError, match=r"duration head is LTX-2\.5's"):
        load_model_parts(ckpt23, duration_head=files[LTX25_DURATION_HEAD.name])


def test_missing_vae_names_the_25_file(files, tmp_path):
    code, err = _run(files, tmp_path, "--audio-vae", files[LTX25_AUDIO_VAE.name], "--frames", "9")
    _refused(code, err, "the video VAE is missing", "ltx-2.5-video-vae-bf16.safetensors", absent=("LTX2_video",))


def test_frames_auto_with_audio_takes_the_audios_length(files, tmp_path):
    """1 s of audio at 8 fps: 9 frames (1.125 s) cover it; the duration head is not asked (it would cut it)."""
    code, err = _run(files, tmp_path, "--vae", files[LTX25_VIDEO_VAE_CONV.name], "--decoder", "vae", "--audio-vae",
                     files[LTX25_AUDIO_VAE.name], "--duration-head", files[LTX25_DURATION_HEAD.name], "--audio",
                     files["tone"], "--fps", "8", "--steps", "1")
    assert code == 0, err
    assert "length: 9 frames (1.12 s at 8 fps) from --audio (1.00 s)" in err
    assert "duration head:" not in err
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 9


def test_audio_frames_cover_the_audio_up_to_20_s():
    from rs_ltxv.ltx.pipeline.defaults import audio_frames

    assert audio_frames(3 * 16000, 16000, 24.0) == (73, False)  # 65 frames (2.7 s) would not cover 3 s
    assert audio_frames(16000, 16000, 8.0) == (9, False)  # exactly 8 frames of sound: 9 cover it
    assert audio_frames(30 * 48000, 48000, 24.0) == (481, True)  # 20 s at most: cut


def _defaults_note(files, *argv, checkpoint):
    from rs_ltxv.ltx.loading import open_checkpoint
    from rs_ltxv.ltx.pipeline.cli import add_generate_arguments, prepare_request
    from rs_ltxv.ltx.pipeline.cli_defaults import apply_model_defaults

    parser = argparse.ArgumentParser()
    add_generate_arguments(parser)
    args = parser.parse_args(["--checkpoint", checkpoint, "--text-encoder", files[LTX25_GEMMA.name], "--prompt", "x",
                              "--width", "64", "--height", "64", "--device", "cpu", *argv])
    req, _ = prepare_request(args)
    apply_model_defaults(args, req, open_checkpoint(checkpoint))
    return args.defaults_note


def test_the_defaults_line_names_only_what_differs_from_ltx23(files, tmp_path):
    png = tmp_path / "img.png"
    with av.open(str(png), "w", format="image2") as out:
        stream = out.add_stream("png")
        stream.height, stream.width, stream.pix_fmt = 64, 64, "rgb24"
        out.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")))
        out.mux(stream.encode())
    conv = ("--vae", files[LTX25_VIDEO_VAE_CONV.name])
    full = files["dev25"]
    assert _defaults_note(files, *conv, "--frames", "9", "--steps", "4", checkpoint=full) is None
    assert _defaults_note(files, *conv, "--frames", "9", "--image", str(png), checkpoint=full) == (
        "defaults: LTX-2.5 full: image CRF 18")
    assert _defaults_note(files, "--vae", files[LTX25_VIDEO_VAE.name], "--frames", "9",
                          checkpoint=full) == "defaults: LTX-2.5 full: diffusion decoder"
    distilled = _defaults_note(files, *conv, "--duration-head", files[LTX25_DURATION_HEAD.name],
                               checkpoint=files[LTX25_TRANSFORMER.name])
    assert distilled == ("defaults: LTX-2.5 distilled: 8 steps, euler_ancestral, no guidance, length from the "
                         "duration head")


def test_stg_block_help_says_28_for_every_model():
    from rs_ltxv.ltx.pipeline.cli import add_generate_arguments

    parser = argparse.ArgumentParser()
    add_generate_arguments(parser)
    text = " ".join(parser.format_help().split())
    assert "default 28 for every model" in text
    assert "29 for LTX-2)" not in text


def test_a_missing_conv_decoder_names_a_vae_with_the_same_latent_space(files):
    from rs_ltxv.ltx.pipeline.decoders import choose_decoder

    with pytest.raises(InputError) as exc:
        choose_decoder(files[LTX25_VIDEO_VAE.name], "vae")
    assert "LTX-2.3's video VAE: LTX-2.5 keeps its latent space" in str(exc.value)
    assert "any LTX-2" not in str(exc.value)
