"""Sequence-parallel equality harness: cases built once in the test process, run on W spawned gloo ranks.

:func:`make_bundle` builds a tiny transformer of one layout (4 heads, so W = 3 splits heads 2/1/1) with trained-like
weights, forward cases (odd token counts, per-token timesteps, guide tokens with an attention strength, STG and
modality-isolation perturbations, video-only, fewer tokens than ranks, chunked feed-forward) and whole-stage cases
(``run_stage`` with euler / res_2s and full guidance). :func:`rank_main` is the spawned process: it joins a gloo
group, runs every case under :func:`rs_ltxv.distributed.patches.sequence_parallel` and saves its outputs.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import replace

import torch
import torch.distributed as dist

from rs_ltxv.ltx.config import TransformerConfig
from rs_ltxv.ltx.pipeline.conditioning import KeyframeGuide, ReplaceLatentFrames
from rs_ltxv.ltx.pipeline.denoiser import Denoiser
from rs_ltxv.ltx.pipeline.guidance import GuidanceParams
from rs_ltxv.ltx.pipeline.latents import VideoSize
from rs_ltxv.ltx.pipeline.sampling import SamplerOptions
from rs_ltxv.ltx.pipeline.schedules import linear_quadratic_sigmas
from rs_ltxv.ltx.pipeline.stage import StageInputs, run_stage
from rs_ltxv.ltx.text.processor import TextContexts
from rs_ltxv.ltx.tiny import tiny_config
from rs_ltxv.ltx.tokens import audio_positions, guide_attention_weights, video_positions
from rs_ltxv.ltx.transformer import LTXAVTransformer, Perturbations, RunOptions, StreamInput, skip

from .builders import realistic_init


def sp_config(version: str, layers: int = 2) -> TransformerConfig:
    """The tiny config of ``version`` with 4 video and 4 audio heads (widths unchanged: 4×8 and 4×4)."""
    cfg = tiny_config(version, layers=layers)
    return replace(cfg, num_attention_heads=4, attention_head_dim=8, audio_num_attention_heads=4,
                   audio_attention_head_dim=4)


def build_model(cfg: TransformerConfig, seed: int = 3) -> LTXAVTransformer:
    """A float32 transformer of ``cfg`` with trained-like random weights (every path matters)."""
    torch.manual_seed(seed)
    model = LTXAVTransformer(cfg)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return realistic_init(model, seed).eval()


def _stream(model: LTXAVTransformer, grid: tuple[int, int, int] | None, audio_frames: int | None, *, seed: int,
            batch: int = 2, guide: float | None = None) -> tuple[StreamInput | None, StreamInput | None]:
    g = torch.Generator().manual_seed(seed)
    v_ctx, a_ctx = model.context_dim
    cfg = model.config
    ctx_mask = torch.ones(batch, 7, dtype=torch.int64)
    ctx_mask[1, 5:] = 0
    sigma = torch.tensor([0.9, 0.4][:batch])
    video = audio = None
    if grid is not None:
        f, h, w = grid
        n = f * h * w
        pos = video_positions(batch, f, h, w, 24.0)
        latent = torch.randn(batch, n, cfg.in_channels, generator=g)
        ts = sigma[:, None].expand(batch, n).clone()
        ts[:, : h * w] = 0.0  # first latent frame kept: per-token timesteps
        mask = None
        if guide is not None:  # one guide frame appended at pixel frame 8, attending with strength `guide`
            m = h * w
            latent = torch.cat([latent, torch.randn(batch, m, cfg.in_channels, generator=g)], 1)
            pos = torch.cat([pos, video_positions(batch, 1, h, w, 24.0, frame_offset=8)], 2)
            ts = torch.cat([ts, torch.zeros(batch, m)], 1)
            mask = guide_attention_weights(None, num_noisy=n, num_existing=n, num_new=m, strength=guide,
                                           batch=batch)
        video = StreamInput(latent=latent, sigma=sigma, timesteps=ts, positions=pos,
                            context=torch.randn(batch, 7, v_ctx, generator=g), context_mask=ctx_mask,
                            attention_mask=mask)
    if audio_frames is not None:
        audio = StreamInput(latent=torch.randn(batch, audio_frames, cfg.audio_in_channels, generator=g), sigma=sigma,
                            timesteps=sigma[:, None].expand(batch, audio_frames),
                            positions=audio_positions(batch, audio_frames),
                            context=torch.randn(batch, 7, a_ctx, generator=g), context_mask=ctx_mask)
    return video, audio


PERTURBATIONS = {
    "none": None,
    "stg_item0_block1": Perturbations(((skip("skip_video_self_attn", [1]),), ())),
    "isolated": Perturbations.same_for_batch(2, [skip("skip_a2v_cross_attn"), skip("skip_v2a_cross_attn")]),
    "stg_all": Perturbations.same_for_batch(2, [skip("skip_video_self_attn"), skip("skip_audio_self_attn")]),
}


def forward_cases(model: LTXAVTransformer) -> dict[str, tuple]:
    """name → (video, audio, perturbations, options) for the sharded forward."""
    streams = {
        "odd_T63": _stream(model, (3, 3, 7), 17, seed=1),
        "guides_attention_T45": _stream(model, (3, 3, 5), 13, seed=2, guide=0.6),
        "video_only_T63": _stream(model, (3, 3, 7), None, seed=3),
        "T64": _stream(model, (4, 4, 4), 9, seed=4),
        "fewer_tokens_than_ranks_T2": _stream(model, (1, 1, 2), 5, seed=5),
    }
    cases = {}
    for name, (video, audio) in streams.items():
        for pname, ptb in PERTURBATIONS.items():
            cases[f"{name}/{pname}"] = (video, audio, ptb, RunOptions())
    video, audio = streams["odd_T63"]
    cases["odd_T63/ffn_chunks3"] = (video, audio, None, RunOptions(ffn_chunks=3))
    return cases


def stage_cases(model: LTXAVTransformer) -> dict[str, dict]:
    """name → run_stage setup: 17 frames 96×224 (3×7 latent cells) with an image guide at pixel frame 8 (attention
    0.5), full guidance (CFG 3, STG 1 in block 1, rescale 0.7, modality 2), σ linear-quadratic over 4 steps."""
    g = torch.Generator().manual_seed(11)
    v_ctx, a_ctx = model.context_dim
    cfg = model.config

    def contexts() -> TextContexts:
        return TextContexts(torch.randn(1, 6, v_ctx, generator=g), torch.randn(1, 6, a_ctx, generator=g),
                            torch.ones(1, 6))

    guide = KeyframeGuide(torch.randn(1, cfg.in_channels, 1, 3, 7, generator=g), pixel_frame=8,
                          attention_strength=0.5)
    first = ReplaceLatentFrames(torch.randn(1, cfg.in_channels, 1, 3, 7, generator=g), latent_frame=0)
    guidance = GuidanceParams(cfg=3.0, stg=1.0, stg_blocks=(1,), rescale=0.7, modality=2.0)
    base = dict(positive=contexts(), negative=contexts(), guidance=guidance,
                size=VideoSize(17, 96, 224, 24.0), sigmas=linear_quadratic_sigmas(4),
                conditions=[first, guide])
    return {"euler": {**base, "sampler": "euler"}, "res_2s": {**base, "sampler": "res_2s"}}


def run_stage_case(model: LTXAVTransformer, case: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run one :func:`stage_cases` entry with ``model`` (plain or under sequence parallelism)."""
    denoiser = Denoiser(model, case["positive"], case["negative"], case["guidance"], case["guidance"])
    return run_stage(denoiser, StageInputs(
        case["size"], case["sigmas"], channels=model.config.in_channels,
        audio_channels=model.config.audio_in_channels // 16, seed=7, sampler=case["sampler"],
        sampler_options=SamplerOptions(eta=1.0, seed=8), conditioning=tuple(case["conditions"])))


