"""The pack inside a real ComfyUI (skipped unless ``COMFYUI_PATH`` points at a ComfyUI checkout).

Starts ComfyUI with this pack and tiny random checkpoints (``reference.comfyui.serve``), then checks
``/object_info`` and runs the API-format example workflows end to end. ``COMFYUI_PYTHON`` picks the interpreter
that has ComfyUI's requirements (default: this one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from rs_ltxv.nodes import specs

from reference.comfyui import PACK_FOLDER, REPO, T2V, get_json, serve

pytestmark = pytest.mark.comfyui


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serve(tmp_path_factory)


def _post(url: str, data: dict):
    req = urllib.request.Request(url, json.dumps(data).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
    except urllib.error.HTTPError as exc:
        pytest.fail(f"POST {url} → {exc.code}: {exc.read().decode(errors='replace')[:3000]}")
    return json.loads(body) if body.strip() else {}


def test_pack_imports_without_error(server):
    text = server["log"].read_text()
    lines = [ln for ln in text.splitlines() if PACK_FOLDER in ln]
    assert lines, text[-3000:]
    assert not any("IMPORT FAILED" in ln for ln in lines), "\n".join(lines)


def test_every_node_is_in_object_info(server):
    info = get_json(f"{server['url']}/object_info")
    for node_id, spec in specs.NODES.items():
        assert node_id in info, node_id
        entry = info[node_id]
        assert entry["display_name"] == spec.display_name
        assert entry["category"] == spec.category
        assert entry["output"] == [o.type for o in spec.outputs]
        got = {**entry["input"]["required"], **entry["input"].get("optional", {})}
        assert list(got) == [i.name for i in spec.inputs]
        for i in spec.inputs:
            if i.is_widget and i.default is not None:
                assert got[i.name][1]["default"] == i.default, (node_id, i.name)
    # the tiny checkpoint shows up in the loaders' file lists
    assert "ltx-2.3-22b-distilled.safetensors" in info["RSLTXVModelLoader"]["input"]["required"]["ckpt_name"][0]
    assert "tiny-gemma-3" in info["RSLTXVTextEncoderLoader"]["input"]["required"]["text_encoder"][0]


def _wait(url: str, prompt_id: str, timeout: float = 300) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        history = get_json(f"{url}/history/{prompt_id}")
        if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
            return history[prompt_id]
        if prompt_id in history and history[prompt_id].get("status", {}).get("status_str") == "error":
            return history[prompt_id]
        time.sleep(1)
    pytest.fail(f"prompt {prompt_id} did not finish in {timeout} s")


API = sorted((REPO / "example_workflows" / "api").glob("*.json"))


def shrink(prompt: dict) -> dict:
    """Tiny sizes and steps; the model files as the example names them (the tiny set of ``python -m rs_ltxv tiny
    --set``), core's Gemma loader and encoder replaced by ours. Returns (pixel frames, size) expected in the saved
    video."""
    expect = {}
    for node in prompt.values():
        inputs = node["inputs"]
        # core's Gemma loader is hard-wired to Gemma-3 12B: our loader + encoder stand in for it on tiny weights
        if node["class_type"] == "LTXAVTextEncoderLoader":
            node["class_type"] = "RSLTXVTextEncoderLoader"
            node["inputs"] = dict(text_encoder=inputs["text_encoder"], ckpt_name=inputs["ckpt_name"], dtype="auto",
                                  device="default")
        if node["class_type"] == "CLIPTextEncode":
            node["class_type"] = "RSLTXVTextEncode"
            node["inputs"] = dict(text_encoder=inputs["clip"], text=inputs["text"])
        if node["class_type"] == "RSLTXVGenerate":
            size = 128 if inputs.get("upscale") else 64
            inputs.update(width=size, height=size, num_frames=9, steps=2, upscale_steps=1)
            expect.update(frames=9, size=size)
    for node in prompt.values():
        if node["class_type"] == "RSLTXVExtend":
            node["inputs"].update(num_new_frames=8, overlap_frames=8, steps=2)
            expect["frames"] += 8
        if node["class_type"] == "RSLTXVRetake":  # the 9-frame clip lasts 0.36 s at 25 fps
            node["inputs"].update(start_time=0.1, end_time=0.3, steps=2)
    return expect


@pytest.mark.parametrize("path", API, ids=lambda p: p.stem)
def test_api_example_runs_end_to_end(server, path):
    import av

    prompt = json.loads(path.read_text())
    expect = shrink(prompt)
    queued = _post(f"{server['url']}/prompt", {"prompt": prompt})
    entry = _wait(server["url"], queued["prompt_id"])
    status = entry["status"]
    assert status["status_str"] == "success", json.dumps(status["messages"])[-3000:]
    saved = [f for out in entry["outputs"].values() for key in ("images", "videos", "animated")
             for f in out.get(key, [])]
    assert saved, entry["outputs"]
    out = server["base"] / "output" / saved[0].get("subfolder", "") / saved[0]["filename"]
    with av.open(str(out)) as container:
        assert container.streams.audio, "no audio stream in the saved video"
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (expect["size"], expect["size"])
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == expect["frames"]


WS_CLIENT = """
import asyncio, json, sys, uuid
import aiohttp

