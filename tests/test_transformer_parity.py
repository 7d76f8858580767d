"""Our transformer vs ltx-core 1.0.0 on tiny random weights loaded from official single-file checkpoints."""

from __future__ import annotations

import pytest
import torch

from rs_ltxv.ltx.transformer import Perturbations, StreamInput, skip, velocity_to_x0

from conftest import assert_close
from reference import ltx_core_ref as R

GRIDS = [(1, 2, 3), (2, 3, 2), (4, 2, 5)]  # latent (F, H, W): three frame counts, non-square


def _inputs(pair, grid, audio_frames, *, batch=2, seed=0):
    video = R.random_modality(pair.ref, "video", batch=batch, tokens_or_grid=grid, text_len=16, sigma=[0.8, 0.35],
                              seed=seed)
    audio = R.random_modality(pair.ref, "audio", batch=batch, tokens_or_grid=audio_frames, text_len=16,
                              sigma=[0.6, 0.2], seed=seed + 1)
    return video, audio


def _ours(d):
    return None if d is None else StreamInput(**d)


def _compare(pair, video, audio, ptb_ref=None, ptb_ours=None, what=""):
    rv, ra = R.run_transformer(pair.ref, video=video, audio=audio, perturbations=ptb_ref)
    with torch.no_grad():
        ov, oa = pair.model(_ours(video), _ours(audio), ptb_ours)
    if rv is not None:
        assert_close(ov, rv, f"{pair.variant} video {what}")
    if ra is not None:
        assert_close(oa, ra, f"{pair.variant} audio {what}")
    return ov, oa


@pytest.mark.parametrize("grid", GRIDS)
def test_batch2_frame_counts(pair, grid):
    video, audio = _inputs(pair, grid, audio_frames=3 * grid[0] + 2)
    _compare(pair, video, audio, what=f"grid {grid}")


def test_per_token_denoise_mask(pair):
    video, audio = _inputs(pair, (3, 2, 3), audio_frames=9)
    mask = torch.ones(2, 18)
    mask[:, :6] = 0.0  # first latent frame is a clean conditioning frame
    mask[1, 6:9] = 0.5
    video["timesteps"] = mask * video["sigma"][:, None]
    audio["timesteps"] = torch.rand(2, 9, generator=torch.Generator().manual_seed(3)) * audio["sigma"][:, None]
    ov, _ = _compare(pair, video, audio, what="denoise mask")
    x0 = velocity_to_x0(video["latent"], ov, video["timesteps"])
    rx0, _ = R.run_x0(pair.ref, video=video, audio=audio)
    assert_close(x0, rx0, "x0")
    assert torch.equal(x0[:, :6], video["latent"][:, :6])  # timestep 0 tokens are returned unchanged


PERTURBATIONS = ["skip_video_self_attn", "skip_audio_self_attn", "skip_a2v_cross_attn", "skip_v2a_cross_attn"]


@pytest.mark.parametrize("kind", PERTURBATIONS)
@pytest.mark.parametrize("mixed", [False, True], ids=["whole-batch", "item-0-only"])
def test_perturbations(pair, kind, mixed):
    video, audio = _inputs(pair, (2, 2, 3), audio_frames=7)
    blocks = [1]
    ref_spec = [[(kind, blocks)], [] if mixed else [(kind, blocks)]]
    ours = Perturbations(((skip(kind, blocks),), () if mixed else (skip(kind, blocks),)))
    ov, oa = _compare(pair, video, audio, ref_spec, ours, what=f"{kind} mixed={mixed}")
    with torch.no_grad():
        pv, pa = pair.model(_ours(video), _ours(audio))
    changed = ov if kind in ("skip_video_self_attn", "skip_a2v_cross_attn") else oa
    plain = pv if changed is ov else pa
    assert (changed[0] - plain[0]).abs().max() > 1e-4, "the perturbation must change the perturbed item"
    if mixed:
        assert torch.allclose(changed[1], plain[1], atol=1e-6), "the unperturbed item must not change"


def test_all_blocks_modality_isolation(pair):
    video, audio = _inputs(pair, (2, 2, 2), audio_frames=6)
    spec = [("skip_a2v_cross_attn", None), ("skip_v2a_cross_attn", None)]
    ours = Perturbations.same_for_batch(2, [skip("skip_a2v_cross_attn"), skip("skip_v2a_cross_attn")])
    _compare(pair, video, audio, [spec, spec], ours, what="isolated modalities")


@pytest.mark.parametrize("strength", [1.0, 0.5, 0.0])
def test_guide_tokens_with_attention_strength(pair, strength):
    grid, guide_grid, frame_idx = (3, 2, 3), (1, 2, 3), 9
    video, audio = _inputs(pair, grid, audio_frames=9)
    n, m = 18, 6
    g = torch.Generator().manual_seed(5)
    guide = torch.randn(2, m, video["latent"].shape[-1], generator=g)
    video["latent"] = torch.cat([video["latent"], guide], dim=1)
    video["positions"] = torch.cat([video["positions"], R.guide_positions(2, *guide_grid, 24.0, frame_idx)], dim=2)
    guide_t = torch.zeros(2, m)  # strength 1 guide → timestep 0
    video["timesteps"] = torch.cat([video["timesteps"], guide_t], dim=1)
    video["attention_mask"] = R.guide_attention_mask(n, m, 2, strength)
    _compare(pair, video, audio, what=f"guide strength {strength}")


