"""``generate``'s IC-LoRA flags, checked before any model is loaded: ``--reference-video FILE``,
``--reference-strength``, ``--reference-attention`` and ``--reference-downscale-factor`` (default: the
``reference_downscale_factor`` the ``--lora`` files record, else 1)."""

from __future__ import annotations

import argparse
from dataclasses import replace

from ..errors import InputError
from .ic_lora import load_video, reference_downscale_factor
from .reference_guide import ReferenceVideoGuide
from .request import Request


def add_reference_arguments(p: argparse.ArgumentParser) -> None:
    """Add the IC-LoRA flags to the ``generate`` parser ``p``."""
    p.add_argument("--reference-video", metavar="FILE", help="IC-LoRA control video (depth, pose, edges, …): "
                   "resized to the video (÷ the LoRA's reference_downscale_factor), cut to its length; load the "
                   "IC-LoRA with --lora")
    p.add_argument("--reference-strength", type=float, default=None, help="with --reference-video: how much of it "
                   "is kept, 0…1 (default 1)")
    p.add_argument("--reference-attention", type=float, default=None, help="with --reference-video: attention "
                   "between it and the video, 0…1 (default 1)")
    p.add_argument("--reference-downscale-factor", type=int, default=None, metavar="N", help="with "
                   "--reference-video: output size / reference size (default: the --lora files' "
                   "reference_downscale_factor metadata, else 1)")


def apply_reference_arguments(args: argparse.Namespace, req: Request) -> Request:
    """``req`` with the ``--reference-video`` (decoded, at most ``req.frames`` frames) as its reference video.
    ``args.loras`` must hold the checked ``--lora`` specs (their metadata gives the factor).

    Raises:
        InputError: a reference flag without ``--reference-video``, ``--reference-video`` with ``--extend-from``,
            an unreadable video, LoRAs recording different factors, ``--reference-downscale-factor`` disagreeing
            with them, or a value the request refuses.
    """
    given = [f for f, v in (("--reference-strength", args.reference_strength),
                            ("--reference-attention", args.reference_attention),
                            ("--reference-downscale-factor", args.reference_downscale_factor)) if v is not None]
    if args.reference_video is None:
        if given:
            raise InputError(f"{given[0]} has no effect without --reference-video; add one or drop it.")
        return req
    if args.extend_from:
        raise InputError("--reference-video works with generate, not with --extend-from; drop one.")
    recorded = reference_downscale_factor(spec.path for spec in args.loras)
    factor = recorded if args.reference_downscale_factor is None else args.reference_downscale_factor
    if recorded != 1 and factor != recorded:
        raise InputError(f"--reference-downscale-factor {factor} disagrees with the --lora file's "
                         f"reference_downscale_factor {recorded}; drop the flag (the LoRA's value is used).")
    try:
        frames = load_video(args.reference_video, max_frames=req.frames)
    except InputError as exc:
        raise InputError(f"--reference-video: {exc}") from exc
    guide = ReferenceVideoGuide(frames, strength=1.0 if args.reference_strength is None else args.reference_strength,
                                attention=1.0 if args.reference_attention is None else args.reference_attention,
                                downscale_factor=factor)
    try:
        return replace(req, reference_videos=(guide,))
    except InputError as exc:
        raise InputError(f"--reference-video {args.reference_video}: {exc}") from exc
