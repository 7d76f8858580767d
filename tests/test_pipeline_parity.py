"""Our denoising stage vs ltx-pipelines 1.0.0's ``denoise_audio_video`` on tiny random weights (float32, CPU):
same seed, same conditioning latents, same guidance → same final latents."""

from __future__ import annotations

import pytest
import torch

from rs_ltxv.ltx.loading import load_transformer
from rs_ltxv.ltx.pipeline.common import image_conditioning
from rs_ltxv.ltx.pipeline.conditioning import ReplaceLatentFrames
from rs_ltxv.ltx.pipeline.denoiser import Denoiser
from rs_ltxv.ltx.pipeline.guidance import GuidanceParams
from rs_ltxv.ltx.pipeline.latents import VideoSize
from rs_ltxv.ltx.pipeline.sampling import Callbacks, Cancelled, SamplerOptions
from rs_ltxv.ltx.pipeline.schedules import make_sigmas
from rs_ltxv.ltx.pipeline.stage import StageInputs, run_stage
from rs_ltxv.ltx.text import TextContexts

from conftest import assert_close
from reference import ltx_core_ref as R
from reference.builders import realistic_init

SIZE = VideoSize(frames=17, height=64, width=96, fps=24.0)  # latent 3 × 2 × 3, audio 18 frames


@pytest.fixture(scope="module", params=["2.0", "2.3"])
def setup(request, tmp_path_factory):
    cfg = R.tiny_config(request.param, in_channels=128, audio_in_channels=128)
    ref = R.build_reference(request.param, cfg=cfg, seed=21)
    realistic_init(ref.transformer, 22)
    path = tmp_path_factory.mktemp("pipe") / "ckpt.safetensors"
    R.write_checkpoint(ref, path)
    ours = load_transformer(path, dtype=torch.float32)
    g = torch.Generator().manual_seed(23)
    vdim, adim = ours.context_dim
    ctx = {k: torch.randn(1, 16, d, generator=g) for k, d in (("v", vdim), ("a", adim), ("nv", vdim), ("na", adim))}
    return ref, ours, ctx


def _reference(ref, ctx, sigmas, conditions, video_params, audio_params, seed, sampler="euler"):
    from ltx_core.components.diffusion_steps import EulerDiffusionStep, Res2sDiffusionStep
    from ltx_core.components.guiders import MultiModalGuider, MultiModalGuiderParams
    from ltx_core.components.noisers import GaussianNoiser
    from ltx_core.conditioning import VideoConditionByKeyframeIndex, VideoConditionByLatentIndex
    from ltx_core.model.transformer import X0Model
    from ltx_core.types import VideoPixelShape
    from ltx_pipelines.utils.helpers import denoise_audio_video, multi_modal_guider_denoising_func
    from ltx_pipelines.utils.samplers import euler_denoising_loop, res2s_audio_video_denoising_loop
    from ltx_pipelines.utils.types import PipelineComponents

    def mm(p: GuidanceParams) -> MultiModalGuider:
        params = MultiModalGuiderParams(cfg_scale=p.cfg, stg_scale=p.stg, stg_blocks=list(p.stg_blocks),
                                        rescale_scale=p.rescale, modality_scale=p.modality)
        return MultiModalGuider(params, negative_context=None)

    vg, ag = mm(video_params), mm(audio_params)
    vg = type(vg)(vg.params, negative_context=ctx["nv"])
    ag = type(ag)(ag.params, negative_context=ctx["na"])
    denoise_fn = multi_modal_guider_denoising_func(vg, ag, ctx["v"], ctx["a"], X0Model(ref.transformer))
    items = [VideoConditionByLatentIndex(c.latent, c.strength, c.latent_frame) if isinstance(c, ReplaceLatentFrames)
             else VideoConditionByKeyframeIndex(c.latent, c.pixel_frame, c.strength) for c in conditions]
    if sampler == "euler":
        loop = lambda s, v, a, stepper: euler_denoising_loop(s, v, a, stepper, denoise_fn)  # noqa: E731
        stepper = EulerDiffusionStep()
    else:
        loop = lambda s, v, a, stepper: res2s_audio_video_denoising_loop(  # noqa: E731
            s, v, a, stepper, denoise_fn, noise_seed=seed, model_dtype=torch.float32)
        stepper = Res2sDiffusionStep()
    with torch.no_grad():
        video, audio = denoise_audio_video(
            VideoPixelShape(1, SIZE.frames, SIZE.height, SIZE.width, SIZE.fps), items,
            GaussianNoiser(torch.Generator().manual_seed(seed)), sigmas, stepper, loop,
            PipelineComponents(torch.float32, torch.device("cpu")), torch.float32, torch.device("cpu"))
    return video.latent, audio.latent


