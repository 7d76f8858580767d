"""The example workflows are built from the node specs by this file, and must stay equal to what it builds.

Regenerate after changing a node's inputs (writes the UI JSON, the API twin and the .jpg thumbnail)::

    .venv/bin/python tests/test_workflows_build.py
"""
import itertools
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
        models = [{"name": v, "url": MODELS[v][1], "directory": MODELS[v][0]}
                  for v in dict.fromkeys(values) if isinstance(v, str) and v in MODELS]
        node = {"id": len(self.nodes) + 1, "type": type_, "pos": list(pos), "size": list(size), "flags": {},
                "order": self.order, "mode": 0,
                "inputs": [{"localized_name": i.name, "name": i.name, "type": i.type, "link": None,
                            **({"shape": 7} if i.optional else {})} for i in spec.inputs if not i.is_widget],
                "outputs": [{"localized_name": o.name, "name": o.name, "type": o.type, "links": []}
                            for o in spec.outputs],
                "properties": {"Node name for S&R": type_}, "widgets_values": values}
        if models:  # what ComfyUI's missing-models dialog offers to download (as the official templates do)
            node["properties"]["models"] = models
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
#: Lightricks' union-control IC-LoRA (depth / pose / edges); "ref0.5": trained on half-size references, its metadata
#: says reference_downscale_factor 2
IC_LORA = "ltx-2.3-22b-ic-lora-union-control-ref0.5.safetensors"
IC_LORA_FACTOR = 2
_HF = "https://huggingface.co/"
#: every model file the examples name → (ComfyUI model folder, download URL). Where the URLs come from:
#: - Comfy-Org's LTX templates (comfyui-workflow-templates, ``properties.models``; copies in the project's reference
#:   material): the Gemma files, the 2.3 upscaler, the 2.3 dev fp8 checkpoint and the distilled 1.1 LoRA;
#: - Lightricks' LTX-2 README ("Required Models"): the distilled 2.3 checkpoint (same Lightricks/LTX-2.3 repository
#:   and URL form as the templates' upscaler);
#: - Comfy-Org's ``video_ltx2_3_ic_lora`` template: the IC-LoRA (Lightricks/LTX-2.3-22b-IC-LoRA-Union-Control);
#: - not official (no Lightricks or Comfy-Org file exists): the GGUF (unsloth/LTX-2.3-GGUF) and the split VAE files
#:   (Kijai/LTX2.3_comfy), the sources these file names come from.
MODELS = {
    CKPT: ("checkpoints", _HF + "Lightricks/LTX-2.3/resolve/main/ltx-2.3-22b-distilled.safetensors"),
    "gemma_3_12B_it.safetensors": (
        "text_encoders", _HF + "Comfy-Org/ltx-2/resolve/main/split_files/text_encoders/gemma_3_12B_it.safetensors"),
    "ltx-2.3-spatial-upscaler-x2-1.1.safetensors": (
        "latent_upscale_models", _HF + "Lightricks/LTX-2.3/resolve/main/ltx-2.3-spatial-upscaler-x2-1.1.safetensors"),
    "ltx-2.3-22b-distilled-Q8_0.gguf": (
        "diffusion_models", _HF + "unsloth/LTX-2.3-GGUF/resolve/main/distilled/ltx-2.3-22b-distilled-Q8_0.gguf"),
    "LTX23_video_vae_bf16.safetensors": (
        "vae", _HF + "Kijai/LTX2.3_comfy/resolve/main/vae/LTX23_video_vae_bf16.safetensors"),
    "LTX23_audio_vae_bf16.safetensors": (
        "vae", _HF + "Kijai/LTX2.3_comfy/resolve/main/vae/LTX23_audio_vae_bf16.safetensors"),
    DEV_CKPT: ("checkpoints", _HF + "Lightricks/LTX-2.3-fp8/resolve/main/ltx-2.3-22b-dev-fp8.safetensors"),
    DISTILLED_LORA: ("loras", _HF + f"Comfy-Org/ltx-2.3/resolve/main/split_files/loras/{DISTILLED_LORA}"),
    "gemma_3_12B_it_fp4_mixed.safetensors": (
        "text_encoders",
        _HF + "Comfy-Org/ltx-2/resolve/main/split_files/text_encoders/gemma_3_12B_it_fp4_mixed.safetensors"),
    IC_LORA: ("loras", _HF + f"Lightricks/LTX-2.3-22b-IC-LoRA-Union-Control/resolve/main/{IC_LORA}"),
}
#: LTX-2.5 as Lightricks publishes it (Lightricks/LTX-2.5, one file per component; names and folders from its README
#: "Full Model List", which Comfy-Org's video_ltx2_5_* templates use too)
LTX25 = dict(transformer="ltx-2.5-22b-distilled-transformer-bf16.safetensors",
             gemma="gemma4-12b-with-proj-ltx-2.5-bf16.safetensors", vae="ltx-2.5-video-vae-bf16.safetensors",
             vae_conv="ltx-2.5-video-vae-conv-bf16.safetensors",
             audio_vae="ltx-2.5-audio-vae-bf16.safetensors",
             upsampler="ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors",
             duration_head="ltx-2.5-duration-head-bf16.safetensors")
