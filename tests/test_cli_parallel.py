"""``generate --gpus N [--ray-address ADDR] [--comm-timeout S]``: every bad value is one ``error:`` line before any
model file is loaded; with ``--gpus`` > 1 this process never loads the transformer's weights (the workers do) and
the result equals the one-process run — first through a stub in place of ``rs_ltxv.distributed.attach`` (no Ray),
then once through 2 real Ray CPU workers."""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import rs_ltxv.ltx.pipeline.cli as cli
import rs_ltxv.ltx.pipeline.parts as parts_module
from rs_ltxv.__main__ import MAX_MESSAGE, build_parser, main
from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.loading import load_transformer
from rs_ltxv.ltx.pipeline.stage import run_stage
from rs_ltxv.ltx.tiny import write_tiny_checkpoint
from rs_ltxv.ltx.tiny_parts import write_tiny_gemma


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("cli-parallel")
    ckpt = write_tiny_checkpoint(d / "tiny.safetensors", "2.3", dtype=torch.float32, full=True)
    return {"dir": str(d), "ckpt": str(ckpt), "gemma": str(write_tiny_gemma(d / "gemma"))}


GEN = ["generate", "--checkpoint", "{ckpt}", "--text-encoder", "{gemma}", "--prompt", "a fox in the snow",
       "--width", "64", "--height", "64", "--frames", "9", "--steps", "2", "--stg-block", "1", "--dtype", "fp32",
       "--device", "cpu"]

# (flags, words the one error line must contain)
CASES: list[tuple[list[str], str]] = [
    (["--gpus", "0"], "--gpus 0"),
    (["--gpus", "-2"], "--gpus"),
    (["--gpus", "two"], "--gpus"),
    (["--gpus", "65"], "gpus"),
    (["--gpus", "64"], "heads"),  # the tiny model has fewer heads: found from the header, nothing loaded
    (["--ray-address", "auto"], "no effect with one GPU"),
    (["--comm-timeout", "30"], "no effect with one GPU"),
    (["--backend", "gloo"], "no effect with one GPU"),
    (["--gpus", "2", "--backend", "mpi"], "--backend"),
    (["--gpus", "2", "--comm-timeout", "0"], "--comm-timeout"),
    (["--gpus", "2", "--comm-timeout", "nan"], "--comm-timeout"),
    (["--gpus", "2", "--comm-timeout", "inf"], "--comm-timeout"),
    (["--gpus", "2", "--ray-address", ""], "--ray-address"),
    (["--gpus", "2", "--ray-address", "head node:6379"], "--ray-address"),
    (["--gpus", "2", "--attention-mode", "sage"], "sageattention"),  # not installed here: said before Ray starts
]


def _fill(argv: list[str], files: dict[str, str]) -> list[str]:
    return [a.format(**files) for a in argv]


@pytest.fixture
def no_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the bad flag was reported")

    monkeypatch.setattr(cli, "load_model_parts", refuse)


@pytest.mark.parametrize(("extra", "words"), CASES, ids=[" ".join(c[0]) or "(empty)" for c in CASES])
def test_bad_parallel_flags_are_one_line_before_loading(files, capsys, no_loading, extra, words):
    try:
        code = main([*_fill(GEN, files), "-o", f"{files['dir']}/bad/x.mp4", *extra])
    except SystemExit as exc:  # argparse
        code = exc.code
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert words.lower() in lines[0].lower()
    assert len(lines[0]) <= MAX_MESSAGE + 200
    assert not (Path(files["dir"]) / "bad").exists()


def test_flags_use_the_library_names():
    args = build_parser().parse_args(["generate", "--checkpoint", "c", "--text-encoder", "g", "--prompt", "p",
                                      "--gpus", "4", "--ray-address", "auto", "--comm-timeout", "30",
                                      "--backend", "gloo"])
    assert (args.gpus, args.ray_address, args.comm_timeout_s, args.backend) == (4, "auto", 30.0, "gloo")


def test_defaults_are_one_process():
    args = build_parser().parse_args(["generate", "--checkpoint", "c", "--text-encoder", "g", "--prompt", "p"])
    assert (args.gpus, args.ray_address, args.comm_timeout_s) == (1, None, None)


def test_run_generate_without_attach_refuses_gpus(files, no_loading):
    args = build_parser().parse_args([*_fill(GEN, files), "--gpus", "2", "-o", f"{files['dir']}/lib/x.mp4"])
    with pytest.raises(InputError, match=r"rs_ltxv\.distributed"):
        cli.run_generate(args)


# --- the run: the driver keeps no transformer weights ----------------------------------------------------------

def _latents(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path.with_suffix(".latents.safetensors")))


@pytest.fixture(scope="module")
def one_process(files, tmp_path_factory) -> dict[str, torch.Tensor]:
    out = tmp_path_factory.mktemp("one") / "x.mp4"
    assert main([*_fill(GEN, files), "-o", str(out)]) == 0
    return _latents(out)


class StubAttach:
    """``attach(parts, parallel=…, recipe=…)`` as ``python -m rs_ltxv`` passes it, without Ray: records its
    arguments and the driver's transformer, and runs the stages here on a transformer loaded from the recipe."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, parts, *, parallel, recipe):
        self.calls.append({"parallel": parallel, "recipe": recipe, "transformer": parts.transformer})
        model = load_transformer(recipe["checkpoint"], dtype=torch.float32)

        def runner(denoise, inputs, callbacks=None):
            return run_stage(replace(denoise, model=model), inputs, callbacks)

        return replace(parts, stage_runner=runner)


def test_gpus_2_never_loads_the_transformer_here(files, one_process, tmp_path, monkeypatch):
    loads: list[object] = []
    real = parts_module.load_transformer
    monkeypatch.setattr(parts_module, "load_transformer", lambda *a, **k: loads.append(a) or real(*a, **k))
    stub = StubAttach()
    out = tmp_path / "x.mp4"
    args = build_parser().parse_args([*_fill(GEN, files), "--gpus", "2", "--comm-timeout", "30", "-o", str(out)])
    cli.run_generate(args, attach=stub)
    (call,) = stub.calls
    assert loads == []
    assert next(call["transformer"].parameters()).device.type == "meta"
    assert call["parallel"] == {"gpus": 2, "ray_address": None, "backend": "auto", "comm_timeout_s": 30.0}
    assert call["recipe"] == {"checkpoint": os.path.abspath(files["ckpt"]), "dtype": "float32",
                              "distilled": False}
    got = _latents(out)
    for name in ("video", "audio"):
        assert torch.equal(got[name], one_process[name]), name
    assert out.exists()


def test_gpus_2_on_ray_workers_equals_one_process(files, one_process, tmp_path):
    """Two Ray CPU workers (gloo) through ``python -m rs_ltxv generate --gpus 2``."""
    out = tmp_path / "x.mp4"
    assert main([*_fill(GEN, files), "--gpus", "2", "--comm-timeout", "30", "-o", str(out)]) == 0
    got = _latents(out)
    for name in ("video", "audio"):
        scale = max(1.0, one_process[name].abs().max().item())
        delta = (got[name] - one_process[name]).abs().max().item()
        assert delta <= 1e-5 * scale, (name, delta)
    assert not math.isnan(got["video"].sum().item())
