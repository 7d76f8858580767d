"""LTX-2.5 duration head against diffusers 0.42.1 ``LTX2DurationHead``: the raw prediction (seconds), the frame count
(``predict_num_frames``' rule: clamp, floor onto 8k + 1, step up under the minimum, nearest grid point for a window
without one), loading from files in the official layout (``duration_head.*`` tensors, ltx-core's ``config``
metadata, alone or next to other tensors), the tiny writer and the error paths."""

from __future__ import annotations

import json
import math

import pytest
import torch
from diffusers.pipelines.ltx2.duration_head import LTX2DurationHead
from safetensors.torch import save_file

from rs_ltxv.ltx.duration_head import DurationHeadConfig, predict_duration, predict_num_frames, seconds_to_num_frames
from rs_ltxv.ltx.errors import CheckpointError, InputError, NonFiniteError
from rs_ltxv.ltx.loading.duration_head import has_duration_head, load_duration_head
from rs_ltxv.ltx.tiny_parts import write_tiny_duration_head

from conftest import assert_close
from reference.builders import realistic_init

V, A, P, Q, HEADS, M = 32, 16, 24, 2, 3, 20
CFG = DurationHeadConfig(video_cross_attention_dim=V, audio_cross_attention_dim=A, pooler_hidden_dim=P,
                         num_queries=Q, num_pooler_heads=HEADS, mlp_hidden=M)
METADATA = {"transformer": {"cross_attention_dim": V, "audio_cross_attention_dim": A},
            "duration_head": {"pooler_hidden_dim": P, "num_queries": Q, "num_pooler_heads": HEADS, "mlp_hidden": M}}


