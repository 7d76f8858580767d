"""The ``auto`` settings (issue 15): one library call, :func:`rs_ltxv.ltx.plan.auto_settings`, behind the nodes'
``ffn_chunks`` 0 and the CLI's ``--ffn-chunks auto`` / ``--offload auto``."""

from __future__ import annotations

import argparse
import logging

import pytest
import torch

from rs_ltxv.ltx.config import TransformerConfig
from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.loading import load_transformer, open_checkpoint
from rs_ltxv.ltx.loading.video_vae import load_video_vae
from rs_ltxv.ltx.pipeline import cli
from rs_ltxv.ltx.pipeline.latents import VideoSize
from rs_ltxv.ltx.pipeline.parts import VideoVAEAdapter
from rs_ltxv.ltx.plan import AUTO_FFN_CHUNKS, auto_settings, device_free_bytes, weights_from_config
from rs_ltxv.ltx.tiny import write_tiny_checkpoint
from rs_ltxv.nodes import convert, ltxv_generate, specs
from rs_ltxv.nodes.comfy_model import LTXVModule
from rs_ltxv.nodes.ltxv_generate import Hooks, model_parts

LTX23 = dict(cross_attention_adaln=True, apply_gated_attention=True, caption_proj_before_connector=True)
GiB = 1 << 30


@pytest.fixture(scope="module")
def full():
    cfg = TransformerConfig(**LTX23)
    return cfg, weights_from_config(cfg, torch.bfloat16)


def _order(a) -> tuple[bool, int]:
    return a.offload, a.ffn_chunks  # cheapest first: no streaming before streaming, fewer chunks before more


def test_smaller_budgets_pick_more_chunks_then_offload(full):
    cfg, weights = full
    size = VideoSize(481, 1088, 1920)
    budgets = [None, 200 * GiB, 80 * GiB, 48 * GiB, 32 * GiB, 12 * GiB, 4 * GiB]
    picks = [auto_settings(cfg, size, b, weights=weights) for b in budgets]
    assert [_order(p) for p in picks[:3]] == [(False, 1)] * 3  # unlimited and generous: nothing to change
    assert [_order(p) for p in picks] == sorted(_order(p) for p in picks)  # never cheaper as the budget shrinks
    assert any(p.ffn_chunks > 1 and not p.offload for p in picks)  # chunks alone are enough at some budget
    assert picks[4].offload  # 22B bf16 weights do not fit 32 GB without streaming
    for b, p in zip(budgets, picks, strict=True):
        if p.fits and b is not None:
            assert p.plan.peak + p.plan.reserve <= b
    assert not picks[-1].fits  # and it says so when nothing fits
    assert (picks[-1].ffn_chunks, picks[-1].offload) == (64, True)  # the most frugal settings, for a best effort


def test_weights_already_loaded_plan_only_what_the_run_adds(full):
    cfg, weights = full
    size = VideoSize(481, 1088, 1920)
    loose = auto_settings(cfg, size, 24 * GiB, weights=weights, weights_loaded=True)
    assert (loose.ffn_chunks, loose.offload) == (1, False)  # 24 GB left over the weights: plenty
    assert loose.plan.stages[0].parts["weights"] == 0
    tight = auto_settings(cfg, size, 12 * GiB, weights=weights, weights_loaded=True)
    assert tight.ffn_chunks > 1
    assert not tight.offload  # already loaded: streaming is ComfyUI's business, never chosen here
    fixed = auto_settings(cfg, size, 12 * GiB, weights=weights, ffn_chunks=4, offload=True)
    assert (fixed.ffn_chunks, fixed.offload) == (4, True)  # what the user fixed is kept


def test_cpu_memory_is_unlimited():
    assert device_free_bytes("cpu") is None
    assert device_free_bytes(torch.device("meta")) is None


# ------------------------------------------------------------------------------------------------------ the nodes


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = write_tiny_checkpoint(tmp_path_factory.mktemp("auto") / "tiny.safetensors", "2.3", dtype=torch.float32,
                                 full=True)
    ckpt = open_checkpoint(path)
    return dict(model=LTXVModule(load_transformer(ckpt, dtype=torch.float32), source=path),
                vae=VideoVAEAdapter(load_video_vae(path, dtype=torch.float32), None))


SIZE = dict(width=64, height=64, num_frames=9, frame_rate=25.0)


def _node_chunks(tiny, hooks: Hooks, **values) -> int:
    values = {**tiny, **SIZE, **values}
    req = convert.build_request(specs.GENERATE, values)
    _parts, req = model_parts(specs.GENERATE, values, req, hooks)
    return req.ffn_chunks


def test_ffn_chunks_default_is_auto_and_old_workflows_keep_loading():
    spec = specs.GENERATE.input("ffn_chunks")
    assert (spec.type, spec.default, spec.min) == ("INT", AUTO_FFN_CHUNKS, 0)  # saved 0 (old "off") still valid
    assert "auto" in spec.tooltip


