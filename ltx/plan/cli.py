"""``python -m rs_ltxv plan``: predicted peak memory per stage of a generation and the settings that fit a budget,
from a checkpoint's header (nothing is loaded)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

import torch

from ..errors import CheckpointError, InputError
from ..pipeline.defaults import DECODERS

DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
          "fp32": torch.float32, "float32": torch.float32}


def add_plan_arguments(p: argparse.ArgumentParser) -> None:
    """The ``plan`` sub-command's arguments."""
    p.add_argument("--checkpoint", required=True, help="LTX-2 / LTX-2.3 / LTX-2.5 checkpoint (.safetensors or "
                   ".gguf); only its header is read")
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--height", type=int, required=True)
    p.add_argument("--frames", type=int, required=True, help="pixel frames, 8k+1")
    p.add_argument("--fps", type=float, default=24.0)
    p.add_argument("--vram", help="device memory budget, e.g. 24GB, 24 GiB, 16000MiB (GB = GiB); without it the "
                   "peaks are printed with the cheapest settings")
    p.add_argument("--upscale", action="store_true", help="two passes: half size, then the 2× refinement")
    p.add_argument("--dtype", default="bf16", choices=sorted(DTYPES), help="run dtype of float weights and "
                   "activations")
    p.add_argument("--images", type=int, default=0, help="number of image guides (counted as keyframe guides)")
    p.add_argument("--vae", help="file with the video VAE (default: the checkpoint when it holds one); LTX-2.5's "
                   "ltx-2.5-video-vae-bf16.safetensors holds the diffusion decoder, ltx-2.5-video-vae-conv-bf16 and "
                   "the LTX-2 / 2.3 VAEs the convolutional one")
    p.add_argument("--decoder", choices=DECODERS, default="auto", help="video decoder to plan, as generate's "
                   "--decoder: vae (convolutional), diffusion (LTX-2.5's, in its 512 px / 80-frame tiles) or auto: "
                   "the one the video VAE file holds")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _vae(path: str | None, checkpoint: str, decoder: str = "auto"):
    """(decoder config, its weight bytes from the file header, "vae" | "diffusion") of the video decoder a run would
    use from ``path`` (else the checkpoint); (None, 0, "vae") when no file holds one and ``decoder`` is auto.

    Raises:
        InputError: ``decoder`` names a decoder the file does not hold (or, without --vae, one the checkpoint lacks).
        CheckpointError: the file cannot be read as a video VAE.
    """
    from ..loading.diffusion_decoder import open_diffusion_decoder
    from ..loading.video_vae import open_video_vae
    from ..pipeline.decoders import DECODER_FILES, choose_decoder, decoders_in

    if path is None and not decoders_in(checkpoint):
        if decoder != "auto":
            raise InputError(f"--decoder {decoder}: {checkpoint} holds no video decoder; give --vae with the video "
                             f"VAE file ({DECODER_FILES[decoder]}).")
        return None, 0, "vae"
    kind = "vae"
    try:
        kind = choose_decoder(path or checkpoint, decoder, "diffusion")
        if kind == "diffusion":
            dec = open_diffusion_decoder(path or checkpoint)
            return dec.config, sum(dec.file.tensors[k].nbytes for k in dec.names.values()), kind
        vae = open_video_vae(path or checkpoint)
    except CheckpointError as exc:
        if path:
            raise CheckpointError(f"--vae {path}: {exc}") from exc
        return None, 0, kind
    weights = sum(vae.file.tensors[k].nbytes for n, k in vae.names.items() if n.startswith("decoder."))
    return vae.config, weights, kind


def run_plan(args: argparse.Namespace) -> int:
    """Print the plan; returns 0 when it fits.

    Raises:
        InputError: bad size / budget / count, or the job does not fit the budget (after the table is printed).
        CheckpointError: the checkpoint cannot be read.
    """
    from ..loading.checkpoint import check_quantisation, open_checkpoint
    from ..pipeline.cli_inputs import check_model_file
    from ..pipeline.latents import VideoSize
    from . import max_frames, min_budget, parse_memory_size, plan_memory, require_fit, weights_from_infos

    size = VideoSize(args.frames, args.height, args.width, args.fps)
    if args.upscale and (args.width % 64 or args.height % 64):
        raise InputError(f"--upscale needs width and height multiples of 64; got {args.width}×{args.height}.")
    if args.images < 0:
        raise InputError(f"--images must be 0 or more; got {args.images}.")
    budget = None if args.vram is None else parse_memory_size(args.vram)
    check_model_file(args.checkpoint, "--checkpoint")
    check_model_file(args.vae, "--vae")
    dtype = DTYPES[args.dtype]
    ckpt = open_checkpoint(args.checkpoint)
    check_quantisation(ckpt)  # refuse what generate refuses, before planning
    weights = weights_from_infos(ckpt.infos("transformer"), dtype)
    vae, vae_weights, _kind = _vae(args.vae, args.checkpoint, getattr(args, "decoder", "auto"))
    kw = dict(weights=weights, dtype=dtype, upscale=args.upscale, images=args.images, vae=vae,
              vae_weights=vae_weights)
    plan = plan_memory(ckpt.config, size, budget, **kw)
    if args.json:
        print(json.dumps({"stages": [{"name": s.name, "tokens": s.tokens, "peak": s.peak, "phase": s.phase,
                                      "parts": s.parts} for s in plan.stages],
                          "ffn_chunks": plan.ffn_chunks, "offload": plan.offload,
                          "decoder": plan.decoder if vae is not None else None,
                          "tiling": None if plan.tiling is None else asdict(plan.tiling),
                          "budget": plan.budget, "reserve": plan.reserve, "fits": plan.fits}, indent=2))
    else:
        print(plan.format())
    if not plan.fits:
        require_fit(plan, size, max_frames(ckpt.config, size, budget, **kw) or 0,
                    needed=min_budget(ckpt.config, size, **kw))
    return 0
