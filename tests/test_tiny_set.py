"""``python -m rs_ltxv tiny DIR --set``: every model file every example workflow names (UI and API) is written under
DIR, in the folder the workflow says, and loads with the library's loaders; the command says what it wrote and never
replaces existing files unasked (a folder holding one version's set gets the other's); every file gets the umask's
permissions. ``tiny OUT.safetensors`` keeps writing one checkpoint."""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
from pathlib import Path

import pytest
import torch

from rs_ltxv.__main__ import main
from rs_ltxv.ltx.errors import CheckpointError
from rs_ltxv.ltx.loading import SafetensorsFile, load_prompt_encoder, load_transformer
from rs_ltxv.ltx.loading.audio import load_audio_vae
from rs_ltxv.ltx.loading.duration_head import load_duration_head
from rs_ltxv.ltx.loading.upsampler import load_upsampler
from rs_ltxv.ltx.loading.video_vae import load_video_vae
from rs_ltxv.ltx.pipeline.parts import load_video_vae_with_decoder
from rs_ltxv.ltx.tiny import LTX25_VIDEO_VAE_CONV, TINY_SET, TINY_SET_23, TINY_SET_25
from rs_ltxv.nodes.workflows import MODEL_EXTENSIONS, all_specs, model_folders, model_widgets

ROOT = Path(__file__).resolve().parents[1] / "example_workflows"
UI = sorted(ROOT.glob("*.json"))
API = sorted((ROOT / "api").glob("*.json"))
SPECS = all_specs()
F32 = torch.float32


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    """``python -m rs_ltxv tiny DIR --set`` once: (DIR, the lines it printed)."""
    out = tmp_path_factory.mktemp("tiny") / "models"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["tiny", str(out), "--set"]) == 0
    return out, buffer.getvalue().splitlines()


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _named_files(wf: dict) -> list[tuple[dict, dict[str, dict]]]:
    """(node, {widget: its properties.models entry}) for every UI node that names a model file."""
    out = []
    for node in wf["nodes"]:
        widgets = model_widgets(node, SPECS[node["type"]])
        if widgets:
            entries = {e["name"]: e for e in node["properties"]["models"]}
            out.append((node, {w: entries[f] for w, f in widgets.items()}))
    return out


def _source_checkpoint(wf: dict, node: dict, models: Path) -> Path:
    """The checkpoint whose MODEL reaches ``node``'s ``model`` input (through other LoRA loaders)."""
    links = {lk[0]: lk for lk in wf["links"]}
    nodes = {n["id"]: n for n in wf["nodes"]}
    while True:
        link = next(i["link"] for i in node["inputs"] if i["name"] == "model")
        node = nodes[links[link][1]]
        files = _named_files({"nodes": [node]})
        if node["type"] != "LoraLoaderModelOnly" and files:
            entry = next(iter(files[0][1].values()))
            return models / entry["directory"] / entry["name"]


def _lora_fits(lora: Path, checkpoint: Path) -> None:
    """Every ``diffusion_model.X.lora_A/B.weight`` pair of ``lora`` patches a Linear ``X`` of the checkpoint's
    transformer: ``B @ A`` has the weight's shape."""
    weights = SafetensorsFile(checkpoint).tensors
    pairs = SafetensorsFile(lora).tensors
    down = [k for k in pairs if k.endswith(".lora_A.weight")]
    assert down, f"{lora.name} holds no lora_A weights"
    for key in down:
        layer = key.removeprefix("diffusion_model.").removesuffix(".lora_A.weight")
        target = weights[f"model.diffusion_model.{layer}.weight"].shape
        up = pairs[key.replace("lora_A", "lora_B")].shape
        assert (up[0], pairs[key].shape[1]) == tuple(target), layer


