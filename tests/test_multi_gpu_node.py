"""RS LTXV Multi-GPU (Ray) without ComfyUI: the node's spec, the ``parallel`` object patch it puts on a clone (the
shared MODEL never changes), the LoRA patches turned into the workers' load recipe, and RS LTXV Generate / Extend
running their stages through ``rs_ltxv.distributed.attach`` — mostly replaced by a stub that records what it gets
and runs the stages in this process; the last test uses the real one (2 Ray CPU workers). ComfyUI's own patcher is
checked in test_multi_gpu_comfyui.py."""

from __future__ import annotations

import dataclasses
import os
import sys

import pytest
import torch

import rs_ltxv.distributed as distributed
from rs_ltxv.distributed import LoadRecipe, LoraPatch, ParallelConfig
from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.loading import load_prompt_encoder, load_transformer, open_checkpoint
from rs_ltxv.ltx.loading.audio import load_audio_vae
from rs_ltxv.ltx.loading.video_vae import load_video_vae
from rs_ltxv.ltx.pipeline.parts import VideoVAEAdapter
from rs_ltxv.ltx.pipeline.stage import run_stage
from rs_ltxv.ltx.tiny import write_tiny_checkpoint
from rs_ltxv.ltx.tiny_parts import write_tiny_gemma
from rs_ltxv.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, specs
from rs_ltxv.nodes.comfy_model import PARALLEL, LTXVModule, parallel_of
from rs_ltxv.nodes.load_recipe import load_recipe, lora_patches
from rs_ltxv.nodes.loaders import text_encode
from rs_ltxv.nodes.ltxv_extend import run_extend
from rs_ltxv.nodes.ltxv_generate import Hooks, run_generate
from rs_ltxv.nodes.multi_gpu import with_parallel

from reference.fake_patcher import Adapter, FakePatcher, lora

SPEC = specs.MULTI_GPU
KEY = "transformer_blocks.0.attn1.to_q.weight"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    work = tmp_path_factory.mktemp("multi-gpu-node")
    path = write_tiny_checkpoint(work / "tiny-ltx-2.3.safetensors", "2.3", dtype=torch.float32, full=True)
    ckpt = open_checkpoint(path)
    encoder = load_prompt_encoder(write_tiny_gemma(work / "tiny-gemma"), ckpt, dtype=torch.float32)
    return dict(
        module=LTXVModule(load_transformer(ckpt, dtype=torch.float32), source=path),
        vae=VideoVAEAdapter(load_video_vae(path, dtype=torch.float32), None),
        audio_vae=load_audio_vae(path, dtype=torch.float32),
        positive=text_encode(encoder, "A red fox runs through the snow, birds sing.")[0],
        negative=text_encode(encoder, "blurry")[0],
    )


def _model(tiny) -> FakePatcher:
    return FakePatcher(tiny["module"])


def _inputs(tiny, model) -> dict:
    return dict(model=model, vae=tiny["vae"], audio_vae=tiny["audio_vae"], positive=tiny["positive"],
                negative=tiny["negative"])


SMALL = dict(width=64, height=64, num_frames=9, steps=2, seed=3, frame_rate=25.0, stg_blocks="1", stg_scale=1.0,
             cfg=2.0)
SMALL_EXTEND = dict(steps=2, seed=3, frame_rate=25.0, stg_blocks="1", cfg=2.0)


# --- the node --------------------------------------------------------------------------------------------------

def test_node_is_registered_with_its_display_name():
    assert SPEC.id in NODE_CLASS_MAPPINGS
    assert NODE_DISPLAY_NAME_MAPPINGS[SPEC.id] == "RS LTXV Multi-GPU (Ray)"
    assert SPEC.category == specs.GENERATE.category
    assert [(o.name, o.type) for o in SPEC.outputs] == [("model", "MODEL")]


def test_inputs_required_and_advanced():
    required = [i.name for i in SPEC.inputs if not i.optional]
    advanced = [i.name for i in SPEC.inputs if i.advanced]
    assert required == ["model", "gpus", "ray_address"]
    assert advanced == ["comm_timeout_s", "keep_loaded", "backend"]
    assert (SPEC.input("gpus").type, SPEC.input("gpus").default, SPEC.input("gpus").min) == ("INT", 2, 1)
    assert (SPEC.input("ray_address").type, SPEC.input("ray_address").default) == ("STRING", "")


