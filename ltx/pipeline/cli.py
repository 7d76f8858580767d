"""``python -m rs_ltxv generate`` and ``python -m rs_ltxv demo``: argument parsing and the runs behind them.

``generate`` writes ``OUT.mp4`` (H.264 + AAC) and ``OUT.latents.safetensors`` (video and audio latents), which
``--extend-from`` continues later. ``demo`` builds tiny random-weight models of the real architecture locally (no
downloads) and renders a short clip with sound through the same code path.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import save

from ...ops.attention import check_attention_mode, resolve_backend
from ..errors import InputError
from ..loading import LTXCheckpoint, open_checkpoint
from ..offload import check_offload_device
from ..plan.auto import AUTO
from ..plan.budget import parse_memory_size
from .checks import MAX_FRAMES, check_frames, check_number, check_stg_blocks
from .cli_defaults import apply_model_defaults, guidance_from_args
from .cli_id_lora import add_identity_arguments, apply_identity_arguments
from .cli_inputs import (
    LATENTS_SUFFIX,
    SavedLatents,
    check_device,
    check_model_file,
    check_parallel,
    check_parts_given,
    lora_reason,
    parse_image_spec,
    parse_lora_spec,
    read_latents,
)
from .cli_reference import add_reference_arguments, apply_reference_arguments
from .defaults import (
    AUTO_FRAMES,
    DECODERS,
    model_defaults,
    planning_frames,
)
from .extend import check_extension_frames, plan_extension
from .generate import Result, extend, generate
from .latents import VideoSize
from .media import load_audio, load_image, write_mp4
from .output_file import atomic_output, check_output_path
from .parts import check_part_files, load_model_parts
from .preview import png_writer
from .protocols import ModelParts
from .request import ImageGuide, Request

TINY_STG_BLOCK = 1  # the demo's tiny transformer has 2 blocks
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
#: ``attach(parts, parallel={gpus, ray_address, backend[, comm_timeout_s]}, recipe={checkpoint, dtype, distilled[,
#: loras]}) -> parts`` (``loras``: ``LoraPatch`` es read from ``--lora``):
#: ``rs_ltxv.distributed.attach(parts, ParallelConfig(**parallel), LoadRecipe(**recipe))``, given by
#: ``python -m rs_ltxv`` (this package may not import ``rs_ltxv.distributed``)
AttachWorkers = Callable[..., ModelParts]


def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``generate`` sub-command's flags to ``p``: model files, prompt, size (pixels), ``--frames`` (pixel
    frames, ``8·k + 1``), ``--fps`` (Hz), sampling and guidance, ``--extend-from`` and the output path. The old
    spellings of three flags stay accepted but hidden (see the comments below)."""
    p.add_argument("--checkpoint", required=True, help="LTX-2 / LTX-2.3 / LTX-2.5 checkpoint or transformer file "
                   "(.safetensors or .gguf)")
    p.add_argument("--text-encoder", required=True, help="Gemma-3 folder, single file or .gguf; LTX-2.5: the bundled "
                   "Gemma-4 file (gemma4-12b-with-proj-ltx-2.5-bf16.safetensors)")
    p.add_argument("--vae", help="video VAE file, when --checkpoint has none (GGUF / ComfyUI split files; LTX-2.5: "
                   "ltx-2.5-video-vae-bf16.safetensors)")
    p.add_argument("--decoder", choices=DECODERS, default="auto", help="video decoder: vae (convolutional), "
                   "diffusion (LTX-2.5's diffusion decoder) or auto: the diffusion decoder for LTX-2.5 when the video "
                   "VAE file has one, else the VAE's")
    p.add_argument("--duration-head", metavar="FILE", help="LTX-2.5 duration head (ltx-2.5-duration-head-bf16."
                   "safetensors) for --frames auto; not needed when --checkpoint holds it")
    p.add_argument("--audio-vae", help="audio VAE (+ vocoder) file, when --checkpoint has none")
    p.add_argument("--vocoder", help="vocoder file, when the audio VAE file has none")
    p.add_argument("--components", help="one file with the VAEs and vocoder (e.g. the official single file), used for "
                   "each part --checkpoint lacks and no flag above gives")
    p.add_argument("--upsampler", help="latent upsampler file: enables the 2x upscale pass")
    p.add_argument("--upscaler", dest="upsampler", help=argparse.SUPPRESS)  # old spelling of --upsampler
    p.add_argument("--lora", action="append", default=[], metavar="FILE[:STRENGTH]",
                   help="a LoRA for the transformer (.safetensors; official/ComfyUI, diffusers or kohya keys) at a "
                   "strength (default 1), repeatable; applied in order")
    p.add_argument("--prompt", required=True)
    p.add_argument("--negative-prompt", default=None)
    p.add_argument("--width", type=int, help="pixels, multiple of 32 (default 768; with --extend-from: the clip's)")
    p.add_argument("--height", type=int, help="pixels, multiple of 32 (default 512; with --extend-from: the clip's)")
    p.add_argument("--frames", type=_frames_arg, help="8k+1 pixel frames, or auto: with --audio as long as the "
                   "audio (at most 20 s), else predicted from the prompt by the LTX-2.5 duration head (default: auto "
                   "for LTX-2.5 when --audio or a duration head is there, else 121; not with --extend-from)")
    p.add_argument("--fps", type=float, default=None, help="frames per second (default 24; with "
                   "--extend-from: the clip's own)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's: 30; distilled "
                   "LTX-2.5: the 8 distilled steps)")
    p.add_argument("--cfg", type=float, default=None, help="video CFG (1 = off, e.g. for distilled models; default: "
                   "the model's: 3; distilled LTX-2.5: off)")
    p.add_argument("--audio-cfg", type=float, default=None, help="audio CFG (default: the model's: 7; distilled "
                   "LTX-2.5: off)")
    p.add_argument("--stg", type=float, default=None, help="STG scale (default: the model's: 1; distilled LTX-2.5: "
                   "off)")
    p.add_argument("--stg-block", type=int, action="append", help="block(s) for STG, repeatable (default 28 for "
                   "every model; ltx-pipelines uses 29 for LTX-2 19B: give --stg-block 29 to follow it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampler", default=None, choices=["euler", "euler_ancestral", "res_2s"], help="sampler (default: "
                   "the model's: euler; distilled LTX-2.5: euler_ancestral in the first pass, euler after --upsampler)")
    p.add_argument("--image-crf", type=float, default=None, metavar="CRF", help="H.264 CRF the --image guides are "
                   "re-compressed at, 0 = none (default: the model's: 33; LTX-2.5: 18)")
    p.add_argument("--image", action="append", default=[], metavar="PATH[:FRAME[:STRENGTH]]",
                   help="conditioning image at a pixel frame (default 0; -1 = last), repeatable")
    p.add_argument("--audio", help="audio file to condition on (kept fixed while the video is generated)")
    add_reference_arguments(p)
    add_identity_arguments(p)
    p.add_argument("--extend-from", help="OUT.latents.safetensors of a previous run to continue")
    p.add_argument("--new-frames", type=int, help="with --extend-from: frames to add (multiple of 8; default 80)")
    p.add_argument("--overlap-frames", type=int, help="with --extend-from: frames of the clip's end that guide "
                   "the new ones (multiple of 8; default 16)")
    p.add_argument("--dtype", default="bf16", choices=list(DTYPES))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--attention-mode", default="auto", help="attention kernel: auto | default (PyTorch SDPA; also "
                   "\"sdpa\") | sage | flash — the node input's choices")
    p.add_argument("--attention", dest="attention_mode", help=argparse.SUPPRESS)  # old spelling
    p.add_argument("--ffn-chunks", type=_ffn_chunks_arg, default=1, help="split the feed-forward layers into this "
                   "many chunks along the sequence (lower peak memory; 1 = off), or auto: the fewest whose predicted "
                   "peak fits --vram / the device's free memory (the memory planner, as `plan`; 1 on the CPU)")
    p.add_argument("--ff-chunks", dest="ffn_chunks", type=_ffn_chunks_arg, help=argparse.SUPPRESS)  # old spelling
    p.add_argument("--offload", nargs="?", const=True, default=False, type=_offload_arg, metavar="auto",
                   help="stream the transformer's blocks from CPU memory to the GPU one at a time, the next one "
                   "prefetched (for models larger than free VRAM; same output, slower); --offload auto: only when the "
                   "memory planner predicts the model does not fit --vram / the device's free memory otherwise")
    p.add_argument("--vram", default=None, metavar="SIZE", help="with --ffn-chunks auto / --offload auto: the device "
                   "memory to plan for, e.g. 24GB (default: the CUDA device's free memory; unlimited on the CPU)")
    p.add_argument("--output", "-o", default="outputs/ltx.mp4")
    p.add_argument("--preview-dir", default=None, metavar="DIR", help="write a cheap preview of every sampling step "
                   "(a fitted latent-to-RGB map, no VAE decode) as DIR/step_0001.png, …")
    p.add_argument("--gpus", type=int, default=1, metavar="N", help="spread each denoising step over N GPUs (Ray "
                   "workers, each loading --checkpoint itself; default 1 = this process only). Without CUDA: N CPU "
                   "workers (gloo)")
    p.add_argument("--ray-address", default=None, metavar="ADDR", help="with --gpus: run the workers on a Ray "
                   "cluster: auto (this machine joined it with `ray start`) or HOST:PORT (default: a local Ray)")
    p.add_argument("--backend", choices=("auto", "nccl", "gloo"), default="auto", help="with --gpus: how the "
                   "workers talk: auto (NCCL on GPUs, gloo on CPU workers), nccl, or gloo (CPU workers, e.g. to try "
                   "it on a machine whose GPUs are busy)")
    p.add_argument("--comm-timeout", dest="comm_timeout_s", type=float, default=None, metavar="S",
                   help="with --gpus: seconds a worker waits for the others before the run fails (default 120)")


