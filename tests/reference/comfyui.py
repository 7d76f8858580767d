"""What the ComfyUI tests share: where ComfyUI is (``COMFYUI_PATH``), the repository and the model file names the
example workflows expect, and a real ComfyUI server to run them against (:func:`serve`).

The server is ``main.py --cpu`` on a free port with a temporary base directory whose ``custom_nodes`` holds only this
repository (under an arbitrary folder name) and whose model folders hold tiny random checkpoints. ``COMFYUI_PYTHON``
picks the interpreter that has ComfyUI's requirements (default: this one). Tests that need ComfyUI carry the
``comfyui`` marker; ``conftest.py`` skips them when ``COMFYUI_PATH`` is not set.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

COMFYUI = os.environ.get("COMFYUI_PATH")
REPO = Path(__file__).resolve().parents[2]
PACK_FOLDER = "rs ltxv pack"  # not the package name: imports must be relative
T2V = "LTX-2.3 text to video (RS LTXV Generate).json"
# the files the core-loader example workflow (ComfyUI's own loaders) names (``python -m rs_ltxv tiny --set`` writes
# tiny ones: rs_ltxv.ltx.tiny.TINY_SET)
DEV_CKPT = "ltx-2.3-22b-dev-fp8.safetensors"
DISTILLED_LORA = "ltx_2.3_22b_distilled_1.1_lora_dynamic_fro09_avg_rank_111_bf16.safetensors"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


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
    video / audio VAE files in models/vae, named as the GGUF example workflow expects
    (:func:`rs_ltxv.ltx.tiny.split_checkpoint`)."""
    from rs_ltxv.ltx.tiny import AUDIO_VAE, GGUF, VIDEO_VAE, split_checkpoint

    split_checkpoint(checkpoint, models / "unet" / GGUF.name, models / "vae" / VIDEO_VAE.name,
                     models / "vae" / AUDIO_VAE.name)


def write_example_video(path: Path, frames: int = 12, seed: int = 0) -> None:
    """A 96 × 80 H.264 clip (written with PyAV) of a bright square sliding over a gradient, ``frames`` frames at
    25 fps; ``seed`` moves the square's path (so two seeds are two different control videos)."""
    import torch

    from rs_ltxv.ltx.pipeline.media import write_mp4

    h, w = 80, 96
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    video = torch.zeros(frames, h, w, 3, dtype=torch.uint8)
    for t in range(frames):
        video[t, ..., 0] = (x * 255 // w).to(torch.uint8)
        video[t, ..., 2] = (y * 255 // h).to(torch.uint8)
        top, left = (7 * seed + 3 * t) % (h - 24), (11 * seed + 6 * t) % (w - 24)
        video[t, top:top + 24, left:left + 24] = 255
    write_mp4(path, video, 25.0)


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


def write_models(base: Path) -> None:
    """Under ``base/models`` the tiny set every example workflow can run from (``python -m rs_ltxv tiny --set``:
    :func:`rs_ltxv.ltx.tiny.write_tiny_set`) plus what only the tests use: the tiny Gemma as a Hugging Face folder
    (``tiny-gemma-3``), a LoRA and the checkpoint with that LoRA merged (``tiny-lora``, ``tiny-merged``); an example
    image, sound and video under ``base/input``."""
    import av
    import torch

    from rs_ltxv.ltx.tiny import CHECKPOINT, write_tiny_set
    from rs_ltxv.ltx.tiny_parts import write_tiny_gemma

    models = base / "models"
    write_tiny_set(models)
    write_tiny_gemma(models / "text_encoders" / "tiny-gemma-3")
    _write_lora_and_merged(models / CHECKPOINT.path, models)
    (base / "input").mkdir(exist_ok=True)
    image = torch.linspace(0, 255, 96 * 80 * 3).reshape(80, 96, 3).to(torch.uint8).numpy()
    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
    frame.to_image().save(base / "input" / "example.png")
    _write_wav(base / "input" / "example.wav")
    write_example_video(base / "input" / "example.mp4")


def serve(tmp_path_factory) -> Iterator[dict]:
    """Start ComfyUI with this pack and the tiny models, yield ``{"url", "base", "log"}`` once it answers, stop it
    afterwards. Use it as a module-scoped fixture: ``yield from serve(tmp_path_factory)``."""
    base = tmp_path_factory.mktemp("comfy-base")
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / PACK_FOLDER).symlink_to(REPO, target_is_directory=True)
    write_models(base)
    port = free_port()
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
                get_json(f"{url}/system_stats", timeout=2)
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
