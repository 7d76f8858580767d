"""The pack inside a real ComfyUI (skipped unless ``COMFYUI_PATH`` points at a ComfyUI checkout).

Starts ``main.py --cpu`` on a free port with a temporary base directory whose ``custom_nodes`` holds only this
repository (under an arbitrary folder name) and whose model folders hold tiny random checkpoints, then checks
``/object_info`` and runs the API-format example workflows end to end. ``COMFYUI_PYTHON`` picks the interpreter
that has ComfyUI's requirements (default: this one).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from rs_ltxv.nodes import specs

COMFYUI = os.environ.get("COMFYUI_PATH")
pytestmark = pytest.mark.skipif(not COMFYUI, reason="COMFYUI_PATH is not set")
REPO = Path(__file__).resolve().parents[1]
PACK_FOLDER = "rs ltxv pack"  # not the package name: imports must be relative
T2V = "LTX-2.3 text to video (RS LTXV Generate).json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _post(url: str, data: dict):
    req = urllib.request.Request(url, json.dumps(data).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
    except urllib.error.HTTPError as exc:
        pytest.fail(f"POST {url} → {exc.code}: {exc.read().decode(errors='replace')[:3000]}")
    return json.loads(body) if body.strip() else {}


def _write_wav(path: Path, seconds: float = 1.0, rate: int = 44100) -> None:
    """A stereo 440 Hz tone, written with PyAV."""
    import av
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.stack([samples, samples]), format="fltp", layout="stereo")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _split_as_gguf_and_vae_files(checkpoint: Path, models: Path) -> None:
    """The tiny checkpoint as a Q8_0 GGUF transformer (+ connectors, text projection) in models/unet and separate
    video / audio VAE files in models/vae, named as the GGUF example workflow expects."""
    from gguf import GGMLQuantizationType as Q
    from safetensors import safe_open
    from safetensors.torch import save_file

    from rs_ltxv.gguf_loader.writer import write_gguf

    with safe_open(str(checkpoint), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata()
    config = json.loads(meta["config"])
    video = {k: v for k, v in tensors.items() if k.startswith("vae.")}
    audio = {k: v for k, v in tensors.items() if k.startswith(("audio_vae.", "vocoder."))}
    rest = {k: v for k, v in tensors.items() if k not in video and k not in audio}
    (models / "unet").mkdir(exist_ok=True)

    def qtype(name, t):
        return Q.Q8_0 if name.endswith(".weight") and t.ndim == 2 and t.shape[1] % 32 == 0 else Q.F32

    write_gguf(models / "unet" / "ltx-2.3-22b-distilled-Q8_0.gguf", rest, qtype,
               metadata={"config": json.dumps({"transformer": config["transformer"]})})
    save_file(video, str(models / "vae" / "LTX23_video_vae_bf16.safetensors"),
              metadata={"config": json.dumps({"vae": config["vae"]})})
    save_file(audio, str(models / "vae" / "LTX23_audio_vae_bf16.safetensors"),
              metadata={"config": json.dumps({k: config[k] for k in ("audio_vae", "vocoder")})})


LORA_TARGETS = ("transformer_blocks.0.attn1.to_q", "transformer_blocks.1.ff.net.0.proj", "audio_attn2.to_v")


def _write_lora_and_merged(checkpoint: Path, models: Path, rank: int = 2, alpha: float = 1.0) -> None:
    """A tiny LoRA (PEFT names ``diffusion_model.<layer>.lora_A/B.weight`` + ``.alpha``) and the same checkpoint with
    that LoRA merged by hand (W + alpha/rank · B·A) — what a LoRA loader must reproduce."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(checkpoint), "pt") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    gen = torch.Generator().manual_seed(7)
    lora = {}
    for name in LORA_TARGETS:
        layer = name if name.startswith("transformer_blocks") else f"transformer_blocks.1.{name}"
        key = f"model.diffusion_model.{layer}.weight"
        out_f, in_f = tensors[key].shape
        a = torch.randn(rank, in_f, generator=gen) * 0.5
        b = torch.randn(out_f, rank, generator=gen) * 0.5
        lora[f"diffusion_model.{layer}.lora_A.weight"] = a
        lora[f"diffusion_model.{layer}.lora_B.weight"] = b
        lora[f"diffusion_model.{layer}.alpha"] = torch.tensor(alpha)
        tensors[key] = tensors[key] + (alpha / rank) * (b @ a)
    save_file(lora, str(models / "loras" / "tiny-lora.safetensors"))
    save_file(tensors, str(models / "checkpoints" / "tiny-merged.safetensors"), metadata=meta)


