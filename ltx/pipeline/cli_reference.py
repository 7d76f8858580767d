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
                   "--reference-video: output size / reference size, 1…64 (default: the --lora files' "
                   "reference_downscale_factor metadata, else 1; the flag overrides the metadata)")


def apply_reference_arguments(args: argparse.Namespace, req: Request, notes: list[str] | None = None) -> Request:
    """``req`` with the ``--reference-video`` (decoded, at most ``req.frames`` frames) as its reference video.
    ``args.loras`` must hold the checked ``--lora`` specs (their metadata gives the factor; an explicit
    ``--reference-downscale-factor`` overrides it, with a warning appended to ``notes`` when they differ).

    Raises:
        InputError: a reference flag without ``--reference-video``, ``--reference-video`` with ``--extend-from``,
            a factor outside 1…64, an unreadable video, LoRAs recording different factors (without the flag), or a
            value the request refuses.
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
    given = args.reference_downscale_factor
    if given is not None and not 1 <= given <= 64:
        raise InputError(f"--reference-downscale-factor {given}: must be a whole number from 1 to 64 (output size / "
                         "reference size; 1 = the reference at the video's size).")
    if given is None:
        factor = reference_downscale_factor(spec.path for spec in args.loras)
    else:  # the flag wins over the metadata (which may be wrong); LoRAs that disagree among themselves are moot
        factor = given
        try:
            recorded = reference_downscale_factor(spec.path for spec in args.loras)
        except InputError:
            recorded = None
        if recorded != 1 and recorded != given and notes is not None:  # 1: no metadata to override
            said = ("the --lora files record different reference_downscale_factors" if recorded is None else
                    f"the --lora file records reference_downscale_factor {recorded}")
            notes.append(f"--reference-downscale-factor {given} overrides the LoRA metadata ({said}).")
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
