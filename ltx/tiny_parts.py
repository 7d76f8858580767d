"""Tiny random-weight versions of every other model part, for the demo and tests (no downloads).

* :func:`tiny_component_config` — checkpoint-style ``vae`` / ``audio_vae`` / ``vocoder`` config sections (LTX-2.3
  video VAE layout, LTX-2 vocoder at 24 kHz) sized for a CPU.
* :func:`tiny_component_state` — their tensors under the official prefixes (``vae.``, ``audio_vae.``, ``vocoder.``).
* :func:`write_tiny_gemma` — a Hugging Face-style Gemma-3 folder (config.json, model.safetensors, tokenizer.model)
  whose tokenizer is a small SentencePiece BPE model trained on the spot; the Gemma width/depth match the tiny LTX
  checkpoint's text projection. :func:`write_tiny_gemma_file` — the same model as one file in ComfyUI's text-encoder
  layout (``model.*`` names, the tokenizer as the ``spiece_model`` tensor, the config in the metadata).
* :func:`write_tiny_upsampler` — a 2× spatial latent upsampler in the official file layout;
  :func:`write_tiny_temporal_upsampler` — the temporal ×2 (optionally also spatial ×2) one.
* :func:`write_tiny_duration_head` — an LTX-2.5 duration head (``duration_head.*`` tensors, ltx-core's metadata).
* :func:`write_tiny_lora` — a LoRA (``diffusion_model.<layer>.lora_A/B.weight``) for a few Linear layers of a
  checkpoint's transformer.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .audio import AudioDecoder, AudioEncoder, AudioVAEConfig, build_vocoder, vocoder_config_from_dict
from .duration_head import DurationHead, DurationHeadConfig
from .errors import CheckpointError
from .pipeline.output_file import save_safetensors
from .random_weights import random_init
from .text.gemma import GemmaTextModel
from .text.gemma_config import GemmaConfig
from .upsampler import LatentUpsampler, UpsamplerConfig
from .video_vae import VideoDecoder, VideoEncoder, VideoVAEConfig

_RES = ["res_x", {"num_layers": 1}]


def tiny_component_config(latent_channels: int = 16, audio_channels: int = 1) -> dict[str, Any]:
    """``vae``, ``audio_vae`` and ``vocoder`` sections; ``audio_channels`` × 16 mel bins = audio token width."""
    vae = {
        "dims": 3, "in_channels": 3, "out_channels": 3, "latent_channels": latent_channels, "patch_size": 4,
        "norm_layer": "pixel_norm", "latent_log_var": "uniform", "causal_decoder": False,
        "timestep_conditioning": False, "decoder_base_channels": 4, "spatial_padding_mode": "zeros",
        "encoder_blocks": [_RES, ["compress_space_res", {"multiplier": 2}], _RES, ["compress_time_res",
                           {"multiplier": 2}], _RES, ["compress_all_res", {"multiplier": 2}], _RES,
                           ["compress_all_res", {"multiplier": 1}], _RES],
        "decoder_blocks": [_RES, ["compress_space", {"multiplier": 2}], _RES, ["compress_time", {"multiplier": 2}],
                           _RES, ["compress_all", {"multiplier": 1}], _RES, ["compress_all", {"multiplier": 2}], _RES],
    }
    audio_vae = {
        "model": {"params": {"ddconfig": {
            "double_z": True, "mel_bins": 64, "z_channels": audio_channels, "resolution": 256, "in_channels": 2,
            "out_ch": 2, "ch": audio_channels * 16, "ch_mult": [1, 1, 2], "num_res_blocks": 1, "attn_resolutions": [],
            "dropout": 0.0, "mid_block_add_attention": False, "norm_type": "pixel", "causality_axis": "height"},
            "sampling_rate": 16000}},
        "preprocessing": {"stft": {"filter_length": 1024, "hop_length": 160, "causal": True}},
    }
    vocoder = {"upsample_initial_channel": 32, "resblock": "1", "upsample_rates": [6, 5, 2, 2, 2],
               "upsample_kernel_sizes": [16, 15, 8, 4, 4], "resblock_kernel_sizes": [3, 7, 11],
               "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "stereo": True,
               "output_sampling_rate": 24000}
    return {"vae": vae, "audio_vae": audio_vae, "vocoder": vocoder}


def _init(module: torch.nn.Module, seed: int, std: float = 0.05) -> dict[str, torch.Tensor]:
    random_init(module, seed, std)
    return module.state_dict()


def tiny_component_state(config: dict[str, Any], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights (each of its parameter's shape) of the video VAE, audio VAE and vocoder of ``config`` (the
    sections of :func:`tiny_component_config`) under the official prefixes.

    Raises:
        ConfigError: a section of ``config`` that its ``from_dict`` rejects.
    """
    vae_cfg = VideoVAEConfig.from_dict(config["vae"])
    sd: dict[str, torch.Tensor] = {}
    for name, cls in (("encoder", VideoEncoder), ("decoder", VideoDecoder)):
        for k, v in _init(cls(vae_cfg), seed).items():
            key = f"vae.{k}" if k.startswith("per_channel_statistics.") else f"vae.{name}.{k}"
            sd[key] = v
    audio_cfg = AudioVAEConfig.from_dict(config["audio_vae"])
    for name, cls in (("encoder", AudioEncoder), ("decoder", AudioDecoder)):
        for k, v in _init(cls(audio_cfg), seed + 1).items():
            key = f"audio_vae.{k}" if k.startswith("per_channel_statistics.") else f"audio_vae.{name}.{k}"
            sd[key] = v
    vocoder = build_vocoder(vocoder_config_from_dict(config["vocoder"]))
    sd.update({f"vocoder.{k}": v for k, v in _init(vocoder, seed + 2, std=0.1).items()})
    return {k: v.contiguous() for k, v in sd.items()}