def _write_models(base: Path) -> None:
    import av
    import torch
    from test_nodes_run import write_tiny_upsampler

    from rs_ltxv.ltx.tiny import write_tiny_checkpoint
    from rs_ltxv.ltx.tiny_parts import write_tiny_gemma

    models = base / "models"
    for sub in ("checkpoints", "text_encoders", "vae", "latent_upscale_models", "diffusion_models", "loras"):
        (models / sub).mkdir(parents=True, exist_ok=True)
    # named like the real files the example workflows reference
    write_tiny_checkpoint(models / "checkpoints" / "ltx-2.3-22b-distilled.safetensors", "2.3", dtype=torch.float32,
                          full=True)
    write_tiny_gemma(models / "text_encoders" / "tiny-gemma-3")
    write_tiny_upsampler(models / "latent_upscale_models" / "ltx-2.3-spatial-upscaler-x2-1.1.safetensors")
    _split_as_gguf_and_vae_files(models / "checkpoints" / "ltx-2.3-22b-distilled.safetensors", models)
    _write_lora_and_merged(models / "checkpoints" / "ltx-2.3-22b-distilled.safetensors", models)
    # for the core-loader example: a tiny file core's own loaders accept (see test_core_interop_comfyui.py)
    from test_core_interop_comfyui import write_core_compatible_checkpoint, write_lora
    from test_workflows_build import DEV_CKPT, DISTILLED_LORA

    sd = write_core_compatible_checkpoint(models / "checkpoints" / DEV_CKPT, "2.3")
    write_lora(models / "loras" / DISTILLED_LORA, sd)
    (base / "input").mkdir(exist_ok=True)
    image = torch.linspace(0, 255, 96 * 80 * 3).reshape(80, 96, 3).to(torch.uint8).numpy()
    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
    frame.to_image().save(base / "input" / "example.png")
    _write_wav(base / "input" / "example.wav")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfy-base")
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / PACK_FOLDER).symlink_to(REPO, target_is_directory=True)
    _write_models(base)
    port = _free_port()
    log = open(base / "comfyui.log", "w")
    proc = subprocess.Popen(
        [os.environ.get("COMFYUI_PYTHON", sys.executable), "main.py", "--cpu", "--listen", "127.0.0.1", "--port",
         str(port), "--base-directory", str(base), "--database-url", "sqlite:///:memory:", "--disable-api-nodes"],
        cwd=COMFYUI, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(f"ComfyUI exited ({proc.returncode}):\n{(base / 'comfyui.log').read_text()[-4000:]}")
            try:
                _get(f"{url}/system_stats", timeout=2)
                break
            except OSError:
                if time.time() > deadline:
                    pytest.fail("ComfyUI did not answer within 240 s")
                time.sleep(1)
        yield {"url": url, "base": base, "log": base / "comfyui.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_pack_imports_without_error(server):
    text = server["log"].read_text()
    lines = [ln for ln in text.splitlines() if PACK_FOLDER in ln]
    assert lines, text[-3000:]
    assert not any("IMPORT FAILED" in ln for ln in lines), "\n".join(lines)


def test_every_node_is_in_object_info(server):
    info = _get(f"{server['url']}/object_info")
    for node_id, spec in specs.NODES.items():
        assert node_id in info, node_id
        entry = info[node_id]
        assert entry["display_name"] == spec.display_name and entry["category"] == spec.category
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
        history = _get(f"{url}/history/{prompt_id}")
        if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
            return history[prompt_id]
        if prompt_id in history and history[prompt_id].get("status", {}).get("status_str") == "error":
            return history[prompt_id]
        time.sleep(1)
    pytest.fail(f"prompt {prompt_id} did not finish in {timeout} s")


API = sorted((REPO / "example_workflows" / "api").glob("*.json"))


def shrink(prompt: dict) -> dict:
    """Tiny sizes and steps; the tiny Gemma folder instead of the 12B file. Returns (pixel frames, size) expected
    in the saved video."""
    expect = {}
    for node in prompt.values():
        inputs = node["inputs"]
        # core's Gemma loader is hard-wired to Gemma-3 12B: our loader + encoder stand in for it on tiny weights
        if node["class_type"] == "LTXAVTextEncoderLoader":
            node["class_type"] = "RSLTXVTextEncoderLoader"
            node["inputs"] = dict(text_encoder="tiny-gemma-3", ckpt_name=inputs["ckpt_name"], dtype="auto",
                                  device="default")
        if node["class_type"] == "CLIPTextEncode":
            node["class_type"] = "RSLTXVTextEncode"
            node["inputs"] = dict(text_encoder=inputs["clip"], text=inputs["text"])
        if node["class_type"] == "RSLTXVGenerate":
            size = 128 if inputs.get("upscale") else 64
            inputs.update(width=size, height=size, num_frames=9, steps=2, upscale_steps=1)
            expect.update(frames=9, size=size)
        if node["class_type"] == "RSLTXVTextEncoderLoader":
            inputs["text_encoder"] = "tiny-gemma-3"
    for node in prompt.values():
        if node["class_type"] == "RSLTXVExtend":
            node["inputs"].update(num_new_frames=8, overlap_frames=8, steps=2)
            expect["frames"] += 8
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
    assert values[0] == (1, 5) and values[-1] == (5, 5), values
    assert all(m == 5 for _, m in values) and [v for v, _ in values] == sorted({v for v, _ in values})


def test_interrupt_stops_a_running_generate(server):
    prompt = json.loads((REPO / "example_workflows" / "api" / T2V).read_text())
    for node in prompt.values():  # long enough to still be sampling when the interrupt arrives
        if node["class_type"] == "RSLTXVGenerate":
            node["inputs"].update(width=64, height=64, num_frames=49, steps=1000, decode=False, seed=1)
        if node["class_type"] == "RSLTXVTextEncoderLoader":
            node["inputs"]["text_encoder"] = "tiny-gemma-3"
    queued = _post(f"{server['url']}/prompt", {"prompt": prompt})
    deadline = time.time() + 60
    while not _get(f"{server['url']}/queue")["queue_running"]:
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
