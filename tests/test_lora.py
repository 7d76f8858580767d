"""LoRA without ComfyUI (``rs_ltxv.ltx.lora``): tiny real LoRA files in every key layout found for LTX-2 change the
transformer's output exactly as merging the same LoRA into the weights by hand does; GGUF-quantised layers get the
delta per forward with their packed bytes untouched; strength 0 and remove() are bit-exact; bad files fail with
messages that name keys; ``generate --lora`` end to end; the multi-GPU recipe carries the same patches.

Tolerance for "equals a hand merge": the merge is the same float32 arithmetic (``W + s·α/r · B@A``), so float
layers are compared bit for bit; GGUF layers add the delta as ``(W + Δ) − W`` per forward (ComfyUI's rounding), so
outputs are compared at ``max|Δ| ≤ 1e-5 · max(1, max|reference|)`` (conftest's acceptance tolerance).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from gguf import GGMLQuantizationType as Q
from safetensors.torch import load_file, save_file

from rs_ltxv.__main__ import main
from rs_ltxv.gguf_loader.linear import GGUFLinear
from rs_ltxv.gguf_loader.writer import write_gguf
from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.loading import load_transformer
from rs_ltxv.ltx.lora import (
    LoraPatch,
    LoraSpec,
    apply_lora_patches,
    apply_loras,
    diffusers_name,
    read_lora,
)
from rs_ltxv.ltx.lora.keys import layer_names
from rs_ltxv.ltx.pipeline.parts import load_model_parts
from rs_ltxv.ltx.tiny import tiny_config, tiny_state_dict, write_tiny_checkpoint
from rs_ltxv.ltx.tokens import audio_positions, video_positions
from rs_ltxv.ltx.transformer import StreamInput

from conftest import assert_close

PREFIX = "model.diffusion_model."
#: layers the test LoRAs patch: top-level (renamed by diffusers), attention, feed-forward, audio, AV cross-attention
LAYERS = ("patchify_proj", "adaln_single.linear", "transformer_blocks.0.attn1.to_q",
          "transformer_blocks.0.attn1.to_out.0", "transformer_blocks.1.ff.net.2",
          "transformer_blocks.1.audio_attn2.to_k", "transformer_blocks.0.audio_to_video_attn.to_v",
          "audio_patchify_proj")
RANK = 4


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("lora") / "t.safetensors", "2.3", dtype=torch.float32)


def _inputs(cfg) -> tuple[StreamInput, StreamInput]:
    g = torch.Generator().manual_seed(11)
    f, h, w, t = 2, 2, 3, 7
    sig = torch.tensor([0.7])
    video = StreamInput(torch.randn(1, f * h * w, cfg.in_channels, generator=g), sig, sig[:, None].expand(1, f * h * w),
                        video_positions(1, f, h, w, 24.0),
                        torch.randn(1, 5, cfg.num_attention_heads * cfg.attention_head_dim, generator=g))
    audio = StreamInput(torch.randn(1, t, cfg.audio_in_channels, generator=g), sig, sig[:, None].expand(1, t),
                        audio_positions(1, t),
                        torch.randn(1, 5, cfg.audio_num_attention_heads * cfg.audio_attention_head_dim, generator=g))
    return video, audio


def _run(model) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return model(*_inputs(model.config))


def _factors(model, seed: int = 3) -> dict[str, tuple[torch.Tensor, torch.Tensor, float]]:
    """Per layer: down ``(r, in)``, up ``(out, r)``, alpha; large enough to move the output clearly."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for i, name in enumerate(LAYERS):
        out_f, in_f = model.get_submodule(name).weight_shape if hasattr(model.get_submodule(name), "weight_shape") \
            else model.get_submodule(name).weight.shape
        out[name] = (torch.randn(RANK, in_f, generator=g) * 0.3, torch.randn(out_f, RANK, generator=g) * 0.3,
                     float(2 + i))
    return out


