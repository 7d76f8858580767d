"""Audio VAE encoder / decoder and both vocoders against ltx-core 1.0.0 (tiny random weights, float32), loaded by our
loader from official-format files; vocoders also against diffusers 0.42.1."""

from __future__ import annotations

import pytest
import torch

from rs_ltxv.ltx.audio import AudioDecoder, AudioEncoder, Vocoder, VocoderWithBWE
from rs_ltxv.ltx.loading.audio import load_audio_vae

from conftest import assert_close
from reference import ltx_core_audio_ref as ref_lib

VOCODER_TOL = 1e-5  # same acceptance as everything else: 1e-5 · max(1, max|reference|)


class AudioPair:
    def __init__(self, variant: str, directory) -> None:
        self.variant = variant
        attention = variant == "2.3"  # the 2.3 build also switches on the (normally unused) attention blocks
        self.ref = ref_lib.build_audio(variant, seed=21, attention=attention)
        self.path = ref_lib.write_audio_file(self.ref, directory / f"audio-{variant}.safetensors")
        self.codec = load_audio_vae(self.path, dtype=torch.float32)


@pytest.fixture(scope="module", params=("2.0", "2.3"))
def audio_pair(request, tmp_path_factory) -> AudioPair:
    return AudioPair(request.param, tmp_path_factory.mktemp(f"audio{request.param}"))


def _mel(batch: int, frames: int, seed: int) -> torch.Tensor:
    """Log-mel-like input: values around −4 ± 2 (log magnitudes), (B, 2, T, 64)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 2, frames, 64, generator=g) * 2 - 4


def test_types(audio_pair):
    codec = audio_pair.codec
    assert isinstance(codec.encoder, AudioEncoder)
    assert isinstance(codec.decoder, AudioDecoder)
    assert isinstance(codec.vocoder, VocoderWithBWE if audio_pair.ref.config["vocoder"].get("bwe") else Vocoder)


@torch.no_grad()
def test_encoder_decoder_parity(audio_pair):
    mel = _mel(2, 29, seed=1)  # 29 frames: not a multiple of 4 (causal padding paths)
    z_ref = audio_pair.ref.encoder(mel)
    z = audio_pair.codec.encoder(mel)
    d_enc = assert_close(z, z_ref, "audio encoder")
    assert z.shape == (2, audio_pair.codec.encoder.cfg.z_channels, 8, 16)
    latent = torch.randn(z_ref.shape, generator=torch.Generator().manual_seed(2))
    m_ref = audio_pair.ref.decoder(latent)
    m = audio_pair.codec.decoder(latent)
    d_dec = assert_close(m, m_ref, "audio decoder")
    assert m.shape == (2, 2, 4 * 8 - 3, 64)
    print(f"audio VAE max|Δ|: encoder {d_enc:.2e}, decoder {d_dec:.2e}")


@torch.no_grad()
def test_vocoder_parity(audio_pair):
    mel = _mel(2, 8, seed=3)
    ref = audio_pair.ref.vocoder(mel)
    ours = audio_pair.codec.vocoder(mel)
    assert (ref.abs() > 0.999).float().mean() < 0.01, "reference output saturates: the comparison would be blind"
    delta = (ours - ref).abs().max().item()
    samples_per_frame = {"2.0": 240, "2.3": 160 * 3}[audio_pair.variant]  # 24 kHz / 100 fps; 16 kHz → 48 kHz
    assert ours.shape == ref.shape == (2, 2, 8 * samples_per_frame)
    assert delta <= VOCODER_TOL * max(1.0, ref.abs().max().item()), f"vocoder max|Δ| = {delta:.2e}"
    print(f"vocoder max|Δ| {delta:.2e} (max|ref| {ref.abs().max():.3f})")


_DIFFUSERS_RENAMES = (("conv_pre.", "conv_in."), ("ups.", "upsamplers."), ("resblocks.", "resnets."),
                      ("act_post.", "act_out."), ("conv_post.", "conv_out."), ("downsample.lowpass.", "downsample."))


def _diffusers_vocoder(cfg: dict, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder, LTX2VocoderWithBWE

    def kwargs(c: dict, amp: bool) -> dict:
        return dict(hidden_channels=c["upsample_initial_channel"], upsample_kernel_sizes=c["upsample_kernel_sizes"],
                    upsample_factors=c["upsample_rates"], resnet_kernel_sizes=c["resblock_kernel_sizes"],
                    resnet_dilations=c["resblock_dilation_sizes"], act_fn="snakebeta" if amp else "leaky_relu",
                    antialias=amp, final_bias=c.get("use_bias_at_final", True))

    if "bwe" in cfg:
        main, bwe = kwargs(cfg["vocoder"], True), kwargs(cfg["bwe"], True)
        model = LTX2VocoderWithBWE(**main, final_act_fn="clamp", **{f"bwe_{k}": v for k, v in bwe.items()},
                                   bwe_final_act_fn=None, filter_length=cfg["bwe"]["n_fft"],
                                   hop_length=cfg["bwe"]["hop_length"], window_length=cfg["bwe"]["n_fft"],
                                   num_mel_channels=cfg["bwe"]["num_mels"])
    else:
        model = LTX2Vocoder(**kwargs(cfg, False), final_act_fn="tanh")
    renamed = {}
    for k, v in state.items():
        for old, new in _DIFFUSERS_RENAMES:
            k = k.replace(old, new)
        renamed[k] = v
    model.load_state_dict(renamed, strict=True)
    return model.eval()


@torch.no_grad()
def test_vocoder_matches_diffusers(audio_pair):
    voc = audio_pair.codec.vocoder
    theirs = _diffusers_vocoder(audio_pair.ref.config["vocoder"], audio_pair.ref.vocoder.state_dict())
    mel = _mel(1, 8, seed=4)
    ref = theirs(mel)
    delta = assert_close(voc(mel), ref, "vocoder vs diffusers")
    print(f"vocoder vs diffusers max|Δ| {delta:.2e}")
