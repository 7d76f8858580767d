"""``python -m rs_ltxv submit`` against a real ComfyUI (skipped unless ``COMFYUI_PATH`` is set).

Runs against ``reference.comfyui.serve`` (ComfyUI ``main.py --cpu`` with the pack and tiny checkpoints); the example
is shrunk to a tiny run through ``--set`` overrides, so those are exercised end to end too.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from reference.comfyui import REPO, T2V, serve

pytestmark = pytest.mark.comfyui
EXAMPLE = REPO / "example_workflows" / "api" / T2V
TINY = ["--set", "7.width=64", "--set", "7.height=64", "--set", "7.num_frames=9", "--set", "7.steps=2",
        "--set", "RSLTXVTextEncoderLoader.text_encoder=tiny-gemma-3",  # by class_type
        "--set", "Prompt.text=a small red square, sound: a soft beep"]  # by title


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serve(tmp_path_factory)


def _submit(server_info, *extra, prompt=EXAMPLE):
    return subprocess.run([sys.executable, "-m", "rs_ltxv", "submit", str(prompt), "--server", server_info["url"],
                           *extra], capture_output=True, text=True, timeout=300, cwd=REPO.parent)


def test_submit_downloads_a_playable_mp4(server, tmp_path):
    import av

    proc = _submit(server, *TINY, "--set", "7.seed=5", "-o", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "step 2/2" in proc.stdout, proc.stdout  # websocket progress of the Generate node
    assert "node 7 (RS LTXV Generate)" in proc.stdout, proc.stdout
    saved = [line.removeprefix("saved ") for line in proc.stdout.splitlines() if line.startswith("saved ")]
    assert len(saved) == 1, proc.stdout
    path = tmp_path / "out" / "video" / saved[0].rsplit("/", 1)[-1]
    assert saved[0] == str(path)
    assert path.suffix == ".mp4"
    # the same bytes as the file ComfyUI wrote
    assert path.read_bytes() == (server["base"] / "output" / "video" / path.name).read_bytes()
    with av.open(str(path)) as container:
        assert container.streams.video
        assert container.streams.audio
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (64, 64)
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 9


def test_submit_without_websocket_polls_the_history(server, tmp_path):
    proc = _submit(server, *TINY, "--set", "7.seed=6", "--no-websocket", "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "step " not in proc.stdout
    saved = [line.removeprefix("saved ") for line in proc.stdout.splitlines() if line.startswith("saved ")]
    assert len(saved) == 1
    assert saved[0].endswith(".mp4")


def test_submit_reports_a_refused_prompt(server, tmp_path):
    proc = _submit(server, *TINY, "--set", "7.steps=0", "-o", str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "refused" in proc.stderr
    assert "node 7 (RS LTXV Generate)" in proc.stderr
    assert "steps" in proc.stderr
    assert not any(tmp_path.iterdir())


def test_submit_reports_the_failing_node(server, tmp_path):
    """A setting only the model can judge (block 99 of a 2-block transformer) fails while the node runs."""
    proc = _submit(server, *TINY, "--set", "7.stg_scale=1.0", "--set", "7.stg_blocks=99", "-o", str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "node 7 (RS LTXV Generate) failed" in proc.stderr, proc.stderr
    assert "STG block(s) [99] do not exist" in proc.stderr, proc.stderr


def test_submit_reports_a_prompt_refused_before_running(server, tmp_path):
    """A malformed setting is refused by ComfyUI's validation (our VALIDATE_INPUTS) before anything runs."""
    proc = _submit(server, *TINY, "--set", "7.stg_scale=1.0", "--set", "7.stg_blocks=abc", "-o", str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "ComfyUI refused the prompt" in proc.stderr, proc.stderr
    assert "'abc' is not a block number" in proc.stderr, proc.stderr
