"""End to end on tiny random models of the real architecture: ``demo`` and ``generate`` (with an image, an audio
file, and ``--extend-from``) write playable MP4s with sound, checked with PyAV."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rs_ltxv.__main__ import main
from rs_ltxv.ltx.pipeline.cli import run_demo
from rs_ltxv.ltx.pipeline.media import write_mp4


def _probe(path):
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        frames = sum(1 for _ in c.decode(v))
        return dict(w=v.codec_context.width, h=v.codec_context.height, fps=float(v.average_rate), frames=frames,
                    rate=a.rate, channels=a.channels, seconds=float(a.duration * a.time_base))


def _dominant_hz(path) -> float:
    """The strongest frequency of the MP4's sound (mono mix), in Hz."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        chunks = [f.to_ndarray().reshape(f.layout.nb_channels if f.format.is_planar else 1, -1).mean(axis=0)
                  for f in c.decode(stream)]
        rate = stream.rate
    wave = np.concatenate(chunks)
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


def test_demo_writes_video_with_sound(tmp_path):
    out = run_demo(tmp_path / "demo.mp4", seconds=1.0, steps=3, width=192, height=128)
    info = _probe(out)
    assert (info["w"], info["h"], info["fps"], info["frames"]) == (192, 128, 24.0, 25)
    assert info["rate"] == 24000
    assert info["channels"] == 2
    assert abs(info["seconds"] - 25 / 24) < 0.1
    latents = load_file(str(out.with_suffix(".latents.safetensors")))
    assert latents["video"].shape == (1, 16, 4, 4, 6)
    assert latents["audio"].shape[2] == round(25 / 24 * 25)


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    from rs_ltxv.ltx.tiny import write_tiny_checkpoint
    from rs_ltxv.ltx.tiny_parts import write_tiny_gemma

    d = tmp_path_factory.mktemp("models")
    return (write_tiny_checkpoint(d / "ltx.safetensors", "2.3", dtype=torch.float32, full=True),
            str(write_tiny_gemma(d / "gemma")))


