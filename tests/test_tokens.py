"""Latent ↔ token helpers and positions vs the reference's patchifiers and conditioning items."""

from __future__ import annotations

import pytest
import torch

from rs_ltxv.ltx import tokens as T

from reference import ltx_core_ref as R


@pytest.mark.parametrize("grid", [(1, 2, 3), (3, 4, 2), (5, 1, 1)])
@pytest.mark.parametrize("fps", [24.0, 25.0, 30.0])
def test_video_positions(grid, fps):
    assert torch.equal(T.video_positions(2, *grid, fps), R.video_positions(2, *grid, fps))


@pytest.mark.parametrize("frame_idx", [0, 9, 16, 40])
def test_guide_positions(frame_idx):
    ours = T.video_positions(1, 2, 3, 2, 24.0, frame_offset=frame_idx)
    assert torch.equal(ours, R.guide_positions(1, 2, 3, 2, 24.0, frame_idx))


@pytest.mark.parametrize("frames", [1, 26, 126])
def test_audio_positions(frames):
    assert torch.equal(T.audio_positions(2, frames), R.audio_positions(2, frames))


def test_patchify_round_trips_match_reference():
    from ltx_core.components.patchifiers import AudioPatchifier, VideoLatentPatchifier

    video = torch.randn(2, 16, 3, 4, 5)
    assert torch.equal(T.video_to_tokens(video), VideoLatentPatchifier(1).patchify(video))
    assert torch.equal(T.tokens_to_video(T.video_to_tokens(video), 3, 4, 5), video)
    audio = torch.randn(2, 8, 26, 16)
    assert torch.equal(T.audio_to_tokens(audio), AudioPatchifier(1).patchify(audio))
    assert torch.equal(T.tokens_to_audio(T.audio_to_tokens(audio), 8, 16), audio)


@pytest.mark.parametrize("strength", [1.0, 0.3, torch.tensor([0.2, 0.9, 0.5])])
def test_guide_attention_weights(strength):
    first = T.guide_attention_weights(None, num_noisy=6, num_existing=6, num_new=3, strength=strength, batch=2)
    assert torch.equal(first, R.guide_attention_mask(6, 3, 2, strength))
    # a second guide group: groups do not see each other
    second = T.guide_attention_weights(first, num_noisy=6, num_existing=9, num_new=2, strength=0.7, batch=2)
    assert torch.equal(second, R.guide_attention_mask(6, 2, 2, 0.7, existing_mask=first))
    assert torch.all(second[:, 6:9, 9:] == 0)


def test_bad_fps():
    with pytest.raises(ValueError, match="fps"):
        T.video_positions(1, 1, 1, 1, 0)
