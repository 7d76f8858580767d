"""RS LTXV Extend: continue a clip (video latent + optional audio latent) with :func:`~rs_ltxv.ltx.pipeline.extend_clip.
extend` (optionally through the 2× upscale pass); outputs like RS LTXV Generate."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from ..ltx.pipeline.extend_clip import extend
from . import convert, specs
from .ltxv_generate import Hooks, contexts, latent_size, model_parts, outputs
from .outputs_used import require_consumed


def run_extend(hooks: Hooks | None = None, **values: Any) -> tuple:
    hooks = hooks or Hooks()
    spec = specs.EXTEND
    req = require_consumed(spec, convert.build_request(spec, values), values)
    clip_fps = convert.frame_rate_of(values.get("latent"))
    if clip_fps is not None:
        req = replace(req, fps=clip_fps)  # the clip's own frame rate wins over the widget
    video = convert.video_latent_from(values.get("latent"))
    audio = convert.audio_latent_from(values.get("audio_latent"))
    if hooks.free:
        hooks.free()
    v = {**spec.defaults, **{k: x for k, x in values.items() if x is not None}}
    size = latent_size(video, req.fps, int(v["overlap_frames"]) + int(v["num_new_frames"]) + 1)
    parts, req = model_parts(spec, values, replace(req, audio=None), hooks, size)
    ctx = contexts(values)
    with torch.inference_mode():
        result = extend(parts, req, video, audio, new_frames=int(v["num_new_frames"]),
                        overlap_frames=int(v["overlap_frames"]), overlap_strength=float(v["overlap_strength"]),
                        contexts=ctx, progress=hooks.progress, cancel=hooks.cancel, preview=hooks.preview)
    return outputs(result, req.fps)