def make_bundle(version: str) -> dict:
    """Everything the ranks need: config, weights, forward and stage cases."""
    cfg = sp_config(version)
    model = build_model(cfg)
    return {"cfg": cfg, "state": model.state_dict(), "forward": forward_cases(model), "stage": stage_cases(model)}


def load_model(bundle: dict) -> LTXAVTransformer:
    """The bundle's transformer, float32."""
    model = LTXAVTransformer(bundle["cfg"])
    model.load_state_dict(bundle["state"])
    return model.eval()


def rank_main(rank: int, world: int, store: str, bundle_path: str, out_dir: str) -> None:
    """Spawned rank: join the gloo group through the file store, run every case sharded, save the outputs and the
    local state shapes to ``out_dir/rank{rank}.pt``."""
    from rs_ltxv.distributed.comm import Group, TrafficMeter
    from rs_ltxv.distributed.patches import sequence_parallel

    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))
    try:
        bundle = torch.load(bundle_path, weights_only=False)
        model = load_model(bundle)
        out: dict = {"forward": {}, "stage": {}, "shapes": {}}
        with torch.no_grad(), sequence_parallel(model, Group.current()) as sp:
            for name, (video, audio, ptb, opts) in bundle["forward"].items():
                out["forward"][name] = model(video, audio, ptb, opts)
                out["shapes"][name] = dict(sp.last_shapes) if sp.sharded(video) else None
            for name, case in bundle["stage"].items():
                out["stage"][name] = run_stage_case(model, case)
            with TrafficMeter() as meter:
                model(*bundle["forward"]["odd_T63/none"])
            out["traffic"] = (dict(meter.sent), dict(meter.calls))
        with torch.no_grad():  # the patch is off again: the plain forward
            out["forward_after"] = model(*bundle["forward"]["odd_T63/none"][:2])
        torch.save(out, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
