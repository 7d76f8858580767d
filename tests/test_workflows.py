"""Example workflows are valid without ComfyUI: node types exist (ours or core's 0.20.1 subset), links are
consistent and typed right, widget values fit the inputs, every model file they name carries the metadata ComfyUI's
missing-models dialog needs to offer a download, each has a thumbnail and an API-format twin."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from rs_ltxv.nodes.workflows import (
    all_specs,
    model_metadata_problems,
    model_widgets,
    ui_to_api,
    validate_api,
    validate_ui,
)

ROOT = Path(__file__).resolve().parents[1] / "example_workflows"
UI = sorted(ROOT.glob("*.json"))
SPECS = all_specs()


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_there_are_example_workflows():
    assert any("text to video" in p.stem for p in UI)


@pytest.mark.parametrize("path", UI, ids=lambda p: p.stem)
def test_ui_workflow_is_valid(path):
    assert validate_ui(_load(path), SPECS, require_model_metadata=True) == []


@pytest.mark.parametrize("path", UI, ids=lambda p: p.stem)
def test_every_model_file_has_download_metadata(path):
    """Each widget naming a model file has a {name, url, directory} entry: a Hugging Face download of that very file
    into one of the folders the widget lists."""
    wf = _load(path)
    named = [(n["id"], f) for n in wf["nodes"] for f in model_widgets(n, SPECS[n["type"]]).values()]
    assert named, "the example names no model file"
    for node_id, file in named:
        node = next(n for n in wf["nodes"] if n["id"] == node_id)
        entry = next(e for e in node["properties"]["models"] if e["name"] == file)
        assert entry["url"].startswith("https://huggingface.co/"), entry
        assert "/resolve/main/" in entry["url"], entry
        assert entry["url"].rsplit("/", 1)[1] == file, entry
    assert model_metadata_problems(wf, SPECS) == []


@pytest.mark.parametrize("path", UI, ids=lambda p: p.stem)
def test_thumbnail_is_a_jpeg(path):
    jpg = path.with_suffix(".jpg")
    data = jpg.read_bytes()
    assert data[:3] == b"\xff\xd8\xff"
    assert data[-2:] == b"\xff\xd9"
    assert len(data) > 2000


@pytest.mark.parametrize("path", UI, ids=lambda p: p.stem)
def test_api_twin_matches_and_is_valid(path):
    api = _load(ROOT / "api" / path.name)
    assert api == ui_to_api(_load(path), SPECS)
    assert validate_api(api, SPECS) == []
    assert any(node["class_type"] == "RSLTXVGenerate" or node["class_type"] == "RSLTXVExtend"
               for node in api.values())


def test_every_api_prompt_has_a_ui_workflow():
    assert {p.name for p in (ROOT / "api").glob("*.json")} == {p.name for p in UI}


API = sorted((ROOT / "api").glob("*.json"))


def _api_nodes(class_types: tuple[str, ...]) -> list[tuple[str, dict]]:
    """(example name, inputs) of every API node of those types across the examples."""
    return [(p.stem, node["inputs"]) for p in API for node in _load(p).values() if node["class_type"] in class_types]


def test_upscale_denoise_shows_where_the_official_refinement_starts():
    """With upscale_steps 0 the 2x pass runs the official stage-2 sigmas and ignores upscale_denoise; an example
    that sets it anyway shows their start (0.909 at the widget's 0.01 step), not a level that is never used."""
    from rs_ltxv.ltx.pipeline.schedules import STAGE2_SIGMAS

    official = [(name, inputs) for name, inputs in _api_nodes(("RSLTXVGenerate", "RSLTXVExtend"))
                if inputs.get("upscale") and inputs.get("upscale_steps") == 0]
    assert official, "no example runs the 2x pass with the official sigmas"
    for name, inputs in official:
        assert inputs["upscale_denoise"] == round(STAGE2_SIGMAS[0], 2), name


def test_ltx25_examples_decode_with_the_native_diffusion_decoder():
    """LTX-2.5's native decoder is the diffusion one (README): its examples load the VAE file that holds it."""
    from rs_ltxv.ltx.tiny import LTX25_VIDEO_VAE

    loaders = [(name, inputs) for name, inputs in _api_nodes(("RSLTXVVAELoader",)) if name.startswith("LTX-2.5")]
    assert len(loaders) == len([p for p in API if p.stem.startswith("LTX-2.5")])
    for name, inputs in loaders:
        assert (inputs["vae_name"], inputs["decoder"]) in {(LTX25_VIDEO_VAE.name, "auto"),
                                                           (LTX25_VIDEO_VAE.name, "diffusion")}, name


# --- the validator must catch what is wrong -------------------------------------------------------------------

@pytest.fixture
def t2v():
    return _load(next(p for p in UI if "text to video" in p.stem))


def _node(wf, type_):
    return next(n for n in wf["nodes"] if n["type"] == type_)


def test_catches_unknown_node_type(t2v):
    _node(t2v, "SaveVideo")["type"] = "SaveVideoXYZ"
    assert any("unknown node type" in p for p in validate_ui(t2v, SPECS))


def test_catches_widget_out_of_range(t2v):
    gen = _node(t2v, "RSLTXVGenerate")
    gen["widgets_values"][0] = 770  # width off the 32 step
    assert any("width" in p and "step" in p for p in validate_ui(t2v, SPECS))


def test_catches_missing_widget_value(t2v):
    _node(t2v, "RSLTXVGenerate")["widgets_values"].pop()
    assert any("missing a value" in p for p in validate_ui(t2v, SPECS))


def test_catches_broken_and_mistyped_links(t2v):
    broken = copy.deepcopy(t2v)
    broken["links"][0][3] = 999
    assert any("missing node" in p for p in validate_ui(broken, SPECS))
    mistyped = copy.deepcopy(t2v)
    link = next(lk for lk in mistyped["links"] if lk[5] == "RS_LTXV_VAE")
    link[5] = "VAE"
    assert any("type VAE" in p for p in validate_ui(mistyped, SPECS))
    unlinked = copy.deepcopy(t2v)
    gen = _node(unlinked, "RSLTXVGenerate")
    vae_input = next(i for i in gen["inputs"] if i["name"] == "vae")
    unlinked["links"] = [lk for lk in unlinked["links"] if lk[0] != vae_input["link"]]
    vae_input["link"] = None
    problems = validate_ui(unlinked, SPECS)
    assert any("required input 'vae'" in p for p in problems)
    assert any("missing link" in p for p in problems)  # the loader still lists the removed link


def test_api_validator_catches_problems(t2v):
    api = ui_to_api(t2v, SPECS)
    gen_id = next(k for k, v in api.items() if v["class_type"] == "RSLTXVGenerate")
    bad = copy.deepcopy(api)
    bad[gen_id]["inputs"]["num_frames"] = 100
    bad[gen_id]["inputs"]["bogus"] = 1
    del bad[gen_id]["inputs"]["model"]
    src = bad[gen_id]["inputs"]["vae"][0]
    bad[gen_id]["inputs"]["positive"] = [src, 0]
    problems = validate_api(bad, SPECS)
    assert any("num_frames" in p for p in problems)
    assert any("bogus" in p for p in problems)
    assert any("'model' is missing" in p for p in problems)
    assert any("positive takes CONDITIONING but gets RS_LTXV_VAE" in p for p in problems)


# --- model metadata: what the missing-models dialog needs ----------------------------------------------------------

@pytest.fixture
def core_example():
    return _load(next(p for p in UI if "core loaders" in p.stem))


def _models(wf, type_):
    return _node(wf, type_)["properties"]["models"]


def _drop_models(wf, type_):
    del _node(wf, type_)["properties"]["models"]


def _set(type_, index, key, value):
    def mutate(wf):
        _models(wf, type_)[index][key] = value
    return mutate


def _del(type_, index, key):
    def mutate(wf):
        del _models(wf, type_)[index][key]
    return mutate


def _add_stale(wf):
    _models(wf, "RSLTXVVAELoader").append({"name": "other.safetensors", "directory": "vae",
                                           "url": "https://huggingface.co/a/b/resolve/main/other.safetensors"})


def _second_url(wf):
    url = "https://huggingface.co/Someone/else/resolve/main/ltx-2.3-22b-distilled.safetensors"
    _models(wf, "RSLTXVVAELoader")[0]["url"] = url


def _not_a_list(wf):
    _node(wf, "RSLTXVModelLoader")["properties"]["models"] = {"name": "x"}


def _gguf_in_unet(wf):  # a folder the loader lists: fine
    node = _node(wf, "RSLTXVModelLoader")
    node["widgets_values"][0] = "q.gguf"
    node["properties"]["models"] = [{"name": "q.gguf", "directory": "unet",
                                     "url": "https://huggingface.co/a/b/resolve/main/sub/q.gguf"}]


HF = "https://huggingface.co/Lightricks/LTX-2.3/"
#: (which example, mutation, expected problem or None)
METADATA_CASES = [
    ("t2v", lambda wf: None, None),
    ("t2v", lambda wf: _drop_models(wf, "RSLTXVModelLoader"), "ckpt_name names 'ltx-2.3-22b-distilled.safetensors'"),
    ("t2v", lambda wf: _drop_models(wf, "RSLTXVTextEncoderLoader"), "text_encoder names 'gemma_3_12B_it"),
    ("t2v", lambda wf: _drop_models(wf, "RSLTXVAudioVAELoader"), "audio_vae_name names"),
    ("t2v", _set("RSLTXVModelLoader", 0, "directory", "vae"), "lists files from checkpoints, diffusion_models, unet"),
    ("t2v", _set("RSLTXVTextEncoderLoader", 0, "directory", "checkpoints"), "lists files from text_encoders"),
    ("t2v", _del("RSLTXVModelLoader", 0, "directory"), "has no directory"),
    ("t2v", _set("RSLTXVModelLoader", 0, "url", "http://example.com/ltx-2.3-22b-distilled.safetensors"),
     "is not a download from"),
    ("t2v", _del("RSLTXVModelLoader", 0, "url"), "is not a download from"),
    ("t2v", _set("RSLTXVModelLoader", 0, "url", HF + "blob/main/ltx-2.3-22b-distilled.safetensors"),
     "not a Hugging Face download link"),
    ("t2v", _set("RSLTXVModelLoader", 0, "url", HF + "resolve/main/ltx-2.3-22b-dev.safetensors"),
     "downloads 'ltx-2.3-22b-dev.safetensors'"),
    ("t2v", _set("RSLTXVModelLoader", 0, "name", "renamed.safetensors"), "no widget of the node names"),
    ("t2v", _add_stale, "lists 'other.safetensors', which no widget"),
    ("t2v", _second_url, "another url or directory"),
    ("t2v", _not_a_list, "must be a list"),
    ("t2v", _gguf_in_unet, None),
    ("core", lambda wf: _drop_models(wf, "LoraLoaderModelOnly"), "lora_name names"),
    ("core", _set("CheckpointLoaderSimple", 0, "directory", "loras"), "lists files from checkpoints"),
    ("core", _set("LoraLoaderModelOnly", 0, "directory", "checkpoints"), "lists files from loras"),
    ("core", lambda wf: _drop_models(wf, "LTXAVTextEncoderLoader"), "text_encoder names"),
]


@pytest.mark.parametrize(("which", "mutate", "expected"), METADATA_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(METADATA_CASES)])
def test_model_metadata_validation(t2v, core_example, which, mutate, expected):
    wf = copy.deepcopy({"t2v": t2v, "core": core_example}[which])
    mutate(wf)
    problems = validate_ui(wf, SPECS, require_model_metadata=True)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems
        assert validate_ui(wf, SPECS) == []  # only the metadata check minds
