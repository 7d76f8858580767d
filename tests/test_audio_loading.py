"""Loading the audio VAE and vocoder from official-format files: partial files, config handling, error paths; and
the waveform ↔ latent codec end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import save_file

from rs_ltxv.ltx.errors import CheckpointError
from rs_ltxv.ltx.loading.audio import (
    load_audio_decoder,
    load_audio_encoder,
    load_audio_vae,
    load_vocoder,
    open_audio_checkpoint,
)

from conftest import assert_close
from reference import ltx_core_audio_ref as ref_lib


@pytest.fixture(scope="module")
def ref():
    return ref_lib.build_audio("2.0", seed=41)


@pytest.fixture(scope="module")
def path(ref, tmp_path_factory):
    return ref_lib.write_audio_file(ref, tmp_path_factory.mktemp("audio") / "audio.safetensors")


def _save(tmp_path, name: str, tensors: dict, config: dict | None) -> object:
    target = tmp_path / name
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(target),
              {"config": json.dumps(config)} if config is not None else None)
    return target


@torch.no_grad()
def test_codec_end_to_end(ref, path):
    codec = load_audio_vae(path)
    g = torch.Generator().manual_seed(0)
    t = torch.arange(22050) / 44100
    mono = (0.4 * torch.sin(2 * math.pi * 440 * t) + 0.05 * torch.randn(22050, generator=g))[None, None]
    latent = codec.encode(mono, 44100)
    frames = 1 + 8000 // 160  # 0.5 s at 16 kHz → 51 mel frames → ceil(51 / 4) latent frames
    assert latent.shape == (1, 1, math.ceil(frames / 4), 16)
    assert torch.equal(latent, codec.encode(mono.expand(1, 2, -1), 44100))  # mono is duplicated to stereo
    assert_close(latent, ref.encoder(codec.waveform_to_mel(mono, 44100)), "encode")
    wave, rate = codec.decode(latent)
    assert rate == 24000
    assert wave.shape == (1, 2, (4 * latent.shape[2] - 3) * 240)
    assert_close(wave, ref.vocoder(ref.decoder(latent)), "decode")


def test_single_file_with_other_components(ref, tmp_path):
    """An official single file also holds the transformer, connectors, text projection and video VAE: ignored here."""
    others = {"model.diffusion_model.patchify_proj.weight": torch.zeros(4, 4),
              "model.diffusion_model.audio_embeddings_connector.learnable_registers": torch.zeros(2, 4),
              "text_embedding_projection.aggregate_embed.weight": torch.zeros(4, 8),
              "vae.decoder.conv_in.conv.weight": torch.zeros(4, 4, 3, 3, 3),
              "vae.per_channel_statistics.mean-of-means": torch.zeros(4)}
    config = {**ref.config, "transformer": {"num_layers": 1}, "vae": {"latent_channels": 4}}
    single = _save(tmp_path, "single.safetensors", {**ref_lib.audio_state_dict(ref), **others}, config)
    codec = load_audio_vae(single)
    mel = torch.randn(1, 2, 9, 64)
    with torch.no_grad():
        assert torch.equal(codec.decoder(codec.encoder(mel)), ref.decoder(ref.encoder(mel)))


def test_partial_files_and_aliases(ref, tmp_path):
    sd = ref_lib.audio_state_dict(ref, ("decoder", "vocoder"))
    decode_only = _save(tmp_path, "dec.safetensors", sd, ref.config)
    codec = load_audio_vae(decode_only)
    assert codec.encoder is None
    assert codec.decoder is not None
    assert codec.vocoder is not None
    with pytest.raises(CheckpointError, match="no encoder"):
        codec.encode(torch.zeros(1, 1, 16000), 16000)
    with pytest.raises(CheckpointError, match="cannot encode"):
        load_audio_encoder(decode_only)
    # vocoder-only file needs only the vocoder config
    voc_only = _save(tmp_path, "voc.safetensors", ref_lib.audio_state_dict(ref, ("vocoder",)),
                     {"vocoder": ref.config["vocoder"]})
    assert load_vocoder(voc_only).output_sampling_rate == 24000
    # extra per-channel statistics (unused by the model) and ComfyUI's in-memory "autoencoder." prefix
    full = ref_lib.audio_state_dict(ref)
    extra = {"audio_vae.per_channel_statistics.mean-of-stds": torch.ones(16),
             "audio_vae.per_channel_statistics.channel": torch.arange(16)}
    comfy = {k.replace("audio_vae.", "autoencoder.", 1): v for k, v in {**full, **extra}.items()}
    enc = load_audio_encoder(_save(tmp_path, "comfy.safetensors", comfy, ref.config))
    mel = torch.randn(1, 2, 12, 64)
    with torch.no_grad():
        assert torch.equal(enc(mel), ref.encoder(mel))


def test_config_and_dtype(ref, path, tmp_path):
    bare = _save(tmp_path, "bare.safetensors", ref_lib.audio_state_dict(ref), None)
    with pytest.raises(CheckpointError, match=r"no __metadata__\['config'\]\['audio_vae'\]"):
        load_audio_decoder(bare)
    assert load_audio_decoder(open_audio_checkpoint(bare, config=ref.config)) is not None
    voc = load_vocoder(path, dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in voc.parameters())
    with torch.no_grad():
        out = voc(torch.randn(1, 2, 4, 64, dtype=torch.bfloat16))
    assert out.shape == (1, 2, 960)
    assert torch.isfinite(out.float()).all()


def test_errors(ref, path, tmp_path):
    sd = ref_lib.audio_state_dict(ref)
    missing = _save(tmp_path, "missing.safetensors",
                    {k: v for k, v in sd.items() if k != "audio_vae.decoder.conv_out.conv.bias"}, ref.config)
    with pytest.raises(CheckpointError, match="missing 1 tensor"):
        load_audio_decoder(missing)
    no_stats = _save(tmp_path, "nostats.safetensors",
                     {k: v for k, v in sd.items() if "std-of-means" not in k}, ref.config)
    with pytest.raises(CheckpointError, match="std-of-means"):
        load_audio_encoder(no_stats)
    wider = json.loads(json.dumps(ref.config))
    wider["audio_vae"]["model"]["params"]["ddconfig"]["ch"] = 32
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_audio_encoder(_save(tmp_path, "wide.safetensors", sd, wider))
    bwe_cfg = {**ref.config, "vocoder": ref_lib.vocoder_config("2.3")}
    with pytest.raises(CheckpointError, match="bandwidth extension"):
        open_audio_checkpoint(_save(tmp_path, "bwe.safetensors", sd, bwe_cfg))
    bad_cfg = json.loads(json.dumps(ref.config))
    bad_cfg["audio_vae"]["model"]["params"]["ddconfig"]["norm_type"] = "batch"
    with pytest.raises(CheckpointError, match="norm_type"):
        open_audio_checkpoint(_save(tmp_path, "norm.safetensors", sd, bad_cfg))
    data = path.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        open_audio_checkpoint(tmp_path / "trunc.safetensors")
    z = torch.zeros(1)
    transformer = _save(tmp_path, "dit.safetensors", {"model.diffusion_model.patchify_proj.weight": z,
                                                      "model.diffusion_model.audio_patchify_proj.weight": z.clone()},
                        None)
    with pytest.raises(CheckpointError, match="without audio VAE"):
        open_audio_checkpoint(transformer)
    with pytest.raises(CheckpointError, match="video VAE"):
        open_audio_checkpoint(_save(tmp_path, "vae.safetensors", {"vae.decoder.conv_in.conv.weight": z}, None))
    with pytest.raises(CheckpointError, match="Flux"):
        open_audio_checkpoint(_save(tmp_path, "flux.safetensors", {"double_blocks.0.x": z}, None))
    upsampler = {"initial_conv.weight": z, "post_upsample_res_blocks.0.conv2.bias": z.clone()}
    with pytest.raises(CheckpointError, match="latent upsampler"):
        open_audio_checkpoint(_save(tmp_path, "ups.safetensors", upsampler, None))
