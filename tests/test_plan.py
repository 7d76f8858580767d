"""Memory planner: predictions vs measured live-tensor peaks of a real-width LTX-2.3 block (bf16, CPU), budget
parsing, and the choices / refusals of the plan."""

from __future__ import annotations

import pytest
import torch

from rs_ltxv.ltx.config import TransformerConfig
from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.pipeline.latents import VideoSize
from rs_ltxv.ltx.plan import (
    MemoryPlan,
    StagePlan,
    StageTokens,
    forward_phases,
    parse_memory_size,
    plan_memory,
    require_fit,
    weights_from_config,
)
from rs_ltxv.ltx.plan.measure import peak_live_bytes
from rs_ltxv.ltx.tokens import audio_positions, video_positions
from rs_ltxv.ltx.transformer import LTXAVTransformer, RunOptions, StreamInput
from rs_ltxv.ltx.video_vae.tiling import TilingConfig

LTX23 = dict(cross_attention_adaln=True, apply_gated_attention=True, caption_proj_before_connector=True)
DT = torch.bfloat16


@pytest.fixture(scope="module")
def one_block():
    """The real LTX-2.3 widths (4096 video / 2048 audio, 32 heads) with one block, zero bf16 weights (~1.4 GB)."""
    torch.set_num_threads(2)
    cfg = TransformerConfig(num_layers=1, **LTX23)
    with torch.device("meta"):
        model = LTXAVTransformer(cfg)
    model = model.to_empty(device="cpu").to(DT).eval().requires_grad_(False)
    for p in model.parameters():
        p.data.zero_()
    return cfg, model


def _inputs(f: int, h: int, w: int, ta: int, s: int, mixed: bool) -> tuple[StreamInput, StreamInput]:
    ts = torch.full((1, f * h * w), 0.5)
    if mixed:  # a conditioned first frame: two distinct timesteps, per-token AdaLN values
        ts[:, :h * w] = 0.0
    video = StreamInput(torch.zeros(1, f * h * w, 128, dtype=DT), torch.tensor([0.5]), ts.to(DT),
                        video_positions(1, f, h, w, 24.0, dtype=DT), torch.zeros(1, s, 4096, dtype=DT))
    audio = StreamInput(torch.zeros(1, ta, 128, dtype=DT), torch.tensor([0.5]), torch.full((1, ta), 0.5, dtype=DT),
                        audio_positions(1, ta), torch.zeros(1, s, 2048, dtype=DT))
    return video, audio


# (latent frames, rows, columns, audio tokens, text tokens, per-token timesteps, ffn_chunks)
CASES = [(2, 16, 16, 26, 64, False, 1), (2, 16, 16, 26, 64, False, 4), (4, 16, 16, 26, 64, True, 1),
         (2, 8, 8, 400, 64, True, 2)]


@pytest.mark.parametrize("case", CASES, ids=[f"Tv{c[0] * c[1] * c[2]}-Ta{c[3]}-mixed{c[5]}-c{c[6]}" for c in CASES])
def test_prediction_within_15_percent_of_measured_peak(one_block, case):
    cfg, model = one_block
    f, h, w, ta, s, mixed, chunks = case
    video, audio = _inputs(f, h, w, ta, s, mixed)
    with torch.inference_mode():
        measured = peak_live_bytes(lambda: model(video, audio, options=RunOptions("sdpa", ffn_chunks=chunks)))
    predicted = max(forward_phases(cfg, StageTokens(f * h * w, ta, s, mixed), 2, chunks).values())
    assert abs(predicted - measured) <= 0.15 * measured, (predicted, measured)


def test_measure_counts_only_new_storages():
    x = torch.zeros(1000)
    assert peak_live_bytes(lambda: x.add_(1).view(10, 100)) == 0  # in place + view: nothing new
    assert peak_live_bytes(lambda: (x + 1) * 2) == 2 * 4000  # the temporary and the result alive together


@pytest.mark.parametrize(("text", "expected"), [("24GB", 24 << 30), ("24 GiB", 24 << 30), ("16000MiB", 16000 << 20),
                                                ("24", 24 << 30), ("0.5 tb", 1 << 39), (8, 8 << 30)])
def test_parse_memory_size(text, expected):
    assert parse_memory_size(text) == expected


@pytest.mark.parametrize("text", ["abc", "24 GX", "-3GB", "0", "", "nanGB"])
def test_parse_memory_size_refuses(text):
    with pytest.raises(InputError, match="--vram"):
        parse_memory_size(text)


