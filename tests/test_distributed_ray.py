"""The Ray runtime of multi-GPU runs (``rs_ltxv.distributed``): jobs as plain data, load recipes with LoRA, the
worker bootstrap under another module name, and real Ray CPU actors talking gloo on 127.0.0.1 — a tiny generation
on 2 workers equals one process, a dead or hung worker gives a ``DistributedError`` naming its rank within seconds
and leaves no process behind, cancel stops every rank at the same step.

One local Ray and one worker pool serve the whole module (the fault tests end with a fresh pool); every wait is
bounded (``comm_timeout_s`` = 3 s)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from rs_ltxv import distributed
from rs_ltxv.distributed import (
    DistributedError,
    DistributedStageRunner,
    LoadRecipe,
    LoraPatch,
    ParallelConfig,
    WorkerDied,
    load_from_recipe,
)
from rs_ltxv.distributed.cluster import ensure_ray
from rs_ltxv.distributed.pool import current_pool
from rs_ltxv.distributed.wire import WIRE_TYPES, decode, encode
from rs_ltxv.ltx.errors import Cancelled, InputError
from rs_ltxv.ltx.loading import load_transformer
from rs_ltxv.ltx.pipeline.conditioning import (
    AudioPrefix,
    FrozenAudio,
    KeyframeGuide,
    ReferenceAudio,
    ReferenceVideo,
    ReplaceLatentFrames,
    TemporalRegionMask,
)
from rs_ltxv.ltx.pipeline.denoiser import Denoiser
from rs_ltxv.ltx.pipeline.generate import generate
from rs_ltxv.ltx.pipeline.guidance import GuidanceParams, SigmaBinnedGuidance
from rs_ltxv.ltx.pipeline.kdiffusion import ExternalSampler
from rs_ltxv.ltx.pipeline.latents import VideoSize
from rs_ltxv.ltx.pipeline.protocols import ModelParts
from rs_ltxv.ltx.pipeline.reference_guide import ReferenceVideoGuide
from rs_ltxv.ltx.pipeline.request import ImageGuide, Request
from rs_ltxv.ltx.pipeline.retake import retake
from rs_ltxv.ltx.pipeline.sampling import SamplerOptions
from rs_ltxv.ltx.pipeline.stage import StageInputs
from rs_ltxv.ltx.text.processor import TextContexts
from rs_ltxv.ltx.tiny import tiny_config, tiny_state_dict, write_tiny_checkpoint
from rs_ltxv.ltx.transformer import LTXAVTransformer, RunOptions

from reference.ray_cluster import alive, copy_pack, tiny_run

#: every Ray test's pool: 2 CPU ranks (gloo), collectives give up after 3 s
CONFIG = ParallelConfig(gpus=2, backend="gloo", comm_timeout_s=3.0)
GUIDANCE = GuidanceParams(cfg=3.0, stg=1.0, stg_blocks=(1,), rescale=0.7, modality=2.0)
IMAGE = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)


def _request(sampler: object = "euler", **kw) -> Request:
    """A tiny request with CFG, STG, rescale and modality guidance and two image guides (frame 0, and frame 8 with
    an attention strength), latents only."""
    base = dict(width=128, height=64, frames=17, fps=24.0, seed=5, steps=4, sampler=sampler, video_guidance=GUIDANCE,
                audio_guidance=GUIDANCE, images=(ImageGuide(IMAGE, 0, 1.0), ImageGuide(IMAGE, 8, 0.7, attention=0.5)),
                decode=False)
    return Request(**{**base, **kw})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("ray"))


@pytest.fixture(scope="module")
def ray_parts(tiny):
    """The tiny parts attached to the module's Ray pool (Ray started here, on 127.0.0.1; stopped at the end)."""
    ray = pytest.importorskip("ray")
    ensure_ray(CONFIG)
    yield distributed.attach(tiny.parts, CONFIG, LoadRecipe(tiny.checkpoint, "float32"))
    distributed.shutdown()
    ray.shutdown()


def _run(parts: ModelParts, tiny, req: Request, **kw):
    ticks: list[tuple[int, int]] = []
    out = generate(parts, req, contexts=(tiny.positive, tiny.negative), progress=lambda d, t: ticks.append((d, t)),
                   **kw)
    return out, ticks


