"""Command line: ``python -m rs_ltxv <command>``.

Commands:
    info FILE [--json]            version, config, parameter counts and dtypes of an LTX-2 checkpoint
                                  (.gguf: also architecture, metadata, quant types and sizes)
    tiny OUT [--version 2.0|2.3|2.5]  write a tiny random-weight checkpoint in the official format
    tiny OUT --quantise LAYOUT    the same with its Linear weights FP8 / INT8 / NVFP4 (comfy_fp8, comfy_nvfp4, …)
    tiny DIR --set [--version 2.3|2.5] [--overwrite]  write every model file the example workflows name (or those of
                                  one model version), tiny, in ComfyUI's folders
    generate --checkpoint … --text-encoder … --prompt …   text/image/audio → MP4 with sound
    retake --from OUT.latents.safetensors --start-time S --end-time S --prompt …   regenerate a time range of a
                                  clip (video, sound or both), keep the rest
    demo [-o OUT.mp4] [--version 2.5]  a short clip with sound from tiny random models (no downloads)
    plan --checkpoint F --width W --height H --frames N [--vram 24GB] [--upscale]
                                  predicted peak memory per stage; ffn_chunks / offload / VAE tiling that fit
    submit PROMPT.json [--server URL] [--set NODE.input=value] [-o DIR]
                                  queue an API-format prompt on a running ComfyUI, follow it, download the outputs
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
from typing import NoReturn


def _info(args: argparse.Namespace) -> int:
    if str(args.file).lower().endswith(".gguf"):
        from .ltx.loading.gguf_info import describe, format_description
    else:
        from .ltx.loading.info import describe, format_description

    d = describe(args.file)
    print(json.dumps(d, indent=2) if args.json else format_description(d))
    if d.get("quantisation_error"):  # the loaders' check failed: generate would refuse this file
        from .ltx.errors import CheckpointError

        raise CheckpointError(f"{d['quantisation_error']} (generate refuses this file)")
    return 0


def _tiny(args: argparse.Namespace) -> int:
    from .ltx.errors import InputError
    from .ltx.pipeline.output_file import check_output_path
    from .ltx.tiny import write_tiny_checkpoint

    if args.set:
        if args.quantise is not None:
            raise InputError("tiny: --quantise writes one checkpoint; it does not apply to --set.")
        return _tiny_set(args)
    out = check_output_path(args.out, "tiny: output", "tiny.safetensors")
    if out.suffix.lower() != ".safetensors":
        raise InputError(f"tiny: {out} must end in .safetensors (or use --set DIR for the whole model set).")
    if out.exists() and not args.overwrite:
        raise InputError(f"tiny: {out} exists; it is not replaced unless you add --overwrite.")
    if args.quantise is None:
        print(write_tiny_checkpoint(out, args.version or "2.3", seed=args.seed))
        return 0
    print(_write_tiny_quantised(out, args))
    return 0


def _write_tiny_quantised(out, args: argparse.Namespace) -> str:
    """``tiny OUT --quantise LAYOUT``: the tiny checkpoint (float32) with its Linear weights in ``LAYOUT``."""
    import tempfile

    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    from .ltx.pipeline.output_file import save_safetensors
    from .ltx.quant.writers import quantise_state_dict
    from .ltx.tiny import write_tiny_checkpoint

    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        float_file = write_tiny_checkpoint(os.path.join(tmp, "float.safetensors"), args.version or "2.3",
                                           seed=args.seed, dtype=torch.float32)
        with safe_open(float_file, framework="pt") as fh:
            meta = fh.metadata() or {}
        sd = quantise_state_dict(load_file(float_file), args.quantise)
    save_safetensors(sd, out, metadata=meta)  # the umask's mode (safetensors' save_file creates files 0600)
    return str(out)


def _tiny_set(args: argparse.Namespace) -> int:
    from .ltx.errors import InputError
    from .ltx.tiny import TINY_SETS, write_tiny_set

    version = args.version or "all"
    if version not in TINY_SETS:
        raise InputError(f"tiny --set writes the LTX-2.3 and LTX-2.5 files the example workflows name; --version "
                         f"{version} has none (give 2.3, 2.5 or no --version for both).")
    paths = write_tiny_set(args.out, seed=args.seed, overwrite=args.overwrite, version=version)
    what = {f.name: f.what for f in TINY_SETS[version]}
    for path in paths:
        print(f"{path}  — {what[path.name]}")
    kept = len(TINY_SETS[version]) - len(paths)
    print(f"tiny: wrote {len(paths)} files (random weights, float32) under {args.out}, laid out like ComfyUI/models "
          "and named as the example workflows name them" + (f"; kept the {kept} files of the other version's set "
                                                           "already there." if kept else "."))
    return 0


def _attach_workers(parts, *, parallel: dict, recipe: dict):
    """``generate --gpus N``: Ray workers as the parts' stage runner (``rs_ltxv.distributed``, imported only here)."""
    from .distributed import LoadRecipe, ParallelConfig, attach

    config = ParallelConfig(**parallel)
    config.check()
    return attach(parts, config, LoadRecipe(**recipe))


def _generate(args: argparse.Namespace) -> int:
    from .ltx.pipeline.cli import run_generate

    print(run_generate(args, attach=_attach_workers))
    return 0