def _ffn_chunks_arg(text: str) -> int | str:
    """``--ffn-chunks``: a whole number or ``auto``."""
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of chunks (1 = off) or auto") from None


def _frames_arg(text: str) -> int | str:
    """``--frames``: a whole number of pixel frames or ``auto`` (the duration head)."""
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give 8k+1 pixel frames (e.g. 121) or auto") from None


def _offload_arg(text: str) -> str:
    """``--offload`` takes no value (on) or ``auto``."""
    if text.strip().lower() != AUTO:
        raise argparse.ArgumentTypeError(f"{text!r}: --offload takes no value (stream the blocks) or auto")
    return AUTO


def _progress():
    try:
        from tqdm import tqdm
    except ImportError:
        start = time.perf_counter()

        def report(done: int, total: int) -> None:
            print(f"\rstep {done}/{total}  {time.perf_counter() - start:6.1f} s", end="", file=sys.stderr)
            if done == total:
                print(file=sys.stderr)

        return report, lambda: None
    bar = tqdm(unit="step", delay=0.2)  # no empty "0step" line before the total is known

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    def close() -> None:
        # the bar is drawn by refresh(), which tqdm's close() does not count as shown (delay): it would leave the
        # cursor on the bar's line, and the output path or "error: interrupted" would be printed after the bar
        ends_line = getattr(bar, "last_print_t", 0) >= getattr(bar, "start_t", 0) + getattr(bar, "delay", 0)
        bar.close()
        if bar.total and not ends_line:
            print(file=sys.stderr)

    return update, close


