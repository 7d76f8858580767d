"""What the ``generate`` command reads from the user before any model is loaded: ``--image`` and ``--lora`` specs,
the latents file of ``--extend-from``, and the model files' headers (to check STG blocks against the transformer).

Every problem is an :class:`~rs_ltxv.ltx.errors.InputError` (or a ``CheckpointError`` from the loaders) whose
message names the argument; nothing here reads weights.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open

from ..errors import InputError

if TYPE_CHECKING:
    from ..lora import LoraSpec

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


def parse_lora_spec(spec: str) -> LoraSpec:
    """``--lora FILE[:STRENGTH]`` → a checked :class:`~rs_ltxv.ltx.lora.LoraSpec` (strength 1 when not given): the
    file exists and its header holds plain LoRA pairs (:func:`~rs_ltxv.ltx.lora.check_lora_file`; no weights are
    read). Read from the right, so a path containing ``:`` still parses; an existing file named ``spec`` wins.

    Raises:
        InputError: the strength is not a finite number, the file is missing, unreadable or not a plain LoRA.
    """
    from ..lora import LoraSpec, check_lora_file

    path, strength = spec, 1.0
    head, sep, last = spec.rpartition(":")
    if not Path(spec).is_file() and sep and head:
        if _is_float(last):
            path, strength = head, float(last)
        elif Path(head).is_file() or _looks_numeric(last):
            raise InputError(f"--lora {spec}: strength {last!r} is not a finite number (FILE[:STRENGTH], e.g. "
                             f"{head}:0.8).")
    if Path(path).is_dir():
        raise InputError(f"--lora {path} is a folder; give a LoRA .safetensors file.")
    if not Path(path).is_file():
        raise InputError(f"--lora {path}: no such file.")
    try:
        check_lora_file(path)
    except InputError as exc:
        raise InputError(f"--lora {spec}: {lora_reason(exc, path)}") from exc
    return LoraSpec(path, strength)


def lora_reason(exc: Exception, path: str) -> str:
    """The message of a LoRA error without its leading ``LoRA <path or file name>:`` (the flag names the file)."""
    text = str(exc)
    for prefix in (f"LoRA {path}: ", f"LoRA {Path(path).name}: "):
        text = text.removeprefix(prefix)
    return text


def _looks_numeric(text: str) -> bool:
    """``nan``, ``inf``, ``-1e999`` …: what a user meant as a number that is not finite."""
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class SavedLatents:
    """A ``.latents.safetensors`` file written next to a generated MP4: video ``(1, 128, F, H, W)``, optional audio
    ``(1, 8, T, 16)``, and the clip's frame rate (frames per second) when the file recorded it."""

    video: torch.Tensor
    audio: torch.Tensor | None
    fps: float | None


def read_latents(path: str | os.PathLike, flag: str = "--extend-from") -> SavedLatents:
    """Read the latents file given to ``flag`` (``generate --extend-from``, ``retake --from``).

    Raises:
        InputError: missing, unreadable, no 5-D ``video`` tensor (or an empty one), a malformed ``audio`` tensor or
            ``fps``.
    """
    name = f"{flag} {path}"
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
    if min(video.shape[2:]) < 1:
        raise InputError(f"{name}: its 'video' latent {tuple(video.shape)} is empty (no latent frames or cells); use "
                         f"the {LATENTS_SUFFIX} file written next to a generated MP4.")
    if audio is not None and (audio.ndim != 4 or audio.shape[0] != 1 or not audio.is_floating_point()):
        raise InputError(f"{name}: 'audio' must be a float latent (1, C, T, M); got {tuple(audio.shape)}.")
    fps = metadata.get("fps")
    if fps is not None and not (_is_float(fps) and float(fps) > 0):
        raise InputError(f"{name}: its fps metadata {fps!r} is not a positive number.")
    return SavedLatents(video, audio, float(fps) if fps is not None else None)


def check_model_file(path: str | os.PathLike | None, flag: str) -> None:
    """A model path given on the command line exists (a file, or a folder for Gemma); ``None`` (flag not given) passes.

    Raises:
        InputError: ``path`` does not exist; the message names ``flag``.
    """
    if path is not None and not Path(path).exists():
        raise InputError(f"{flag} {path}: no such file or folder.")


def _has(path: str | os.PathLike | None, component: str) -> bool:
    """Whether the safetensors/GGUF file ``path`` holds ``component`` tensors (header only)."""
    if path is None:
        return False
    from ..loading.checkpoint import open_file
    from ..loading.layout import split_components

    return component in split_components(open_file(Path(path)).tensors)


def _parts_in(path: str | os.PathLike) -> set[str]:
    """Which of ``vae`` / ``audio_vae`` / ``vocoder`` a file holds, prefixed (official, ComfyUI) or, for a video VAE
    file, bare (``encoder.*`` / ``decoder.*``)."""
    from ..loading.checkpoint import open_file
    from ..loading.layout import split_components

    keys = list(open_file(Path(path)).tensors)
    found = set(split_components(keys)) & {"vae", "audio_vae", "vocoder"}
    if not found and any(k.startswith(("encoder.conv_in", "decoder.conv_in")) for k in keys):
        found.add("vae")
    return found


def check_part_file(path: str | os.PathLike | None, flag: str, wanted: tuple[str, ...]) -> None:
    """A file given for a model part holds it (for ``--components``: at least one of ``wanted``).

    Raises:
        InputError: naming the flag, what the file holds instead, and the flag it probably belongs to.
        CheckpointError: the file is unreadable.
    """
    if path is None:
        return
    found = _parts_in(path)
    if not found & set(wanted):
        from ..loading.info import describe_parts_file

        holds = describe_parts_file(path)["holds"] if not found else ", ".join(sorted(found))
        raise InputError(f"{flag} {Path(path).name} holds {holds}, not the {' / '.join(wanted)} tensors this flag "
                         "expects. Check which file goes with which flag (--vae, --audio-vae, --vocoder, "
                         "--components, --upsampler).")


