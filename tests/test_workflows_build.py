"""The example workflows are built from the node specs by this file, and must stay equal to what it builds.

Regenerate after changing a node's inputs (writes the UI JSON, the API twin and the .jpg thumbnail)::

    .venv/bin/python tests/test_workflows_build.py
"""
import json
import sys
from pathlib import Path

import pytest

from rs_ltxv.nodes import specs
from rs_ltxv.nodes.workflows import all_specs, ui_to_api

from reference.comfyui import DEV_CKPT, DISTILLED_LORA

ROOT = Path(__file__).resolve().parents[1] / "example_workflows"
SPECS = all_specs()


class Graph:
    def __init__(self):
        self.nodes, self.links, self.order = [], [], 0

    def add(self, type_, pos, size, widgets, title=None, overrides=None):
        spec = SPECS[type_]
        values = []
        for w in spec.widgets:
            values.append((overrides or {}).get(w.name, w.default) if w.name in (overrides or {}) else w.default)
            if w.control_after_generate:
                values.append("fixed")
        if widgets is not None:
            values = widgets
        node = {"id": len(self.nodes) + 1, "type": type_, "pos": list(pos), "size": list(size), "flags": {},
                "order": self.order, "mode": 0,
                "inputs": [{"localized_name": i.name, "name": i.name, "type": i.type, "link": None,
                            **({"shape": 7} if i.optional else {})} for i in spec.inputs if not i.is_widget],
                "outputs": [{"localized_name": o.name, "name": o.name, "type": o.type, "links": []}
                            for o in spec.outputs],
                "properties": {"Node name for S&R": type_}, "widgets_values": values}
        if title:
            node["title"] = title
        self.order += 1
        self.nodes.append(node)
        return node

    def link(self, src, out_name, dst, in_name):
        slot = [o["name"] for o in src["outputs"]].index(out_name)
        dslot = [i["name"] for i in dst["inputs"]].index(in_name)
        lid = len(self.links) + 1
        typ = src["outputs"][slot]["type"]
        self.links.append([lid, src["id"], slot, dst["id"], dslot, typ])
        src["outputs"][slot]["links"].append(lid)
        dst["inputs"][dslot]["link"] = lid

    def workflow(self):
        for n in self.nodes:
            for o in n["outputs"]:
                o["links"] = o["links"] or None
        return {"id": "00000000-0000-4000-8000-000000000001", "revision": 0,
                "last_node_id": len(self.nodes), "last_link_id": len(self.links), "nodes": self.nodes,
                "links": self.links, "groups": [], "config": {},
                "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}}, "version": 0.4}


CKPT = "ltx-2.3-22b-distilled.safetensors"
PROMPT = ("A red fox trots through a snowy birch forest at dawn, its breath steaming in the cold air. The camera "
          "tracks it at eye level from the side, slowly pushing in. Soft golden light breaks through the trees. "
          "Sound: crunching snow under its paws, distant birdsong, a light wind in the branches.")
NEGATIVE = "blurry, low quality, still frame, frames, watermark, overlay, titles, has blurbox, has subtitles"


DISTILLED = dict(steps=8, cfg=1.0, stg_scale=0.0, audio_cfg=1.0, modality_scale=1.0, rescale=0.0,
                 sampler_name="euler", frame_rate=25.0, seed=42, decode=True)


def widgets_for(spec, **values):
    merged = {w.name: w.default for w in spec.widgets}
    merged.update(values)
    out = []
    for w in spec.widgets:
        out.append(merged[w.name])
        if w.control_after_generate:
            out.append("fixed")
    return out


def loaders(g, upscale=False):
    n = {}
    n["model"] = g.add("RSLTXVModelLoader", (0, 0), (380, 130), [CKPT, "auto", "default", "auto"])
    n["te"] = g.add("RSLTXVTextEncoderLoader", (0, 180), (380, 130),
                    ["gemma_3_12B_it.safetensors", CKPT, "auto", "default"])
    n["vae"] = g.add("RSLTXVVAELoader", (0, 360), (380, 130), [CKPT, "auto", "default", 512])
    n["avae"] = g.add("RSLTXVAudioVAELoader", (0, 540), (380, 80), [CKPT, "default"])
    if upscale:
        n["up"] = g.add("RSLTXVUpscaleModelLoader", (0, 670), (380, 110),
                        ["ltx-2.3-spatial-upscaler-x2-1.1.safetensors", "auto", "default"])
    return n


def prompts(g, n, text, negative=NEGATIVE):
    pos = g.add("RSLTXVTextEncode", (430, 0), (440, 220), [text], title="Prompt")
    neg = g.add("RSLTXVTextEncode", (430, 270), (440, 140), [negative], title="Negative prompt")
    g.link(n["te"], "text_encoder", pos, "text_encoder")
    g.link(n["te"], "text_encoder", neg, "text_encoder")
    return pos, neg


def wire(g, n, node, pos, neg):
    g.link(n["model"], "model", node, "model")
    g.link(pos, "conditioning", node, "positive")
    g.link(neg, "conditioning", node, "negative")
    g.link(n["vae"], "vae", node, "vae")
    g.link(n["avae"], "audio_vae", node, "audio_vae")


def save(g, node, prefix, x=1370):
    create = g.add("CreateVideo", (x, 0), (280, 80), [25.0])
    out = g.add("SaveVideo", (x, 130), (600, 500), [prefix, "auto", "auto"])
    g.link(node, "images", create, "images")
    g.link(node, "audio", create, "audio")
    g.link(create, "VIDEO", out, "video")


def t2v():
    g = Graph()
    n = loaders(g)
    pos, neg = prompts(g, n, PROMPT)
    gen = g.add("RSLTXVGenerate", (920, 0), (400, 900),
                widgets_for(specs.GENERATE, width=768, height=512, num_frames=121, **DISTILLED))
    wire(g, n, gen, pos, neg)
    save(g, gen, "video/rs_ltxv_t2v")
    return g.workflow()


def t2v_upscale():
    g = Graph()
    n = loaders(g, upscale=True)
    pos, neg = prompts(g, n, PROMPT)
    gen = g.add("RSLTXVGenerate", (920, 0), (400, 900), widgets_for(
        specs.GENERATE, width=1280, height=704, num_frames=121, upscale=True, upscale_steps=3, upscale_cfg=1.0,
        upscale_denoise=0.85, **DISTILLED))
    wire(g, n, gen, pos, neg)
    g.link(n["up"], "upscale_model", gen, "upscale_model")
    save(g, gen, "video/rs_ltxv_t2v_upscaled")
    return g.workflow()


def i2v():
    g = Graph()
    n = loaders(g)
    text = ("The woman in the picture turns her head towards the camera and smiles, wind moving her hair. Slow "
            "push-in. Sound: a quiet street, footsteps and distant traffic.")
    pos, neg = prompts(g, n, text)
    image = g.add("LoadImage", (430, 460), (440, 400), ["example.png", "image"], title="First frame")
    gen = g.add("RSLTXVGenerate", (920, 0), (400, 900),
                widgets_for(specs.GENERATE, width=768, height=512, num_frames=121, **DISTILLED))
    wire(g, n, gen, pos, neg)
    g.link(image, "IMAGE", gen, "first_image")
    save(g, gen, "video/rs_ltxv_i2v")
    return g.workflow()


def extend_clip():
    g = Graph()
    n = loaders(g)
    pos, neg = prompts(g, n, PROMPT + " The fox stops, looks back over its shoulder, then runs on into the trees.")
    first = dict(DISTILLED, decode=False)
    gen = g.add("RSLTXVGenerate", (920, 0), (400, 900),
                widgets_for(specs.GENERATE, width=768, height=512, num_frames=121, **first))
    wire(g, n, gen, pos, neg)
    ext_values = {k: v for k, v in DISTILLED.items()}
    ext = g.add("RSLTXVExtend", (1370, 0), (400, 900), widgets_for(
        specs.EXTEND, num_new_frames=96, overlap_frames=16, overlap_strength=1.0, **ext_values))
    wire(g, n, ext, pos, neg)
    g.link(gen, "latent", ext, "latent")
    g.link(gen, "audio_latent", ext, "audio_latent")
    save(g, ext, "video/rs_ltxv_extended", x=1820)
    return g.workflow()


def a2v():
    g = Graph()
    n = loaders(g)
    text = ("A street musician plays an acoustic guitar and sings on a sunny corner, people walking past. Medium "
            "shot, handheld camera. Sound: the song from the audio track.")
    pos, neg = prompts(g, n, text)
    audio = g.add("LoadAudio", (430, 460), (440, 140), ["example.wav", None, None], title="Soundtrack")
    gen = g.add("RSLTXVGenerate", (920, 0), (400, 900),
                widgets_for(specs.GENERATE, width=768, height=512, num_frames=121, **DISTILLED))
    wire(g, n, gen, pos, neg)
    g.link(audio, "AUDIO", gen, "audio")
    save(g, gen, "video/rs_ltxv_a2v")
    return g.workflow()


def gguf():
    g = Graph()
    quant = "ltx-2.3-22b-distilled-Q8_0.gguf"
    n = {
        "model": g.add("RSLTXVModelLoader", (0, 0), (380, 130), [quant, "auto", "default", "auto"]),
        "te": g.add("RSLTXVTextEncoderLoader", (0, 180), (380, 130),
                    ["gemma_3_12B_it.safetensors", quant, "auto", "default"]),
        "vae": g.add("RSLTXVVAELoader", (0, 360), (380, 130),
                     ["LTX23_video_vae_bf16.safetensors", "auto", "default", 512]),
        "avae": g.add("RSLTXVAudioVAELoader", (0, 540), (380, 80), ["LTX23_audio_vae_bf16.safetensors", "default"]),
    }
    pos, neg = prompts(g, n, PROMPT)
    gen = g.add("RSLTXVGenerate", (920, 0), (400, 900),
                widgets_for(specs.GENERATE, width=768, height=512, num_frames=121, **DISTILLED))
    wire(g, n, gen, pos, neg)
    save(g, gen, "video/rs_ltxv_gguf")
    return g.workflow()


def first_last():
    g = Graph()
    n = loaders(g)
    text = ("A paper boat drifts down a rain-filled gutter, from a sunny street corner to a dark storm drain; the "
            "camera follows it low over the water. Sound: running water, rain drops, a distant car passing.")
    pos, neg = prompts(g, n, text)
    first = g.add("LoadImage", (430, 460), (440, 400), ["example.png", "image"], title="First frame")
    last = g.add("LoadImage", (430, 900), (440, 400), ["example.png", "image"], title="Last frame")
    gen = g.add("RSLTXVGenerate", (920, 0), (400, 900),
                widgets_for(specs.GENERATE, width=768, height=512, num_frames=121, **DISTILLED))
    wire(g, n, gen, pos, neg)
    g.link(first, "IMAGE", gen, "first_image")
    g.link(last, "IMAGE", gen, "last_image")
    save(g, gen, "video/rs_ltxv_first_last")
    return g.workflow()


def core_loaders():
    """ComfyUI's own loaders and text encoder feeding RS LTXV Generate; core VAE Decode and LTXV Audio VAE Decode
    turning its latents into frames and sound."""
    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", (0, 0), (380, 100), [DEV_CKPT], title="Load Checkpoint (LTX-2.3 dev)")
    lora = g.add("LoraLoaderModelOnly", (0, 150), (380, 90), [DISTILLED_LORA, 1.0], title="Distilled LoRA")
    te = g.add("LTXAVTextEncoderLoader", (0, 290), (380, 110), ["gemma_3_12B_it_fp4_mixed.safetensors", DEV_CKPT,
                                                                 "default"])
    avae = g.add("LTXVAudioVAELoader", (0, 450), (380, 60), [DEV_CKPT])
    pos = g.add("CLIPTextEncode", (430, 0), (440, 220), [PROMPT], title="Prompt")
    neg = g.add("CLIPTextEncode", (430, 270), (440, 140), [NEGATIVE], title="Negative prompt")
    gen = g.add("RSLTXVGenerate", (920, 0), (400, 900), widgets_for(
        specs.GENERATE, width=768, height=512, num_frames=121, **dict(DISTILLED, decode=False)))
    g.link(ckpt, "MODEL", lora, "model")
    g.link(lora, "MODEL", gen, "model")
    g.link(te, "CLIP", pos, "clip")
    g.link(te, "CLIP", neg, "clip")
    g.link(pos, "CONDITIONING", gen, "positive")
    g.link(neg, "CONDITIONING", gen, "negative")
    g.link(ckpt, "VAE", gen, "vae")
    g.link(avae, "Audio VAE", gen, "audio_vae")
    # a dev checkpoint + the distilled LoRA: core's loader does not say "distilled", so pass the distilled sigmas
    sigmas = g.add("ManualSigmas", (430, 460), (440, 60),
                   ["1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0"], title="Distilled sigmas")
    g.link(sigmas, "SIGMAS", gen, "sigmas")
    decode = g.add("VAEDecode", (1370, 0), (220, 50), None)
    g.link(gen, "latent", decode, "samples")
    g.link(ckpt, "VAE", decode, "vae")
    adecode = g.add("LTXVAudioVAEDecode", (1370, 100), (220, 50), None)
    g.link(gen, "audio_latent", adecode, "samples")
    g.link(avae, "Audio VAE", adecode, "audio_vae")
    create = g.add("CreateVideo", (1640, 0), (280, 80), [25.0])
    out = g.add("SaveVideo", (1640, 130), (600, 500), ["video/rs_ltxv_core_loaders", "auto", "auto"])
    g.link(decode, "IMAGE", create, "images")
    g.link(adecode, "Audio", create, "audio")
    g.link(create, "VIDEO", out, "video")
    return g.workflow()


WORKFLOWS = {
    "LTX-2.3 first and last frame (RS LTXV Generate)": (first_last, "LTX-2.3 first + last frame",
                                                         "two keyframes, the motion between", (170, 80, 110)),
    "LTX-2.3 core loaders and LoRA (RS LTXV Generate)": (core_loaders, "LTX-2.3 with core loaders",
                                                          "Load Checkpoint, LoRA, CLIP Text Encode", (90, 90, 90)),
    "LTX-2.3 text to video (RS LTXV Generate)": (t2v, "LTX-2.3 text to video", "distilled, one stage",
                                                  (200, 120, 60)),
    "LTX-2.3 text to video, 2x upscale (RS LTXV Generate)": (t2v_upscale, "LTX-2.3 text to video 2x",
                                                              "half size, 2x latent upscale, refine",
                                                              (150, 90, 160)),
    "LTX-2.3 image to video (RS LTXV Generate)": (i2v, "LTX-2.3 image to video", "first frame from an image",
                                                   (60, 130, 190)),
    "LTX-2.3 audio to video (RS LTXV Generate)": (a2v, "LTX-2.3 audio to video", "picture for a soundtrack",
                                                   (190, 150, 50)),
    "LTX-2.3 text to video, GGUF model (RS LTXV Generate)": (gguf, "LTX-2.3 GGUF text to video",
                                                              "quantised transformer, split VAE files",
                                                              (120, 120, 130)),
    "LTX-2.3 extend a clip with its sound (RS LTXV Extend)": (extend_clip, "LTX-2.3 extend a clip",
                                                               "video and audio continued", (70, 150, 90)),
}


def thumbnail(path, title, subtitle, tint):
    from PIL import Image, ImageDraw, ImageFont
    w, h = 512, 512
    img = Image.new("RGB", (w, h))
    px = img.load()
    for y in range(h):  # dawn gradient
        for x in range(w):
            t = y / h
            px[x, y] = tuple(int(c * (1 - t) + 30 * t) for c in tint)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 360, w, h), fill=(235, 240, 248))  # snow
    for i, x in enumerate(range(30, w, 70)):  # birches
        d.rectangle((x, 120 + (i % 3) * 20, x + 10, 370), fill=(230, 230, 225))
    d.ellipse((230, 300, 330, 350), fill=(200, 80, 30))  # fox
    d.polygon([(320, 310), (360, 290), (345, 330)], fill=(200, 80, 30))
    try:
        font = ImageFont.truetype("DejaVuSans-Bold.ttf", 34)
        small = ImageFont.truetype("DejaVuSans.ttf", 22)
    except OSError:
        font = small = ImageFont.load_default()
    d.rectangle((0, 400, w, h), fill=(20, 22, 30))
    d.text((20, 412), title, fill=(255, 255, 255), font=font)
    d.text((20, 460), subtitle, fill=(190, 200, 220), font=small)
    img.save(path, quality=88)


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_committed_workflow_equals_the_built_one(name):
    built = WORKFLOWS[name][0]()
    committed = json.loads((ROOT / f"{name}.json").read_text(encoding="utf-8"))
    assert committed == built, "example workflow out of date: run .venv/bin/python tests/test_workflows_build.py"
    api = json.loads((ROOT / "api" / f"{name}.json").read_text(encoding="utf-8"))
    assert api == ui_to_api(built, SPECS)


if __name__ == "__main__":
    (ROOT / "api").mkdir(parents=True, exist_ok=True)
    for name, (build, title, subtitle, tint) in WORKFLOWS.items():
        wf = build()
        (ROOT / f"{name}.json").write_text(json.dumps(wf, indent=2, ensure_ascii=False) + "\n")
        api = ui_to_api(wf, SPECS)
        (ROOT / "api" / f"{name}.json").write_text(json.dumps(api, indent=2, ensure_ascii=False) + "\n")
        thumbnail(ROOT / f"{name}.jpg", title, "RS LTXV · " + subtitle, tint)
    print("ok", file=sys.stderr)
