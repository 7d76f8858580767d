"""Run by tests/test_quant_comfyui.py with ComfyUI's Python: our MODEL loaded from tiny quantised files (FP8 scaled,
INT8 ``comfy_quant``, GGUF Q8_0) with core's LoRA loader (``comfy.sd.load_lora_for_models``, what
``LoraLoaderModelOnly`` calls), loaded by core's memory manager fully and with a 1-byte budget; prints a JSON
report. Not a test module.

Usage: python quant_comfyui_probe.py COMFYUI_PATH PACKAGES_DIR WORK_DIR
"""

from __future__ import annotations

import json
import sys

#: layers the LoRA touches (official names), video and audio, attention and feed-forward
LORA_LAYERS = ("transformer_blocks.0.attn1.to_q", "transformer_blocks.1.ff.net.2",
               "transformer_blocks.0.audio_attn1.to_out.0")


def _diff(a, b) -> float:
    return float((a.float() - b.float()).abs().max())


def _rel(a, b) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def _run(model, inputs):
    import torch

    with torch.no_grad():
        return model(*inputs)


def _inputs(model):
    import torch

    from rs_ltxv.ltx import tokens as T
    from rs_ltxv.ltx.transformer import StreamInput

    cfg = model.config
    g = torch.Generator().manual_seed(0)
    vctx, actx = model.context_dim
    return (StreamInput(torch.randn(1, 6, cfg.in_channels, generator=g), torch.tensor([0.6]),
                        torch.full((1, 6), 0.6), T.video_positions(1, 1, 2, 3, 24.0),
                        torch.randn(1, 5, vctx, generator=g)),
            StreamInput(torch.randn(1, 4, cfg.audio_in_channels, generator=g), torch.tensor([0.6]),
                        torch.full((1, 4), 0.6), T.audio_positions(1, 4), torch.randn(1, 5, actx, generator=g)))


def _write_files(work: str) -> dict[str, str]:
    import torch
    from gguf import GGMLQuantizationType as Q
    from safetensors import safe_open
    from safetensors.torch import save_file

    from rs_ltxv.gguf_loader.writer import write_gguf
    from rs_ltxv.ltx.quant.writers import quantise_state_dict
    from rs_ltxv.ltx.tiny import write_tiny_checkpoint

    path = str(write_tiny_checkpoint(f"{work}/float.safetensors", "2.3", dtype=torch.float32))
    with safe_open(path, "pt") as f:
        sd = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata() or {}
    files = {"float": path}
    for layout in ("official_fp8", "comfy_int8"):
        files[layout] = f"{work}/{layout}.safetensors"
        save_file(quantise_state_dict(sd, layout), files[layout], metadata=meta)
    files["gguf_q8_0"] = f"{work}/q8_0.gguf"
    write_gguf(files["gguf_q8_0"], sd, lambda name, t: Q.Q8_0 if name.endswith(".weight") and t.ndim == 2
               and t.shape[1] % 32 == 0 else Q.F32, metadata={"config": meta["config"]})
    return files


def _lora(model, layers) -> dict:
    import torch

    g = torch.Generator().manual_seed(3)
    out = {}
    for name in layers:
        out_f, in_f = model.get_submodule(name).weight_shape
        out[f"diffusion_model.{name}.lora_A.weight"] = torch.randn(2, in_f, generator=g) * 0.3
        out[f"diffusion_model.{name}.lora_B.weight"] = torch.randn(out_f, 2, generator=g) * 0.3
    return out


def _packed(model) -> dict:
    """Every quantised layer's stored tensors, as raw bytes (float8 has no equality kernel on every build)."""
    import torch

    from rs_ltxv.ltx.quant import is_quantised

    return {f"{n}.{b}": t.detach().clone().view(-1).view(torch.uint8)
            for n, m in model.named_modules() if is_quantised(m) for b, t in m.named_buffers(recurse=False)}


