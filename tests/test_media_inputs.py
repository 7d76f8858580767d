"""The user's media as users expect: phone photos upright (EXIF orientation), huge images scaled before the H.264
pre-processing, every pixel format read as RGB, and output files that appear whole or not at all with the umask's
permissions — also when the process is killed while writing."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap

import av
import numpy as np
import pytest
import torch

from rs_ltxv.ltx.pipeline.media import MAX_H264_SIDE, image_to_pixels, load_image, write_mp4
from rs_ltxv.ltx.pipeline.output_file import atomic_output


def _encode(path, array: np.ndarray, codec: str, pix_fmt: str, src_format: str) -> None:
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream(codec)
        stream.height, stream.width, stream.pix_fmt = array.shape[0], array.shape[1], pix_fmt
        frame = av.VideoFrame.from_ndarray(array, format=src_format)
        out.mux(stream.encode(frame.reformat(format=pix_fmt)))
        out.mux(stream.encode())


def _exif_app1(orientation: int) -> bytes:
    """A minimal EXIF APP1 segment (big-endian TIFF, one IFD entry: Orientation)."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    body = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def _jpeg_with_orientation(path, array: np.ndarray, orientation: int) -> None:
    _encode(path, array, "mjpeg", "yuvj444p", "rgb24")
    data = path.read_bytes()
    path.write_bytes(data[:2] + _exif_app1(orientation) + data[2:])  # right after SOI


def _marked(height: int = 40, width: int = 80) -> np.ndarray:
    """A dark image with a white stripe along its left edge."""
    array = np.zeros((height, width, 3), np.uint8)
    array[:, :8] = 255
    return array


# orientation → (shape after loading, where the white stripe ends up)
ORIENTATIONS = {1: ((40, 80, 3), "left"), 3: ((40, 80, 3), "right"), 6: ((80, 40, 3), "top"),
                8: ((80, 40, 3), "bottom")}


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_phone_photos_are_loaded_upright(tmp_path, orientation):
    path = tmp_path / f"o{orientation}.jpg"
    _jpeg_with_orientation(path, _marked(), orientation)
    image = load_image(path)
    shape, side = ORIENTATIONS[orientation]
    assert image.shape == shape
    edges = {"left": image[:, :4], "right": image[:, -4:], "top": image[:4], "bottom": image[-4:]}
    assert edges[side].mean() > 200, {k: float(v.mean()) for k, v in edges.items()}


@pytest.mark.parametrize(("codec", "pix_fmt", "src"), [
    ("png", "rgb48be", "rgb24"), ("png", "rgba", "rgb24"), ("png", "gray", "rgb24"), ("png", "pal8", "P"),
    ("png", "gray16be", "rgb24"), ("mjpeg", "yuvj420p", "rgb24"),
])
def test_every_pixel_format_reads_as_rgb(tmp_path, codec, pix_fmt, src):
    path = tmp_path / f"img-{pix_fmt}.{'png' if codec == 'png' else 'jpg'}"
    array = np.zeros((32, 48, 3), np.uint8)
    array[:, 24:] = 200
    if src == "P":  # swscale cannot make palette images: Pillow (a diffusers dependency) writes this one
        from PIL import Image

        Image.fromarray(array).convert("P").save(path)
    else:
        _encode(path, array, codec, pix_fmt, src)
    image = load_image(path)
    assert image.shape == (32, 48, 3)
    assert image.dtype == np.uint8
    assert abs(int(image[:, 30:].mean()) - 200) < 12
    assert image[:, :16].mean() < 12


def test_huge_images_are_scaled_before_h264(tmp_path):
    wide = np.zeros((64, MAX_H264_SIDE + 2000, 3), np.uint8)
    wide[:, : wide.shape[1] // 2] = 255
    pixels = image_to_pixels(wide, 64, 128)  # libx264 refused this before
    assert pixels.shape == (1, 3, 1, 64, 128)
    assert torch.isfinite(pixels).all()


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = write_mp4(tmp_path / "out.mp4", torch.zeros(1, 16, 16, 3, dtype=torch.uint8), 24.0)
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_a_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(target) as file:
        file.write(b"partial")
        raise RuntimeError("encoder failed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_writer_leaves_no_file(tmp_path, sig):
    """The writer is killed while it writes: no output and no temporary file in the folder."""
    script = textwrap.dedent(f"""
        import sys, time
        from rs_ltxv.__main__ import main  # installs the CLI's SIGTERM handling only inside main()
        from rs_ltxv.ltx.pipeline.output_file import atomic_output
        import signal
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
        with atomic_output({str(tmp_path / 'out.bin')!r}) as f:
            f.write(b"x" * 1000)
            f.flush()
            print("writing", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert list(tmp_path.iterdir()) == []
