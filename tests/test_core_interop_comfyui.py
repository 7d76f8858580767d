"""Core-loader interop against a real ComfyUI (skipped unless ``COMFYUI_PATH`` is set; ``COMFYUI_PYTHON`` picks the
interpreter that has ComfyUI's requirements).

Writes tiny LTX-2 / LTX-2.3 checkpoints that core's loaders accept (connectors with 128 registers and an 8-channel
audio VAE: core hard-codes both; a 128-channel video VAE latent: core's statistics are 128 wide), a tiny LoRA and a
tiny latent upsampler, then runs ``core_interop_probe.py`` with ComfyUI's Python: core's loaders build core's
objects, ``nodes.core_interop`` turns them into ours, and the probe reports outputs and storage sharing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reference.builders import write_core_compatible_checkpoint, write_lora, write_tiny_upsampler
from reference.comfyui import COMFYUI, REPO

pytestmark = pytest.mark.comfyui


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    work = tmp_path_factory.mktemp("core-interop")
    for version in ("2.3", "2.0"):
        sd = write_core_compatible_checkpoint(work / f"ltx-{version}.safetensors", version)
        write_lora(work / f"lora-{version}.safetensors", sd)
    write_tiny_upsampler(work / "upsampler.safetensors")
    packages = work / "packages"
    packages.mkdir()
    (packages / "rs_ltxv").symlink_to(REPO, target_is_directory=True)
    proc = subprocess.run([os.environ.get("COMFYUI_PYTHON", sys.executable), str(REPO / "tests" /
                           "core_interop_probe.py"), COMFYUI, str(packages), str(work)],
                          cwd=COMFYUI, capture_output=True, text=True, timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert line, proc.stdout[-3000:] + proc.stderr[-6000:]
    report = json.loads(line[len("RESULT "):])
    print(json.dumps(report, indent=1))  # the measured differences, shown with ``pytest -s``
    return report


def _close(diff: float, scale: float = 1.0, tol: float = 1e-5) -> bool:
    return diff <= tol * max(1.0, scale)


@pytest.mark.parametrize("version", ["2.3", "2.0"])
def test_transformer_from_core_shares_weights_and_matches_ours(report, version):
    r = report[version]
    assert r["is_core_ltxav"]
    assert r["param_names_equal_core"]
    assert r["shares_storage"]
    assert _close(r["transformer_max_diff"], r["transformer_scale"]), r  # the project tolerance, float32


@pytest.mark.parametrize("version", ["2.3", "2.0"])
def test_lora_from_core_equals_hand_merged_lora(report, version):
    r = report[version]
    assert r["lora_changes_output"] > 1e-3, r
    assert _close(r["lora_max_diff"]), r
    assert r["lowvram_patch_counter"] > 0, r
    assert _close(r["lora_lowvram_max_diff"]), r


@pytest.mark.parametrize("version", ["2.3", "2.0"])
def test_contexts_from_core_match_cores_connectors(report, version):
    r = report[version]
    assert r["context_shape"] == r["core_context_shape"], r
    # core's q/k RMSNorm eps is 1e-5, the reference's (ours) 1e-6: tiny, bounded differences
    assert _close(r["context_max_diff"], r["context_scale"], 1e-3), r
    assert r["finished_context_passthrough"]
    if version == "2.3":
        assert _close(r["projection_then_connectors_vs_our_text_path"], 1.0, 1e-4), r


def test_video_vae_from_core(report):
    r = report["2.3"]
    assert r["video_vae_shares_storage"]
    assert _close(r["video_decode_max_diff"], 1.0, 0.0), r
    assert _close(r["video_encode_max_diff"], 1.0, 0.0), r


def test_audio_vae_and_upsampler_from_core(report):
    r = report["parts"]
    assert r["audio_shares_storage"], r
    assert r["upsampler_shares_storage"], r
    assert r["audio_decode_max_diff"] == 0.0, r
    assert r["audio_encode_max_diff"] == 0.0, r
    assert r["upsampler_max_diff"] == 0.0, r
    assert r["wrong_object_error"].startswith("InputError"), r
    assert "Latent Upscale" in r["wrong_object_error"], r