def _image(spec: str) -> ImageGuide:
    path, frame, strength = parse_image_spec(spec)
    return ImageGuide(load_image(path), frame, strength)


def save_outputs(result: Result, request: Request, output: str | Path) -> Path:
    """Write the MP4 (with sound when there is audio) and the latents next to it (``OUT.latents.safetensors``:
    ``video`` ``(1, 128, F, H, W)`` (F latent frames), ``audio`` ``(1, 8, T, 16)``, ``fps`` metadata), each
    atomically. Returns the video's path.

    Raises:
        InputError: the frames or waveform cannot be written as MP4 (see :func:`~.media.write_mp4`).
    """
    out = Path(output)
    if result.frames is not None:
        audio = result.waveform[0] if result.waveform is not None else None
        write_mp4(out, result.frames[0], request.fps, audio=audio, sample_rate=result.sample_rate)
    tensors = {"video": result.video_latent.contiguous().cpu()}
    if result.audio_latent is not None:
        tensors["audio"] = result.audio_latent.contiguous().cpu()
    with atomic_output(latents_path(out)) as file:
        file.write(save(tensors, metadata={"fps": str(request.fps)}))
    return out


def latents_path(output: str | Path) -> Path:
    """The latents file written next to the video ``output``: ``OUT.mp4`` → ``OUT.latents.safetensors``."""
    return Path(output).with_suffix(LATENTS_SUFFIX)



