"""Quantised MODELs (FP8 scaled, INT8 ``comfy_quant``, GGUF Q8_0) under core ComfyUI's LoRA loader and low-VRAM
mode, against a real ComfyUI (skipped unless ``COMFYUI_PATH`` is set; ``COMFYUI_PYTHON`` picks its interpreter).

``quant_comfyui_probe.py`` loads our MODEL from tiny quantised files, applies a LoRA with
``comfy.sd.load_lora_for_models`` (what ``LoraLoaderModelOnly`` calls) and loads it with ``ModelPatcher.load``
fully and with a 1-byte budget (every layer offloaded, weights cast at use). The LoRA must equal the hand-merged
float model (exactly on the dequantised weights, within the format's error on the original float weights), leave
the packed bytes alone and unpatch bit for bit; the low-VRAM load must equal the full load bit for bit. On the CPU
load and offload device are the same, so this checks the protocol, not the device traffic.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reference.comfyui import COMFYUI, REPO

pytestmark = pytest.mark.comfyui

#: file → (LoRA layers that are quantised in it, relative error of the quantised float model vs float32: e4m3 keeps
#: 3 mantissa bits, int8 / Q8_0 127 levels of a row / 32-block max; measured 0.043, 0.0095, 0.0079)
FILES = {"official_fp8": (3, 0.08), "comfy_int8": (3, 0.02), "gguf_q8_0": (2, 0.02)}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    work = tmp_path_factory.mktemp("quant-comfyui")
    packages = work / "packages"
    packages.mkdir()
    (packages / "rs_ltxv").symlink_to(REPO, target_is_directory=True)
    proc = subprocess.run([os.environ.get("COMFYUI_PYTHON", sys.executable),
                           str(REPO / "tests" / "quant_comfyui_probe.py"), COMFYUI, str(packages), str(work)],
                          cwd=COMFYUI, capture_output=True, text=True, timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert line, proc.stdout[-3000:] + proc.stderr[-6000:]
    report = json.loads(line[len("RESULT "):])
    print(json.dumps(report, indent=1))
    return report


@pytest.mark.parametrize("name", list(FILES))
def test_core_lora_on_a_quantised_model_equals_the_hand_merged_lora(report, name):
    r, (layers, tolerance) = report[name], FILES[name]
    assert r["quantised_layers"] > 50
    assert r["lora_layers"] == layers
    assert r["lora_keys_patched"] == layers  # core's key mapping accepted every LoRA key of a quantised layer
    full = r["full"]
    assert full["lora_changes_output"] > 1e-2
    assert full["vs_dequantised_merged"] < 1e-5  # exactly the LoRA on the dequantised weights
    assert full["vs_float_merged"] < tolerance  # the float model with the LoRA: within the format's error
    assert full["float_plain_vs_quantised_plain"] < tolerance
    assert full["packed_unchanged"]
    assert full["unpatched_max_diff"] == 0


@pytest.mark.parametrize("name", list(FILES))
@pytest.mark.parametrize("run", ["lowvram_plain", "lowvram_lora"])
def test_low_vram_load_of_a_quantised_model_equals_the_full_load(report, name, run):
    r = report[name]
    got = r[run]
    assert r["quantised_casting_class"]
    assert got["model_lowvram"]
    assert got["loaded_bytes"] == 0
    assert got["quantised_casting"] == r["quantised_layers"]  # core offloaded the quantised layers too
    assert got["core_lowvram_patches_left"] == 0  # the LoRA is applied once (our delta), not twice
    assert got["lora_deltas"] == (1 if run == "lowvram_lora" else 0)
    assert got["max_diff"] == 0, got
    assert got["packed_unchanged"]


@pytest.mark.parametrize("name", list(FILES))
def test_unpatch_after_low_vram_restores_the_plain_model(report, name):
    r = report[name]
    assert r["after_unpatch_casting"] == 0
    assert r["after_unpatch_max_diff"] == 0
