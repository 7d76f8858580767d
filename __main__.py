"""Command line: ``python -m rs_ltxv <command>``.

Commands:
    info FILE [--json]            version, config, parameter counts and dtypes of an LTX-2 checkpoint
                                  (.gguf: also architecture, metadata, quant types and sizes)
    tiny OUT [--version 2.0|2.3]  write a tiny random-weight checkpoint in the official format
    generate --checkpoint … --text-encoder … --prompt …   text/image/audio → MP4 with sound
    demo [-o OUT.mp4]             a short clip with sound from tiny random models (no downloads)
    submit PROMPT.json [--server URL] [--set NODE.input=value] [-o DIR]
                                  queue an API-format prompt on a running ComfyUI, follow it, download the outputs
"""

from __future__ import annotations

import argparse
import json
import sys


def _info(args: argparse.Namespace) -> int:
    if str(args.file).lower().endswith(".gguf"):
        from .ltx.loading.gguf_info import describe, format_description
    else:
        from .ltx.loading.inspect import describe, format_description

    d = describe(args.file)
    print(json.dumps(d, indent=2) if args.json else format_description(d))
    return 0


def _tiny(args: argparse.Namespace) -> int:
    from .ltx.tiny import write_tiny_checkpoint

    print(write_tiny_checkpoint(args.out, args.version, seed=args.seed))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from .ltx.pipeline.cli import run_generate

    print(run_generate(args))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .ltx.pipeline.cli import run_demo

    print(run_demo(args.output, seconds=args.seconds, steps=args.steps, width=args.width, height=args.height))
    return 0


def _submit(args: argparse.Namespace) -> int:
    from .client.submit import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rs_ltxv", description="RS-LTXV: LTX-2 / LTX-2.3 video with sound")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="describe an LTX-2 / LTX-2.3 checkpoint")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_info)
    p = sub.add_parser("tiny", help="write a tiny random-weight checkpoint (official single-file format)")
    p.add_argument("out")
    p.add_argument("--version", default="2.3", choices=["2.0", "2.3"])
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_tiny)
    from .ltx.pipeline.cli import add_generate_arguments

    p = sub.add_parser("generate", help="text/image/audio to video with sound (or --extend-from a previous run)")
    add_generate_arguments(p)
    p.set_defaults(func=_generate)
    p = sub.add_parser("demo", help="render a short clip with sound from tiny random models (no downloads)")
    p.add_argument("--output", "-o", default="outputs/demo.mp4")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--height", type=int, default=512)
    p.set_defaults(func=_demo)
    from .client.submit import add_arguments as add_submit_arguments

    p = sub.add_parser("submit", help="queue an API-format prompt on a running ComfyUI and download its outputs")
    add_submit_arguments(p)
    p.set_defaults(func=_submit)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .ltx.errors import RSLTXVError

    try:
        return args.func(args)
    except RSLTXVError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
