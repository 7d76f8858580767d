"""Live preview inside a real ComfyUI (skipped unless ``COMFYUI_PATH`` is set): RS LTXV Generate sends one preview
image per sampling step over the websocket — ComfyUI's standard binary preview message — when the user's preview
method is on, and none when it is ``none`` (the server's default, ``--preview-method none``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reference.comfyui import serve

pytestmark = pytest.mark.comfyui


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serve(tmp_path_factory)


# A websocket client without the "supports_preview_metadata" feature flag: ComfyUI sends it previews as binary
# messages ``event type 1 (PREVIEW_IMAGE) | image type (1 = JPEG, 2 = PNG) | image bytes`` (server.send_image).
WS_CLIENT = """
import asyncio, base64, json, struct, sys, uuid
import aiohttp

async def main(url, request):
    cid = str(uuid.uuid4())
    events = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url.replace("http", "ws") + "/ws?clientId=" + cid) as ws:
            async with session.post(url + "/prompt", json={**request, "client_id": cid}) as r:
                pid = (await r.json())["prompt_id"]
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    event, kind = struct.unpack(">II", msg.data[:8])
                    events.append({"type": "binary", "event": event, "image_type": kind,
                                   "data": base64.b64encode(msg.data[8:]).decode()})
                    continue
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


def _prompt(steps: int, seed: int) -> dict:
    """Our loaders (the tiny set) → RS LTXV Generate (128×64, 9 frames) → core SaveLatent."""
    ckpt = "ltx-2.3-22b-distilled.safetensors"
    return {
        "1": {"class_type": "RSLTXVModelLoader", "inputs": {"ckpt_name": ckpt, "dtype": "float32", "device": "default",
                                                            "distilled": "auto"}},
        "2": {"class_type": "RSLTXVTextEncoderLoader", "inputs": {
            "text_encoder": "tiny-gemma-3", "ckpt_name": ckpt, "dtype": "float32", "device": "default"}},
        "3": {"class_type": "RSLTXVTextEncode", "inputs": {"text_encoder": ["2", 0], "text": "a fox in the snow"}},
        "4": {"class_type": "RSLTXVTextEncode", "inputs": {"text_encoder": ["2", 0], "text": "blurry"}},
        "5": {"class_type": "RSLTXVVAELoader", "inputs": {"vae_name": ckpt, "dtype": "float32", "device": "default",
                                                          "tile_size": 0}},
        "6": {"class_type": "RSLTXVGenerate", "inputs": {
            "model": ["1", 0], "positive": ["3", 0], "negative": ["4", 0], "vae": ["5", 0], "width": 128,
            "height": 64, "num_frames": 9, "steps": steps, "cfg": 1.0, "seed": seed, "frame_rate": 25.0,
            "stg_scale": 0.0, "attention_mode": "default", "ffn_chunks": 1}},
        "7": {"class_type": "SaveLatent", "inputs": {"samples": ["6", 0], "filename_prefix": f"preview{seed}"}},
    }


def _events(server, request: dict) -> list[dict]:
    proc = subprocess.run([os.environ.get("COMFYUI_PYTHON", sys.executable), "-c", WS_CLIENT, server["url"]],
                          input=json.dumps(request), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = json.loads(proc.stdout)
    assert events[-1]["type"] == "execution_success", (events[-1], server["log"].read_text()[-3000:])
    return events


def test_generate_sends_a_preview_per_step(server):
    import base64
    import io

    import av

    events = _events(server, {"prompt": _prompt(steps=4, seed=21), "extra_data": {"preview_method": "auto"}})
    previews = [e for e in events if e["type"] == "binary"]
    assert len(previews) == 4, [e["type"] for e in events]
    for p in previews:
        assert (p["event"], p["image_type"]) == (1, 1)  # PREVIEW_IMAGE, JPEG
        with av.open(io.BytesIO(base64.b64decode(p["data"]))) as c:
            assert c.streams.video[0].codec_context.name == "mjpeg"
            frame = next(c.decode(video=0))
        # 4×2 latent cells → our 128×64 picture, which ComfyUI fits to --preview-size (512) keeping its shape
        assert (frame.width, frame.height) == (512, 256)
    # every preview comes with its step's progress message for the Generate node
    progress = [(e["data"]["value"], e["data"]["max"]) for e in events if e["type"] == "progress"
                and e["data"]["node"] == "6"]
    assert {(4, 4), (1, 4)} <= set(progress), progress


def test_no_previews_when_the_preview_method_is_none(server):
    events = _events(server, {"prompt": _prompt(steps=3, seed=22), "extra_data": {"preview_method": "none"}})
    assert not [e for e in events if e["type"] == "binary"]
    assert [e for e in events if e["type"] == "progress" and e["data"]["node"] == "6"]