# --- plain data and recipes (no Ray) ---------------------------------------------------------------------------


def test_wire_round_trips_every_job_type():
    g = torch.Generator().manual_seed(3)
    torch.randn(5, generator=g)
    values = [
        KeyframeGuide(torch.randn(1, 16, 1, 2, 3), 8, 0.7, 0.5),
        ReplaceLatentFrames(torch.randn(1, 16, 1, 2, 3), 1, 0.5),
        AudioPrefix(torch.randn(1, 8, 3, 16), 0.9),
        FrozenAudio(),
        ReferenceAudio(torch.randn(1, 8, 4, 16), 0.8),
        ReferenceVideo(torch.randn(1, 16, 2, 1, 2), 2, 0.9, torch.rand(1, 4)),
        TemporalRegionMask(0.5, 1.25, True, False),
        StageInputs(VideoSize(17, 64, 128), torch.tensor([1.0, 0.5, 0.0]), 5, (FrozenAudio(),),
                    torch.randn(1, 16, 3, 2, 4), None, True, 0.8, 16, 1, "res_2s", SamplerOptions(eta=0.5),
                    torch.bfloat16, "cpu"),
        GuidanceParams(cfg=3.0, stg=1.0, stg_blocks=(1, 3), skip_step=2),
        SigmaBinnedGuidance.from_mapping({1.0: GUIDANCE, 0.5: GuidanceParams()}),
        TextContexts(torch.randn(1, 8, 32), torch.randn(1, 8, 16), torch.ones(1, 8)),
        SamplerOptions(eta=0.5, seed=7, model_dtype=torch.bfloat16, bongmath=False),
        RunOptions(attention_mode="sdpa", ffn_chunks=3),
        VideoSize(17, 64, 128, 25.0, 2),
        LoraPatch("a.weight", torch.randn(4, 2), torch.randn(2, 3), None, 0.5),
        LoadRecipe("/x.safetensors", "float16", True, (LoraPatch("a.weight", torch.ones(4, 2), torch.ones(2, 3), 1.0,
                                                                  0.5),)),
    ]
    assert {type(v).__name__ for v in values} == set(WIRE_TYPES)
    for value in values:
        back = decode(encode(value))
        assert type(back) is type(value)
        assert repr(back) == repr(value)
    state = decode(encode({"seed": g}))["seed"].get_state()
    assert torch.equal(state, g.get_state())
    assert decode(encode((1, [2.5, None], {"a": "b"}))) == (1, [2.5, None], {"a": "b"})


@pytest.mark.parametrize("value", [RunOptions(attention_mode=lambda q, k, v, m: q), lambda: 0, torch.nn.Linear(1, 1)],
                         ids=["callable-attention", "function", "module"])
def test_wire_refuses_what_would_not_mean_the_same_in_a_worker(value):
    with pytest.raises(InputError):
        encode(value)


@pytest.mark.parametrize("bad", [dict(gpus=0), dict(gpus=2.0), dict(gpus=True), dict(backend="mpi"),
                                 dict(ray_address=""), dict(comm_timeout_s=0.5), dict(comm_timeout_s=float("nan")),
                                 dict(keep_loaded="yes")])
def test_parallel_config_check_refuses_bad_values(bad):
    with pytest.raises(InputError):
        ParallelConfig(**bad).check()


