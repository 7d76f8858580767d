"""Checks of user settings that need no model: run when a :class:`~.request.Request` is built, so a bad value is
reported before any weight is read (the CLI, the library entry points and the nodes all build a Request first).

Every problem is an :class:`~rs_ltxv.ltx.errors.InputError` whose message names the setting and says what to use.
Seeds cover ComfyUI's whole widget range ``0 … 2**64 − 1`` (:data:`~.latents.SEED_MAX`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ...ops.attention import check_attention_mode
from ..errors import InputError
from .latents import SEED_MAX
from .reference_guide import check_reference_video
from .sampling import SAMPLERS
from .schedules import SCHEDULES

MAX_PIXELS_SIDE = 16384  # H.264 (libx264) and the VAE tiling plans stop here
MAX_STEPS = 10_000
MAX_FRAMES = 8 * 100_000 + 1  # pixel frames of one request


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_int(name: str, value: Any, lo: int, hi: int, hint: str = "") -> None:
    """Raise :class:`InputError` unless ``value`` is an int in ``[lo, hi]``."""
    if not _is_int(value) or not lo <= value <= hi:
        raise InputError(f"{name} must be a whole number from {lo} to {hi}; got {value!r}.{' ' + hint if hint else ''}")


def check_number(name: str, value: Any, lo: float = -math.inf, hi: float = math.inf, *, lo_open: bool = False,
                 hint: str = "") -> None:
    """Raise :class:`InputError` unless ``value`` is a finite number in ``[lo, hi]`` (``(lo, hi]`` when ``lo_open``)."""
    ok = _finite(value) and (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        bounds = f"{'above' if lo_open else 'at least'} {lo:g}" if math.isfinite(lo) else "finite"
        if math.isfinite(hi):
            bounds += f" and at most {hi:g}"
        raise InputError(f"{name} must be a finite number {bounds}; got {value!r}.{' ' + hint if hint else ''}")


def check_frames(frames: Any, *, auto: bool = False) -> None:
    """Pixel frame counts are ``8·k + 1`` (1, 9, 17, …, 121, …), at most ``8·100000 + 1``; with ``auto`` also 0 (the
    duration head predicts the length).

    Raises:
        InputError: ``frames`` is not a whole number of that form; the message gives the two nearest valid counts.
    """
    if auto and frames == 0 and _is_int(frames):
        return
    check_int("frames", frames, 1, MAX_FRAMES, "Or 0 to predict the length from the prompt (LTX-2.5 duration "
              "head)." if auto else "")
    if frames % 8 != 1:
        lo = frames // 8 * 8 + 1
        raise InputError(f"frames must be 8·k + 1 (1, 9, 17, …, 121, …); got {frames}. Use {lo} or {lo + 8}.")


def check_size(name: str, value: Any, multiple: int) -> None:
    """Widths and heights are positive multiples of ``multiple`` pixels (32; 64 with the 2× upscale pass), at most
    :data:`MAX_PIXELS_SIDE`.

    Raises:
        InputError: ``value`` is not such a whole number; the message gives the two nearest valid sizes.
    """
    check_int(name, value, multiple, MAX_PIXELS_SIDE)
    if value % multiple:
        lo = max(multiple, value // multiple * multiple)
        raise InputError(f"{name} must be a multiple of {multiple} pixels; got {value}. Use {lo} or {lo + multiple}.")


def check_guidance(stream: str, params: Any) -> None:
    """CFG, STG, modality and rescale scales are finite numbers in [−100, 100]; ``skip_step`` and STG blocks are
    whole numbers (blocks are checked against the model later, when its config is known).

    Raises:
        InputError: the first value out of range, named with ``stream``.
    """
    for field in ("cfg", "stg", "rescale", "modality"):
        check_number(f"{stream} {field}", getattr(params, field), -100.0, 100.0)
    check_int(f"{stream} skip_step", params.skip_step, 0, MAX_STEPS)
    for block in params.stg_blocks:
        check_int(f"{stream} STG block", block, 0, 1000)


def check_stg_blocks(guidances: dict[str, Any], num_layers: int, *, cli: bool = False) -> None:
    """STG blocks must exist in the transformer (``0 … num_layers − 1``); run once the model config is known.

    ``guidances`` maps a stream name (``"video"``, ``"audio"``, ``"upscale"``) to its
    :class:`~.guidance.GuidanceParams`; streams with STG off are skipped. The message says what to set: the
    ``Request`` fields (``video_guidance`` / ``audio_guidance`` … ``stg_blocks``, ``stg``), or with ``cli`` the
    command-line flags (``--stg-block``, ``--stg``).

    Raises:
        InputError: a block index is out of range, or STG is on with no block given.
    """
    for stream, params in guidances.items():
        if not params.needs_perturbed:
            continue
        bad = [b for b in params.stg_blocks if not 0 <= b < num_layers]
        if bad:
            last = num_layers - 1
            fix = (f"--stg-block N with N in 0…{last} for this model, or --stg 0 to turn STG off" if cli else
                   f"{stream}_guidance stg_blocks with blocks in 0…{last} for this model (e.g. GuidanceParams("
                   f"stg_blocks=({min(1, last)},))), or stg=0 in {stream}_guidance to turn STG off")
            raise InputError(f"{stream} STG block(s) {bad} do not exist: this transformer has blocks 0…{last}. Use "
                             f"e.g. 28 for LTX-2.3 22B, 29 for LTX-2 19B, or {fix}.")
        if not params.stg_blocks:
            raise InputError(f"{stream} STG is on (stg = {params.stg:g}) but no STG block is given.")


CHECKS: tuple[Callable[[Any], None], ...] = (
    lambda r: check_int("seed", r.seed, 0, SEED_MAX, "ComfyUI's seed range is 0 … 2**64 − 1."),
    lambda r: check_frames(r.frames, auto=True),
    lambda r: check_size("width", r.width, 64 if r.upscale else 32),
    lambda r: check_size("height", r.height, 64 if r.upscale else 32),
    lambda r: check_number("fps", r.fps, 0.0, 1000.0, lo_open=True),
    lambda r: r.steps is None or check_int("steps", r.steps, 1, MAX_STEPS),
    lambda r: check_number("eta", r.eta, 0.0, 100.0),
    lambda r: check_number("max_shift", r.max_shift, -100.0, 100.0),
    lambda r: check_number("base_shift", r.base_shift, -100.0, 100.0),
    lambda r: r.image_crf is None or check_number("image_crf", r.image_crf, 0.0, 51.0),
    lambda r: check_number("upscale_denoise", r.upscale_denoise, 0.0, 1.0, lo_open=True),
    lambda r: r.upscale_steps is None or check_int("upscale_steps", r.upscale_steps, 0, MAX_STEPS),
    lambda r: check_guidance("video", r.video_guidance),
    lambda r: check_guidance("audio", r.audio_guidance),
    lambda r: check_guidance("upscale", r.upscale_guidance),
    lambda r: r.sigmas is None or [check_number("sigma", s, 0.0, 1.0) for s in r.sigmas],
    lambda r: [check_number("image strength", g.strength, 0.0, 1.0) for g in r.images],
    lambda r: r.frames == 0 or [check_int("image frame", g.frame, -r.frames, r.frames - 1) for g in r.images],
    lambda r: [_check_image(g.image) for g in r.images],
    lambda r: [check_reference_video(g, r.width, r.height, r.upscale) for g in r.reference_videos],
    lambda r: r.audio is None or _check_audio(r.audio, r.audio_sample_rate),
    lambda r: r.reference_audio is None or _check_reference_audio(r),
    lambda r: check_number("identity_guidance", r.identity_guidance, 0.0, 100.0),
    lambda r: check_number("identity_guidance_start", r.identity_guidance_start, 0.0, 1.0),
    lambda r: check_number("identity_guidance_end", r.identity_guidance_end, r.identity_guidance_start, 1.0),
    lambda r: callable(r.attention_mode) or check_attention_mode(r.attention_mode),
    lambda r: check_int("ffn_chunks", r.ffn_chunks, 1, 1 << 20),
    lambda r: not isinstance(r.sampler, str) or r.sampler in SAMPLER_NAMES or _unknown("sampler", r.sampler,
                                                                                       SAMPLER_NAMES),
    lambda r: not isinstance(r.upscale_sampler, str) or r.upscale_sampler in SAMPLER_NAMES or _unknown(
        "upscale_sampler", r.upscale_sampler, SAMPLER_NAMES),
    lambda r: r.schedule in SCHEDULE_NAMES or _unknown("schedule", r.schedule, SCHEDULE_NAMES),
)

SAMPLER_NAMES = tuple(SAMPLERS)
SCHEDULE_NAMES = ("auto", *SCHEDULES)


def _unknown(what: str, value: Any, choices: tuple[str, ...]) -> None:
    raise InputError(f"Unknown {what} {value!r}; choose one of: {', '.join(choices)}.")


def _check_image(image: Any) -> None:
    shape = tuple(getattr(image, "shape", ()))
    if len(shape) != 3 or shape[2] < 3:
        raise InputError(f"A guide image must be (H, W, 3) RGB; got shape {shape}.")
    if shape[0] < 2 or shape[1] < 2:
        raise InputError(f"A guide image is {shape[1]}×{shape[0]} pixels; use at least 2×2 (ideally about the "
                         "video's size).")


def _check_audio(audio: Any, sample_rate: Any) -> None:
    if getattr(audio, "ndim", None) != 2 or audio.shape[-1] == 0:
        shape = tuple(getattr(audio, "shape", ()))
        raise InputError(f"audio must be a (channels, samples) waveform; got shape {shape}.")
    check_int("audio sample rate", sample_rate, 1000, 384_000)
    _check_audio_length("audio", audio.shape[-1], sample_rate)


def _check_audio_length(field: str, samples: int, sample_rate: int) -> None:
    """At least what the audio VAE's mel front end takes (:func:`~..audio.mel.min_audio_seconds`), so a too-short
    waveform is refused before any model loads."""
    from ..audio.mel import min_audio_seconds

    shortest = min_audio_seconds()
    if samples < math.ceil(shortest * sample_rate):
        raise InputError(f"{field} is too short: {samples} samples at {sample_rate} Hz "
                         f"({1000 * samples / sample_rate:.1f} ms); the audio VAE's mel front end needs at least "
                         f"{1000 * shortest:.0f} ms. Give a longer recording.")


def _check_reference_audio(r: Any) -> None:
    """ID-LoRA reference audio: a ``(channels, samples)`` waveform with its sample rate, in a run with sound."""
    shape = tuple(getattr(r.reference_audio, "shape", ()))
    if len(shape) != 2 or shape[-1] == 0:
        raise InputError(f"reference_audio must be a (channels, samples) waveform; got shape {shape}.")
    check_int("reference audio sample rate", r.reference_audio_sample_rate, 1000, 384_000)
    _check_audio_length("reference_audio", shape[-1], r.reference_audio_sample_rate)
    if not r.generate_audio:
        raise InputError("reference_audio steers the generated voice; turn generate_audio on (or drop the "
                         "reference audio).")


def check_request(request: Any) -> None:
    """Run every setting check on ``request`` (a :class:`~.request.Request`).

    Raises:
        InputError: the first setting that is out of range, with what to use instead.
    """
    for check in CHECKS:
        check(request)