_LTX25_FOLDERS = dict(transformer="diffusion_models", gemma="text_encoders", vae="vae", vae_conv="vae", audio_vae="vae",
                      upsampler="latent_upscale_models", duration_head="model_patches")
MODELS.update({name: (_LTX25_FOLDERS[k], _HF + f"Lightricks/LTX-2.5/resolve/main/{_LTX25_FOLDERS[k]}/{name}")
               for k, name in LTX25.items()})
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
    n["vae"] = g.add("RSLTXVVAELoader", (0, 360), (380, 130), [CKPT, "auto", "default", 512, "auto"])
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


def save(g, node, prefix, x=1370, fps=25.0):
    create = g.add("CreateVideo", (x, 0), (280, 80), [fps])
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


def multi_gpu():
    """RS LTXV Multi-GPU (Ray) between the model loader (LoRA loaders would sit before it) and Generate: a long clip
    at 1280×704 with the 2× pass, every denoising step shared by 2 GPUs."""
    g = Graph()
    n = loaders(g, upscale=True)
    ray = g.add("RSLTXVMultiGPU", (430, 460), (440, 150), widgets_for(specs.MULTI_GPU, gpus=2, ray_address=""),
                title="Multi-GPU (Ray)")
    g.link(n["model"], "model", ray, "model")
    pos, neg = prompts(g, n, PROMPT)
    gen = g.add("RSLTXVGenerate", (920, 0), (400, 900), widgets_for(
        specs.GENERATE, width=1280, height=704, num_frames=241, upscale=True, upscale_steps=3, upscale_cfg=1.0,
        upscale_denoise=0.85, **DISTILLED))
    n = dict(n, model=ray)
    wire(g, n, gen, pos, neg)
    g.link(n["up"], "upscale_model", gen, "upscale_model")
    save(g, gen, "video/rs_ltxv_multi_gpu")
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


def retake_clip():
    """A clip from RS LTXV Generate, then RS LTXV Retake regenerates 2.0–3.0 s of it (video and sound) from a second
    prompt; everything outside that range is kept."""
    g = Graph()
    n = loaders(g)
    pos, neg = prompts(g, n, PROMPT)
    gen = g.add("RSLTXVGenerate", (920, 0), (400, 900),
                widgets_for(specs.GENERATE, width=768, height=512, num_frames=121, **dict(DISTILLED, decode=False)))
    wire(g, n, gen, pos, neg)
    text = ("A red fox leaps over a fallen log in a snowy forest at dawn, snow spraying from its paws. Sound: a soft "
            "thud as it lands, crunching snow, distant birdsong.")
    new = g.add("RSLTXVTextEncode", (430, 460), (440, 220), [text], title="Retake prompt")
    g.link(n["te"], "text_encoder", new, "text_encoder")
    ret = g.add("RSLTXVRetake", (1370, 0), (400, 900), widgets_for(
        specs.RETAKE, start_time=2.0, end_time=3.0, **DISTILLED))
    wire(g, n, ret, new, neg)
    g.link(gen, "latent", ret, "latent")
    g.link(gen, "audio_latent", ret, "audio_latent")
    save(g, ret, "video/rs_ltxv_retake", x=1820)
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


