"""FP8 / INT8 / NVFP4 checkpoints through the normal loader (``quant_plan.py`` → ``QuantLinear``): tiny LTX-2.3
files written in every published layout (official FP8 per tensor / per row / e5m2, ComfyUI ``scaled_fp8``,
``comfy_quant`` float8 / int8 / int8 + ConvRot / nvfp4), the full-size LTX-2.3 FP8 layout on the meta device, LoRA
on quantised layers, ``info``, and the errors a user can hit."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from rs_ltxv.__main__ import main
from rs_ltxv.ltx import tokens as T
from rs_ltxv.ltx.config import TransformerConfig
from rs_ltxv.ltx.errors import CheckpointError
from rs_ltxv.ltx.loading import load_text_connectors, load_transformer, materialize, open_checkpoint
from rs_ltxv.ltx.loading.materialize import check_names
from rs_ltxv.ltx.loading.quant_plan import plan_quantised
from rs_ltxv.ltx.loading.source import StateDictSource
from rs_ltxv.ltx.lora import LoraPatch, apply_lora_patches
from rs_ltxv.ltx.quant import QuantLinear, replace_with_quant
from rs_ltxv.ltx.quant.writers import comfy_quant_tensor, quantise_state_dict
from rs_ltxv.ltx.tiny import write_tiny_checkpoint
from rs_ltxv.ltx.transformer import LTXAVTransformer, StreamInput

DIFF = "model.diffusion_model."
#: layout → (format of its layers, largest relative L2 error of the tiny transformer's outputs vs float32). The
#: per-weight rounding sets it: e4m3 keeps 3 mantissa bits (≤ 2⁻⁴ relative), e5m2 2 bits (≤ 2⁻³), int8 127 levels
#: of the row's max, nvfp4 8 magnitudes per 16-value block; the two blocks and connectors add them up (measured:
#: 0.046, 0.038, 0.071, 0.046, 0.046, 0.010, 0.009, 0.14).
LAYOUTS = {
    "official_fp8": ("float8_e4m3fn", 0.08), "official_fp8_rowwise": ("float8_e4m3fn", 0.08),
    "official_fp8_e5m2": ("float8_e5m2", 0.15), "scaled_fp8": ("float8_e4m3fn", 0.08),
    "comfy_fp8": ("float8_e4m3fn", 0.08), "comfy_int8": ("int8_tensorwise", 0.02),
    "comfy_int8_convrot": ("int8_tensorwise", 0.02), "comfy_nvfp4": ("nvfp4", 0.25),
}


@pytest.fixture(scope="module")
def float_file(tmp_path_factory) -> Path:
    return Path(write_tiny_checkpoint(tmp_path_factory.mktemp("quant") / "float.safetensors", "2.3",
                                      dtype=torch.float32))


def _metadata(path: Path) -> dict[str, str]:
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        return json.loads(fh.read(n)).get("__metadata__", {})


def _write(float_file: Path, layout: str, path: Path, edit=None) -> Path:
    sd = quantise_state_dict(load_file(str(float_file)), layout)
    if edit is not None:
        edit(sd)
    save_file(sd, str(path), metadata=_metadata(float_file))
    return path


def _inputs(model: LTXAVTransformer) -> tuple[StreamInput, StreamInput]:
    cfg = model.config
    v_ctx, a_ctx = model.context_dim
    g = torch.Generator().manual_seed(1)
    video = StreamInput(torch.randn(1, 6, cfg.in_channels, generator=g), torch.tensor([0.5]), torch.full((1, 6), 0.5),
                        T.video_positions(1, 1, 2, 3, 24.0), torch.randn(1, 5, v_ctx, generator=g))
    audio = StreamInput(torch.randn(1, 4, cfg.audio_in_channels, generator=g), torch.tensor([0.5]),
                        torch.full((1, 4), 0.5), T.audio_positions(1, 4), torch.randn(1, 5, a_ctx, generator=g))
    return video, audio


def _run(model: LTXAVTransformer) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return model(*_inputs(model))


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).float().norm() / b.float().norm()).item()


def _oracle(model: LTXAVTransformer, float_file: Path) -> LTXAVTransformer:
    """The float model carrying the quantised layers' dequantised weights."""
    ref = load_transformer(float_file, dtype=torch.float32)
    state = ref.state_dict()
    for path, m in model.named_modules():
        if isinstance(m, QuantLinear):
            state[f"{path}.weight"] = m.dequantized_weight(torch.float32)
    ref.load_state_dict(state)
    return ref


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_loads_quantised_and_matches_float(float_file, tmp_path, layout):
    fmt, tolerance = LAYOUTS[layout]
    path = _write(float_file, layout, tmp_path / f"{layout}.safetensors")
    ckpt = open_checkpoint(path)
    assert ckpt.config == open_checkpoint(float_file).config
    model = load_transformer(ckpt, dtype=torch.float32)
    layers = {p: m for p, m in model.named_modules() if isinstance(m, QuantLinear)}
    assert len(layers) > 60
    assert {m.format.name for m in layers.values()} == {fmt}
    # resident bytes: exactly the file's bytes of those tensors, stored dtypes kept
    file = ckpt.file
    for path_, m in list(layers.items())[:20]:
        keys = {k for k in file.tensors if k.startswith(f"{DIFF}{path_}.") and not k.endswith(("bias", "comfy_quant"))}
        assert m.resident_bytes == sum(file.tensors[k].nbytes for k in keys), path_
    assert {str(m.qweight.dtype) for m in layers.values()} == {
        {"float8_e4m3fn": "torch.float8_e4m3fn", "float8_e5m2": "torch.float8_e5m2", "int8_tensorwise": "torch.int8",
         "nvfp4": "torch.uint8"}[fmt]}
    if layout == "comfy_int8_convrot":
        assert all(m.params == {"convrot": True, "convrot_groupsize": 16} for m in layers.values())
    ours, want = _run(model), _run(load_transformer(float_file, dtype=torch.float32))
    oracle = _run(_oracle(model, float_file))
    for a, o, w in zip(ours, oracle, want, strict=True):
        assert _rel(a, o) < 1e-5  # the loader: exactly the float model with the dequantised weights
        assert _rel(a, w) < tolerance, (layout, _rel(a, w))  # the format: within its rounding error
    assert len([m for m in load_text_connectors(path, dtype=torch.float32).modules()
                if isinstance(m, QuantLinear)]) > 10