def _bundles_projection(text_encoder: str | os.PathLike | None) -> bool:
    """Whether ``text_encoder`` is LTX-2.5's Gemma-4 file, which carries the text projection (header only)."""
    if text_encoder is None or Path(text_encoder).is_dir() or not Path(text_encoder).is_file():
        return False
    from ..loading.gemma4 import is_gemma4

    return is_gemma4(text_encoder)


#: a video VAE file to name when one is missing, by the checkpoint's version
VIDEO_VAE_FILES = {"2.0": "ComfyUI's models/vae/LTX2_video_vae_bf16.safetensors",
                   "2.3": "ComfyUI's models/vae/LTX23_video_vae_bf16.safetensors",
                   "2.5": "Lightricks' vae/ltx-2.5-video-vae-bf16.safetensors"}


def check_parts_given(ckpt: Any, args: Any) -> None:
    """Before any weight is read: every part the run needs is in ``--checkpoint`` or given by a flag. A GGUF or
    ComfyUI split file holds only the transformer, so the video VAE (decoding, image guides) and, for sound, the
    audio VAE and vocoder must come from ``--vae`` / ``--audio-vae`` / ``--vocoder`` or one ``--components`` file.

    Raises:
        InputError: naming the missing part and the flags that provide it.
    """
    for flag, path, wanted in (("--vae", args.vae, ("vae",)), ("--audio-vae", args.audio_vae, ("audio_vae",)),
                               ("--vocoder", args.vocoder, ("vocoder",)),
                               ("--components", args.components, ("vae", "audio_vae", "vocoder"))):
        check_part_file(path, flag, wanted)
    have = set(ckpt.components)
    where = f"--checkpoint {Path(args.checkpoint).name} holds only {', '.join(sorted(have))}"
    if "vae" not in have and args.vae is None and not _has(args.components, "vae"):
        raise InputError(f"{where}: the video VAE is missing. Give --vae FILE (e.g. "
                         f"{VIDEO_VAE_FILES[ckpt.version.value]}) or --components FILE.")
    needed = {"text_projection", "video_connector", "audio_connector"}
    if _bundles_projection(getattr(args, "text_encoder", None)):
        needed.discard("text_projection")  # LTX-2.5: the Gemma-4 file carries the text projection
    if not needed <= have:
        file = ("the official single file or a GGUF/split file that includes the connectors"
                if ckpt.version.value != "2.5" else "Lightricks' LTX-2.5 transformer file, which includes them "
                "(e.g. ltx-2.5-22b-distilled-transformer-bf16.safetensors)")
        raise InputError(f"{where}: the text connectors are missing; this command reads them from --checkpoint. Use "
                         f"{file}.")
    if not {"audio_vae", "vocoder"} <= have:
        has_vae = "audio_vae" in have or args.audio_vae is not None or _has(args.components, "audio_vae")
        has_voc = ("vocoder" in have or args.vocoder is not None or _has(args.components, "vocoder")
                   or _has(args.audio_vae, "vocoder"))
        if not has_vae or not has_voc:
            part = "audio VAE" if not has_vae else "vocoder"
            raise InputError(f"{where}: the {part} is missing (the MP4's sound is decoded with it). Give "
                             f"--audio-vae FILE{'' if has_vae else ' (with its vocoder)'} / --vocoder FILE or "
                             "--components FILE.")


def check_device(name: str) -> None:
    """``--device``: ``cpu``, ``cuda`` / ``cuda:N`` when CUDA has that device, or ``mps`` when available.

    Raises:
        InputError: an unknown device string, or one this machine does not have.
    """
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"--device {name!r} is not a device; use cpu or cuda (cuda:0, cuda:1, …).") from exc
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(f"--device {name}: CUDA is not available here; use --device cpu.")
        if device.index is not None and device.index >= count:
            raise InputError(f"--device {name}: this machine has {count} CUDA device(s) (cuda:0…cuda:{count - 1}).")
    elif device.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise InputError(f"--device {name}: MPS is not available here; use --device cpu.")
    elif device.type != "cpu":
        raise InputError(f"--device {name}: RS-LTXV runs on cpu, cuda or mps.")


def check_parallel(gpus: int, ray_address: str | None, comm_timeout_s: float | None) -> None:
    """``--gpus`` (ranks, at least 1), ``--ray-address`` (``auto`` or ``HOST:PORT``) and ``--comm-timeout`` (seconds,
    finite, at least 1); the last two only with ``--gpus`` 2 or more. Values only: Ray and the GPUs are checked
    when the workers are attached, still before any weight is read.

    Raises:
        InputError: naming the flag and what to give instead.
    """
    if gpus < 1:
        raise InputError(f"--gpus {gpus}: give 1 (this process only) or more (GPUs, as Ray workers).")
    if gpus == 1:
        for flag, value in (("--ray-address", ray_address), ("--comm-timeout", comm_timeout_s)):
            if value is not None:
                raise InputError(f"{flag} has no effect with one GPU; add --gpus 2 (or more) or drop it.")
        return
    if ray_address is not None and (not ray_address.strip() or any(c.isspace() for c in ray_address.strip())):
        raise InputError(f"--ray-address {ray_address!r}: give auto (a cluster this machine joined with `ray start`) "
                         "or HOST:PORT of the head node (e.g. 10.0.0.5:6379).")
    if comm_timeout_s is not None and not (math.isfinite(comm_timeout_s) and comm_timeout_s >= 1):
        raise InputError(f"--comm-timeout {comm_timeout_s}: give a finite number of seconds, at least 1 (default 120).")
