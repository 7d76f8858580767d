"""ComfyUI's own samplers (``comfy.samplers.ksampler(name)``, converted by the node adapter) drive our tiny model
through the library (skipped unless ``COMFYUI_PATH`` is set; ``COMFYUI_PYTHON`` is a Python that can import ComfyUI).

ComfyUI is imported in a subprocess (``--cpu``), with the repository importable as ``rs_ltxv`` through a symlink.
Checks: core ``euler`` equals our built-in euler; core ``euler_ancestral`` picks its rectified-flow variant (the
adapter's model_sampling is a ``CONST``) and, fed the built-in sampler's noise, equals our built-in
``euler_ancestral``; with its own noise it is deterministic for a seed and statistically like ours; other core
samplers run; CFG++ samplers are refused with a message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reference.comfyui import COMFYUI, REPO

pytestmark = pytest.mark.comfyui

SCRIPT = r'''
import json, os, sys, tempfile
from dataclasses import replace
sys.argv = ["main.py", "--cpu"]
sys.path.insert(0, os.environ["COMFYUI_PATH"])
import comfy.options
comfy.options.enable_args_parsing()
import comfy.model_sampling
import comfy.samplers
import numpy as np
import torch
from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.pipeline.generate import generate
from rs_ltxv.ltx.pipeline.guidance import GuidanceParams
from rs_ltxv.ltx.pipeline.latents import VideoSize
from rs_ltxv.ltx.pipeline.parts import load_model_parts
from rs_ltxv.ltx.pipeline.request import ImageGuide, Request
from rs_ltxv.ltx.text import TextContexts
from rs_ltxv.ltx.tiny import write_tiny_checkpoint
from rs_ltxv.nodes import convert

d = tempfile.mkdtemp()
parts = load_model_parts(write_tiny_checkpoint(d + "/t.safetensors", "2.3", dtype=torch.float32, full=True),
                         dtype=torch.float32)
g = torch.Generator().manual_seed(0)
vd, ad = parts.transformer.context_dim
ctx = (TextContexts(torch.randn(1, 8, vd, generator=g), torch.randn(1, 8, ad, generator=g), torch.ones(1, 8)), None)
image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
req = Request(width=64, height=64, frames=33, fps=24.0, steps=8, schedule="ltxv", decode=False, seed=5,
              video_guidance=GuidanceParams(), audio_guidance=GuidanceParams(), images=(ImageGuide(image, 0),))

def run(sampler, **kw):
    r = generate(parts, replace(req, sampler=sampler, **kw), contexts=ctx)
    return torch.cat([r.video_latent.flatten(), r.audio_latent.flatten()]), r.video_latent

def core(name, options=None):
    return convert.sampler_from_comfy(comfy.samplers.ksampler(name, options or {}), "test")

def noise_like_builtin(seed):
    gen = torch.Generator().manual_seed(seed)
    size = VideoSize(33, 64, 64, 24.0)
    f, h, w = size.latent_grid
    cfg = parts.transformer.config
    shapes = [(1, f * h * w, cfg.in_channels), (1, size.audio_frames, cfg.audio_in_channels)]
    return lambda s, sn: torch.cat([torch.randn(s, generator=gen).flatten(1) for s in shapes], dim=1)

out = {}
euler = core("euler")
out["const"] = isinstance(euler.model_sampling, comfy.model_sampling.CONST)
ours, ours_v = run("euler")
theirs, theirs_v = run(euler)
out["euler_maxdiff"] = float((ours - theirs).abs().max())
out["euler_scale"] = float(ours.abs().max())
anc, anc_v = run("euler_ancestral")
same = core("euler_ancestral", {"noise_sampler": noise_like_builtin(req.seed + 1)})
out["ancestral_same_noise_maxdiff"] = float((run(same)[0] - anc).abs().max())
same = core("euler_ancestral", {"noise_sampler": noise_like_builtin(req.seed + 1)})
out["ancestral_without_const_maxdiff"] = float((run(replace(same, model_sampling=None))[0] - anc).abs().max())
a1, a1_v = run(core("euler_ancestral"))
a2, _ = run(core("euler_ancestral"))
a3, _ = run(core("euler_ancestral"), seed=req.seed + 7)
out["ancestral_repeat_equal"] = bool(torch.equal(a1, a2))
out["ancestral_other_seed_maxdiff"] = float((a1 - a3).abs().max())
out["ancestral_vs_euler_maxdiff"] = float((a1 - ours).abs().max())
out["ancestral_std_ratio"] = float(a1.std() / anc.std())
out["ancestral_mean_diff"] = float((a1.mean() - anc.mean()).abs())
out["ancestral_first_frame_maxdiff"] = float((a1_v[:, :, 0] - ours_v[:, :, 0]).abs().max())
out["others"] = {}
for name in ("heun", "dpmpp_2m", "dpmpp_2m_sde", "res_multistep", "lms"):
    x, _ = run(core(name))
    out["others"][name] = [bool(torch.isfinite(x).all()), float((x - ours).abs().max())]
try:
    run(core("euler_cfg_pp"))
    out["cfg_pp"] = None
except InputError as e:
    out["cfg_pp"] = str(e)
print("RESULT " + json.dumps(out))
'''


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    pkg = tmp_path_factory.mktemp("pkg")
    (pkg / "rs_ltxv").symlink_to(REPO, target_is_directory=True)
    env = {**os.environ, "PYTHONPATH": str(pkg), "COMFYUI_PATH": str(COMFYUI)}
    proc = subprocess.run([os.environ.get("COMFYUI_PYTHON", sys.executable), "-c", SCRIPT], env=env,
                          capture_output=True, text=True, timeout=900, cwd=str(pkg))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_core_euler_equals_builtin_euler(results):
    assert results["const"]  # the adapter's model_sampling passes core's isinstance(…, CONST)
    assert results["euler_maxdiff"] <= 1e-5 * max(1.0, results["euler_scale"])


def test_core_euler_ancestral_is_the_flow_variant(results):
    """Fed the built-in sampler's noise it equals our euler_ancestral; without CONST it would take the VE formula."""
    assert results["ancestral_same_noise_maxdiff"] <= 1e-5 * max(1.0, results["euler_scale"])
    assert results["ancestral_without_const_maxdiff"] > 1e-2


def test_core_euler_ancestral_is_seeded_and_sensible(results):
    assert results["ancestral_repeat_equal"]
    assert results["ancestral_other_seed_maxdiff"] > 1e-3
    assert results["ancestral_vs_euler_maxdiff"] > 1e-3  # really stochastic, not Euler
    assert 0.7 < results["ancestral_std_ratio"] < 1.4
    assert results["ancestral_mean_diff"] < 0.3
    assert results["ancestral_first_frame_maxdiff"] <= 1e-5  # the strength-1 first frame stays exact


#: core samplers beyond euler: deterministic ones land near the Euler result (same model and sigmas)
OTHERS = {"heun": True, "dpmpp_2m": True, "res_multistep": True, "lms": True, "dpmpp_2m_sde": False}


def test_other_core_samplers_run_and_cfg_pp_is_refused(results):
    assert set(results["others"]) == set(OTHERS)
    for name, (finite, diff) in results["others"].items():
        assert finite, name
        if OTHERS[name]:
            assert diff < 0.3 * results["euler_scale"], (name, diff)
    assert results["cfg_pp"] is not None
    assert "_cfg_pp" in results["cfg_pp"]
