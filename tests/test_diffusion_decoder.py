"""LTX-2.5's diffusion video decoder against diffusers 0.42.1 (``LTX2VideoDiffusionDecoderModel``, FlexAttention
neighbourhood windows) on a tiny float32 config: same weights (names mapped), same noise; the neighbourhood attention
against a dense masked attention built from diffusers' own window mask; the config reader."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rs_ltxv.ltx.errors import ConfigError, InputError
from rs_ltxv.ltx.random_weights import random_init
from rs_ltxv.ltx.video_vae.diffusion import DiffusionDecoderConfig, DiffusionVideoDecoder, decode_noise_shape
from rs_ltxv.ltx.video_vae.diffusion import attention as na
from rs_ltxv.ltx.video_vae.diffusion.tiny import tiny_diffusion_config

from conftest import assert_close
from reference.builders import realistic_init

LATENT = 8


def _decoder(cfg: DiffusionDecoderConfig, seed: int = 0) -> DiffusionVideoDecoder:
    decoder = realistic_init(random_init(DiffusionVideoDecoder(cfg), seed, std=0.1), seed + 1)
    gen = torch.Generator().manual_seed(seed + 2)
    stats = decoder.per_channel_statistics
    stats.register_buffer("mean-of-means", torch.randn(cfg.latent_channels, generator=gen) * 0.3)
    stats.register_buffer("std-of-means", torch.rand(cfg.latent_channels, generator=gen) + 0.5)
    return decoder.eval()


def _diffusers_state(ours: DiffusionVideoDecoder) -> dict[str, torch.Tensor]:
    """Our (official) names → diffusers' (``attn.qkv`` split in Q, K, V rows; ``proj``/``q_norm``/``k_norm`` and
    the timestep MLP renamed)."""
    renames = (("t_embedder.mlp.0.", "t_embedder.timestep_embedder.linear_1."),
               ("t_embedder.mlp.2.", "t_embedder.timestep_embedder.linear_2."), (".attn.proj.", ".attn.to_out.0."),
               (".attn.q_norm.", ".attn.norm_q."), (".attn.k_norm.", ".attn.norm_k."))
    out = {}
    for name, value in ours.state_dict().items():
        if name.startswith("per_channel_statistics."):
            continue
        for old, new in renames:
            name = name.replace(old, new)
        if ".attn.qkv." in name:
            for part, chunk in zip(("to_q", "to_k", "to_v"), value.chunk(3), strict=True):
                out["decoder." + name.replace(".qkv.", f".{part}.")] = chunk
        else:
            out["decoder." + name] = value
    return out


def _diffusers_model(cfg: DiffusionDecoderConfig, ours: DiffusionVideoDecoder):
    from diffusers.models.autoencoders.ltx2_diffusion_decoder import LTX2VideoDiffusionDecoderModel

    model = LTX2VideoDiffusionDecoderModel(
        latent_channels=cfg.latent_channels, patch_size=cfg.patch_size, decoder_head_dim=cfg.head_dim,
        decoder_stage_channels=cfg.stage_channels, decoder_stage_depths=cfg.stage_depths,
        decoder_stage_kernels=cfg.stage_kernels, decoder_upsample_strides=cfg.upsample_strides,
        decoder_upsample_channel_reductions=cfg.upsample_reductions, decoder_stage5_kernel=cfg.stage5_kernel,
        decoder_t_emb_dim=cfg.t_emb_dim, decoder_timestep_scale_multiplier=cfg.timestep_scale_multiplier,
        decoder_model_output_type=cfg.model_output_type, decoder_num_inference_steps=cfg.num_inference_steps,
        spatial_compression_ratio=cfg.spatial_upsampling, temporal_compression_ratio=cfg.temporal_upsampling)
    missing, unexpected = model.load_state_dict(_diffusers_state(ours), strict=False)
    assert sorted(missing) == ["latents_mean", "latents_std"]
    assert not unexpected
    return model.eval()


def test_decoder_matches_diffusers():
    """The released path (x0, one step, timestep × 1000): normalised latents for ours, the same latents
    un-normalised for diffusers (its pipeline applies the statistics), one generator seed for both."""
    cfg = tiny_diffusion_config(LATENT)
    ours = _decoder(cfg)
    ref = _diffusers_model(cfg, ours)
    latent = torch.randn(1, LATENT, 3, 3, 3, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        got = ours(latent, torch.Generator().manual_seed(9))
        want = ref.decode(ours.per_channel_statistics.un_normalize(latent),
                          generator=torch.Generator().manual_seed(9)).sample
    assert got.shape == (1, 3, 17, 96, 96)
    assert want.abs().max() > 0.1
    assert_close(got, want, "diffusion decoder vs diffusers")


def _diffusers_window_mask(dims: tuple[int, int, int], kernel: tuple[int, int, int]) -> torch.Tensor:
    """Dense ``(N, N)`` boolean mask from diffusers' FlexAttention ``mask_mod`` (its NATTEN-window definition)."""
    from diffusers.models.autoencoders.ltx2_diffusion_decoder import _neighborhood_block_mask

    block_mask = _neighborhood_block_mask(*dims, kernel, torch.device("cpu"))
    n = dims[0] * dims[1] * dims[2]
    idx = torch.arange(n)
    zero = torch.zeros((), dtype=torch.long)
    return block_mask.mask_mod(zero, zero, idx[:, None], idx[None, :])


