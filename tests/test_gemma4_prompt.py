"""LTX-2.5 prompt → contexts: ours (Gemma-4 on the real tokens, the bundled file's projection, our connectors) vs the
reference path (ltx-core 1.2.0's tokenisation on ``transformers``' tokenizer, padded to the full length →
``transformers``' ``Gemma4UnifiedModel`` → ltx-core's ``EmbeddingsProcessor``, whose feature extraction formula
1.2.0 keeps unchanged from the installed 1.0.0), and the errors for a Gemma that does not belong to the checkpoint
(raised before any weight is read)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from rs_ltxv.ltx.errors import CheckpointError
from rs_ltxv.ltx.loading import load_prompt_encoder, open_checkpoint
from rs_ltxv.ltx.loading.gemma4 import load_gemma4, load_gemma4_tokenizer, open_gemma4
from rs_ltxv.ltx.loading.gemma4_parts import load_gemma4_text_connectors
from rs_ltxv.ltx.loading.layout import GEMMA4_LTX_VERSION as LAYOUT_GEMMA4_VERSION
from rs_ltxv.ltx.text.encoder import PromptEncoder
from rs_ltxv.ltx.text.gemma4_config import GEMMA4_LTX_VERSION
from rs_ltxv.ltx.tiny import write_tiny_checkpoint
from rs_ltxv.ltx.tiny_gemma4 import write_tiny_gemma4
from rs_ltxv.ltx.tiny_parts import write_tiny_gemma_file

from conftest import assert_close
from reference import gemma4_ref as G4
from reference import ltx_core_ref as R

PROMPTS = ["A red fox runs through a snowy forest at dawn while birds sing.", "hi",
           "<bos>Waves crash on a rocky shore " * 5]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ltx25")
    return {"gemma4": write_tiny_gemma4(d / "gemma4-tiny.safetensors", seed=1),
            "ltx25": write_tiny_checkpoint(d / "ltx-2.5-tiny.safetensors", "2.5", seed=2, dtype=torch.float32),
            "ltx23": write_tiny_checkpoint(d / "ltx-2.3-tiny.safetensors", "2.3", seed=2, dtype=torch.float32),
            "gemma3": write_tiny_gemma_file(d / "gemma_3_tiny.safetensors"), "dir": d}


def reference_processor(gemma_file, ckpt_file, *, projection_from_ckpt: bool = False):
    """ltx-core's ``EmbeddingsProcessor`` holding the same projection and connector tensors as our files."""
    ref = R.build_reference("2.3", num_gemma_states=3)
    ckpt = load_file(str(ckpt_file))
    source = ckpt if projection_from_ckpt else load_file(str(gemma_file))
    state = {f"feature_extractor.{k.removeprefix('text_embedding_projection.')}": v for k, v in source.items()
             if k.startswith("text_embedding_projection.")}
    for name in ("video", "audio"):
        prefix = f"model.diffusion_model.{name}_embeddings_connector."
        state.update({f"{name}_connector.{k.removeprefix(prefix)}": v for k, v in ckpt.items()
                      if k.startswith(prefix)})
    ref.embeddings_processor.load_state_dict(state, strict=True)
    return ref


def reference_contexts(files, prompts, length, **kw):
    _, _, tok, sidecars = G4.bundle_parts(files["gemma4"])
    ids, mask = G4.ltx_tokenize(G4.hf_tokenizer(tok, sidecars["tokenizer_config.json"], length), prompts, length)
    states = G4.run_hf(G4.hf_gemma4_from_bundle(files["gemma4"]), ids, mask)
    video, audio, _ = R.run_text_path(reference_processor(files["gemma4"], files["ltx25"], **kw), states, mask)
    return video, audio, mask


def test_prompt_to_contexts_matches_the_reference_path(files):
    bundle, ckpt = open_gemma4(files["gemma4"]), open_checkpoint(files["ltx25"])
    encoder = PromptEncoder(load_gemma4(bundle, dtype=torch.float32), load_gemma4_tokenizer(bundle, max_length=32),
                            load_gemma4_text_connectors(ckpt, bundle, dtype=torch.float32))
    ref_video, ref_audio, mask = reference_contexts(files, PROMPTS, 32)
    counts = mask.sum(dim=1).tolist()
    assert counts[1] < 8 < counts[0] < 32  # short, longer than the window (8), truncated
    assert counts[2] == 32
    out = encoder.encode(PROMPTS)
    assert_close(out.video, ref_video, "video context")
    assert_close(out.audio, ref_audio, "audio context")
    assert bool(out.mask.all())