def _lora(weight: torch.Tensor, key: str, rank: int, seed: int, alpha: float | None, strength: float) -> LoraPatch:
    g = torch.Generator().manual_seed(seed)
    return LoraPatch(key, torch.randn(weight.shape[0], rank, generator=g), torch.randn(rank, weight.shape[1],
                                                                                       generator=g), alpha, strength)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_recipe_applies_lora_as_comfyui_does(tmp_path, dtype):
    ckpt = write_tiny_checkpoint(tmp_path / "t.safetensors", "2.3", dtype=torch.float32)
    plain = load_transformer(ckpt, dtype=torch.float32)
    key, other = "transformer_blocks.0.attn1.to_q.weight", "audio_proj_out.weight"
    w, w2 = plain.get_parameter(key), plain.get_parameter(other)
    first, second = _lora(w, key, 4, 1, 2.0, 0.8), _lora(w, key, 2, 2, None, -0.5)
    third = _lora(w2, other, 3, 3, 6.0, 1.0)
    model = load_from_recipe(LoadRecipe(ckpt, dtype, loras=(first, second, third)))
    as_loaded = getattr(torch, dtype)  # ComfyUI patches the loaded weight: float32 math, cast back
    expected = w.to(as_loaded).float() + (0.8 * 2.0 / 4) * (first.up @ first.down)
    expected = (expected + (-0.5 * 1.0) * (second.up @ second.down)).to(as_loaded)
    assert torch.equal(model.get_parameter(key), expected)
    expected2 = (w2.to(as_loaded).float() + (1.0 * 6.0 / 3) * (third.up @ third.down)).to(as_loaded)
    assert torch.equal(model.get_parameter(other), expected2)
    untouched = "transformer_blocks.1.attn1.to_k.weight"
    assert torch.equal(model.get_parameter(untouched), plain.get_parameter(untouched).to(as_loaded))


def test_recipe_refuses_a_lora_for_another_model(tmp_path):
    ckpt = write_tiny_checkpoint(tmp_path / "t.safetensors", "2.3", dtype=torch.float32)
    with pytest.raises(InputError, match="no such weight"):
        load_from_recipe(LoadRecipe(ckpt, "float32", loras=(LoraPatch("nope.weight", torch.ones(2, 1),
                                                                      torch.ones(1, 2)),)))
    with pytest.raises(InputError, match="does not fit"):
        load_from_recipe(LoadRecipe(ckpt, "float32", loras=(LoraPatch("patchify_proj.weight", torch.ones(3, 1),
                                                                      torch.ones(1, 2)),)))


def test_recipe_gives_gguf_layers_a_per_forward_delta(tmp_path):
    from gguf import GGMLQuantizationType as Q

    from rs_ltxv.gguf_loader.linear import GGUFLinear
    from rs_ltxv.gguf_loader.writer import write_gguf

    cfg = tiny_config("2.3")
    sd = tiny_state_dict(cfg, seed=4)
    path = tmp_path / "t.gguf"
    write_gguf(path, sd, lambda n, t: Q.Q8_0 if n.endswith(".weight") and t.ndim == 2 and t.shape[1] % 32 == 0
               else Q.F32, metadata={"config": json.dumps({"transformer": cfg.to_dict()})})
    key = "transformer_blocks.0.attn1.to_q.weight"
    plain = load_transformer(path, dtype=torch.float32)
    layer = plain.get_submodule(key.rpartition(".")[0])
    assert isinstance(layer, GGUFLinear)
    patch = _lora(layer.weight, key, 2, 5, 4.0, 0.75)
    model = load_from_recipe(LoadRecipe(str(path), "float32", loras=(patch,)))
    patched = model.get_submodule(key.rpartition(".")[0])
    assert torch.equal(patched.qweight, layer.qweight)  # the packed weight is never changed
    base = layer.weight
    expected = base + ((base + (0.75 * 4.0 / 2) * (patch.up @ patch.down)) - base)
    assert torch.equal(patched.weight, expected)