def ic_lora():
    """An IC-LoRA on the model (core LoraLoaderModelOnly) and a control video (core Load Video → Get Video
    Components) as RS LTXV Generate's reference_video, at the LoRA's reference_downscale_factor."""
    g = Graph()
    n = loaders(g)
    text = ("A stone archway in overgrown ruins at sunset, the camera gliding forward through it along the path. Moss "
            "on the stones, warm light through the leaves. Sound: wind in the trees, birdsong, footsteps on gravel.")
    pos, neg = prompts(g, n, text)
    lora = g.add("LoraLoaderModelOnly", (430, 460), (440, 90), [IC_LORA, 1.0], title="IC-LoRA (union control)")
    g.link(n["model"], "model", lora, "model")
    video = g.add("LoadVideo", (0, 670), (380, 400), ["example.mp4", "image"], title="Control video (depth, pose, "
                  "edges)")
    frames = g.add("GetVideoComponents", (430, 600), (440, 80), None)
    g.link(video, "VIDEO", frames, "video")
    gen = g.add("RSLTXVGenerate", (920, 0), (400, 900), widgets_for(
        specs.GENERATE, width=768, height=512, num_frames=121, reference_downscale_factor=IC_LORA_FACTOR,
        **DISTILLED))
    g.link(lora, "MODEL", gen, "model")
    g.link(pos, "conditioning", gen, "positive")
    g.link(neg, "conditioning", gen, "negative")
    g.link(n["vae"], "vae", gen, "vae")
    g.link(n["avae"], "audio_vae", gen, "audio_vae")
    g.link(frames, "images", gen, "reference_video")
    save(g, gen, "video/rs_ltxv_ic_lora")
    return g.workflow()


#: LTX-2.5 distilled as Lightricks' DistilledPipeline runs it: 8 distilled steps without guidance, Euler-ancestral,
#: 24 fps, guide images re-compressed at CRF 18, the 2x pass with the official refinement sigmas (upscale_steps 0;
#: they start at 0.909, which upscale_denoise shows: the widget is used only with upscale_steps > 0)
LTX25_DISTILLED = dict(steps=8, cfg=1.0, stg_scale=0.0, audio_cfg=1.0, modality_scale=1.0, rescale=0.0,
                       sampler_name="euler_ancestral", frame_rate=24.0, seed=42, decode=True, crf=18, upscale=True,
                       upscale_steps=0, upscale_cfg=1.0, upscale_denoise=0.91)
LTX25_PROMPT = ("A close-up of an arctic fox at the edge of an ice floe, its breath steaming, ears turning towards a "
                "sound. The camera slowly pulls back to reveal the frozen sea under a pale sky, seabirds wheeling "
                "overhead. Sound: wind over the ice, distant cracking, a seabird's call.")


def ltx25_loaders(g, vae="vae", head=True):
    """Lightricks' LTX-2.5 files: the distilled transformer (its text connectors too), the Gemma-4 file bundled with
    the text projection, the video VAE (``vae``: with the diffusion decoder; ``vae_conv``: the convolutional one),
    the audio VAE, the spatial upsampler and (``head``) the duration head."""
    m = dict(LTX25, vae=LTX25[vae])
    n = {
        "model": g.add("RSLTXVModelLoader", (0, 0), (380, 130), [m["transformer"], "auto", "default", "auto"]),
        "te": g.add("RSLTXVTextEncoderLoader", (0, 180), (380, 130), [m["gemma"], m["transformer"], "auto",
                                                                      "default"]),
        "vae": g.add("RSLTXVVAELoader", (0, 360), (380, 130), [m["vae"], "auto", "default", 512, "auto"]),
        "avae": g.add("RSLTXVAudioVAELoader", (0, 540), (380, 80), [m["audio_vae"], "default"]),
        "up": g.add("RSLTXVUpscaleModelLoader", (0, 670), (380, 110), [m["upsampler"], "auto", "default"]),
    }
    if head:
        n["head"] = g.add("RSLTXVDurationHeadLoader", (0, 830), (380, 80), [m["duration_head"], "default"])
    return n