def test_load_prompt_encoder_with_the_real_context_length(files):
    """``load_prompt_encoder(bundle, LTX-2.5 checkpoint)`` → 1024-token contexts equal to the reference path."""
    encoder = load_prompt_encoder(files["gemma4"], files["ltx25"], dtype=torch.float32)
    assert encoder.length == 1024
    out = encoder.encode(PROMPTS[0])
    ref_video, ref_audio, _ = reference_contexts(files, PROMPTS[:1], 1024)
    assert_close(out.video, ref_video, "video context (1024)")
    assert_close(out.audio, ref_audio, "audio context (1024)")


def test_projection_comes_from_the_bundle_else_the_checkpoint(files, tmp_path):
    """The bundle's ``text_embedding_projection`` wins over the checkpoint's (ltx-pipelines' split layout); a
    Gemma-4 file without one uses the checkpoint's."""
    ckpt = open_checkpoint(files["ltx25"])
    assert "text_projection" in ckpt.components  # both carry one, with different weights
    state = load_file(str(files["gemma4"]))
    without = {k: v for k, v in state.items() if not k.startswith("text_embedding_projection.")}
    path = tmp_path / "gemma4-no-proj.safetensors"
    save_file(without, str(path), metadata={"gemma_config": json.dumps(G4.bundle_parts(files["gemma4"])[0])})
    ours = {name: load_gemma4_text_connectors(ckpt, open_gemma4(p), dtype=torch.float32)
            for name, p in (("bundle", files["gemma4"]), ("checkpoint", path))}
    states = [torch.randn(1, 8, 24, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    mask = torch.ones(1, 8, dtype=torch.int64)
    for name, kw in (("bundle", {}), ("checkpoint", {"projection_from_ckpt": True})):
        ref = reference_processor(files["gemma4"], files["ltx25"], **kw)
        want = R.run_text_path(ref, states, mask)[0]
        assert_close(ours[name](states, mask).video, want, f"projection from the {name}")
    assert not torch.allclose(ours["bundle"](states, mask).video, ours["checkpoint"](states, mask).video)


def test_gemma3_with_an_ltx25_checkpoint_is_refused(files):
    with pytest.raises(CheckpointError, match=r"is a Gemma-3 text encoder.*LTX-2.5.*gemma4-12b-with-proj-ltx-2.5"):
        load_prompt_encoder(files["gemma3"], files["ltx25"], dtype=torch.float32)


def test_gemma4_with_an_ltx23_checkpoint_is_refused(files):
    with pytest.raises(CheckpointError, match=r"Gemma-4 text encoder.*LTX-2 / LTX-2.3.*gemma_3_12B_it"):
        load_prompt_encoder(files["gemma4"], files["ltx23"], dtype=torch.float32)


def test_another_gemma_version_is_refused(files, tmp_path):
    config, tensors, tok, sidecars = G4.bundle_parts(files["gemma4"])
    other = G4.write_bundle(tmp_path / "gemma4-v2.safetensors", {**config, "gemma_version": "gemma4-12b-ltx-v2"},
                            tensors, tok, sidecars)
    with pytest.raises(CheckpointError, match=r"Gemma version mismatch.*gemma4-12b-ltx-v1.*gemma4-12b-ltx-v2"):
        load_prompt_encoder(other, files["ltx25"], dtype=torch.float32)


def test_mismatch_is_found_before_any_weight_is_read(files, monkeypatch):
    from rs_ltxv.ltx.loading import gemma_tensors, safetensors_file

    def no_read(*args, **kwargs):
        raise AssertionError("a tensor was read before the version check")

    monkeypatch.setattr(safetensors_file.SafetensorsFile, "read", no_read)
    monkeypatch.setattr(gemma_tensors.GemmaTensors, "read", no_read)
    for gemma, ckpt in (("gemma3", "ltx25"), ("gemma4", "ltx23")):
        with pytest.raises(CheckpointError, match="text encoder"):
            load_prompt_encoder(files[gemma], files[ckpt], dtype=torch.float32)


def test_version_from_tensors_when_metadata_is_gone(files, tmp_path):
    """A re-saved LTX-2.5 file without metadata (config inferred from the tensors) still needs Gemma-4, and takes
    any Gemma-4 (its required version is unknown)."""
    bare = tmp_path / "ltx-2.5-no-metadata.safetensors"
    save_file(load_file(str(files["ltx25"])), str(bare))
    with pytest.raises(CheckpointError, match="Gemma-3 text encoder"):
        load_prompt_encoder(files["gemma3"], bare, dtype=torch.float32)
    assert load_prompt_encoder(files["gemma4"], bare, dtype=torch.float32).length == 1024


def test_constants_agree_with_the_tiny_checkpoint_and_layout():
    """``ltx/tiny_gemma4.py`` repeats the tiny transformer's text widths (``ltx/tiny.py`` imports it), and
    ``ltx/text`` the Gemma version ``loading/layout.py`` names; both copies must agree."""
    from rs_ltxv.ltx import tiny, tiny_gemma4

    cfg = tiny.tiny_config("2.5")
    assert (tiny_gemma4.TINY_GEMMA_DIM, tiny_gemma4.TINY_GEMMA_STATES) == (tiny.TINY_GEMMA_DIM, tiny.TINY_GEMMA_STATES)
    assert (tiny_gemma4.TINY_VIDEO_DIM, tiny_gemma4.TINY_AUDIO_DIM) == (cfg.inner_dim, cfg.audio_inner_dim)
    assert GEMMA4_LTX_VERSION == LAYOUT_GEMMA4_VERSION


def test_quantised_projection_stays_quantised(files, tmp_path):
    """An int8 bundle may quantise the projection too: it loads as ``QuantLinear`` and equals the float projection
    holding the dequantised weights."""
    from rs_ltxv.ltx.quant import QuantLinear
    from rs_ltxv.ltx.quant.writers import quantise_state_dict

    config, tensors, tok, sidecars = G4.bundle_parts(files["gemma4"])
    quantised = quantise_state_dict(tensors, "comfy_int8",
                                    select=lambda k, t: k.startswith("text_embedding_projection."))
    path = G4.write_bundle(tmp_path / "gemma4-int8.safetensors", config, quantised, tok, sidecars)
    ckpt = open_checkpoint(files["ltx25"])
    text = load_gemma4_text_connectors(ckpt, open_gemma4(path), dtype=torch.float32)
    layers = {n: m for n, m in text.feature_extractor.named_children() if isinstance(m, QuantLinear)}
    assert sorted(layers) == ["audio_aggregate_embed", "video_aggregate_embed"]
    dequantised = {f"text_embedding_projection.{n}.weight": m.dequantized_weight(torch.float32)
                   for n, m in layers.items()}
    oracle_path = G4.write_bundle(tmp_path / "oracle.safetensors", config, {**tensors, **dequantised}, tok, sidecars)
    oracle = load_gemma4_text_connectors(ckpt, open_gemma4(oracle_path), dtype=torch.float32)
    states = [torch.randn(1, 8, 24, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    mask = torch.ones(1, 8, dtype=torch.int64)
    assert_close(text(states, mask).video, oracle(states, mask).video, "int8 projection")


def test_feature_extractor_equals_ltx_core_120_source(files):
    """ltx-core 1.2.0's own ``FeatureExtractorV2`` (read from the Lightricks/LTX-2 mirror) on left-padded hidden
    states gives our projection's features."""
    module = G4.ltx_core_120_module("feature_extractor.py", "ltx_core_120_feature_extractor")
    if module is None:
        pytest.skip("the Lightricks/LTX-2 v1.2.0 mirror is not on this machine")
    ours = load_gemma4_text_connectors(open_checkpoint(files["ltx25"]), open_gemma4(files["gemma4"]),
                                       dtype=torch.float32).feature_extractor
    video, audio = (torch.nn.Linear(72, ours.video_aggregate_embed.out_features),
                    torch.nn.Linear(72, ours.audio_aggregate_embed.out_features))
    video.load_state_dict(ours.video_aggregate_embed.state_dict())
    audio.load_state_dict(ours.audio_aggregate_embed.state_dict())
    reference = module.FeatureExtractorV2(video_aggregate_embed=video, embedding_dim=24, audio_aggregate_embed=audio)
    states = tuple(torch.randn(2, 8, 24, generator=torch.Generator().manual_seed(i)) for i in range(3))
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1], [1] * 8])
    with torch.no_grad():
        want, got = reference(states, mask, "left"), ours(list(states), mask)
    assert_close(got[0], want[0], "video features")
    assert_close(got[1], want[1], "audio features")