def test_worker_host_pickled_by_value_imports_the_pack_from_a_folder_with_spaces(tmp_path):
    """As under ComfyUI: the driver holds the pack under a path-derived module name; the pickled actor class
    rebuilds itself without it and imports the pack as ``rs_ltxv`` from the folder, spaces and all."""
    pytest.importorskip("ray")
    root = copy_pack(tmp_path / "custom nodes" / "rs ltxv")
    script = f"""
import importlib.util, json, sys
import ray.cloudpickle as cp
name = "custom_nodes_x_rs ltxv.distributed.host"
spec = importlib.util.spec_from_file_location(name, {str(root / "distributed" / "host.py")!r})
host = importlib.util.module_from_spec(spec)
sys.modules[name] = host
spec.loader.exec_module(host)
host.actor_class()
blob = cp.dumps(host.WorkerHost)
del sys.modules[name]
assert "rs_ltxv" not in sys.modules
cls = cp.loads(blob)
worker = cls(host.pack_root(), 0, 1, False, 1)
import rs_ltxv
out = {{"file": rs_ltxv.__file__, "ping": worker._worker.ping(), "worker": type(worker._worker).__module__}}
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["file"] == str(root / "__init__.py")
    assert out["worker"] == "rs_ltxv.distributed.worker"
    assert out["ping"]["rank"] == 0


# --- real Ray: 2 CPU actors, gloo on 127.0.0.1 ------------------------------------------------------------------


def test_attach_refuses_before_any_worker_starts(tiny):
    pytest.importorskip("ray")
    pool = current_pool()
    with pytest.raises(InputError, match="attention heads"):
        distributed.attach(tiny.parts, replace(CONFIG, gpus=3), LoadRecipe(tiny.checkpoint, "float32"))
    with pytest.raises(InputError, match="dtype"):
        distributed.attach(tiny.parts, CONFIG, LoadRecipe(tiny.checkpoint, "float8"))
    with pytest.raises(InputError, match="gpus"):
        distributed.attach(tiny.parts, replace(CONFIG, gpus=0), LoadRecipe(tiny.checkpoint, "float32"))
    assert current_pool() is pool  # no pool was made, no worker started


def test_missing_ray_is_one_line_before_anything_loads(tiny):
    """In a Python where ``import ray`` fails, attach says how to install it (a subprocess: this one has Ray)."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from rs_ltxv import distributed\n"
        "from rs_ltxv.ltx.loading import load_transformer, open_checkpoint\n"
        "from rs_ltxv.ltx.pipeline.protocols import ModelParts\n"
        f"parts = ModelParts(load_transformer(open_checkpoint({tiny.checkpoint!r})))\n"
        "try:\n"
        f"    distributed.attach(parts, distributed.ParallelConfig(gpus=2), distributed.LoadRecipe({tiny.checkpoint!r},"
        " 'float32'))\n"
        "except distributed.DistributedError as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("DistributedError Multi-GPU runs need Ray: pip install"), out.stdout + out.stderr


