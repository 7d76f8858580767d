"""Pure parts of the core-ComfyUI adapters (no ComfyUI): config reading, weight binding on real modules, text
feature splitting, connector padding, and the errors for objects we cannot use."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from rs_ltxv.ltx import tokens as T
from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.text.connector import Embeddings1DConnector
from rs_ltxv.ltx.tiny import random_init, tiny_config
from rs_ltxv.ltx.transformer import LTXAVTransformer, StreamInput
from rs_ltxv.nodes import core_conditioning as cc
from rs_ltxv.nodes import core_interop as ci


def _inputs(cfg, ctx_len: int = 5):
    v_ctx, a_ctx = (cfg.inner_dim, cfg.audio_inner_dim) if cfg.caption_proj_before_connector else (
        cfg.caption_channels, cfg.caption_channels)
    g = torch.Generator().manual_seed(1)
    video = StreamInput(torch.randn(1, 6, cfg.in_channels, generator=g), torch.tensor([0.5]), torch.full((1, 6), 0.5),
                        T.video_positions(1, 1, 2, 3, 24.0), torch.randn(1, ctx_len, v_ctx, generator=g))
    audio = StreamInput(torch.randn(1, 4, cfg.audio_in_channels, generator=g), torch.tensor([0.5]),
                        torch.full((1, 4), 0.5), T.audio_positions(1, 4), torch.randn(1, ctx_len, a_ctx, generator=g))
    return video, audio


@pytest.mark.parametrize("version", ["2.0", "2.3"])
def test_config_from_tensors_matches_the_config(version):
    cfg = tiny_config(version)
    with torch.device("meta"):
        model = LTXAVTransformer(cfg)
        conns = {n: Embeddings1DConnector(getattr(cfg, n)) for n in ("video_connector", "audio_connector")}
    tensors = dict(model.state_dict())
    conn_tensors = {n: dict(c.state_dict()) for n, c in conns.items()}
    assert ci.config_from_tensors(tensors, conn_tensors, {**cfg.to_dict(), "image_model": "ltxav"}) == cfg
    if version == "2.3":  # gated attention: head counts are visible in the shapes
        inferred = ci.config_from_tensors(tensors, conn_tensors, {"image_model": "ltxav"})
        assert inferred == replace(cfg, caption_channels=3840)  # Gemma width unused by the 2.3 transformer


@pytest.mark.parametrize("version", ["2.0", "2.3"])
def test_bind_shares_storage_and_gives_the_same_output(version):
    cfg = tiny_config(version)
    with torch.device("meta"):
        core = LTXAVTransformer(cfg)
    random_init(core, seed=3)
    with torch.device("meta"):
        ours = LTXAVTransformer(cfg)
    ours = ci.bind_to_core(ours, core, "model")
    ptrs = {p.data_ptr() for p in core.parameters()}
    assert all(p.data_ptr() in ptrs for p in ours.parameters())
    assert ours.transformer_blocks[0].attn1.to_q is core.transformer_blocks[0].attn1.to_q  # grafted Linear
    assert ours.transformer_blocks[0].attn1.q_norm is not core.transformer_blocks[0].attn1.q_norm  # copy, own eps
    assert ours.transformer_blocks[0].attn1.q_norm.weight is core.transformer_blocks[0].attn1.q_norm.weight
    video, audio = _inputs(cfg)
    with torch.no_grad():
        want, got = core(video, audio), ours(video, audio)
    assert torch.equal(want[0], got[0])
    assert torch.equal(want[1], got[1])


def test_bind_names_the_missing_or_misshapen_tensor():
    cfg = tiny_config("2.3")
    with torch.device("meta"):
        ours = LTXAVTransformer(cfg)
        other = LTXAVTransformer(replace(cfg, num_layers=1))
    random_init(other, seed=1)
    with pytest.raises(InputError, match=r"transformer_blocks\.1"):
        ci.bind_to_core(ours, other, "model")
    with torch.device("meta"):
        wide = LTXAVTransformer(replace(cfg, in_channels=64, out_channels=64))
    random_init(wide, seed=1)
    with torch.device("meta"):
        ours = LTXAVTransformer(cfg)
    with pytest.raises(InputError, match=r"patchify_proj\.weight"):
        ci.bind_to_core(ours, wide, "model")


@pytest.mark.parametrize("tokens, registers, length", [(7, 128, 1024), (1024, 128, 1024), (1030, 128, 1152),
                                                        (5, 8, 1024), (5, 0, 5)])
def test_padded_length(tokens, registers, length):
    assert ci.padded_length(tokens, registers) == length


def test_split_features_by_layout():
    x = torch.randn(1, 7, 48)
    v, a, run = cc.split_features(x, True, (32, 16), (32, 16))  # LTX-2.3: video then audio, before connectors
    assert run
    assert torch.equal(v, x[..., :32])
    assert torch.equal(a, x[..., 32:])
    v, a, run = cc.split_features(x, False, (32, 16), (32, 16))  # finished contexts (no flag)
    assert not run
    assert v.shape[-1] == 32
    y = torch.randn(1, 7, 24)
    v, a, run = cc.split_features(y, True, (24, 24), (24, 24))  # LTX-2: one tensor for both streams
    assert run
    assert v is y
    assert a is y
    v, a, run = cc.split_features(torch.randn(1, 7, 48), False, (24, 24), (24, 24))  # LTX-2 compat mode
    assert not run
    assert v.shape[-1] == 24
    with pytest.raises(InputError, match="width 40"):
        cc.split_features(torch.randn(1, 7, 40), True, (24, 24), (24, 24))


def test_connector_padding_matches_registers_after_the_valid_tokens():
    """Zero padding + mask through our connector = valid tokens followed by registers (core's layout)."""
    cfg = tiny_config("2.3").video_connector
    with torch.device("meta"):
        conn = Embeddings1DConnector(cfg)
    random_init(conn, seed=2)
    feats = torch.randn(2, 5, cfg.inner_dim)
    out = cc._run_connector(conn, feats)
    assert out.shape == (2, 1024, cfg.inner_dim)
    regs = conn.learnable_registers.repeat(1024 // cfg.num_learnable_registers, 1)
    manual = torch.cat([feats, regs[5:].expand(2, -1, -1)], dim=1)
    ones = torch.ones(2, 1024, dtype=torch.int64)
    with torch.no_grad():
        assert torch.allclose(out, conn(manual, ones), atol=1e-6)


def test_objects_we_cannot_use_get_clear_errors():
    assert not ci.is_core_ltxav(None)
    assert not ci.is_core_ltxav(torch.nn.Linear(2, 2))
    with pytest.raises(InputError, match="Load Checkpoint"):
        ci.transformer_from_core(torch.nn.Linear(2, 2))
    with pytest.raises(InputError, match="video VAE"):
        ci.video_vae_from_core(torch.nn.Linear(2, 2))
    with pytest.raises(InputError, match="audio VAE"):
        ci.audio_vae_from_core(torch.nn.Linear(2, 2), {})
    with pytest.raises(InputError, match="upsampler"):
        ci.upsampler_from_core(torch.nn.Linear(2, 2))
    x = torch.randn(1, 4, 24)
    with pytest.raises(InputError, match="2 entries"):
        cc.contexts_from_core([[x, {}], [x, {}]], None)
    assert not cc.is_core_conditioning([[x, {"rs_ltxv_audio_context": x}]])
    with pytest.raises(InputError, match="CLIP Text Encode"):
        cc.contexts_from_core("text", None)


def test_distilled_is_read_from_the_file_core_loaded():
    from types import SimpleNamespace

    from rs_ltxv.nodes.core_interop import is_distilled

    def patcher(path):
        return SimpleNamespace(cached_patcher_init=(print, (path, None, {}, {})))

    assert is_distilled(patcher("/m/checkpoints/ltx-2.3-22b-distilled.safetensors"))
    assert not is_distilled(patcher("/m/checkpoints/ltx-2.3-22b-dev-fp8.safetensors"))
    assert not is_distilled(SimpleNamespace())  # older ComfyUI: unknown → not distilled