def test_dequantize_flag_loads_plain_linears_with_the_same_weights(float_file, tmp_path):
    path = _write(float_file, "comfy_nvfp4", tmp_path / "nvfp4.safetensors")
    ckpt = open_checkpoint(path)
    quantised = load_transformer(ckpt, dtype=torch.float32)
    plain = materialize(lambda: LTXAVTransformer(ckpt.config), ckpt.file, ckpt.components["transformer"],
                        what="transformer", dtype=torch.float32, device="cpu", dequantize=True)
    assert not any(isinstance(m, QuantLinear) for m in plain.modules())
    for a, b in zip(_run(plain), _run(quantised), strict=True):
        assert _rel(a, b) < 1e-6


def test_bf16_compute_keeps_stored_dtypes(float_file, tmp_path):
    path = _write(float_file, "official_fp8", tmp_path / "fp8.safetensors")
    model = load_transformer(path, dtype=torch.bfloat16)
    fp8 = [m for m in model.modules() if isinstance(m, QuantLinear)]
    assert {m.qweight.dtype for m in fp8} == {torch.float8_e4m3fn}
    assert {m.weight_scale.dtype for m in fp8} == {torch.float32}  # scales are never rounded to bf16
    video, audio = _inputs(model)
    cast = [replace(s, latent=s.latent.bfloat16(), context=s.context.bfloat16()) for s in (video, audio)]
    with torch.no_grad():
        out = model(*cast)
    assert out[0].dtype == torch.bfloat16
    assert torch.isfinite(out[0]).all()


def test_lora_on_fp8_layers_adds_per_forward_and_removes_bit_for_bit(float_file, tmp_path):
    path = _write(float_file, "official_fp8", tmp_path / "fp8.safetensors")
    model = load_transformer(path, dtype=torch.float32)
    key = "transformer_blocks.1.attn1.to_q"
    layer = model.get_submodule(key)
    assert isinstance(layer, QuantLinear)
    g = torch.Generator().manual_seed(3)
    patch = LoraPatch(f"{key}.weight", torch.randn(32, 4, generator=g), torch.randn(4, 32, generator=g), 4.0, 0.7)
    before, packed = _run(model), layer.qweight.clone()
    oracle = _oracle(model, float_file)
    handle = apply_lora_patches(model, [patch])
    assert torch.equal(layer.qweight, packed)
    assert len(layer.patches) == 1  # the stored FP8 bytes are never touched
    merged = oracle.get_submodule(key)
    merged.weight.data = merged.weight.data + patch.delta()
    for a, b in zip(_run(model), _run(oracle), strict=True):
        assert _rel(a, b) < 1e-5
    handle.remove()
    assert all(torch.equal(a, b) for a, b in zip(_run(model), before, strict=True))


