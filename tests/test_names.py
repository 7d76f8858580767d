"""One name per thing: retired names stay retired, node inputs and library arguments share their words.

The vocabulary is ltx-core's and ComfyUI's (DEVELOPERS.md, "Names"):

* the model that doubles a latent's size is the latent **upsampler** (ltx-core ``LatentUpsampler``); "upscale" is the
  action and the pass (``upscale``, ``upscale_steps``, the node input ``upscale_model`` and ComfyUI's
  ``LATENT_UPSCALE_MODEL`` type), never "upscaler";
* pixels ↔ latents is the **video VAE**, waveform ↔ latents the **audio VAE** (with its vocoder); "codec" is kept for
  real media codecs (PyAV's H.264 / AAC);
* ``attention_mode`` and ``ffn_chunks`` are the RS LTXV Generate / Extend inputs (in users' saved workflows), so the
  library's :class:`Request` / :class:`RunOptions` fields and the CLI flags use the same words;
* a protocol of the pipeline ends in ``Protocol`` (as in ltx-core's ``protocols.py``) and no two classes or type
  aliases of the package share a name.

The source scan reads every ``.py`` of the package (not ``tests/``), the benchmarks, README.md and DEVELOPERS.md and
fails with ``file:line`` for each retired name; :data:`ALLOWED` lists the few places that must keep an old word and why.
"""

from __future__ import annotations

import argparse
import ast
import re
from collections import defaultdict
from dataclasses import fields
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_PACKAGE = {"tests", "benchmarks", "build", "dist", "example_workflows", "scripts"}
DOCS = ("README.md", "DEVELOPERS.md")

#: retired name (regex) → what replaces it
RETIRED: dict[str, str] = {
    r"[Uu]pscaler": "upsampler (the model) / upscale (the pass)",
    r"[Cc]odec": "video_vae / audio_vae (VideoVAEAdapter, AudioVAE, ...)",
    r"\bff_chunks\b|--ff-chunks": "ffn_chunks / --ffn-chunks (the node input's name)",
    r"\battention_backend\b": "attention_mode (the node input's name)",
    r"\bpipeline[./]components\b|from \.components\b": "ltx/pipeline/protocols.py",
}

#: retired name (regex) → [(file glob, allowed text (regex) on the line, why)]
ALLOWED: dict[str, list[tuple[str, str, str]]] = {
    r"[Uu]pscaler": [
        ("*", r"(spatial|temporal)-upscaler-x", "official Lightricks file names (ltx-2-spatial-upscaler-x2-*)"),
        ("*", r"RS LTXV Latent Upscaler Loader", "the loader node's display name, shown in saved workflows"),
        ("ltx/pipeline/cli.py", r'"--upscaler", dest="upsampler"', "hidden alias of --upsampler for old scripts"),
    ],
    r"[Cc]odec": [
        ("ltx/pipeline/media.py", r"\.codec_context\b", "PyAV's stream codec (AAC), a real codec"),
    ],
    r"\bff_chunks\b|--ff-chunks": [
        ("ltx/pipeline/cli.py", r'"--ff-chunks", dest="ffn_chunks"', "hidden alias of --ffn-chunks for old scripts"),
    ],
}

#: class / type-alias names defined more than once on purpose: (name, why)
SHARED_CLASS_NAMES = {
    "PerChannelStatistics": "the audio and the video VAE each have one, as in ltx-core (audio_vae/ops.py, "
                            "video_vae/ops.py)",
    "PixelNorm": "the audio and the video VAE each have one (ltx-core shares one in model/common/normalization.py)",
}


def package_sources() -> list[Path]:
    """Every ``.py`` of the package: the repository root and its folders, without tests, venvs and build output."""
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        top = path.relative_to(ROOT).parts[0]
        if top in NOT_PACKAGE or top.startswith(".") or top.endswith(".egg-info"):
            continue
        out.append(path)
    return out


def _allowed(rel: str, retired: str, line: str) -> str:
    """``line`` with the allowed occurrences of ``retired`` in file ``rel`` blanked out."""
    for glob, text, _why in ALLOWED.get(retired, ()):
        if Path(rel).match(glob):
            line = re.sub(text, " ", line)
    return line


def retired_names(files: list[Path]) -> list[str]:
    """``file:line: name (use ...)`` for every retired name outside :data:`ALLOWED`, in file paths too. A Markdown
    file's ``## Names`` section (DEVELOPERS.md's table of old → new names) is skipped."""
    found = []
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        for retired, use in RETIRED.items():
            if re.search(retired, rel):
                found.append(f"{rel}: file name matches {retired!r} (use {use})")
        names_section = False
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if path.suffix == ".md" and line.startswith("## "):
                names_section = line.strip() == "## Names"
            if names_section:
                continue
            for retired, use in RETIRED.items():
                for match in re.finditer(retired, _allowed(rel, retired, line)):
                    found.append(f"{rel}:{number}: {match.group(0)!r} (use {use})")
    return found


def test_scan_finds_retired_names_and_honours_the_allow_list(tmp_path, monkeypatch):
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    (tmp_path / "ltx").mkdir()
    (tmp_path / "ltx" / "codec.py").write_text(
        'parts.upscaler = x  # ltx-2-spatial-upscaler-x2\nRunOptions(ff_chunks=2)\nok = "upsampler"\n')
    found = retired_names([tmp_path / "ltx" / "codec.py"])
    assert found == ["ltx/codec.py: file name matches '[Cc]odec' (use video_vae / audio_vae (VideoVAEAdapter, "
                     "AudioVAE, ...))",
                     "ltx/codec.py:1: 'upscaler' (use upsampler (the model) / upscale (the pass))",
                     "ltx/codec.py:2: 'ff_chunks' (use ffn_chunks / --ffn-chunks (the node input's name))"]