@pytest.mark.parametrize("dims,kernel", [((5, 9, 7), (3, 5, 5)), ((4, 6, 11), (11, 3, 7))])
def test_neighbourhood_attention_tiles_equal_dense_window_attention(monkeypatch, dims, kernel):
    """A small score budget splits the queries into many tiles (interior ones grouped into one SDPA call); the
    result equals dense attention under diffusers' window mask, kernels longer than an axis included."""
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, *dims, 2, 8, generator=gen) for _ in range(3))
    monkeypatch.setattr(na, "SCORE_BUDGET", 4 * 2 * 2 * 24 * 200)
    got = na.neighbourhood_attention(q, k, v, kernel)
    assert na._tile_sizes(dims, kernel, 4) != list(dims)
    mask = _diffusers_window_mask(dims, kernel)
    n = mask.shape[0]
    flat = [x.reshape(2, n, 2, 8).transpose(1, 2) for x in (q, k, v)]
    want = F.scaled_dot_product_attention(*flat, attn_mask=mask, scale=1.0).transpose(1, 2).reshape(got.shape)
    assert_close(got, want, "tiled neighbourhood attention")


def test_rope_split_and_frequencies_follow_ltx_core():
    assert na.rope_split(64) == (16, 24, 24)
    assert na.rope_split(16) == (4, 6, 6)
    assert na.rope_split(24) == (4, 10, 10)
    assert torch.allclose(na.rope_inv_freqs(4), torch.tensor([1.0, 0.01]))


def test_config_reads_the_released_section_and_round_trips():
    released = {"_class_name": "CausalDiffusionVAE", "model_output_type": "x0", "decoder": {
        "_class_name": "NADiffusionDecoder", "in_channels": 128, "out_channels": 3, "patch_size": 4, "head_dim": 64,
        "stage_channels": [2048, 1024, 512, 512, 256], "stage_depths": [4, 6, 4, 2, 8],
        "stage_kernels": [[3, 7, 7], [3, 7, 7], [3, 5, 5], [3, 5, 5], [11, 11, 11]],
        "upsamples": [[[1, 2, 2], 2], [[2, 1, 1], 2], [[2, 2, 2], 1], [[2, 2, 2], 2]], "stage5_kernel": [11, 11, 11],
        "timestep_scale_multiplier": 1000.0, "default_num_inference_steps": 1}}
    cfg = DiffusionDecoderConfig.from_dict(released)
    assert cfg == DiffusionDecoderConfig()
    assert DiffusionDecoderConfig.from_dict(cfg.to_dict()) == cfg
    assert (cfg.temporal_upsampling, cfg.spatial_upsampling, cfg.trailing_pad_frames) == (8, 32, 2)
    assert cfg.min_latent_size == (3, 7, 7)
    assert decode_noise_shape(cfg, (1, 128, 16, 16, 24)) == (1, 3, 121, 512, 768)
    missing = DiffusionDecoderConfig.from_dict({"_class_name": "CausalDiffusionVAE", "decoder": {}})
    assert (missing.stage_channels, missing.model_output_type, missing.num_inference_steps) == (
        (1024, 512, 256, 256, 128), "v", 2)  # ltx-core 1.2.0's defaults for keys a file leaves out


@pytest.mark.parametrize("bad", [
    {"stage_channels": [64, 32]},  # lengths do not match the depths/kernels
    {"upsamples": [[[1, 2, 2], 2], [[2, 1, 1], 2], [[2, 2, 2], 1], [[2, 2, 2], 4]]},  # widths vs reduction
    {"head_dim": 48},  # does not divide the widths
    {"upsamples": [[[3, 2, 2], 2], [[2, 1, 1], 2], [[2, 2, 2], 1], [[2, 2, 2], 2]]},  # temporal stride 3
    {"stage_kernels": [[3, 7], [3, 7, 7], [3, 5, 5], [3, 5, 5]]},
    {"stage_channels": "wide"},
])
def test_config_errors(bad):
    section = DiffusionDecoderConfig().to_dict()
    section["decoder"].update(bad)
    with pytest.raises(ConfigError):
        DiffusionDecoderConfig.from_dict(section)


def test_output_type_and_steps_are_checked():
    with pytest.raises(ConfigError, match="model_output_type"):
        DiffusionDecoderConfig(model_output_type="eps")
    decoder = DiffusionVideoDecoder(tiny_diffusion_config(LATENT))
    with pytest.raises(InputError, match="step"):
        decoder.denoise(torch.zeros(1, 1, 1, 1, 16), torch.zeros(1, 3, 1, 8, 8), steps=0)
    with pytest.raises(InputError, match="latents"):
        decoder(torch.zeros(1, LATENT + 1, 2, 2, 2))
    with pytest.raises(InputError, match="noise"):
        decoder(torch.zeros(1, LATENT, 3, 3, 3), noise=torch.zeros(1, 3, 9, 96, 96))
