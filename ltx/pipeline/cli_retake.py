"""``python -m rs_ltxv retake``: regenerate a time range of a clip made by ``generate`` (from its
``OUT.latents.safetensors``) and write the whole clip again (MP4 + latents), everything outside the range kept.

The flags are ``generate``'s (model files, prompt, sampling, guidance, device, output, ``--gpus``) plus ``--from``,
``--start-time`` / ``--end-time`` (seconds; ``--start`` / ``--end`` work as abbreviations) and ``--no-video`` /
``--no-audio``. ``generate``'s size, image, audio, extension and upsampler flags are hidden and refused: a retake
keeps the clip's size and its own sound. Every check runs before a model loads.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from ..errors import InputError
from ..loading import open_checkpoint
from .cli import (
    AttachWorkers,
    _progress,
    add_generate_arguments,
    apply_model_defaults,
    latents_path,
    load_checked_parts,
    planned_size,
    prepare_request,
    resolve_auto,
    save_outputs,
)
from .cli_inputs import LATENTS_SUFFIX, SavedLatents, read_latents
from .preview import png_writer
from .request import Request
from .retake import check_latent_channels, check_retake, clip_seconds

#: the ``generate`` flags a retake uses (destinations); every other one is hidden and refused when given, so a flag
#: added to ``generate`` later is refused here until it is listed
USED_GENERATE_FLAGS = frozenset({
    "help", "checkpoint", "text_encoder", "vae", "audio_vae", "vocoder", "components", "lora", "prompt",
    "negative_prompt", "fps", "steps", "cfg", "audio_cfg", "stg", "stg_block", "seed", "sampler", "dtype", "device",
    "attention_mode", "ffn_chunks", "vram", "output", "preview_dir", "gpus", "ray_address", "backend",
    "comm_timeout_s", "decoder"})


def add_retake_arguments(p: argparse.ArgumentParser) -> None:
    """``generate``'s flags (those not in :data:`USED_GENERATE_FLAGS` hidden, and refused by
    :func:`prepare_retake` when given) plus the retake's own."""
    add_generate_arguments(p)
    refused = {}
    for action in p._actions:  # argparse has no public way to hide an added flag
        if action.dest not in USED_GENERATE_FLAGS:
            action.help = argparse.SUPPRESS
            refused.setdefault(action.dest, (action.option_strings[0], action.default))
    p.set_defaults(refused_flags=refused)
    for action in p._actions:  # generate's --fps help speaks of --extend-from
        if action.dest == "fps":
            action.help = "frames per second of the output (default: the clip's own, from --from)"
    p.add_argument("--from", dest="retake_from", required=True, metavar="CLIP" + LATENTS_SUFFIX,
                   help=f"the {LATENTS_SUFFIX} file written next to a generated (or extended, or retaken) MP4")
    p.add_argument("--start-time", type=float, required=True, metavar="S",
                   help="start of the range to regenerate, in seconds (inclusive)")
    p.add_argument("--end-time", type=float, required=True, metavar="S",
                   help="end of the range to regenerate, in seconds (exclusive; at most the clip's length)")
    p.add_argument("--no-video", action="store_true", help="keep the whole video; regenerate the sound only")
    p.add_argument("--no-audio", action="store_true", help="keep the whole sound; regenerate the video only")


def prepare_retake(args: argparse.Namespace) -> tuple[Request, SavedLatents]:
    """Everything ``retake`` can check without a model: no ``generate``-only flag, ``generate``'s own checks
    (:func:`~.cli.prepare_request`: settings, output path, model files, LoRA files), the ``--from`` latents and the
    range against the clip. The request gets the clip's size and frame rate (``--fps`` overrides the rate).

    Raises:
        InputError: on the first problem, naming the flag.
    """
    for dest, (flag, default) in getattr(args, "refused_flags", {}).items():
        if getattr(args, dest, default) != default:
            raise InputError(f"{flag} has no effect with retake (a retake keeps the clip's size, its own sound and "
                             "the rest of the clip as the guide); drop it.")
    req, _ = prepare_request(args)
    own = latents_path(args.output)
    if own.resolve() == Path(args.retake_from).resolve():
        out = Path(args.output)
        raise InputError(f"--output {args.output} would write its latents ({own.name}) over the --from file; pick "
                         f"another -o, e.g. {out.with_name(out.stem + '-retake' + out.suffix)}.")
    saved = read_latents(args.retake_from, "--from")
    fps = args.fps if args.fps is not None else saved.fps if saved.fps is not None else req.fps
    _b, _c, f, h, w = saved.video.shape
    req = replace(req, fps=fps, frames=(f - 1) * 8 + 1, height=h * 32, width=w * 32)
    try:
        check_retake(saved.video, saved.audio, fps, args.start_time, args.end_time,
                     regenerate_video=not args.no_video, regenerate_audio=not args.no_audio)
    except InputError as exc:
        text = str(exc).removeprefix("retake: ").replace("start_time", "--start-time")
        text = text.replace("end_time", "--end-time").replace("regenerate_video is off", "--no-video is given")
        text = text.replace("regenerate_audio is off", "--no-audio is given").replace("Turn one on.", "Drop one.")
        raise InputError(f"retake --from {Path(args.retake_from).name} ({clip_seconds(f, fps):g} s): {text}") from exc
    return req, saved


def run_retake(args: argparse.Namespace, attach: AttachWorkers | None = None) -> Path:
    """``retake``: check every input (:func:`prepare_retake`, then the transformer config from the checkpoint's
    header), load the models, regenerate the range and write ``--output`` and its latents. Returns the video's path.
    ``attach`` as in :func:`~.cli.run_generate` (``--gpus``).

    Raises:
        InputError: a bad argument or input file, found before the weights are read where possible.
        CheckpointError / ConfigError: a model file cannot be used.
        NonFiniteError: the model's prediction became NaN or infinite.
        DistributedError: a Ray worker failed or timed out (``--gpus``).
        Cancelled: the run was interrupted.
    """
    from .retake import retake

    req, saved = prepare_retake(args)
    ckpt = open_checkpoint(args.checkpoint)
    check_latent_channels(ckpt.config, saved.video, saved.audio)
    req = apply_model_defaults(args, req, ckpt, extending=True)  # the model's guidance under the flags given
    req = resolve_auto(args, ckpt, req, planned_size(req))
    parts = load_checked_parts(args, ckpt, req, attach)
    progress, close = _progress()
    preview = None if args.preview_dir is None else png_writer(args.preview_dir)
    audio = saved.audio.to(args.device) if saved.audio is not None else None
    try:
        result = retake(parts, req, saved.video.to(args.device), audio, start_time=args.start_time,
                        end_time=args.end_time, regenerate_video=not args.no_video,
                        regenerate_audio=not args.no_audio, progress=progress, preview=preview)
    finally:
        close()
    return save_outputs(result, req, args.output)
