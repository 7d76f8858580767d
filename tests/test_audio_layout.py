"""At the released sizes (built on the meta device, no memory): our audio VAE, vocoders and latent upsamplers have
exactly ltx-core's parameter/buffer names and shapes, and the parameter counts the reference notes quote."""

from __future__ import annotations

import pytest
import torch
from ltx_core.model.audio_vae import AudioDecoderConfigurator, AudioEncoderConfigurator, VocoderConfigurator
from ltx_core.model.upsampler import LatentUpsamplerConfigurator

from rs_ltxv.ltx.audio import (
    AudioDecoder,
    AudioEncoder,
    AudioVAEConfig,
    build_vocoder,
    vocoder_config_from_dict,
)
from rs_ltxv.ltx.upsampler import LatentUpsampler, UpsamplerConfig

from reference import ltx_core_audio_ref as ref_lib

REAL_AUDIO_VAE = {
    "model": {"params": {"ddconfig": {
        "double_z": True, "mel_bins": 64, "z_channels": 8, "resolution": 256, "in_channels": 2, "out_ch": 2, "ch": 128,
        "ch_mult": [1, 2, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0,
        "mid_block_add_attention": False, "norm_type": "pixel", "causality_axis": "height"}, "sampling_rate": 16000}},
    "preprocessing": {"stft": {"filter_length": 1024, "hop_length": 160, "causal": True}},
}
_AMP = {"resblock": "AMP1", "resblock_kernel_sizes": [3, 7, 11], "resblock_dilation_sizes": [[1, 3, 5]] * 3,
        "stereo": True, "use_tanh_at_final": False, "activation": "snakebeta", "use_bias_at_final": False}
REAL_VOCODERS = {
    "2.0": ({"upsample_initial_channel": 1024, "resblock": "1", "upsample_rates": [6, 5, 2, 2, 2],
             "upsample_kernel_sizes": [16, 15, 8, 4, 4], "resblock_kernel_sizes": [3, 7, 11],
             "resblock_dilation_sizes": [[1, 3, 5]] * 3, "stereo": True, "output_sampling_rate": 24000}, 55.6e6),
    "2.3": ({"vocoder": {**_AMP, "upsample_initial_channel": 1536, "upsample_rates": [5, 2, 2, 2, 2, 2],
                         "upsample_kernel_sizes": [11, 4, 4, 4, 4, 4]},
             "bwe": {**_AMP, "upsample_initial_channel": 512, "upsample_rates": [6, 5, 2, 2, 2],
                     "upsample_kernel_sizes": [12, 11, 4, 4, 4], "apply_final_activation": False,
                     "input_sampling_rate": 16000, "output_sampling_rate": 48000, "hop_length": 80, "n_fft": 512,
                     "win_size": 512, "num_mels": 64}}, 128.5e6),
}


def _layout(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_audio_vae_layout():
    cfg = {"audio_vae": REAL_AUDIO_VAE}
    with torch.device("meta"):
        pairs = ((AudioEncoderConfigurator.from_config(cfg), AudioEncoder(AudioVAEConfig.from_dict(REAL_AUDIO_VAE))),
                 (AudioDecoderConfigurator.from_config(cfg), AudioDecoder(AudioVAEConfig.from_dict(REAL_AUDIO_VAE))))
    for ref, ours in pairs:
        assert _layout(ours) == _layout(ref)


@pytest.mark.parametrize("variant", ("2.0", "2.3"))
def test_vocoder_layout(variant):
    section, quoted = REAL_VOCODERS[variant]
    with torch.device("meta"):
        ref = VocoderConfigurator.from_config({"vocoder": section})
        ours = build_vocoder(vocoder_config_from_dict(section))
    assert _layout(ours) == _layout(ref)
    assert abs(_params(ours) - quoted) < 0.05e6  # 55.6 M (LTX-2), 128.5 M (LTX-2.3)
    assert ours.output_sampling_rate == ref.output_sampling_rate


@pytest.mark.parametrize("kind", ref_lib.UPSAMPLER_KINDS)
def test_upsampler_layout(kind):
    cfg = {**ref_lib.upsampler_config(kind), "in_channels": 128, "mid_channels": 1024, "num_blocks_per_stage": 4}
    with torch.device("meta"):
        ref = LatentUpsamplerConfigurator.from_config(cfg)
        ours = LatentUpsampler(UpsamplerConfig.from_dict(cfg))
    assert _layout(ours) == _layout(ref)
    if kind == "x2-rational":
        assert abs(_params(ours) - 498e6) < 1e6  # ~498 M (LTX-2 spatial x2)
