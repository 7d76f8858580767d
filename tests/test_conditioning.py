"""The conditioning seam: one protocol, one small class per kind, one ``StageInputs`` bundle.

Each kind is checked against what it must do to the stage's state (tokens, denoise mask, positions, attention
weights); the end-to-end equality with ltx-pipelines is in ``test_pipeline_parity.py`` / ``test_pipeline_e2e.py``.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch

from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.pipeline.common import image_conditioning
from rs_ltxv.ltx.pipeline.conditioning import (
    AudioPrefix,
    Conditioning,
    FrozenAudio,
    KeyframeGuide,
    ReplaceLatentFrames,
)
from rs_ltxv.ltx.pipeline.latents import VideoSize
from rs_ltxv.ltx.pipeline.stage import StageInputs, prepare_tracks, run_stage
from rs_ltxv.ltx.tokens import video_to_tokens

SIZE = VideoSize(17, 64, 96, 24.0)  # latent grid 3 × 2 × 3
C = 16


def _latent(frames: int = 1, seed: int = 0, h: int = 2, w: int = 3) -> torch.Tensor:
    return torch.randn(1, C, frames, h, w, generator=torch.Generator().manual_seed(seed))


def _tracks(*items: Conditioning, with_audio: bool = True):
    return prepare_tracks(StageInputs(SIZE, torch.zeros(1), channels=C, audio_channels=8, conditioning=items,
                                      with_audio=with_audio))


def test_run_stage_takes_at_most_six_parameters():
    assert len(inspect.signature(run_stage).parameters) <= 6


@pytest.mark.parametrize("item", [ReplaceLatentFrames(_latent()), KeyframeGuide(_latent(), 8), AudioPrefix(
    torch.zeros(1, 8, 2, 16)), FrozenAudio()], ids=lambda x: type(x).__name__)
def test_every_kind_is_a_frozen_conditioning(item):
    assert isinstance(item, Conditioning)
    assert dataclasses.is_dataclass(item)
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.x = 1


def test_no_conditioning_is_a_plain_fully_generated_stage():
    video, audio = _tracks()
    assert video.generated == video.latent.shape[1] == SIZE.video_tokens
    assert torch.equal(video.mask, torch.ones_like(video.mask))
    assert video.attention is None
    assert audio.latent.shape[1] == SIZE.audio_frames


def test_replace_latent_frames_writes_tokens_and_keeps_them():
    latent = _latent(seed=1)
    video, _ = _tracks(ReplaceLatentFrames(latent, latent_frame=1, strength=0.75))
    cells = 2 * 3
    tokens = video_to_tokens(latent)
    assert torch.equal(video.latent[:, cells:2 * cells], tokens)
    assert torch.equal(video.clean[:, cells:2 * cells], tokens)
    assert torch.allclose(video.mask[:, cells:2 * cells], torch.full((1, cells, 1), 0.25))
    assert torch.equal(video.mask[:, :cells], torch.ones(1, cells, 1))
    assert video.generated == SIZE.video_tokens


def test_replace_latent_frames_that_do_not_fit_are_refused():
    with pytest.raises(InputError, match="does not fit"):
        _tracks(ReplaceLatentFrames(_latent(h=3)))
    with pytest.raises(InputError, match="does not fit"):
        _tracks(ReplaceLatentFrames(_latent(frames=2), latent_frame=2))


def test_keyframe_guide_appends_tokens_at_their_time_with_attention_weights():
    video, _ = _tracks(KeyframeGuide(_latent(seed=2), pixel_frame=16, strength=0.5, attention_strength=0.25))
    n, m = SIZE.video_tokens, 6
    assert video.latent.shape[1] == n + m
    assert video.generated == n
    assert torch.allclose(video.mask[:, n:], torch.full((1, m, 1), 0.5))
    # guide tokens sit at pixel frame 16 → 16/24 s (positions hold seconds on the time axis)
    assert torch.allclose(video.positions[0, 0, n:, 0], torch.full((m,), 16 / 24))
    assert video.attention.shape == (1, n + m, n + m)
    assert torch.allclose(video.attention[0, :n, n:], torch.full((n, m), 0.25))
    assert torch.equal(video.attention[0, :n, :n], torch.ones(n, n))


def test_image_conditioning_follows_the_reference_rule():
    latent = _latent()
    assert isinstance(image_conditioning(latent, 0), ReplaceLatentFrames)
    for kwargs in ({"pixel_frame": 8}, {"pixel_frame": 0, "attention_strength": 0.5},
                   {"pixel_frame": 0, "as_guide": True}):
        assert isinstance(image_conditioning(latent, **kwargs), KeyframeGuide)


def test_audio_prefix_and_frozen_audio():
    prefix = torch.randn(1, 8, 3, 16, generator=torch.Generator().manual_seed(3))
    _, audio = _tracks(AudioPrefix(prefix, 0.8))
    assert torch.allclose(audio.mask[:, :3], torch.full((1, 3, 1), 0.2))
    assert torch.equal(audio.mask[:, 3:], torch.ones_like(audio.mask[:, 3:]))
    _, audio = _tracks(FrozenAudio())
    assert torch.equal(audio.mask, torch.zeros_like(audio.mask))


@pytest.mark.parametrize("item", [FrozenAudio(), AudioPrefix(torch.zeros(1, 8, 2, 16))], ids=lambda x: type(x).__name__)
def test_audio_kinds_without_sound_are_refused(item):
    with pytest.raises(InputError, match="with_audio"):
        _tracks(item, with_audio=False)


def test_items_apply_in_order():
    a, b = _latent(seed=4), _latent(seed=5)
    video, _ = _tracks(ReplaceLatentFrames(a), ReplaceLatentFrames(b))
    assert torch.equal(video.clean[:, :6], video_to_tokens(b))
    video, _ = _tracks(KeyframeGuide(a, 8), KeyframeGuide(b, 16))
    assert torch.equal(video.clean[:, -6:], video_to_tokens(b))
