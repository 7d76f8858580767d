"""The LTX-2.5 checkpoint layout: a full-size model on the meta device has exactly the official tensor names and
shapes (4349 = 4091 transformer + 258 connector tensors; the transformer checked against diffusers 0.42.1, the
connectors against ltx-core), config from metadata or tensors, the official single file / ComfyUI split file / GGUF
all load, ``info`` and :func:`read_model_version` report 2.5, and a 2.5 file without the keyframe embedding is
refused with a message naming the tensor."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from diffusers import LTX2VideoTransformer3DModel
from gguf import GGMLQuantizationType as Q
from safetensors.torch import load_file, save_file

from rs_ltxv.gguf_loader.writer import write_gguf
from rs_ltxv.ltx.config import ConnectorConfig, TransformerConfig, Version
from rs_ltxv.ltx.errors import CheckpointError
from rs_ltxv.ltx.loading import load_transformer, open_checkpoint
from rs_ltxv.ltx.loading.info import describe, format_description
from rs_ltxv.ltx.loading.layout import GEMMA4_LTX_VERSION, read_model_version
from rs_ltxv.ltx.text.processor import TextConnectors
from rs_ltxv.ltx.tiny import tiny_config, write_tiny_checkpoint
from rs_ltxv.ltx.tokens import audio_positions, video_positions
from rs_ltxv.ltx.transformer import LTXAVTransformer, StreamInput

from reference import diffusers_ref as D
from reference import ltx_core_ref  # noqa: F401  (imports ltx_core in the order it needs)

from ltx_core.text_encoders.gemma.embeddings_connector import (  # isort: skip
    AudioEmbeddings1DConnectorConfigurator,
    Embeddings1DConnectorConfigurator,
)

DIFF = "model.diffusion_model."
_CONNECTOR = ConnectorConfig(num_attention_heads=32, attention_head_dim=128, num_layers=8, apply_gated_attention=True)
#: the released 22B geometry: LTX-2.3 and, with ff_bias off and the keyframe embedding, LTX-2.5
FULL_23 = TransformerConfig(apply_gated_attention=True, cross_attention_adaln=True, caption_proj_before_connector=True,
                            av_ca_timestep_scale_multiplier=1000.0, video_connector=_CONNECTOR,
                            audio_connector=replace(_CONNECTOR, attention_head_dim=64))
FULL_25 = replace(FULL_23, ff_bias=False, use_keyframes_abs_pos_embedding=True)


def _shapes(module: torch.nn.Module, prefix: str = "") -> dict[str, tuple[int, ...]]:
    return {prefix + k: tuple(v.shape) for k, v in module.state_dict().items()}


def _official_layout(cfg: TransformerConfig) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """(ours, reference) official transformer + connector names → shapes, built on meta."""
    with torch.device("meta"):
        ours = _shapes(LTXAVTransformer(cfg))
        text = TextConnectors(cfg, 49)
        diffusers = LTX2VideoTransformer3DModel(**D.diffusers_config(cfg.to_dict()))
        raw = {"transformer": cfg.to_dict()}
        video_conn = Embeddings1DConnectorConfigurator.from_config(raw)
        audio_conn = AudioEmbeddings1DConnectorConfigurator.from_config(raw)
    for name, prefix in (("video_connector", "video_embeddings_connector."),
                         ("audio_connector", "audio_embeddings_connector.")):
        ours.update(_shapes(getattr(text, name), prefix))
    to_official = {D.official_to_diffusers_name(k): k for k in ours if "embeddings_connector." not in k}
    reference = {to_official.get(k, f"<diffusers {k}>"): v for k, v in _shapes(diffusers).items()}
    reference.update(_shapes(video_conn, "video_embeddings_connector."))
    reference.update(_shapes(audio_conn, "audio_embeddings_connector."))
    return ours, reference


@pytest.mark.parametrize(("cfg", "transformer", "total"), [(FULL_25, 4091, 4349), (FULL_23, 4186, 4444)],
                         ids=["2.5", "2.3"])
def test_full_size_layout_matches_the_references(cfg, transformer, total):
    ours, reference = _official_layout(cfg)
    assert ours == reference  # names and shapes
    connectors = [k for k in ours if "embeddings_connector." in k]
    assert (len(ours), len(ours) - len(connectors), len(connectors)) == (total, transformer, 258)
    if cfg.version is Version.LTX25:
        assert ours["keyframes_abs_pos_embedding"] == (1, 4096)
        biases = [k for k in ours if k.startswith("transformer_blocks.") and "ff.net." in k and k.endswith(".bias")]
        assert biases
        assert all(".audio_ff." in k for k in biases)  # the video feed-forward has none
        assert len(biases) == 96


def test_config_json_round_trip_and_version():
    assert FULL_25.version is Version.LTX25
    assert Version.LTX25.display == "LTX-2.5"
    raw = FULL_25.to_dict()
    assert (raw["ff_bias"], raw["use_keyframes_abs_pos_embedding"]) == (False, True)
    assert TransformerConfig.from_dict(raw) == FULL_25
    assert "ff_bias" not in FULL_23.to_dict()  # 2.0 / 2.3 configs stay as released
    assert "use_keyframes_abs_pos_embedding" not in FULL_23.to_dict()


@pytest.mark.parametrize("key", ["audio_ff_bias", "use_prompt_adaln_single"])
def test_config_variants_we_do_not_implement_are_refused(key):
    with pytest.raises(Exception, match=key):
        TransformerConfig.from_dict({**FULL_25.to_dict(), key: False})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("ltx25-files")
    official = write_tiny_checkpoint(root / "ltx-2.5-tiny.safetensors", "2.5", seed=2, dtype=torch.float32)
    sd = load_file(official)
    split = root / "ltx-2.5-tiny-split.safetensors"  # ComfyUI's diffusion_models file: no metadata, prefixed
    save_file({k: v for k, v in sd.items() if k.startswith(DIFF)}, str(split))
    gguf = write_gguf(root / "ltx-2.5-tiny.gguf", {k.removeprefix(DIFF): v for k, v in sd.items()},
                      lambda name, t: Q.Q8_0 if name.endswith(".weight") and t.ndim == 2 and t.shape[1] % 32 == 0
                      else Q.F32)
    return {"root": root, "official": official, "split": str(split), "gguf": gguf, "sd": sd}


def _run(model: LTXAVTransformer, marked: bool = True) -> torch.Tensor:
    cfg = model.config
    g = torch.Generator().manual_seed(0)
    marker = torch.zeros(1, 12, 1)
    marker[:, :6] = float(marked)
    video = StreamInput(torch.randn(1, 12, cfg.in_channels, generator=g), torch.tensor([0.6]),
                        torch.full((1, 12), 0.6), video_positions(1, 2, 2, 3, 24.0),
                        torch.randn(1, 5, cfg.inner_dim, generator=g), keyframes_mask=marker)
    audio = StreamInput(torch.randn(1, 5, cfg.audio_in_channels, generator=g), torch.tensor([0.6]),
                        torch.full((1, 5), 0.6), audio_positions(1, 5),
                        torch.randn(1, 5, cfg.audio_inner_dim, generator=g))
    with torch.no_grad():
        return model(video, audio)[0]


def test_official_split_and_gguf_files_load(files):
    official = open_checkpoint(files["official"])
    assert (official.version, official.config_source) == (Version.LTX25, "metadata")
    assert official.config == tiny_config("2.5")
    reference = _run(load_transformer(official, dtype=torch.float32))
    for kind in ("split", "gguf"):
        ckpt = open_checkpoint(files[kind])
        assert (ckpt.version, ckpt.config_source) == (Version.LTX25, "inferred"), kind
        assert (ckpt.config.ff_bias, ckpt.config.use_keyframes_abs_pos_embedding) == (False, True), kind
        out = _run(load_transformer(ckpt, dtype=torch.float32))
        if kind == "split":
            assert torch.equal(out, reference)
        else:  # Q8_0 Linear weights
            assert ((out - reference).norm() / reference.norm()).item() < 2e-2


def test_info_and_model_version(files):
    d = describe(files["official"])
    assert (d["version"], d["model_version"], d["gemma_version"]) == ("LTX-2.5", "2.5.0", GEMMA4_LTX_VERSION)
    text = format_description(d)
    assert "LTX-2.5" in text
    assert GEMMA4_LTX_VERSION in text
    assert describe(files["gguf"])["version"] == "LTX-2.5"
    for source in (files["official"], open_checkpoint(files["official"]), open_checkpoint(files["official"]).file):
        info = read_model_version(source)
        assert (info.model_version, info.gemma_version, info.is_ltx25, info.needs_gemma4) == \
            ("2.5.0", GEMMA4_LTX_VERSION, True, True)
    assert open_checkpoint(files["official"]).model_version_info.gemma_version == GEMMA4_LTX_VERSION
    old = read_model_version({"model_version": "2.3.0"})
    assert (old.numbers, old.needs_gemma4, old.gemma_version) == ((2, 3, 0), False, None)
    assert read_model_version({"model_version": "2.4.0-rc2"}).needs_gemma4  # ltx-core requires the entry from 2.4.0
    with pytest.raises(CheckpointError, match="gemma_source_checkpoint"):
        read_model_version({"gemma_source_checkpoint": "not json"})


def _without_embedding(files, name: str, *, metadata: bool, keys=lambda k: True) -> str:
    path = files["root"] / name
    sd = {k: v for k, v in files["sd"].items() if k != DIFF + "keyframes_abs_pos_embedding" and keys(k)}
    meta = {"config": json.dumps({"transformer": tiny_config("2.5").to_dict()}), "model_version": "2.5.0"}
    save_file(sd, str(path), metadata=meta if metadata else None)
    return str(path)


@pytest.mark.parametrize(("metadata", "why"), [(True, "use_keyframes_abs_pos_embedding"),
                                               (False, "video feed-forward has no biases")],
                         ids=["config", "tensors"])
def test_ltx25_file_without_keyframe_embedding_is_refused(files, metadata, why):
    path = _without_embedding(files, f"no-embedding-{metadata}.safetensors", metadata=metadata)
    with pytest.raises(CheckpointError) as err:
        open_checkpoint(path)
    message = str(err.value)
    assert "'keyframes_abs_pos_embedding'" in message
    assert why in message
    assert "download the official file" in message


def test_file_stamped_ltx25_without_keyframe_embedding_is_refused(tmp_path):
    path = tmp_path / "relabelled.safetensors"
    sd = load_file(write_tiny_checkpoint(tmp_path / "ltx-2.3.safetensors", "2.3", dtype=torch.float32))
    save_file(sd, str(path), metadata={"model_version": "2.5.0"})  # 2.3 tensors, no config, 2.5 stamp
    with pytest.raises(CheckpointError, match=r"model_version is 2\.5\.0.*'keyframes_abs_pos_embedding'"):
        open_checkpoint(path)


def test_marker_does_not_change_older_tiny_checkpoints(tmp_path):
    ckpt = open_checkpoint(write_tiny_checkpoint(tmp_path / "ltx-2.3.safetensors", "2.3", dtype=torch.float32))
    assert ckpt.version is Version.LTX23
    assert ckpt.model_version_info.needs_gemma4 is False
    model = load_transformer(ckpt, dtype=torch.float32)
    assert not hasattr(model, "keyframes_abs_pos_embedding")
    assert model.transformer_blocks[0].ff.net[2].bias is not None
    assert torch.equal(_run(model), _run(model, marked=False))
    model25 = load_transformer(write_tiny_checkpoint(tmp_path / "ltx-2.5.safetensors", "2.5", dtype=torch.float32),
                               dtype=torch.float32)
    assert not torch.equal(_run(model25), _run(model25, marked=False))