#: flags that only mean something with or without --extend-from, and their defaults
ONLY_WHEN_EXTENDING = {"new_frames": 80, "overlap_frames": 16}
ONLY_WHEN_GENERATING = {"width": 768, "height": 512, "frames": None}  # frames: the model's (apply_model_defaults)


def apply_defaults(args: argparse.Namespace, extending: bool) -> None:
    """Fill the defaults of the size and extension flags; a flag given where it has no effect is an error (the
    size of an extension is the clip's own).

    Raises:
        InputError: e.g. ``--new-frames`` without ``--extend-from``, or ``--width`` with it.
    """
    used, unused = (ONLY_WHEN_EXTENDING, ONLY_WHEN_GENERATING) if extending else (
        ONLY_WHEN_GENERATING, ONLY_WHEN_EXTENDING)
    for name in unused:
        if getattr(args, name) is not None:
            flag = "--" + name.replace("_", "-")
            raise InputError(f"{flag} has no effect {'with' if extending else 'without'} --extend-from"
                             f"{' (an extension keeps the clip' + chr(39) + 's size)' if extending else ''}; drop it.")
    for name, default in used.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    for name, default in unused.items():
        setattr(args, name, default)


def check_preview_dir(folder: str) -> Path:
    """``--preview-dir``: a folder name (not empty) where ``step_0001.png``, … can be written.

    Raises:
        InputError: an empty value, a sub-folder named like a preview file, or an unwritable place.
    """
    if not folder.strip():
        raise InputError("--preview-dir is empty; give a folder for the preview pictures, e.g. --preview-dir "
                         "previews.")
    first = Path(folder) / "step_0001.png"
    if first.is_dir():
        raise InputError(f"--preview-dir {folder}: it holds a sub-folder named like a preview file ({first.name}); "
                         "pick another folder.")
    check_output_path(first, "--preview-dir")
    return Path(folder)


def warn(message: str) -> None:
    """Print one ``warning: …`` line on stderr (the run goes on)."""
    print(f"warning: {' '.join(message.split())}", file=sys.stderr)