def test_info_names_the_formats(float_file, tmp_path, capsys):
    for layout, shown in (("official_fp8", "float8_e4m3fn×"), ("comfy_int8_convrot", "int8_tensorwise + ConvRot×"),
                          ("comfy_nvfp4", "nvfp4×")):
        path = _write(float_file, layout, tmp_path / f"{layout}.safetensors")
        assert main(["info", str(path)]) == 0
        out = capsys.readouterr().out
        assert "quantised:" in out, out
        assert shown in out, out
    assert main(["info", str(float_file)]) == 0
    assert "quantised:" not in capsys.readouterr().out


@pytest.mark.parametrize(("layout", "fmt"), [("comfy_fp8", "float8_e4m3fn"), ("comfy_int8", "int8_tensorwise"),
                                             ("comfy_nvfp4", "nvfp4"), ("official_fp8", "float8_e4m3fn")])
def test_tiny_quantise_writes_a_file_that_loads_quantised(tmp_path, capsys, layout, fmt):
    """``python -m rs_ltxv tiny OUT --quantise LAYOUT``: the README's way to make a quantised file to try."""
    path = tmp_path / f"{layout}.safetensors"
    assert main(["tiny", str(path), "--quantise", layout]) == 0
    assert capsys.readouterr().out.strip() == str(path)
    assert list(tmp_path.iterdir()) == [path]  # the float32 scratch file is gone
    model = load_transformer(path, dtype=torch.float32)
    assert {m.format.name for m in model.modules() if isinstance(m, QuantLinear)} == {fmt}


def test_tiny_quantise_is_refused_with_set(tmp_path, capsys):
    assert main(["tiny", str(tmp_path / "models"), "--set", "--quantise", "comfy_fp8"]) == 2
    assert "--quantise" in capsys.readouterr().err


# ---- errors --------------------------------------------------------------------------------------------------------

LAYER = f"{DIFF}transformer_blocks.1.ff.net.0.proj"


def test_unknown_comfy_quant_format_is_named(float_file, tmp_path):
    def edit(sd):
        sd[f"{LAYER}.comfy_quant"] = comfy_quant_tensor({"format": "mxfp8"})
    path = _write(float_file, "comfy_fp8", tmp_path / "mx.safetensors", edit)
    with pytest.raises(CheckpointError, match=r"comfy_quant format 'mxfp8'.*known: float8_e4m3fn"):
        load_transformer(path)


@pytest.mark.parametrize(("layout", "drop", "message"), [
    ("scaled_fp8", "scale_weight", "has no scale tensor"),
    ("official_fp8", "weight_scale", "has no scale tensor"),
    ("comfy_nvfp4", "weight_scale_2", "has no weight_scale_2 tensor"),
    ("comfy_int8", "weight_scale", "has no weight_scale tensor"),
])
def test_missing_scale_tensor(float_file, tmp_path, layout, drop, message):
    path = _write(float_file, layout, tmp_path / "m.safetensors", lambda sd: sd.pop(f"{LAYER}.{drop}"))
    with pytest.raises(CheckpointError, match=message):
        load_transformer(path)


