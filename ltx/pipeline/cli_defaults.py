"""What the command line takes from the checkpoint's model version (:mod:`.defaults`), read from its header before
any weight: the guidance under the flags given, the clip length (``--frames auto`` / the LTX-2.5 default) and the
one-line note of what the model's defaults set (where they differ from LTX-2.3's)."""

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
    audio_frames,
    model_defaults,
    model_has_duration_head,
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
    guidance, and the clip length (:func:`resolve_length`). ``args.defaults_note`` gets the one line naming what the
    model's defaults set that differs from LTX-2.3's (None when nothing does), ``args.length_note`` how long the clip
    will be when ``--audio`` decided it; :func:`run_generate` prints both once the models are loaded.

    Raises:
        InputError: see :func:`resolve_length`.
        CheckpointError: ``--duration-head`` holds none, or a file is unreadable.
    """
    row = model_defaults(ckpt.config.version, ckpt.is_distilled)
    video_g, audio_g = guidance_from_args(args, row)
    req = resolve_request(replace(req, video_guidance=video_g, audio_guidance=audio_g), row)
    if extending:
        return req
    req = resolve_length(args, req, ckpt, row)
    note = _describe_row(args, row, req, ckpt)
    args.defaults_note = f"defaults: {row.label}: {note}" if note else None  # printed when the run starts
    return req


def resolve_length(args: argparse.Namespace, req: Request, ckpt: LTXCheckpoint, row: ModelDefaults) -> Request:
    """The clip length from ``--frames`` (a number, ``auto`` or, for LTX-2.5, not given = ``auto``): a number as
    given; ``auto`` with ``--audio`` the audio's length (:func:`~.defaults.audio_frames`: 8k + 1 frames covering it,
    at most 20 s, said in ``args.length_note``; the duration head would cut or pad the user's audio, and
    ltx-pipelines' audio-to-video pipeline has none); ``auto`` otherwise predicted by the LTX-2.5 duration head of
    ``--duration-head`` or the checkpoint (``args.duration_head`` is set to that file; without one, not given = the
    model's 121 frames).

    Raises:
        InputError: ``--frames auto`` without audio on an LTX-2 / LTX-2.3 checkpoint, or on LTX-2.5 without a duration
            head; ``--duration-head`` with an LTX-2 / LTX-2.3 checkpoint (the messages say to give a number of
            frames).
        CheckpointError: ``--duration-head`` holds none, or a file is unreadable.
    """
    from .parts import check_part_files, duration_head_source

    given_head = getattr(args, "duration_head", None)
    check_part_files(ckpt, duration_head=given_head, flags=True)  # a duration head only with LTX-2.5
    args.length_note = None
    auto = args.frames == AUTO or (args.frames is None and row.auto_frames)
    if auto and req.audio is not None:
        samples, rate = req.audio.shape[-1], int(req.audio_sample_rate)
        frames, cut = audio_frames(samples, rate, req.fps)
        args.duration_head = None
        args.length_note = (f"{'warning: ' if cut else ''}length: {frames} frames ({frames / req.fps:.2f} s at "
                            f"{req.fps:g} fps) from --audio ({samples / rate:.2f} s)"
                            + ("; the video covers only its start: give --frames to choose" if cut else "")
                            + ("; --duration-head is not used" if given_head else ""))
        return replace(req, frames=frames)
    name = Path(args.checkpoint).name
    if args.frames == AUTO and not model_has_duration_head(ckpt.version):
        raise InputError(f"--frames auto predicts the length with the LTX-2.5 duration head; {name} is an "
                         f"{ckpt.version.display} checkpoint, which has none: give a number of frames (8k + 1, e.g. "
                         "121).")
    head = duration_head_source(args.checkpoint, given_head)
    args.duration_head = head
    if args.frames == AUTO and head is None:
        raise InputError(f"--frames auto predicts the length with the LTX-2.5 duration head; {name} has none. Give "
                         "--duration-head ltx-2.5-duration-head-bf16.safetensors (Lightricks/LTX-2.5, model_patches/) "
                         "or a number of frames (8k + 1).")
    if args.frames is None:
        req = replace(req, frames=AUTO_FRAMES if row.auto_frames and head is not None else row.frames)
    return req


def _describe_row(args: argparse.Namespace, row: ModelDefaults, req: Request, ckpt: LTXCheckpoint) -> str:
    """What the model's defaults set for this run that the command line left unset and that differs from LTX-2.3's
    defaults, in one line ("" when nothing does)."""
    old = model_defaults("2.3", row.distilled)
    out = []
    if args.steps is None and row.steps != old.steps:
        out.append(f"{row.steps} steps")
    if args.sampler is None and (row.sampler, row.upscale_sampler) != (old.sampler, old.upscale_sampler):
        out.append(row.sampler + (f" (then {row.upscale_sampler})" if req.upscale and row.upscale_sampler !=
                                  row.sampler else ""))
    if req.video_guidance is row.video_guidance and row.video_guidance != old.video_guidance:
        g, a = req.video_guidance, req.audio_guidance
        out.append("no guidance" if not (g.needs_uncond or g.needs_perturbed or g.needs_isolated) else
                   f"CFG {g.cfg:g} / {a.cfg:g}, STG {g.stg:g}")
    if args.image_crf is None and req.images and row.image_crf != old.image_crf:
        out.append(f"image CRF {row.image_crf}")
    if args.frames is None and row.auto_frames and not old.auto_frames:
        if req.frames == AUTO_FRAMES:
            out.append("length from the duration head")
        elif getattr(args, "length_note", None):
            out.append("length from --audio")
    if getattr(args, "decoder", "auto") == "auto" and row.decoder != old.decoder and row.decoder in _decoders(args,
                                                                                                           ckpt):
        out.append(f"{row.decoder} decoder")
    return ", ".join(out)


def _decoders(args: argparse.Namespace, ckpt: LTXCheckpoint) -> tuple[str, ...]:
    """The decoders the run's video VAE file holds (header only; none when it cannot be read: the checks before
    loading say why)."""
    from ..errors import CheckpointError
    from .decoders import decoders_in

    source = getattr(args, "vae", None) or (args.checkpoint if "vae" in ckpt.components else
                                            getattr(args, "components", None))
    if source is None:
        return ()
    try:
        return decoders_in(source)
    except CheckpointError:
        return ()