def prepare_request(args: argparse.Namespace) -> tuple[Request, SavedLatents | None]:
    """Everything ``generate`` can check without a model, in order: settings, the output path, the
    ``--extend-from`` latents, images, audio and model paths. Raises :class:`InputError` on the first problem."""
    check_attention_mode(args.attention_mode)
    check_device(args.device)
    check_auto_arguments(args)
    check_parallel(args.gpus, args.ray_address, args.comm_timeout_s)
    if args.gpus == 1 and args.backend != "auto":
        raise InputError("--backend has no effect with one GPU; add --gpus 2 (or more) or drop it.")
    video_g, audio_g = guidance_from_args(args)
    extending = bool(args.extend_from)
    apply_defaults(args, extending)
    if extending:
        check_extension_frames(args.new_frames, args.overlap_frames)
    if isinstance(args.frames, int):
        check_frames_arg(args.frames)
    frames = AUTO_FRAMES if args.frames == AUTO else 121 if args.frames is None else args.frames
    req = Request(prompt=args.prompt, width=args.width, height=args.height, frames=frames,
                  fps=24.0 if args.fps is None else args.fps, seed=args.seed, steps=args.steps, sampler=args.sampler,
                  video_guidance=video_g, audio_guidance=audio_g, upscale=bool(args.upsampler),
                  image_crf=args.image_crf,
                  attention_mode=args.attention_mode, ffn_chunks=1 if args.ffn_chunks == AUTO else args.ffn_chunks,
                  free_between_stages=True)
    check_output_path(args.output, "--output", suffixes=(".mp4",))
    if args.preview_dir is not None:
        if args.gpus > 1:
            raise InputError("--preview-dir has no effect with --gpus (the workers report progress only); drop one.")
        check_preview_dir(args.preview_dir)
    saved = read_latents(args.extend_from) if extending else None
    if saved is not None:
        plan_extension(saved.video.shape[2], args.new_frames, args.overlap_frames, req.fps)  # overlap inside clip
    if saved is not None and saved.fps is not None and args.fps is None:
        req = replace(req, fps=saved.fps)  # keep the clip's frame rate
    if args.negative_prompt is not None:
        req = replace(req, negative_prompt=args.negative_prompt)
    if args.image:
        req = replace(req, images=tuple(_image(s) for s in args.image))
    if args.audio:
        wave, rate = load_audio(args.audio)
        try:
            req = replace(req, audio=wave, audio_sample_rate=rate)
        except InputError as exc:
            raise InputError(f"--audio {args.audio}: {exc}") from exc
    for path, flag in ((args.checkpoint, "--checkpoint"), (args.text_encoder, "--text-encoder"),
                       (args.upsampler, "--upsampler"), (args.vae, "--vae"), (args.audio_vae, "--audio-vae"),
                       (args.vocoder, "--vocoder"), (args.components, "--components"),
                       (getattr(args, "duration_head", None), "--duration-head")):
        check_model_file(path, flag)
    args.loras = tuple(parse_lora_spec(spec) for spec in args.lora)
    notes: list[str] = []
    req = apply_reference_arguments(args, req, notes)
    req = apply_identity_arguments(args, req)
    for flag, lora in (("--reference-video", "IC-LoRA"), ("--reference-audio", "ID-LoRA")):
        if getattr(args, flag[2:].replace("-", "_"), None) is not None and not args.loras:
            notes.append(f"{flag} without --lora: the base model was not trained on reference tokens; load the "
                         f"{lora} with --lora (running anyway).")
    for note in notes:  # after every check: a refused run prints its one error line only
        warn(note)
    return req, saved


def check_frames_arg(frames: int) -> None:
    """``--frames N``: 8k + 1 pixel frames from 1 to :data:`~.checks.MAX_FRAMES` (0 is not a length here: ``auto``
    asks for a predicted one).

    Raises:
        InputError: out of range (the message offers ``auto``), or not of the form 8k + 1 (with the nearest two).
    """
    if not 1 <= frames <= MAX_FRAMES:
        raise InputError(f"--frames {frames}: give 8k + 1 pixel frames from 1 to {MAX_FRAMES} (e.g. 121), or auto "
                         "(as long as --audio, or predicted from the prompt by the LTX-2.5 duration head).")
    check_frames(frames)


def check_auto_arguments(args: argparse.Namespace) -> None:
    """``--vram`` is a memory size and only given with ``--ffn-chunks auto`` / ``--offload auto``.

    Raises:
        InputError: ``--vram`` without an ``auto`` setting, or not a memory size.
    """
    vram = getattr(args, "vram", None)
    if vram is None:
        return
    if AUTO not in (args.ffn_chunks, getattr(args, "offload", False)):
        raise InputError("--vram is the budget of --ffn-chunks auto / --offload auto; add one of them or drop --vram.")
    parse_memory_size(vram, "--vram")


def planned_size(req: Request, saved: SavedLatents | None = None, new_frames: int = 0,
                 overlap_frames: int = 0) -> VideoSize:
    """The video a run denoises, for the memory planner: the request's size, or with ``saved`` latents (an
    extension) their width and height and ``overlap_frames + new_frames + 1`` frames."""
    if saved is None:
        # frames auto: the duration head decides later; plan for the longest clip it may choose
        return VideoSize(planning_frames(req.frames, req.fps), req.height, req.width, req.fps)
    b, _c, _f, h, w = saved.video.shape
    return VideoSize(overlap_frames + new_frames + 1, 32 * h, 32 * w, req.fps, b)


