"""Slice-local preprocessing: RoPE and modulation built for half of the tokens equal the full run's tensors."""

from __future__ import annotations

import pytest
import torch

from rs_ltxv.ltx.transformer import StreamInput

from reference import ltx_core_ref as R


def _inputs(pair):
    video = R.random_modality(pair.ref, "video", batch=2, tokens_or_grid=(4, 2, 3), text_len=16, sigma=[0.9, 0.4])
    audio = R.random_modality(pair.ref, "audio", batch=2, tokens_or_grid=11, text_len=16, sigma=[0.7, 0.3], seed=1)
    mask = torch.ones(2, 24)
    mask[:, :6] = 0.0
    mask[0, 20:] = 0.25
    video["timesteps"] = mask * video["sigma"][:, None]
    return StreamInput(**video), StreamInput(**audio)


@pytest.mark.parametrize("stream", ["video", "audio"])
def test_halves_equal_full(pair, stream):
    video, audio = _inputs(pair)
    with torch.no_grad():
        full_v, full_a = pair.model.prepare(video, audio)
        full = full_v if stream == "video" else full_a
        s = video if stream == "video" else audio
        total = s.latent.shape[1]
        for start, stop in ((0, total // 2), (total // 2, total)):
            part_in = s.slice_tokens(start, stop)
            part_v, part_a = pair.model.prepare(part_in, audio) if stream == "video" else \
                pair.model.prepare(video, part_in)
            part = part_v if stream == "video" else part_a
            assert part.x.shape[1] == stop - start
            torch.testing.assert_close(part.x, full.x[:, start:stop], rtol=0, atol=1e-6)
            # RoPE tables are built for the slice only and equal the full tables' rows
            assert part.rope.cos.shape[-2 if part.rope.cos.ndim == 4 else 1] == stop - start
            ref_rope = full.rope.slice_tokens(start, stop)
            torch.testing.assert_close(part.rope.cos, ref_rope.cos, rtol=0, atol=0)
            torch.testing.assert_close(part.rope.sin, ref_rope.sin, rtol=0, atol=0)
            cross = full.cross_rope.slice_tokens(start, stop)
            torch.testing.assert_close(part.cross_rope.cos, cross.cos, rtol=0, atol=0)
            # per-token modulation (AdaLN rows) and output embedding
            torch.testing.assert_close(part.ada.per_token().expand(2, stop - start, -1),
                                       full.ada.per_token().expand(2, total, -1)[:, start:stop], rtol=0, atol=1e-6)
            torch.testing.assert_close(part.out_emb.per_token().expand(2, stop - start, -1),
                                       full.out_emb.per_token().expand(2, total, -1)[:, start:stop], rtol=0, atol=1e-6)
            # the slice's modulation stores one row per distinct timestep of the slice, not one per token
            assert part.ada.rows.shape[0] <= max(2, stop - start)


def test_modulation_rows_are_compact(pair):
    """A uniform-timestep stream keeps one modulation row per batch item instead of one per token."""
    video, audio = _inputs(pair)
    with torch.no_grad():
        v, a = pair.model.prepare(video, audio)
    assert a.ada.index is None
    assert a.ada.rows.shape[0] == 2
    assert v.ada.index is not None
    assert v.ada.rows.shape[0] <= 5  # {0, 0.9, 0.4, 0.225, ...} distinct values