def _layout(layout: str, name: str) -> tuple[str, str, str]:
    """(layer spelling, down suffix, up suffix) of ``layout``."""
    if layout == "official":
        return f"diffusion_model.{name}", ".lora_A.weight", ".lora_B.weight"
    if layout == "bare":
        return name, ".lora_A.weight", ".lora_B.weight"
    if layout == "diffusers":
        return f"transformer.{diffusers_name(name)}", ".lora_A.weight", ".lora_B.weight"
    if layout == "kohya":
        return "lora_unet_" + name.replace(".", "_"), ".lora_down.weight", ".lora_up.weight"
    raise AssertionError(layout)


def _write_lora(path: Path, factors, layout: str, *, alpha: bool = True, extra: dict | None = None,
                dtype: torch.dtype = torch.float32) -> Path:
    sd = {}
    for name, (down, up, a) in factors.items():
        layer, down_s, up_s = _layout(layout, name)
        sd[layer + down_s], sd[layer + up_s] = down.to(dtype), up.to(dtype)
        if alpha:
            sd[layer + ".alpha"] = torch.tensor(a)
    sd.update(extra or {})
    save_file(sd, str(path))
    return path


def _hand_merged(ckpt: Path, out: Path, factors, strength: float, alpha: bool = True) -> Path:
    """The checkpoint with ``W + strength · alpha / r · (up @ down)`` written into its weights (float32)."""
    sd = load_file(str(ckpt))
    for name, (down, up, a) in factors.items():
        key = PREFIX + name + ".weight"
        scale = (a / RANK) if alpha else 1.0
        sd[key] = sd[key].float() + (strength * scale) * (up @ down)
    with open(ckpt, "rb") as f:  # keep the config metadata
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    save_file(sd, str(out), metadata=header.get("__metadata__"))
    return out


@pytest.mark.parametrize("layout", ["official", "bare", "diffusers", "kohya"])
def test_each_layout_equals_a_hand_merge(ckpt, tmp_path, layout):
    model = load_transformer(ckpt, dtype=torch.float32)
    factors = _factors(model)
    alpha = layout != "diffusers"  # diffusers / PEFT files usually carry no alpha: scale 1
    lora = _write_lora(tmp_path / f"{layout}.safetensors", factors, layout, alpha=alpha)
    base = _run(model)
    handle = apply_loras(model, [LoraSpec(str(lora), 0.7)])
    merged = load_transformer(_hand_merged(ckpt, tmp_path / "merged.safetensors", factors, 0.7, alpha),
                              dtype=torch.float32)
    for name in LAYERS:  # the same float32 arithmetic: bit for bit
        assert torch.equal(model.get_submodule(name).weight, merged.get_submodule(name).weight), name
    ours, expected = _run(model), _run(merged)
    for a, b, b0 in zip(ours, expected, base, strict=True):
        assert torch.equal(a, b)
        assert (a - b0).abs().max() > 1e-2  # the LoRA really changes the output
    handle.remove()
    for a, b0 in zip(_run(model), base, strict=True):
        assert torch.equal(a, b0)