def ltx25_t2v():
    """Text to video with LTX-2.5 distilled; num_frames 0: the duration head picks the length from the prompt."""
    g = Graph()
    n = ltx25_loaders(g)
    pos, neg = prompts(g, n, LTX25_PROMPT)
    gen = g.add("RSLTXVGenerate", (920, 0), (400, 900), widgets_for(
        specs.GENERATE, width=1280, height=704, num_frames=0, **LTX25_DISTILLED))
    wire(g, n, gen, pos, neg)
    g.link(n["up"], "upscale_model", gen, "upscale_model")
    g.link(n["head"], "duration_head", gen, "duration_head")
    save(g, gen, "video/rs_ltxv_ltx25_t2v", fps=24.0)
    return g.workflow()


def ltx25_i2v():
    """Image to video with LTX-2.5 distilled: the image is the first frame, 121 frames (5 s at 24 fps), encoded and
    decoded with LTX-2.5's native video VAE file (its encoder and the diffusion decoder)."""
    g = Graph()
    n = ltx25_loaders(g, head=False)
    text = ("The woman in the picture turns her head towards the camera and smiles, wind moving her hair. Slow "
            "push-in. Sound: a quiet street, footsteps and distant traffic.")
    pos, neg = prompts(g, n, text)
    image = g.add("LoadImage", (430, 460), (440, 400), ["example.png", "image"], title="First frame")
    gen = g.add("RSLTXVGenerate", (920, 0), (400, 900), widgets_for(
        specs.GENERATE, width=1280, height=704, num_frames=121, image_strength=1.0, **LTX25_DISTILLED))
    wire(g, n, gen, pos, neg)
    g.link(n["up"], "upscale_model", gen, "upscale_model")
    g.link(image, "IMAGE", gen, "first_image")
    save(g, gen, "video/rs_ltxv_ltx25_i2v", fps=24.0)
    return g.workflow()


def gguf():
    g = Graph()
    quant = "ltx-2.3-22b-distilled-Q8_0.gguf"
    n = {
        "model": g.add("RSLTXVModelLoader", (0, 0), (380, 130), [quant, "auto", "default", "auto"]),
        "te": g.add("RSLTXVTextEncoderLoader", (0, 180), (380, 130),
                    ["gemma_3_12B_it.safetensors", quant, "auto", "default"]),
        "vae": g.add("RSLTXVVAELoader", (0, 360), (380, 130),
                     ["LTX23_video_vae_bf16.safetensors", "auto", "default", 512, "auto"]),
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
    "LTX-2.3 retake a time range (RS LTXV Retake)": (retake_clip, "LTX-2.3 retake a time range",
                                                      "2-3 s regenerated, the rest kept", (170, 80, 80)),
    "LTX-2.3 IC-LoRA control (RS LTXV Generate)": (ic_lora, "LTX-2.3 IC-LoRA control",
                                                    "a control video steers the motion", (110, 140, 60)),
    "LTX-2.3 multi-GPU (Ray)": (multi_gpu, "LTX-2.3 multi-GPU (Ray)", "every step shared by 2 GPUs, 2x upscale",
                                (60, 170, 170)),
    "LTX-2.5 text to video (RS LTXV Generate)": (ltx25_t2v, "LTX-2.5 text to video",
                                                  "distilled, length from the prompt, 2x upscale", (210, 90, 40)),
    "LTX-2.5 image to video (RS LTXV Generate)": (ltx25_i2v, "LTX-2.5 image to video",
                                                   "first frame from an image, diffusion decoder", (40, 110, 200)),
}


