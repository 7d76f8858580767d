"""Media I/O with PyAV (no PIL, torchvision or torchaudio): images, the H.264 CRF round trip applied to
conditioning images, resize + centre crop, audio files, MP4 output with an AAC audio track, and PNG images (live
preview frames).

Pixel conventions: uint8 frames ``(F, H, W, 3)`` RGB; model pixels ``(B, 3, F, H, W)`` in ``[-1, 1]``;
waveforms ``(channels, samples)`` float in ``[-1, 1]``.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from io import BytesIO
from pathlib import Path

import av
import numpy as np
import torch

from ..errors import InputError
from .output_file import atomic_output

DEFAULT_IMAGE_CRF = 33
MAX_H264_SIDE = 16384  # libx264's largest frame side


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file (PNG, JPEG, WebP, …) to uint8 ``(H, W, 3)`` RGB, upright.

    The EXIF orientation of phone photos (rotated 90°, 180°, 270°; read by FFmpeg as the frame's display rotation)
    is applied, as image viewers do. Mirrored orientations (EXIF 2, 4, 5, 7, rare in practice) are applied as their
    rotation only. 16-bit, RGBA, grayscale and palette images are converted to 8-bit RGB.

    Raises:
        InputError: the file is missing, not an image, or cannot be decoded.
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path} is not an image (it has no picture). Use a PNG, JPEG or WebP file.")
            frame = next(container.decode(video=0))
            rotation = int(frame.rotation or 0)
            array = frame.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, StopIteration, OSError) as exc:
        raise InputError(f"Cannot read the image {path}: {exc}. Use a PNG, JPEG or WebP file.") from exc
    quarter_turns = round(rotation / 90) % 4  # FFmpeg: degrees counter-clockwise to display upright
    return np.ascontiguousarray(np.rot90(array, quarter_turns)) if quarter_turns else array


def crf_round_trip(image: np.ndarray, crf: float = DEFAULT_IMAGE_CRF) -> np.ndarray:
    """Encode one uint8 RGB frame ``(H, W, 3)`` with libx264 at ``crf`` and decode it again (the model was trained on
    compressed frames); odd sizes are cropped to even. ``crf`` 0 returns the image unchanged. Mirrors
    ``ltx_pipelines.utils.media_io.preprocess`` (``encode_single_frame`` + ``decode_single_frame``)."""
    if crf == 0:
        return image
    image = fit_for_h264(image)
    height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    buffer = BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1, options={"crf": str(crf), "preset": "veryfast"})
        stream.height, stream.width = height, width
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:height, :width]), format="rgb24")
        container.mux(stream.encode(frame.reformat(format="yuv420p")))
        container.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def fit_for_h264(image: np.ndarray, max_side: int = MAX_H264_SIDE) -> np.ndarray:
    """Scale a uint8 ``(H, W, 3)`` image down (area average, aspect kept) so both sides are at most ``max_side``
    pixels; libx264 refuses larger frames. Images that fit are returned as they are (bit-identical to
    ``ltx_pipelines.utils.media_io.preprocess``, which has no such limit)."""
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    size = (max(2, int(height * scale)), max(2, int(width * scale)))
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0).float()
    x = torch.nn.functional.interpolate(x, size=size, mode="area")
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def resize_and_center_crop(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(H, W, C)`` or ``(F, H, W, C)`` → float ``(1, C, F, height, width)`` (F = 1 for an image): bilinear scale
    to cover ``height × width`` pixels, centre crop. Mirrors ``ltx_pipelines.utils.media_io.resize_and_center_crop``.

    Raises:
        InputError: ``frames`` is neither 3-D nor 4-D.
    """
    if frames.ndim == 3:
        frames = frames.unsqueeze(0)
    if frames.ndim != 4:
        raise InputError(f"Expected an image (H, W, C) or frames (F, H, W, C); got {tuple(frames.shape)}")
    x = frames.permute(0, 3, 1, 2).float()
    src_h, src_w = x.shape[-2:]
    scale = max(height / src_h, width / src_w)
    new_h, new_w = math.ceil(src_h * scale), math.ceil(src_w * scale)
    x = torch.nn.functional.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    x = x[:, :, top:top + height, left:left + width]
    return x.permute(1, 0, 2, 3).unsqueeze(0)


def image_to_pixels(image: np.ndarray | torch.Tensor, height: int, width: int, *, crf: float = DEFAULT_IMAGE_CRF,
                    dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """A uint8 RGB image ``(H, W, 3)`` (or more channels; the first 3 are used) → model pixels
    ``(1, 3, 1, height, width)`` in ``[-1, 1]``: CRF round trip, resize to cover, centre crop. Mirrors
    ``ltx_pipelines.utils.media_io.load_image_conditioning`` after its file decode.

    Raises:
        InputError: ``image`` is not a uint8 ``(H, W, ≥3)`` array or tensor.
    """
    array = image.cpu().numpy() if isinstance(image, torch.Tensor) else image
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] < 3:
        raise InputError(f"Expected a uint8 RGB image (H, W, 3); got {array.dtype} {array.shape}")
    if array.shape[0] < 2 or array.shape[1] < 2:
        raise InputError(f"The image is {array.shape[1]}×{array.shape[0]} pixels; use at least 2×2 (ideally about "
                         "the video's size).")
    array = crf_round_trip(np.ascontiguousarray(array[..., :3]), crf)
    pixels = resize_and_center_crop(torch.from_numpy(array).float(), height, width)
    return (pixels / 127.5 - 1.0).to(device=device, dtype=dtype)