async def main(url, prompt):
    cid = str(uuid.uuid4())
    events = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url.replace("http", "ws") + "/ws?clientId=" + cid) as ws:
            async with session.post(url + "/prompt", json={"prompt": prompt, "client_id": cid}) as r:
                pid = (await r.json())["prompt_id"]
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                if data.get("data", {}).get("prompt_id") not in (pid, None):
                    continue
                events.append(data)
                if data["type"] in ("execution_success", "execution_error", "execution_interrupted"):
                    break
    print(json.dumps(events))

asyncio.run(main(sys.argv[1], json.loads(sys.stdin.read())))
"""


def test_progress_bar_follows_the_sampling_steps(server):
    prompt = json.loads((REPO / "example_workflows" / "api" / T2V).read_text())
    shrink(prompt)
    gen_id = next(k for k, v in prompt.items() if v["class_type"] == "RSLTXVGenerate")
    prompt[gen_id]["inputs"].update(steps=5, seed=11)
    proc = subprocess.run([os.environ.get("COMFYUI_PYTHON", sys.executable), "-c", WS_CLIENT, server["url"]],
                          input=json.dumps(prompt), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = json.loads(proc.stdout)
    assert events[-1]["type"] == "execution_success", events[-1]
    progress = [e["data"] for e in events if e["type"] == "progress" and e["data"]["node"] == gen_id]
    # ComfyUI always sends the first and the final update and throttles the ones between by time
    values = [(p["value"], p["max"]) for p in progress]
    assert values[0] == (1, 5), values
    assert values[-1] == (5, 5), values
    assert all(m == 5 for _, m in values)
    assert [v for v, _ in values] == sorted({v for v, _ in values})


def test_interrupt_stops_a_running_generate(server):
    prompt = json.loads((REPO / "example_workflows" / "api" / T2V).read_text())
    for node in prompt.values():  # long enough to still be sampling when the interrupt arrives
        if node["class_type"] == "RSLTXVGenerate":
            node["inputs"].update(width=64, height=64, num_frames=49, steps=1000, decode=False, seed=1)
        if node["class_type"] == "RSLTXVTextEncoderLoader":
            node["inputs"]["text_encoder"] = "tiny-gemma-3"
    queued = _post(f"{server['url']}/prompt", {"prompt": prompt})
    deadline = time.time() + 60
    while not get_json(f"{server['url']}/queue")["queue_running"]:
        assert time.time() < deadline, "the prompt never started"
        time.sleep(0.2)
    time.sleep(3)  # loaders done (cached from the previous test), Generate sampling
    started = time.time()
    _post(f"{server['url']}/interrupt", {})
    entry = _wait(server["url"], queued["prompt_id"], timeout=60)
    assert time.time() - started < 30
    events = [m[0] for m in entry["status"]["messages"]]
    assert "execution_interrupted" in events, events
    interrupted = next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_interrupted")
    assert interrupted["node_type"] == "RSLTXVGenerate"


def _latent_of(server, entry: dict):
    from safetensors.torch import load_file

    files = [f for out in entry["outputs"].values() for f in out.get("latents", [])]
    assert files, entry["outputs"]
    path = server["base"] / "output" / files[0].get("subfolder", "") / files[0]["filename"]
    return load_file(str(path))["latent_tensor"]


def _lora_prompt(ckpt: str, lora_strength: float | None, prefix: str) -> dict:
    """Our loaders → (core LoraLoaderModelOnly) → RS LTXV Generate → core SaveLatent."""
    prompt = {
        "1": {"class_type": "RSLTXVModelLoader", "inputs": {"ckpt_name": ckpt, "dtype": "float32", "device": "default",
                                                            "distilled": "auto"}},
        "2": {"class_type": "RSLTXVTextEncoderLoader", "inputs": {
            "text_encoder": "tiny-gemma-3", "ckpt_name": "ltx-2.3-22b-distilled.safetensors", "dtype": "float32",
            "device": "default"}},
        "3": {"class_type": "RSLTXVTextEncode", "inputs": {"text_encoder": ["2", 0], "text": "a fox in the snow"}},
        "4": {"class_type": "RSLTXVTextEncode", "inputs": {"text_encoder": ["2", 0], "text": "blurry"}},
        "5": {"class_type": "RSLTXVVAELoader", "inputs": {"vae_name": "ltx-2.3-22b-distilled.safetensors",
                                                          "dtype": "float32", "device": "default", "tile_size": 0}},
        "6": {"class_type": "RSLTXVGenerate", "inputs": {
            "model": ["1", 0], "positive": ["3", 0], "negative": ["4", 0], "vae": ["5", 0], "width": 64,
            "height": 64, "num_frames": 9, "steps": 2, "cfg": 1.0, "seed": 5, "frame_rate": 25.0,
            "stg_scale": 0.0, "attention_mode": "default", "ffn_chunks": 2}},
        "7": {"class_type": "SaveLatent", "inputs": {"samples": ["6", 0], "filename_prefix": prefix}},
    }
    if lora_strength is not None:
        prompt["8"] = {"class_type": "LoraLoaderModelOnly", "inputs": {
            "model": ["1", 0], "lora_name": "tiny-lora.safetensors", "strength_model": lora_strength}}
        prompt["6"]["inputs"]["model"] = ["8", 0]
    return prompt


def _run(server, prompt: dict) -> dict:
    queued = _post(f"{server['url']}/prompt", {"prompt": prompt})
    entry = _wait(server["url"], queued["prompt_id"])
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"]["messages"])[-3000:]
    return entry


def test_core_lora_loader_patches_our_model(server):
    """LoraLoaderModelOnly on our MODEL gives what the hand-merged checkpoint gives; the base MODEL is unchanged."""
    import torch

    base = _latent_of(server, _run(server, _lora_prompt("ltx-2.3-22b-distilled.safetensors", None, "base")))
    lora = _latent_of(server, _run(server, _lora_prompt("ltx-2.3-22b-distilled.safetensors", 1.0, "lora")))
    merged = _latent_of(server, _run(server, _lora_prompt("tiny-merged.safetensors", None, "merged")))
    again = _latent_of(server, _run(server, _lora_prompt("ltx-2.3-22b-distilled.safetensors", None, "again")))
    scale = merged.abs().max().item()
    assert (lora - base).abs().max().item() > 1e-2 * scale, "the LoRA changed nothing"
    torch.testing.assert_close(lora, merged, rtol=0, atol=1e-5 * scale)
    torch.testing.assert_close(again, base, rtol=0, atol=0)  # unpatched after the LoRA run


def test_core_lora_loader_on_a_gguf_model(server):
    """LoRA on GGUF-quantised layers is applied on the fly: the change it makes matches the change the same LoRA
    makes on the float32 model (up to Q8_0 error), and unloading it restores the plain GGUF result."""
    import torch

    def run(ckpt, strength, prefix):
        return _latent_of(server, _run(server, _lora_prompt(ckpt, strength, prefix)))

    gguf = "ltx-2.3-22b-distilled-Q8_0.gguf"
    base_q, lora_q = run(gguf, None, "gguf_base"), run(gguf, 1.0, "gguf_lora")
    again_q = run(gguf, None, "gguf_again")
    base = run("ltx-2.3-22b-distilled.safetensors", None, "f32_base")
    merged = run("tiny-merged.safetensors", None, "f32_merged")
    change, change_q = merged - base, lora_q - base_q
    assert change.norm() > 1e-2 * base.norm(), "the LoRA changed nothing"
    assert (change_q - change).norm() < 0.1 * change.norm(), ((change_q - change).norm(), change.norm())
    torch.testing.assert_close(again_q, base_q, rtol=0, atol=0)


@pytest.mark.parametrize(("node", "changes", "words"), [
    ("RSLTXVGenerate", {"num_frames": 100}, "use 97 or 105"),
    ("RSLTXVGenerate", {"width": 100}, "width"),
    ("RSLTXVGenerate", {"upscale": True, "width": 96, "height": 96}, "multiple of 64"),
    ("RSLTXVGenerate", {"stg_blocks": "twenty"}, "stg_blocks"),
    ("RSLTXVGenerate", {"cfg": float("inf")}, "bigger than max"),  # ComfyUI's own range check (JSON Infinity)
])
def test_bad_settings_are_refused_before_anything_runs(server, node, changes, words):
    """ComfyUI validates an API prompt before running it; our VALIDATE_INPUTS takes part, so a bad setting is a 400
    from /prompt naming the input — no loader has run and nothing is queued."""
    prompt = json.loads((REPO / "example_workflows" / "api" / T2V).read_text())
    shrink(prompt)
    for entry in prompt.values():
        if entry["class_type"] == node:
            entry["inputs"].update(changes)
    req = urllib.request.Request(f"{server['url']}/prompt", json.dumps({"prompt": prompt}).encode(),
                                 {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=30)
    assert info.value.code == 400
    body = json.loads(info.value.read())
    details = json.dumps(body["node_errors"])
    assert words in details, details
    queue = json.loads(urllib.request.urlopen(f"{server['url']}/queue", timeout=10).read())
    assert queue["queue_running"] == []
    assert queue["queue_pending"] == []
