"""Cross-check with diffusers 0.42.1's independent LTX2VideoTransformer3DModel on the same weights."""

from __future__ import annotations

import pytest
import torch

from rs_ltxv.ltx.transformer import Perturbations, StreamInput, skip

from conftest import assert_close
from reference import diffusers_ref as D
from reference import ltx_core_ref as R


@pytest.fixture(scope="module")
def diffusers_models():
    return {}


def _diffusers(pair, cache):
    if pair.variant not in cache:
        cache[pair.variant] = D.from_reference(pair.ref)
    return cache[pair.variant]


@pytest.mark.parametrize("case", ["plain", "stg", "isolated"])
def test_matches_diffusers(pair, diffusers_models, case):
    model = _diffusers(pair, diffusers_models)
    video = R.random_modality(pair.ref, "video", batch=2, tokens_or_grid=(3, 2, 3), text_len=16, sigma=[0.7, 0.25])
    audio = R.random_modality(pair.ref, "audio", batch=2, tokens_or_grid=9, text_len=16, sigma=[0.5, 0.1], seed=2)
    video["timesteps"] = video["timesteps"].clone()
    video["timesteps"][:, :6] = 0.0
    kwargs, ptb = {}, None
    if case == "stg":  # diffusers' STG skips video and audio self-attention together
        kwargs["stg_blocks"] = [1]
        ptb = Perturbations.same_for_batch(2, [skip("skip_video_self_attn", [1]), skip("skip_audio_self_attn", [1])])
    elif case == "isolated":
        kwargs["isolate_modalities"] = True
        ptb = Perturbations.same_for_batch(2, [skip("skip_a2v_cross_attn"), skip("skip_v2a_cross_attn")])
    with torch.no_grad():
        dv, da = D.run_diffusers_transformer(model, video, audio, **kwargs)
        ov, oa = pair.model(StreamInput(**video), StreamInput(**audio), ptb)
    assert_close(ov, dv, f"{pair.variant} video vs diffusers ({case})")
    assert_close(oa, da, f"{pair.variant} audio vs diffusers ({case})")
