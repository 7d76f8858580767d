"""Feature extractor V1/V2 + embeddings connectors vs ltx-core's EmbeddingsProcessor (left-padded batches)."""

from __future__ import annotations

import pytest
import torch

from conftest import assert_close
from reference import ltx_core_ref as R


@pytest.mark.parametrize("n_valid", [[11, 16], [1, 7], [16, 16]], ids=["mixed", "short", "full"])
def test_text_path(pair, n_valid):
    hidden = pair.ref.config["transformer"]["caption_channels"]
    states, mask = R.tiny_gemma_hidden_states(2, 16, n_valid, hidden, pair.ref.num_gemma_states, seed=4)
    rv, ra, rmask = R.run_text_path(pair.ref, states, mask)
    with torch.no_grad():
        out = pair.text(states, mask)
    assert_close(out.video, rv, f"{pair.variant} video context")
    assert_close(out.audio, ra, f"{pair.variant} audio context")
    assert torch.equal(out.mask, rmask.to(out.mask.dtype))


def test_stacked_input_equals_list(pair):
    hidden = pair.ref.config["transformer"]["caption_channels"]
    states, mask = R.tiny_gemma_hidden_states(1, 16, 9, hidden, pair.ref.num_gemma_states, seed=6)
    with torch.no_grad():
        a = pair.text(states, mask)
        b = pair.text(torch.stack(states, dim=-1), mask)
    assert torch.equal(a.video, b.video)
    assert torch.equal(a.audio, b.audio)


def test_contexts_drive_the_transformer(pair):
    """The connector outputs have the widths the transformer of the same checkpoint expects."""
    hidden = pair.ref.config["transformer"]["caption_channels"]
    states, mask = R.tiny_gemma_hidden_states(1, 16, 9, hidden, pair.ref.num_gemma_states, seed=7)
    with torch.no_grad():
        ctx = pair.text(states, mask)
    assert (ctx.video.shape[-1], ctx.audio.shape[-1]) == pair.model.context_dim


def test_sequence_not_multiple_of_registers_is_a_clear_error(pair):
    from rs_ltxv.ltx.errors import InputError

    hidden = pair.ref.config["transformer"]["caption_channels"]
    states, mask = R.tiny_gemma_hidden_states(1, 12, 5, hidden, pair.ref.num_gemma_states, seed=8)
    with pytest.raises(InputError, match="multiple of"):
        pair.text(states, mask)