def test_generate_with_image_and_audio_then_extend(tiny_files, tmp_path):
    ckpt, gemma = tiny_files
    image = tmp_path / "first.png"
    with av.open(str(image), "w", format="image2") as c:
        s = c.add_stream("png")
        s.width, s.height, s.pix_fmt = 100, 80, "rgb24"
        arr = np.random.default_rng(0).integers(0, 255, (80, 100, 3), dtype=np.uint8)
        c.mux(s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")))
        c.mux(s.encode())
    sr = 44100
    wav = 0.2 * torch.sin(2 * torch.pi * 330 * torch.arange(sr) / sr).repeat(2, 1)
    audio_file = write_mp4(tmp_path / "tone.mp4", torch.zeros(2, 16, 16, 3, dtype=torch.uint8), 2.0, audio=wav,
                           sample_rate=sr)
    common = ["--checkpoint", ckpt, "--text-encoder", gemma, "--width", "128", "--height", "64", "--fps", "24",
              "--steps", "2", "--dtype", "fp32", "--device", "cpu", "--stg-block", "1"]
    first = tmp_path / "first.mp4"
    assert main(["generate", *common, "--prompt", "a fox", "--frames", "17", "--image", f"{image}:0:1.0",
                 "--audio", audio_file, "-o", str(first)]) == 0
    info = _probe(first)
    assert (info["w"], info["h"], info["frames"]) == (128, 64, 17)
    assert info["rate"] == sr  # audio to video: the user's own sound, at its own rate (as ltx-pipelines' A2Vid)
    assert abs(_dominant_hz(first) - 330) < 15  # the 330 Hz input tone survives
    longer = tmp_path / "longer.mp4"
    ext = [a for a in common if a not in ("--width", "--height", "128", "64")]  # the clip's size is kept
    assert main(["generate", *ext, "--prompt", "the fox keeps running", "--extend-from",
                 str(first.with_suffix(".latents.safetensors")), "--new-frames", "16", "--overlap-frames", "8",
                 "-o", str(longer)]) == 0
    info = _probe(longer)
    assert info["frames"] == 17 + 16
    assert abs(info["seconds"] - 33 / 24) < 0.1


def test_generate_reports_bad_input_cleanly(tiny_files, tmp_path, capsys):
    ckpt, gemma = tiny_files
    code = main(["generate", "--checkpoint", ckpt, "--text-encoder", gemma, "--prompt", "x", "--frames", "20",
                 "--width", "128", "--height", "64", "--dtype", "fp32", "--device", "cpu", "-o",
                 str(tmp_path / "x.mp4")])
    assert code == 2
    assert "8·k + 1" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()


@pytest.fixture(scope="module")
def split_files(tiny_files, tmp_path_factory):
    """The tiny checkpoint as a GGUF transformer (+ connectors) and separate video / audio VAE files, as ComfyUI
    users have them."""
    from reference.comfyui import _split_as_gguf_and_vae_files

    models = tmp_path_factory.mktemp("split")
    (models / "vae").mkdir()
    _split_as_gguf_and_vae_files(tiny_files[0], models)
    return {"gguf": str(models / "unet" / "ltx-2.3-22b-distilled-Q8_0.gguf"),
            "vae": str(models / "vae" / "LTX23_video_vae_bf16.safetensors"),
            "audio_vae": str(models / "vae" / "LTX23_audio_vae_bf16.safetensors")}


@pytest.mark.parametrize(("extra", "error"), [
    ([], "video VAE is missing"),
    (["--vae", "{vae}"], "audio VAE is missing"),
    (["--vae", "{audio_vae}"], "--vae LTX23_audio_vae_bf16.safetensors holds audio_vae, vocoder, not the vae"),
    (["--vae", "{vae}", "--audio-vae", "{vae}"], "--audio-vae LTX23_video_vae_bf16.safetensors holds vae"),
    (["--components", "{gguf}"], "--components ltx-2.3-22b-distilled-Q8_0.gguf holds"),
    (["--vae", "{vae}", "--audio-vae", "{audio_vae}"], None),
    (["--components", "{full}"], None),
])
def test_gguf_checkpoint_with_separate_parts(tiny_files, split_files, tmp_path, capsys, extra, error):
    names = {**split_files, "full": tiny_files[0]}
    out = tmp_path / "gguf.mp4"
    code = main(["generate", "--checkpoint", split_files["gguf"], "--text-encoder", tiny_files[1], "--prompt", "a fox",
                 "--width", "64", "--height", "64", "--frames", "9", "--steps", "1", "--dtype", "fp32", "--device",
                 "cpu", "--stg-block", "1", "-o", str(out), *[a.format(**names) for a in extra]])
    err = capsys.readouterr().err
    if error is None:
        assert code == 0, err
        assert _probe(out)["frames"] == 9
    else:
        assert code == 2
        assert error in err
        assert len(err.strip().splitlines()) == 1
        assert not out.exists()


def test_extend_keeps_the_clips_frame_rate(tiny_files, tmp_path):
    """``--extend-from`` without ``--fps`` continues at the rate the clip was made with (from its latents file)."""
    ckpt, gemma = tiny_files
    common = ["--checkpoint", ckpt, "--text-encoder", gemma, "--steps", "1", "--dtype", "fp32", "--device", "cpu",
              "--stg-block", "1"]
    first = tmp_path / "first.mp4"
    assert main(["generate", *common, "--prompt", "a fox", "--width", "64", "--height", "64", "--frames", "17",
                 "--fps", "30", "-o", str(first)]) == 0
    longer = tmp_path / "longer.mp4"
    assert main(["generate", *common, "--prompt", "on", "--extend-from", str(first.with_suffix(".latents.safetensors")),
                 "--new-frames", "8", "--overlap-frames", "8", "-o", str(longer)]) == 0
    assert _probe(longer)["fps"] == 30.0
    assert _probe(longer)["frames"] == 17 + 8
