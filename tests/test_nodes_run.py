"""RS LTXV Generate / Extend node functions end to end on tiny random models of the real architecture (written as
official checkpoints and loaded with the library's loaders; no ComfyUI: the hooks are plain callables)."""

from __future__ import annotations

import pytest
import torch

from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.loading import load_prompt_encoder, load_transformer, open_checkpoint
from rs_ltxv.ltx.loading.audio import load_audio_vae
from rs_ltxv.ltx.loading.upsampler import load_upsampler
from rs_ltxv.ltx.loading.video_vae import load_video_vae
from rs_ltxv.ltx.pipeline.parts import VideoVAEAdapter
from rs_ltxv.ltx.pipeline.sampling import Cancelled
from rs_ltxv.ltx.tiny import write_tiny_checkpoint
from rs_ltxv.ltx.tiny_parts import write_tiny_gemma
from rs_ltxv.nodes.comfy_model import LTXVModule
from rs_ltxv.nodes.loaders import text_encode
from rs_ltxv.nodes.ltxv_extend import run_extend
from rs_ltxv.nodes.ltxv_generate import Hooks, run_generate

from reference.builders import write_tiny_upsampler


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    work = tmp_path_factory.mktemp("tiny")
    path = write_tiny_checkpoint(work / "tiny-ltx-2.3.safetensors", "2.3", dtype=torch.float32, full=True)
    gemma = write_tiny_gemma(work / "tiny-gemma")
    ckpt = open_checkpoint(path)
    encoder = load_prompt_encoder(gemma, ckpt, dtype=torch.float32)
    return dict(
        model=LTXVModule(load_transformer(ckpt, dtype=torch.float32), source=path),
        vae=VideoVAEAdapter(load_video_vae(path, dtype=torch.float32), None),
        audio_vae=load_audio_vae(path, dtype=torch.float32),
        positive=text_encode(encoder, "A red fox runs through the snow, birds sing.")[0],
        negative=text_encode(encoder, "blurry")[0],
    )


SMALL = dict(width=64, height=64, num_frames=9, steps=2, seed=3, frame_rate=25.0, stg_blocks="1")


def test_generate_outputs_latents_images_and_audio(tiny):
    ticks = []
    latent, audio_latent, images, audio = run_generate(
        Hooks(progress=lambda d, t: ticks.append((d, t)), cancel=lambda: False, free=lambda: ticks.append("free")),
        **tiny, **SMALL, decode=True, first_image=torch.rand(1, 80, 96, 3))
    assert ticks[0] == "free"
    assert ticks[1:] == [(1, 2), (2, 2)]
    assert latent["samples"].shape == (1, 16, 2, 2, 2)
    assert latent["frame_rate"] == 25.0
    assert audio_latent["samples"].ndim == 4
    assert audio_latent["samples"].shape[2] > 0
    assert images.shape == (9, 64, 64, 3)
    assert images.dtype == torch.float32
    assert 0.0 <= float(images.min())
    assert float(images.max()) <= 1.0
    assert float(images.std()) > 0
    assert audio["waveform"].ndim == 3
    assert audio["sample_rate"] > 0
    assert audio["waveform"].shape[-1] > 0


def test_generate_without_decode_gives_placeholders_and_is_seeded(tiny):
    out1 = run_generate(None, **tiny, **SMALL)
    out2 = run_generate(None, **tiny, **SMALL)
    assert torch.equal(out1[0]["samples"], out2[0]["samples"])
    assert out1[2].shape == (1, 64, 64, 3)
    assert float(out1[2].abs().sum()) == 0
    out3 = run_generate(None, **tiny, **{**SMALL, "seed": 4})
    assert not torch.equal(out1[0]["samples"], out3[0]["samples"])


def test_cancel_stops_the_run(tiny):
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(Cancelled):
        run_generate(Hooks(cancel=cancel), **tiny, **{**SMALL, "steps": 4})
    assert len(calls) == 2


def test_clear_errors_for_missing_parts(tiny):
    with pytest.raises(InputError, match="audio_vae is not"):
        run_generate(None, **{**tiny, "audio_vae": None}, **SMALL,
                     audio={"waveform": torch.zeros(1, 1, 16000), "sample_rate": 16000})
    with pytest.raises(InputError, match="upscale_model is not connected"):
        run_generate(None, **tiny, **SMALL, upscale=True)
    with pytest.raises(InputError, match="RS LTXV Model Loader"):
        run_generate(None, **{**tiny, "model": object()}, **SMALL)
    with pytest.raises(InputError, match="blocks 0…1"):
        run_generate(None, **tiny, **{**SMALL, "stg_blocks": "28"})