def test_bf16_model_merges_in_float32_and_casts_back(ckpt, tmp_path):
    model = load_transformer(ckpt, dtype=torch.bfloat16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    factors = _factors(model)
    lora = _write_lora(tmp_path / "l.safetensors", factors, "official", dtype=torch.bfloat16)
    handle = apply_loras(model, [(lora, -0.5)])
    name = LAYERS[2]
    down, up, a = factors[name]
    w = before[name + ".weight"]
    expected = (w.float() + (-0.5 * a / RANK) * (up.bfloat16().float() @ down.bfloat16().float())).bfloat16()
    assert torch.equal(model.get_submodule(name).weight, expected)
    assert model.get_submodule(name).weight.dtype == torch.bfloat16
    handle.remove()
    after = model.state_dict()
    assert all(torch.equal(after[k], v) and after[k].dtype == v.dtype for k, v in before.items())


def test_strength_zero_is_bit_identical_and_touches_nothing(ckpt, tmp_path):
    model = load_transformer(ckpt, dtype=torch.float32)
    lora = _write_lora(tmp_path / "l.safetensors", _factors(model), "official")
    ptrs = {k: v.data_ptr() for k, v in model.state_dict().items()}
    base = _run(model)
    handle = apply_loras(model, [(lora, 0.0)])
    assert not handle.originals
    assert not handle.deltas
    assert {k: v.data_ptr() for k, v in model.state_dict().items()} == ptrs
    for a, b in zip(_run(model), base, strict=True):
        assert torch.equal(a, b)


def test_two_loras_stack_in_order_and_remove_restores_bit_for_bit(ckpt, tmp_path):
    model = load_transformer(ckpt, dtype=torch.float32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = _write_lora(tmp_path / "a.safetensors", _factors(model, 1), "official")
    second = _write_lora(tmp_path / "b.safetensors", _factors(model, 2), "kohya")
    base = _run(model)
    handle = apply_loras(model, [(first, 0.5), LoraSpec(str(second), 1.5)])
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in before.items())
    handle.remove()
    handle.remove()  # twice: nothing more happens
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    for a, b in zip(_run(model), base, strict=True):
        assert torch.equal(a, b)


def _q8_for_linears(name: str, t: torch.Tensor) -> Q:
    return Q.Q8_0 if name.endswith(".weight") and t.ndim == 2 and t.shape[1] % 32 == 0 else Q.F32


def test_gguf_layers_get_the_delta_per_forward(tmp_path):
    cfg = tiny_config("2.3")
    path = write_gguf(tmp_path / "t.gguf", tiny_state_dict(cfg, seed=4), _q8_for_linears,
                      metadata={"config": json.dumps({"transformer": cfg.to_dict()})})
    model = load_transformer(path, dtype=torch.float32)
    quantised = {n for n in LAYERS if isinstance(model.get_submodule(n), GGUFLinear)}
    assert quantised
    assert quantised != set(LAYERS)  # both kinds of layer are patched
    packed = {n: m.qweight.clone() for n, m in model.named_modules() if isinstance(m, GGUFLinear)}
    factors = _factors(model)
    lora = _write_lora(tmp_path / "l.safetensors", factors, "official")
    base = _run(model)
    # the oracle: the same model with every patched layer's dequantised weight + delta as a plain float Linear
    oracle = load_transformer(path, dtype=torch.float32)
    for name, (down, up, a) in factors.items():
        layer = oracle.get_submodule(name)
        weight = layer.dequantized_weight(patched=False) if isinstance(layer, GGUFLinear) else layer.weight
        plain = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=layer.bias is not None)
        plain.weight.data = weight.float() + (0.8 * a / RANK) * (up @ down)
        if layer.bias is not None:
            plain.bias.data = layer.bias.data.float()
        parent, _, attr = name.rpartition(".")
        setattr(oracle.get_submodule(parent) if parent else oracle, attr, plain)
    handle = apply_loras(model, [(lora, 0.8)])
    assert all(len(model.get_submodule(n).patches) == 1 for n in quantised)
    for a, b, b0 in zip(_run(model), _run(oracle), base, strict=True):
        assert_close(a, b, "GGUF + LoRA vs hand-merged dequantised weights")
        assert (a - b0).abs().max() > 1e-2
    assert all(torch.equal(m.qweight, packed[n]) for n, m in model.named_modules() if isinstance(m, GGUFLinear))
    handle.remove()
    assert all(not model.get_submodule(n).patches for n in quantised)
    for a, b0 in zip(_run(model), base, strict=True):
        assert torch.equal(a, b0)


def test_a_lora_for_another_model_names_its_keys(ckpt, tmp_path):
    model = load_transformer(ckpt, dtype=torch.float32)
    other = {f"diffusion_model.double_blocks.{i}.img_attn.qkv.lora_A.weight": torch.ones(2, 8) for i in range(3)}
    other.update({k.replace("lora_A", "lora_B"): torch.ones(8, 2) for k in other})
    save_file(other, str(tmp_path / "flux.safetensors"))
    with pytest.raises(InputError, match=r"double_blocks\.0\.img_attn\.qkv\.lora_B\.weight.*expected diffusion_model"):
        read_lora(tmp_path / "flux.safetensors", model)