@pytest.mark.parametrize("layout", ["comfy_nvfp4", "comfy_int8_convrot", "official_fp8"])
def test_truncated_quantised_tensor(float_file, tmp_path, layout):
    def edit(sd):
        sd[f"{LAYER}.weight"] = sd[f"{LAYER}.weight"][:, : sd[f"{LAYER}.weight"].shape[1] // 2].contiguous()
    path = _write(float_file, layout, tmp_path / "t.safetensors", edit)
    with pytest.raises(CheckpointError, match="truncated"):
        load_transformer(path)


def test_truncated_file_is_refused_before_loading(float_file, tmp_path):
    path = _write(float_file, "comfy_nvfp4", tmp_path / "cut.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError):
        load_transformer(path)


def _bad_json(sd):
    sd[f"{LAYER}.comfy_quant"] = torch.tensor(list(b"{not json"), dtype=torch.uint8)


def _truncate(sd):
    sd[f"{LAYER}.weight"] = sd[f"{LAYER}.weight"][:, : sd[f"{LAYER}.weight"].shape[1] // 2].contiguous()


#: files ``generate`` refuses: (layout, edit, words of the refusal)
BAD_FILES = {
    "mxfp8": ("comfy_fp8", lambda sd: sd.__setitem__(f"{LAYER}.comfy_quant", comfy_quant_tensor({"format": "mxfp8"})),
              "comfy_quant format 'mxfp8'"),
    "bad json": ("comfy_fp8", _bad_json, "not valid JSON"),
    "missing scale": ("official_fp8", lambda sd: sd.pop(f"{LAYER}.weight_scale"), "has no scale tensor"),
    "wrong-shaped scale": ("comfy_int8", lambda sd: sd.__setitem__(f"{LAYER}.weight_scale", torch.ones(3, 1)),
                           "weight_scale has shape"),
    "truncated": ("comfy_nvfp4", _truncate, "truncated"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_plan_and_info_refuse_what_generate_refuses(float_file, tmp_path, capsys, case):
    """``plan`` and ``info`` run the loader's header check: one ``error:`` line (``info`` after its table), exit 2."""
    layout, edit, words = BAD_FILES[case]
    path = _write(float_file, layout, tmp_path / "bad.safetensors", edit)
    with pytest.raises(CheckpointError, match=words):
        load_transformer(path)
    assert main(["plan", "--checkpoint", str(path), "--width", "64", "--height", "64", "--frames", "9"]) == 2
    out, err = capsys.readouterr()
    assert out == "", err
    assert err.startswith("error: "), err
    assert words in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert main(["info", str(path)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error: "), err
    assert words in err, err
    assert len(err.strip().splitlines()) == 1, err


# ---- full-size LTX-2.3 FP8 layout on meta --------------------------------------------------------------------------

#: the layers the official ``ltx-2.3-22b-*-fp8`` files keep in bf16
#: (ltx-core ``quantization.fp8_scaled_mm.EXCLUDED_LAYER_SUBSTRINGS``)
OFFICIAL_BF16 = ("patchify_proj", "adaln_single", "caption_projection", "proj_out", "transformer_blocks.0.",
                 *[f"transformer_blocks.{i}." for i in range(43, 48)])


def test_full_size_ltx23_fp8_layout_on_meta():
    cfg = replace(TransformerConfig(), apply_gated_attention=True, cross_attention_adaln=True,
                  caption_proj_before_connector=True)
    with torch.device("meta"):
        float_model = LTXAVTransformer(cfg)
        model = LTXAVTransformer(cfg)
    linears = {p for p, m in float_model.named_modules() if isinstance(m, torch.nn.Linear)}
    state: dict[str, torch.Tensor] = {}
    for name, t in float_model.state_dict().items():
        layer = name.removesuffix(".weight")
        fp8 = name.endswith(".weight") and layer in linears and not any(s in name for s in OFFICIAL_BF16)
        state[DIFF + name] = torch.empty(t.shape, dtype=torch.float8_e4m3fn if fp8 else torch.bfloat16, device="meta")
        if fp8:
            state[f"{DIFF}{layer}.weight_scale"] = torch.empty((), device="meta")
            state[f"{DIFF}{layer}.input_scale"] = torch.empty((), device="meta")
    source = StateDictSource(state, name="ltx-2.3-22b-dev-fp8.safetensors")
    names = {k.removeprefix(DIFF): k for k in state}
    plan = plan_quantised(model, source, names)
    replace_with_quant(model, plan.layers)
    check_names(model, source, plan.names, what="transformer")  # every official tensor name accepted
    assert set(plan.names.values()) == set(state)
    quantised = [m for m in model.modules() if isinstance(m, QuantLinear)]
    assert len(quantised) == 42 * len([m for m in model.transformer_blocks[1].modules()
                                       if isinstance(m, QuantLinear)]) > 42 * 20
    packed = sum(m.resident_bytes for m in quantised)  # as loaded; the other tensors stay bf16 as stored
    plain = sum(t.numel() * 2 for n, t in model.state_dict().items()
                if not n.endswith("bias") and n.rpartition(".")[0] not in plan.layers)
    resident = packed + plain
    bf16 = sum(t.numel() * 2 for n, t in float_model.state_dict().items() if not n.endswith("bias"))
    ratio = resident / bf16
    assert 0.5 < ratio < 0.6, ratio  # 42 of 48 blocks in FP8 (the file keeps 6 blocks and the I/O layers in bf16)
    assert bf16 / 2**30 > 35  # it is the 22B-parameter layout


# ---- Gemma-3 text encoder files (ComfyUI single files) ------------------------------------------------------------

#: layout → largest relative error of the tiny Gemma's last hidden state vs float32 (7 layers of a 32-wide model
#: compound the per-weight rounding of :data:`LAYOUTS`; measured 0.128 / 0.128 / 0.030 / 0.034 / 0.39)
GEMMA_LAYOUTS = {"comfy_fp8": 0.25, "scaled_fp8": 0.25, "comfy_int8": 0.06, "comfy_int8_convrot": 0.06,
                 "comfy_nvfp4": 0.6}


@pytest.mark.parametrize("layout", list(GEMMA_LAYOUTS))
def test_gemma_single_file_layers_stay_quantised(tmp_path, layout):
    from rs_ltxv.ltx.loading.gemma import load_gemma
    from rs_ltxv.ltx.text.gemma_config import GemmaConfig

    from reference import gemma_ref as G

    hf = G.tiny_hf_gemma(seed=5)
    config = GemmaConfig.from_hf_dict(hf.config.to_dict())
    state = {f"model.{k}": v for k, v in hf.state_dict().items()}
    quantised = quantise_state_dict(state, layout, select=lambda k, t: k.startswith("model.layers."))
    path = tmp_path / "gemma_3_tiny.safetensors"
    save_file(quantised, str(path))
    model = load_gemma(path, dtype=torch.float32, config=config)
    layers = [m for m in model.modules() if isinstance(m, QuantLinear)]
    assert len(layers) == 7 * config.num_hidden_layers
    dequantised = {f"model.{p}.weight": m.dequantized_weight(torch.float32) for p, m in model.named_modules()
                   if isinstance(m, QuantLinear)}
    float_model = load_gemma(_float_gemma(state, tmp_path / "f.safetensors"), dtype=torch.float32, config=config)
    oracle = load_gemma(_float_gemma({**state, **dequantised}, tmp_path / "o.safetensors"), dtype=torch.float32,
                        config=config)
    ids = torch.randint(0, config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        got, want, same = model(ids, mask)[-1], float_model(ids, mask)[-1], oracle(ids, mask)[-1]
    assert _rel(got, same) < 1e-5  # the loader: exactly the float model with the dequantised weights
    assert _rel(got, want) < GEMMA_LAYOUTS[layout], _rel(got, want)  # the format


def _float_gemma(state: dict[str, torch.Tensor], path: Path) -> Path:
    save_file(state, str(path))
    return path


def test_gemma_nvfp4_config_inferred_from_unpacked_shapes(tmp_path):
    from rs_ltxv.ltx.loading.gemma import infer_gemma_config
    from rs_ltxv.ltx.loading.gemma_tensors import open_gemma_files
    from rs_ltxv.ltx.text.gemma import GemmaTextModel
    from rs_ltxv.ltx.text.gemma_config import GEMMA3_12B

    with torch.device("meta"):
        one = replace(GEMMA3_12B, num_hidden_layers=1, layer_types=GEMMA3_12B.layer_types[:1])
        shapes = {k: v.shape for k, v in GemmaTextModel(one).state_dict().items()}
    state = {f"model.{k}": torch.zeros(s[0], s[1] // 2, dtype=torch.uint8) if k.startswith("layers.") and len(s) == 2
             else torch.zeros(s[-1] if len(s) == 1 else (1, s[1])) for k, s in shapes.items()}
    for k in [k for k in state if k.startswith("model.layers.") and k.endswith(".weight") and state[k].ndim == 2]:
        state[k.removesuffix("weight") + "weight_scale_2"] = torch.ones(())
    state["model.embed_tokens.weight"] = torch.zeros(8, GEMMA3_12B.hidden_size)
    save_file(state, str(tmp_path / "g.safetensors"))
    cfg = infer_gemma_config(open_gemma_files([tmp_path / "g.safetensors"], "g"))
    assert (cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads) == (
        GEMMA3_12B.hidden_size, GEMMA3_12B.intermediate_size, GEMMA3_12B.num_attention_heads)
