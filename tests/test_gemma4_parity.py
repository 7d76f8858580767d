"""Our Gemma-4 (``gemma4_unified``) text model vs ``transformers``' ``Gemma4UnifiedModel`` on tiny random configs
(float32, all hidden states): sliding and global layers (512-style wide global heads, one key/value head, K = V,
proportional RoPE), sequences longer than the window, left padding, placeholder ids; the config reader."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from rs_ltxv.ltx.errors import ConfigError, InputError
from rs_ltxv.ltx.loading.gemma4 import build_gemma4
from rs_ltxv.ltx.text.gemma4 import Gemma4TextModel
from rs_ltxv.ltx.text.gemma4_config import GEMMA4_LTX_VERSION, Gemma4Config, Gemma4Rope

from conftest import assert_close
from reference import gemma4_ref as G4

SLIDING, FULL = "sliding_attention", "full_attention"
TOP = {"image_token_id": 90, "video_token_id": 91, "audio_token_id": 92, "gemma_version": GEMMA4_LTX_VERSION}


def ours_from(hf, dtype: torch.dtype = torch.float32) -> Gemma4TextModel:
    cfg = Gemma4Config.from_hf_dict(hf.config.to_dict())
    return build_gemma4(cfg, G4.lm_state(hf, prefix=""), dtype=dtype)


def left_padded(valid: list[int], length: int, vocab: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (len(valid), length), generator=g)
    mask = torch.zeros(len(valid), length, dtype=torch.int64)
    for row, n in enumerate(valid):
        mask[row, length - n:] = 1
        ids[row, : length - n] = 0
    return ids, mask


def test_config_matches_transformers_defaults_and_round_trips():
    hf = G4.hf_config(G4.tiny_text_config(), **TOP)
    ours = Gemma4Config.from_hf_dict(hf.to_dict())
    assert ours.layer_types == tuple(hf.text_config.layer_types)
    assert ours.rope_full == Gemma4Rope("proportional", 10_000.0, 1.0, 0.25)
    assert ours.attn_head_dim("full_attention") == 32
    assert ours.kv_heads("full_attention") == 1
    assert ours.shares_kv("full_attention")
    assert not ours.shares_kv("sliding_attention")
    assert ours.multimodal_token_ids == (90, 91, 92)
    assert ours.gemma_version == GEMMA4_LTX_VERSION
    assert Gemma4Config.from_hf_dict(ours.to_hf_dict()) == ours
    assert Gemma4Config.from_hf_dict(G4.hf_config(ours.to_hf_dict()["text_config"], **TOP).to_dict()) == ours
    # an empty text config takes transformers' defaults (5:1 pattern, last layer global, proportional global RoPE)
    defaults = G4.hf_config({})
    plain = Gemma4Config.from_hf_dict({"model_type": "gemma4_unified", "text_config": {}})
    assert plain.layer_types == tuple(defaults.text_config.layer_types)
    assert plain.rope_full == Gemma4Rope("proportional", 1_000_000.0, 1.0, 0.25)
    assert plain.global_head_dim == defaults.text_config.global_head_dim


def test_inverse_frequencies_match_transformers():
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    from transformers.models.gemma4_unified.modeling_gemma4_unified import Gemma4UnifiedTextRotaryEmbedding

    text = G4.hf_config(G4.tiny_text_config()).text_config
    ours = Gemma4Config.from_hf_dict({"model_type": "gemma4_unified_text", **text.to_dict()})
    ref_full, _ = ROPE_INIT_FUNCTIONS["proportional"](text, layer_type="full_attention", head_dim_key="global_head_dim")
    ref_sliding, _ = Gemma4UnifiedTextRotaryEmbedding.compute_default_rope_parameters(text, layer_type=SLIDING)
    assert torch.equal(ours.rope_full.inv_freq(ours.rope_dim("full_attention")), ref_full)
    assert torch.equal(ours.rope_sliding.inv_freq(ours.rope_dim(SLIDING)), ref_sliding)
    assert int((ref_full == 0).sum()) == 12  # 16 angle pairs, a quarter rotate



def test_config_errors_are_clear():
    with pytest.raises(ConfigError, match="Gemma-3 config"):
        Gemma4Config.from_hf_dict({"model_type": "gemma3", "text_config": {}})
    with pytest.raises(ConfigError, match="prompt enhancer"):
        Gemma4Config.from_hf_dict({"model_type": "gemma4"})
    with pytest.raises(ConfigError, match="num_kv_shared_layers"):
        Gemma4Config.from_hf_dict({"model_type": "gemma4_unified_text", "num_kv_shared_layers": 2})
    with pytest.raises(ConfigError, match="bidirectional"):
        Gemma4Config.from_hf_dict({"model_type": "gemma4_unified_text", "use_bidirectional_attention": "all"})
    with pytest.raises(ConfigError, match="RoPE type"):
        Gemma4Config.from_hf_dict({"model_type": "gemma4_unified_text",
                                   "rope_parameters": {FULL: {"rope_type": "yarn", "rope_theta": 1.0}}})
    with pytest.raises(ConfigError, match="does not fit"):  # default RoPE on 512-wide global heads: 256-wide table
        Gemma4Config(rope_full=Gemma4Rope("default", 1e6)).validate()



@pytest.mark.parametrize("valid", [[13, 13], [13, 6], [2, 9]], ids=["full", "left-padded", "short"])
def test_hidden_states_match_transformers(valid):
    hf = G4.tiny_hf_gemma4(seed=1, top=TOP)
    ours = ours_from(hf)
    ids, mask = left_padded(valid, 13, 90, seed=2)  # 13 tokens > window 4: both layer kinds, padding on the left
    ids[0, -3] = 90  # an image placeholder reads as the pad id
    ids[1, -1] = 92
    ref = G4.run_hf(hf, ids, mask)
    with torch.no_grad():
        out = ours(ids, mask)
    assert len(out) == len(ref) == hf.config.text_config.num_hidden_layers + 1
    keep = mask.bool()
    for i, (o, r) in enumerate(zip(out, ref, strict=True)):
        # transformers' sdpa path fills fully masked (padding) query rows its own way; those rows are never used
        assert_close(o[keep], r[keep], f"hidden state {i}")


def test_padding_rows_match_eager_attention():
    """With eager attention (fully masked rows attend uniformly, like ours) even the padding rows agree."""
    hf = G4.tiny_hf_gemma4(seed=3, attn="eager")
    ours = ours_from(hf)
    ids, mask = left_padded([11, 5], 11, 90, seed=4)
    for i, (o, r) in enumerate(zip(ours(ids, mask), G4.run_hf(hf, ids, mask), strict=True)):
        assert_close(o, r, f"hidden state {i}")


@pytest.mark.parametrize("change", ["sliding_window", "proportional", "layer_scalar", "placeholder"])
def test_each_gemma4_feature_changes_the_output(change):
    """The parity above could not pass by accident: each Gemma-4 difference from Gemma-3 moves the last state."""
    hf = G4.tiny_hf_gemma4(seed=5, top=TOP)
    ids, mask = left_padded([13], 13, 90, seed=6)
    ids[0, 4] = 91
    base = ours_from(hf)(ids, mask)[-1]
    cfg = Gemma4Config.from_hf_dict(hf.config.to_dict())
    state = G4.lm_state(hf, prefix="")
    if change == "sliding_window":
        cfg = replace(cfg, sliding_window=13)
    elif change == "proportional":
        cfg = replace(cfg, rope_full=Gemma4Rope("proportional", 10_000.0, 1.0, 0.5))
    elif change == "layer_scalar":
        state = {k: (v * 1.5 if k.endswith("layer_scalar") else v) for k, v in state.items()}
    else:
        cfg = replace(cfg, multimodal_token_ids=())
    other = build_gemma4(cfg, state, dtype=torch.float32)(ids, mask)[-1]
    assert (other - base).abs().max() > 1e-3, change


def test_shared_key_value_layers_take_values_before_the_key_norm():
    """K = V layers equal layers whose ``v_proj`` holds the key projection (V is the raw key projection, then the
    weightless value norm; keys get ``k_norm`` and RoPE): same states with ``attention_k_eq_v`` off and the weight
    copied."""
    hf = G4.tiny_hf_gemma4(seed=14, num_key_value_heads=1)
    ids, mask = left_padded([10], 10, 90, seed=15)
    base = ours_from(hf)(ids, mask)
    cfg = replace(Gemma4Config.from_hf_dict(hf.config.to_dict()), attention_k_eq_v=False)
    assert not cfg.shares_kv(FULL)
    state = G4.lm_state(hf, prefix="")
    state.update({k.replace("k_proj", "v_proj"): v for k, v in state.items()
                  if k.split(".")[1] in ("2", "5") and k.endswith("k_proj.weight")})
    with torch.no_grad():
        other = build_gemma4(cfg, state, dtype=torch.float32)(ids, mask)
    for i, (o, b) in enumerate(zip(other, base, strict=True)):
        assert_close(o, b, f"state {i}")


def test_real_token_run_equals_padded_run():
    """Gemma-4 on the real tokens only, at the positions they have in the left-padded run, gives the padded run's
    hidden states for those tokens (what the prompt encoder relies on)."""
    hf = G4.tiny_hf_gemma4(seed=7)
    ours = ours_from(hf)
    ids, mask = left_padded([6], 16, 90, seed=8)
    ref = G4.run_hf(hf, ids, mask)
    with torch.no_grad():
        alone = ours(ids[:, -6:], None, positions=torch.arange(10, 16))
    for i, (a, r) in enumerate(zip(alone, ref, strict=True)):
        assert_close(a, r[:, -6:], f"state {i} (same positions)")


def test_other_attention_backends_rescale_queries():
    """Backends that scale by ``head_dim^-½`` (everything but sdpa) get pre-scaled queries: same result."""
    hf = G4.tiny_hf_gemma4(seed=9)
    ours = ours_from(hf)
    ids, mask = left_padded([9, 4], 9, 90, seed=10)
    calls = []

    def plain_sdpa(q, k, v, m):
        calls.append(q.shape[-1])
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m.to(q.dtype))

    with torch.no_grad():
        want, got = ours(ids, mask), ours(ids, mask, backend=plain_sdpa)
    assert sorted(set(calls)) == [16, 32]
    keep = mask.bool()
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert_close(g[keep], w[keep], f"state {i}")


def test_bf16_run_stays_close_to_transformers_bf16():
    hf = G4.tiny_hf_gemma4(seed=11)
    ids, mask = left_padded([7], 7, 90, seed=12)
    ours = ours_from(hf, torch.bfloat16)
    ref = G4.run_hf(hf.to(torch.bfloat16), ids, mask)
    with torch.no_grad():
        out = ours(ids, mask)
    assert out[0].dtype == torch.bfloat16
    assert torch.equal(out[0], ref[0])  # √32 rounded to bf16 before scaling, as transformers does
    for i, (o, r) in enumerate(zip(out, ref, strict=True)):
        scale = max(1.0, r.float().abs().max().item())
        assert (o.float() - r.float()).abs().max().item() <= 0.05 * scale, f"bf16 state {i}"


def test_bad_inputs_are_clear():
    ours = ours_from(G4.tiny_hf_gemma4(seed=13))
    with pytest.raises(InputError, match="Token ids"):
        ours(torch.tensor([[1, 500]]))
    with pytest.raises(InputError, match="batch, tokens"):
        ours(torch.tensor([1, 2]))
