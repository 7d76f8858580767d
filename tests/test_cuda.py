"""The same code on a CUDA device: transformer parity with ltx-core in float32 and bfloat16, the optional attention
backends against SDPA, the tiny end-to-end pipeline against its CPU run, GGUF dequantisation and the tiled video VAE
decode against the CPU. Skipped where no CUDA device is available (CI); run on a GPU machine with
``pytest tests/test_cuda.py``.

float32 comparisons run with TF32 switched off (matmul and cuDNN), so CPU and GPU differ only in summation order.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from rs_ltxv.ltx.loading import load_transformer
from rs_ltxv.ltx.transformer import Perturbations, RunOptions, StreamInput, skip
from rs_ltxv.ops import attention, resolve_backend

from reference import ltx_core_ref as R

pytestmark = pytest.mark.cuda

CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def _no_tf32():
    """Exact float32 on the GPU (TF32 would change float32 results at the 1e-3 level)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _rel(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """max|ours − ref| / max(1, max|ref|) in float32."""
    return (ours.float() - ref.float()).abs().max().item() / max(1.0, ref.float().abs().max().item())


def _on(d: dict, dtype: torch.dtype) -> dict:
    """A modality dict on CUDA: latent and context in ``dtype``, σ / timesteps / positions / masks as they are."""
    return {k: (v.to(CUDA, dtype) if k in ("latent", "context") else v.to(CUDA))
            if isinstance(v, torch.Tensor) else v for k, v in d.items()}


def _inputs(pair, batch=2, seed=0):
    video = R.random_modality(pair.ref, "video", batch=batch, tokens_or_grid=(3, 4, 5), text_len=16,
                              sigma=[0.8, 0.35][:batch], seed=seed)
    audio = R.random_modality(pair.ref, "audio", batch=batch, tokens_or_grid=11, text_len=16,
                              sigma=[0.6, 0.2][:batch], seed=seed + 1)
    mask = torch.ones(batch, 60)
    mask[:, :20] = 0.0  # a clean conditioning frame: per-token timesteps
    video["timesteps"] = mask * video["sigma"][:, None]
    video["context_mask"] = torch.ones(batch, 16, dtype=torch.int64)
    video["context_mask"][-1, :5] = 0  # left padding on the last item: the text mask goes through the kernel
    return video, audio


@pytest.fixture(scope="module")
def gpu_pairs(pair):
    """(ltx-core transformer on CUDA float32, ours loaded on CUDA float32 from the same checkpoint, pair)."""
    ref = copy.deepcopy(pair.ref.transformer).to(CUDA)
    ours = load_transformer(pair.checkpoint, dtype=torch.float32, device=CUDA)
    assert next(ours.parameters()).is_cuda
    return ref, ours, pair


def _run_both(ref, ours, video, audio, ptb_ref=None, ptb_ours=None, options=None):
    rv, ra = R._run(ref, video, audio, ptb_ref)
    with torch.no_grad():
        ov, oa = ours(StreamInput(**video), StreamInput(**audio), ptb_ours, options)
    return (ov, oa), (rv, ra)


def test_transformer_parity_float32_cuda(gpu_pairs):
    ref, ours, pair = gpu_pairs
    video, audio = _inputs(pair)
    (ov, oa), (rv, ra) = _run_both(ref, ours, _on(video, torch.float32), _on(audio, torch.float32))
    assert ov.is_cuda
    assert oa.is_cuda
    # the acceptance tolerance of the CPU parity tests: 1e-5 · max(1, max|ref|)
    assert _rel(ov, rv) <= 1e-5, (_rel(ov, rv), _rel(oa, ra))
    assert _rel(oa, ra) <= 1e-5, (_rel(ov, rv), _rel(oa, ra))
    # and the GPU result is the CPU result (same model on the CPU)
    cv, ca = R.run_transformer(pair.ref, video=video, audio=audio)
    assert _rel(ov.cpu(), cv) <= 1e-5, (_rel(ov.cpu(), cv), _rel(oa.cpu(), ca))
    assert _rel(oa.cpu(), ca) <= 1e-5, (_rel(ov.cpu(), cv), _rel(oa.cpu(), ca))
    print(f"\n{pair.variant} float32 cuda: ours vs ltx-core video {_rel(ov, rv):.1e} audio {_rel(oa, ra):.1e}; "
          f"ours cuda vs ltx-core cpu video {_rel(ov.cpu(), cv):.1e}")


def test_transformer_parity_float32_cuda_perturbed_and_ff_chunks(gpu_pairs):
    ref, ours, pair = gpu_pairs
    video, audio = _inputs(pair, seed=3)
    kind = "skip_video_self_attn"
    ptb_ref = [[(kind, [1])], []]
    ptb_ours = Perturbations(((skip(kind, [1]),), ()))
    (ov, oa), (rv, ra) = _run_both(ref, ours, _on(video, torch.float32), _on(audio, torch.float32), ptb_ref,
                                   ptb_ours, RunOptions(ffn_chunks=3))
    assert _rel(ov, rv) <= 1e-5, (_rel(ov, rv), _rel(oa, ra))
    assert _rel(oa, ra) <= 1e-5, (_rel(ov, rv), _rel(oa, ra))


def test_transformer_parity_bfloat16_cuda(gpu_pairs):
    """bf16 weights and activations on both sides; each side's error against the float32 model with the same
    (bf16-rounded) weights must be of bf16 size, and ours no worse than ltx-core's (within 2×)."""
    ref32, _, pair = gpu_pairs
    ref16 = copy.deepcopy(ref32).to(torch.bfloat16)
    truth_model = copy.deepcopy(ref16).float()  # the same rounded weights in float32
    ours16 = load_transformer(pair.checkpoint, dtype=torch.bfloat16, device=CUDA)  # the same rounding
    video, audio = _inputs(pair, seed=5)
    (ov, oa), (rv, ra) = _run_both(ref16, ours16, _on(video, torch.bfloat16), _on(audio, torch.bfloat16))
    assert ov.dtype == torch.bfloat16
    tv, ta = R._run(truth_model, _on(video, torch.float32), _on(audio, torch.float32), None)
    ours_err, ref_err = max(_rel(ov, tv), _rel(oa, ta)), max(_rel(rv, tv), _rel(ra, ta))
    assert max(_rel(ov, rv), _rel(oa, ra)) <= 3e-2, (_rel(ov, rv), _rel(oa, ra))
    assert ours_err <= 3e-2, (ours_err, ref_err)
    assert ours_err <= 2 * ref_err + 1e-3, (ours_err, ref_err)
    print(f"\n{pair.variant} bf16 cuda: ours vs ltx-core {max(_rel(ov, rv), _rel(oa, ra)):.1e}; vs float32: ours "
          f"{ours_err:.1e}, ltx-core {ref_err:.1e}")


# --------------------------------------------------------------------------------------------- attention backends
def _qkv(b=2, h=4, t=300, s=None, d=64, dtype=torch.bfloat16, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    s = t if s is None else s
    q = torch.randn(b, h, t, d, device=CUDA, generator=g)
    k, v = (torch.randn(b, h, s, d, device=CUDA, generator=g) for _ in range(2))
    return q.to(dtype), k.to(dtype), v.to(dtype)


def _need(name: str) -> None:
    """Skip unless the backend's package is installed (flash: FlashAttention 2 or 3)."""
    if name == "sage":
        pytest.importorskip("sageattention")
    elif name == "flash":
        try:
            pytest.importorskip("flash_attn")
        except pytest.skip.Exception:
            pytest.importorskip("flash_attn_interface")


# self-attention and cross-attention shapes (Tq, Tk): block-aligned, odd lengths, short text, the audio stream
SHAPES = [(256, 256), (300, 300), (257, 77), (300, 126), (126, 1024)]


@pytest.mark.parametrize("name", ["sage", "flash", "auto"])
def test_attention_backend_close_to_sdpa(name):
    _need(name)
    backend = resolve_backend(name, CUDA)
    errors = {}
    for dtype in (torch.bfloat16, torch.float16):
        for d in (64, 128):  # the LTX-2 audio / video head dims
            for t, s in SHAPES:
                q, k, v = _qkv(t=t, s=s, d=d, dtype=dtype)
                out = attention(q, k, v, None, backend)
                exact = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float())
                assert out.shape == exact.shape
                assert out.dtype == dtype
                assert out.is_cuda
                err = (out.float() - exact).abs().max().item()
                base = (attention(q, k, v, None, "sdpa").float() - exact).abs().max().item()
                errors[(str(dtype)[6:], d, t, s)] = (err, base)
    print(f"\n{name} ({backend}): max|Δ| vs float32 attention (backend, sdpa in the same dtype):")
    for key, (err, base) in errors.items():
        print(f"  {key}: {err:.4f} {base:.4f}")
    # INT8 QK (sage) is lossy: allow 0.05 absolute on unit-variance values; flash and sdpa differ by rounding only
    bad = {key: e for key, e in errors.items() if e[0] > (5e-2 if backend == "sage" else 2 * e[1] + 1e-3)}
    assert not bad, bad
    q, k, v = _qkv(dtype=torch.bfloat16)
    mask = torch.zeros(2, 1, 300, 300, device=CUDA, dtype=torch.bfloat16)
    mask[..., 200:] = torch.finfo(torch.bfloat16).min  # a mask: every backend must fall back to exact SDPA
    assert torch.equal(attention(q, k, v, mask, backend), attention(q, k, v, mask, "sdpa"))


@pytest.mark.parametrize("name", ["sage", "auto"])
def test_backend_with_unsupported_head_dim_falls_back(name):
    """SageAttention 1.x only has kernels for head dims 64, 96 and 128; other head dims (tiny models, Gemma-3's
    256) must run through SDPA instead of failing (``auto`` picks sage whenever it is installed)."""
    _need("sage")
    for d in (16, 256):
        q, k, v = _qkv(t=64, s=64, d=d, dtype=torch.bfloat16)
        torch.testing.assert_close(attention(q, k, v, None, resolve_backend(name, CUDA)),
                                   attention(q, k, v, None, "sdpa"))


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory):
    """LTX-2.3 layout with the released head dims (video 2 × 128, audio 2 × 64), so sage's kernels really run."""
    from reference.builders import realistic_init

    cfg = R.tiny_config("2.3", video_heads=2, video_head_dim=128, audio_heads=2, audio_head_dim=64, num_layers=2,
                        in_channels=32, audio_in_channels=32, caption_channels=64, connector_heads=2)
    ref = R.build_reference("2.3", cfg=cfg, seed=21)
    realistic_init(ref.transformer, 22)
    path = tmp_path_factory.mktemp("wide") / "wide.safetensors"
    R.write_checkpoint(ref, path, include_text=False)
    return ref, load_transformer(path, dtype=torch.bfloat16, device=CUDA)


