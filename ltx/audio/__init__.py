"""Audio side of LTX-2: log-mel front end, resampling, audio VAE, vocoders (HiFi-GAN and BigVGAN-v2 + BWE), and
:class:`AudioVAE`, all of them as one waveform ↔ latent object."""

from .audio_vae import AudioVAE
from .bwe import VocoderWithBWE
from .config import AudioVAEConfig, BWEVocoderConfig, VocoderConfig, vocoder_config_from_dict
from .mel import LogMelSpectrogram, mel_filterbank
from .resample import resample
from .vae import AudioDecoder, AudioEncoder, patchify, unpatchify
from .vocoder import Vocoder
from .waveform import prepare_waveform, to_stereo


def build_vocoder(cfg: VocoderConfig | BWEVocoderConfig) -> Vocoder | VocoderWithBWE:
    """The generator a vocoder config describes: :class:`VocoderWithBWE` for a :class:`BWEVocoderConfig` (LTX-2.3),
    :class:`Vocoder` otherwise. Mirrors ``ltx_core.model.audio_vae.model_configurator.VocoderConfigurator``."""
    return VocoderWithBWE(cfg) if isinstance(cfg, BWEVocoderConfig) else Vocoder(cfg)


__all__ = [
    "AudioDecoder", "AudioEncoder", "AudioVAE", "AudioVAEConfig", "BWEVocoderConfig", "LogMelSpectrogram",
    "Vocoder", "VocoderConfig", "VocoderWithBWE", "build_vocoder", "mel_filterbank", "patchify", "prepare_waveform",
    "resample", "to_stereo", "unpatchify", "vocoder_config_from_dict",
]
