"""RS LTXV Generate: node inputs → :func:`rs_ltxv.ltx.pipeline.generate.generate` → LATENT / IMAGE / AUDIO.

:func:`run_generate` takes the hooks (progress, cancel, free) as arguments, so it runs the same inside ComfyUI
(hooks from :mod:`.comfy_env`) and in plain tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..ltx.errors import InputError
from ..ltx.pipeline.components import ModelParts
from ..ltx.pipeline.generate import Result, generate
from ..ltx.pipeline.request import Request
from . import convert, specs


@dataclass
class Hooks:
    """``progress(done, total)``, ``cancel() -> bool`` (or raises), ``free()`` before a run."""

    progress: Callable[[int, int], None] | None = None
    cancel: Callable[[], bool] | None = None
    free: Callable[[], None] | None = None


def model_parts(spec: specs.NodeSpec, v: Mapping[str, Any], req: Request) -> ModelParts:
    """Check the connected objects and assemble :class:`ModelParts`; messages name the node's inputs."""
    from ..ltx.pipeline.parts import UpscalerAdapter, vae_statistics
    from .loaders import LoadedModel

    model, vae = v.get("model"), v.get("vae")
    if not isinstance(model, LoadedModel):
        raise InputError(f"{spec.display_name}: model must come from RS LTXV Model Loader (got "
                         f"{type(model).__name__}); ComfyUI MODEL objects are not supported yet.")
    if not (hasattr(vae, "encode") and hasattr(vae, "decode") and hasattr(vae, "vae")):
        raise InputError(f"{spec.display_name}: vae must come from RS LTXV Video VAE Loader (got "
                         f"{type(vae).__name__}).")
    layers = model.transformer.config.num_layers
    bad = [b for b in req.video_guidance.stg_blocks if b >= layers] if req.video_guidance.needs_perturbed else []
    if bad:
        raise InputError(f"stg_blocks: this model has blocks 0–{layers - 1}; {bad} do not exist.")
    audio_vae = v.get("audio_vae")
    if req.audio is not None and audio_vae is None:
        raise InputError(f"{spec.display_name}: audio is connected but audio_vae is not; connect RS LTXV Audio "
                         "VAE Loader to encode it.")
    parts = ModelParts(model.transformer, video_codec=vae, audio_codec=audio_vae, distilled=model.distilled)
    if req.upscale:
        upsampler = v.get("upscale_model")
        if upsampler is None:
            raise InputError(f"{spec.display_name}: upscale is on but upscale_model is not connected; connect RS "
                             "LTXV Latent Upscaler Loader or turn upscale off.")
        parts.upscaler = UpscalerAdapter(upsampler, *vae_statistics(vae.vae))
    return parts


def outputs(result: Result, fps: float) -> tuple[dict, dict, torch.Tensor, dict]:
    """Result → (video LATENT, audio LATENT, IMAGE, AUDIO) with placeholders for what was not decoded."""
    images = convert.frames_to_image(result.frames) if result.frames is not None else convert.blank_image()
    return (convert.video_latent_dict(result.video_latent, fps), convert.audio_latent_dict(result.audio_latent),
            images, convert.waveform_to_audio(result.waveform, result.sample_rate))


def contexts(v: Mapping[str, Any]):
    return (convert.conditioning_to_contexts(v.get("positive"), "positive"),
            convert.conditioning_to_contexts(v.get("negative"), "negative"))


def run_generate(hooks: Hooks | None = None, **values: Any) -> tuple:
    hooks = hooks or Hooks()
    spec = specs.GENERATE
    req = convert.build_request(spec, values)
    parts = model_parts(spec, values, req)
    ctx = contexts(values)
    if hooks.free:
        hooks.free()
    with torch.inference_mode():
        result = generate(parts, req, contexts=ctx, progress=hooks.progress, cancel=hooks.cancel)
    return outputs(result, req.fps)
