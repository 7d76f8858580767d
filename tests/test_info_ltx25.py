"""``python -m rs_ltxv info`` on the LTX-2.5 files (``tiny --set --version 2.5``): the duration head, the two video
VAE files (which decoder each holds), the bundled Gemma-4 (version, size, tokenizer, projection, quantised layers),
the 2.5 transformer (version, the Gemma it needs), a 2.5 single file with the diffusion decoder, and a 2.5 file that
lost its keyframe embedding (refused, saying so). All from headers: nothing is loaded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from rs_ltxv.__main__ import main
from rs_ltxv.ltx.loading.info import describe
from rs_ltxv.ltx.loading.layout import GEMMA4_LTX_VERSION
from rs_ltxv.ltx.tiny import (
    LTX25_DURATION_HEAD,
    LTX25_GEMMA,
    LTX25_TRANSFORMER,
    LTX25_VIDEO_VAE,
    LTX25_VIDEO_VAE_CONV,
    write_tiny_checkpoint,
    write_tiny_set,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("info25")
    written = {p.name: p for p in write_tiny_set(root, version="2.5")}
    written["ckpt23"] = write_tiny_checkpoint(root / "ltx-2.3-tiny.safetensors", "2.3")
    return written


def _text(capsys, path) -> str:
    assert main(["info", str(path)]) == 0
    return capsys.readouterr().out


def _load(path) -> tuple[dict, dict]:
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def test_duration_head_file(files, tmp_path, capsys):
    path = files[LTX25_DURATION_HEAD.name]
    d = describe(path)
    assert (d["holds"], d["version"], d["model_version"]) == ("LTX-2.5 duration head", "LTX-2.5", "2.5.0")
    tensors, meta = _load(path)
    written = json.loads(meta["config"])
    settings = d["details"]["settings"]
    assert settings["from"] == "metadata"
    assert settings["num_pooler_heads"] == written["duration_head"]["num_pooler_heads"] == 2
    assert settings["video_cross_attention_dim"] == written["transformer"]["cross_attention_dim"]
    text = _text(capsys, path)
    assert "holds:         LTX-2.5 duration head" in text, text
    assert "settings:" in text, text
    assert "unknown" not in text, text
    save_file(tensors, str(tmp_path / "head.safetensors"))  # metadata dropped: the shapes and the default 4 heads
    bare = describe(tmp_path / "head.safetensors")["details"]["settings"]
    assert (bare["from"], bare["num_pooler_heads"]) == ("tensor shapes", 4)


@pytest.mark.parametrize(("name", "decoder", "words", "version"), [
    (LTX25_VIDEO_VAE.name, "diffusion", "encoder + LTX-2.5 diffusion decoder", "LTX-2.5"),
    (LTX25_VIDEO_VAE_CONV.name, "vae", "encoder + convolutional decoder", None),
])
def test_video_vae_files_say_which_decoder(files, capsys, name, decoder, words, version):
    d = describe(files[name])
    assert d["details"]["decoder"] == decoder
    assert d["details"]["encoder"] is True
    assert d["version"] == version
    assert f"holds:         video VAE: {words}" in _text(capsys, files[name])


def test_diffusion_vae_details_come_from_its_config(files):
    with safe_open(str(files[LTX25_VIDEO_VAE.name]), "pt") as f:
        section = json.loads(f.metadata()["config"])["vae"]
    details = describe(files[LTX25_VIDEO_VAE.name])["details"]
    assert details["widths"] == section["decoder"]["stage_channels"]
    assert details["steps"] == section["decoder"]["default_num_inference_steps"]
    assert details["output"] == section["model_output_type"]


def test_gemma4_bundle(files, tmp_path, capsys):
    from rs_ltxv.ltx.quant.writers import quantise_state_dict

    path = files[LTX25_GEMMA.name]
    tensors, meta = _load(path)
    config = json.loads(meta["gemma_config"])
    d = describe(path)
    assert (d["holds"], d["version"], d["config_source"]) == ("Gemma-4 text encoder (LTX-2.5)", "LTX-2.5",
                                                              "metadata (gemma_config)")
    details = d["details"]
    assert details["gemma_version"] == config["gemma_version"] == GEMMA4_LTX_VERSION
    assert details["layers"] == config["text_config"]["num_hidden_layers"]
    assert details["hidden_size"] == config["text_config"]["hidden_size"]
    assert details["tokenizer"] == "inside (tokenizer_json)"
    assert "video_aggregate_embed" in details["projection"]
    assert "audio_aggregate_embed" in details["projection"]
    assert details["quantised_layers"] == "none (float weights)"
    text = _text(capsys, path)
    assert "holds:         Gemma-4 text encoder" in text, text
    assert f"gemma version: {GEMMA4_LTX_VERSION}" in text, text
    assert "config:        none" not in text, text
    first = quantise_state_dict(tensors, "comfy_fp8", select=lambda k, t: k.startswith("model.layers.0.")
                                and k.endswith(".weight") and t.ndim == 2)
    save_file(first, str(tmp_path / "g4-fp8.safetensors"), metadata=meta)
    layers = config["text_config"]["num_hidden_layers"]
    assert describe(tmp_path / "g4-fp8.safetensors")["details"]["quantised_layers"] == f"1 of {layers}"
    unprojected = {k: v for k, v in tensors.items() if not k.startswith("text_embedding_projection.")}
    save_file(unprojected, str(tmp_path / "g4-bare.safetensors"), metadata=meta)
    assert describe(tmp_path / "g4-bare.safetensors")["details"]["projection"].startswith("none")


def test_gemma3_file_says_it_is_for_ltx2_and_23(tmp_path, capsys):
    from rs_ltxv.ltx.tiny_parts import write_tiny_gemma_file

    path = write_tiny_gemma_file(tmp_path / "gemma_3_12B_it.safetensors")
    assert "holds:         Gemma text encoder (Gemma-3 12B, for LTX-2 / LTX-2.3)" in _text(capsys, path)


def test_ltx25_checkpoint_names_version_and_gemma(files, capsys):
    d = describe(files[LTX25_TRANSFORMER.name])
    assert (d["version"], d["model_version"]) == ("LTX-2.5", "2.5.0")
    assert (d["text_encoder"]["gemma"], d["text_encoder"]["gemma_version"]) == (4, GEMMA4_LTX_VERSION)
    assert "gemma4-12b-with-proj-ltx-2.5" in d["text_encoder"]["files"]
    assert d["video_decoder"] is None  # transformer + connectors only
    text = _text(capsys, files[LTX25_TRANSFORMER.name])
    assert f"text encoder:  Gemma-4 (gemma_version {GEMMA4_LTX_VERSION})" in text, text
    old = describe(files["ckpt23"])
    assert (old["text_encoder"]["gemma"], old["text_encoder"]["gemma_version"]) == (3, None)
    assert "text encoder:  Gemma-3 12B" in _text(capsys, files["ckpt23"])


def test_ltx25_single_file_with_the_diffusion_decoder(files, tmp_path):
    from rs_ltxv.ltx.video_vae.diffusion.tiny import tiny_diffusion_vae_state

    tensors, meta = _load(files[LTX25_TRANSFORMER.name])
    vae, section = tiny_diffusion_vae_state(16, prefix="vae.")
    config = {**json.loads(meta["config"]), "vae": section}
    save_file({**tensors, **vae}, str(tmp_path / "single.safetensors"), metadata={**meta, "config": json.dumps(config)})
    d = describe(tmp_path / "single.safetensors")
    assert d["version"] == "LTX-2.5"
    assert "vae" in d["components"]
    assert d["video_decoder"] == "diffusion"


def test_ltx25_file_without_its_keyframe_embedding_is_refused_saying_what_is_missing(files, tmp_path):
    tensors, meta = _load(files[LTX25_TRANSFORMER.name])
    kept = {k: v for k, v in tensors.items() if "keyframes_abs_pos_embedding" not in k}
    assert len(kept) == len(tensors) - 1
    save_file(kept, str(tmp_path / "no-keyframes.safetensors"), metadata=meta)
    proc = subprocess.run([sys.executable, "-m", "rs_ltxv", "info", str(tmp_path / "no-keyframes.safetensors")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr, proc.stderr
    for words in ("LTX-2.5 checkpoint", "keyframes_abs_pos_embedding", "download the official file"):
        assert words in proc.stderr, proc.stderr
