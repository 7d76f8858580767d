"""Run by tests/test_offload_comfyui.py with ComfyUI's Python: our MODEL (``LTXVModule`` in our ModelPatcher) with a
weight patch, loaded by ComfyUI's memory manager fully and then partially (``ModelPatcher.load`` with a small
``lowvram_model_memory``, as ``load_models_gpu`` does when VRAM is short); prints a JSON report. Not a test module.

Usage: python offload_comfyui_probe.py COMFYUI_PATH PACKAGES_DIR WORK_DIR
"""

from __future__ import annotations

import json
import sys


def _diff(a, b) -> float:
    return float((a.float() - b.float()).abs().max())


def _run(patcher, inputs):
    import torch

    with torch.no_grad():
        return patcher.model.diffusion_model(*inputs)


def probe(work: str) -> dict:
    import comfy.model_management as mm
    import torch

    from rs_ltxv.ltx import tokens as T
    from rs_ltxv.ltx.loading import load_transformer
    from rs_ltxv.ltx.offload import CastWeights
    from rs_ltxv.ltx.tiny import write_tiny_checkpoint
    from rs_ltxv.ltx.transformer import StreamInput
    from rs_ltxv.nodes import comfy_model
    from rs_ltxv.nodes.comfy_model import LTXVModule

    path = write_tiny_checkpoint(f"{work}/ltx.safetensors", "2.3", dtype=torch.float32)
    cpu = torch.device("cpu")
    module = LTXVModule(load_transformer(path, dtype=torch.float32))
    patcher = comfy_model.wrap(module, cpu, cpu)
    model = module.diffusion_model
    cfg = model.config
    g = torch.Generator().manual_seed(0)
    vctx, actx = model.context_dim
    inputs = (StreamInput(torch.randn(1, 6, cfg.in_channels, generator=g), torch.tensor([0.6]),
                          torch.full((1, 6), 0.6), T.video_positions(1, 1, 2, 3, 24.0),
                          torch.randn(1, 5, vctx, generator=g)),
              StreamInput(torch.randn(1, 4, cfg.audio_in_channels, generator=g), torch.tensor([0.6]),
                          torch.full((1, 4), 0.6), T.audio_positions(1, 4), torch.randn(1, 5, actx, generator=g)))
    plain = _run(patcher, inputs)
    key = "diffusion_model.transformer_blocks.1.ff.net.2.weight"  # a weight patch ("diff", as LoRA merges)
    weight = module.get_parameter(key)
    original = weight.detach().clone()
    patcher.add_patches({key: (torch.randn(weight.shape, generator=g) * 0.05,)}, 1.0)
    res: dict = {"cast_layers": sum(isinstance(m, CastWeights) for m in model.modules()),
                 "total_bytes": patcher.model_size()}

    patcher.load(cpu, lowvram_model_memory=0, full_load=True)
    full = _run(patcher, inputs)
    res["patch_changes_output"] = _diff(full[0], plain[0])
    patcher.unpatch_model(cpu, unpatch_weights=True)
    res["unpatched_equals_plain"] = _diff(_run(patcher, inputs)[0], plain[0])

    for name, budget in (("half", patcher.model_size() // 2), ("none", 1)):
        patcher.load(cpu, lowvram_model_memory=budget, force_patch_weights=False, full_load=False)
        layer = module.get_submodule(key[:-len(".weight")])
        casting = [m for m in model.modules() if isinstance(m, CastWeights) and m.comfy_cast_weights]
        got = _run(patcher, inputs)
        ready = comfy_model.prepare(patcher, comfy_model.RunOptions())
        res[name] = {"model_lowvram": bool(module.model_lowvram), "loaded_bytes": module.model_loaded_weight_memory,
                     "casting_layers": len(casting), "patch_at_use": len(layer.weight_function),
                     "stored_weight_unpatched": _diff(layer.weight, original) == 0,
                     "max_diff": max(_diff(got[0], full[0]), _diff(got[1], full[1])),
                     "compute_device": str(ready.compute_device)}
        patcher.unpatch_model(cpu, unpatch_weights=True)
    res["after_unpatch_casting_layers"] = sum(bool(getattr(m, "comfy_cast_weights", False)) for m in model.modules())
    res["after_unpatch_equals_plain"] = _diff(_run(patcher, inputs)[0], plain[0])
    mm.unload_all_models()
    return res


def main() -> None:
    comfy_path, packages, work = sys.argv[1:4]
    sys.path[:0] = [comfy_path, packages]
    from comfy.cli_args import args

    args.cpu = True
    print("RESULT " + json.dumps(probe(work)))


if __name__ == "__main__":
    main()
