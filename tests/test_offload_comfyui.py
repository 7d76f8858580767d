"""Our MODEL under ComfyUI's memory manager in low-VRAM mode, against a real ComfyUI (skipped unless
``COMFYUI_PATH`` is set; ``COMFYUI_PYTHON`` picks its interpreter).

``offload_comfyui_probe.py`` wraps a tiny transformer as our MODEL, adds a weight patch (as a LoRA loader does) and
loads it with ``ModelPatcher.load`` fully, then with half the model's bytes and with 1 byte of budget (what
``load_models_gpu`` does when VRAM is short): core marks our layers to cast their weights at use and attaches the
patch as a ``LowVramPatch`` ``weight_function``; the forward must equal the fully loaded one bit for bit. On the
CPU, load and offload device are the same, so this checks the protocol (flags, patches at use, bookkeeping,
outputs), not the device traffic; that needs a GPU (``--lowvram`` / ``--reserve-vram`` on a real run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reference.comfyui import COMFYUI, REPO

pytestmark = pytest.mark.comfyui


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    work = tmp_path_factory.mktemp("offload-comfyui")
    packages = work / "packages"
    packages.mkdir()
    (packages / "rs_ltxv").symlink_to(REPO, target_is_directory=True)
    proc = subprocess.run([os.environ.get("COMFYUI_PYTHON", sys.executable),
                           str(REPO / "tests" / "offload_comfyui_probe.py"), COMFYUI, str(packages), str(work)],
                          cwd=COMFYUI, capture_output=True, text=True, timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert line, proc.stdout[-3000:] + proc.stderr[-6000:]
    report = json.loads(line[len("RESULT "):])
    print(json.dumps(report, indent=1))
    return report


def test_full_load_applies_the_patch_and_unpatch_restores(report):
    assert report["cast_layers"] > 0
    assert report["patch_changes_output"] > 1e-4
    assert report["unpatched_equals_plain"] == 0


@pytest.mark.parametrize("budget", ["half", "none"])
def test_partial_load_equals_full_load_bit_for_bit(report, budget):
    r = report[budget]
    assert r["model_lowvram"]
    assert r["casting_layers"] > 0
    assert r["loaded_bytes"] < report["total_bytes"]
    assert r["max_diff"] == 0, r
    assert r["compute_device"] == "cpu"  # the patcher's load device, not where the first weight happens to be


def test_nothing_loaded_patches_at_use_and_keeps_the_stored_weight(report):
    r = report["none"]
    assert r["loaded_bytes"] == 0
    assert r["casting_layers"] == report["cast_layers"]
    assert r["patch_at_use"] == 1  # core's LowVramPatch as the layer's weight_function
    assert r["stored_weight_unpatched"]


def test_unpatch_clears_the_low_vram_flags(report):
    assert report["after_unpatch_casting_layers"] == 0
    assert report["after_unpatch_equals_plain"] == 0