@pytest.mark.parametrize("name", ["sage", "flash", "auto"])
def test_transformer_with_backend_close_to_sdpa(wide_model, name):
    _need(name)
    ref, ours16 = wide_model
    video = R.random_modality(ref, "video", batch=2, tokens_or_grid=(3, 8, 12), text_len=77, sigma=[0.8, 0.3])
    audio = R.random_modality(ref, "audio", batch=2, tokens_or_grid=75, text_len=77, sigma=[0.6, 0.2], seed=1)
    truth_model = copy.deepcopy(ref.transformer).to(torch.bfloat16).float().to(CUDA)  # same rounded weights
    tv, ta = R._run(truth_model, _on(video, torch.float32), _on(audio, torch.float32), None)
    v, a = StreamInput(**_on(video, torch.bfloat16)), StreamInput(**_on(audio, torch.bfloat16))
    with torch.no_grad():
        sv, sa = ours16(v, a, options=RunOptions(attention_mode="sdpa"))
        bv, ba = ours16(v, a, options=RunOptions(attention_mode=name))
    err, base = max(_rel(bv, tv), _rel(ba, ta)), max(_rel(sv, tv), _rel(sa, ta))
    print(f"\n{name} ({resolve_backend(name, CUDA)}) bf16 model vs float32: {err:.1e} (sdpa bf16: {base:.1e}); "
          f"vs sdpa bf16: {max(_rel(bv, sv), _rel(ba, sa)):.1e}")
    assert torch.isfinite(bv).all()
    assert torch.isfinite(ba).all()
    assert err <= 3 * base + 1e-2, (name, err, base)