_CORPUS = [
    "A red fox runs through a snowy forest at dawn while birds sing.",
    "Waves crash on a rocky shore under a stormy sky; thunder rolls in the distance.",
    "A chef chops vegetables in a busy kitchen, pans sizzle and people talk.",
    "Close-up of a cat yawning in warm afternoon light, soft music plays.",
    "A drone flies over a city at night, cars hum below and neon signs flicker.",
    "Two friends laugh on a park bench as leaves fall around them.",
]


def _tiny_gemma(hidden: int, layers: int, seed: int) -> tuple[bytes, GemmaConfig, dict[str, torch.Tensor]]:
    """(SentencePiece model bytes, config, ``Gemma3TextModel`` weights) of a tiny random Gemma-3."""
    import sentencepiece as spm

    model_bytes = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(_CORPUS * 20), model_writer=model_bytes, vocab_size=320,
                                   model_type="bpe", byte_fallback=True, pad_id=0, eos_id=1, bos_id=2, unk_id=3,
                                   character_coverage=1.0, minloglevel=2)
    cfg = GemmaConfig(vocab_size=320, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=hidden // 2,
                      query_pre_attn_scalar=hidden // 2, sliding_window=16)
    with torch.device("meta"):
        model = GemmaTextModel(cfg)
    state = {f"model.{k}": v.contiguous() for k, v in _init(model, seed, std=0.2).items()}
    return model_bytes.getvalue(), cfg, state


def write_tiny_gemma(directory: str | os.PathLike, hidden: int = 24, layers: int = 2, seed: int = 0) -> Path:
    """A Gemma-3 folder with random weights and a freshly trained SentencePiece tokenizer; returns its path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer, cfg, state = _tiny_gemma(hidden, layers, seed)
    (out / "tokenizer.model").write_bytes(tokenizer)
    (out / "config.json").write_text(json.dumps(cfg.to_hf_dict(), indent=2))
    save_safetensors(state, str(out / "model.safetensors"))
    return out


def write_tiny_gemma_file(path: str | os.PathLike, hidden: int = 24, layers: int = 2, seed: int = 0) -> Path:
    """The model of :func:`write_tiny_gemma` (same seed, same weights and tokenizer) as one ``.safetensors`` file
    in the layout of ComfyUI's ``gemma_3_12B_it.safetensors``: ``model.*`` weights, the tokenizer as the uint8
    ``spiece_model`` tensor and the Hugging Face config as ``__metadata__["config"]`` (a tiny width cannot be
    inferred from the shapes). Returns its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tokenizer, cfg, state = _tiny_gemma(hidden, layers, seed)
    state["spiece_model"] = torch.frombuffer(bytearray(tokenizer), dtype=torch.uint8)
    save_safetensors(state, str(out), metadata={"config": json.dumps(cfg.to_hf_dict())})
    return out


def write_tiny_upsampler(path: str | os.PathLike, channels: int = 16, seed: int = 5, *,
                         config: UpsamplerConfig | None = None) -> Path:
    """A tiny random 2× spatial latent upsampler for ``channels`` latent channels (or the model of ``config``) in the
    official file layout (weights under their module names, the config in the metadata); returns its path."""
    cfg = config or UpsamplerConfig(in_channels=channels, mid_channels=32, num_blocks_per_stage=1)
    model = random_init(LatentUpsampler(cfg), seed=seed)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors({k: v.contiguous() for k, v in model.state_dict().items()}, str(out),
              metadata={"config": json.dumps(asdict(cfg))})
    return out


def write_tiny_temporal_upsampler(path: str | os.PathLike, channels: int = 16, seed: int = 6, *,
                                  spatial: bool = False) -> Path:
    """A tiny random temporal ×2 latent upsampler (``ltx-2.5-latent-temporal-upscaler-x2-*`` layout; with
    ``spatial`` also ×2 in height and width) for ``channels`` latent channels; returns its path."""
    cfg = UpsamplerConfig(in_channels=channels, mid_channels=32, num_blocks_per_stage=1, spatial_upsample=spatial,
                          temporal_upsample=True)
    return write_tiny_upsampler(path, seed=seed, config=cfg)


def write_tiny_duration_head(path: str | os.PathLike, video_dim: int = 32, audio_dim: int = 16, seed: int = 8, *,
                             config: DurationHeadConfig | None = None, metadata: bool = True) -> Path:
    """A tiny random LTX-2.5 duration head for connector widths ``video_dim`` / ``audio_dim`` (the tiny transformer's
    ``cross_attention_dim`` / ``audio_cross_attention_dim``; or the head of ``config``) as ``duration_head.*``
    tensors, with ltx-core's ``config`` metadata (``transformer`` widths + ``duration_head`` section) unless
    ``metadata`` is False; returns its path."""
    cfg = config or DurationHeadConfig(video_cross_attention_dim=video_dim, audio_cross_attention_dim=audio_dim,
                                       pooler_hidden_dim=16, num_pooler_heads=2, mlp_hidden=16)
    with torch.device("meta"):
        head = DurationHead(cfg)
    state = {f"duration_head.{k}": v.contiguous() for k, v in _init(head, seed, std=0.2).items()}
    meta = {"cross_attention_dim": cfg.video_cross_attention_dim,
            "audio_cross_attention_dim": cfg.audio_cross_attention_dim}
    section = {k: v for k, v in asdict(cfg).items() if not k.endswith("cross_attention_dim")}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors(state, str(out), metadata={"config": json.dumps({"transformer": meta, "duration_head": section}),
                                                "model_version": "2.5.0"} if metadata else None)
    return out


#: Linear layers of the tiny transformer a tiny LoRA patches (both layouts have them)
LORA_LAYERS = ("patchify_proj", "transformer_blocks.0.attn1.to_q", "transformer_blocks.0.ff.net.2",
               "transformer_blocks.1.audio_attn2.to_v", "audio_proj_out")


def write_tiny_lora(path: str | os.PathLike, state: dict[str, torch.Tensor], rank: int = 2, seed: int = 7,
                    layers: tuple[str, ...] = LORA_LAYERS, metadata: dict[str, str] | None = None) -> Path:
    """A LoRA in the layout ComfyUI's LoRA loaders read (``diffusion_model.<layer>.lora_A.weight`` ``(rank, in)``,
    ``…lora_B.weight`` ``(out, rank)``) for ``layers`` of the transformer whose checkpoint tensors are ``state``
    (``model.diffusion_model.<layer>.weight`` of shape ``(out, in)``); returns its path. ``metadata`` goes into the
    safetensors header as is (e.g. an IC-LoRA's ``{"reference_downscale_factor": "2"}``).

    Raises:
        CheckpointError: ``state`` has no Linear weight for one of ``layers``.
    """
    gen = torch.Generator().manual_seed(seed)
    lora = {}
    for name in layers:
        weight = state.get(f"model.diffusion_model.{name}.weight")
        if weight is None or weight.ndim != 2:
            raise CheckpointError(f"tiny LoRA: the checkpoint has no Linear weight "
                                  f"model.diffusion_model.{name}.weight.")
        out_f, in_f = weight.shape
        lora[f"diffusion_model.{name}.lora_A.weight"] = torch.randn(rank, in_f, generator=gen) * 0.3
        lora[f"diffusion_model.{name}.lora_B.weight"] = torch.randn(out_f, rank, generator=gen) * 0.3
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors(lora, str(out), metadata=metadata)
    return out
