"""``generate``'s ID-LoRA flags, checked before any model is loaded: ``--reference-audio FILE`` (a few seconds of the
voice to give the generated speech, also with ``--extend-from``; load the ID-LoRA with ``--lora``) and
``--identity-guidance X`` (default 3, as ComfyUI's ``LTXVReferenceAudio``; 0 = no extra pass)."""

from __future__ import annotations

import argparse
from dataclasses import replace

from ..errors import InputError
from .media import load_audio
from .request import Request


def add_identity_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ID-LoRA flags to the ``generate`` parser ``p``."""
    p.add_argument("--reference-audio", metavar="FILE", help="ID-LoRA reference speech (about 5 s; any file with "
                   "sound): the generated voice takes its identity; load the ID-LoRA with --lora")
    p.add_argument("--identity-guidance", type=float, default=None, metavar="X", help="with --reference-audio: "
                   "identity guidance scale, one extra model pass per step without the reference (default 3; 0 = "
                   "off)")


def apply_identity_arguments(args: argparse.Namespace, req: Request) -> Request:
    """``req`` with the ``--reference-audio`` waveform (decoded at its own rate) and ``--identity-guidance``.

    Raises:
        InputError: ``--identity-guidance`` without ``--reference-audio``, an unreadable file, or a value the
            request refuses (e.g. a negative scale).
    """
    if args.reference_audio is None:
        if args.identity_guidance is not None:
            raise InputError("--identity-guidance has no effect without --reference-audio; add one or drop it.")
        return req
    try:
        wave, rate = load_audio(args.reference_audio)
    except InputError as exc:
        raise InputError(f"--reference-audio: {exc}") from exc
    scale = Request.identity_guidance if args.identity_guidance is None else args.identity_guidance
    try:
        return replace(req, reference_audio=wave, reference_audio_sample_rate=rate, identity_guidance=scale)
    except InputError as exc:
        raise InputError(f"--reference-audio / --identity-guidance: {exc}") from exc