def _ours(ours, ctx, sigmas, conditions, video_params, audio_params, seed, sampler="euler", progress=None,
          cancel=None):
    denoiser = Denoiser(ours, TextContexts(ctx["v"], ctx["a"], torch.ones(1, 16)),
                        TextContexts(ctx["nv"], ctx["na"], torch.ones(1, 16)), video_params, audio_params)
    return run_stage(denoiser, StageInputs(SIZE, sigmas, channels=128, seed=seed, sampler=sampler,
                                           conditioning=tuple(conditions),
                                           sampler_options=SamplerOptions(seed=seed, model_dtype=torch.float32)),
                     Callbacks(progress, cancel))


FULL = (GuidanceParams(cfg=3.0, stg=1.0, stg_blocks=(1,), rescale=0.7, modality=3.0),
        GuidanceParams(cfg=7.0, stg=1.0, stg_blocks=(1,), rescale=0.7, modality=3.0))
DISTILLED = (GuidanceParams(), GuidanceParams())


def _conditions(kind):
    g = torch.Generator().manual_seed(31)
    first = image_conditioning(torch.randn(1, 128, 1, 2, 3, generator=g), 0, 1.0)
    last = image_conditioning(torch.randn(1, 128, 1, 2, 3, generator=g), 16, 0.8)
    return {"t2v": [], "i2v": [first], "keyframes": [first, last]}[kind]


@pytest.mark.parametrize("kind", ["t2v", "i2v", "keyframes"])
@pytest.mark.parametrize("guidance", [FULL, DISTILLED], ids=["guided", "distilled"])
def test_euler_stage_matches_reference(setup, kind, guidance):
    ref, ours, ctx = setup
    sigmas = make_sigmas("ltxv", 4) if guidance is FULL else make_sigmas("distilled", 8)
    conds = _conditions(kind)
    rv, ra = _reference(ref, ctx, sigmas, conds, *guidance, seed=7)
    ov, oa = _ours(ours, ctx, sigmas, conds, *guidance, seed=7)
    assert_close(ov, rv, f"video {kind}")
    assert_close(oa, ra, f"audio {kind}")
    if kind != "t2v":  # the conditioned first frame is kept exactly (strength 1)
        assert torch.equal(ov[:, :, 0], conds[0].latent[:, :, 0])


def test_res2s_stage_matches_reference(setup):
    ref, ours, ctx = setup
    sigmas = make_sigmas("ltxv", 3, tokens=SIZE.video_tokens)
    conds = _conditions("i2v")
    rv, ra = _reference(ref, ctx, sigmas, conds, *DISTILLED, seed=5, sampler="res_2s")
    ov, oa = _ours(ours, ctx, sigmas, conds, *DISTILLED, seed=5, sampler="res_2s")
    assert_close(ov, rv, "res_2s video")
    assert_close(oa, ra, "res_2s audio")


def test_progress_and_cancel(setup):
    _, ours, ctx = setup
    sigmas = make_sigmas("distilled", 8)
    seen = []
    _ours(ours, ctx, sigmas, [], *DISTILLED, seed=1, progress=lambda i, n: seen.append((i, n)))
    assert seen == [(i, 8) for i in range(1, 9)]
    calls = []
    with pytest.raises(Cancelled):
        _ours(ours, ctx, sigmas, [], *DISTILLED, seed=1, cancel=lambda: len(calls) > 2 or calls.append(1))
    assert len(calls) == 3  # stopped before the 4th model call
