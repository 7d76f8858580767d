"""Example workflows are valid without ComfyUI: node types exist (ours or core's 0.20.1 subset), links are
consistent and typed right, widget values fit the inputs, each has a thumbnail and an API-format twin."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from rs_ltxv.nodes.workflows import all_specs, ui_to_api, validate_api, validate_ui

ROOT = Path(__file__).resolve().parents[1] / "example_workflows"
UI = sorted(ROOT.glob("*.json"))
SPECS = all_specs()


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_there_are_example_workflows():
    assert any("text to video" in p.stem for p in UI)


@pytest.mark.parametrize("path", UI, ids=lambda p: p.stem)
def test_ui_workflow_is_valid(path):
    assert validate_ui(_load(path), SPECS) == []


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