@pytest.mark.parametrize("name", ["sage", "auto"])
def test_tiny_transformer_runs_with_backend(gpu_pairs, name):
    """The tiny parity models (head dims 16 and 8) with a GPU backend requested in bf16: must run (via SDPA)."""
    _need("sage")
    _, _, pair = gpu_pairs
    ours16 = load_transformer(pair.checkpoint, dtype=torch.bfloat16, device=CUDA)
    video, audio = _inputs(pair, seed=7)
    video.pop("context_mask")
    v, a = StreamInput(**_on(video, torch.bfloat16)), StreamInput(**_on(audio, torch.bfloat16))
    with torch.no_grad():
        sv, sa = ours16(v, a, options=RunOptions(attention_mode="sdpa"))
        bv, ba = ours16(v, a, options=RunOptions(attention_mode=name))
    assert torch.equal(bv, sv)
    assert torch.equal(ba, sa)


# --------------------------------------------------------------------------------------------- end to end
def test_tiny_pipeline_cuda_matches_cpu(tmp_path):
    """The demo's path (prompt → tiny Gemma → connectors → transformer with CFG/STG → VAE / vocoder), with an image
    guide and the transformer parked on the CPU between stages, on the GPU and on the CPU in float32."""
    from rs_ltxv.ltx.pipeline.generate import generate
    from rs_ltxv.ltx.pipeline.parts import load_model_parts
    from rs_ltxv.ltx.pipeline.request import ImageGuide, Request
    from rs_ltxv.ltx.tiny import write_tiny_checkpoint
    from rs_ltxv.ltx.tiny_parts import write_tiny_gemma

    ckpt = write_tiny_checkpoint(tmp_path / "ltx.safetensors", "2.3", dtype=torch.float32, full=True)
    gemma = write_tiny_gemma(tmp_path / "gemma")
    image = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    req = Request(prompt="A red fox runs through a snowy forest.", width=192, height=128, frames=17, fps=24.0,
                  steps=3, seed=3, images=(ImageGuide(image, 0, 1.0),), free_between_stages=True)
    results = {}
    for device in ("cpu", "cuda"):
        parts = load_model_parts(ckpt, text_encoder=gemma, dtype=torch.float32, device=device)
        results[device] = generate(parts, dataclasses.replace(req, attention_mode="auto"))
        del parts
    cpu, gpu = results["cpu"], results["cuda"]
    assert gpu.frames.shape == cpu.frames.shape == (1, 17, 128, 192, 3)
    lat = _rel(gpu.video_latent.cpu(), cpu.video_latent)
    aud = _rel(gpu.audio_latent.cpu(), cpu.audio_latent)
    lsb = (gpu.frames.cpu().int() - cpu.frames.int()).abs().max().item()
    wave = _rel(gpu.waveform.cpu(), cpu.waveform)
    print(f"\ncuda vs cpu: video latent {lat:.1e}, audio latent {aud:.1e}, frames {lsb} LSB, waveform {wave:.1e}")
    assert cpu.frames.float().std() > 5  # real content, not a constant image
    assert lat <= 1e-4
    assert aud <= 1e-4
    assert lsb <= 2
    assert wave <= 1e-4