#: node type → what loading its files means (``f``: widget → file); every loader node of the examples has a row
LOADS = {
    "RSLTXVModelLoader": lambda f: load_transformer(f["ckpt_name"], dtype=F32),
    "RSLTXVTextEncoderLoader": lambda f: load_prompt_encoder(f["text_encoder"], f["ckpt_name"], dtype=F32)
    .encode("a fox in the snow"),
    "RSLTXVVAELoader": lambda f: load_video_vae_with_decoder(f["vae_name"], f.get("decoder", "auto"), "diffusion",
                                                             dtype=F32),
    "RSLTXVDurationHeadLoader": lambda f: load_duration_head(f["head_name"], dtype=F32),
    "RSLTXVAudioVAELoader": lambda f: load_audio_vae(f["audio_vae_name"], dtype=F32),
    "RSLTXVUpscaleModelLoader": lambda f: load_upsampler(f["model_name"], dtype=F32),
    "CheckpointLoaderSimple": lambda f: (load_transformer(f["ckpt_name"], dtype=F32),
                                         load_video_vae(f["ckpt_name"], dtype=F32)),
    "LTXAVTextEncoderLoader": lambda f: load_prompt_encoder(f["text_encoder"], f["ckpt_name"], dtype=F32)
    .encode("a fox in the snow"),
    "LTXVAudioVAELoader": lambda f: load_audio_vae(f["ckpt_name"], dtype=F32),
}


def test_the_command_lists_every_file_it_wrote_with_its_folder(tiny_set):
    out, lines = tiny_set
    for f in TINY_SET:
        path = out / f.folder / f.name
        assert path.is_file(), path
        assert any(line.startswith(f"{path}  ") for line in lines), (path, lines)
    assert f"wrote {len(TINY_SET)} files" in lines[-1]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        f.path for f in TINY_SET), "files other than the listed ones (a staging folder left behind?)"


@pytest.mark.parametrize("path", UI, ids=lambda p: p.stem)
def test_every_model_file_of_a_ui_example_is_there_and_loads(tiny_set, path):
    out, _ = tiny_set
    wf = _load(path)
    named = _named_files(wf)
    assert named
    for node, entries in named:
        files = {w: out / e["directory"] / e["name"] for w, e in entries.items()}
        for widget, file in files.items():
            assert file.is_file(), f"{node['type']}.{widget}: {file} missing from the tiny set"
        if node["type"] == "LoraLoaderModelOnly":
            _lora_fits(files["lora_name"], _source_checkpoint(wf, node, out))
        else:
            assert node["type"] in LOADS, f"no load check for {node['type']}"
            LOADS[node["type"]](files)


@pytest.mark.parametrize("path", API, ids=lambda p: p.stem)
def test_every_model_file_of_an_api_example_is_in_a_folder_its_loader_lists(tiny_set, path):
    out, _ = tiny_set
    found = 0
    for node in _load(path).values():
        for name, value in node["inputs"].items():
            if not (isinstance(value, str) and value.lower().endswith(MODEL_EXTENSIONS)):
                continue
            folders = model_folders(node["class_type"], name, SPECS)
            assert folders, f"{node['class_type']}.{name}: unknown model folder"
            assert any((out / folder / value).is_file() for folder in folders), (value, folders)
            found += 1
    assert found


#: files of the set no example names: the LTX-2.5 VAE with the convolutional decoder, the alternative the VAE
#: loader's tooltip offers (the examples use the native diffusion-decoder file)
NOT_IN_EXAMPLES = {(LTX25_VIDEO_VAE_CONV.folder, LTX25_VIDEO_VAE_CONV.name)}


def test_the_set_holds_only_what_the_examples_name():
    named = {(e["directory"], e["name"]) for p in UI for _, entries in _named_files(_load(p))
             for e in entries.values()}
    assert not named & NOT_IN_EXAMPLES
    assert {(f.folder, f.name) for f in TINY_SET} == named | NOT_IN_EXAMPLES