def test_video_only(pair):
    video, _ = _inputs(pair, (2, 3, 2), audio_frames=5)
    _ov, oa = _compare(pair, video, None, what="video only")
    assert oa is None


def test_audio_disabled_still_feeds_video(pair):
    """Audio-to-video: a frozen (disabled) audio stream is not updated but the video still attends to it."""
    video, audio = _inputs(pair, (2, 2, 2), audio_frames=6)
    audio["enabled"] = False
    _compare(pair, video, audio, what="audio disabled")


def test_context_mask(pair):
    video, audio = _inputs(pair, (1, 2, 2), audio_frames=4)
    mask = torch.ones(2, 16, dtype=torch.int64)
    mask[0, :5] = 0
    video["context_mask"] = mask
    audio["context_mask"] = mask
    _compare(pair, video, audio, what="context mask")


def test_bfloat16_runs_close(pair):
    """bf16 weights and activations stay near the float32 result (no dtype mix-ups in the modulation/RoPE)."""
    from rs_ltxv.ltx.loading import load_transformer

    video, audio = _inputs(pair, (2, 2, 3), audio_frames=7)
    model16 = load_transformer(pair.checkpoint, dtype=torch.bfloat16)
    cast = {k: (v.to(torch.bfloat16) if k in ("latent", "context") else v) for k, v in video.items()}
    cast_a = {k: (v.to(torch.bfloat16) if k in ("latent", "context") else v) for k, v in audio.items()}
    with torch.no_grad():
        fv, fa = pair.model(_ours(video), _ours(audio))
        bv, ba = model16(StreamInput(**cast), StreamInput(**cast_a))
    assert bv.dtype == torch.bfloat16
    assert (bv.float() - fv).abs().max() < 0.1 * max(1.0, fv.abs().max().item())
    assert (ba.float() - fa).abs().max() < 0.1 * max(1.0, fa.abs().max().item())


@pytest.mark.parametrize("backend", ["auto", "sdpa"])
def test_backend_by_name_and_callable(pair, backend):
    from rs_ltxv.ltx.transformer import RunOptions
    from rs_ltxv.ops import attention

    video, audio = _inputs(pair, (1, 2, 3), audio_frames=4)
    calls = []

    def counting(q, k, v, mask):
        calls.append(q.shape)
        return attention(q, k, v, mask)

    with torch.no_grad():
        base = pair.model(_ours(video), _ours(audio))
        named = pair.model(_ours(video), _ours(audio), options=RunOptions(attention_mode=backend))
        wrapped = pair.model(_ours(video), _ours(audio), options=RunOptions(attention_mode=counting, ffn_chunks=3))
    layers = pair.ref.config["transformer"]["num_layers"]
    assert len(calls) == 6 * layers  # 2 self + 2 text + a2v + v2a per block
    for a, b, c in zip(base, named, wrapped, strict=True):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, c, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rope_type, precision", [("interleaved", "float64"), ("split", "float32")])
def test_legacy_rope_variants(tmp_path, rope_type, precision):
    """The legacy interleaved RoPE layout and single-precision frequency grids (transformer and connectors)."""
    from rs_ltxv.ltx.loading import load_text_connectors, load_transformer

    from reference.builders import realistic_init

    cfg = R.tiny_config("2.3")
    cfg["transformer"].update(rope_type=rope_type, frequencies_precision=precision)
    ref = R.build_reference("2.3", cfg=cfg, seed=5)
    realistic_init(ref.transformer, 6)
    realistic_init(ref.embeddings_processor, 7)
    for conn in (ref.embeddings_processor.video_connector, ref.embeddings_processor.audio_connector):
        conn.rope_type = ref.transformer.rope_type
        conn.double_precision_rope = precision == "float64"
        for block in conn.transformer_1d_blocks:
            block.attn1.rope_type = ref.transformer.rope_type
    path = tmp_path / "legacy.safetensors"
    R.write_checkpoint(ref, path)
    model = load_transformer(path, dtype=torch.float32)
    video = R.random_modality(ref, "video", batch=2, tokens_or_grid=(2, 3, 2), text_len=16, sigma=[0.8, 0.3])
    audio = R.random_modality(ref, "audio", batch=2, tokens_or_grid=6, text_len=16, sigma=[0.5, 0.2], seed=1)
    rv, ra = R.run_transformer(ref, video=video, audio=audio)
    with torch.no_grad():
        ov, oa = model(_ours(video), _ours(audio))
    assert_close(ov, rv, f"{rope_type}/{precision} video")
    assert_close(oa, ra, f"{rope_type}/{precision} audio")
    states, mask = R.tiny_gemma_hidden_states(1, 16, 10, 24, 3, seed=2)
    tv, ta, _ = R.run_text_path(ref, states, mask)
    with torch.no_grad():
        ctx = load_text_connectors(path, dtype=torch.float32)(states, mask)
    assert_close(ctx.video, tv, "connector video")
    assert_close(ctx.audio, ta, "connector audio")
