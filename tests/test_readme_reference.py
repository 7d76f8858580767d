"""The README's node reference is the one generated from nodes/specs.py (regenerate it when specs change)."""

from __future__ import annotations

from pathlib import Path

from rs_ltxv.nodes.reference import render_markdown

BEGIN = "<!-- node-reference:begin (generated from nodes/specs.py; do not edit) -->"
END = "<!-- node-reference:end -->"


def test_readme_node_reference_is_current():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert BEGIN in text
    assert END in text
    current = text[text.index(BEGIN) + len(BEGIN): text.index(END)].strip()
    assert current == render_markdown().strip(), "README node reference is stale: regenerate it from nodes/specs.py"