def test_partly_matching_lora_warns_with_the_keys_left_out(ckpt, tmp_path):
    model = load_transformer(ckpt, dtype=torch.float32)
    factors = _factors(model)
    extra = {"diffusion_model.no_such_block.lora_A.weight": torch.ones(2, 4),
             "diffusion_model.no_such_block.lora_B.weight": torch.ones(4, 2),
             "text_embedding_projection.aggregate_embed.lora_A.weight": torch.ones(2, 4),
             "text_embedding_projection.aggregate_embed.lora_B.weight": torch.ones(4, 2)}
    lora = _write_lora(tmp_path / "l.safetensors", factors, "official", extra=extra)
    with pytest.warns(UserWarning, match=r"4 of its 28 keys .*no_such_block\.lora_A\.weight"):
        patches = read_lora(lora, model)
    assert sorted(p.key for p in patches) == sorted(f"{n}.weight" for n in LAYERS)


@pytest.mark.parametrize(("keys", "kind"), [
    (["diffusion_model.x.hada_w1_a", "diffusion_model.x.hada_w1_b"], "LoHa"),
    (["lora_unet_x.lokr_w1", "lora_unet_x.lokr_w2"], "LoKr"),
    (["diffusion_model.x.lora_A.weight", "diffusion_model.x.lora_B.weight", "diffusion_model.x.dora_scale"], "DoRA"),
    (["diffusion_model.x.diff", "diffusion_model.x.diff_b"], "full weight difference"),
])
def test_other_adapter_kinds_are_refused_by_name(ckpt, tmp_path, keys, kind):
    model = load_transformer(ckpt, dtype=torch.float32)
    save_file({k: torch.ones(2, 2) for k in keys}, str(tmp_path / "x.safetensors"))
    with pytest.raises(InputError, match=rf"not a plain LoRA: it holds {kind}.*{keys[0].split('.')[0]}"):
        apply_loras(model, [tmp_path / "x.safetensors"])


