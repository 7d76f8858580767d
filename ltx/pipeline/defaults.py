"""Sampling defaults per model generation: one table (:data:`MODEL_DEFAULTS`) read by the library
(:func:`resolve_request`, run at the start of every generation), the CLI (its flags default to the checkpoint's row)
and the nodes' tooltips. A setting the user gives always wins; only what is left unset comes from the table.

What "unset" means in a :class:`~.request.Request`: ``steps``, ``sampler`` and ``image_crf`` left at None, the
guidance left at the default objects :data:`DEFAULT_VIDEO_GUIDANCE` / :data:`DEFAULT_AUDIO_GUIDANCE` (the very
objects, not equal copies: ``GuidanceParams(cfg=3.0, …)`` written out is the user's choice), and ``frames`` at
:data:`AUTO_FRAMES` (0: predict the length with the duration head).

Where the rows come from (Lightricks ltx-pipelines 1.2.0, ``ltx_pipelines/utils/constants.py`` and the pipelines):

* LTX-2.5 (and any later generation until it gets its own row): ``LTX_2_4_PARAMS`` — the 2.3 knobs (30 steps, CFG
  3 / 7, STG 1 on block 28, rescale 0.7, modality 3) with the image CRF moved to 18 (``LTX_2_4_IMAGE_CRF``; 33
  before). Distilled checkpoints run ``DistilledPipeline``: the 8 distilled σ, no guidance (``SimpleDenoiser``),
  stage 1 sampled with Euler-ancestral at ``eta`` 1 whose noise stream is seeded ``seed + 10000``
  (``ANCESTRAL_SAMPLER_SINCE_VERSION = (2, 5)``, ``ANCESTRAL_NOISE_SEED_OFFSET``), the refinement after the 2×
  upsampler deterministic Euler. Clip length: predicted by the duration head when neither ``--num-frames`` nor a
  range is given (1…20 s, ``AutoDuration``). Video decoder: the diffusion decoder ("the native default from LTX-2.5
  on", diffusers 0.42.1 ``LTX25AutoBlocks``; Lightricks' ``ltx-2.5-video-vae-bf16`` file).
* LTX-2.0 and LTX-2.3: what this package has always used (ltx-pipelines' ``LTX_2_3_PARAMS``: 30 steps, STG block
  28, CRF 33, Euler; no separate distilled row). ltx-pipelines' ``LTX_2_PARAMS`` for LTX-2 says 40 steps and STG
  block 29 and its ``DistilledPipeline`` runs 2.3 without guidance; those are kept as they were here so existing
  2.0 / 2.3 runs do not change (give ``--steps 40 --stg-block 29`` / ``--cfg 1`` to follow them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from .guidance import GuidanceParams

#: a :class:`~.request.Request` (not imported: the request module imports this one)
RequestT = TypeVar("RequestT")

#: ``frames`` of a request (``num_frames`` 0 on the nodes, ``--frames auto`` on the CLI): predict the clip length
#: from the prompt with the duration head (LTX-2.5)
AUTO_FRAMES = 0
#: the video decoders a run can use: ``auto`` = the model's preferred one among those the files hold
DECODERS = ("auto", "vae", "diffusion")
#: the default clip-length range of the duration head, seconds (ltx-pipelines ``AutoDuration``)
AUTO_MIN_SECONDS, AUTO_MAX_SECONDS = 1.0, 20.0
#: the first model generation with a duration head
DURATION_HEAD_SINCE = (2, 5)

#: a Request's default video / audio guidance: these objects mean "the model's default" (see the module docstring)
DEFAULT_VIDEO_GUIDANCE = GuidanceParams(cfg=3.0, stg=1.0, stg_blocks=(28,), rescale=0.7, modality=3.0)
DEFAULT_AUDIO_GUIDANCE = GuidanceParams(cfg=7.0, stg=1.0, stg_blocks=(28,), rescale=0.7, modality=3.0)
NO_GUIDANCE = GuidanceParams()


@dataclass(frozen=True)
class ModelDefaults:
    """The settings one model generation (and distilled / full variant) runs with when the user leaves them unset.

    ``steps`` of the first pass; ``sampler`` its sampler and ``upscale_sampler`` the refinement's after the 2×
    upsampler (used when the request leaves ``sampler`` unset); ``ancestral_noise_offset``: the Euler-ancestral
    sampler's own noise stream is seeded ``seed + offset``; ``image_crf`` the H.264 CRF guide images are re-compressed
    at; ``fps`` frames per second; ``frames`` pixel frames when the length is not predicted, ``auto_frames`` whether
    the CLI predicts it (duration head) when ``--frames`` is not given; ``decoder`` the preferred video decoder
    (``vae`` or ``diffusion``); ``guide_pixel_frames`` the time span of an image guide's tokens (None: its latent
    frame's 8 pixel frames, ltx-core 1.0.0; 1: one pixel frame, ltx-core 1.2.0 ``VideoConditionByKeyframeIndex``);
    ``source`` where the values come from."""

    generation: str
    distilled: bool
    steps: int
    sampler: str
    upscale_sampler: str
    ancestral_noise_offset: int
    video_guidance: GuidanceParams
    audio_guidance: GuidanceParams
    image_crf: int
    fps: float = 24.0
    frames: int = 121
    auto_frames: bool = False
    decoder: str = "vae"
    guide_pixel_frames: int | None = None
    source: str = ""

    @property
    def label(self) -> str:
        """e.g. ``LTX-2.5 distilled`` (for messages and tables)."""
        name = {"2.0": "LTX-2"}.get(self.generation, f"LTX-{self.generation}")
        return f"{name} {'distilled' if self.distilled else 'full'}"


_HISTORIC = dict(steps=30, sampler="euler", upscale_sampler="euler", ancestral_noise_offset=1,
                 video_guidance=DEFAULT_VIDEO_GUIDANCE, audio_guidance=DEFAULT_AUDIO_GUIDANCE, image_crf=33,
                 source="this package's defaults (ltx-pipelines LTX_2_3_PARAMS)")
_LTX25 = ModelDefaults("2.5", False, steps=30, sampler="euler", upscale_sampler="euler", ancestral_noise_offset=1,
                       video_guidance=DEFAULT_VIDEO_GUIDANCE, audio_guidance=DEFAULT_AUDIO_GUIDANCE, image_crf=18,
                       auto_frames=True, decoder="diffusion", guide_pixel_frames=1,
                       source="ltx-pipelines 1.2.0 LTX_2_4_PARAMS, ti2vid_two_stages")

#: (generation, distilled) → defaults; a checkpoint uses the row of the newest generation at or below its own
MODEL_DEFAULTS: dict[tuple[str, bool], ModelDefaults] = {
    ("2.0", False): ModelDefaults("2.0", False, **_HISTORIC),
    ("2.0", True): ModelDefaults("2.0", True, **_HISTORIC),
    ("2.3", False): ModelDefaults("2.3", False, **_HISTORIC),
    ("2.3", True): ModelDefaults("2.3", True, **_HISTORIC),
    ("2.5", False): _LTX25,
    ("2.5", True): replace(_LTX25, distilled=True, steps=8, sampler="euler_ancestral", ancestral_noise_offset=10000,
                           video_guidance=NO_GUIDANCE, audio_guidance=NO_GUIDANCE,
                           source="ltx-pipelines 1.2.0 DistilledPipeline (ancestral stage 1 since 2.5)"),
}


def planning_frames(frames: int, fps: float) -> int:
    """``frames`` for the memory planner: the pixel frames themselves, or for :data:`AUTO_FRAMES` the longest clip the
    duration head may choose (:data:`AUTO_MAX_SECONDS` at ``fps`` frames per second, as 8k + 1)."""
    return int(AUTO_MAX_SECONDS * fps) // 8 * 8 + 1 if frames == AUTO_FRAMES else frames


def model_has_duration_head(version: object) -> bool:
    """Whether models of ``version`` (a :class:`~rs_ltxv.ltx.config.Version`, ``"2.5.0"``…) come with a duration
    head: LTX-2.5 on (ltx-pipelines 1.2.0: "DurationHead ships from LTX 2.5 / gemma4 onward"); LTX-2 and LTX-2.3
    need a number of frames."""
    return _as_tuple(getattr(version, "value", version)) >= DURATION_HEAD_SINCE


def audio_frames(samples: int, sample_rate: int, fps: float) -> tuple[int, bool]:
    """The clip length for conditioning audio of ``samples`` at ``sample_rate`` Hz when the length is left to the
    model (:data:`AUTO_FRAMES`): the fewest pixel frames ``8k + 1`` whose duration at ``fps`` frames per second covers
    the audio, at most :data:`AUTO_MAX_SECONDS` (as :func:`planning_frames`). Returns ``(frames, cut)``: ``cut`` when
    the audio is longer than that. ltx-pipelines' ``A2VidPipelineTwoStage`` has no duration head: it takes the frame
    count it is given and reads the audio up to that length."""
    needed = samples * fps / sample_rate  # pixel frames the audio lasts
    frames = max(0, math.ceil((needed - 1) / 8 - 1e-9)) * 8 + 1
    longest = planning_frames(AUTO_FRAMES, fps)
    return min(frames, longest), frames > longest


def _as_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in str(version).replace("-", ".").split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def model_defaults(version: object, distilled: bool) -> ModelDefaults:
    """The row for a model ``version`` (a :class:`~rs_ltxv.ltx.config.Version`, ``"2.5"``, ``"2.5.0"``…) and
    variant: the newest generation at or below it (an unknown newer version gets the closest known row, an
    unversioned or older one LTX-2's), as ltx-pipelines' ``detect_params``."""
    wanted = _as_tuple(getattr(version, "value", version))
    best = "2.0"
    for generation, _ in MODEL_DEFAULTS:
        if _as_tuple(generation) <= wanted and _as_tuple(generation) > _as_tuple(best):
            best = generation
    return MODEL_DEFAULTS[(best, bool(distilled))]


def defaults_for_parts(parts: object) -> ModelDefaults:
    """The row of :class:`~.protocols.ModelParts`' transformer (its config's version) and ``distilled`` flag."""
    return model_defaults(parts.transformer.config.version, parts.distilled)  # type: ignore[attr-defined]


def resolve_request(req: RequestT, defaults: ModelDefaults) -> RequestT:
    """``req`` (a :class:`~.request.Request`) with every unset setting taken from ``defaults`` (see the module
    docstring); settings the user gave are kept. Idempotent. ``frames`` stays :data:`AUTO_FRAMES` (the duration head
    resolves it once the prompt is encoded)."""
    changes: dict[str, Any] = {}
    r: Any = req
    if r.steps is None:
        changes["steps"] = defaults.steps
    if r.sampler is None:
        changes["sampler"] = defaults.sampler
    if r.upscale_sampler is None:
        changes["upscale_sampler"] = r.sampler if r.sampler is not None else defaults.upscale_sampler
    if r.image_crf is None:
        changes["image_crf"] = defaults.image_crf
    if r.video_guidance is DEFAULT_VIDEO_GUIDANCE:
        changes["video_guidance"] = defaults.video_guidance
    if r.audio_guidance is DEFAULT_AUDIO_GUIDANCE:
        changes["audio_guidance"] = defaults.audio_guidance
    return replace(r, **changes) if changes else req


def markdown_table() -> str:
    """The table as Markdown (README): one row per generation and variant."""
    head = ("| model | steps | sampler (2× refinement) | guidance video / audio | image CRF | fps | length | "
            "video decoder |\n|---|---|---|---|---|---|---|---|\n")
    rows = []
    for d in MODEL_DEFAULTS.values():
        g, a = d.video_guidance, d.audio_guidance
        guidance = ("none" if not (g.needs_uncond or g.needs_perturbed or g.needs_isolated) else
                    f"CFG {g.cfg:g} / {a.cfg:g}, STG {g.stg:g} block {','.join(map(str, g.stg_blocks))}, "
                    f"rescale {g.rescale:g}, modality {g.modality:g}")
        sampler = d.sampler + (f" (eta 1, noise seed + {d.ancestral_noise_offset})" if d.sampler == "euler_ancestral"
                               else "") + f" ({d.upscale_sampler})"
        length = f"duration head, else {d.frames}" if d.auto_frames else str(d.frames)
        steps = f"{d.steps} (distilled σ)" if d.steps == 8 and d.distilled else str(d.steps)
        decoder = "diffusion when the files have it, else VAE" if d.decoder == "diffusion" else "VAE"
        rows.append(f"| {d.label} | {steps} | {sampler} | {guidance} | {d.image_crf} | {d.fps:g} | {length} | "
                    f"{decoder} |")
    return head + "\n".join(rows) + "\n"