def test_generate_with_upscale_pass(tiny, tmp_path):
    upsampler = load_upsampler(write_tiny_upsampler(tmp_path / "up.safetensors"), dtype=torch.float32)
    ticks = []
    latent, _, images, _ = run_generate(
        Hooks(progress=lambda d, t: ticks.append((d, t))), **tiny,
        **{**SMALL, "width": 128, "height": 128}, upscale=True, upscale_model=upsampler, upscale_steps=2,
        upscale_cfg=1.0, upscale_denoise=0.6, decode=True)
    assert latent["samples"].shape == (1, 16, 2, 4, 4)
    assert images.shape == (9, 128, 128, 3)
    # stage 1 and stage 2 steps in one bar
    assert ticks[-1][0] == ticks[-1][1]
    assert ticks[-1][1] > 2


def test_extend_appends_frames_and_sound(tiny):
    latent, audio_latent, _, _ = run_generate(None, **tiny, **SMALL)
    args = {k: v for k, v in SMALL.items() if k not in ("width", "height", "num_frames")}
    new_latent, new_audio, images, audio = run_extend(
        None, **tiny, **args, latent=latent, audio_latent=audio_latent, num_new_frames=8, overlap_frames=8,
        decode=True)
    assert new_latent["samples"].shape == (1, 16, 3, 2, 2)
    assert torch.equal(new_latent["samples"][:, :, :1], latent["samples"][:, :, :1])
    assert new_audio["samples"].shape[2] > audio_latent["samples"].shape[2]
    assert images.shape == (17, 64, 64, 3)
    assert audio["waveform"].shape[-1] > 0
    with pytest.raises(InputError, match="upscale_model is not connected"):
        run_extend(None, **tiny, **args, latent=latent, upscale=True)


def test_the_console_says_which_attention_kernel_runs(tiny, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="rs_ltxv.nodes.ltxv_generate"):
        run_generate(None, **tiny, **SMALL, attention_mode="default", ffn_chunks=3)
    assert "RS LTXV Generate: attention sdpa, feed-forward chunks 3" in caplog.text


def _graph(node_id: str, *outputs: int) -> dict:
    """An API prompt in which a Save node consumes the given outputs of node ``node_id``."""
    return {node_id: {"class_type": "RSLTXVGenerate", "inputs": {}},
            **{f"save{i}": {"class_type": "Save", "inputs": {"x": [node_id, i]}} for i in outputs}}


def test_connected_image_output_is_decoded_even_with_decode_off(tiny):
    _, _, images, audio = run_generate(None, **tiny, **SMALL, prompt_graph=_graph("7", 2, 3), node_id="7")
    assert images.shape == (9, 64, 64, 3)  # decoded, not the one black placeholder frame
    assert float(images.std()) > 0
    assert audio["waveform"].shape[-1] > 0
    _, _, placeholder, _ = run_generate(None, **tiny, **SMALL, prompt_graph=_graph("7", 0), node_id="7")
    assert placeholder.shape == (1, 64, 64, 3)  # nothing consumes IMAGE: not decoded


@pytest.mark.parametrize(("missing", "outputs", "words"), [
    ("vae", (2,), "connect vae"),
    ("audio_vae", (3,), "connect audio_vae"),
])
def test_connected_outputs_that_cannot_be_made_are_named(tiny, missing, outputs, words):
    with pytest.raises(InputError, match=words):
        run_generate(None, **{**tiny, missing: None}, **SMALL, prompt_graph=_graph("7", *outputs), node_id="7")


def test_extend_keeps_the_clips_frame_rate_and_needs_its_audio_for_audio_out(tiny):
    latent, audio_latent, _, _ = run_generate(None, **tiny, **{**SMALL, "frame_rate": 30.0})
    assert latent["frame_rate"] == 30.0
    args = {k: v for k, v in SMALL.items() if k not in ("width", "height", "num_frames", "frame_rate")}
    new_latent, *_ = run_extend(None, **tiny, **args, frame_rate=24.0, latent=latent, audio_latent=audio_latent,
                                num_new_frames=8, overlap_frames=8)
    assert new_latent["frame_rate"] == 30.0  # the clip's rate, not the widget's
    graph = {"9": {"class_type": "RSLTXVExtend", "inputs": {}}, "s": {"inputs": {"a": ["9", 3]}}}
    with pytest.raises(InputError, match="no audio_latent"):
        run_extend(None, **tiny, **args, latent=latent, num_new_frames=8, overlap_frames=8, prompt_graph=graph,
                   node_id="9")


def test_text_encode_honours_cancel(tmp_path):
    ckpt = write_tiny_checkpoint(tmp_path / "t.safetensors", "2.3", dtype=torch.float32)
    encoder = load_prompt_encoder(write_tiny_gemma(tmp_path / "gemma"), ckpt, dtype=torch.float32, cache_size=0)
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 2  # inside Gemma's layers

    with pytest.raises(Cancelled):
        text_encode(encoder, "a fox in the snow", cancel=cancel)
    assert len(calls) == 3
    assert text_encode(encoder, "a fox in the snow", cancel=lambda: False)[0]