def test_widgets_are_the_parallel_config_fields_with_its_defaults():
    """One name per thing: each widget is the ParallelConfig field of that name, with the same default (the empty
    address stands for None: a local Ray)."""
    config_defaults = {f.name: f.default for f in dataclasses.fields(ParallelConfig)}
    widget_defaults = dict(SPEC.defaults, ray_address=None)
    assert widget_defaults == config_defaults
    assert SPEC.input("backend").options == distributed.config.BACKENDS


def test_gpus_1_returns_the_model_itself(tiny):
    model = _model(tiny)
    assert with_parallel(model, gpus=1)[0] is model
    assert model.object_patches == {}


def test_clone_carries_the_patch_and_the_original_does_not(tiny):
    model = _model(tiny)
    (clone,) = with_parallel(model, gpus=2)
    assert clone is not model
    assert clone.model is model.model  # shared weights
    assert clone.object_patches[PARALLEL] == ParallelConfig(gpus=2)
    assert PARALLEL not in model.object_patches
    assert parallel_of(clone) == ParallelConfig(gpus=2)
    assert parallel_of(model) is None
    assert tiny["module"].parallel is None


@pytest.mark.parametrize(("given", "expected"), [
    (dict(ray_address=""), dict(ray_address=None)),
    (dict(ray_address="  auto "), dict(ray_address="auto")),
    (dict(ray_address="10.0.0.5:6379", gpus=4), dict(ray_address="10.0.0.5:6379", gpus=4)),
    (dict(comm_timeout_s=30.0, keep_loaded=False, backend="gloo"),
     dict(comm_timeout_s=30.0, keep_loaded=False, backend="gloo")),
])
def test_settings_reach_the_config(tiny, given, expected):
    (clone,) = with_parallel(_model(tiny), **{"gpus": 2, **given})
    assert parallel_of(clone) == ParallelConfig(**{"gpus": 2, **expected})


@pytest.mark.parametrize(("given", "words"), [
    (dict(gpus=0), "gpus"),
    (dict(gpus=65), "gpus"),
    (dict(backend="mpi"), "backend"),
    (dict(comm_timeout_s=0.5), "comm_timeout_s"),
])
def test_bad_settings_are_input_errors(tiny, given, words):
    with pytest.raises(InputError, match=words):
        with_parallel(_model(tiny), **{"gpus": 2, **given})


def test_models_the_workers_cannot_load_are_refused(tiny):
    core_like = FakePatcher(torch.nn.Linear(2, 2))  # core's loaders: a BaseModel, no file path
    with pytest.raises(InputError, match="RS LTXV Model Loader"):
        with_parallel(core_like, gpus=2)
    in_memory = FakePatcher(LTXVModule(tiny["module"].diffusion_model))
    with pytest.raises(InputError, match="built in memory"):
        with_parallel(in_memory, gpus=2)
    with pytest.raises(InputError, match="RS LTXV Model Loader"):
        with_parallel(None, gpus=2)


def test_node_import_does_not_import_ray():
    """Checked in a fresh process: this one may have imported Ray for other tests."""
    import subprocess

    code = "import sys, rs_ltxv.nodes, rs_ltxv.nodes.multi_gpu, rs_ltxv.nodes.load_recipe; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


# --- LoRA patches → the load recipe ------------------------------------------------------------------------------