@pytest.fixture(scope="module")
def full():
    cfg = TransformerConfig(**LTX23)
    return cfg, weights_from_config(cfg, DT)


def test_plan_chooses_offload_and_chunks_for_a_small_card(full):
    cfg, weights = full
    size = VideoSize(481, 1088, 1920)
    roomy = plan_memory(cfg, size, 200 << 30, weights=weights)
    assert (roomy.ffn_chunks, roomy.offload, roomy.fits) == (1, False, True)
    small = plan_memory(cfg, size, 24 << 30, weights=weights)
    assert small.offload
    assert small.fits  # 22B bf16 weights (≈ 35 GiB) only fit streamed
    assert small.peak <= (24 << 30) - small.reserve


def test_plan_refuses_what_cannot_fit(full):
    cfg, weights = full
    size = VideoSize(1201, 1088, 1920)
    plan = plan_memory(cfg, size, 8 << 30, weights=weights)
    assert not plan.fits
    with pytest.raises(InputError, match=r"fewer frames|at most .* frames"):
        require_fit(plan, size)


def _plan(stages: dict[str, dict[str, int]], budget: int, **kw) -> MemoryPlan:
    return MemoryPlan(tuple(StagePlan(n, 1000, parts) for n, parts in stages.items()), 64, True,
                      kw.pop("tiling", None), budget, reserve=1 << 30, **kw)


def test_refusal_when_the_weights_alone_exceed_the_budget_names_the_minimum():
    """Weights + reserve over the budget: no frame count or size helps, so none is suggested; the minimum is named."""
    plan = _plan({"stage 1": {"weights": 6 << 30, "activations": 1 << 30}}, 4 << 30)
    with pytest.raises(InputError) as err:
        require_fit(plan, VideoSize(121, 512, 768), None, needed=8 << 30)
    text = str(err.value)
    assert "needs at least 8.00 GiB (--vram)" in text, text
    assert "quantised" in text, text
    for word in ("frames at this size", "fewer frames", "smaller", "GPUs", "ffn_chunks"):
        assert word not in text, text


def test_refusal_of_the_video_decode_does_not_cite_transformer_settings():
    tiling = TilingConfig()
    plan = _plan({"stage 1": {"weights": 1 << 30, "activations": 1 << 30},
                  "video decode": {"weights": 1 << 28, "activations": 5 << 30}}, 4 << 30, tiling=tiling)
    with pytest.raises(InputError) as err:
        require_fit(plan, VideoSize(121, 512, 768), 49, needed=7 << 30)
    text = str(err.value)
    assert "video decode needs" in text, text
    assert "smallest tiles" in text, text
    assert "at most 49 frames" in text, text
    assert "ffn_chunks" not in text, text
    assert "offload" not in text, text
    assert "GPUs" not in text, text


def test_refusal_when_one_frame_does_not_fit_suggests_no_fewer_frames():
    plan = _plan({"stage 1": {"weights": 1 << 30, "activations": 5 << 30}}, 4 << 30)
    with pytest.raises(InputError) as err:
        require_fit(plan, VideoSize(121, 512, 768), 0)
    assert "fewer frames" not in str(err.value)
    assert "smaller width/height" in str(err.value)


def test_chunks_lower_the_feed_forward_phase(full):
    cfg, _ = full
    tokens = StageTokens(50_000, 500)
    one = forward_phases(cfg, tokens, 2, 1)["video feed-forward"]
    eight = forward_phases(cfg, tokens, 2, 8)["video feed-forward"]
    assert eight < one * 0.6


def test_plan_without_a_vae_says_the_decode_is_not_planned(full):
    cfg, weights = full
    text = plan_memory(cfg, VideoSize(121, 512, 768), 80 << 30, weights=weights).format()
    assert "VAE decode: not planned (give --vae)" in text, text
    assert "untiled" not in text, text


def test_readme_planner_snippet_runs(tmp_path, capsys):
    """The README's library snippet, on a tiny checkpoint: its imports and calls are the real ones."""
    import re
    from pathlib import Path

    from rs_ltxv.ltx.tiny import write_tiny_checkpoint

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    snippet = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "plan_memory" in b)
    path = write_tiny_checkpoint(tmp_path / "tiny.safetensors", "2.3")
    snippet = snippet.replace("ltx-2.3-22b-dev.safetensors", path).replace("frames=481, height=1088, width=1920",
                                                                           "frames=9, height=64, width=64")
    exec(compile(snippet, "README.md", "exec"), {})
    assert "choices: ffn_chunks 1" in capsys.readouterr().out
