"""The "LTX-2.5 text to video" example in a real ComfyUI (skipped unless ``COMFYUI_PATH`` points at a ComfyUI
checkout): the tiny LTX-2.5 set (``python -m rs_ltxv tiny DIR --set``) under the official file names, the Gemma-4
text encoder, the diffusion decoder, the 2× pass and the duration head choosing the length (``num_frames`` 0), to an
MP4 with sound."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from reference.comfyui import REPO, get_json, serve

pytestmark = pytest.mark.comfyui

EXAMPLE = REPO / "example_workflows" / "api" / "LTX-2.5 text to video (RS LTXV Generate).json"


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


def _wait(url: str, prompt_id: str, timeout: float = 300) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        entry = get_json(f"{url}/history/{prompt_id}").get(prompt_id)
        if entry and (entry.get("status", {}).get("completed") is not None
                      or entry.get("status", {}).get("status_str") == "error"):
            return entry
        time.sleep(1)
    pytest.fail(f"prompt {prompt_id} did not finish in {timeout} s")


def test_ltx25_text_to_video_example_makes_an_mp4_with_sound(server):
    import av

    prompt = json.loads(EXAMPLE.read_text())
    generate = next(n for n in prompt.values() if n["class_type"] == "RSLTXVGenerate")
    assert generate["inputs"]["num_frames"] == 0  # the example lets the duration head choose the length
    # tiny size; 2 fps keeps the predicted 1…20 s at most 41 frames
    generate["inputs"].update(width=128, height=128, frame_rate=2.0)
    queued = _post(f"{server['url']}/prompt", {"prompt": prompt})
    entry = _wait(server["url"], queued["prompt_id"])
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"]["messages"])[-3000:]
    saved = [f for out in entry["outputs"].values() for key in ("images", "videos", "animated")
             for f in out.get(key, [])]
    assert saved, entry["outputs"]
    path = server["base"] / "output" / saved[0].get("subfolder", "") / saved[0]["filename"]
    with av.open(str(path)) as container:
        assert container.streams.audio, "no audio stream in the saved video"
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (128, 128)
        frames = sum(1 for _ in container.decode(video=0))
    assert frames % 8 == 1
    assert 9 <= frames <= 41
