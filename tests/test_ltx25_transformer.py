"""LTX-2.5 transformer vs diffusers 0.42.1 (``ff_bias=False``, ``keyframes_abs_pos_embedding``) on a tiny random
checkpoint, float32: plain text-to-video, first-frame conditioning (per-token timesteps), appended guide tokens and
marked slot-like tokens; the keyframe marker changes the output (2.5) or is ignored (2.3); our pipeline marks what
ltx-core 1.2.0 marks (first latent frame, kept under in-place conditioning; guides and references unmarked); the
sequence-parallel slice carries the marker."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from rs_ltxv.ltx.loading import load_transformer, open_checkpoint
from rs_ltxv.ltx.pipeline.conditioning import KeyframeGuide, ReferenceVideo, ReplaceLatentFrames
from rs_ltxv.ltx.pipeline.denoiser import Denoiser
from rs_ltxv.ltx.pipeline.latents import VideoSize
from rs_ltxv.ltx.pipeline.stage import StageInputs, prepare_tracks
from rs_ltxv.ltx.pipeline.track import Track
from rs_ltxv.ltx.text.processor import TextContexts
from rs_ltxv.ltx.tiny import write_tiny_checkpoint
from rs_ltxv.ltx.tokens import audio_positions, video_positions
from rs_ltxv.ltx.transformer import StreamInput

from conftest import assert_close
from reference import diffusers_ref as D

GRID = (3, 2, 3)  # latent frames, rows, columns: 6 tokens per latent frame
PER_FRAME = GRID[1] * GRID[2]
AUDIO_FRAMES = 9
FPS = 24.0


class Tiny:
    """A tiny 2.5 (and 2.3) checkpoint, ours loaded from it and diffusers' twin on the same weights."""

    def __init__(self, directory) -> None:
        self.path = write_tiny_checkpoint(directory / "tiny-2.5.safetensors", "2.5", seed=3, dtype=torch.float32)
        self.ckpt = open_checkpoint(self.path)
        self.model = load_transformer(self.ckpt, dtype=torch.float32)
        self.ref = D.build_diffusers_transformer(self.ckpt.file.config()["transformer"], load_file(self.path))
        path23 = write_tiny_checkpoint(directory / "tiny-2.3.safetensors", "2.3", seed=3, dtype=torch.float32)
        self.model23 = load_transformer(path23, dtype=torch.float32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Tiny:
    return Tiny(tmp_path_factory.mktemp("ltx25"))


def _streams(model, *, batch: int = 2, extra: int = 0, seed: int = 0) -> tuple[dict, dict]:
    """Random inputs: the video grid plus ``extra`` appended tokens (positions of latent frame 0 shifted later),
    marker on the first latent frame, audio of :data:`AUDIO_FRAMES` frames."""
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    n = GRID[0] * PER_FRAME
    sigma = torch.tensor([0.7, 0.25][:batch])
    positions = video_positions(batch, *GRID, FPS)
    if extra:
        guide = video_positions(batch, 1, GRID[1], GRID[2], FPS, frame_offset=9)
        positions = torch.cat([positions, guide.repeat(1, 1, extra // PER_FRAME, 1)], 2)
    marker = torch.zeros(batch, n + extra, 1)
    marker[:, :PER_FRAME] = 1.0
    video = dict(latent=torch.randn(batch, n + extra, cfg.in_channels, generator=g), sigma=sigma,
                 timesteps=sigma[:, None].expand(batch, n + extra).clone(), positions=positions,
                 context=torch.randn(batch, 16, cfg.inner_dim, generator=g), keyframes_mask=marker)
    a_sigma = torch.tensor([0.5, 0.1][:batch])
    audio = dict(latent=torch.randn(batch, AUDIO_FRAMES, cfg.audio_in_channels, generator=g), sigma=a_sigma,
                 timesteps=a_sigma[:, None].expand(batch, AUDIO_FRAMES).clone(),
                 positions=audio_positions(batch, AUDIO_FRAMES),
                 context=torch.randn(batch, 16, cfg.audio_inner_dim, generator=g))
    return video, audio


def _ours(model, video, audio):
    with torch.no_grad():
        return model(StreamInput(**video), StreamInput(**audio))


def _check(tiny, video, audio, what):
    dv, da = D.run_diffusers_transformer(tiny.ref, video, audio)
    ov, oa = _ours(tiny.model, video, audio)
    assert_close(ov, dv, f"video vs diffusers ({what})")
    assert_close(oa, da, f"audio vs diffusers ({what})")
    return ov


def test_checkpoint_is_ltx25_without_video_ff_biases(tiny):
    cfg = tiny.model.config
    assert tiny.ckpt.version.value == "2.5"
    assert tiny.model.keyframes_abs_pos_embedding.shape == (1, cfg.inner_dim)
    block = tiny.model.transformer_blocks[0]
    assert block.ff.net[0].proj.bias is None
    assert block.ff.net[2].bias is None
    assert block.audio_ff.net[0].proj.bias is not None  # the audio feed-forward keeps its biases


def test_text_to_video_matches_diffusers(tiny):
    video, audio = _streams(tiny.model)
    _check(tiny, video, audio, "text to video, first frame marked")


def test_first_frame_conditioning_matches_diffusers(tiny):
    video, audio = _streams(tiny.model, seed=1)
    video["timesteps"][:, :PER_FRAME] = 0.0  # the clean first frame keeps its mark (in-place conditioning)
    video["timesteps"][1, PER_FRAME:2 * PER_FRAME] *= 0.5
    _check(tiny, video, audio, "first-frame conditioning")


def test_guide_tokens_match_diffusers(tiny):
    video, audio = _streams(tiny.model, extra=PER_FRAME, seed=2)
    video["timesteps"][:, -PER_FRAME:] = 0.0  # an unmarked clean guide frame at pixel frame 9
    mask = torch.ones(2, 24, 24)
    mask[:, 18:, 6:18] = 0.0  # 0/1 weights only: diffusers' bias is (1 − w)·−1e4, ours log(w)
    mask[:, 6:18, 18:] = 0.0
    video["attention_mask"] = mask
    _check(tiny, video, audio, "appended guide tokens with an attention mask")


def test_marked_slot_tokens_match_diffusers(tiny):
    video, audio = _streams(tiny.model, extra=PER_FRAME, seed=4)
    video["keyframes_mask"][:, -PER_FRAME:] = 1.0  # a generated keyframe slot is marked (ltx-core / diffusers DFR)
    video["keyframes_mask"][1, 2] = 0.0  # any pattern: the marker is per token
    _check(tiny, video, audio, "marked slot tokens")


def test_marker_changes_the_ltx25_output_only(tiny):
    video, audio = _streams(tiny.model, seed=5)
    unmarked = dict(video, keyframes_mask=None)
    marked_out = _ours(tiny.model, video, audio)[0]
    plain_out = _ours(tiny.model, unmarked, audio)[0]
    dv, _ = D.run_diffusers_transformer(tiny.ref, unmarked, audio)
    assert_close(plain_out, dv, "video vs diffusers (no marker)")
    assert (marked_out - plain_out).abs().max() > 1e-3
    video23 = dict(video, context=video["context"][..., :tiny.model23.config.inner_dim])
    same = _ours(tiny.model23, video23, audio)[0]
    assert torch.equal(same, _ours(tiny.model23, dict(video23, keyframes_mask=None), audio)[0])  # 2.3: ignored


def test_sequence_parallel_slice_carries_the_marker(tiny):
    video, audio = _streams(tiny.model, seed=6)
    full = StreamInput(**video)
    emb = tiny.model.keyframes_abs_pos_embedding
    with torch.no_grad():
        whole, _ = tiny.model.prepare(full, StreamInput(**audio))
        for start, stop in ((0, 4), (4, 10), (10, 18)):
            local = full.slice_tokens(start, stop)
            part, _ = tiny.model.prepare(local, StreamInput(**audio))
            assert_close(part.x, whole.x[:, start:stop], f"tokens {start}:{stop}")
            bare, _ = tiny.model.prepare(replace(local, keyframes_mask=None),
                                         StreamInput(**audio))
            marked = torch.arange(start, stop) < PER_FRAME
            assert_close(part.x - bare.x, (marked[None, :, None] * emb).expand(2, -1, -1), f"embedding {start}:{stop}")
    assert full.slice_tokens(4, 10).keyframes_mask.tolist() == [[1, 1, 0, 0, 0, 0]] * 2


def _stage_tracks(tiny, conditioning) -> tuple[Track, Track | None]:
    size = VideoSize(frames=17, height=64, width=96, fps=FPS, batch=1)
    assert size.latent_grid == GRID
    return prepare_tracks(StageInputs(size=size, sigmas=torch.tensor([1.0, 0.0]), conditioning=conditioning,
                                      channels=tiny.model.config.in_channels))


def test_pipeline_marks_what_ltx_core_marks(tiny):
    g = torch.Generator().manual_seed(7)
    c = tiny.model.config.in_channels
    image = torch.randn(1, c, 1, 2, 3, generator=g)
    conditioning = (ReplaceLatentFrames(image), KeyframeGuide(image, pixel_frame=16, attention_strength=0.5),
                    ReferenceVideo(torch.randn(1, c, 2, 2, 3, generator=g)))
    video, audio = _stage_tracks(tiny, conditioning)
    n = GRID[0] * PER_FRAME
    expected = torch.zeros(1, n + PER_FRAME + 2 * PER_FRAME, 1)
    expected[:, :PER_FRAME] = 1.0  # the first latent frame, also under image conditioning; guides / references: 0
    assert torch.equal(video.keyframes, expected)
    assert torch.equal(video.mask[:, :PER_FRAME], torch.zeros(1, PER_FRAME, 1))  # it is conditioned in place
    assert audio is not None
    assert audio.keyframes is None
    assert torch.equal(video.without_guides().keyframes, expected[:, :n])


def test_denoiser_passes_the_marker(tiny):
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, video, audio, ptb=None, options=None):
            seen.append(video)
            return tiny.model(video, audio, ptb, options)

    video, audio = _stage_tracks(tiny, ())
    g = torch.Generator().manual_seed(8)
    ctx = TextContexts(torch.randn(1, 4, tiny.model.config.inner_dim, generator=g),
                       torch.randn(1, 4, tiny.model.config.audio_inner_dim, generator=g), torch.ones(1, 4))
    Denoiser(Spy(), ctx)(video, audio, torch.tensor(0.5), 0)
    assert seen
    assert torch.equal(seen[0].keyframes_mask, video.keyframes)


@pytest.mark.parametrize(("num_pixel_frames", "end"), [(None, 24), (1, 17)])
def test_single_frame_guide_spans_one_pixel_frame(tiny, num_pixel_frames, end):
    image = torch.randn(1, tiny.model.config.in_channels, 1, 2, 3, generator=torch.Generator().manual_seed(9))
    video, _ = _stage_tracks(tiny, (KeyframeGuide(image, pixel_frame=16, num_pixel_frames=num_pixel_frames),))
    guide_time = video.positions[0, 0, -PER_FRAME:]  # (start, end) seconds of the guide tokens
    expected = torch.tensor([16.0, end]).div(FPS).expand(PER_FRAME, 2)  # ltx-core 1.2.0 narrows to [t, t + 1)
    assert torch.equal(guide_time, expected)