def _diffusers_head(seed: int) -> LTX2DurationHead:
    head = LTX2DurationHead(video_cross_attention_dim=V, audio_cross_attention_dim=A, pooler_hidden_dim=P,
                            num_queries=Q, num_pooler_heads=HEADS, mlp_hidden_dim=M)
    realistic_init(head, seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in (head.video_modality_emb, head.audio_modality_emb, head.attention_pooler.query_tokens):
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        head.mlp_out.bias.fill_(math.log(4.0))  # around 4 s, so the frame count is not always clamped
    return head.eval()


def official_state(head: LTX2DurationHead) -> dict[str, torch.Tensor]:
    """diffusers names → the official ``duration_head.*`` names (``nn.MultiheadAttention``'s packed q/k/v)."""
    sd = head.state_dict()
    pool = "attention_pooler."
    out = {}
    for k, v in sd.items():
        if not k.startswith(pool) or k == pool + "query_tokens":
            out[k] = v
    for part in ("weight", "bias"):
        out[f"{pool}cross_attn.in_proj_{part}"] = torch.cat([sd[f"{pool}to_{x}.{part}"] for x in "qkv"])
        out[f"{pool}cross_attn.out_proj.{part}"] = sd[f"{pool}to_out.{part}"]
    return {f"duration_head.{k}": v.contiguous().clone() for k, v in out.items()}


def _contexts(seed: int, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 9, V, generator=g), torch.randn(batch, 7, A, generator=g)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    ref = _diffusers_head(21)
    path = tmp_path_factory.mktemp("duration") / "ltx-2.5-duration-head.safetensors"
    save_file(official_state(ref), str(path), {"config": json.dumps(METADATA), "model_version": "2.5.0"})
    return ref, path


@torch.no_grad()
def test_prediction_matches_diffusers(pair):
    ref, path = pair
    ours = load_duration_head(path, dtype=torch.float32)
    assert ours.cfg == CFG
    video, audio = _contexts(1, batch=3)
    for args, what in (((video, audio), "video + audio"), ((video, None), "video"), ((None, audio), "audio")):
        expected = ref(*args)
        assert expected.shape == (3,)
        delta = assert_close(ours(*args), expected, what)
        rel = (delta / expected.abs().max()).item()
        assert rel <= 1e-5
        print(f"duration head {what}: seconds {expected.tolist()}, relative |Δ| {rel:.1e}")


def _diffusers_frames(seconds: float, fps: float, lo: float, hi: float) -> int:
    """diffusers' rule, with its head replaced by a fixed prediction."""
    class Fixed:
        def __call__(self, *_):
            return torch.tensor([seconds], dtype=torch.float64)

    return LTX2DurationHead.predict_num_frames(Fixed(), None, None, frame_rate=fps, temporal_compression_ratio=8,
                                               min_seconds=lo, max_seconds=hi)


SECONDS = (0.0, 0.02, 0.5, 1.0, 1.04, 2.3, 3.7, 5.0208, 5.0209, 9.99, 20.0, 20.5, 31.0, 1e6)
RATES = (24.0, 25.0, 30.0, 23.976, 50.0, 8.0)
RANGES = ((1.0, 20.0), (0.0, 5.0), (2.5, 2.6), (1.0, 1.02), (3.0, 3.0), (0.0, 0.01))


def test_frame_rule_matches_diffusers():
    checked = 0
    for seconds in SECONDS:
        for fps in RATES:
            for lo, hi in RANGES:
                ours = seconds_to_num_frames(seconds, frame_rate=fps, min_seconds=lo, max_seconds=hi)
                assert ours == _diffusers_frames(seconds, fps, lo, hi), (seconds, fps, lo, hi)
                assert ours % 8 == 1, (seconds, fps, lo, hi, ours)
                checked += 1
    assert checked == len(SECONDS) * len(RATES) * len(RANGES)


@pytest.mark.parametrize(("seconds", "fps", "lo", "hi", "frames"), [
    (5.0, 24.0, 1.0, 20.0, 113),     # 120 frames → floor onto the grid
    (0.2, 24.0, 1.0, 20.0, 25),      # clamped up to 24 frames, floored to 17 < 24 → one step up
    (60.0, 24.0, 1.0, 20.0, 473),    # clamped to 480 frames → 473
    (math.inf, 24.0, 1.0, 20.0, 473),  # exp overflow counts as over the maximum
    (1.0, 24.0, 1.0, 1.02, 25),      # [24, 24] holds no 8k + 1: nearest grid point
    (4.0, 30.0, 1.0, 20.0, 113),     # 120 frames at 30 fps
])
def test_frame_rule_cases(seconds, fps, lo, hi, frames):
    assert seconds_to_num_frames(seconds, frame_rate=fps, min_seconds=lo, max_seconds=hi) == frames


@torch.no_grad()
def test_predict_num_frames_matches_diffusers(pair):
    ref, path = pair
    ours = load_duration_head(path)
    for seed in range(4):
        video, audio = _contexts(10 + seed)
        for fps, lo, hi in ((24.0, 1.0, 20.0), (25.0, 1.0, 3.0), (30.0, 5.0, 8.0)):
            expected = ref.predict_num_frames(video, audio, frame_rate=fps, temporal_compression_ratio=8,
                                              min_seconds=lo, max_seconds=hi)
            assert predict_num_frames(ours, video, audio, frame_rate=fps, min_seconds=lo, max_seconds=hi) == expected
    prediction = predict_duration(ours, *_contexts(3), frame_rate=24.0, min_seconds=1.0, max_seconds=2.0)
    assert prediction.clamped == (not 1.0 <= prediction.seconds <= 2.0)
    assert prediction.num_frames in (25, 33, 41)


@torch.no_grad()
def test_loading_layouts(pair, tmp_path):
    ref, _ = pair
    state = official_state(ref)
    video, audio = _contexts(5)
    expected = ref(video, audio)
    # next to other tensors (a checkpoint carrying the head), with a config holding other sections
    other = {"model.diffusion_model.patchify_proj.weight": torch.zeros(4, 4), **state}
    save_file(other, str(tmp_path / "ckpt.safetensors"),
              {"config": json.dumps({"transformer": {**METADATA["transformer"], "num_layers": 48},
                                     "vae": {}, "duration_head": METADATA["duration_head"]})})
    assert has_duration_head(tmp_path / "ckpt.safetensors")
    assert_close(load_duration_head(tmp_path / "ckpt.safetensors")(video, audio), expected, "in a checkpoint")
    # no metadata: widths from the shapes, the heads given
    save_file(state, str(tmp_path / "bare.safetensors"))
    given = load_duration_head(tmp_path / "bare.safetensors", config={"duration_head": {"num_pooler_heads": HEADS}})
    assert given.cfg == CFG
    assert_close(given(video, audio), expected, "given heads")
    inferred = load_duration_head(tmp_path / "bare.safetensors")
    assert inferred.cfg == DurationHeadConfig(V, A, P, Q, 4, M)


@torch.no_grad()
def test_tiny_writer(tmp_path):
    path = write_tiny_duration_head(tmp_path / "head.safetensors")
    head = load_duration_head(path)
    assert (head.cfg.video_cross_attention_dim, head.cfg.audio_cross_attention_dim) == (32, 16)
    video, audio = torch.randn(1, 6, 32), torch.randn(1, 6, 16)
    frames = predict_num_frames(head, video, audio, frame_rate=24.0)
    assert frames % 8 == 1
    assert 24 <= frames <= 481
    bare = write_tiny_duration_head(tmp_path / "bare.safetensors", metadata=False)
    assert load_duration_head(bare).cfg.num_pooler_heads == 4  # shapes cannot tell the heads: the default
    # a pooler width 4 heads do not divide needs the metadata (or a given config)
    odd = DurationHeadConfig(32, 16, pooler_hidden_dim=6, num_pooler_heads=2, mlp_hidden=8)
    path = write_tiny_duration_head(tmp_path / "odd.safetensors", config=odd, metadata=False)
    with pytest.raises(CheckpointError, match="needs its config metadata"):
        load_duration_head(path)
    assert load_duration_head(path, config=odd).cfg == odd
    assert load_duration_head(write_tiny_duration_head(tmp_path / "odd-meta.safetensors", config=odd)).cfg == odd


def test_errors(pair, tmp_path):
    ref, path = pair
    head = load_duration_head(path)
    video, audio = _contexts(6)
    state = official_state(ref)
    # a file without the head: says what automatic frame counts need
    save_file({"model.diffusion_model.patchify_proj.weight": torch.zeros(2, 2)}, str(tmp_path / "old.safetensors"))
    assert not has_duration_head(tmp_path / "old.safetensors")
    with pytest.raises(CheckpointError, match=r"num_frames = 0 .* --frames auto"):
        load_duration_head(tmp_path / "old.safetensors")
    # a missing tensor
    save_file({k: v for k, v in state.items() if "mlp_out.bias" not in k}, str(tmp_path / "m.safetensors"),
              {"config": json.dumps(METADATA)})
    with pytest.raises(CheckpointError, match="missing 1 tensor"):
        load_duration_head(tmp_path / "m.safetensors")
    # metadata widths that do not describe the tensors
    wrong = {**METADATA, "transformer": {"cross_attention_dim": 4096, "audio_cross_attention_dim": A}}
    save_file(state, str(tmp_path / "w.safetensors"), {"config": json.dumps(wrong)})
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_duration_head(tmp_path / "w.safetensors")
    # heads that do not divide the pooler width, a non-integer width
    for section in ({"num_pooler_heads": 5}, {"mlp_hidden": "20"}):
        bad = {**METADATA, "duration_head": {**METADATA["duration_head"], **section}}
        save_file(state, str(tmp_path / "c.safetensors"), {"config": json.dumps(bad)})
        with pytest.raises(CheckpointError, match=r"num_pooler_heads|mlp_hidden"):
            load_duration_head(tmp_path / "c.safetensors")
    # inputs
    with pytest.raises(InputError, match="neither"):
        head(None, None)
    with pytest.raises(InputError, match=r"\(B, S, 32\)"):
        head(audio, None)
    with pytest.raises(InputError, match="batch 1"):
        predict_num_frames(head, *_contexts(7, batch=2), frame_rate=24.0)
    with pytest.raises(InputError, match="frame_rate"):
        predict_num_frames(head, video, audio, frame_rate=0.0)
    with pytest.raises(InputError, match="min_seconds <= max_seconds"):
        predict_num_frames(head, video, audio, frame_rate=24.0, min_seconds=5.0, max_seconds=2.0)
    with pytest.raises(NonFiniteError, match="NaN"):
        seconds_to_num_frames(math.nan, frame_rate=24.0)