def resolve_auto(args: argparse.Namespace, ckpt: LTXCheckpoint, req: Request, size: VideoSize) -> Request:
    """``--ffn-chunks auto`` / ``--offload auto`` → the settings :func:`~rs_ltxv.ltx.plan.auto_settings` picks for
    ``size`` from the checkpoint's header (nothing loaded) and ``--vram`` or the device's free memory; ``args.offload``
    becomes a bool, the request gets the chunks. A one-line note on stderr says what was chosen. ``--offload auto``
    with ``--gpus`` N > 1 is left for :func:`load_checked_parts` to refuse.

    Raises:
        InputError: the job does not fit the budget even with the most frugal settings (:func:`require_fit`).
    """
    chunks_auto = args.ffn_chunks == AUTO
    offload = getattr(args, "offload", False)
    offload_auto = offload == AUTO and args.gpus <= 1
    if not (chunks_auto or offload_auto):
        return req
    from ..plan import auto_settings, device_free_bytes, format_bytes, require_fit, weights_from_infos

    vram = getattr(args, "vram", None)
    budget = parse_memory_size(vram, "--vram") if vram is not None else device_free_bytes(args.device)
    dtype = DTYPES[args.dtype]
    auto = auto_settings(ckpt.config, size, budget, weights=weights_from_infos(ckpt.infos("transformer"), dtype),
                         dtype=dtype, upscale=req.upscale, images=len(req.images),
                         ffn_chunks=None if chunks_auto else req.ffn_chunks,
                         offload=None if offload_auto else offload is True)
    require_fit(auto.plan, size)
    if offload_auto:
        args.offload = auto.offload
    print(f"auto: ffn_chunks {auto.ffn_chunks}, offload {'on' if auto.offload else 'off'} "
          f"({'no memory limit' if budget is None else format_bytes(budget) + ' to plan for'})", file=sys.stderr)
    return replace(req, ffn_chunks=auto.ffn_chunks) if chunks_auto else req


def read_lora_patches(loras: tuple, ckpt: LTXCheckpoint) -> tuple:
    """The ``--lora`` files (checked :class:`~rs_ltxv.ltx.lora.LoraSpec` s) read once into ``LoraPatch`` es and
    checked against the names and shapes of the checkpoint's transformer, built on the meta device: a LoRA for
    another model fails before any weight is read. The patches then go to ``load_model_parts(loras=)`` or, with
    ``--gpus``, to the workers' recipe.

    Raises:
        InputError: a LoRA whose layers are not this transformer's, or whose factors do not fit them.
    Warns:
        UserWarning: a LoRA's keys that patch nothing (listed).
    """
    if not loras:
        return ()
    from ..lora import check_lora_patches, read_loras
    from ..transformer import LTXAVTransformer

    with torch.device("meta"):
        shell = LTXAVTransformer(ckpt.config)
    patches = []
    for spec in loras:  # one at a time: an error names the --lora file it is about
        try:
            patches.extend(read_loras(shell, [spec]))
        except InputError as exc:
            raise InputError(f"--lora {Path(spec.path).name}: {lora_reason(exc, spec.path)}") from exc
    check_lora_patches(shell, patches)
    return tuple(patches)


def attach_workers(args: argparse.Namespace, ckpt: LTXCheckpoint, attach: AttachWorkers | None) -> ModelParts | None:
    """With ``--gpus`` N > 1: a transformer without weights (meta device: the driver only reads its config) in
    :class:`ModelParts` whose stage runner is N Ray workers, each loading ``--checkpoint`` itself and applying the
    ``--lora`` patches (``args.loras``, from :func:`read_lora_patches`); None with one GPU.
    ``attach`` checks Ray, the head count and the GPUs Ray sees before any weight is read.

    Raises:
        InputError: ``--gpus`` > 1 but no ``attach`` was given (the library call without ``rs_ltxv.distributed``),
            or what ``attach`` raises (Ray missing, too many GPUs for the model's heads or the machine).
        DistributedError: Ray or its workers cannot be reached.
    """
    if args.gpus <= 1:
        return None
    if attach is None:
        raise InputError("--gpus needs rs_ltxv.distributed: run `python -m rs_ltxv generate --gpus N …`, or pass "
                         "attach= to run_generate.")
    if args.ray_address is None:  # workers on this machine share this Python: an uninstalled kernel fails here
        resolve_backend(args.attention_mode)
    from ..transformer import LTXAVTransformer

    with torch.device("meta"):
        shell = ModelParts(LTXAVTransformer(ckpt.config), distilled=ckpt.is_distilled,
                           compute_dtype=DTYPES[args.dtype], compute_device=torch.device(args.device))
    parallel = {"gpus": args.gpus, "ray_address": args.ray_address, "backend": args.backend}
    if args.comm_timeout_s is not None:
        parallel["comm_timeout_s"] = args.comm_timeout_s
    recipe = {"checkpoint": os.path.abspath(args.checkpoint), "dtype": str(DTYPES[args.dtype]).split(".")[-1],
              "distilled": ckpt.is_distilled}
    if args.loras:
        recipe["loras"] = tuple(args.loras)
    return attach(shell, parallel=parallel, recipe=recipe)


