"""The node specs are complete against the seed spec (every input with its default and step) and the ComfyUI V1
classes built from them say the same thing. No ComfyUI needed."""

from __future__ import annotations

import pytest

from rs_ltxv.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, specs
from rs_ltxv.nodes.reference import render_markdown
from rs_ltxv.nodes.v1 import input_types
from rs_ltxv.nodes.workflows import core_specs

# Seed 001 (RS LTXV Generate): name → (type, default); our socket types stand in for core's until the adapters exist.
SEED_GENERATE = {
    "model": (specs.MODEL, None), "positive": ("CONDITIONING", None), "negative": ("CONDITIONING", None),
    "vae": (specs.VIDEO_VAE_IN, None), "width": ("INT", 768), "height": ("INT", 512), "num_frames": ("INT", 97),
    "steps": ("INT", 20), "cfg": ("FLOAT", 3.0), "seed": ("INT", 0), "frame_rate": ("FLOAT", 25.0),
    "first_image": ("IMAGE", None), "middle_image": ("IMAGE", None), "last_image": ("IMAGE", None),
    "first_strength": ("FLOAT", 1.0), "middle_strength": ("FLOAT", 1.0), "last_strength": ("FLOAT", 1.0),
    "image_strength": ("FLOAT", 0.95), "crf": ("INT", 35), "audio": ("AUDIO", None),
    "audio_vae": (specs.AUDIO_VAE_IN, None), "attention_mode": ("COMBO", "auto"), "ffn_chunks": ("INT", 0),
    "upscale": ("BOOLEAN", False), "upscale_model": (specs.UPSCALE_MODEL_IN, None), "upscale_steps": ("INT", 10),
    "upscale_cfg": ("FLOAT", 3.0), "upscale_denoise": ("FLOAT", 0.5), "decode": ("BOOLEAN", False),
    "guider": ("GUIDER", None), "sampler": ("SAMPLER", None), "sigmas": ("SIGMAS", None),
    "max_shift": ("FLOAT", 2.05), "base_shift": ("FLOAT", 0.95),
}
SEED_REQUIRED = {"model", "positive", "negative", "vae", "width", "height", "num_frames", "steps", "cfg", "seed",
                 "frame_rate"}
# issue 7: built-in guidance parameters
GUIDANCE = {"stg_scale": ("FLOAT", 1.0), "stg_blocks": ("STRING", "28"), "audio_cfg": ("FLOAT", 7.0),
            "modality_scale": ("FLOAT", 3.0), "rescale": ("FLOAT", 0.7)}
SEED_EXTEND = {"latent": ("LATENT", None), "num_new_frames": ("INT", 80), "overlap_frames": ("INT", 16),
               "overlap_strength": ("FLOAT", 1.0)}
SHARED_WITH_EXTEND = set(SEED_GENERATE) - {"width", "height", "num_frames", "first_image", "middle_image",
                                           "first_strength", "middle_strength", "audio"}


@pytest.mark.parametrize(("name", "expected"), sorted({**SEED_GENERATE, **GUIDANCE}.items()))
def test_generate_has_every_seed_input_with_its_default(name, expected):
    spec = specs.GENERATE.input(name)
    assert (spec.type, spec.default) == expected
    assert spec.optional == (name not in SEED_REQUIRED)
    assert spec.tooltip


@pytest.mark.parametrize(("name", "expected"), sorted({**SEED_EXTEND, **GUIDANCE}.items()))
def test_extend_has_its_inputs(name, expected):
    spec = specs.EXTEND.input(name)
    assert (spec.type, spec.default) == expected


def test_extend_shares_the_generate_options():
    for name in SHARED_WITH_EXTEND:
        a, b = specs.GENERATE.input(name), specs.EXTEND.input(name)
        assert (a.type, a.default, a.optional) == (b.type, b.default, b.optional), name
    assert specs.EXTEND.input("audio_latent").type == "LATENT"


def test_steps_and_ranges_from_the_seed():
    g, e = specs.GENERATE, specs.EXTEND
    assert (g.input("width").step, g.input("height").step) == (32, 32)
    assert (g.input("num_frames").step, g.input("num_frames").min) == (8, 0)  # 0 = the LTX-2.5 duration head
    assert g.input("num_frames").check(97) is None
    assert g.input("num_frames").check(0) is None
    assert g.input("num_frames").check(96)
    assert g.input("num_frames").check(8)
    assert (e.input("num_new_frames").step, e.input("overlap_frames").step) == (8, 8)
    assert g.input("attention_mode").options[:3] == ("auto", "default", "sage")
    assert 16 <= g.input("ffn_chunks").max
    assert g.input("ffn_chunks").min == 0


