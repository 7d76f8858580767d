"""RS LTXV Multi-GPU (Ray) inside a real ComfyUI (skipped unless ``COMFYUI_PATH`` is set; ``COMFYUI_PYTHON`` must
have ``ray`` installed): core's ``LoraLoaderModelOnly`` before the node gives the same latents on 2 Ray CPU workers
as ComfyUI's own LoRA patching in one process, the shared MODEL is unchanged afterwards, and the example workflow
"LTX-2.3 multi-GPU (Ray)" runs to an MP4 with sound. Tiny random checkpoints, ``main.py --cpu``
(``reference.comfyui.serve``)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from reference.comfyui import REPO, get_json, serve

pytestmark = pytest.mark.comfyui

EXAMPLE = REPO / "example_workflows" / "api" / "LTX-2.3 multi-GPU (Ray).json"
CKPT = "ltx-2.3-22b-distilled.safetensors"
GGUF = "ltx-2.3-22b-distilled-Q8_0.gguf"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serve(tmp_path_factory)


def _post(url: str, data: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(data).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        pytest.fail(f"POST {url} → {exc.code}: {exc.read().decode(errors='replace')[:3000]}")


def _run(server, prompt: dict, timeout: float = 300) -> dict:
    """Queue ``prompt``, wait for it to finish (bounded by ``timeout`` seconds) and return its history entry."""
    prompt_id = _post(f"{server['url']}/prompt", {"prompt": prompt})["prompt_id"]
    deadline = time.time() + timeout
    while time.time() < deadline:
        entry = get_json(f"{server['url']}/history/{prompt_id}").get(prompt_id)
        if entry is not None and entry.get("status", {}).get("completed") is not None:
            assert entry["status"]["status_str"] == "success", json.dumps(entry["status"]["messages"])[-3000:]
            return entry
        time.sleep(0.5)
    pytest.fail(f"prompt {prompt_id} did not finish in {timeout} s")


def _latent(server, entry: dict):
    from safetensors.torch import load_file

    files = [f for out in entry["outputs"].values() for f in out.get("latents", [])]
    assert files, entry["outputs"]
    return load_file(str(server["base"] / "output" / files[0].get("subfolder", "") / files[0]["filename"]))[
        "latent_tensor"]


def _prompt(prefix: str, lora: bool, gpus: int | None, ckpt: str = CKPT) -> dict:
    """Our loaders → (core LoraLoaderModelOnly) → (RS LTXV Multi-GPU (Ray)) → RS LTXV Generate → core SaveLatent."""
    prompt = {
        "1": {"class_type": "RSLTXVModelLoader", "inputs": {"ckpt_name": ckpt, "dtype": "float32",
                                                            "device": "default", "distilled": "auto"}},
        "2": {"class_type": "RSLTXVTextEncoderLoader", "inputs": {"text_encoder": "tiny-gemma-3", "ckpt_name": CKPT,
                                                                  "dtype": "float32", "device": "default"}},
        "3": {"class_type": "RSLTXVTextEncode", "inputs": {"text_encoder": ["2", 0], "text": "a fox in the snow"}},
        "4": {"class_type": "RSLTXVTextEncode", "inputs": {"text_encoder": ["2", 0], "text": "blurry"}},
        "5": {"class_type": "RSLTXVVAELoader", "inputs": {"vae_name": CKPT, "dtype": "float32", "device": "default",
                                                          "tile_size": 0}},
        "6": {"class_type": "RSLTXVGenerate", "inputs": {
            "model": ["1", 0], "positive": ["3", 0], "negative": ["4", 0], "vae": ["5", 0], "width": 64,
            "height": 64, "num_frames": 9, "steps": 2, "cfg": 2.0, "seed": 5, "frame_rate": 25.0,
            "stg_scale": 1.0, "stg_blocks": "1", "attention_mode": "default"}},
        "7": {"class_type": "SaveLatent", "inputs": {"samples": ["6", 0], "filename_prefix": prefix}},
    }
    model = ["1", 0]
    if lora:
        prompt["8"] = {"class_type": "LoraLoaderModelOnly", "inputs": {
            "model": model, "lora_name": "tiny-lora.safetensors", "strength_model": 0.8}}
        model = ["8", 0]
    if gpus is not None:
        prompt["9"] = {"class_type": "RSLTXVMultiGPU", "inputs": {
            "model": model, "gpus": gpus, "ray_address": "", "comm_timeout_s": 60.0, "keep_loaded": True,
            "backend": "gloo"}}
        model = ["9", 0]
    prompt["6"]["inputs"]["model"] = model
    return prompt


@pytest.mark.parametrize("ckpt", [CKPT, GGUF])
def test_core_lora_on_two_workers_equals_one_process(server, ckpt):
    """Safetensors: the LoRA merged into the weights; GGUF: added to the dequantised weight every forward (the
    packed weights stay packed), in ComfyUI's process by our patcher and in the workers by the load recipe."""
    import torch

    tag = ckpt.split(".")[-1]
    base = _latent(server, _run(server, _prompt(f"{tag}_base", lora=False, gpus=None, ckpt=ckpt)))
    single = _latent(server, _run(server, _prompt(f"{tag}_single", lora=True, gpus=None, ckpt=ckpt)))
    ray = _latent(server, _run(server, _prompt(f"{tag}_ray", lora=True, gpus=2, ckpt=ckpt)))
    again = _latent(server, _run(server, _prompt(f"{tag}_again", lora=False, gpus=None, ckpt=ckpt)))
    scale = max(1.0, single.abs().max().item())
    assert (single - base).abs().max().item() > 1e-2 * scale, "the LoRA changed nothing"
    torch.testing.assert_close(ray, single, rtol=0, atol=1e-5 * scale)
    torch.testing.assert_close(again, base, rtol=0, atol=0)  # the shared MODEL is as it was
    assert "2 Ray workers" in server["log"].read_text()