def test_node_on_the_cpu_resolves_auto_to_one_chunk(tiny):
    asked = []
    hooks = Hooks(free_bytes=lambda d: asked.append(d) or 1)
    assert _node_chunks(tiny, hooks) == 1
    assert _node_chunks(tiny, hooks, ffn_chunks=0) == 1
    assert asked == []  # the CPU is unlimited: ComfyUI's free memory is not asked
    assert _node_chunks(tiny, hooks, ffn_chunks=3) == 3  # a number is kept as given
    assert ltxv_generate._free_bytes(hooks, torch.device("cuda")) == 1  # a GPU asks the host
    assert ltxv_generate._free_bytes(Hooks(), torch.device("cuda")) is None


def test_node_resolves_auto_through_the_planner(tiny, monkeypatch, caplog):
    monkeypatch.setattr(ltxv_generate, "_free_bytes", lambda hooks, device: hooks.free_bytes(device))
    cfg = tiny["model"].diffusion_model.config
    size = VideoSize(9, 64, 64, 25.0)

    def expected(free: int) -> int:
        return auto_settings(cfg, size, free, weights_loaded=True, dtype=torch.float32).ffn_chunks

    one = auto_settings(cfg, size, None, weights_loaded=True, dtype=torch.float32, ffn_chunks=1).plan
    frugal = auto_settings(cfg, size, None, weights_loaded=True, dtype=torch.float32, ffn_chunks=64).plan
    tight = one.reserve + (one.peak + frugal.peak) // 2  # more than 64 chunks need, less than 1 chunk needs
    assert 1 < expected(tight) < 64
    assert _node_chunks(tiny, Hooks(free_bytes=lambda d: tight)) == expected(tight)
    assert _node_chunks(tiny, Hooks(free_bytes=lambda d: 64 * GiB)) == 1
    with caplog.at_level(logging.WARNING, logger="rs_ltxv.nodes.ltxv_generate"):
        assert _node_chunks(tiny, Hooks(free_bytes=lambda d: 1)) == 64  # nothing fits: most frugal, and a warning
    assert "may not fit" in caplog.text


# ------------------------------------------------------------------------------------------------------ the CLI


def _args(ckpt, *extra: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    cli.add_generate_arguments(p)
    return p.parse_args(["--checkpoint", str(ckpt), "--text-encoder", "x", "--prompt", "p", "--device", "cpu",
                         "--width", "64", "--height", "64", "--frames", "9", *extra])


def test_cli_auto_uses_the_same_call(tmp_path, capsys, monkeypatch):
    path = write_tiny_checkpoint(tmp_path / "tiny.safetensors", "2.3")
    ckpt = open_checkpoint(path)
    size = VideoSize(9, 64, 64)
    req = cli.Request(prompt="p", width=64, height=64, frames=9)

    args = _args(path, "--ffn-chunks", "auto", "--offload", "auto")
    assert cli.resolve_auto(args, ckpt, req, size).ffn_chunks == 1  # the CPU, no --vram: unlimited
    assert args.offload is False
    assert "auto: ffn_chunks 1, offload off (no memory limit)" in capsys.readouterr().err

    import rs_ltxv.ltx.plan as plan

    weights = plan.TransformerWeights((1 << 20,) * 8, 1 << 20)  # the tiny file has 2 blocks: streaming saves nothing
    monkeypatch.setattr(plan, "weights_from_infos", lambda infos, dtype: weights)
    whole = auto_settings(ckpt.config, size, None, weights=weights, ffn_chunks=1, offload=False).plan
    streamed = auto_settings(ckpt.config, size, None, weights=weights, ffn_chunks=1, offload=True).plan
    assert streamed.peak < whole.peak
    vram = whole.reserve + (whole.peak + streamed.peak) // 2  # fits streamed only
    vram_kib = -(-vram // 1024)
    args = _args(path, "--ffn-chunks", "auto", "--offload", "auto", "--vram", f"{vram_kib}KiB")
    cli.check_auto_arguments(args)
    picked = cli.resolve_auto(args, ckpt, req, size)
    want = auto_settings(ckpt.config, size, vram_kib * 1024, weights=weights)
    assert want.offload
    assert (picked.ffn_chunks, args.offload) == (want.ffn_chunks, True)

    args = _args(path, "--offload", "--vram", "64GB")
    with pytest.raises(InputError, match="--vram is the budget"):
        cli.check_auto_arguments(args)  # plain --offload (on) has nothing to plan
    assert args.offload is True
    args = _args(path, "--ffn-chunks", "auto", "--vram", "1MiB")
    with pytest.raises(InputError, match="does not fit"):
        cli.resolve_auto(args, ckpt, req, size)