def _same_bytes(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _merged(float_path: str, quantised, lora: dict, layers, *, dequantised: bool):
    """The float model with the LoRA merged by hand: into the file's float weights, or (``dequantised``) into the
    quantised layers' dequantised weights (the exact oracle)."""
    import torch

    from rs_ltxv.ltx.loading import load_transformer
    from rs_ltxv.ltx.quant import is_quantised

    ref = load_transformer(float_path, dtype=torch.float32)
    state = ref.state_dict()
    if dequantised:
        for n, m in quantised.named_modules():
            if is_quantised(m):
                state[f"{n}.weight"] = m.dequantized_weight(torch.float32, patched=False)
    for name in layers:
        a, b = lora[f"diffusion_model.{name}.lora_A.weight"], lora[f"diffusion_model.{name}.lora_B.weight"]
        state[f"{name}.weight"] = state[f"{name}.weight"] + b @ a
    ref.load_state_dict(state)
    return ref


def _probe_file(name: str, files: dict) -> dict:
    import comfy.model_patcher
    import comfy.sd
    import torch

    from rs_ltxv.ltx.loading import load_transformer
    from rs_ltxv.ltx.offload import CastWeights
    from rs_ltxv.ltx.quant import is_quantised
    from rs_ltxv.nodes import comfy_model
    from rs_ltxv.nodes.comfy_model import LTXVModule

    cpu = torch.device("cpu")
    module = LTXVModule(load_transformer(files[name], dtype=torch.float32))
    model = module.diffusion_model
    quantised = {n: m for n, m in model.named_modules() if is_quantised(m)}
    inputs = _inputs(model)
    patcher = comfy_model.wrap(module, cpu, cpu)
    layers = [n for n in LORA_LAYERS if n in quantised]  # GGUF Q8_0 quantises only widths that are whole blocks
    res: dict = {"quantised_layers": len(quantised), "lora_layers": len(layers),
                 "quantised_casting_class": all(isinstance(m, CastWeights) for m in quantised.values())}
    before = _packed(model)
    patcher.load(cpu, lowvram_model_memory=0, full_load=True)
    plain = _run(model, inputs)
    patcher.unpatch_model(cpu, unpatch_weights=True)

    lora = _lora(model, layers)
    with_lora, _ = comfy.sd.load_lora_for_models(patcher, None, lora, 1.0, 0)
    res["lora_keys_patched"] = sum(f"diffusion_model.{n}.weight" in with_lora.patches for n in layers)
    with_lora.load(cpu, lowvram_model_memory=0, full_load=True)
    got = _run(model, inputs)
    exact = _run(_merged(files["float"], model, lora, layers, dequantised=True), inputs)
    merged = _run(_merged(files["float"], model, lora, layers, dequantised=False), inputs)
    float_plain = _run(load_transformer(files["float"], dtype=torch.float32), inputs)
    res["full"] = {
        "lora_changes_output": _rel(got[0], plain[0]),
        "vs_dequantised_merged": max(_rel(got[i], exact[i]) for i in range(2)),
        "vs_float_merged": max(_rel(got[i], merged[i]) for i in range(2)),
        "float_plain_vs_quantised_plain": max(_rel(plain[i], float_plain[i]) for i in range(2)),
        "packed_unchanged": _same_bytes(before, _packed(model)),
    }
    with_lora.unpatch_model(cpu, unpatch_weights=True)
    res["full"]["unpatched_max_diff"] = max(_diff(a, b) for a, b in zip(_run(model, inputs), plain, strict=True))

    # low-VRAM mode: nothing fits; every layer (quantised ones too) casts its weights at use
    for label, p, want in (("lowvram_plain", patcher, plain), ("lowvram_lora", with_lora, got)):
        p.load(cpu, lowvram_model_memory=1, force_patch_weights=False, full_load=False)
        out = _run(model, inputs)
        layer = model.get_submodule(layers[0])
        res[label] = {
            "model_lowvram": bool(module.model_lowvram),
            "loaded_bytes": module.model_loaded_weight_memory,
            "quantised_casting": sum(bool(getattr(m, "comfy_cast_weights", False)) for m in quantised.values()),
            "core_lowvram_patches_left": sum(isinstance(f, comfy.model_patcher.LowVramPatch)
                                             for m in quantised.values()
                                             for f in getattr(m, "weight_function", [])),
            "lora_deltas": len(layer.patches),
            "max_diff": max(_diff(a, b) for a, b in zip(out, want, strict=True)),
            "packed_unchanged": _same_bytes(before, _packed(model)),
        }
        p.unpatch_model(cpu, unpatch_weights=True)
    res["after_unpatch_casting"] = sum(bool(getattr(m, "comfy_cast_weights", False)) for m in quantised.values())
    res["after_unpatch_max_diff"] = max(_diff(a, b) for a, b in zip(_run(model, inputs), plain, strict=True))
    return res


def probe(work: str) -> dict:
    import comfy.model_management as mm

    files = _write_files(work)
    out = {name: _probe_file(name, files) for name in ("official_fp8", "comfy_int8", "gguf_q8_0")}
    mm.unload_all_models()
    return out


def main() -> None:
    comfy_path, packages, work = sys.argv[1:4]
    sys.path[:0] = [comfy_path, packages]
    from comfy.cli_args import args

    args.cpu = True
    print("RESULT " + json.dumps(probe(work)))


if __name__ == "__main__":
    main()
