"""``python -m rs_ltxv``: tiny checkpoints, ``info`` on them and on the reference's files, and clean errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from rs_ltxv.__main__ import main
from rs_ltxv.ltx.loading import load_text_connectors, load_transformer
from rs_ltxv.ltx.tiny import write_tiny_checkpoint


@pytest.mark.parametrize("version", ["2.0", "2.3"])
def test_tiny_checkpoint_loads_and_runs(tmp_path, version):
    from rs_ltxv.ltx import tokens as T
    from rs_ltxv.ltx.transformer import StreamInput

    path = write_tiny_checkpoint(tmp_path / "t.safetensors", version)
    model = load_transformer(path, dtype=torch.float32)
    text = load_text_connectors(path, dtype=torch.float32)
    ctx = text([torch.randn(1, 8, 24) for _ in range(3)], torch.ones(1, 8, dtype=torch.int64))
    video = StreamInput(torch.randn(1, 6, 128), torch.tensor([0.5]), torch.full((1, 6), 0.5),
                        T.video_positions(1, 1, 2, 3, 24.0), ctx.video)
    audio = StreamInput(torch.randn(1, 4, 128), torch.tensor([0.5]), torch.full((1, 4), 0.5),
                        T.audio_positions(1, 4), ctx.audio)
    v, a = model(video, audio)
    assert v.shape == (1, 6, 128)
    assert a.shape == (1, 4, 128)
    assert torch.isfinite(v).all()


def test_info_text_and_json(pair, capsys):
    assert main(["info", str(pair.path)]) == 0
    out = capsys.readouterr().out
    assert {"2.0": "LTX-2 ", "2.3": "LTX-2.3 "}[pair.variant] in out
    assert "transformer" in out
    assert "video_connector" in out
    assert main(["info", str(pair.path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    n_params = sum(p.numel() for p in pair.ref.transformer.parameters())
    assert d["components"]["transformer"]["parameters"] == n_params
    assert d["components"]["transformer"]["dtypes"] == {"F32": d["components"]["transformer"]["tensors"]}


def test_info_error_exit_code(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 4)
    proc = subprocess.run([sys.executable, "-m", "rs_ltxv", "info", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "error:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_info_names_what_a_model_part_file_holds(tmp_path, capsys):
    """Split VAE, audio VAE, upsampler, LoRA and Gemma files (as `tiny --set` writes them) are described."""
    from rs_ltxv.ltx.tiny import TINY_SET, write_tiny_set

    paths = dict(zip((f.name for f in TINY_SET), write_tiny_set(tmp_path), strict=True))
    expected = {"LTX23_video_vae_bf16.safetensors": "video VAE", "LTX23_audio_vae_bf16.safetensors": "audio VAE",
                "ltx-2.3-spatial-upscaler-x2-1.1.safetensors": "latent upsampler",
                "gemma_3_12B_it.safetensors": "Gemma text encoder"}
    for name, kind in expected.items():
        assert main(["info", str(paths[name])]) == 0
        assert f"holds:         {kind}" in capsys.readouterr().out
    lora = next(p for n, p in paths.items() if "lora" in n)
    assert main(["info", str(lora)]) == 0
    assert "holds:         LoRA" in capsys.readouterr().out