def pixels_to_frames(pixels: torch.Tensor) -> torch.Tensor:
    """Model pixels ``(B, 3, F, H, W)`` in ``[-1, 1]`` → uint8 frames ``(B, F, H, W, 3)``."""
    x = ((pixels.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1)


AUDIO_ADVICE = "give an audio file (WAV, MP3, FLAC, AAC, OGG, …) or a video with sound."


def av_reason(exc: BaseException) -> str:
    """What a PyAV / FFmpeg error says, without its ``[Errno N]`` code and the repeated file name (e.g. "Invalid data
    found when processing input")."""
    reason = getattr(exc, "strerror", None)
    return str(reason) if reason else " ".join(str(exc).split())


def load_audio(path: str | os.PathLike) -> tuple[torch.Tensor, int]:
    """Decode the first audio stream of a file → (waveform ``(channels, samples)`` float32, sample rate in Hz), at
    the file's own rate and channel layout (no resampling). Like ``ltx_pipelines.utils.media_io.decode_audio_from_file``
    without its start time / duration cut.

    Raises:
        InputError: the file cannot be decoded, or has no or an empty audio stream.
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise InputError(f"{path} has no audio stream; {AUDIO_ADVICE}")
            stream = container.streams.audio[0]
            rate = stream.rate
            chunks = []
            resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
    except av.error.FFmpegError as exc:
        advice = AUDIO_ADVICE[0].upper() + AUDIO_ADVICE[1:]
        raise InputError(f"Cannot read audio from {path}: {av_reason(exc)}. {advice}") from exc
    if not chunks:
        raise InputError(f"{path} has an empty audio stream; {AUDIO_ADVICE}")
    return torch.from_numpy(np.concatenate(chunks, axis=1).astype(np.float32)), int(rate)


def write_mp4(path: str | os.PathLike, frames: torch.Tensor, fps: float, *, audio: torch.Tensor | None = None,
              sample_rate: int | None = None, crf: int = 18) -> str:
    """Write uint8 frames ``(F, H, W, 3)`` as H.264 (yuv420p) with an optional AAC track from ``audio``
    ``(channels, samples)`` float in ``[-1, 1]`` at ``sample_rate`` Hz (stereo from the first two channels, else
    mono); ``fps`` in frames per second, ``crf`` the H.264 quality. Odd frame sizes are cropped to even. Written
    through :func:`~.output_file.atomic_output`: an interrupted write leaves neither a broken file at ``path`` nor a
    temporary file beside it. Returns ``path`` as a string. Plays the part of
    ``ltx_pipelines.utils.media_io.encode_video``.

    Raises:
        InputError: ``frames`` is not uint8 ``(F, H, W, 3)``, or ``audio`` comes without ``sample_rate``.
    """
    path = Path(path)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
        raise InputError(f"write_mp4 needs uint8 frames (F, H, W, 3); got {frames.dtype} {tuple(frames.shape)}")
    if audio is not None and sample_rate is None:
        raise InputError("write_mp4: give sample_rate with audio")
    height, width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    with atomic_output(path) as file, av.open(file, "w", format="mp4") as container:
        rate = Fraction(fps).limit_denominator(1001)
        vstream = container.add_stream("libx264", rate=rate, options={"crf": str(crf)})
        vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
        astream = None
        if audio is not None:
            astream = container.add_stream("aac", rate=int(sample_rate))
            astream.layout = "stereo" if audio.shape[0] >= 2 else "mono"
        for array in frames[:, :height, :width].cpu().numpy():
            container.mux(vstream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(vstream.encode())
        if astream is not None:
            _mux_audio(container, astream, audio, int(sample_rate))
    return str(path)


def _mux_audio(container, stream, audio: torch.Tensor, sample_rate: int) -> None:
    channels = 2 if audio.shape[0] >= 2 else 1
    samples = audio[:channels].float().clamp(-1, 1).cpu().numpy().astype(np.float32)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp",
                                       layout="stereo" if channels == 2 else "mono")
    frame.sample_rate = sample_rate
    resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=stream.layout.name,
                                  rate=sample_rate, frame_size=stream.codec_context.frame_size or 1024)
    pts = 0
    for out in [*resampler.resample(frame), *resampler.resample(None)]:
        out.pts = pts
        pts += out.samples
        container.mux(stream.encode(out))
    container.mux(stream.encode())


def write_png(path: str | os.PathLike, image: torch.Tensor | np.ndarray) -> Path:
    """Write a uint8 RGB image ``(H, W, 3)`` as a PNG file (PyAV's ``png`` encoder, lossless), atomically. Returns
    the path.

    Raises:
        InputError: ``image`` is not uint8 ``(H, W, 3)``.
        OSError: the file cannot be written.
    """
    array = image.cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise InputError(f"write_png needs a uint8 image (H, W, 3); got {array.dtype} {tuple(array.shape)}")
    with atomic_output(path) as file, av.open(file, "w", format="image2pipe") as container:
        stream = container.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = array.shape[1], array.shape[0], "rgb24"
        container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")))
        container.mux(stream.encode())
    return Path(path)
