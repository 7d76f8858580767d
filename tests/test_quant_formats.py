"""Quantised weight formats (``rs_ltxv.ltx.quant``): every format's dequantisation against a reference written from
the format's description (FP8: plain torch casts × scale; INT8 ConvRot: the regular Hadamard formula built here
with numpy; NVFP4: an e2m1 table derived from the bits and the cuBLAS block-scale index formula, element by
element), and ``QuantLinear`` itself: forward, resident bytes, dtype casts, LoRA patches, kernel choice on CPU."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rs_ltxv.ltx.errors import CheckpointError
from rs_ltxv.ltx.quant import FORMATS, QuantLinear, is_quantised, select_kernel
from rs_ltxv.ltx.quant.hadamard import hadamard
from rs_ltxv.ltx.quant.linear import buffer_name
from rs_ltxv.ltx.quant.writers import LAYOUTS

LAYER_OF = {"official_fp8": "float8_e4m3fn", "official_fp8_rowwise": "float8_e4m3fn",
            "official_fp8_e5m2": "float8_e5m2", "comfy_fp8": "float8_e4m3fn", "comfy_int8": "int8_tensorwise",
            "comfy_int8_convrot": "int8_tensorwise", "comfy_nvfp4": "nvfp4"}
CONVROT = {"convrot": True, "convrot_groupsize": 16}


def _weight(out: int = 48, inp: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(out, inp, generator=g) / math.sqrt(inp)


def _layer(layout: str, w: torch.Tensor, bias: torch.Tensor | None = None) -> QuantLinear:
    stored = {k: v for k, v in LAYOUTS[layout](w).items() if k != "comfy_quant"}
    params = CONVROT if layout == "comfy_int8_convrot" else {}
    layer = QuantLinear(w.shape[1], w.shape[0], LAYER_OF[layout], {k: (tuple(v.shape), v.dtype)
                                                                   for k, v in stored.items()},
                        params, bias=bias is not None)
    layer.load_state_dict({**{buffer_name(k): v for k, v in stored.items()},
                           **({} if bias is None else {"bias": bias})}, assign=True)
    return layer


# ---- FP8: plain casts ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["official_fp8", "official_fp8_rowwise", "official_fp8_e5m2", "comfy_fp8"])
def test_fp8_dequantises_to_plain_cast_times_scale(layout):
    w = _weight()
    stored = LAYOUTS[layout](w)
    scale = stored["weight_scale"]
    want = stored["weight"].to(torch.float32) * (scale if scale.ndim == 0 else scale[:, None])
    got = _layer(layout, w).dequantized_weight(torch.float32)
    assert torch.equal(got, want)
    step = {"official_fp8_e5m2": 2 ** -2}.get(layout, 2 ** -3)  # relative spacing of the fp8 mantissa
    assert ((got - w).abs() <= step * w.abs() + 1e-2 * w.abs().max()).all()


# ---- INT8 + ConvRot: the Hadamard formula --------------------------------------------------------------------------

def _regular_hadamard(n: int) -> np.ndarray:
    """Regular Hadamard matrix of order ``n = 4^k``, normalised: Kronecker powers of the 4×4 core of the ConvRot
    description, divided by √n."""
    core = np.array([[1, 1, 1, -1], [1, 1, -1, 1], [1, -1, 1, 1], [-1, 1, 1, 1]], dtype=np.float64)
    h = core
    while h.shape[0] < n:
        h = np.kron(h, core)
    return h / np.sqrt(n)


def test_hadamard_matches_formula_and_is_its_own_inverse():
    for n in (4, 16, 64, 256):
        h = hadamard(n).double().numpy()
        np.testing.assert_allclose(h, _regular_hadamard(n), atol=1e-7)
        np.testing.assert_allclose(h @ h, np.eye(n), atol=1e-6)
    for bad in (2, 8, 32, 100):
        with pytest.raises(CheckpointError, match="power of 4"):
            hadamard(bad)


@pytest.mark.parametrize("layout", ["comfy_int8", "comfy_int8_convrot"])
def test_int8_dequantises_by_the_hadamard_formula(layout):
    w = _weight()
    stored = LAYOUTS[layout](w)
    q, s = stored["weight"].numpy().astype(np.float64), stored["weight_scale"].numpy().astype(np.float64)
    want = q * s.reshape(-1, 1)
    if layout == "comfy_int8_convrot":  # W = (q·s) with every 16 columns multiplied by H (H = Hᵀ = H⁻¹)
        h = _regular_hadamard(16)
        want = np.concatenate([want[:, i:i + 16] @ h.T for i in range(0, want.shape[1], 16)], axis=1)
    got = _layer(layout, w).dequantized_weight(torch.float32).double().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got, w.double().numpy(), atol=float(w.abs().max()) / 100)  # ≤ ½ step of 127 levels


# ---- NVFP4: table-driven e2m1, cuBLAS block-scale layout -----------------------------------------------------------

def _e2m1(code: int) -> float:
    """An e2m1 value from its 4 bits (sign, 2 exponent bits with bias 1, 1 mantissa bit; exponent 0 = subnormal)."""
    sign, exp, man = code >> 3, (code >> 1) & 3, code & 1
    mag = man * 0.5 if exp == 0 else 2.0 ** (exp - 1) * (1 + man / 2)
    return -mag if sign else mag


def _blocked_index(r: int, c: int, col_tiles: int) -> int:
    """Flat position of the scale of row ``r``, 16-block ``c`` in cuBLAS's block-scaling layout: 128×4 tiles in
    row-major tile order, each stored as 32 rows of 16 (``r % 32``), then ``(r % 128) // 32``, then ``c % 4``."""
    return (r // 128) * col_tiles * 512 + (c // 4) * 512 + (r % 32) * 16 + ((r % 128) // 32) * 4 + (c % 4)


@pytest.mark.parametrize("shape", [(48, 64), (20, 40)], ids=["aligned", "padded"])
def test_nvfp4_dequantises_by_table_and_block_layout(shape):
    w = _weight(*shape)
    stored = LAYOUTS["comfy_nvfp4"](w)
    packed, scales = stored["weight"], stored["weight_scale"].view(torch.float8_e4m3fn).float().reshape(-1)
    glob = float(stored["weight_scale_2"])
    rows, cols = packed.shape[0], packed.shape[1] * 2
    assert (rows, cols) == (-(-shape[0] // 16) * 16, -(-shape[1] // 16) * 16)
    col_tiles = -(-(cols // 16) // 4)
    table = [_e2m1(c) for c in range(16)]
    want = np.zeros((rows, cols))
    for r in range(rows):
        for c in range(cols):
            byte = int(packed[r, c // 2])
            code = byte >> 4 if c % 2 == 0 else byte & 0xF  # even element in the high nibble
            want[r, c] = table[code] * float(scales[_blocked_index(r, c // 16, col_tiles)]) * glob
    got = _layer("comfy_nvfp4", w).dequantized_weight(torch.float32)
    assert got.shape == shape
    np.testing.assert_allclose(got.double().numpy(), want[: shape[0], : shape[1]], rtol=1e-6, atol=1e-9)
    rel = ((got - w).norm() / w.norm()).item()
    assert rel < 0.15, rel  # 4-bit values with fp8 block scales: ≈ 8-10 % relative error on Gaussian weights


# ---- QuantLinear ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", list(LAYER_OF))
def test_quant_linear_forward_bytes_casts_and_patches(layout):
    w, b = _weight(), torch.randn(48)
    layer = _layer(layout, w, b)
    x = torch.randn(3, 5, 64)
    assert is_quantised(layer)
    assert "weight" not in layer.state_dict()
    assert "qweight" in layer.state_dict()  # no packed bytes as `.weight`
    assert torch.equal(layer.weight, layer.dequantized_weight(torch.float32))
    assert select_kernel(layer, x) == "dequantize"  # CPU: never a CUDA kernel
    deq = layer.dequantized_weight(torch.float32)
    assert torch.equal(layer(x), torch.nn.functional.linear(x, deq, b))
    stored = {k: v for k, v in LAYOUTS[layout](w).items() if k != "comfy_quant"}
    assert layer.resident_bytes == sum(v.numel() * v.element_size() for v in stored.values())
    assert layer.resident_bytes < w.numel() * 2  # below bf16
    dtypes = {k: v.dtype for k, v in layer.stored().items()}
    layer.to(torch.bfloat16)  # a model-wide cast moves nothing out of the stored dtypes
    assert {k: v.dtype for k, v in layer.stored().items()} == dtypes
    assert layer.bias.dtype == torch.bfloat16
    assert torch.equal(layer.dequantized_weight(torch.float32), deq)
    delta = torch.randn(48, 64) * 1e-2
    layer.patches.append(delta)
    assert torch.equal(layer.dequantized_weight(torch.float32), deq + delta)
    layer.patches.clear()
    assert torch.equal(layer.dequantized_weight(torch.float32), deq)


def test_format_table_lists_parts_and_shapes():
    assert set(FORMATS) >= {"float8_e4m3fn", "float8_e5m2", "int8_tensorwise", "nvfp4"}
    assert FORMATS["nvfp4"].shapes(48, 64)["weight"] == ((48, 32),)
    assert FORMATS["nvfp4"].shapes(20, 40)["weight_scale"][0] == (128, 4)
    assert FORMATS["float8_e4m3fn"].parts == ("weight", "weight_scale", "input_scale")


def test_cpu_always_dequantises():
    x = torch.randn(32, 64)
    for layout in LAYER_OF:
        assert select_kernel(_layer(layout, _weight()), x) == "dequantize"


@pytest.mark.parametrize(("layout", "kernel", "bound"), [
    ("official_fp8", "scaled_mm", 0.04), ("comfy_int8", "int_mm", 0.01), ("comfy_int8_convrot", "int_mm", 0.01)])
def test_fast_kernel_math_matches_dequantise(layout, kernel, bound):
    """The CUDA kernels' wrappers (activation quantisation, ConvRot rotation of the input, both scales, bias) run
    on this torch's CPU ``_scaled_mm`` / ``_int_mm`` too: they agree with dequantise-then-matmul within the
    activation rounding (e4m3: ≤ 2⁻⁴ relative per value; int8: ½ of 1/127 of the row max)."""
    from rs_ltxv.ltx.quant.kernels import KERNELS

    layer = _layer(layout, _weight(64, 128), torch.randn(64))
    x = torch.randn(2, 32, 128)
    fast, slow = KERNELS[kernel](layer, x), KERNELS["dequantize"](layer, x)
    assert fast.shape == slow.shape == (2, 32, 64)
    assert ((fast - slow).norm() / slow.norm()).item() < bound


@pytest.mark.cuda
@pytest.mark.parametrize("layout", ["official_fp8", "comfy_int8", "comfy_int8_convrot"])
def test_cuda_fast_kernels_match_the_dequantise_path(layout):
    """On a GPU: ``torch._scaled_mm`` (FP8, sm89+) and ``torch._int_mm`` (INT8) agree with dequantise-then-matmul
    within the activation rounding (e4m3: ≤ 2⁻⁴ per value; int8: 1/127 of the row max)."""
    from rs_ltxv.ltx.quant.kernels import KERNELS

    layer = _layer(layout, _weight(256, 512), torch.randn(256)).cuda()
    x = torch.randn(4, 64, 512, device="cuda", dtype=torch.bfloat16)
    kernel = select_kernel(layer, x)
    major, minor = torch.cuda.get_device_capability()
    expected = "int_mm" if "int8" in layout else ("scaled_mm" if (major, minor) >= (8, 9) else "dequantize")
    assert kernel == expected
    fast, slow = layer(x).float(), KERNELS["dequantize"](layer, x).float()
    rel = ((fast - slow).norm() / slow.norm()).item()
    assert rel < (0.05 if "fp8" in layout else 0.02), rel