def test_ids_names_category():
    assert specs.GENERATE.id == "RSLTXVGenerate"
    assert specs.GENERATE.display_name == "RS LTXV Generate"
    assert specs.EXTEND.id == "RSLTXVExtend"
    assert specs.EXTEND.display_name == "RS LTXV Extend"
    assert specs.GENERATE.category == specs.EXTEND.category == "rs-nodes"
    assert all(node_id.startswith("RS") for node_id in specs.NODES)
    assert not set(specs.NODES) & set(core_specs())
    for spec in specs.NODES.values():
        names = [i.name for i in spec.inputs]
        assert len(names) == len(set(names)), spec.id


def test_outputs():
    for spec in (specs.GENERATE, specs.EXTEND):
        assert [(o.name, o.type) for o in spec.outputs] == [
            ("latent", "LATENT"), ("audio_latent", "LATENT"), ("images", "IMAGE"), ("audio", "AUDIO")]


def test_widget_checks_reject_bad_values():
    width = specs.GENERATE.input("width")
    assert width.check(768) is None
    assert "below" in width.check(32)
    assert "above" in width.check(10**6)
    assert "step" in width.check(770)
    assert width.check(1.5)
    assert width.check(True)
    assert specs.GENERATE.input("attention_mode").check("fast")
    assert specs.GENERATE.input("decode").check(1)
    assert specs.GENERATE.input("cfg").check(-1.0)
    assert specs.GENERATE.input("cfg").check(3) is None


def test_v1_classes_follow_the_specs():
    assert set(NODE_CLASS_MAPPINGS) == set(specs.NODES)
    assert NODE_DISPLAY_NAME_MAPPINGS["RSLTXVGenerate"] == "RS LTXV Generate"
    cls = NODE_CLASS_MAPPINGS["RSLTXVGenerate"]
    types = cls.INPUT_TYPES()
    assert list(types["required"]) == [i.name for i in specs.GENERATE.inputs if not i.optional]
    assert list(types["optional"]) == [i.name for i in specs.GENERATE.inputs if i.optional]
    assert types["required"]["width"] == ("INT", {"tooltip": specs.GENERATE.input("width").tooltip,
                                                  "default": 768, "min": 64, "max": 8192, "step": 32})
    assert types["optional"]["attention_mode"][0] == list(specs.ATTENTION_MODES)
    assert types["required"]["seed"][1]["control_after_generate"] is True
    assert types["optional"]["rescale"][1]["advanced"] is True
    assert cls.RETURN_TYPES == ("LATENT", "LATENT", "IMAGE", "AUDIO")
    assert cls.CATEGORY == "rs-nodes"
    assert callable(getattr(cls(), cls.FUNCTION))


def test_loader_combos_are_empty_without_comfyui():
    types = input_types(specs.MODEL_LOADER)
    assert types["required"]["ckpt_name"][0] == []


def test_markdown_reference_lists_every_node_and_input():
    text = render_markdown()
    for spec in specs.NODES.values():
        assert f"### {spec.display_name} (`{spec.id}`)" in text
        for i in spec.inputs:
            assert f"| `{i.name}` | {i.type} |" in text
    assert '| `cfg` | FLOAT | 3.0 |' in text
    assert "step 32" in text


def test_every_output_has_a_tooltip():
    missing = [f"{spec.id}.{out.name}" for spec in specs.NODES.values() for out in spec.outputs if not out.tooltip]
    assert missing == []


@pytest.mark.parametrize(("node", "values", "words"), [
    ("RSLTXVGenerate", {"num_frames": 100}, "use 97 or 105"),
    ("RSLTXVGenerate", {"width": 100}, "use 96 or 128"),
    ("RSLTXVGenerate", {"upscale": True, "width": 96}, "multiple of 64"),
    ("RSLTXVGenerate", {"stg_blocks": "20, x"}, "stg_blocks"),
    ("RSLTXVGenerate", {"height": 8200}, "height"),
    ("RSLTXVExtend", {"num_new_frames": 12}, "use 8 or 16"),
    ("RSLTXVExtend", {"overlap_frames": 4}, "overlap_frames"),
])
def test_validate_inputs_refuses_bad_widgets_before_running(node, values, words):
    import inspect

    from rs_ltxv.nodes import NODE_CLASS_MAPPINGS

    cls = NODE_CLASS_MAPPINGS[node]
    args = inspect.getfullargspec(cls.VALIDATE_INPUTS)
    assert args.varkw is None  # ComfyUI keeps its own checks for the inputs not listed (e.g. file combos)
    assert "ckpt_name" not in args.args
    assert set(values) <= set(args.args)
    assert len(args.args) <= 5  # ComfyUI repeats a failure once per listed input: keep the list short
    assert cls.VALIDATE_INPUTS() is True  # linked / default values pass
    problem = cls.VALIDATE_INPUTS(**values)
    assert isinstance(problem, str)
    assert words in problem