# --------------------------------------------------------------------------------------------- GGUF on the GPU
def test_gguf_every_type_and_linear_on_cuda(tmp_path):
    """Every supported quant type dequantised on the GPU equals the CPU bit for bit (the CPU side is checked against
    gguf's NumPy reference in test_gguf_dequant.py), and GGUFLinear runs with CUDA weights and bf16 inputs."""
    from gguf import GGMLQuantizationType as Q
    from gguf.quants import quantize as np_quantize

    from rs_ltxv.gguf_loader import SUPPORTED, GGUFFile, GGUFLinear

    from reference.builders import SCALE_FIELDS, random_blocks, write_gguf

    shape = (4, 2, 512)
    tensors = {"f32": (np.random.default_rng(0).standard_normal(shape).astype(np.float32), Q.F32)}
    tensors["f16"] = (tensors["f32"][0].astype(np.float16), Q.F16)
    for qtype in (Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1):
        tensors[f"quantized.{qtype.name}"] = (np_quantize(tensors["f32"][0], qtype), qtype)
    for i, qtype in enumerate(SCALE_FIELDS):
        tensors[qtype.name] = (random_blocks(qtype, shape, seed=i + 1), qtype)
    file = GGUFFile(write_gguf(tmp_path / "all.gguf", tensors))
    seen = set()
    for name in tensors:
        cpu = file.tensor(name, torch.float32)
        gpu = file.tensor(name, torch.float32, "cuda")
        assert gpu.is_cuda, name
        assert gpu.shape == cpu.shape == shape, name
        assert torch.equal(gpu.cpu(), cpu), f"{name}: GPU dequantisation differs from the CPU"
        seen.add(file.tensors[name].type_name)
    assert seen == {t.name for t in SUPPORTED}

    layer = GGUFLinear(256, 8, Q.Q4_K)
    layer.qweight = torch.from_numpy(random_blocks(Q.Q4_K, (8, 256), seed=9))
    layer.bias = torch.nn.Parameter(torch.randn(8), requires_grad=False)
    x = torch.randn(2, 3, 256).to(torch.bfloat16)
    on_cpu = layer(x)
    layer.to(CUDA)
    assert layer.qweight.is_cuda
    assert layer.qweight.dtype == torch.uint8
    on_gpu = layer(x.to(CUDA))
    assert on_gpu.is_cuda
    assert on_gpu.dtype == torch.bfloat16
    w = layer.dequantized_weight(patched=False)
    assert w.is_cuda
    torch.testing.assert_close(on_gpu, torch.nn.functional.linear(x.to(CUDA), w.to(torch.bfloat16),
                                                                 layer.bias.to(torch.bfloat16)))
    assert (on_gpu.float().cpu() - on_cpu.float()).abs().max().item() <= 2e-2 * on_cpu.float().abs().max().item()