def test_bad_specs_and_shapes(ckpt, tmp_path):
    model = load_transformer(ckpt, dtype=torch.float32)
    with pytest.raises(InputError, match="no such file"):
        apply_loras(model, [tmp_path / "missing.safetensors"])
    lora = _write_lora(tmp_path / "l.safetensors", _factors(model), "official")
    for strength in (float("nan"), float("inf"), "1", True):
        with pytest.raises(InputError, match="finite number"):
            apply_loras(model, [(lora, strength)])
    half = load_file(str(lora))
    del half[f"diffusion_model.{LAYERS[0]}.lora_A.weight"]
    save_file(half, str(tmp_path / "half.safetensors"))
    with pytest.raises(InputError, match="no down factor"):
        apply_loras(model, [tmp_path / "half.safetensors"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    bad = LoraPatch(f"{LAYERS[2]}.weight", torch.ones(7, 2), torch.ones(2, 3))
    with pytest.raises(InputError, match="does not fit"):  # checked before anything changes
        apply_lora_patches(model, [LoraPatch(f"{LAYERS[3]}.weight", torch.ones(32, 1), torch.ones(1, 32)), bad])
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_errors_name_the_lora_file(ckpt, tmp_path):
    """A folder is called a folder; factors that do not fit the model name the file they came from (several
    LoRAs: which one)."""
    model = load_transformer(ckpt, dtype=torch.float32)
    with pytest.raises(InputError, match=r"is a folder; give a LoRA \.safetensors file"):
        apply_loras(model, [tmp_path])
    good = _write_lora(tmp_path / "good.safetensors", _factors(model), "official")
    wide = {name: (down, up.repeat(2, 1), alpha) for name, (down, up, alpha) in _factors(model).items()}
    other = _write_lora(tmp_path / "for_another_model.safetensors", wide, "official")
    with pytest.raises(InputError, match=r"^LoRA for_another_model.safetensors: its patch for '.*': up .* does "
                                         r"not fit"):
        apply_loras(model, [good, other])


def test_diffusers_and_kohya_spellings_of_every_layer(ckpt):
    """Our diffusers renames agree with the reference mapping (tests/reference/diffusers_ref.py, checked against
    diffusers' LTX2VideoTransformer3DModel by strict loading) for every LoRA-able layer, and every kohya spelling
    names exactly one layer."""
    from reference.diffusers_ref import official_to_diffusers_name

    with torch.device("meta"):
        from rs_ltxv.ltx.transformer import LTXAVTransformer

        model = LTXAVTransformer(tiny_config("2.3"))
    table = layer_names(model)
    layers = set(table.values())
    assert len(layers) > 90
    for name in layers:
        assert diffusers_name(name + ".weight") == official_to_diffusers_name(name + ".weight"), name
        assert table[f"transformer.{diffusers_name(name)}"] == name
        assert table["lora_unet_" + name.replace(".", "_")] == name


def test_load_model_parts_applies_loras(ckpt, tmp_path):
    model = load_transformer(ckpt, dtype=torch.float32)
    factors = _factors(model)
    lora = _write_lora(tmp_path / "l.safetensors", factors, "kohya")
    parts = load_model_parts(ckpt, dtype=torch.float32, loras=[LoraSpec(str(lora), 0.7)])
    merged = load_transformer(_hand_merged(ckpt, tmp_path / "m.safetensors", factors, 0.7), dtype=torch.float32)
    for a, b in zip(_run(parts.transformer), _run(merged), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(InputError, match="loras= patch the transformer this call loads"):
        load_model_parts(ckpt, dtype=torch.float32, loras=[lora], transformer=model)


def test_recipe_from_lora_files_equals_the_library(ckpt, tmp_path):
    """What ``generate --gpus N --lora`` sends the workers: the CLI's patches in a LoadRecipe load the same weights
    as applying the files here (no Ray: the recipe is built and loaded in this process)."""
    from rs_ltxv.distributed import LoadRecipe, load_from_recipe
    from rs_ltxv.distributed.parts import load_parallel_parts  # noqa: F401  (imports without Ray)
    from rs_ltxv.ltx.loading import open_checkpoint
    from rs_ltxv.ltx.pipeline.cli import attach_workers, read_lora_patches

    model = load_transformer(ckpt, dtype=torch.float32)
    lora = _write_lora(tmp_path / "l.safetensors", _factors(model), "diffusers", alpha=False)
    checkpoint = open_checkpoint(ckpt)
    patches = read_lora_patches((LoraSpec(str(lora), 0.6),), checkpoint)
    assert all(p.up.device.type == "cpu" for p in patches)  # read against a meta shell, factors real
    seen = {}

    def attach(parts, *, parallel, recipe):
        seen.update(recipe)
        return parts

    class Args:
        gpus, ray_address, backend, comm_timeout_s, attention_mode, dtype, device = 2, None, "auto", None, "auto", \
            "fp32", "cpu"
        checkpoint, loras = str(ckpt), patches

    attach_workers(Args, checkpoint, attach)
    worker = load_from_recipe(LoadRecipe(**seen))
    apply_loras(model, [(lora, 0.6)])
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), worker.state_dict().values(),
                                                  strict=True))


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    from rs_ltxv.ltx.tiny_parts import write_tiny_gemma

    d = tmp_path_factory.mktemp("models")
    return (write_tiny_checkpoint(d / "ltx.safetensors", "2.3", dtype=torch.float32, full=True),
            str(write_tiny_gemma(d / "gemma")))


def test_generate_cli_with_lora_changes_the_output(tiny_files, tmp_path):
    ckpt, gemma = tiny_files
    model = load_transformer(ckpt, dtype=torch.float32)
    lora = _write_lora(tmp_path / "style.safetensors", _factors(model), "official")
    common = ["generate", "--checkpoint", str(ckpt), "--text-encoder", gemma, "--prompt", "a fox", "--width", "64",
              "--height", "64", "--frames", "9", "--steps", "2", "--dtype", "fp32", "--device", "cpu",
              "--stg-block", "1"]
    outs = {}
    for tag, extra in (("plain", []), ("zero", ["--lora", f"{lora}:0"]), ("lora", ["--lora", f"{lora}:0.8"])):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # every key of the LoRA is used: no warning
            assert main([*common, *extra, "-o", str(tmp_path / f"{tag}.mp4")]) == 0
        outs[tag] = load_file(str(tmp_path / f"{tag}.latents.safetensors"))["video"]
    assert torch.equal(outs["zero"], outs["plain"])
    assert (outs["lora"] - outs["plain"]).abs().max() > 1e-3