def load_checked_parts(args: argparse.Namespace, ckpt: LTXCheckpoint, req: Request,
                       attach: AttachWorkers | None = None) -> ModelParts:
    """The model parts of a ``generate`` / ``retake`` run, after the checks the checkpoint's header allows (STG blocks,
    the parts the files hold, every ``--lora`` read against the model's layers): loaded here, or with ``--gpus`` N > 1
    the VAEs and text encoder here and the denoising on Ray workers (:func:`attach_workers`; the driver's transformer
    then has no weights and is never moved). ``args.upsampler`` is used when the command has it.

    Raises:
        InputError: STG blocks the model lacks, an upsampler that is not the spatial ×2 one, a part missing from the
            files, a LoRA for another model, ``--offload`` with ``--gpus`` N > 1 or to a device it cannot stream to;
            what :func:`attach_workers` raises.
        CheckpointError / ConfigError: a model file cannot be used (e.g. a text encoder that is no Gemma or not the
            one the checkpoint needs: :func:`~.parts.check_part_files`).
    """
    offload = getattr(args, "offload", False)
    if offload and args.gpus > 1:
        raise InputError("--offload streams the weights of this process's transformer; with --gpus N the workers load "
                         "their own. Drop --offload or --gpus.")
    if offload:
        check_offload_device(args.device)
    check_stg_blocks({"video": req.video_guidance, "audio": req.audio_guidance}, ckpt.config.num_layers, cli=True)
    upsampler = getattr(args, "upsampler", None)
    # the text encoder is the Gemma this checkpoint needs, the upsampler the spatial ×2 one (headers only)
    check_part_files(ckpt, text_encoder=args.text_encoder, upsampler=upsampler, flags=True)
    check_parts_given(ckpt, args)
    vae_source = args.vae or (args.checkpoint if "vae" in ckpt.components else args.components)
    if vae_source is not None:  # the decoder asked for is in the file (header only)
        from .decoders import choose_decoder

        preferred = model_defaults(ckpt.config.version, ckpt.is_distilled).decoder
        choose_decoder(vae_source, getattr(args, "decoder", "auto"), preferred)
    args.loras = read_lora_patches(args.loras, ckpt)
    workers = attach_workers(args, ckpt, attach)
    parts = load_model_parts(args.checkpoint, text_encoder=args.text_encoder, upsampler=upsampler, video_vae=args.vae,
                             audio_vae=args.audio_vae, vocoder=args.vocoder, components=args.components,
                             dtype=DTYPES[args.dtype], device=args.device,
                             transformer=None if workers is None else workers.transformer,
                             loras=args.loras if workers is None else (), offload=offload,
                             decoder=getattr(args, "decoder", "auto"),
                             duration_head=getattr(args, "duration_head", None) if req.frames == AUTO_FRAMES else None)
    if workers is not None:  # the driver's transformer has no weights: never move it, compute as the workers do
        parts.stage_runner, parts.device = workers.stage_runner, None
        parts.compute_dtype, parts.compute_device = workers.compute_dtype, workers.compute_device
    return parts