def _factors(seed: int, out_f: int = 6, rank: int = 2, in_f: int = 5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(out_f, rank, generator=g), torch.randn(rank, in_f, generator=g)


def test_plain_loras_become_lora_patches_in_order(tiny):
    (up1, down1), (up2, down2) = _factors(1), _factors(2)
    model = _model(tiny).add(f"diffusion_model.{KEY}", lora(up1, down1, 4.0), strength=0.5)
    model.add(f"diffusion_model.{KEY}", lora(up2, down2, None), strength=1.25)
    first, second = lora_patches(model)
    assert (first.key, first.alpha, first.strength) == (KEY, 4.0, 0.5)
    assert torch.equal(first.up, up1)
    assert torch.equal(first.down, down1)
    assert (second.alpha, second.strength) == (None, 1.25)
    assert torch.equal(second.up, up2)


def test_alpha_tensor_becomes_a_float(tiny):
    up, down = _factors(3)
    (patch,) = lora_patches(_model(tiny).add(f"diffusion_model.{KEY}", lora(up, down, torch.tensor(8.0))))
    assert isinstance(patch.alpha, float)
    assert patch.alpha == 8.0


@pytest.mark.parametrize(("adapter", "options", "words"), [
    (Adapter("loha", (None,) * 6), {}, "LoHa"),
    (Adapter("lokr", (None,) * 6), {}, "LoKr"),
    (Adapter("glora", (None,) * 6), {}, "glora"),
    ("dora", {}, "DoRA"),
    ("mid", {}, "mid weight"),
    ("reshape", {}, "reshapes"),
    ("plain", {"strength_model": 0.5}, "strength_model"),
    ("plain", {"offset": (0, 0, 3)}, "offset"),
    ("plain", {"function": abs}, "function"),
    ((torch.zeros(6, 5),), {}, "diff"),
    (("set", (torch.zeros(6, 5),)), {}, "'set'"),
])
def test_other_patches_are_refused_by_name(tiny, adapter, options, words):
    up, down = _factors(4)
    extra = {"dora": dict(dora_scale=torch.ones(6, 1)), "mid": dict(mid=torch.ones(2, 2, 1, 1)),
             "reshape": dict(reshape=[6, 5])}
    if isinstance(adapter, str):
        adapter = lora(up, down, 1.0, **extra.get(adapter, {}))
    model = _model(tiny).add(f"diffusion_model.{KEY}", adapter, **options)
    with pytest.raises(InputError, match=words) as info:
        lora_patches(model, "RS LTXV Generate")
    assert KEY in str(info.value)
    assert "plain LoRA" in str(info.value)


def test_hook_loras_are_refused(tiny):
    model = _model(tiny)
    model.hook_patches = {"hook": {}}
    with pytest.raises(InputError, match="hook"):
        lora_patches(model)


def test_recipe_names_the_file_dtype_and_schedule(tiny):
    up, down = _factors(5)
    recipe = load_recipe(_model(tiny).add(f"diffusion_model.{KEY}", lora(up, down, 2.0)))
    assert recipe.checkpoint == os.path.abspath(tiny["module"].source)
    assert (recipe.dtype, recipe.distilled) == ("float32", False)
    assert [p.key for p in recipe.loras] == [KEY]


# --- Generate / Extend through attach ----------------------------------------------------------------------------

class StubAttach:
    """Stands in for ``rs_ltxv.distributed.attach``: records its arguments and runs the stages here with the
    driver's transformer (``parts.stage_runner`` = ``run_stage``), counting the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[ParallelConfig, LoadRecipe]] = []
        self.stages = 0

    def __call__(self, parts, config, recipe):
        self.calls.append((config, recipe))

        def runner(denoise, inputs, callbacks=None):
            self.stages += 1
            return run_stage(denoise, inputs, callbacks)

        parts.stage_runner = runner
        return parts


@pytest.fixture
def stub(monkeypatch):
    attach = StubAttach()
    monkeypatch.setattr(distributed, "attach", attach)
    return attach


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def _no_load(_patcher):
    raise AssertionError("a multi-GPU MODEL must not be loaded through ComfyUI's memory manager")


def test_generate_runs_its_stages_through_attach(tiny, stub):
    before = _state(tiny["module"])
    plain = run_generate(None, **_inputs(tiny, _model(tiny)), **SMALL)
    (clone,) = with_parallel(_model(tiny), gpus=2, ray_address="auto")
    parallel = run_generate(Hooks(load=_no_load), **_inputs(tiny, clone), **SMALL)
    config, recipe = stub.calls[0]
    assert config == ParallelConfig(gpus=2, ray_address="auto")
    assert recipe == LoadRecipe(checkpoint=os.path.abspath(tiny["module"].source), dtype="float32", distilled=False)
    assert stub.stages == 1
    assert torch.equal(parallel[0]["samples"], plain[0]["samples"])
    assert torch.equal(parallel[1]["samples"], plain[1]["samples"])
    after = _state(tiny["module"])
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert tiny["module"].parallel is None


def test_extend_runs_its_stages_through_attach(tiny, stub):
    first = run_generate(None, **_inputs(tiny, _model(tiny)), **SMALL)
    (clone,) = with_parallel(_model(tiny), gpus=3)
    extend = dict(latent=first[0], audio_latent=first[1], num_new_frames=8, overlap_frames=8, **SMALL_EXTEND)
    plain = run_extend(None, **_inputs(tiny, _model(tiny)), **extend)
    parallel = run_extend(Hooks(load=_no_load), **_inputs(tiny, clone), **extend)
    assert stub.calls[0][0].gpus == 3
    assert stub.stages == 1
    assert torch.equal(parallel[0]["samples"], plain[0]["samples"])


def test_lora_patches_travel_in_the_recipe(tiny, stub):
    out_f, in_f = tiny["module"].diffusion_model.state_dict()[KEY].shape
    up, down = _factors(6, out_f, 2, in_f)
    model = _model(tiny).add(f"diffusion_model.{KEY}", lora(up, down, 1.0), strength=0.75)
    (clone,) = with_parallel(model, gpus=2)
    run_generate(Hooks(load=_no_load), **_inputs(tiny, clone), **SMALL)
    ((_, recipe),) = stub.calls
    (patch,) = recipe.loras
    assert isinstance(patch, LoraPatch)
    assert (patch.key, patch.alpha, patch.strength) == (KEY, 1.0, 0.75)
    assert torch.equal(patch.up, up)
    assert torch.equal(patch.down, down)


def test_a_lora_the_workers_cannot_apply_stops_the_run_before_it_starts(tiny, stub):
    model = _model(tiny).add(f"diffusion_model.{KEY}", Adapter("loha", (None,) * 6))
    (clone,) = with_parallel(model, gpus=2)
    with pytest.raises(InputError, match="LoHa"):
        run_generate(Hooks(load=_no_load), **_inputs(tiny, clone), **SMALL)
    assert stub.calls == []


def test_a_core_sampler_is_refused_before_anything_starts(tiny, stub):
    (clone,) = with_parallel(_model(tiny), gpus=2)
    with pytest.raises(InputError, match="SAMPLER"):
        run_generate(Hooks(load=_no_load), **_inputs(tiny, clone), **SMALL, sampler=object())
    assert stub.calls == []


def test_guides_audio_and_extend_on_two_ray_workers_equal_one_process(tiny):
    """The real ``attach``: 2 Ray CPU workers (gloo) load the tiny checkpoint themselves; image guides (one at
    half attention strength), audio-to-video and an extension of the result equal the one-process runs."""
    (clone,) = with_parallel(_model(tiny), gpus=2, comm_timeout_s=60.0)
    image = torch.rand(1, 80, 96, 3, generator=torch.Generator().manual_seed(8))
    sound = {"waveform": 0.1 * torch.randn(1, 2, 16000, generator=torch.Generator().manual_seed(9)),
             "sample_rate": 16000}
    extra = dict(first_image=image, last_image=image, last_strength=0.5, audio=sound)
    runs = {}
    for name, model in (("one", _model(tiny)), ("ray", clone)):
        first = run_generate(Hooks(load=None if name == "one" else _no_load), **_inputs(tiny, model), **SMALL,
                             **extra)
        more = run_extend(None, **_inputs(tiny, model), latent=first[0], audio_latent=first[1], num_new_frames=8,
                          overlap_frames=8, **SMALL_EXTEND)
        runs[name] = (first[0]["samples"], more[0]["samples"], more[1]["samples"])
    for one, ray in zip(runs["one"], runs["ray"], strict=True):
        scale = max(1.0, one.abs().max().item())
        assert (ray - one).abs().max().item() <= 1e-5 * scale
