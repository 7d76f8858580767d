"""Our Gemma-3 text model vs ``transformers``' ``Gemma3TextModel`` on tiny random configs (float32, all hidden
states), with sequences longer than the sliding window and with left padding."""

from __future__ import annotations

import pytest
import torch
from transformers import Gemma3TextConfig

from rs_ltxv.ltx.errors import ConfigError, InputError
from rs_ltxv.ltx.loading.gemma import build_gemma
from rs_ltxv.ltx.text.gemma import GemmaTextModel
from rs_ltxv.ltx.text.gemma_config import GEMMA3_12B, GemmaConfig, RopeSpec

from conftest import assert_close
from reference import gemma_ref as G


def ours_from(hf) -> GemmaTextModel:
    cfg = GemmaConfig.from_hf_dict(hf.config.to_dict())
    return build_gemma(cfg, hf.state_dict(), dtype=torch.float32)


def left_padded(batch_valid: list[int], length: int, vocab: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (len(batch_valid), length), generator=g)
    mask = torch.zeros(len(batch_valid), length, dtype=torch.int64)
    for row, n in enumerate(batch_valid):
        mask[row, length - n:] = 1
        ids[row, : length - n] = 0
    return ids, mask


def test_config_reads_both_rope_formats():
    hf = G.tiny_hf_config()
    ours = GemmaConfig.from_hf_dict(hf.to_dict())
    assert ours.layer_types == tuple(hf.layer_types)
    assert ours.layer_types.count("full_attention") == 1
    assert ours.layer_types[5] == "full_attention"
    assert ours.rope_global == RopeSpec(10_000.0, 8.0)
    assert ours.rope_local == RopeSpec(100.0, 1.0)
    old = {"model_type": "gemma3", "text_config": {"hidden_size": 3840, "intermediate_size": 15360,
                                                   "num_hidden_layers": 48, "num_attention_heads": 16,
                                                   "num_key_value_heads": 8, "sliding_window": 1024,
                                                   "rope_scaling": {"factor": 8.0, "rope_type": "linear"}}}
    assert GemmaConfig.from_hf_dict(old) == GEMMA3_12B
    back = Gemma3TextConfig(**GEMMA3_12B.to_hf_dict())
    assert GemmaConfig.from_hf_dict(back.to_dict()) == GEMMA3_12B


def test_config_errors_are_clear():
    with pytest.raises(ConfigError, match="gemma3_text"):
        GemmaConfig.from_hf_dict({"model_type": "llama"})
    with pytest.raises(ConfigError, match="RoPE type"):
        GemmaConfig.from_hf_dict({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}})
    with pytest.raises(ConfigError, match="num_key_value_heads"):
        GemmaConfig(num_attention_heads=8, num_key_value_heads=3).validate()


@pytest.mark.parametrize("valid", [[13, 13], [13, 6], [2, 9]], ids=["full", "left-padded", "short"])
def test_hidden_states_match_transformers(valid):
    hf = G.tiny_hf_gemma(seed=1)
    ours = ours_from(hf)
    ids, mask = left_padded(valid, 13, hf.config.vocab_size, seed=2)  # 13 tokens > window 4: both layer kinds
    ref = G.run_hf(hf, ids, mask)
    with torch.no_grad():
        out = ours(ids, mask)
    assert len(out) == len(ref) == hf.config.num_hidden_layers + 1
    keep = mask.bool()
    for i, (o, r) in enumerate(zip(out, ref, strict=True)):
        # transformers' sdpa path fills fully masked (padding) query rows its own way; those rows are never used
        assert_close(o[keep], r[keep], f"hidden state {i}")


def test_padding_rows_match_eager_attention():
    """With eager attention (fully masked rows attend uniformly, like ours) even the padding rows agree."""
    hf = G.tiny_hf_gemma(seed=3, attn="eager")
    ours = ours_from(hf)
    ids, mask = left_padded([11, 5], 11, hf.config.vocab_size, seed=4)
    for i, (o, r) in enumerate(zip(ours(ids, mask), G.run_hf(hf, ids, mask), strict=True)):
        assert_close(o, r, f"hidden state {i}")


def test_sliding_window_and_global_rope_matter():
    """The test above could not pass by accident: changing the window or the global RoPE changes the outputs."""
    hf = G.tiny_hf_gemma(seed=5)
    ids, mask = left_padded([13], 13, hf.config.vocab_size, seed=6)
    base = ours_from(hf)(ids, mask)[-1]
    for override in ({"sliding_window": 13}, {"rope_scaling": None}):
        other = ours_from(G.tiny_hf_gemma(seed=5, **override))(ids, mask)[-1]
        assert (other - base).abs().max() > 1e-3, override


def test_real_token_run_equals_padded_run():
    """Gemma on the real tokens only, at the positions they have in the left-padded run, gives the padded run's
    hidden states for those tokens (what the prompt encoder relies on)."""
    hf = G.tiny_hf_gemma(seed=7)
    ours = ours_from(hf)
    ids, mask = left_padded([6], 16, hf.config.vocab_size, seed=8)
    ref = G.run_hf(hf, ids, mask)
    with torch.no_grad():
        alone = ours(ids[:, -6:], None, positions=torch.arange(10, 16))
        shifted = ours(ids[:, -6:], None)  # positions 0…5: RoPE is relative, equal up to rounding
    for i, (a, s, r) in enumerate(zip(alone, shifted, ref, strict=True)):
        assert_close(a, r[:, -6:], f"state {i} (same positions)")
        assert_close(s, r[:, -6:], f"state {i} (positions from 0)")


def test_bf16_embedding_scale_and_run():
    """√hidden is rounded to bf16 before scaling (as Hugging Face does); a bf16 run stays close to float32."""
    hf = G.tiny_hf_gemma(seed=9, hidden_size=24, num_attention_heads=2, num_key_value_heads=1, head_dim=12)
    ids, mask = left_padded([7], 7, hf.config.vocab_size, seed=10)
    ours = build_gemma(GemmaConfig.from_hf_dict(hf.config.to_dict()), hf.state_dict(), dtype=torch.bfloat16)
    ref_bf16 = G.run_hf(hf.to(torch.bfloat16), ids, mask)
    with torch.no_grad():
        out = ours(ids, mask)
    assert out[0].dtype == torch.bfloat16
    assert torch.equal(out[0], ref_bf16[0])  # 24**0.5 = 4.899 → 4.90625 in bf16
    for i, (o, r) in enumerate(zip(out, ref_bf16, strict=True)):
        scale = max(1.0, r.float().abs().max().item())
        assert (o.float() - r.float()).abs().max().item() <= 0.05 * scale, f"bf16 state {i}"


def test_bad_inputs_are_clear():
    hf = G.tiny_hf_gemma(seed=11)
    ours = ours_from(hf)
    with pytest.raises(InputError, match="Token ids"):
        ours(torch.tensor([[1, 500]]))
    with pytest.raises(InputError, match="batch, tokens"):
        ours(torch.tensor([1, 2]))
