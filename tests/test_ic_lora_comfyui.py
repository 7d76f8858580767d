"""The "IC-LoRA control" example in a real ComfyUI (skipped unless ``COMFYUI_PATH`` points at a ComfyUI checkout).

Its API twin runs as shipped (tiny sizes and steps; the tiny IC-LoRA of ``python -m rs_ltxv tiny --set`` on the model
through core's LoraLoaderModelOnly, ``input/example.mp4`` through core's Load Video → Get Video Components into RS
LTXV Generate's ``reference_video``) to an MP4; then, saving Generate's latent instead, the reference must matter:
another control video, no control video and another ``reference_downscale_factor`` each change the result.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from reference.comfyui import REPO, get_json, serve, write_example_video

pytestmark = pytest.mark.comfyui

EXAMPLE = REPO / "example_workflows" / "api" / "LTX-2.3 IC-LoRA control (RS LTXV Generate).json"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serve(tmp_path_factory)


def _run(server, prompt: dict) -> dict:
    """Queue ``prompt``, wait for it, fail with ComfyUI's messages unless it succeeded; the history entry."""
    req = urllib.request.Request(f"{server['url']}/prompt", json.dumps({"prompt": prompt}).encode(),
                                 {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            prompt_id = json.loads(r.read())["prompt_id"]
    except urllib.error.HTTPError as exc:
        pytest.fail(f"/prompt → {exc.code}: {exc.read().decode(errors='replace')[:3000]}")
    deadline = time.time() + 300
    while time.time() < deadline:
        entry = get_json(f"{server['url']}/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None:
            assert entry["status"]["status_str"] == "success", json.dumps(entry["status"]["messages"])[-3000:]
            return entry
        time.sleep(1)
    pytest.fail(f"prompt {prompt_id} did not finish in 300 s")


def _example() -> tuple[dict, str]:
    """The API example at 64 × 64, 9 frames, 2 steps; (prompt, Generate's node id)."""
    prompt = json.loads(EXAMPLE.read_text())
    gen = next(k for k, v in prompt.items() if v["class_type"] == "RSLTXVGenerate")
    prompt[gen]["inputs"].update(width=64, height=64, num_frames=9, steps=2)
    return prompt, gen


def test_the_example_runs_to_an_mp4(server):
    import av

    prompt, gen = _example()
    loaders = {v["class_type"]: v["inputs"] for v in prompt.values()}
    assert loaders["LoraLoaderModelOnly"]["lora_name"] == "ltx-2.3-22b-ic-lora-union-control-ref0.5.safetensors"
    assert loaders["LoadVideo"]["file"] == "example.mp4"
    assert prompt[gen]["inputs"]["reference_downscale_factor"] == 2
    entry = _run(server, prompt)
    saved = [f for out in entry["outputs"].values() for key in ("images", "videos", "animated")
             for f in out.get(key, [])]
    assert saved, entry["outputs"]
    path = server["base"] / "output" / saved[0].get("subfolder", "") / saved[0]["filename"]
    with av.open(str(path)) as container:
        assert container.streams.audio, "no audio stream in the saved video"
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (64, 64)
        assert sum(1 for _ in container.decode(video=0)) == 9


def _latent(server, prefix: str, *, video: str | None = "example.mp4", factor: int = 2):
    """Generate's video latent from the example with the control video ``video`` (None: reference_video
    disconnected) and ``reference_downscale_factor`` ``factor``, saved by core SaveLatent instead of decoded."""
    from safetensors.torch import load_file

    prompt, gen = _example()
    for key in [k for k, v in prompt.items() if v["class_type"] in ("CreateVideo", "SaveVideo")]:
        del prompt[key]
    inputs = prompt[gen]["inputs"]
    inputs.update(decode=False, reference_downscale_factor=factor)
    if video is None:
        del inputs["reference_video"]
    else:
        load = next(v for v in prompt.values() if v["class_type"] == "LoadVideo")
        load["inputs"]["file"] = video
    prompt["save"] = {"class_type": "SaveLatent", "inputs": {"samples": [gen, 0], "filename_prefix": prefix}}
    entry = _run(server, prompt)
    (file,) = [f for out in entry["outputs"].values() for f in out.get("latents", [])]
    return load_file(str(server["base"] / "output" / file.get("subfolder", "") / file["filename"]))["latent_tensor"]


def test_the_control_video_steers_the_result(server):
    import torch

    write_example_video(server["base"] / "input" / "other.mp4", seed=5)
    base = _latent(server, "iclora_base")
    other = _latent(server, "iclora_other", video="other.mp4")
    plain = _latent(server, "iclora_plain", video=None)
    factor_one = _latent(server, "iclora_factor1", factor=1)
    assert base.shape == other.shape == plain.shape == factor_one.shape
    assert torch.isfinite(base).all()
    scale = base.abs().max().item()
    for what, latent in (("another control video", other), ("no control video", plain),
                         ("reference_downscale_factor 1", factor_one)):
        assert (latent - base).abs().max().item() > 1e-3 * scale, f"{what} changed nothing"
