"""A run stops cleanly: at the step where the prediction turns NaN/inf (not with black frames after the whole run),
and on cancel during prompt encoding and decoding as well as sampling. Tiny random models of the real LTX-2.3
architecture; seeds at ComfyUI's maximum work with every sampler."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from rs_ltxv.ltx.errors import Cancelled, InputError, NonFiniteError
from rs_ltxv.ltx.pipeline.finite import check_finite
from rs_ltxv.ltx.pipeline.generate import generate
from rs_ltxv.ltx.pipeline.guidance import GuidanceParams
from rs_ltxv.ltx.pipeline.latents import SEED_MAX, offset_seed
from rs_ltxv.ltx.pipeline.parts import load_model_parts
from rs_ltxv.ltx.pipeline.request import Request
from rs_ltxv.ltx.tiny import write_tiny_checkpoint
from rs_ltxv.ltx.tiny_parts import write_tiny_gemma

GUIDE = GuidanceParams(cfg=2.0, stg=1.0, stg_blocks=(1,), rescale=0.7, modality=1.0)
SMALL = Request(prompt="a fox", negative_prompt="blurry", width=64, height=64, frames=9, steps=2, seed=5,
                video_guidance=GUIDE, audio_guidance=GUIDE)


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    work = tmp_path_factory.mktemp("safety")
    ckpt = write_tiny_checkpoint(work / "tiny.safetensors", "2.3", dtype=torch.float32, full=True)
    return ckpt, write_tiny_gemma(work / "gemma")


@pytest.fixture
def parts(paths):
    ckpt, gemma = paths
    return load_model_parts(ckpt, text_encoder=gemma, dtype=torch.float32)


def test_nan_weights_stop_at_the_first_step(parts):
    with torch.no_grad():
        next(parts.transformer.parameters()).fill_(math.nan)
    ticks = []
    with pytest.raises(NonFiniteError, match=r"video prediction became NaN/inf at step 1 "):
        generate(parts, SMALL, progress=lambda d, t: ticks.append(d))
    assert ticks == []  # stopped before the first step completed, not after the run


def test_float16_overflow_suggests_bfloat16():
    with pytest.raises(NonFiniteError, match="bfloat16") as info:
        check_finite("audio", torch.tensor([1.0, math.inf], dtype=torch.float16), 4, 0.5)
    assert "step 5" in str(info.value)
    assert "float16" in str(info.value)
    check_finite("video", torch.zeros(3), 0, 1.0)  # finite: no error


def _cancel_when(condition):
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return condition(len(calls))

    return cancel, calls


def test_cancel_during_prompt_encoding(parts):
    ticks = []
    cancel, calls = _cancel_when(lambda n: n > 3)  # the 4th question comes from inside Gemma's layers
    with pytest.raises(Cancelled):
        generate(parts, SMALL, progress=lambda d, t: ticks.append(d), cancel=cancel)
    assert ticks == []
    assert len(calls) == 4


def test_cancel_during_decoding(parts):
    ticks = []
    state = {"sampled": False, "asked_after": 0}

    def progress(done: int, total: int) -> None:
        ticks.append(done)
        state["sampled"] = done == total

    def cancel() -> bool:
        if state["sampled"]:
            state["asked_after"] += 1
        return state["asked_after"] > 2  # inside the VAE decoder's blocks

    with pytest.raises(Cancelled):
        generate(parts, SMALL, progress=progress, cancel=cancel)
    assert ticks == [1, 2]
    assert state["asked_after"] == 3


@pytest.mark.parametrize("sampler", ["euler", "euler_ancestral", "res_2s"])
def test_the_largest_comfyui_seed_works_with_every_sampler(parts, sampler):
    req = replace(SMALL, seed=SEED_MAX, sampler=sampler, steps=1, decode=False)
    a = generate(parts, req)
    b = generate(parts, req)
    assert torch.equal(a.video_latent, b.video_latent)  # deterministic at 2**64 - 1
    assert offset_seed(SEED_MAX, 1) == 0


@pytest.mark.parametrize("seed", [-1, SEED_MAX + 1, 2**70, 1.5, True])
def test_seeds_outside_comfyuis_range_are_refused(seed):
    with pytest.raises(InputError, match="seed"):
        replace(SMALL, seed=seed)


@pytest.mark.parametrize(("config", "words"), [
    ({"temporal_upsample": True, "spatial_upsample": False}, "temporal ×2"),
    ({"spatial_scale": 1.5, "rational_resampler": True}, "spatial ×1.5"),
])
def test_the_2x_pass_refuses_other_upsamplers(config, words):
    from rs_ltxv.ltx.pipeline.parts import UpsamplerAdapter
    from rs_ltxv.ltx.upsampler import LatentUpsampler, UpsamplerConfig

    model = LatentUpsampler(UpsamplerConfig(in_channels=16, mid_channels=32, num_blocks_per_stage=1, **config))
    with pytest.raises(InputError, match=words):
        UpsamplerAdapter(model, torch.zeros(16), torch.ones(16))


def test_a_vae_without_its_decoder_says_so(paths):
    from rs_ltxv.ltx.errors import CheckpointError
    from rs_ltxv.ltx.loading.video_vae import load_video_vae
    from rs_ltxv.ltx.pipeline.parts import VideoVAEAdapter

    vae = load_video_vae(paths[0], dtype=torch.float32)
    vae.decoder = None  # as loaded from an encoder-only file
    with pytest.raises(CheckpointError, match="without its decoder"):
        VideoVAEAdapter(vae).decode(torch.zeros(1, 16, 2, 2, 2))