def run_generate(args: argparse.Namespace, attach: AttachWorkers | None = None) -> Path:
    """``generate``: check every input (:func:`prepare_request`, then the transformer config from the checkpoint's
    header), load the models, run, and write ``--output`` and its latents. Returns the video's path. With ``--gpus``
    N > 1 the denoising runs on N Ray workers (:func:`attach_workers`; ``attach`` is the glue to
    ``rs_ltxv.distributed.attach``) and this process never loads the transformer's weights.

    Raises:
        InputError: a bad argument or input file, found before the weights are read where possible.
        CheckpointError / ConfigError: a model file cannot be used.
        NonFiniteError: the model's prediction became NaN or infinite.
        DistributedError: a Ray worker failed or timed out (``--gpus``).
        Cancelled: the run was interrupted.
    """
    req, saved = prepare_request(args)
    ckpt = open_checkpoint(args.checkpoint)
    req = apply_model_defaults(args, req, ckpt, extending=saved is not None)
    req = resolve_auto(args, ckpt, req, planned_size(req, saved, args.new_frames or 0, args.overlap_frames or 0))
    parts = load_checked_parts(args, ckpt, req, attach)
    for note in (getattr(args, "length_note", None), getattr(args, "defaults_note", None)):
        if note:
            print(note, file=sys.stderr)
    progress, close = _progress()
    preview = None if args.preview_dir is None else png_writer(args.preview_dir)
    try:
        if saved is not None:
            audio = saved.audio.to(args.device) if saved.audio is not None else None
            result = extend(parts, req, saved.video.to(args.device), audio, new_frames=args.new_frames,
                            overlap_frames=args.overlap_frames, progress=progress, preview=preview)
        else:
            result = generate(parts, req, progress=progress, preview=preview)
    finally:
        close()
    if req.frames == AUTO_FRAMES and result.frames is not None:
        frames = result.frames.shape[1]
        print(f"duration head: {frames} frames ({frames / req.fps:.2f} s at {req.fps:g} fps)", file=sys.stderr)
    return save_outputs(result, req, args.output)


def run_demo(output: str | Path = "outputs/demo.mp4", *, seconds: float = 4.0, steps: int = 20,
             width: int = 768, height: int = 512, fps: float = 24.0, seed: int = 0, version: str = "2.3") -> Path:
    """Tiny random models of the real LTX-2.3 (``version`` "2.5": LTX-2.5) architecture → a clip with sound (the
    content is noise-like art, the point is the whole path: prompt → Gemma (2.5: Gemma-4) → connectors →
    transformer → VAE (2.5: the diffusion decoder) / vocoder → MP4). ``seconds`` of video at ``fps`` frames per
    second (rounded to 8k+1 frames), ``width`` × ``height`` pixels. The tiny models are written to ``tiny-models/``
    beside ``output``. Returns the video's path.

    Raises:
        InputError: a setting out of range, an unknown ``version`` or an unwritable ``output``.
    """
    from ..tiny import write_tiny_checkpoint
    from ..tiny_parts import write_tiny_gemma

    if version not in ("2.3", "2.5"):
        raise InputError(f"demo --version {version}: choose 2.3 or 2.5.")

    check_number("seconds", seconds, 0.0, 3600.0, lo_open=True)
    frames = round(seconds * fps / 8) * 8 + 1
    defaults = Request()
    req = Request(prompt="A red fox runs through a snowy forest at dawn while birds sing.", width=width,
                  height=height, frames=frames, fps=fps, steps=steps, seed=seed, free_between_stages=True,
                  video_guidance=replace(defaults.video_guidance, stg_blocks=(TINY_STG_BLOCK,)),
                  audio_guidance=replace(defaults.audio_guidance, stg_blocks=(TINY_STG_BLOCK,)))
    out = check_output_path(output, "--output")
    work = out.parent / "tiny-models"
    ckpt = write_tiny_checkpoint(work / f"tiny-ltx-{version}.safetensors", version, dtype=torch.float32, full=True)
    vae = None
    if version == "2.5":
        from ..tiny_gemma4 import write_tiny_gemma4
        from ..video_vae.diffusion.tiny import write_tiny_diffusion_decoder

        gemma = write_tiny_gemma4(work / "tiny-gemma-4.safetensors")
        vae = write_tiny_diffusion_decoder(work / "tiny-ltx-2.5-video-vae.safetensors", latent_channels=16)
    else:
        gemma = write_tiny_gemma(work / "tiny-gemma-3")
    parts = load_model_parts(ckpt, text_encoder=gemma, video_vae=vae, dtype=torch.float32)
    progress, close = _progress()
    try:
        result = generate(parts, req, progress=progress)
    finally:
        close()
    return save_outputs(result, req, out)
