"""LTX-2.5's Gemma-4 text encoder from files: the bundled single file (ComfyUI-flat and Hugging Face key names,
embedded ``tokenizer.json`` and sidecars, towers ignored), a Hugging Face folder, the int8 ConvRot file kept
quantised, the tokenizer's BOS rule against ``transformers`` + ltx-core 1.2.0, dispatch by content through
``load_gemma`` / ``load_gemma_tokenizer``, and the errors for truncated or wrong files."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from rs_ltxv.ltx.errors import CheckpointError
from rs_ltxv.ltx.loading import load_gemma, load_gemma_tokenizer
from rs_ltxv.ltx.loading.gemma4 import is_gemma4, open_gemma4
from rs_ltxv.ltx.quant import QuantLinear
from rs_ltxv.ltx.quant.writers import quantise_state_dict
from rs_ltxv.ltx.text.gemma import GemmaTextModel
from rs_ltxv.ltx.text.gemma4 import Gemma4TextModel
from rs_ltxv.ltx.text.gemma4_tokenizer import Gemma4Tokenizer
from rs_ltxv.ltx.tiny_gemma4 import tiny_gemma4_tokenizer_json, write_tiny_gemma4
from rs_ltxv.ltx.tiny_parts import write_tiny_gemma_file

from conftest import assert_close
from reference import gemma4_ref as G4

PROMPTS = ["A red fox runs through a snowy forest.", "  Waves crash on a rocky shore  ", "<bos>A chef chops",
           "hi <|image|> there", "", "Close-up of a cat yawning in warm afternoon light, soft music plays. " * 3]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_tiny_gemma4(tmp_path_factory.mktemp("g4") / "gemma4-tiny-with-proj.safetensors", seed=3)


def _states(model, ids, mask):
    with torch.no_grad():
        return model(ids, mask)


def test_tiny_bundle_loads_and_matches_transformers(bundle):
    assert is_gemma4(bundle)
    model = load_gemma(bundle, dtype=torch.float32)
    assert isinstance(model, Gemma4TextModel)
    assert model.config.layer_types == ("sliding_attention", "full_attention")
    assert model.layers[1].self_attn.v_proj is None  # the global layer shares K and V
    hf = G4.hf_gemma4_from_bundle(bundle)
    tokenizer = load_gemma_tokenizer(bundle, max_length=24)
    batch = tokenizer(PROMPTS[:2], pad_to=24)
    ref = G4.run_hf(hf, batch.ids, batch.mask)
    keep = batch.mask.bool()
    for i, (o, r) in enumerate(zip(_states(model, batch.ids, batch.mask), ref, strict=True)):
        assert_close(o[keep], r[keep], f"hidden state {i}")


def test_tokenizer_follows_ltx_core_bos_rule(bundle):
    """ltx-core 1.2.0 prepends BOS only when the tokenizer did not produce it (Gemma-4's adds none), truncates to
    the context length and pads on the left; the same ids and mask as ``transformers``' tokenizer under that rule."""
    _, _, tok_json, sidecars = G4.bundle_parts(bundle)
    ours = load_gemma_tokenizer(bundle, max_length=16)
    assert isinstance(ours, Gemma4Tokenizer)
    ref_ids, ref_mask = G4.ltx_tokenize(G4.hf_tokenizer(tok_json, sidecars["tokenizer_config.json"], 16), PROMPTS, 16)
    batch = ours(PROMPTS, pad_to=16)
    assert torch.equal(batch.ids, ref_ids)
    assert torch.equal(batch.mask, ref_mask)
    assert ours.encode("<bos>A chef")[0] == ours.bos_id
    assert ours.encode("<bos>A chef")[1] != ours.bos_id  # a leading BOS in the text is not doubled
    assert ours.encode("")[0] == ours.bos_id
    assert len(ours.encode(PROMPTS[-1])) == 16


def test_tokenizer_equals_ltx_core_120_source(bundle):
    """ltx-core 1.2.0's own ``LTXGemmaTokenizer`` (read from the Lightricks/LTX-2 mirror) gives our ids."""
    module = G4.ltx_core_120_module("tokenizer.py", "ltx_core_120_tokenizer")
    if module is None:
        pytest.skip("the Lightricks/LTX-2 v1.2.0 mirror is not on this machine")
    _, _, tok_json, sidecars = G4.bundle_parts(bundle)
    reference = module.LTXGemmaTokenizer(G4.hf_tokenizer(tok_json, sidecars["tokenizer_config.json"], 16), 16,
                                         padding_side=module.PaddingSide.LEFT)
    ours = load_gemma_tokenizer(bundle, max_length=16)
    for text in PROMPTS:
        pairs = reference.tokenize_with_weights(text)["gemma"]
        batch = ours(text, pad_to=16)
        assert batch.ids[0].tolist() == [int(t) for t, _ in pairs], text
        assert batch.mask[0].tolist() == [int(w) for _, w in pairs], text


def _hf_layout(path, target, prefix="model.language_model."):
    """The bundle with Hugging Face key names for the language model (``model.language_model.*``)."""
    config, tensors, tok, sidecars = G4.bundle_parts(path)
    renamed = {(prefix + k.removeprefix("model.")) if k.startswith("model.") else k: v for k, v in tensors.items()}
    return G4.write_bundle(target, config, renamed, tok, {k: v for k, v in sidecars.items()})


def test_hugging_face_key_names_and_folder(bundle, tmp_path):
    base = _states(load_gemma(bundle, dtype=torch.float32), torch.tensor([[2, 30, 31, 32]]), None)
    hf_file = _hf_layout(bundle, tmp_path / "hf-names.safetensors")
    for i, (o, b) in enumerate(zip(_states(load_gemma(hf_file, dtype=torch.float32),
                                          torch.tensor([[2, 30, 31, 32]]), None), base, strict=True)):
        assert torch.equal(o, b), i
    config, tensors, tok, sidecars = G4.bundle_parts(bundle)
    folder = tmp_path / "gemma4-folder"
    (folder / "_readout_proj").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_bytes(tok)
    (folder / "tokenizer_config.json").write_bytes(sidecars["tokenizer_config.json"])
    save_file({f"model.language_model.{k.removeprefix('model.')}": v for k, v in tensors.items()
               if k.startswith("model.")}, str(folder / "model.safetensors"))
    save_file({k: v for k, v in tensors.items() if k.startswith("text_embedding_projection.")},
              str(folder / "_readout_proj" / "projection.safetensors"))
    assert is_gemma4(folder)
    opened = open_gemma4(folder)
    assert opened.projection is not None
    assert sorted(opened.projection[1]) == sorted(open_gemma4(bundle).projection[1])
    for i, (o, b) in enumerate(zip(_states(load_gemma(folder, dtype=torch.float32),
                                          torch.tensor([[2, 30, 31, 32]]), None), base, strict=True)):
        assert torch.equal(o, b), i
    assert load_gemma_tokenizer(folder).encode(PROMPTS[0]) == load_gemma_tokenizer(bundle).encode(PROMPTS[0])


def test_gemma3_files_still_load_as_gemma3(tmp_path):
    path = write_tiny_gemma_file(tmp_path / "gemma_3_tiny.safetensors")
    assert not is_gemma4(path)
    assert isinstance(load_gemma(path, dtype=torch.float32), GemmaTextModel)
    assert not isinstance(load_gemma_tokenizer(path), Gemma4Tokenizer)


def test_int8_convrot_layers_stay_quantised(tmp_path):
    """The comfy-int8-convrot bundle: decoder-layer Linear weights load as ``QuantLinear`` (ConvRot int8), and the
    model equals the float model holding the dequantised weights."""
    hf = G4.tiny_hf_gemma4(seed=21)  # widths 32 / 48 / 64 / 128: multiples of the ConvRot group
    config = json.loads(json.dumps(hf.config.to_dict()))
    state = G4.lm_state(hf)
    tok = tiny_gemma4_tokenizer_json()
    quantised = quantise_state_dict(state, "comfy_int8_convrot", select=lambda k, t: k.startswith("model.layers."))
    path = G4.write_bundle(tmp_path / "int8.safetensors", config, quantised, tok)
    model = load_gemma(path, dtype=torch.float32)
    layers = {n: m for n, m in model.named_modules() if isinstance(m, QuantLinear)}
    assert len(layers) == 4 * 7 + 2 * 6  # sliding layers: q, k, v, o + 3 MLP; global layers have no v_proj
    dequantised = {f"model.{n}.weight": m.dequantized_weight(torch.float32) for n, m in layers.items()}
    oracle = load_gemma(G4.write_bundle(tmp_path / "oracle.safetensors", config, {**state, **dequantised}, tok),
                        dtype=torch.float32)
    plain = load_gemma(G4.write_bundle(tmp_path / "float.safetensors", config, state, tok), dtype=torch.float32)
    ids = torch.randint(4, 90, (2, 9), generator=torch.Generator().manual_seed(0))
    got, same, want = (_states(m, ids, None)[-1] for m in (model, oracle, plain))
    assert_close(got, same, "int8 model vs float model with its dequantised weights")
    assert (got - want).norm() / want.norm() < 0.06  # the format's rounding


def _rewrite(bundle, target, *, drop=(), metadata=None, config=None, tensors=None):
    cfg, state, tok, sidecars = G4.bundle_parts(bundle)
    state = {k: v for k, v in (tensors or state).items() if k not in drop}
    path = G4.write_bundle(target, config or cfg, state, tok, sidecars)
    if "tokenizer_json" in drop or metadata is not None:
        from safetensors.torch import load_file

        raw = load_file(str(path))
        raw = {k: v for k, v in raw.items() if k not in drop}
        save_file(raw, str(path), metadata=metadata)
    return path


def test_wrong_and_broken_bundles_are_clear(bundle, tmp_path):
    truncated = tmp_path / "truncated.safetensors"
    data = bundle.read_bytes()
    truncated.write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError, match=r"truncated|shorter|size"):
        load_gemma(truncated)
    no_config = _rewrite(bundle, tmp_path / "no-config.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="no 'gemma_config' metadata"):
        load_gemma(no_config)
    no_tok = _rewrite(bundle, tmp_path / "no-tok.safetensors", drop=("tokenizer_json",),
                      metadata={"gemma_config": json.dumps(G4.bundle_parts(bundle)[0])})
    with pytest.raises(CheckpointError, match="tokenizer_json"):
        load_gemma_tokenizer(no_tok)
    cfg = G4.bundle_parts(bundle)[0]
    wider = _rewrite(bundle, tmp_path / "wider.safetensors",
                     config={**cfg, "text_config": {**cfg["text_config"], "hidden_size": 32}})
    with pytest.raises(CheckpointError, match=r"does not match|wrong shape"):
        load_gemma(wider)
    dense = _rewrite(bundle, tmp_path / "dense.safetensors", config={**cfg, "model_type": "gemma4"})
    with pytest.raises(CheckpointError, match="prompt enhancer"):
        load_gemma(dense)
    no_lm = _rewrite(bundle, tmp_path / "no-lm.safetensors",
                     tensors={k: v for k, v in G4.bundle_parts(bundle)[1].items() if not k.startswith("model.")})
    with pytest.raises(CheckpointError, match="no language-model weights"):
        load_gemma(no_lm)


def test_corrupt_embedded_tokenizer_is_clear(bundle, tmp_path):
    cfg, state, _, sidecars = G4.bundle_parts(bundle)
    path = G4.write_bundle(tmp_path / "bad-tok.safetensors", cfg, state, b'{"version": "1.0", "model": ', sidecars)
    with pytest.raises(CheckpointError, match=r"not a readable tokenizer\.json"):
        load_gemma_tokenizer(path)


def test_copying_the_file_keeps_it_a_bundle(bundle, tmp_path):
    """Detection reads the content, not the name: a renamed bundle is still Gemma-4."""
    renamed = tmp_path / "text_encoder.safetensors"
    shutil.copy(bundle, renamed)
    assert isinstance(load_gemma(renamed, dtype=torch.float32), Gemma4TextModel)
