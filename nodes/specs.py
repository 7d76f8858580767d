"""Every node's inputs and outputs as plain data — the one source for the ComfyUI adapters, the workflow tests and
the README's node reference. No ComfyUI import here.

A :class:`NodeSpec` lists :class:`InputSpec`\\ s in widget order (the order ComfyUI shows them and the order of a UI
workflow's ``widgets_values``). Our model loader outputs ComfyUI's MODEL; our VAE / latent upsampler loaders output
types with the ``RS_LTXV_`` prefix (core nodes cannot use those objects), and the main nodes' inputs take either ours
or core's (``"RS_LTXV_VAE,VAE"``: ComfyUI accepts a link whose type is any of the comma-separated ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

CATEGORY = "rs-nodes"
LOADER_CATEGORY = "rs-nodes/loaders"

# Socket types. Ours for now: the objects behind them are the port's modules, not ComfyUI's ModelPatcher / VAE.
#: our model loader returns a real ComfyUI MODEL (a ModelPatcher), so core LoRA loaders work on it
MODEL = "MODEL"
#: our loaders' own types (core nodes cannot use these objects); the main nodes' inputs also accept core's types
VIDEO_VAE = "RS_LTXV_VAE"
AUDIO_VAE = "RS_LTXV_AUDIO_VAE"
UPSCALE_MODEL = "RS_LTXV_UPSCALE_MODEL"
VIDEO_VAE_IN = f"{VIDEO_VAE},VAE"
AUDIO_VAE_IN = f"{AUDIO_VAE},VAE"
UPSCALE_MODEL_IN = f"{UPSCALE_MODEL},LATENT_UPSCALE_MODEL"
TEXT_ENCODER = "RS_LTXV_TEXT_ENCODER"
DURATION_HEAD = "RS_LTXV_DURATION_HEAD"

WIDGET_TYPES = ("INT", "FLOAT", "BOOLEAN", "STRING", "COMBO")
MAX_SEED = 0xFFFFFFFFFFFFFFFF

ATTENTION_MODES = ("auto", "default", "sage", "flash")
SAMPLER_NAMES = ("euler_ancestral", "euler", "res_2s")
DTYPES = ("auto", "bfloat16", "float16", "float32")
DEVICES = ("default", "cpu")
DECODERS = ("auto", "vae", "diffusion")


@dataclass(frozen=True)
class InputSpec:
    """One input. ``type`` is a socket type or a widget type (:data:`WIDGET_TYPES`). ``options`` lists a fixed combo;
    ``folders`` names ComfyUI model folders whose files fill a dynamic combo."""

    name: str
    type: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    tooltip: str = ""
    optional: bool = False
    advanced: bool = False
    options: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    multiline: bool = False
    section: str = ""
    control_after_generate: bool = False
    ui_extras: int = 0  # UI-only widget values that follow this one in a UI workflow (upload buttons, previews)
    #: a value with a meaning of its own outside the stepped range (``num_frames`` 0 = predict the length); steps
    #: then count from ``min`` + 1
    auto_value: Any = None

    @property
    def is_widget(self) -> bool:
        return self.type in WIDGET_TYPES

    def check(self, value: Any) -> str | None:
        """Why ``value`` does not fit this widget, or None when it does (dynamic combos accept any string)."""
        t = self.type
        if t == "BOOLEAN":
            return None if isinstance(value, bool) else f"{self.name}: expected a boolean, got {value!r}"
        if t == "INT":
            if isinstance(value, bool) or not isinstance(value, int):
                return f"{self.name}: expected an integer, got {value!r}"
        elif t == "FLOAT":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"{self.name}: expected a number, got {value!r}"
        elif t == "STRING":
            return None if isinstance(value, str) else f"{self.name}: expected text, got {value!r}"
        elif t == "COMBO":
            if not isinstance(value, str):
                return f"{self.name}: expected one of the choices, got {value!r}"
            if self.options and value not in self.options:
                return f"{self.name}: {value!r} is not one of {list(self.options)}"
            return None
        else:
            return None
        if self.auto_value is not None and value == self.auto_value:
            return None
        if self.min is not None and value < self.min:
            return f"{self.name}: {value} is below the minimum {self.min}"
        if self.max is not None and value > self.max:
            return f"{self.name}: {value} is above the maximum {self.max}"
        origin = None if self.min is None else self.min + (1 if self.auto_value == self.min else 0)
        if t == "INT" and self.step and origin is not None and (value - origin) % self.step:
            lo = int(origin + (value - origin) // self.step * self.step)
            return f"{self.name}: {value} is not on the step {self.step:g} from {self.min:g}; use {lo} or " \
                   f"{lo + int(self.step)}"
        if t == "FLOAT" and not math.isfinite(value):
            return f"{self.name}: expected a finite number, got {value!r}"
        return None


@dataclass(frozen=True)
class OutputSpec:
    name: str
    type: str
    tooltip: str = ""


@dataclass(frozen=True)
class NodeSpec:
    id: str
    display_name: str
    description: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    category: str = CATEGORY
    output_node: bool = False
    #: ComfyUI hidden inputs (keyword name, kind), e.g. ``("prompt_graph", "PROMPT")``
    hidden: tuple[tuple[str, str], ...] = ()

    def input(self, name: str) -> InputSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.id} has no input {name!r}")

    @property
    def widgets(self) -> tuple[InputSpec, ...]:
        return tuple(i for i in self.inputs if i.is_widget)

    @property
    def defaults(self) -> dict[str, Any]:
        return {i.name: i.default for i in self.inputs if i.is_widget}


def _int(name, default, lo, hi, step=1, tip="", **kw) -> InputSpec:
    return InputSpec(name, "INT", default, lo, hi, step, tip, **kw)


def _float(name, default, lo, hi, step=0.01, tip="", **kw) -> InputSpec:
    return InputSpec(name, "FLOAT", default, lo, hi, step, tip, **kw)


def _socket(name, type_, tip="", optional=False, **kw) -> InputSpec:
    return InputSpec(name, type_, tooltip=tip, optional=optional, **kw)


# ---------------------------------------------------------------------------------------------------- shared groups

_CONDITIONING = (
    _socket("model", MODEL, "The LTX-2 / LTX-2.3 / LTX-2.5 transformer: RS LTXV Model Loader (LoRA loaders may sit "
            "between) or core's Load Checkpoint with an LTX-2 file."),
    _socket("positive", "CONDITIONING", "What the video (and its sound) should show: RS LTXV Text Encode, or core's "
            "CLIP Text Encode with the LTXV text encoder."),
    _socket("negative", "CONDITIONING", "What to avoid; used when cfg or audio_cfg is not 1."),
    _socket("vae", VIDEO_VAE_IN, "The video VAE (RS LTXV Video VAE Loader or core's): encodes guide images, decodes "
            "the result."),
)

_SAMPLING = (
    _int("steps", 20, 1, 1000, 1, "Denoising steps of the first pass. The models' own: 30 (LTX-2.3 / 2.5 full), 8 "
         "with the distilled sigmas (distilled checkpoints; LTX-2.5 distilled runs Euler-ancestral without guidance)."),
    _float("cfg", 3.0, 0.0, 100.0, 0.1, "Classifier-free guidance of the video (1 = off: no negative pass). The "
           "models' own: 3 for full checkpoints, 1 for distilled ones."),
    _int("seed", 0, 0, MAX_SEED, 1, "Noise seed.", control_after_generate=True),
    _float("frame_rate", 25.0, 1.0, 240.0, 0.01, "Frames per second: sets motion timing and the audio length "
           "(Extend: a LATENT that carries its clip's frame rate keeps it). Lightricks' pipelines use 24."),
)


def _frame_injection(images: tuple[str, ...]) -> tuple[InputSpec, ...]:
    where = {"first": "frame 0", "middle": "the middle frame", "last": "the last frame"}
    out = [_socket(f"{n}_image", "IMAGE", f"Guide image at {where[n]}.", True, section="Frame injection")
           for n in images]
    out += [_float(f"{n}_strength", 1.0, 0.0, 1.0, 0.01, f"Attention strength of the {n} guide (1 = full).",
                   optional=True, section="Frame injection") for n in images]
    out += [
        _float("image_strength", 0.95, 0.0, 1.0, 0.01, "How much of each guide image is kept (1 = exact frame, "
               "lower lets the model change it).", optional=True, section="Frame injection"),
        _int("crf", 35, 0, 100, 1, "H.264 quality of the guide preprocessing (0 = lossless); LTX was trained on "
             "compressed frames, so some compression avoids static results. The models' own: 33 for LTX-2 / 2.3, 18 "
             "for LTX-2.5 (ltx-pipelines); 35 is ComfyUI's LTXVPreprocess default.", optional=True, advanced=True,
             section="Frame injection"),
    ]
    return tuple(out)


_EFFICIENCY = (
    InputSpec("attention_mode", "COMBO", "auto", tooltip="Attention kernel: auto picks the fastest installed "
              "(sage, flash, PyTorch SDPA); default is PyTorch SDPA. Applied to this run only.", optional=True,
              options=ATTENTION_MODES, section="Efficiency"),
    _int("ffn_chunks", 0, 0, 64, 1, "Split the feed-forward layers into this many chunks along the sequence to "
         "lower the VRAM peak (1 = off). 0 = auto: after the model loads, the memory planner picks the fewest "
         "chunks whose predicted peak fits the GPU's free memory (1 when it is plentiful, and always 1 on the CPU). "
         "Slower; may change results slightly with fp8 weights.", optional=True,
         advanced=True, section="Efficiency"),
)

_UPSCALE = (
    InputSpec("upscale", "BOOLEAN", False, tooltip="Run the first pass at half size, upscale the latent 2× and "
              "refine it (needs upscale_model; the video's width and height multiples of 64).", optional=True,
              section="Upscale"),
    _socket("upscale_model", UPSCALE_MODEL_IN, "The LTX 2× spatial latent upsampler (ours or core's Load Latent "
            "Upscale Model).", True, section="Upscale"),
    _int("upscale_steps", 10, 0, 1000, 1, "Steps of the refinement pass (0 = the official 3 distilled refinement "
         "sigmas, starting at 0.909).", optional=True, section="Upscale"),
    _float("upscale_cfg", 3.0, 0.0, 100.0, 0.1, "CFG of the refinement pass (1 = off).", optional=True,
           section="Upscale"),
    _float("upscale_denoise", 0.5, 0.0, 1.0, 0.01, "Noise level the refinement pass starts from; used only when "
           "upscale_steps > 0 (with 0 the official sigmas start at 0.909).", optional=True, section="Upscale"),
)

_OUTPUT = (
    InputSpec("decode", "BOOLEAN", False, tooltip="Also decode to IMAGE frames (and AUDIO when an audio VAE is "
              "connected).", optional=True, section="Output"),
)

_OVERRIDES = (
    _socket("guider", "GUIDER", "Not supported: a GUIDER drives core's model and sampling loop. Use cfg, stg_scale, "
            "audio_cfg, modality_scale and rescale; the node says why if one is connected.", True, advanced=True,
            section="Overrides"),
    _socket("sampler", "SAMPLER", "Overrides the built-in sampler with a core SAMPLER (KSamplerSelect, "
            "SamplerEulerAncestral, SamplerDPMPP_2M_SDE, …) in every pass, with RS LTXV's own guidance; sampler_name "
            "is then ignored. CFG++ samplers and SAMPLERs that run their own sample() loop are refused with a "
            "message.", True, advanced=True, section="Overrides"),
    _socket("sigmas", "SIGMAS", "Overrides the built-in schedule with these noise levels.", True, advanced=True,
            section="Overrides"),
)

_SCHEDULER = (
    _float("max_shift", 2.05, 0.0, 100.0, 0.01, "Schedule shift for long sequences (ignored with sigmas).",
           optional=True, advanced=True, section="Scheduler"),
    _float("base_shift", 0.95, 0.0, 100.0, 0.01, "Schedule shift for short sequences (ignored with sigmas).",
           optional=True, advanced=True, section="Scheduler"),
    InputSpec("sampler_name", "COMBO", "euler_ancestral", tooltip="Built-in sampler (ignored when a SAMPLER is "
              "connected). Lightricks' pipelines: euler, and for LTX-2.5 distilled euler_ancestral (eta 1, its own "
              "noise seeded seed + 10000).", optional=True, advanced=True, options=SAMPLER_NAMES,
              section="Scheduler"),
)

_GUIDANCE = (
    _float("stg_scale", 1.0, 0.0, 100.0, 0.1, "Spatio-temporal guidance: pushes away from a pass with self-attention "
           "skipped in stg_blocks (0 = off).", optional=True, advanced=True, section="Guidance"),
    InputSpec("stg_blocks", "STRING", "28", tooltip="Transformer blocks (comma-separated) whose self-attention the "
              "STG pass skips.", optional=True, advanced=True, section="Guidance"),
    _float("audio_cfg", 7.0, 0.0, 100.0, 0.1, "Classifier-free guidance of the audio (1 = off).", optional=True,
           advanced=True, section="Guidance"),
    _float("modality_scale", 3.0, 0.0, 100.0, 0.1, "Pushes away from a pass without audio↔video attention, "
           "tightening sync (1 = off).", optional=True, advanced=True, section="Guidance"),
    _float("rescale", 0.7, 0.0, 1.0, 0.01, "Rescales the guided prediction towards the conditional one's spread "
           "(0 = off); keeps high guidance from burning colours.", optional=True, advanced=True, section="Guidance"),
)

_AUDIO_IN = (
    _socket("audio", "AUDIO", "Sound to generate the video for; it is kept as is (audio-to-video).", True,
            section="Audio"),
    _socket("audio_vae", AUDIO_VAE_IN, "The audio VAE + vocoder (ours or core's LTXV Audio VAE Loader): needed when "
            "audio is given and to output AUDIO.", True, section="Audio"),
)

_REFERENCE = (
    _socket("reference_video", "IMAGE", "IC-LoRA control video (depth, pose, edges, …; one picture per frame): load "
            "the IC-LoRA on the model. Resized to cover the first pass ÷ reference_downscale_factor and centre-"
            "cropped; frames past the video are dropped, the rest cut to 8k + 1.", True, section="IC-LoRA"),
    _float("reference_strength", 1.0, 0.0, 1.0, 0.01, "How much of the reference is kept (1 = as given).",
           optional=True, section="IC-LoRA"),
    _float("reference_attention", 1.0, 0.0, 1.0, 0.01, "How strongly the video attends to the reference (1 = "
           "full, 0 = ignored).", optional=True, section="IC-LoRA"),
    _int("reference_downscale_factor", 1, 1, 8, 1, "The IC-LoRA's reference_downscale_factor (its file's "
         "metadata; e.g. 2 when it was trained on half-size references). Output size ÷ reference size.",
         optional=True, section="IC-LoRA"),
    _socket("reference_mask", "MASK", "Optional attention mask over the reference (per frame, 0..1; one frame = "
            "all frames): where the reference guides the video; multiplied by reference_attention.", True,
            advanced=True, section="IC-LoRA"),
)

_ID_LORA = (
    _socket("reference_audio", "AUDIO", "ID-LoRA reference speech whose voice the generated speech takes (about 5 s, "
            "the training length; load the ID-LoRA on the model; needs audio_vae).", True, section="ID-LoRA"),
    _float("identity_guidance", 3.0, 0.0, 100.0, 0.01, "Identity guidance with reference_audio: one extra pass "
           "per step without the reference, pushing towards its voice (0 = off, no extra pass).", optional=True,
           section="ID-LoRA"),
    _float("identity_guidance_start", 0.0, 0.0, 1.0, 0.001, "Where identity guidance starts, as a fraction of the "
           "run (σ = 1 − fraction).", optional=True, advanced=True, section="ID-LoRA"),
    _float("identity_guidance_end", 1.0, 0.0, 1.0, 0.001, "Where identity guidance ends, as a fraction of the run "
           "(σ = 1 − fraction).", optional=True, advanced=True, section="ID-LoRA"),
)

_AV_OUTPUTS = (
    OutputSpec("latent", "LATENT", "The denoised video latent (guides removed)."),
    OutputSpec("audio_latent", "LATENT", "The audio latent (empty when the run had no audio)."),
    OutputSpec("images", "IMAGE", "Decoded frames (decoded when decode is on or this output is connected)."),
    OutputSpec("audio", "AUDIO", "Decoded sound (decoded when decode is on or this output is connected; needs an "
               "audio VAE)."),
)

#: the prompt graph and this node's id: which outputs are consumed decides what must be decoded
GRAPH_INPUTS = (("prompt_graph", "PROMPT"), ("node_id", "UNIQUE_ID"))

GENERATE = NodeSpec(
    id="RSLTXVGenerate",
    display_name="RS LTXV Generate",
    description="Text/image/audio to video with sound in one node: latent setup, frame injection, guidance, "
                "sampling, optional 2× upscale pass and decode.",
    inputs=(
        *_CONDITIONING[:4],
        _int("width", 768, 64, 8192, 32, "Video width in pixels (multiple of 32; of 64 with upscale)."),
        _int("height", 512, 64, 8192, 32, "Video height in pixels (multiple of 32; of 64 with upscale)."),
        InputSpec("num_frames", "INT", 97, 0, 8193, 8, "Length in frames: 8k + 1 (9, 17, …, 97, 121), or 0: "
                  "automatic: the length of the connected audio, else predicted from the prompt (1–20 s) by the "
                  "LTX-2.5 duration head connected to duration_head.",
                  auto_value=0),
        *_SAMPLING,
        *_frame_injection(("first", "middle", "last")),
        *_AUDIO_IN,
        *_EFFICIENCY,
        *_UPSCALE,
        *_OUTPUT,
        *_OVERRIDES,
        *_SCHEDULER,
        *_GUIDANCE,
        *_REFERENCE,
        *_ID_LORA,
        _socket("duration_head", DURATION_HEAD, "LTX-2.5 duration head (RS LTXV Duration Head Loader): with "
                "num_frames 0 it predicts the clip's length from the prompt.", True, section="Length"),
    ),
    outputs=_AV_OUTPUTS,
    hidden=GRAPH_INPUTS,
)

EXTEND = NodeSpec(
    id="RSLTXVExtend",
    display_name="RS LTXV Extend",
    description="Continues a clip — video and its sound — by num_new_frames: the last overlap_frames guide the new "
                "chunk and are cross-faded into it.",
    inputs=(
        *_CONDITIONING[:4],
        _socket("latent", "LATENT", "The video latent to extend (from RS LTXV Generate or Extend)."),
        _int("num_new_frames", 80, 8, 8192, 8, "Frames to add (multiple of 8)."),
        _int("overlap_frames", 16, 8, 8192, 8, "Frames of the clip's end that guide and blend into the new chunk "
             "(multiple of 8, shorter than the clip)."),
        _float("overlap_strength", 1.0, 0.0, 1.0, 0.01, "How strongly the overlap frames are kept."),
        *_SAMPLING,
        *_frame_injection(("last",)),
        _socket("audio_latent", "LATENT", "The clip's audio latent: its end guides the new sound, which is appended.",
                True, section="Audio"),
        _AUDIO_IN[1],
        *_EFFICIENCY,
        *_UPSCALE,
        *_OUTPUT,
        *_OVERRIDES,
        *_SCHEDULER,
        *_GUIDANCE,
        *_ID_LORA,
    ),
    outputs=_AV_OUTPUTS,
    hidden=GRAPH_INPUTS,
)

RETAKE = NodeSpec(
    id="RSLTXVRetake",
    display_name="RS LTXV Retake",
    description="Regenerates start_time…end_time of a clip — its video, its sound or both — from the prompt and keeps "
                "every latent outside that range exactly (ltx-pipelines' retake).",
    inputs=(
        *_CONDITIONING[:4],
        _socket("latent", "LATENT", "The clip's video latent (from RS LTXV Generate, Extend or Retake)."),
        _float("start_time", 0.0, 0.0, 100000.0, 0.01, "Start of the range to regenerate, in seconds (inclusive)."),
        _float("end_time", 1.0, 0.0, 100000.0, 0.01, "End of the range to regenerate, in seconds (exclusive; at most "
               "the clip's length)."),
        InputSpec("regenerate_video", "BOOLEAN", True, tooltip="Regenerate the video in the range (off: the whole "
                  "video is kept)."),
        InputSpec("regenerate_audio", "BOOLEAN", True, tooltip="Regenerate the sound in the range (off: the whole "
                  "sound is kept; needs audio_latent)."),
        *_SAMPLING,
        _socket("audio_latent", "LATENT", "The clip's audio latent (without it only the video is retaken and the "
                "result has no sound).", True, section="Audio"),
        _AUDIO_IN[1],
        *_EFFICIENCY,
        *_OUTPUT,
        *_OVERRIDES,
        *_SCHEDULER,
        *_GUIDANCE,
        *_ID_LORA,
    ),
    outputs=_AV_OUTPUTS,
    hidden=GRAPH_INPUTS,
)

# ---------------------------------------------------------------------------------------------------------- loaders

_DTYPE = InputSpec("dtype", "COMBO", "auto", tooltip="Weight dtype (auto: bfloat16 on GPU, float32 on CPU).",
                   options=DTYPES)
_DEVICE = InputSpec("device", "COMBO", "default", tooltip="Where the weights live (default: ComfyUI's device).",
                    options=DEVICES, advanced=True)

MODEL_LOADER = NodeSpec(
    id="RSLTXVModelLoader",
    display_name="RS LTXV Model Loader",
    description="Loads the LTX-2 / LTX-2.3 / LTX-2.5 transformer from an official single file, a ComfyUI split "
                "diffusion-model file or a GGUF file (no ComfyUI LTX code involved).",
    category=LOADER_CATEGORY,
    inputs=(
        InputSpec("ckpt_name", "COMBO", tooltip="Checkpoint (.safetensors or .gguf) from models/checkpoints, "
                  "models/diffusion_models or models/unet.", folders=("checkpoints", "diffusion_models", "unet")),
        _DTYPE,
        _DEVICE,
        InputSpec("distilled", "COMBO", "auto", tooltip="Distilled checkpoints use the 8-step schedule; auto reads "
                  "the file name and metadata.", options=("auto", "yes", "no"), advanced=True),
    ),
    outputs=(OutputSpec("model", MODEL, "The LTX transformer as a ComfyUI MODEL (core LoRA loaders work on it)."),),
)

TEXT_ENCODER_LOADER = NodeSpec(
    id="RSLTXVTextEncoderLoader",
    display_name="RS LTXV Text Encoder Loader",
    description="Loads the text encoder (Gemma-3 as a single file, Hugging Face folder or GGUF; LTX-2.5's bundled "
                "Gemma-4 file) from models/text_encoders with the text connectors of an LTX checkpoint.",
    category=LOADER_CATEGORY,
    inputs=(
        InputSpec("text_encoder", "COMBO", tooltip="Gemma-3 12B (LTX-2 / 2.3): a file or a Hugging Face folder; "
                  "LTX-2.5: the Gemma-4 file bundled with its text projection (gemma4-12b-with-proj-ltx-2.5-…). A "
                  "Gemma that does not belong to the checkpoint's model version is refused with a message.",
                  folders=("text_encoders",)),
        InputSpec("ckpt_name", "COMBO", tooltip="The LTX checkpoint whose text projection and connectors go with "
                  "the transformer.", folders=("checkpoints", "diffusion_models", "unet")),
        _DTYPE,
        _DEVICE,
    ),
    outputs=(OutputSpec("text_encoder", TEXT_ENCODER,
                        "Gemma with the checkpoint's text connectors, for RS LTXV Text Encode."),),
)

TEXT_ENCODE = NodeSpec(
    id="RSLTXVTextEncode",
    display_name="RS LTXV Text Encode",
    description="Encodes a prompt to the video and audio contexts of the LTX transformer.",
    inputs=(
        _socket("text_encoder", TEXT_ENCODER, "From RS LTXV Text Encoder Loader."),
        InputSpec("text", "STRING", "", tooltip="The prompt: describe the action, camera and sound.",
                  multiline=True),
    ),
    outputs=(OutputSpec("conditioning", "CONDITIONING",
                        "The prompt's video and audio contexts for RS LTXV Generate / Extend."),),
)

VAE_LOADER = NodeSpec(
    id="RSLTXVVAELoader",
    display_name="RS LTXV Video VAE Loader",
    description="Loads the video VAE from an official single file or a ComfyUI split VAE file (LTX-2.5: with its "
                "diffusion decoder or the convolutional one).",
    category=LOADER_CATEGORY,
    inputs=(
        InputSpec("vae_name", "COMBO", tooltip="A file with the video VAE (models/vae or models/checkpoints); LTX-2.5: "
                  "ltx-2.5-video-vae-bf16 (diffusion decoder) or ltx-2.5-video-vae-conv-bf16 (convolutional).",
                  folders=("vae", "checkpoints")),
        _DTYPE,
        _DEVICE,
        _int("tile_size", 512, 0, 4096, 64, "Spatial tile size of the decode in pixels (0 = untiled).",
             advanced=True),
        InputSpec("decoder", "COMBO", "auto", tooltip="Which decoder turns latents into frames: vae (convolutional), "
                  "diffusion (LTX-2.5's one-step diffusion decoder: sharper, slower, more memory) or auto: the one the "
                  "file holds (diffusion in ltx-2.5-video-vae-bf16).", options=DECODERS, optional=True,
                  advanced=True),
    ),
    outputs=(OutputSpec("vae", VIDEO_VAE, "The video VAE: encodes guide images, decodes the video latent to frames."),),
)

AUDIO_VAE_LOADER = NodeSpec(
    id="RSLTXVAudioVAELoader",
    display_name="RS LTXV Audio VAE Loader",
    description="Loads the audio VAE and vocoder (always float32) from an official single file or a ComfyUI split "
                "file.",
    category=LOADER_CATEGORY,
    inputs=(
        InputSpec("audio_vae_name", "COMBO", tooltip="A file with the audio VAE (models/vae or models/checkpoints).",
                  folders=("vae", "checkpoints")),
        _DEVICE,
    ),
    outputs=(OutputSpec("audio_vae", AUDIO_VAE,
                        "The audio VAE with its vocoder: encodes input sound, decodes the audio latent."),),
)

UPSCALE_LOADER = NodeSpec(
    id="RSLTXVUpscaleModelLoader",
    display_name="RS LTXV Latent Upscaler Loader",
    description="Loads an LTX 2× spatial latent upsampler (models/latent_upscale_models).",
    category=LOADER_CATEGORY,
    inputs=(
        InputSpec("model_name", "COMBO", tooltip="e.g. ltx-2.3-spatial-upscaler-x2-1.1.safetensors.",
                  folders=("latent_upscale_models",)),
        _DTYPE,
        _DEVICE,
    ),
    outputs=(OutputSpec("upscale_model", UPSCALE_MODEL, "The latent upsampler for the 2x upscale pass."),),
)

DURATION_HEAD_LOADER = NodeSpec(
    id="RSLTXVDurationHeadLoader",
    display_name="RS LTXV Duration Head Loader",
    description="Loads the LTX-2.5 duration head (models/model_patches), which predicts a clip's length from the "
                "prompt: RS LTXV Generate uses it when num_frames is 0.",
    category=LOADER_CATEGORY,
    inputs=(
        InputSpec("head_name", "COMBO", tooltip="ltx-2.5-duration-head-bf16.safetensors, or a checkpoint that carries "
                  "duration_head.* tensors.", folders=("model_patches", "checkpoints", "diffusion_models")),
        _DEVICE,
    ),
    outputs=(OutputSpec("duration_head", DURATION_HEAD, "The duration head, for RS LTXV Generate's duration_head."),),
)

# -------------------------------------------------------------------------------------------------------- multi-GPU

BACKENDS = ("auto", "nccl", "gloo")

MULTI_GPU = NodeSpec(
    id="RSLTXVMultiGPU",
    display_name="RS LTXV Multi-GPU (Ray)",
    description="Spreads every denoising step of RS LTXV Generate / Extend over several GPUs (Ray workers, Ulysses "
                "sequence parallelism). Goes after the LoRA loaders; the model it gets is left as it is.",
    inputs=(
        _socket("model", MODEL, "From RS LTXV Model Loader, optionally through LoRA loaders (each worker loads the "
                "file itself, so core's loaders cannot be used here)."),
        _int("gpus", 2, 1, 64, 1, "How many GPUs (Ray workers) share each step; every one holds a full copy of the "
             "weights. 1 = off: the model passes through unchanged."),
        InputSpec("ray_address", "STRING", "", tooltip="Empty: a Ray on this machine (started if none runs). "
                  "\"auto\" or HOST:6379: a Ray cluster started with `ray start` (see the README)."),
        _float("comm_timeout_s", 120.0, 1.0, 3600.0, 1.0, "Seconds a worker may wait for the others before the run "
               "fails with a message naming it (a crashed or hung GPU).", optional=True, advanced=True),
        InputSpec("keep_loaded", "BOOLEAN", True, tooltip="Keep the workers and their weights loaded between "
                  "stages and runs (off: stop them after each stage to free the GPUs; the next one reloads).",
                  optional=True, advanced=True),
        InputSpec("backend", "COMBO", "auto", tooltip="How the workers compute and talk: auto = NCCL on GPUs "
                  "when Ray sees any, else gloo on CPU workers; nccl = GPU workers; gloo = CPU workers (no GPU "
                  "needed: for trying it out).", optional=True, advanced=True, options=BACKENDS),
    ),
    outputs=(OutputSpec("model", MODEL, "The same model carrying the multi-GPU setting: RS LTXV Generate / Extend "
                        "then denoise on the workers."),),
)

NODES: dict[str, NodeSpec] = {s.id: s for s in (
    MODEL_LOADER, TEXT_ENCODER_LOADER, TEXT_ENCODE, VAE_LOADER, AUDIO_VAE_LOADER, UPSCALE_LOADER, DURATION_HEAD_LOADER,
    GENERATE, EXTEND, RETAKE, MULTI_GPU)}