def _retake(args: argparse.Namespace) -> int:
    from .ltx.pipeline.cli_retake import run_retake

    print(run_retake(args, attach=_attach_workers))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .ltx.pipeline.cli import run_demo

    print(run_demo(args.output, seconds=args.seconds, steps=args.steps, width=args.width, height=args.height,
                   version=args.version))
    return 0


def _plan(args: argparse.Namespace) -> int:
    from .ltx.plan.cli import run_plan

    return run_plan(args)


def _submit(args: argparse.Namespace) -> int:
    from .client.submit import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m rs_ltxv", description="RS-LTXV: LTX-2 / LTX-2.3 / LTX-2.5 video with sound")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"rs-ltxv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="describe an LTX-2 / LTX-2.3 / LTX-2.5 checkpoint")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_info)
    p = sub.add_parser("tiny", help="write a tiny random-weight checkpoint (official single-file format), or with "
                       "--set every model file the example workflows name")
    p.add_argument("out", help="the .safetensors file to write; with --set a folder laid out like ComfyUI/models")
    p.add_argument("--version", default=None, choices=["2.0", "2.3", "2.5"], help="model version of the checkpoint "
                   "(default 2.3), or with --set of the files written (default: every version's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="store_true", help="write the tiny LTX-2.3 and LTX-2.5 sets the example workflows "
                   "run from (checkpoints/, text_encoders/, vae/, diffusion_models/, latent_upscale_models/, loras/, "
                   "model_patches/)")
    p.add_argument("--overwrite", action="store_true", help="replace files of the same names")
    from .ltx.quant.writers import LAYOUTS

    p.add_argument("--quantise", metavar="LAYOUT", choices=sorted(LAYOUTS), default=None,
                   help="store the Linear weights quantised, in one of the layouts the loader reads: "
                   + ", ".join(sorted(LAYOUTS)) + " (the other tensors stay float32; without it the file is bfloat16)")
    p.set_defaults(func=_tiny)
    from .ltx.pipeline.cli import add_generate_arguments

    p = sub.add_parser("generate", help="text/image/audio to video with sound (or --extend-from a previous run)")
    add_generate_arguments(p)
    p.set_defaults(func=_generate)
    from .ltx.pipeline.cli_retake import add_retake_arguments

    p = sub.add_parser("retake", help="regenerate a time range of a clip (its .latents.safetensors): video, sound or "
                       "both; everything outside the range is kept")
    add_retake_arguments(p)
    p.set_defaults(func=_retake)
    p = sub.add_parser("demo", help="render a short clip with sound from tiny random models (no downloads)")
    p.add_argument("--output", "-o", default="outputs/demo.mp4")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--version", default="2.3", choices=["2.3", "2.5"], help="the tiny model's architecture: LTX-2.3, "
                   "or LTX-2.5 (Gemma-4 text encoder, diffusion video decoder)")
    p.set_defaults(func=_demo)
    from .ltx.plan.cli import add_plan_arguments

    p = sub.add_parser("plan", help="predict peak memory per stage and pick ffn_chunks / offload / VAE tiling for "
                       "a VRAM budget (reads only the checkpoint header)")
    add_plan_arguments(p)
    p.set_defaults(func=_plan)
    from .client.submit import add_arguments as add_submit_arguments

    p = sub.add_parser("submit", help="queue an API-format prompt on a running ComfyUI and download its outputs")
    add_submit_arguments(p)
    p.set_defaults(func=_submit)
    return parser


MAX_MESSAGE = 600  # characters of an error message printed by the CLI; the rest is elided


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: …`` and a pointer to ``--help`` instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {one_line(message)} (see: {self.prog} --help)\n")


def one_line(message: object, limit: int = MAX_MESSAGE) -> str:
    """``message`` as one line of at most ``limit`` characters (newlines folded, the middle of a long one elided)."""
    text = " ".join(str(message).split())
    if len(text) <= limit:
        return text
    keep = limit // 2
    return f"{text[:keep]} … ({len(text) - 2 * keep} characters elided) … {text[-keep:]}"


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions a user can cause (bad files, settings or paths): the CLI prints them as one line."""
    from .gguf_loader.errors import GGUFError
    from .ltx.errors import RSLTXVError
    from .ops.attention import AttentionBackendError

    return RSLTXVError, GGUFError, AttentionBackendError, OSError


class _Terminated(BaseException):
    """SIGTERM as an exception, so partial outputs are cleaned up like on Ctrl-C."""


def _raise_terminated(signum: int, _frame: object) -> None:
    raise _Terminated(signum)


#: options whose value is a memory size: ``--vram -5GB`` is read as ``--vram=-5GB`` so that it is refused as a
#: negative size (argparse would take ``-5GB`` for an option and say the value is missing)
SIZE_OPTIONS = ("--vram",)


def _join_negative_sizes(argv: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in SIZE_OPTIONS and i + 1 < len(argv) and re.match(r"^-[0-9.]", argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    """Run one command; user errors print ``error: …`` on one line and return 2, Ctrl-C 130, SIGTERM 143."""
    previous = signal.getsignal(signal.SIGTERM)
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        args = build_parser().parse_args(_join_negative_sizes(sys.argv[1:] if argv is None else argv))
        return args.func(args)
    except KeyboardInterrupt:
        print("error: interrupted (Ctrl-C).", file=sys.stderr)
        return 130
    except _Terminated:
        print("error: terminated (SIGTERM).", file=sys.stderr)
        return 143
    except BrokenPipeError:  # the reader went away (`info F | head -1`): stop quietly, like other tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except user_errors() as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