def test_existing_files_are_never_replaced_unasked(tiny_set, capsys):
    out, _ = tiny_set
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert main(["tiny", str(out), "--set"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: tiny --set:"), err
    assert "--overwrite" in err
    assert err.count("\n") == 1
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(("argv", "message"), [
    (["--set", "--version", "2.0"], "LTX-2.3"),
    (["--set"], "is a file"),
])
def test_tiny_set_errors_are_one_line(tmp_path, capsys, argv, message):
    target = tmp_path / "models"
    if "is a file" in message:
        target.write_bytes(b"")
    assert main(["tiny", str(target), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_tiny_single_checkpoint_still_works(tmp_path, capsys):
    out = tmp_path / "sub" / "tiny.safetensors"
    assert main(["tiny", str(out), "--version", "2.0"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert load_transformer(out, dtype=F32) is not None


def _umask_mode() -> int:
    """What a new file gets under this process's umask (0o644 under the usual 022)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_file_of_the_set_gets_the_umask_mode(tiny_set):
    """safetensors' own ``save_file`` creates files 0600; every tiny writer goes through ``save_safetensors``."""
    out, _ = tiny_set
    modes = {f.path: _mode(out / f.folder / f.name) for f in TINY_SET}
    assert modes == dict.fromkeys(modes, _umask_mode())


def test_a_quantised_tiny_checkpoint_gets_the_umask_mode(tmp_path, capsys):
    out = tmp_path / "tiny-fp8.safetensors"
    assert main(["tiny", str(out), "--quantise", "comfy_fp8"]) == 0
    assert oct(_mode(out)) == oct(_umask_mode())


def _stamps(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_the_whole_set_after_one_version_adds_the_other_and_keeps_the_first(tmp_path, capsys):
    out = tmp_path / "models"
    assert main(["tiny", str(out), "--set", "--version", "2.5"]) == 0
    first = _stamps(out)
    assert sorted(p.relative_to(out).as_posix() for p in first) == sorted(f.path for f in TINY_SET_25)
    capsys.readouterr()
    assert main(["tiny", str(out), "--set"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines[:-1]] == [str(out / f.folder / f.name) for f in TINY_SET_23]
    assert f"wrote {len(TINY_SET_23)} files" in lines[-1]
    assert f"kept the {len(TINY_SET_25)} files" in lines[-1]
    after = _stamps(out)
    assert {p: after[p] for p in first} == first, "an LTX-2.5 file was rewritten"
    assert sorted(p.relative_to(out).as_posix() for p in after) == sorted(f.path for f in TINY_SET)


@pytest.mark.parametrize(("present", "argv", "hint"), [
    (TINY_SET_25[:1], ["--set"], "--version 2.3"),  # part of the 2.5 set: 2.3 alone could still be added
    (TINY_SET_23[:1], ["--set"], "--version 2.5"),
    (TINY_SET_25[:1], ["--set", "--version", "2.5"], "--overwrite"),
])
def test_a_partial_set_stops_the_command_and_says_what_to_do(tmp_path, capsys, present, argv, hint):
    out = tmp_path / "models"
    for f in present:
        (out / f.folder).mkdir(parents=True, exist_ok=True)
        (out / f.folder / f.name).write_bytes(b"not a tiny file")
    before = _stamps(out)
    assert main(["tiny", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert present[0].path in err
    assert hint in err
    assert "--overwrite" in err
    assert err.count("\n") == 1
    assert _stamps(out) == before
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [], "a staging folder left behind"


def test_a_truncated_file_never_reads_100_percent(tiny_set, tmp_path):
    """A file a few bytes short of gigabytes used to print "(100.0%)"; the message gives the bytes missing and a
    percentage rounded down."""
    out, _ = tiny_set
    whole = (out / TINY_SET_25[0].folder / TINY_SET_25[0].name).read_bytes()
    short = tmp_path / "short.safetensors"
    short.write_bytes(whole[:-1])
    with pytest.raises(CheckpointError, match="truncated") as info:
        SafetensorsFile(short)
    message = str(info.value)
    assert "1 byte missing" in message
    assert "100.0%" not in message