def test_example_workflow_runs_to_an_mp4_with_sound(server):
    import av

    prompt = json.loads(EXAMPLE.read_text())
    for node in prompt.values():  # tiny: 128×128 (64×64 before the 2× pass), 9 frames, 2 + 1 steps
        if node["class_type"] == "RSLTXVGenerate":
            node["inputs"].update(width=128, height=128, num_frames=9, steps=2, upscale_steps=1)
    assert any(node["class_type"] == "RSLTXVMultiGPU" for node in prompt.values())
    entry = _run(server, prompt)
    saved = [f for out in entry["outputs"].values() for key in ("images", "videos", "animated")
             for f in out.get(key, [])]
    assert saved, entry["outputs"]
    path = server["base"] / "output" / saved[0].get("subfolder", "") / saved[0]["filename"]
    with av.open(str(path)) as container:
        assert container.streams.audio, "no audio stream in the saved video"
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (128, 128)
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 9


def test_cancel_stops_the_workers_and_the_next_run_works(server):
    """ComfyUI's interrupt during a long run on 2 workers: reported as interrupted (not as an error) within seconds,
    and the same workers run the next prompt."""
    prompt = _prompt("long", lora=False, gpus=2)
    prompt["6"]["inputs"].update(num_frames=49, steps=1000, seed=1)
    prompt_id = _post(f"{server['url']}/prompt", {"prompt": prompt})["prompt_id"]
    log = server["log"]
    deadline = time.time() + 120
    while "2 Ray workers" not in log.read_text().split("got prompt")[-1]:
        assert time.time() < deadline, "the prompt never reached the workers"
        time.sleep(0.2)
    time.sleep(4)  # workers started (or reused) and sampling
    started = time.time()
    _post(f"{server['url']}/interrupt", {})
    while time.time() - started < 60:
        entry = get_json(f"{server['url']}/history/{prompt_id}").get(prompt_id)
        if entry is not None and entry.get("status", {}).get("completed") is not None:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the interrupted prompt did not end within 60 s")
    assert time.time() - started < 20
    events = [m[0] for m in entry["status"]["messages"]]
    assert "execution_interrupted" in events, events
    _latent(server, _run(server, _prompt("after_cancel", lora=False, gpus=2)))
