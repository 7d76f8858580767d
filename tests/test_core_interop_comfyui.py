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
from dataclasses import replace
from pathlib import Path

import pytest
import torch

COMFYUI = os.environ.get("COMFYUI_PATH")
pytestmark = pytest.mark.skipif(not COMFYUI, reason="COMFYUI_PATH is not set")
REPO = Path(__file__).resolve().parents[1]
_RES = ["res_x", {"num_layers": 1}]


def _video_vae_config() -> dict:
    """128 latent channels; the encoder at a constant width (core sizes it from 128 base channels)."""
    from rs_ltxv.ltx.tiny_parts import tiny_component_config

    vae = tiny_component_config(latent_channels=128, audio_channels=8)
    vae["vae"]["encoder_blocks"] = [_RES, ["compress_all_res", {"multiplier": 1}], _RES]
    vae["vae"]["patch_size"] = 4
    return vae


def write_core_compatible_checkpoint(path: Path, version: str) -> dict:
    from safetensors.torch import save_file

    from rs_ltxv.ltx.tiny import tiny_config, tiny_state_dict
    from rs_ltxv.ltx.tiny_parts import tiny_component_state

    cfg = tiny_config(version)
    cfg = replace(cfg, video_connector=replace(cfg.video_connector, num_learnable_registers=128),
                  audio_connector=replace(cfg.audio_connector, num_learnable_registers=128))
    parts = _video_vae_config()
    sd = tiny_state_dict(cfg, seed=1)
    sd.update(tiny_component_state(parts, seed=11))
    save_file(sd, str(path), metadata={"config": json.dumps({"transformer": cfg.to_dict(), **parts})})
    return sd


def write_lora(path: Path, sd: dict, rank: int = 2) -> None:
    """``diffusion_model.<name>.lora_A/B.weight`` for a few Linear layers of the transformer."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(7)
    names = ["patchify_proj", "transformer_blocks.0.attn1.to_q", "transformer_blocks.0.ff.net.2",
             "transformer_blocks.1.audio_attn2.to_v", "audio_proj_out"]
    lora = {}
    for name in names:
        out_f, in_f = sd[f"model.diffusion_model.{name}.weight"].shape
        lora[f"diffusion_model.{name}.lora_A.weight"] = torch.randn(rank, in_f, generator=g) * 0.3
        lora[f"diffusion_model.{name}.lora_B.weight"] = torch.randn(out_f, rank, generator=g) * 0.3
    save_file(lora, str(path))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    sys.path.insert(0, str(REPO / "tests"))
    from test_nodes_run import write_tiny_upsampler

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
    assert proc.returncode == 0 and line, (proc.stdout[-3000:] + proc.stderr[-6000:])
    return json.loads(line[len("RESULT "):])


def _close(diff: float, scale: float = 1.0, tol: float = 1e-5) -> bool:
    return diff <= tol * max(1.0, scale)


@pytest.mark.parametrize("version", ["2.3", "2.0"])
def test_transformer_from_core_shares_weights_and_matches_ours(report, version):
    r = report[version]
    assert r["is_core_ltxav"] and r["param_names_equal_core"] and r["shares_storage"]
    assert _close(r["transformer_max_diff"], r["transformer_scale"]), r  # the project tolerance, float32


@pytest.mark.parametrize("version", ["2.3", "2.0"])
def test_lora_from_core_equals_hand_merged_lora(report, version):
    r = report[version]
    assert r["lora_changes_output"] > 1e-3, r
    assert _close(r["lora_max_diff"]), r
    assert r["lowvram_patch_counter"] > 0 and _close(r["lora_lowvram_max_diff"]), r


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
    assert _close(r["video_decode_max_diff"], 1.0, 0.0) and _close(r["video_encode_max_diff"], 1.0, 0.0), r


def test_audio_vae_and_upsampler_from_core(report):
    r = report["parts"]
    assert r["audio_shares_storage"] and r["upsampler_shares_storage"], r
    assert r["audio_decode_max_diff"] == 0.0 and r["audio_encode_max_diff"] == 0.0, r
    assert r["upsampler_max_diff"] == 0.0, r
    assert r["wrong_object_error"].startswith("InputError") and "Latent Upscale" in r["wrong_object_error"], r


def test_print_report(report):
    """Shows the measured differences (``pytest -s``)."""
    print(json.dumps(report, indent=1))
