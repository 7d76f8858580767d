"""Schedules, sampler steps, res_2s coefficients and guidance vs ltx-core / ltx-pipelines 1.0.0."""

from __future__ import annotations

import pytest
import torch

from rs_ltxv.ltx.pipeline import schedules as S
from rs_ltxv.ltx.pipeline.guidance import GuidanceParams, SigmaBinnedGuidance, guide
from rs_ltxv.ltx.pipeline.res2s import res2s_coefficients
from rs_ltxv.ltx.pipeline.steps import euler_ancestral_step, euler_step, res2s_sde_step

from reference import ltx_core_ref  # noqa: F401  (torchaudio stub before ltx_pipelines imports)


@pytest.mark.parametrize("steps", [1, 8, 20, 30, 40])
@pytest.mark.parametrize("latent_shape", [None, (1, 128, 16, 8, 12), (1, 128, 4, 4, 4), (2, 128, 31, 22, 38)])
def test_ltxv_scheduler(steps, latent_shape):
    from ltx_core.components.schedulers import LTX2Scheduler

    latent = None if latent_shape is None else torch.zeros(latent_shape)
    ref = LTX2Scheduler().execute(steps=steps, latent=latent)
    tokens = None if latent_shape is None else latent_shape[2] * latent_shape[3] * latent_shape[4]
    ours = S.make_sigmas("ltxv", steps, tokens=tokens)
    if steps == 1:  # ltx-core returns [nan, 0] here (0/0 in the stretch); one step goes from 1 to 0
        assert ours.tolist() == pytest.approx([1.0, 0.0])
        return
    assert torch.equal(ours, ref)


def test_documented_values():
    """The published 8-step list (no latent) and the distilled lists."""
    expected = torch.tensor([1, 0.9657, 0.9219, 0.8639, 0.7834, 0.6646, 0.471, 0.1, 0])
    torch.testing.assert_close(S.ltxv_sigmas(8), expected, atol=1e-4, rtol=0)
    from ltx_pipelines.utils.constants import DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES

    assert torch.equal(S.make_sigmas("distilled", 8), torch.tensor(DISTILLED_SIGMA_VALUES, dtype=torch.float32))
    assert torch.equal(S.make_sigmas("stage2", 3), torch.tensor(STAGE_2_DISTILLED_SIGMA_VALUES, dtype=torch.float32))


@pytest.mark.parametrize("steps", [1, 4, 10, 25])
def test_linear_quadratic(steps):
    from ltx_core.components.schedulers import LinearQuadraticScheduler

    assert torch.equal(S.make_sigmas("linear_quadratic", steps), LinearQuadraticScheduler().execute(steps=steps))


def test_auto_and_custom_and_errors():
    assert torch.equal(S.make_sigmas("auto", 8, distilled_model=True), S.make_sigmas("distilled", 8))
    assert torch.equal(S.make_sigmas("auto", 8, distilled_model=False), S.ltxv_sigmas(8))
    assert torch.equal(S.make_sigmas("auto", 12, distilled_model=True), S.ltxv_sigmas(12))
    assert S.make_sigmas("ltxv", 3, custom=[0.9, 0.5, 0.0]).tolist() == pytest.approx([0.9, 0.5, 0.0])
    with pytest.raises(ValueError, match="strictly decreasing"):
        S.make_sigmas("ltxv", 3, custom=[0.5, 0.9, 0.0])
    with pytest.raises(ValueError, match="Unknown schedule"):
        S.make_sigmas("karras", 3)
    with pytest.raises(ValueError, match="exactly 8 steps"):
        S.make_sigmas("distilled", 5)


def test_euler_step_matches_reference():
    from ltx_core.components.diffusion_steps import EulerDiffusionStep

    g = torch.Generator().manual_seed(0)
    x, x0 = torch.randn(2, 10, 16, generator=g), torch.randn(2, 10, 16, generator=g)
    sigmas = S.ltxv_sigmas(8)
    for i in range(8):
        ref = EulerDiffusionStep().step(x, x0, sigmas, i)
        assert torch.equal(euler_step(x, x0, sigmas[i], sigmas[i + 1]), ref)
    xb = x.to(torch.bfloat16)
    assert torch.equal(euler_step(xb, x0.to(torch.bfloat16), sigmas[2], sigmas[3]),
                       EulerDiffusionStep().step(xb, x0.to(torch.bfloat16), sigmas, 2))


