"""What the ``generate`` command reads from the user before any model is loaded: ``--image`` specs, the latents
file of ``--extend-from``, and the model files' headers (to check STG blocks against the transformer).

Every problem is an :class:`~rs_ltxv.ltx.errors.InputError` (or a ``CheckpointError`` from the loaders) whose
message names the argument; nothing here reads weights.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ..errors import InputError

LATENTS_SUFFIX = ".latents.safetensors"


def _is_int(text: str) -> bool:
    return text.lstrip("+-").isdigit()


def _is_float(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def parse_image_spec(spec: str) -> tuple[str, int, float]:
    """``PATH[:FRAME[:STRENGTH]]`` → (path, pixel frame, strength); read from the right, so a path that itself
    contains ``:`` (``C:\\pics\\a.png``, ``shots:2/a.png``) still parses. An existing file named ``spec`` wins.

    Raises:
        InputError: the frame is not a whole number or the strength not a finite number.
    """
    if Path(spec).is_file():
        return spec, 0, 1.0
    head, sep, last = spec.rpartition(":")
    if not sep:
        return spec, 0, 1.0
    path2, sep2, middle = head.rpartition(":")
    if sep2 and _is_int(middle) and (Path(path2).is_file() or _is_float(last)):
        if not _is_float(last):
            raise InputError(f"--image {spec}: strength {last!r} is not a number (PATH[:FRAME[:STRENGTH]]).")
        return path2, int(middle), float(last)
    if _is_int(last):
        return head, int(last), 1.0
    if Path(head).is_file():
        raise InputError(f"--image {spec}: frame {last!r} is not a whole number (PATH[:FRAME[:STRENGTH]]).")
    return spec, 0, 1.0


@dataclass(frozen=True)
class SavedLatents:
    """A ``.latents.safetensors`` file written next to a generated MP4: video ``(1, 128, F, H, W)``, optional audio
    ``(1, 8, T, 16)``, and the clip's frame rate (frames per second) when the file recorded it."""

    video: torch.Tensor
    audio: torch.Tensor | None
    fps: float | None


def read_latents(path: str | os.PathLike) -> SavedLatents:
    """Read the latents file given to ``--extend-from``.

    Raises:
        InputError: missing, unreadable, no 5-D ``video`` tensor, a malformed ``audio`` tensor or ``fps``.
    """
    name = f"--extend-from {path}"
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
            if "video" not in keys:
                raise InputError(f"{name} has no 'video' latent; use the {LATENTS_SUFFIX} file written next to "
                                 "a generated MP4.")
            metadata = f.metadata() or {}
            video = f.get_tensor("video")
            audio = f.get_tensor("audio") if "audio" in keys else None
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{name}: cannot read it ({' '.join(str(exc).split())[:200]}). Use the {LATENTS_SUFFIX} "
                         "file written next to a generated MP4.") from exc
    if video.ndim != 5 or video.shape[0] != 1 or not video.is_floating_point():
        raise InputError(f"{name}: 'video' must be a float latent (1, C, F, H, W); got {tuple(video.shape)}.")
    if audio is not None and (audio.ndim != 4 or audio.shape[0] != 1 or not audio.is_floating_point()):
        raise InputError(f"{name}: 'audio' must be a float latent (1, C, T, M); got {tuple(audio.shape)}.")
    fps = metadata.get("fps")
    if fps is not None and not (_is_float(fps) and float(fps) > 0):
        raise InputError(f"{name}: its fps metadata {fps!r} is not a positive number.")
    return SavedLatents(video, audio, float(fps) if fps is not None else None)


def check_model_file(path: str | os.PathLike | None, flag: str) -> None:
    """A model path given on the command line exists (a file, or a folder for Gemma)."""
    if path is not None and not Path(path).exists():
        raise InputError(f"{flag} {path}: no such file or folder.")