THUMB = 512  # square thumbnails, px
MARGIN = 20  # text keeps this far from the image's left, right and bottom edges
PANEL_TOP = 392  # the text panel starts here, or higher when the text needs it
#: (bold, one-line sizes, two-line sizes): the title and the subtitle each take the largest size at which they fit
#: on one line, else on two
TITLE = (True, range(34, 25, -1), range(30, 17, -1))
SUBTITLE = (False, range(22, 16, -1), range(18, 11, -1))


def _font(size, bold=False):
    from PIL import ImageFont

    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def wrap(text, font, width):
    """Words of ``text`` in lines no wider than ``width`` px (a single longer word gets a line of its own)."""
    lines = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def fit(text, style, width):
    """(font, lines): ``text`` at the largest size of ``style`` (see :data:`TITLE`) where it fits in one line of
    ``width`` px, else where it fits in two."""
    bold, one_line, two_lines = style
    for max_lines, sizes in ((1, one_line), (2, two_lines)):
        for size in sizes:
            font = _font(size, bold)
            lines = wrap(text, font, width)
            if len(lines) <= max_lines and all(font.getlength(line) <= width for line in lines):
                return font, lines
    raise ValueError(f"thumbnail text does not fit in two lines of {width} px: {text!r}")


def text_layout(title, subtitle):
    """(top of the text panel, [(xy, line, font, colour)]) for a thumbnail's title and subtitle: each fitted to the
    width (:func:`fit`) and stacked from the panel's top; the panel grows upwards when the text needs it."""
    blocks = [(*fit(title, TITLE, THUMB - 2 * MARGIN), (255, 255, 255)),
              (*fit(subtitle, SUBTITLE, THUMB - 2 * MARGIN), (190, 200, 220))]
    step = [round(font.size * 1.25) for font, _, _ in blocks]  # line pitch of each block
    needed = sum(n * len(lines) for n, (_, lines, _) in zip(step, blocks, strict=True)) + 12 + 6 + MARGIN
    top = min(PANEL_TOP, THUMB - needed)
    items, y = [], top + 12  # 12 px above the title, 6 px between title and subtitle
    for n, (font, lines, colour) in zip(step, blocks, strict=True):
        for line in lines:
            items.append(((MARGIN, y), line, font, colour))
            y += n
        y += 6
    return top, items


def thumbnail(path, title, subtitle, tint):
    from PIL import Image, ImageDraw

    w = h = THUMB
    img = Image.new("RGB", (w, h))
    px = img.load()
    for y in range(h):  # dawn gradient
        for x in range(w):
            t = y / h
            px[x, y] = tuple(int(c * (1 - t) + 30 * t) for c in tint)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 320, w, h), fill=(235, 240, 248))  # snow
    for i, x in enumerate(range(30, w, 70)):  # birches
        d.rectangle((x, 90 + (i % 3) * 20, x + 10, 330), fill=(230, 230, 225))
    d.ellipse((230, 262, 330, 312), fill=(200, 80, 30))  # fox
    d.polygon([(320, 272), (360, 252), (345, 292)], fill=(200, 80, 30))
    top, items = text_layout(title, subtitle)
    d.rectangle((0, top, w, h), fill=(20, 22, 30))
    for xy, line, font, colour in items:
        d.text(xy, line, fill=colour, font=font)
    img.save(path, quality=88)


def card_text(name):
    """(title, subtitle) drawn on the thumbnail of the example ``name``."""
    _, title, subtitle, _ = WORKFLOWS[name]
    return title, "RS LTXV · " + subtitle


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_committed_workflow_equals_the_built_one(name):
    built = WORKFLOWS[name][0]()
    committed = json.loads((ROOT / f"{name}.json").read_text(encoding="utf-8"))
    assert committed == built, "example workflow out of date: run .venv/bin/python tests/test_workflows_build.py"
    api = json.loads((ROOT / "api" / f"{name}.json").read_text(encoding="utf-8"))
    assert api == ui_to_api(built, SPECS)


