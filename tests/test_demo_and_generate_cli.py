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
    assert info["rate"] == 24000
    longer = tmp_path / "longer.mp4"
    assert main(["generate", *common, "--prompt", "the fox keeps running", "--frames", "17", "--extend-from",
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
