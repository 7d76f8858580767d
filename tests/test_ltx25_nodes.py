"""LTX-2.5 through the node functions without ComfyUI (the hooks are plain callables, ComfyUI's model folders
are stood in for): RS LTXV Generate with ``num_frames`` 0 and the duration head, the VAE loader's ``decoder``, the
Duration Head Loader, and the widget checks that ComfyUI runs before a prompt."""

from __future__ import annotations

import pytest
import torch

from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.loading import load_prompt_encoder, load_transformer, open_checkpoint
from rs_ltxv.ltx.loading.audio import load_audio_vae
from rs_ltxv.ltx.pipeline.parts import DurationHeadAdapter, VideoVAEAdapter
from rs_ltxv.ltx.tiny import (
    LTX25_AUDIO_VAE,
    LTX25_DURATION_HEAD,
    LTX25_GEMMA,
    LTX25_TRANSFORMER,
    LTX25_VIDEO_VAE,
    LTX25_VIDEO_VAE_CONV,
)
from rs_ltxv.nodes import comfy_env, convert, loaders, specs
from rs_ltxv.nodes.comfy_model import LTXVModule
from rs_ltxv.nodes.ltxv_generate import run_generate

F32 = torch.float32


@pytest.fixture(scope="module")
def files(ltx25_set):
    return ltx25_set


@pytest.fixture
def folders(files, monkeypatch):
    """ComfyUI's model folders stood in for: a file name resolves to the tiny set's file."""
    by_name = {path.name: path for path in files.values()}
    monkeypatch.setattr(comfy_env, "model_path", lambda _folders, name: by_name[name])
    monkeypatch.setattr(comfy_env, "device", lambda _choice="default": torch.device("cpu"))
    return by_name


@pytest.fixture(scope="module")
def tiny(files):
    ckpt = open_checkpoint(files[LTX25_TRANSFORMER.name])
    encoder = load_prompt_encoder(files[LTX25_GEMMA.name], ckpt, dtype=F32)
    from rs_ltxv.ltx.loading.duration_head import load_duration_head
    from rs_ltxv.ltx.loading.video_vae import load_video_vae

    return dict(
        model=LTXVModule(load_transformer(ckpt, dtype=F32), distilled=True, source=files[LTX25_TRANSFORMER.name]),
        vae=VideoVAEAdapter(load_video_vae(files[LTX25_VIDEO_VAE_CONV.name], dtype=F32), None),
        audio_vae=load_audio_vae(files[LTX25_AUDIO_VAE.name], dtype=F32),
        positive=loaders.text_encode(encoder, "A red fox runs through the snow, birds sing.")[0],
        negative=loaders.text_encode(encoder, "blurry")[0],
        duration_head=DurationHeadAdapter(load_duration_head(files[LTX25_DURATION_HEAD.name], dtype=F32)),
    )


#: the LTX-2.5 distilled settings of the example workflows, tiny size, 4 fps so the predicted length stays short
SMALL = dict(width=64, height=64, steps=8, cfg=1.0, stg_scale=0.0, audio_cfg=1.0, modality_scale=1.0, rescale=0.0,
             sampler_name="euler_ancestral", frame_rate=4.0, seed=3, crf=18)


def test_generate_predicts_the_length_and_decodes_frames_and_sound(tiny):
    latent, audio_latent, images, audio = run_generate(None, **tiny, **SMALL, num_frames=0, decode=True)
    frames = images.shape[0]
    assert frames % 8 == 1
    assert 4 <= frames <= 81  # the duration head's 1…20 s at 4 fps
    assert latent["samples"].shape[2] == 1 + (frames - 1) // 8
    assert latent["frame_rate"] == 4.0
    assert audio_latent["samples"].shape[2] > 0
    assert audio["waveform"].shape[-1] > 0


def test_num_frames_zero_needs_the_duration_head(tiny):
    with pytest.raises(InputError, match="Duration Head Loader"):
        run_generate(None, **{**tiny, "duration_head": None}, **SMALL, num_frames=0)
    with pytest.raises(InputError, match="Duration Head Loader"):
        run_generate(None, **{**tiny, "duration_head": object()}, **SMALL, num_frames=9)
    with pytest.raises(InputError, match="middle_image"):
        run_generate(None, **tiny, **SMALL, num_frames=0, middle_image=torch.rand(1, 64, 64, 3))


def test_widget_checks_take_zero_frames_and_refuse_other_counts():
    assert convert.validate_widgets(specs.GENERATE, {"num_frames": 0}) is None
    assert convert.validate_widgets(specs.GENERATE, {"num_frames": 97}) is None
    assert "97 or 105" in convert.validate_widgets(specs.GENERATE, {"num_frames": 100})
    assert convert.validate_widgets(specs.GENERATE, {"num_frames": 8})


def test_vae_loader_decoder_choice(folders):
    (conv,) = loaders.load_video_vae(LTX25_VIDEO_VAE_CONV.name, dtype="float32", decoder="auto")
    assert isinstance(conv, VideoVAEAdapter)
    with pytest.raises(InputError, match=r"ltx-2\.5-video-vae-bf16"):
        loaders.load_video_vae(LTX25_VIDEO_VAE_CONV.name, dtype="float32", decoder="diffusion")
    (diffusion,) = loaders.load_video_vae(LTX25_VIDEO_VAE.name, dtype="float32", decoder="auto")
    assert (conv.decoder_kind, diffusion.decoder_kind) == ("vae", "diffusion")
    pixels = diffusion.decode(torch.randn(1, 16, 2, 1, 1))
    assert pixels.shape == (1, 3, 9, 32, 32)


def test_duration_head_loader(folders, tiny):
    (head,) = loaders.load_duration_head(LTX25_DURATION_HEAD.name)
    contexts = convert.conditioning_to_contexts(tiny["positive"], "positive")
    frames = head(contexts, 24.0, 1.0, 20.0)
    assert frames % 8 == 1
    assert 24 <= frames <= 481
    with pytest.raises(Exception, match="duration head"):
        loaders.load_duration_head(LTX25_AUDIO_VAE.name)


def test_num_frames_zero_messages_follow_the_model_and_audio():
    """0 with audio needs no head (the audio's length); 0 on an LTX-2.3 model without audio asks for a number."""
    import numpy as np

    from rs_ltxv.ltx.config import Version
    from rs_ltxv.ltx.pipeline.request import Request
    from rs_ltxv.nodes.ltxv_generate import duration_head

    spec = specs.GENERATE
    silent = Request(prompt="a fox", frames=0)
    with pytest.raises(InputError, match=r"LTX-2\.3 model has none: set num_frames"):
        duration_head(spec, {}, silent, Version.LTX23)
    with pytest.raises(InputError, match="connect RS LTXV Duration Head Loader"):
        duration_head(spec, {}, silent, Version.LTX25)
    with_audio = Request(prompt="a fox", frames=0, audio=torch.from_numpy(np.zeros((2, 16000), dtype=np.float32)),
                         audio_sample_rate=16000)
    assert duration_head(spec, {}, with_audio, Version.LTX23) is None
    assert duration_head(spec, {}, Request(prompt="a fox", frames=9), Version.LTX23) is None