def ink_boxes(title, subtitle):
    """(panel top, [ink bounding box of each text line in image pixels]): every line of :func:`text_layout` drawn
    alone on a canvas three times the thumbnail's size (the thumbnail in the middle), so ink that would fall outside
    the image is measured too."""
    from PIL import Image, ImageDraw

    top, items = text_layout(title, subtitle)
    boxes = []
    for (x, y), line, font, _ in items:
        canvas = Image.new("L", (3 * THUMB, 3 * THUMB))
        ImageDraw.Draw(canvas).text((x + THUMB, y + THUMB), line, fill=255, font=font)
        left, upper, right, lower = canvas.getbbox()
        boxes.append((left - THUMB, upper - THUMB, right - THUMB, lower - THUMB))
    return top, boxes


def _check_fits(title, subtitle):
    top, boxes = ink_boxes(title, subtitle)
    assert top >= THUMB // 2, "the text panel covers more than half the picture"
    for left, upper, right, lower in boxes:
        assert left >= MARGIN // 2, (title, subtitle, left)
        assert right <= THUMB - MARGIN // 2, (title, subtitle, right)
        assert upper >= top, (title, subtitle, upper, top)
        assert lower <= THUMB - MARGIN // 2, (title, subtitle, lower)
    for above, below in itertools.pairwise(boxes):
        assert above[3] <= below[1], ("lines overlap", title, subtitle)


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_thumbnail_text_fits_inside_the_image(name):
    _check_fits(*card_text(name))


#: more titles and subtitles than the examples have: short, one line at a smaller size, two lines, long words
TEXTS = [
    ("LTX-2.3", "RS LTXV"),
    ("LTX-2.3 text to video, GGUF model, 2x upscale", "RS LTXV · quantised transformer, split VAE files, refine"),
    ("LTX-2.3 extend a clip with its sound and a second prompt for the new part",
     "RS LTXV · video and audio continued from the clip's last frames, at the clip's frame rate"),
    ("Supercalifragilisticexpialidocious-video-model", "a-very-long-hyphenated-subtitle-without-any-spaces"),
    ("W" * 18, "M" * 30),
]


@pytest.mark.parametrize(("title", "subtitle"), TEXTS)
def test_any_title_that_fits_is_drawn_inside(title, subtitle):
    _check_fits(title, subtitle)


def test_text_too_long_for_two_lines_is_refused_not_cut():
    with pytest.raises(ValueError, match="does not fit"):
        text_layout("a " * 200, "RS LTXV")
    with pytest.raises(ValueError, match="does not fit"):
        text_layout("LTX", "W" * 80)


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_committed_thumbnail_equals_the_built_one(name, tmp_path):
    from PIL import Image, ImageChops, ImageFont, ImageStat

    try:
        ImageFont.truetype("DejaVuSans-Bold.ttf", 10)
    except OSError:
        pytest.skip("the thumbnails are drawn with DejaVu Sans, which this machine lacks")
    thumbnail(tmp_path / "t.jpg", *card_text(name), WORKFLOWS[name][3])
    built, committed = (Image.open(p).convert("L") for p in (tmp_path / "t.jpg", ROOT / f"{name}.jpg"))
    assert committed.size == built.size
    diff = ImageStat.Stat(ImageChops.difference(built, committed)).mean[0]
    assert diff < 2, f"thumbnail out of date (mean difference {diff:.1f}): run .venv/bin/python {__file__}"


if __name__ == "__main__":
    (ROOT / "api").mkdir(parents=True, exist_ok=True)
    for name, (build, _, _, tint) in WORKFLOWS.items():
        wf = build()
        (ROOT / f"{name}.json").write_text(json.dumps(wf, indent=2, ensure_ascii=False) + "\n")
        api = ui_to_api(wf, SPECS)
        (ROOT / "api" / f"{name}.json").write_text(json.dumps(api, indent=2, ensure_ascii=False) + "\n")
        thumbnail(ROOT / f"{name}.jpg", *card_text(name), tint)
    print("ok", file=sys.stderr)