def test_euler_ancestral_limits():
    g = torch.Generator().manual_seed(1)
    x, x0, noise = (torch.randn(1, 6, 4, generator=g) for _ in range(3))
    # eta 0 is plain Euler
    torch.testing.assert_close(euler_ancestral_step(x, x0, 0.8, 0.5, eta=0.0, noise=None), euler_step(x, x0, 0.8, 0.5))
    # the last step lands on x0
    torch.testing.assert_close(euler_ancestral_step(x, x0, 0.4, 0.0, eta=1.0, noise=noise), x0)
    # with eta > 0 the result is noisier but keeps the marginal: x0 = 0, unit noise → std ≈ sigma_next
    big_x0 = torch.zeros(1, 20000, 1)
    big_x = torch.randn(1, 20000, 1, generator=g) * 0.8
    out = euler_ancestral_step(big_x, big_x0, 0.8, 0.5, eta=1.0, noise=torch.randn(1, 20000, 1, generator=g))
    assert abs(out.std().item() - 0.5) < 0.02


def test_res2s_coefficients_and_step_match_reference():
    from ltx_core.components.diffusion_steps import Res2sDiffusionStep
    from ltx_pipelines.utils.res2s import get_res2s_coefficients

    sigmas = S.ltxv_sigmas(15, tokens=1536).double()
    for i in range(14):
        h = -torch.log(sigmas[i + 1] / sigmas[i]).item()
        assert res2s_coefficients(h) == get_res2s_coefficients(h, {}, 0.5)
    assert res2s_coefficients(0.0) == get_res2s_coefficients(0.0, {}, 0.5)
    g = torch.Generator().manual_seed(2)
    x, x0, noise = (torch.randn(1, 12, 8, generator=g, dtype=torch.float64) for _ in range(3))
    for i in (0, 5, 13, 14):
        ref = Res2sDiffusionStep().step(x, x0, sigmas, i, noise)
        ours = res2s_sde_step(x, x0, sigmas[i], sigmas[i + 1], noise)
        assert torch.equal(ours, ref)


@pytest.mark.parametrize("params", [
    dict(cfg_scale=3.0, stg_scale=1.0, rescale_scale=0.7, modality_scale=3.0, stg_blocks=[29]),
    dict(cfg_scale=7.0, stg_scale=0.0, rescale_scale=0.0, modality_scale=1.0),
    dict(cfg_scale=1.0, stg_scale=0.0, rescale_scale=1.0, modality_scale=3.0),
])
def test_multimodal_guidance_formula(params):
    from ltx_core.components.guiders import MultiModalGuider, MultiModalGuiderParams

    g = torch.Generator().manual_seed(3)
    c, u, p, m = (torch.randn(1, 30, 16, generator=g) for _ in range(4))
    ref_guider = MultiModalGuider(MultiModalGuiderParams(**params))
    ours = GuidanceParams(cfg=params["cfg_scale"], stg=params["stg_scale"], rescale=params["rescale_scale"],
                          modality=params["modality_scale"], stg_blocks=tuple(params.get("stg_blocks", ())))
    assert (ours.needs_uncond, ours.needs_perturbed, ours.needs_isolated) == (
        ref_guider.do_unconditional_generation(), ref_guider.do_perturbed_generation(),
        ref_guider.do_isolated_modality_generation())
    torch.testing.assert_close(guide(ours, c, u, p, m), ref_guider.calculate(c, u, p, m), rtol=0, atol=1e-6)


def test_rescale_per_item_in_a_batch():
    g = torch.Generator().manual_seed(4)
    c, u = torch.randn(2, 30, 16, generator=g), torch.randn(2, 30, 16, generator=g)
    c[1] *= 10
    params = GuidanceParams(cfg=4.0, rescale=1.0)
    out = guide(params, c, u)
    single = torch.cat([guide(params, c[i:i + 1], u[i:i + 1]) for i in range(2)])
    torch.testing.assert_close(out, single)


def test_sigma_binned_guidance_matches_reference():
    from ltx_core.components.guiders import MultiModalGuiderFactory, MultiModalGuiderParams

    ref = MultiModalGuiderFactory.from_dict({1.0: MultiModalGuiderParams(cfg_scale=5.0),
                                             0.5: MultiModalGuiderParams(cfg_scale=2.0)})
    ours = SigmaBinnedGuidance.from_mapping({1.0: GuidanceParams(cfg=5.0), 0.5: GuidanceParams(cfg=2.0)})
    for sigma in (1.2, 1.0, 0.8, 0.5, 0.3, 0.0):
        assert ours.at(sigma).cfg == ref.params(sigma).cfg_scale


@pytest.mark.parametrize("name", ["ltxv", "linear_quadratic", "auto"])
def test_every_schedule_accepts_the_shift_settings(name):
    sigmas = S.make_sigmas(name, 6, max_shift=1.5, base_shift=0.5)
    assert sigmas.shape == (7,)
    assert sigmas[-1] == 0
    assert bool((sigmas[1:] < sigmas[:-1]).all())
    if name != "linear_quadratic":
        assert not torch.equal(sigmas, S.make_sigmas(name, 6))  # the shift settings are used
