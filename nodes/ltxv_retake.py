"""RS LTXV Retake: regenerate a time range of a clip (video latent + optional audio latent) with
:func:`~rs_ltxv.ltx.pipeline.retake.retake`, keeping everything outside it; outputs like RS LTXV Extend (the same
request building, model parts, contexts and outputs)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from ..ltx.pipeline.retake import retake
from . import convert, specs
from .ltxv_generate import Hooks, contexts, latent_size, model_parts, outputs
from .outputs_used import require_consumed


def run_retake(hooks: Hooks | None = None, **values: Any) -> tuple:
    """Node inputs (:data:`~.specs.RETAKE`) → (video LATENT, audio LATENT, IMAGE, AUDIO). The clip's own frame rate
    (carried by our LATENT) wins over the frame_rate widget.

    Raises:
        InputError: a bad latent or range (before any model call), a missing part, or a setting that does not fit.
    """
    hooks = hooks or Hooks()
    spec = specs.RETAKE
    req = require_consumed(spec, convert.build_request(spec, values), values)
    clip_fps = convert.frame_rate_of(values.get("latent"))
    if clip_fps is not None:
        req = replace(req, fps=clip_fps)
    video = convert.video_latent_from(values.get("latent"))
    audio = convert.audio_latent_from(values.get("audio_latent"))
    v = {**spec.defaults, **{k: x for k, x in values.items() if x is not None}}
    if hooks.free:
        hooks.free()
    parts, req = model_parts(spec, values, req, hooks, latent_size(video, req.fps))
    ctx = contexts(values)
    with torch.inference_mode():
        result = retake(parts, req, video, audio, start_time=float(v["start_time"]), end_time=float(v["end_time"]),
                        regenerate_video=bool(v["regenerate_video"]), regenerate_audio=bool(v["regenerate_audio"]),
                        contexts=ctx, progress=hooks.progress, cancel=hooks.cancel, preview=hooks.preview)
    return outputs(result, req.fps)