def test_no_retired_names_in_package_sources_and_docs():
    files = [*package_sources(), *sorted((ROOT / "benchmarks").glob("*.py")),
             *(ROOT / name for name in DOCS if (ROOT / name).exists())]
    found = retired_names(files)
    assert not found, "retired names (see tests/test_names.py ALLOWED for the exceptions):\n" + "\n".join(found)


def _top_level_names(path: Path) -> list[tuple[str, int]]:
    """Classes anywhere in the module and module-level CapWords type aliases (``Hooks = tuple[...]``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = [(node.name, node.lineno) for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        names += [(t.id, node.lineno) for t in targets
                  if isinstance(t, ast.Name) and t.id[:1].isupper() and not t.id.isupper()]
    return names


def test_class_and_alias_names_are_collected(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("class PromptEncoder:\n    class _Inner:\n        pass\n\n\n"
                      "Hooks = tuple[int, int]\nMAX = 3\nx: int = 1\nAlias: type = int\n")
    assert sorted(_top_level_names(module)) == [("Alias", 9), ("Hooks", 6), ("PromptEncoder", 1), ("_Inner", 2)]


def test_each_class_name_means_one_thing():
    where: dict[str, list[str]] = defaultdict(list)
    for path in package_sources():
        for name, line in _top_level_names(path):
            where[name].append(f"{path.relative_to(ROOT).as_posix()}:{line}")
    clashes = {name: places for name, places in where.items() if len(places) > 1 and name not in SHARED_CLASS_NAMES}
    assert not clashes, "one name, several classes (rename one, or list it in SHARED_CLASS_NAMES with why):\n" + \
        "\n".join(f"{name}: {', '.join(places)}" for name, places in sorted(clashes.items()))


def test_pipeline_protocols_are_suffixed():
    tree = ast.parse((ROOT / "ltx" / "pipeline" / "protocols.py").read_text(encoding="utf-8"))
    protocols = [node.name for node in tree.body if isinstance(node, ast.ClassDef)
                 and any(isinstance(b, ast.Name) and b.id == "Protocol" for b in node.bases)]
    assert protocols, "ltx/pipeline/protocols.py defines no Protocol"
    assert [p for p in protocols if not p.endswith("Protocol")] == []


def test_model_parts_fields_are_the_loader_arguments():
    """``ModelParts.video_vae / audio_vae / upsampler`` are filled from ``load_model_parts(video_vae=, audio_vae=,
    upsampler=)``: the same word for the part and for its file."""
    import inspect

    from rs_ltxv.ltx.pipeline.parts import load_model_parts
    from rs_ltxv.ltx.pipeline.protocols import ModelParts

    parts = {f.name for f in fields(ModelParts)}
    arguments = set(inspect.signature(load_model_parts).parameters)
    assert {"video_vae", "audio_vae", "upsampler"} <= parts & arguments


@pytest.mark.parametrize("node_input", ["attention_mode", "ffn_chunks", "upscale", "upscale_steps", "upscale_denoise"])
def test_node_inputs_and_request_fields_share_names(node_input):
    from rs_ltxv.ltx.pipeline.request import Request
    from rs_ltxv.nodes import specs

    for spec in (specs.GENERATE, specs.EXTEND):
        assert spec.input(node_input).name == node_input
    assert node_input in {f.name for f in fields(Request)}


def test_run_options_use_the_node_input_names():
    from rs_ltxv.ltx.transformer import RunOptions

    # kernels: per-attention-kind overrides set by the library (sequence parallelism), not a user setting
    assert [f.name for f in fields(RunOptions) if f.name != "kernels"] == ["attention_mode", "ffn_chunks"]


def _generate_parser() -> argparse.ArgumentParser:
    from rs_ltxv.ltx.pipeline.cli import add_generate_arguments

    parser = argparse.ArgumentParser()
    add_generate_arguments(parser)
    return parser


REQUIRED = ["--checkpoint", "c.safetensors", "--text-encoder", "gemma", "--prompt", "a fox"]


def test_cli_flags_use_the_library_names():
    args = _generate_parser().parse_args(
        [*REQUIRED, "--upsampler", "up.safetensors", "--attention-mode", "sage", "--ffn-chunks", "4"])
    assert (args.upsampler, args.attention_mode, args.ffn_chunks) == ("up.safetensors", "sage", 4)


def test_cli_defaults_are_kept_with_the_aliases_present():
    args = _generate_parser().parse_args(REQUIRED)
    assert (args.upsampler, args.attention_mode, args.ffn_chunks) == (None, "auto", 1)


@pytest.mark.parametrize("old, new", [
    (["--upscaler", "up.safetensors"], ["--upsampler", "up.safetensors"]),
    (["--attention", "flash"], ["--attention-mode", "flash"]),
    (["--ff-chunks", "3"], ["--ffn-chunks", "3"]),
])
def test_old_cli_flags_still_work_and_are_hidden(old, new):
    parser = _generate_parser()
    assert parser.parse_args([*REQUIRED, *old]) == parser.parse_args([*REQUIRED, *new])
    assert not re.search(re.escape(old[0]) + r"(?![-\w])", parser.format_help()), f"{old[0]} shows in --help"
