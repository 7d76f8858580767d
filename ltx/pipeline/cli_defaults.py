"""What the command line takes from the checkpoint's model version (:mod:`.defaults`), read from its header before
any weight: the guidance under the flags given, the clip length (``--frames auto`` / the LTX-2.5 default) and the
one-line note of what the model's defaults set."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from ..errors import InputError
from ..loading import LTXCheckpoint
from ..plan.auto import AUTO
from .defaults import (
    AUTO_FRAMES,
    DEFAULT_AUDIO_GUIDANCE,
    DEFAULT_VIDEO_GUIDANCE,
    ModelDefaults,
    model_defaults,
    resolve_request,
)
from .guidance import GuidanceParams
from .request import Request


def guidance_from_args(args: argparse.Namespace,
                       row: ModelDefaults | None = None) -> tuple[GuidanceParams, GuidanceParams]:
    """Video and audio guidance from ``--cfg`` / ``--audio-cfg`` / ``--stg`` / ``--stg-block``: none given → the
    model's (the Request's default objects, resolved when the run starts); some given → those on top of ``row``'s
    guidance (the checkpoint's defaults; without a row LTX-2.3's); ``--cfg 1`` → no guidance at all."""
    if args.cfg == 1.0:  # distilled / CFG-free: conditional only
        return GuidanceParams(), GuidanceParams()
    given = {"cfg": args.cfg, "stg": args.stg,
             "stg_blocks": tuple(args.stg_block) if args.stg_block else None}
    given = {k: v for k, v in given.items() if v is not None}
    if not given and args.audio_cfg is None:
        return DEFAULT_VIDEO_GUIDANCE, DEFAULT_AUDIO_GUIDANCE
    video_base = row.video_guidance if row is not None else DEFAULT_VIDEO_GUIDANCE
    audio_base = row.audio_guidance if row is not None else DEFAULT_AUDIO_GUIDANCE
    shared = {k: v for k, v in given.items() if k != "cfg"}
    video_g = replace(video_base, **given)
    audio_g = replace(audio_base, **shared, **({} if args.audio_cfg is None else {"cfg": args.audio_cfg}))
    return video_g, audio_g


def apply_model_defaults(args: argparse.Namespace, req: Request, ckpt: LTXCheckpoint,
                         extending: bool = False) -> Request:
    """The checkpoint's defaults (:func:`~.defaults.model_defaults` of its version and distilled flag) for what the
    command line left unset, read from its header before any weight: guidance flags given on top of the model's
    guidance, and the clip length — ``--frames auto`` (or, for LTX-2.5, no ``--frames``) predicted by the duration
    head when ``--duration-head`` or the checkpoint has one (``args.duration_head`` is set to that file), else the
    model's 121 frames. When the model's settings differ from LTX-2.3's, ``args.defaults_note`` says which it used
    (one line, printed by :func:`run_generate` once the models are loaded).

    Raises:
        InputError: ``--frames auto`` but no duration head (the message says which file to give).
        CheckpointError: ``--duration-head`` holds none, or a file is unreadable.
    """
    from .parts import duration_head_source

    row = model_defaults(ckpt.config.version, ckpt.is_distilled)
    video_g, audio_g = guidance_from_args(args, row)
    req = resolve_request(replace(req, video_guidance=video_g, audio_guidance=audio_g), row)
    if extending:
        return req
    head = duration_head_source(args.checkpoint, getattr(args, "duration_head", None))
    args.duration_head = head
    if args.frames == AUTO and head is None:
        raise InputError("--frames auto predicts the length with the LTX-2.5 duration head; "
                         f"{Path(args.checkpoint).name} has none. Give --duration-head "
                         "ltx-2.5-duration-head-bf16.safetensors (Lightricks/LTX-2.5, model_patches/) or a number of "
                         "frames (8k + 1).")
    if args.frames is None:
        frames = AUTO_FRAMES if row.auto_frames and head is not None else row.frames
        req = replace(req, frames=frames)
    historic = model_defaults("2.3", False)
    if replace(row, generation="2.3", distilled=False, source=historic.source) != historic:
        args.defaults_note = f"defaults: {row.label}: {_describe_row(args, row, req)}"  # printed when the run starts
    return req


def _describe_row(args: argparse.Namespace, row: ModelDefaults, req: Request) -> str:
    """What the model's defaults set that the command line left unset, in one line."""
    out = []
    if args.steps is None:
        out.append(f"{row.steps} steps")
    if args.sampler is None:
        out.append(row.sampler + (f" (then {row.upscale_sampler})" if req.upscale and row.upscale_sampler !=
                                  row.sampler else ""))
    if req.video_guidance is row.video_guidance and req.video_guidance.cfg == 1 and not req.video_guidance.stg:
        out.append("no guidance")
    if args.image_crf is None and req.images:
        out.append(f"image CRF {row.image_crf}")
    if args.frames is None:
        out.append("length from the duration head" if req.frames == AUTO_FRAMES else f"{req.frames} frames")
    return ", ".join(out) or "as given"
