"""Weight streaming outside ComfyUI (``rs_ltxv.ltx.offload.BlockOffload``, ``load_model_parts(offload=)``,
``generate --offload``) and ComfyUI's weight-casting protocol on our layers (``enable_weight_casting``), on tiny
real transformers on the CPU: the streamed forward equals the resident one bit for bit, at most two blocks' weights
are on the compute device at any time, and the flags fail before any model loads."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from rs_ltxv.__main__ import main
from rs_ltxv.ltx import tokens as T
from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.offload import BlockOffload, CastLinear, CastRMSNorm, enable_weight_casting
from rs_ltxv.ltx.random_weights import random_init
from rs_ltxv.ltx.tiny import tiny_config
from rs_ltxv.ltx.transformer import LTXAVTransformer, StreamInput


def _model(version: str = "2.3", layers: int = 4, seed: int = 0) -> LTXAVTransformer:
    return random_init(LTXAVTransformer(tiny_config(version, layers=layers)), seed).eval()


def _inputs(model: LTXAVTransformer) -> tuple[StreamInput, StreamInput]:
    cfg = model.config
    v_ctx, a_ctx = model.context_dim
    g = torch.Generator().manual_seed(1)
    video = StreamInput(torch.randn(1, 6, cfg.in_channels, generator=g), torch.tensor([0.5]), torch.full((1, 6), 0.5),
                        T.video_positions(1, 1, 2, 3, 24.0), torch.randn(1, 5, v_ctx, generator=g))
    audio = StreamInput(torch.randn(1, 4, cfg.audio_in_channels, generator=g), torch.tensor([0.5]),
                        torch.full((1, 4), 0.5), T.audio_positions(1, 4), torch.randn(1, 5, a_ctx, generator=g))
    return video, audio


def _block_ptrs(model: LTXAVTransformer) -> set[int]:
    return {p.data_ptr() for b in model.transformer_blocks for p in b.parameters()}


@pytest.mark.parametrize("version", ["2.0", "2.3"])
def test_streamed_forward_equals_resident_bit_for_bit(version):
    model = _model(version)
    video, audio = _inputs(model)
    with torch.no_grad():
        want = model(video, audio)
        off = BlockOffload.attach(model, "cpu")
        masters = _block_ptrs(model)
        for _ in range(2):  # a second forward streams again from the CPU copies
            got = model(video, audio)
            assert torch.equal(got[0], want[0])
            assert torch.equal(got[1], want[1])
    stats = off.stats()
    assert stats.loads == 2 * len(model.transformer_blocks)
    assert stats.current_block_bytes == 0  # every block released after it ran
    assert stats.block_bytes < stats.peak_block_bytes <= 2 * stats.block_bytes  # the next one prefetched, no more
    assert _block_ptrs(model) == masters  # between forwards the blocks point at their CPU masters


def test_without_prefetch_one_block_at_a_time():
    model = _model(layers=3)
    video, audio = _inputs(model)
    off = BlockOffload.attach(model, "cpu", prefetch=False)
    with torch.no_grad():
        model(video, audio)
    assert off.stats().peak_block_bytes == off.stats().block_bytes


def test_block_by_block_loop_as_sequence_parallel_forward_streams_too():
    """``SPForward`` runs prepare → each block → output itself; the hooks stream for any caller."""
    model = _model(layers=3)
    video, audio = _inputs(model)
    with torch.no_grad():
        want = model(video, audio)
        off = BlockOffload.attach(model, "cpu")
        v, a = model.prepare(video, audio)
        for block in model.transformer_blocks:
            v, a = block(v, a)
        got = model.output(v, a)
    assert torch.equal(got[0], want[0])
    assert torch.equal(got[1], want[1])
    assert off.stats().loads == 3


def test_interrupted_forward_keeps_the_two_block_bound_and_recovers():
    model = _model(layers=4)
    video, audio = _inputs(model)
    with torch.no_grad():
        want = model(video, audio)
    off = BlockOffload.attach(model, "cpu")

    def boom(_module, _args):
        raise RuntimeError("cancelled")

    handle = model.transformer_blocks[2].register_forward_pre_hook(boom)
    with torch.no_grad(), pytest.raises(RuntimeError, match="cancelled"):
        model(video, audio)
    handle.remove()
    assert off.stats().current_block_bytes > 0  # block 2 (prefetched, never run) still holds its device copy
    off.reset_peak()
    with torch.no_grad():
        got = model(video, audio)
    assert torch.equal(got[0], want[0])
    assert torch.equal(got[1], want[1])
    assert off.stats().peak_block_bytes <= 2 * off.stats().block_bytes
    off.release_all()
    assert off.stats().current_block_bytes == 0


def test_lora_applied_while_streaming_lands_on_the_cpu_masters():
    from rs_ltxv.ltx.lora import LoraPatch, apply_lora_patches

    plain, streamed = _model(layers=2), _model(layers=2)
    BlockOffload.attach(streamed, "cpu")
    g = torch.Generator().manual_seed(3)
    w = plain.transformer_blocks[1].attn1.to_q.weight
    patch = LoraPatch("transformer_blocks.1.attn1.to_q.weight", torch.randn(w.shape[0], 2, generator=g),
                      torch.randn(2, w.shape[1], generator=g), 0.5)
    apply_lora_patches(plain, [patch])
    apply_lora_patches(streamed, [patch])
    video, audio = _inputs(plain)
    with torch.no_grad():
        want, got = plain(video, audio), streamed(video, audio)
    assert torch.equal(got[0], want[0])
    assert torch.equal(got[1], want[1])


def test_detach_restores_a_plain_model():
    model = _model(layers=2)
    video, audio = _inputs(model)
    with torch.no_grad():
        want = model(video, audio)
    off = BlockOffload.attach(model, "cpu")
    off.detach()
    assert all(not b._forward_pre_hooks and not b._forward_hooks for b in model.transformer_blocks)
    BlockOffload.attach(model, "cpu").detach()  # attachable again after detach
    with torch.no_grad():
        got = model(video, audio)
    assert torch.equal(got[0], want[0])


def test_attach_errors_say_what_to_do():
    model = _model(layers=1)
    BlockOffload.attach(model, "cpu")
    with pytest.raises(InputError, match="detach"):
        BlockOffload.attach(model, "cpu")
    with pytest.raises(InputError, match="transformer_blocks"):
        BlockOffload.attach(torch.nn.Linear(2, 2), "cpu")
    with pytest.raises(InputError, match="CUDA device"):
        BlockOffload.attach(_model(layers=1), "meta")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="needs CUDA"):
            BlockOffload.attach(_model(layers=1), "cuda")


# -- ComfyUI's weight-casting protocol (no ComfyUI here: the attributes ComfyUI's memory manager sets) ------------
def test_weight_casting_layers_equal_plain_ones_and_follow_the_flags():
    model = _model(layers=2)
    video, audio = _inputs(model)
    with torch.no_grad():
        want = model(video, audio)
    keys = list(model.state_dict())
    changed = enable_weight_casting(model)
    assert changed > 0
    assert enable_weight_casting(model) == 0
    assert list(model.state_dict()) == keys
    layers = [m for m in model.modules() if isinstance(m, (CastLinear, CastRMSNorm))]
    assert len(layers) == changed
    assert not any(type(m) in (torch.nn.Linear, torch.nn.RMSNorm) for m in model.modules())
    for m in layers:  # what ModelPatcher.load does to a module that stays offloaded
        m.comfy_cast_weights = True
    model.to(torch.float64)  # stored in another dtype: cast to the input's at every call, as core's layers
    with torch.no_grad():
        got = model(video, audio)
    torch.testing.assert_close(got[0].float(), want[0], rtol=0, atol=1e-5)
    assert got[0].dtype == torch.float32
    layer = model.transformer_blocks[0].attn1.to_q
    layer.weight_function = [lambda w: w * 0]  # a LowVramPatch stand-in: applied at use, stored weight untouched
    layer.bias_function = [lambda b: b * 0]
    x = torch.randn(3, layer.in_features)
    assert torch.equal(layer(x), torch.zeros(3, layer.out_features))
    assert layer.weight.abs().sum() > 0


# -- library and CLI ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    from rs_ltxv.ltx.tiny import write_tiny_checkpoint
    from rs_ltxv.ltx.tiny_parts import write_tiny_gemma

    d = tmp_path_factory.mktemp("models")
    return (str(write_tiny_checkpoint(d / "ltx.safetensors", "2.3", dtype=torch.float32, full=True)),
            str(write_tiny_gemma(d / "gemma")))


def test_load_model_parts_offload(tiny_files):
    from rs_ltxv.ltx.pipeline.parts import load_model_parts

    ckpt, _ = tiny_files
    parts = load_model_parts(ckpt, dtype=torch.float32, offload=True)
    assert isinstance(parts.offload, BlockOffload)
    assert parts.offload.device == torch.device("cpu")
    with pytest.raises(InputError, match="transformer="):
        load_model_parts(ckpt, transformer=parts.transformer, offload=True)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="needs CUDA"):
            load_model_parts("/nonexistent.safetensors", device="cuda", offload=True)  # before any file is read


def test_generate_offload_equals_resident(tiny_files, tmp_path):
    ckpt, gemma = tiny_files
    common = ["generate", "--checkpoint", ckpt, "--text-encoder", gemma, "--width", "128", "--height", "64",
              "--frames", "9", "--steps", "2", "--dtype", "fp32", "--device", "cpu", "--stg-block", "1",
              "--prompt", "a fox"]
    assert main([*common, "-o", str(tmp_path / "plain.mp4")]) == 0
    assert main([*common, "--offload", "-o", str(tmp_path / "streamed.mp4")]) == 0
    want = load_file(str(tmp_path / "plain.latents.safetensors"))
    got = load_file(str(tmp_path / "streamed.latents.safetensors"))
    assert want.keys() == got.keys()
    for k in want:
        assert torch.equal(got[k], want[k]), k


def test_generate_offload_with_gpus_fails_before_loading(tiny_files, tmp_path, capsys):
    ckpt, gemma = tiny_files
    code = main(["generate", "--checkpoint", ckpt, "--text-encoder", gemma, "--prompt", "x", "--frames", "9",
                 "--width", "128", "--height", "64", "--dtype", "fp32", "--device", "cpu", "--offload",
                 "--gpus", "2", "-o", str(tmp_path / "x.mp4")])
    assert code == 2
    assert "Drop --offload or --gpus" in capsys.readouterr().err


@pytest.mark.cuda
def test_cuda_streaming_equals_resident_and_holds_at_most_two_blocks():
    """Pinned masters, side-stream prefetch, ``torch.cuda.max_memory_allocated`` (runs only with a CUDA device)."""
    device = torch.device("cuda")
    base = _model(layers=6).to(torch.bfloat16)
    video, audio = _inputs(base)
    video, audio = (dataclasses.replace(s, latent=s.latent.to(device, torch.bfloat16), sigma=s.sigma.to(device),
                                        timesteps=s.timesteps.to(device), positions=s.positions.to(device),
                                        context=s.context.to(device, torch.bfloat16)) for s in (video, audio))
    with torch.no_grad():
        want = base.to(device)(video, audio)
        base.to("cpu")
        torch.cuda.synchronize()
        off = BlockOffload.attach(base, device)
        assert all(p.is_pinned() for b in base.transformer_blocks for p in b.parameters())
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        got = base(video, audio)
        torch.cuda.synchronize()
        weights_peak = torch.cuda.max_memory_allocated() - before
    assert torch.equal(got[0], want[0])
    assert torch.equal(got[1], want[1])
    assert off.stats().peak_block_bytes <= 2 * off.stats().block_bytes
    assert weights_peak < 6 * off.stats().block_bytes  # activations of the tiny model are small; 6 blocks if resident
