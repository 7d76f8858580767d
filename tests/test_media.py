"""Media I/O through PyAV: images, the CRF round trip and resize/crop equal ltx-pipelines' preprocessing, and MP4
files with sound that read back with the right frame count, rate, size and duration."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.pipeline import media

from reference import ltx_core_ref  # noqa: F401  (torchaudio stub before ltx_pipelines)


def _image(h=50, w=70, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (h + w)], -1).astype(np.uint8)
    return np.clip(img.astype(int) + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)


def _write_png(path, image):
    with av.open(str(path), "w", format="image2") as c:
        s = c.add_stream("png")
        s.width, s.height, s.pix_fmt = image.shape[1], image.shape[0], "rgb24"
        c.mux(s.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        c.mux(s.encode())


def test_load_png_exactly(tmp_path):
    img = _image()
    _write_png(tmp_path / "a.png", img)
    assert np.array_equal(media.load_image(tmp_path / "a.png"), img)
    with pytest.raises(InputError, match="Cannot read the image"):
        media.load_image(tmp_path / "missing.png")


@pytest.mark.parametrize("crf", [0, 18, 33])
def test_crf_round_trip_matches_reference(crf):
    from ltx_pipelines.utils.media_io import preprocess

    img = _image(51, 77)
    ours = media.crf_round_trip(img, crf)
    assert np.array_equal(ours, preprocess(img, crf))
    if crf:
        assert ours.shape == (50, 76, 3)
        assert np.abs(ours.astype(int) - img[:50, :76]).mean() < 12


@pytest.mark.parametrize("target", [(64, 96), (96, 64), (32, 32)])
def test_image_to_pixels_matches_reference(target, tmp_path):
    from ltx_pipelines.utils.media_io import resize_and_center_crop as ref_resize

    img = _image(60, 90)
    ours = media.image_to_pixels(img, *target, crf=0)
    ref = ref_resize(torch.tensor(img, dtype=torch.float32), *target) / 127.5 - 1.0
    assert ours.shape == (1, 3, 1, *target)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)


def test_write_mp4_with_audio_reads_back(tmp_path):
    frames = torch.from_numpy(np.stack([_image(64, 96, seed=i) for i in range(17)]))
    sr = 48000
    t = torch.arange(int(sr * 17 / 24)) / sr
    audio = torch.stack([0.3 * torch.sin(2 * torch.pi * 440 * t), 0.3 * torch.sin(2 * torch.pi * 660 * t)])
    out = media.write_mp4(tmp_path / "clip.mp4", frames, 24.0, audio=audio, sample_rate=sr)
    with av.open(out) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.width, v.codec_context.height, float(v.average_rate)) == (96, 64, 24.0)
        assert sum(1 for _ in c.decode(v)) == 17
        assert a.rate == sr
        assert a.channels == 2
    wave, rate = media.load_audio(out)
    assert rate == sr
    assert wave.shape[0] == 2
    assert abs(wave.shape[1] / sr - 17 / 24) < 0.05  # AAC adds a little priming/padding
    assert not list(tmp_path.glob("tmp*"))  # no temporary files left behind


def test_write_mp4_rejects_bad_frames(tmp_path):
    with pytest.raises(InputError, match="uint8"):
        media.write_mp4(tmp_path / "x.mp4", torch.zeros(3, 8, 8, 3), 24.0)
    assert not (tmp_path / "x.mp4").exists()


def test_pixels_to_frames_round_trip():
    frames = torch.from_numpy(_image(32, 32)).unsqueeze(0)
    pixels = media.resize_and_center_crop(frames.float(), 32, 32) / 127.5 - 1
    assert torch.equal(media.pixels_to_frames(pixels)[0], frames)