def test_an_address_where_nothing_listens_fails_in_seconds():
    """Ray itself retries an unreachable head for minutes; the probe says so at once (a fresh process: this one may
    already have Ray initialised)."""
    import subprocess
    import sys

    code = ("from rs_ltxv.distributed import ParallelConfig\n"
            "from rs_ltxv.distributed.cluster import ensure_ray\n"
            "try:\n"
            "    ensure_ray(ParallelConfig(gpus=2, ray_address='127.0.0.1:1'))\n"
            "except Exception as e:\n"
            "    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("DistributedError Nothing answers at ray_address '127.0.0.1:1'"), out.stdout


def test_attach_refuses_more_ranks_than_ray_has_cpus(ray_parts, tiny):
    import ray

    cpus = int(ray.cluster_resources()["CPU"])
    cfg = replace(tiny_config("2.3"), num_attention_heads=64, attention_head_dim=1, cross_attention_dim=64,
                  audio_num_attention_heads=64, audio_attention_head_dim=1, audio_cross_attention_dim=64)
    with torch.device("meta"):
        wide = replace(tiny.parts, transformer=LTXAVTransformer(cfg))
    pool = current_pool()
    with pytest.raises(InputError, match=f"Ray sees {cpus} CPU"):
        distributed.attach(wide, replace(CONFIG, gpus=cpus + 1), LoadRecipe(tiny.checkpoint, "float32"))
    assert current_pool() is pool


@pytest.mark.parametrize("sampler,upscale", [("euler", True), ("res_2s", False)], ids=["euler-2x-pass", "res_2s"])
def test_generate_on_two_ray_workers_equals_one_process(ray_parts, tiny, sampler, upscale):
    req = _request(sampler, upscale=upscale)
    single, single_ticks = _run(tiny.parts, tiny, req)
    out, ticks = _run(ray_parts, tiny, req)
    for name in ("video_latent", "audio_latent"):
        ref, got = getattr(single, name), getattr(out, name)
        assert got.shape == ref.shape
        assert (got - ref).abs().max().item() <= 1e-5 * max(1.0, ref.abs().max().item()), name
    assert ticks == single_ticks  # one tick per step, stage 2 included
    report = current_pool().last_run
    assert report[0]["digest"] == report[1]["digest"]  # both ranks ended with the same latents
    # each rank held half of the 32 video tokens (3×2×4 latent + 8 guide tokens) in the last forward
    assert [report[r]["shapes"]["x"][1] for r in (0, 1)] == [16, 16]


def test_every_conditioning_kind_runs_on_two_ray_workers_as_in_one_process(ray_parts, tiny):
    """IC-LoRA reference video (factor 2, attention 0.5), ID-LoRA reference audio with identity guidance, and a
    retake of the result: the conditioning objects and the denoiser's identity settings travel to the workers."""
    reference = np.random.default_rng(1).integers(0, 255, (9, 64, 96, 3), dtype=np.uint8)
    voice = torch.randn(1, 16000, generator=torch.Generator().manual_seed(2)) * 0.1
    req = _request("euler", steps=2, reference_videos=(ReferenceVideoGuide(reference, 1.0, 0.5, None, 2),),
                   reference_audio=voice, reference_audio_sample_rate=16000, identity_guidance=2.0)
    single, _ = _run(tiny.parts, tiny, req)
    out, _ = _run(ray_parts, tiny, req)
    redo = dict(start_time=0.3, end_time=0.6, contexts=(tiny.positive, tiny.negative))
    retake_req = _request("euler", steps=2, images=(), reference_audio=voice, reference_audio_sample_rate=16000)
    retakes = [retake(parts, retake_req, run.video_latent, run.audio_latent, **redo)
               for parts, run in ((tiny.parts, single), (ray_parts, out))]
    for ref, got in ((single, out), *[tuple(retakes)]):
        for name in ("video_latent", "audio_latent"):
            want, have = getattr(ref, name), getattr(got, name)
            assert have.shape == want.shape
            assert (have - want).abs().max().item() <= 1e-5 * max(1.0, want.abs().max().item()), name


def test_load_parallel_parts_reads_no_transformer_weights_and_equals_one_process(ray_parts, tiny):
    """The README's one-call library path: VAEs here, the transformer as its config only, stages on the workers."""
    parts = distributed.load_parallel_parts(tiny.checkpoint, CONFIG, dtype=torch.float32, device="cpu", tiling=None)
    assert next(parts.transformer.parameters()).device.type == "meta"
    req = _request("euler")
    single, _ = _run(tiny.parts, tiny, req)
    out, _ = _run(parts, tiny, req)
    assert torch.equal(out.video_latent, single.video_latent)


def test_external_sampler_is_refused(ray_parts, tiny):
    ext = ExternalSampler(fn=lambda model, x, sigmas, **kw: x)
    runner = ray_parts.stage_runner
    assert isinstance(runner, DistributedStageRunner)
    with pytest.raises(InputError, match="built-in samplers"):
        _run(ray_parts, tiny, _request(ext, steps=2))


def test_a_project_error_in_every_worker_is_raised_as_the_drivers_class(ray_parts, tiny):
    """A conditioning latent that does not fit: every rank raises InputError; the driver raises its own InputError
    and keeps the workers (they are still in step)."""
    _run(ray_parts, tiny, _request(steps=2))
    pids = dict(current_pool().pids)
    denoiser = Denoiser(tiny.parts.transformer, tiny.positive)
    bad = ReplaceLatentFrames(torch.zeros(1, 16, 1, 5, 5))
    with pytest.raises(InputError, match="does not fit latent frame"):
        ray_parts.stage_runner(denoiser, StageInputs(VideoSize(17, 64, 128), torch.tensor([1.0, 0.0]), channels=16,
                                                     audio_channels=1, seed=torch.Generator().manual_seed(0),
                                                     conditioning=(bad,)))
    assert [current_pool().last_run[r]["error"]["type"] for r in (0, 1)] == ["InputError", "InputError"]
    assert current_pool().running
    assert current_pool().pids == pids


class HostInterrupt(Exception):
    """Stands for a host's own interrupt exception (ComfyUI's ``InterruptProcessingException``)."""


@pytest.mark.parametrize("raises", [False, True], ids=["cancel-returns-true", "cancel-raises"])
def test_cancel_stops_every_rank_at_the_same_step_and_the_pool_stays_usable(ray_parts, tiny, raises):
    _run(ray_parts, tiny, _request(steps=2))  # workers up and loaded
    pool = current_pool()
    pids = dict(pool.pids)
    ray_parts.stage_runner.inject_fault({"rank": None, "kind": "slow", "seconds": 0.1})
    done: list[int] = []

    def cancel() -> bool:
        if raises and len(done) >= 2:
            raise HostInterrupt
        return len(done) >= 2

    req = _request("euler", steps=12)
    with pytest.raises(HostInterrupt if raises else Cancelled):
        generate(ray_parts, req, contexts=(tiny.positive, tiny.negative), progress=lambda d, t: done.append(d),
                 cancel=cancel)
    steps = [pool.last_run[r]["steps"] for r in (0, 1)]
    assert steps[0] == steps[1]
    assert 2 <= steps[0] < 12
    assert done == list(range(1, steps[0] + 1))
    out, _ = _run(ray_parts, tiny, _request("euler", steps=2))
    assert out.video_latent.isfinite().all()
    assert current_pool().pids == pids  # the same workers ran it


def test_a_worker_that_exits_mid_stage_is_reported_and_cleaned_up(ray_parts, tiny):
    _run(ray_parts, tiny, _request("euler", steps=2))  # workers up and loaded
    pids = dict(current_pool().pids)
    ray_parts.stage_runner.inject_fault({"rank": 1, "step": 2, "kind": "exit"})
    start = time.monotonic()
    with pytest.raises(WorkerDied, match="rank 1") as info:
        _run(ray_parts, tiny, _request("euler", steps=6))
    took = time.monotonic() - start
    print(f"\nworker exit → {type(info.value).__name__} after {took:.2f} s: {info.value}")
    assert took < 10
    assert [pid for pid in pids.values() if alive(pid)] == []
    out, _ = _run(ray_parts, tiny, _request("euler", steps=2))  # a new pool
    assert out.video_latent.isfinite().all()
    assert set(current_pool().pids.values()).isdisjoint(pids.values())


def test_a_worker_that_fails_by_itself_is_named_at_once(ray_parts, tiny):
    """An error of one rank alone (e.g. out of memory): named at once, not after the others' comm timeout."""
    _run(ray_parts, tiny, _request(steps=2))
    ray_parts.stage_runner.inject_fault({"rank": 1, "step": 1, "kind": "raise"})
    start = time.monotonic()
    with pytest.raises(DistributedError, match=r"rank 1 .*failed during the stage: RuntimeError: test fault"):
        _run(ray_parts, tiny, _request(steps=4))
    assert time.monotonic() - start < CONFIG.comm_timeout_s
    assert not current_pool().running


def test_a_hung_worker_is_named_within_the_comm_timeout(ray_parts, tiny):
    _run(ray_parts, tiny, _request("euler", steps=2))
    pids = dict(current_pool().pids)
    ray_parts.stage_runner.inject_fault({"rank": 1, "step": 1, "kind": "hang"})
    start = time.monotonic()
    with pytest.raises(DistributedError, match=r"rank 1 .*stopped responding") as info:
        _run(ray_parts, tiny, _request("euler", steps=4))
    took = time.monotonic() - start
    print(f"\nworker hang → {type(info.value).__name__} after {took:.2f} s: {info.value}")
    assert took < CONFIG.comm_timeout_s + 7
    assert [pid for pid in pids.values() if alive(pid)] == []


def test_keep_loaded_false_stops_the_workers_after_each_stage(ray_parts, tiny):
    parts = distributed.attach(tiny.parts, replace(CONFIG, keep_loaded=False), LoadRecipe(tiny.checkpoint, "float32"))
    out, _ = _run(parts, tiny, _request(steps=2))
    assert out.video_latent.isfinite().all()
    pool = current_pool()
    assert not pool.running
    assert [pid for pid in pool.pids.values() if alive(pid)] == []