# --------------------------------------------------------------------------------------------- video VAE
@pytest.mark.parametrize("layout", ["2.0", "2.3"])
def test_video_vae_tiled_decode_cuda_matches_cpu(layout):
    from rs_ltxv.ltx.video_vae import TilingConfig, VideoDecoder, VideoVAEConfig, decode_tiled

    from reference import ltx_core_vae_ref as RV

    raw = RV.vae_config(layout)
    _, ref_dec = RV.build_reference(raw, seed=2)
    dec = VideoDecoder(VideoVAEConfig.from_dict(raw)).eval().requires_grad_(False)
    dec.load_state_dict(ref_dec.state_dict())
    latent = RV.random_latent(16, 5, 4, 6, seed=4)
    tiling = TilingConfig(tile_pixels=64, overlap_pixels=32, tile_frames=24, overlap_frames=16)  # 3×3×5 tiles
    with torch.inference_mode():
        cpu = decode_tiled(dec, latent, tiling)
        whole = dec(latent)
        dec_gpu = copy.deepcopy(dec).to(CUDA)
        gpu = decode_tiled(dec_gpu, latent.to(CUDA), tiling)
        gpu_whole = dec_gpu(latent.to(CUDA))
        streamed = decode_tiled(dec_gpu, latent, tiling)  # latent on the CPU, decoder on the GPU
    assert gpu.is_cuda
    assert gpu.shape == cpu.shape == whole.shape
    assert (cpu - whole).abs().max() > 1e-4  # the tiling really changes the result (it is not one tile)
    assert _rel(gpu.cpu(), cpu) <= 1e-5, _rel(gpu.cpu(), cpu)
    assert _rel(gpu_whole.cpu(), whole) <= 1e-5
    assert _rel(streamed.float().cpu(), cpu) <= 1e-5
    # bf16 decode on the GPU stays close to the float32 one
    with torch.inference_mode():
        bf = decode_tiled(copy.deepcopy(dec).to(CUDA, torch.bfloat16), latent.to(CUDA, torch.bfloat16), tiling)
    assert bf.dtype == torch.bfloat16
    assert _rel(bf.float().cpu(), cpu) <= 5e-2
