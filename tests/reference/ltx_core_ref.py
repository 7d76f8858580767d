"""Tiny random-weight models of the *official* LTX-2 reference (ltx-core 1.0.0) for parity tests.

Everything here calls official ltx-core classes; nothing is re-implemented. Conventions (all float32, CPU):

* video tokens ``(B, Tv, C)`` with positions ``(B, 3, Tv, 2)`` = [start, end) pixel bounds, time in seconds;
* audio tokens ``(B, Ta, C)`` with positions ``(B, 1, Ta, 2)`` in seconds;
* ``sigma`` ``(B,)`` in [0, 1] and per-token ``timesteps`` ``(B, T)`` / ``(B, T, 1)`` (= denoise_mask * sigma), *not*
  multiplied by 1000 (the model does that);
* text context ``(B, L, caption_channels)`` for "2.0" (caption projection inside the transformer) or
  ``(B, L, inner_dim)`` / ``(B, L, audio_inner_dim)`` for "2.3".

Import side effects: a stub ``torchaudio`` is installed when the real one cannot be imported (only waveform->mel
needs it), and ``ltx_core.loader`` is imported before any other ltx_core module (avoids a circular import).
"""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _install_torchaudio_stub() -> bool:
    """Put a stub ``torchaudio`` into ``sys.modules`` if the real one cannot be imported. Returns True if stubbed."""
    try:
        import torchaudio  # noqa: F401

        return False
    except Exception:  # ImportError, or OSError from a CUDA-built extension
        for name in [k for k in sys.modules if k == "torchaudio" or k.startswith("torchaudio.")]:
            del sys.modules[name]

    def _missing(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("torchaudio stub (tests.reference): install a real torchaudio for waveform->mel")

    mods = {}
    for name in ("torchaudio", "torchaudio.transforms", "torchaudio.functional"):
        mods[name] = sys.modules[name] = types.ModuleType(name)
        mods[name].__spec__ = importlib.machinery.ModuleSpec(name, None)  # transformers/diffusers call find_spec()
    stub = mods["torchaudio"]
    stub.__version__ = "0.0.0+stub"
    for sub, names in (("transforms", ("MelSpectrogram", "Spectrogram", "Resample", "InverseMelScale")),
                       ("functional", ("resample", "melscale_fbanks", "spectrogram"))):  # fmt: skip
        setattr(stub, sub, mods[f"torchaudio.{sub}"])
        for n in names:
            setattr(mods[f"torchaudio.{sub}"], n, _missing)
    return True


TORCHAUDIO_STUBBED: bool = _install_torchaudio_stub()

import ltx_core.loader  # noqa: E402, F401  (must come first: quantization <-> loader circular import)
import torch  # noqa: E402
from ltx_core.components.patchifiers import AudioPatchifier, VideoLatentPatchifier, get_pixel_coords  # noqa: E402
from ltx_core.conditioning.mask_utils import update_attention_mask  # noqa: E402
from ltx_core.guidance.perturbations import (  # noqa: E402
    BatchedPerturbationConfig,
    Perturbation,
    PerturbationConfig,
    PerturbationType,
)
from ltx_core.model.transformer import LTXModelConfigurator, X0Model  # noqa: E402
from ltx_core.model.transformer.modality import Modality  # noqa: E402
from ltx_core.model.transformer.rope import LTXRopeType  # noqa: E402
from ltx_core.text_encoders.gemma.embeddings_connector import Embeddings1DConnector  # noqa: E402
from ltx_core.text_encoders.gemma.embeddings_processor import EmbeddingsProcessor  # noqa: E402
from ltx_core.text_encoders.gemma.feature_extractor import FeatureExtractorV1, FeatureExtractorV2  # noqa: E402
from ltx_core.types import AudioLatentShape, LatentState, SpatioTemporalScaleFactors, VideoLatentShape  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

VARIANTS = ("2.0", "2.3")
_EXACT_KEYS: dict[str, Any] = {  # values LTXModelConfigurator checks (present in every real config)
    "dropout": 0.0, "attention_bias": True, "num_vector_embeds": None, "activation_fn": "gelu-approximate",
    "num_embeds_ada_norm": 1000, "use_linear_projection": False, "only_cross_attention": False,
    "cross_attention_norm": True, "double_self_attention": False, "upcast_attention": False,
    "standardization_norm": "rms_norm", "norm_elementwise_affine": False, "qk_norm": "rms_norm",
    "positional_embedding_type": "rope", "use_audio_video_cross_attention": True, "share_ff": False,
    "av_cross_ada_norm": True, "use_middle_indices_grid": True,
}  # fmt: skip


class patch_cuda_synchronize:
    """Make ``torch.cuda.synchronize`` a no-op (1.0.0 pipelines call it unconditionally, which fails on CPU).

    Takes effect on construction, so both ``patch_cuda_synchronize()`` and ``with patch_cuda_synchronize(): ...``
    work; leaving the ``with`` block (or calling :meth:`restore`) puts the original back.
    """

    def __init__(self) -> None:
        self._orig = torch.cuda.synchronize
        torch.cuda.synchronize = lambda *_a, **_k: None

    def restore(self) -> None:
        torch.cuda.synchronize = self._orig

    def __enter__(self) -> patch_cuda_synchronize:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.restore()


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


def tiny_config(
    variant: str,
    *,
    video_heads: int = 2,
    video_head_dim: int = 16,
    audio_heads: int = 2,
    audio_head_dim: int = 8,
    num_layers: int = 2,
    in_channels: int = 16,
    audio_in_channels: int = 16,
    caption_channels: int = 24,
    connector_heads: int = 2,
    connector_head_dim: int | None = None,
    connector_layers: int = 2,
    audio_connector_heads: int | None = None,
    audio_connector_head_dim: int | None = None,
    num_registers: int = 8,
) -> dict[str, Any]:
    """Checkpoint-style config ``{"transformer", "vae", "audio_vae", "vocoder", "scheduler"}`` of a tiny model.

    "2.0" = LTX-2 layout (caption projection in the transformer, connectors of width ``caption_channels``);
    "2.3" = LTX-2.3 layout (gated attention, cross-attention AdaLN, V2 feature extractor; video/audio connectors of
    the video/audio inner width). ``caption_channels`` is the (tiny) Gemma hidden size. VAE/vocoder sections are
    placeholders copied from the real layout but are not built by this module.
    """
    _check_variant(variant)
    vdim, adim = video_heads * video_head_dim, audio_heads * audio_head_dim
    a_heads = audio_connector_heads if audio_connector_heads is not None else connector_heads
    if variant == "2.0":
        c_dim = connector_head_dim if connector_head_dim is not None else caption_channels // connector_heads
        ac_dim = audio_connector_head_dim if audio_connector_head_dim is not None else caption_channels // a_heads
        widths = {"video": (connector_heads * c_dim, caption_channels), "audio": (a_heads * ac_dim, caption_channels)}
    else:
        c_dim = connector_head_dim if connector_head_dim is not None else vdim // connector_heads
        ac_dim = audio_connector_head_dim if audio_connector_head_dim is not None else adim // a_heads
        widths = {"video": (connector_heads * c_dim, vdim), "audio": (a_heads * ac_dim, adim)}
    for name, (got, want) in widths.items():
        if got != want:
            raise ValueError(f"{variant}: {name} connector width {got} must equal {want}")
    t: dict[str, Any] = {
        "_class_name": "AVTransformer3DModel",
        "num_layers": num_layers,
        "num_attention_heads": video_heads, "attention_head_dim": video_head_dim, "cross_attention_dim": vdim,
        "audio_num_attention_heads": audio_heads, "audio_attention_head_dim": audio_head_dim,
        "audio_cross_attention_dim": adim,
        "in_channels": in_channels, "out_channels": in_channels,
        "audio_in_channels": audio_in_channels, "audio_out_channels": audio_in_channels,
        "caption_channels": caption_channels,
        "norm_eps": 1e-6, "positional_embedding_theta": 10000.0,
        "positional_embedding_max_pos": [20, 2048, 2048], "audio_positional_embedding_max_pos": [20],
        "timestep_scale_multiplier": 1000, "av_ca_timestep_scale_multiplier": 1000.0,
        "rope_type": "split", "frequencies_precision": "float64", "attention_type": "default",
        **_EXACT_KEYS,
        "connector_num_attention_heads": connector_heads, "connector_attention_head_dim": c_dim,
        "connector_num_layers": connector_layers, "connector_positional_embedding_max_pos": [4096],
        "connector_num_learnable_registers": num_registers,
        "audio_connector_num_attention_heads": a_heads, "audio_connector_attention_head_dim": ac_dim,
        "audio_connector_num_layers": connector_layers,
    }  # fmt: skip
    if variant == "2.3":
        t.update({
            "apply_gated_attention": True, "cross_attention_adaln": True, "caption_proj_before_connector": True,
            "caption_projection_first_linear": False, "caption_proj_input_norm": False,
            "caption_projection_second_linear": False, "connector_apply_gated_attention": True,
        })  # fmt: skip
    res_x: list[Any] = ["res_x", {"num_layers": 1}]
    vae = {
        "_class_name": "CausalVideoAutoencoder", "dims": 3, "in_channels": 3, "out_channels": 3,
        "latent_channels": in_channels, "patch_size": 4, "norm_layer": "pixel_norm", "latent_log_var": "uniform",
        "causal_decoder": False, "timestep_conditioning": False, "decoder_base_channels": 4,
        "spatial_padding_mode": "reflect" if variant == "2.0" else "zeros",
        "encoder_blocks": [res_x, ["compress_space_res", {"multiplier": 2}], res_x,
                           ["compress_time_res", {"multiplier": 2}], res_x, ["compress_all_res", {"multiplier": 2}],
                           res_x, ["compress_all_res", {"multiplier": 2 if variant == "2.0" else 1}], res_x],
        "decoder_blocks": [res_x, ["compress_all", {"residual": True, "multiplier": 2}]] * 3 + [res_x],
    }  # fmt: skip
    if variant == "2.3":
        ups = [["compress_space", {"multiplier": 2}], ["compress_time", {"multiplier": 2}],
               ["compress_all", {"multiplier": 1}], ["compress_all", {"multiplier": 2}]]  # fmt: skip
        vae["decoder_blocks"] = [b for up in ups for b in (res_x, up)] + [res_x]
    audio_vae = {
        "model": {"params": {"ddconfig": {
            "double_z": True, "mel_bins": 64, "z_channels": 1, "resolution": 256, "in_channels": 2, "out_ch": 2,
            "ch": 16, "ch_mult": [1, 1, 2], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0,
            "mid_block_add_attention": False, "norm_type": "pixel", "causality_axis": "height"},
            "sampling_rate": 16000}},
        "preprocessing": {"stft": {"filter_length": 1024, "hop_length": 160, "causal": True}},
    }  # fmt: skip
    hifi = {"upsample_initial_channel": 32, "resblock": "1", "upsample_rates": [6, 5, 2, 2, 2],
            "upsample_kernel_sizes": [16, 15, 8, 4, 4], "resblock_kernel_sizes": [3, 7, 11],
            "resblock_dilation_sizes": [[1, 3, 5]] * 3, "stereo": True}  # fmt: skip
    vocoder: dict[str, Any] = {**hifi, "output_sampling_rate": 24000}
    if variant == "2.3":
        amp = {**hifi, "resblock": "AMP1", "use_tanh_at_final": False, "activation": "snakebeta",
               "use_bias_at_final": False}  # fmt: skip
        vocoder = {"vocoder": {**amp, "upsample_initial_channel": 64, "upsample_rates": [5, 2, 2, 2, 2, 2],
                               "upsample_kernel_sizes": [11, 4, 4, 4, 4, 4]},
                   "bwe": {**amp, "upsample_kernel_sizes": [12, 11, 4, 4, 4], "apply_final_activation": False,
                           "input_sampling_rate": 16000, "output_sampling_rate": 48000, "hop_length": 80,
                           "n_fft": 512, "win_size": 512, "num_mels": 64}}  # fmt: skip
    scheduler = {"_class_name": "RectifiedFlowScheduler", "num_train_timesteps": 1000, "sampler": "LinearQuadratic"}
    return {"transformer": t, "vae": vae, "audio_vae": audio_vae, "vocoder": vocoder, "scheduler": scheduler}


def seeded_init(module: torch.nn.Module, seed: int, std: float = 0.05) -> torch.nn.Module:
    """Materialise meta params, make every param float32 ``randn * std`` (seeded) and return ``module.eval()``.

    ``learnable_registers`` (bf16 in ltx-core) become float32 ``randn`` (std 1) so they differ visibly from features.
    """
    g = torch.Generator().manual_seed(seed)
    for mod in module.modules():
        for name, p in list(mod._parameters.items()):
            if p is None:
                continue
            scale = 1.0 if name == "learnable_registers" else std
            mod._parameters[name] = torch.nn.Parameter(torch.randn(p.shape, generator=g) * scale, requires_grad=False)
        for name, b in list(mod._buffers.items()):
            if b is not None and b.is_meta:
                mod._buffers[name] = torch.randn(b.shape, generator=g)
            elif b is not None and torch.is_floating_point(b):
                mod._buffers[name] = b.float()
    return module.eval()


@dataclass
class RefModels:
    """Official tiny models. ``embeddings_processor`` maps Gemma hidden states to (video, audio) contexts."""

    variant: str
    config: dict[str, Any]
    transformer: torch.nn.Module
    embeddings_processor: EmbeddingsProcessor
    num_gemma_states: int = 3


def _connector(t: dict[str, Any], prefix: str, num_registers: int, gated: bool) -> Embeddings1DConnector:
    return Embeddings1DConnector(
        attention_head_dim=t[f"{prefix}connector_attention_head_dim"],
        num_attention_heads=t[f"{prefix}connector_num_attention_heads"],
        num_layers=t[f"{prefix}connector_num_layers"],
        positional_embedding_max_pos=t["connector_positional_embedding_max_pos"],
        num_learnable_registers=num_registers,
        rope_type=LTXRopeType.SPLIT,
        double_precision_rope=True,
        apply_gated_attention=gated,
    )


def build_reference(variant: str, cfg: dict[str, Any] | None = None, seed: int = 0,
                    num_gemma_states: int = 3) -> RefModels:  # fmt: skip
    """Build the official transformer (``LTXModelConfigurator``) and embeddings processor, seeded, float32, eval.

    ``num_gemma_states`` = number of Gemma hidden states (layers + 1) the feature extractor consumes (real: 49).
    Transformer uses ``seed``, the text stack ``seed + 1``.
    """
    _check_variant(variant)
    cfg = cfg if cfg is not None else tiny_config(variant)
    t = cfg["transformer"]
    transformer = seeded_init(LTXModelConfigurator.from_config(cfg), seed)
    hidden = t["caption_channels"]
    flat = hidden * num_gemma_states
    if variant == "2.0":
        fe: torch.nn.Module = FeatureExtractorV1(torch.nn.Linear(flat, hidden, bias=False), is_av=True)
    else:
        vdim = t["num_attention_heads"] * t["attention_head_dim"]
        adim = t["audio_num_attention_heads"] * t["audio_attention_head_dim"]
        fe = FeatureExtractorV2(video_aggregate_embed=torch.nn.Linear(flat, vdim, bias=True), embedding_dim=hidden,
                                audio_aggregate_embed=torch.nn.Linear(flat, adim, bias=True))  # fmt: skip
    n_reg = t.get("connector_num_learnable_registers", 128)
    gated = bool(t.get("connector_apply_gated_attention", False))
    ep = EmbeddingsProcessor(feature_extractor=fe, video_connector=_connector(t, "", n_reg, gated),
                             audio_connector=_connector(t, "audio_", n_reg, gated))  # fmt: skip
    ep = seeded_init(ep, seed + 1)
    return RefModels(variant, cfg, transformer, ep, num_gemma_states)


def _state_dict(ref: RefModels, prefix: str, include_connectors: bool, include_projection: bool) -> dict:
    sd = {f"{prefix}{k}": v for k, v in ref.transformer.state_dict().items()}
    ep = ref.embeddings_processor
    if include_connectors:
        sd.update({f"{prefix}video_embeddings_connector.{k}": v for k, v in ep.video_connector.state_dict().items()})
        sd.update({f"{prefix}audio_embeddings_connector.{k}": v for k, v in ep.audio_connector.state_dict().items()})
    if include_projection:
        sd.update({f"text_embedding_projection.{k}": v for k, v in ep.feature_extractor.state_dict().items()})
    return {k: v.detach().contiguous().clone() for k, v in sd.items()}


def _metadata(ref: RefModels, model_version: str | None) -> dict[str, str]:
    return {"config": json.dumps(ref.config), "model_version": model_version or f"{ref.variant}.0"}


def write_checkpoint(ref: RefModels, path: str | Path, *, with_metadata: bool = True,
                     prefix_transformer: str = "model.diffusion_model.", include_text: bool = True,
                     model_version: str | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """Write an official single-file checkpoint; returns the written state dict.

    Keys: transformer under ``prefix_transformer``; connectors under ``{prefix_transformer}{video,audio}_embeddings_
    connector.``; feature extractor under ``text_embedding_projection.aggregate_embed.`` (2.0) or
    ``text_embedding_projection.{video,audio}_aggregate_embed.`` (2.3). ``include_text=False`` omits both text parts.
    Metadata ``{"config": json, "model_version": "2.0.0"/"2.3.0"}`` when ``with_metadata``.
    """
    sd = _state_dict(ref, prefix_transformer, include_text, include_text)
    save_file(sd, str(path), metadata=_metadata(ref, model_version) if with_metadata else None)
    return sd


def write_transformer_only(ref: RefModels, path: str | Path, *, prefix: str = "model.diffusion_model.",
                           with_metadata: bool = False, include_text_projection: bool = False,
                           model_version: str | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """ComfyUI-style split diffusion-model file: transformer + connectors (+ projection if asked)."""
    sd = _state_dict(ref, prefix, True, include_text_projection)
    save_file(sd, str(path), metadata=_metadata(ref, model_version) if with_metadata else None)
    return sd


# ------------------------------------------------------------------------------------------------ input helpers
def video_positions(batch: int, frames: int, height: int, width: int, fps: float) -> torch.Tensor:
    """Positions ``(B, 3, F*H*W, 2)`` float32 for a latent grid of ``frames x height x width`` (latent units).

    Pixel-space [start, end) bounds (t*8 with causal fix, h*32, w*32), time divided by ``fps`` -> seconds.
    """
    coords = VideoLatentPatchifier(1).get_patch_grid_bounds(VideoLatentShape(batch, 1, frames, height, width))
    pos = get_pixel_coords(coords, SpatioTemporalScaleFactors.default(), causal_fix=True).float()
    pos[:, 0] = pos[:, 0] / fps
    return pos


def audio_positions(batch: int, frames: int) -> torch.Tensor:
    """Positions ``(B, 1, frames, 2)`` float32 in seconds for ``frames`` audio latent frames (25 per second)."""
    return AudioPatchifier(1).get_patch_grid_bounds(AudioLatentShape(batch, 1, frames, 16))


def guide_positions(batch: int, frames: int, height: int, width: int, fps: float, frame_idx: int) -> torch.Tensor:
    """Positions ``(B, 3, F*H*W, 2)`` of appended keyframe/guide tokens as ``VideoConditionByKeyframeIndex``.

    Latent grid ``frames x height x width``; ``frame_idx`` is a *pixel* frame index; causal fix only when it is 0.
    """
    coords = VideoLatentPatchifier(1).get_patch_grid_bounds(VideoLatentShape(batch, 1, frames, height, width))
    pos = get_pixel_coords(coords, SpatioTemporalScaleFactors.default(), causal_fix=frame_idx == 0)
    pos[:, 0, ...] += frame_idx
    pos = pos.to(dtype=torch.float32)
    pos[:, 0, ...] /= fps
    return pos


def guide_attention_mask(num_noisy: int, num_guide: int, batch: int, strength: float | torch.Tensor,
                         existing_mask: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """Self-attention weight mask ``(B, N+M, N+M)`` in [0, 1] for ``M`` appended guide tokens (official mask_utils).

    ``strength``: scalar, ``(M,)`` or ``(B, M)`` noisy<->guide weight. ``existing_mask`` ``(B, N, N)`` chains a
    previous guide group (N = its size, first ``num_noisy`` tokens are the noisy ones); else N = ``num_noisy``.
    """
    n = existing_mask.shape[-1] if existing_mask is not None else num_noisy
    z = torch.zeros(batch, n, 1)
    state = LatentState(latent=z, denoise_mask=z, positions=z, clean_latent=z, attention_mask=existing_mask)
    mask = update_attention_mask(state, strength, num_noisy, num_guide, batch, torch.device("cpu"), torch.float32)
    assert mask is not None
    return mask


def tiny_gemma_hidden_states(batch: int, seq: int, n_valid: int | Sequence[int], hidden: int, num_states: int,
                             seed: int) -> tuple[list[torch.Tensor], torch.Tensor]:  # fmt: skip
    """Fake Gemma output: ``num_states`` tensors ``(B, seq, hidden)`` and a left-padded mask ``(B, seq)`` int64.

    Layer ``l`` is ``randn * (1 + l) + 0.1 * l`` so per-layer statistics differ; the last ``n_valid[b]`` positions
    are real tokens (mask 1), the rest padding (mask 0, hidden states still random like real Gemma pads).
    """
    g = torch.Generator().manual_seed(seed)
    states = [torch.randn(batch, seq, hidden, generator=g) * (1.0 + layer) + 0.1 * layer for layer in range(num_states)]
    valid = [n_valid] * batch if isinstance(n_valid, int) else list(n_valid)
    mask = torch.zeros(batch, seq, dtype=torch.long)
    for b, n in enumerate(valid):
        mask[b, seq - n :] = 1
    return states, mask


def random_modality(ref: RefModels, kind: str, *, batch: int, tokens_or_grid: int | tuple[int, int, int],
                    text_len: int, sigma: float | Sequence[float], fps: float = 24.0,
                    seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Seeded modality dict for :func:`run_transformer` (``kind`` "video" with a latent grid (F, H, W), or "audio"
    with a frame count): latent (B,T,C), sigma (B,), timesteps (B,T) = sigma, positions, context (B,text_len,D)."""
    t = ref.config["transformer"]
    g = torch.Generator().manual_seed(seed)
    if kind == "video":
        f, h, w = tokens_or_grid if isinstance(tokens_or_grid, tuple) else (tokens_or_grid, 1, 1)
        n, c, pos = f * h * w, t["in_channels"], video_positions(batch, f, h, w, fps)
        ctx_dim = t["caption_channels"] if ref.variant == "2.0" else t["num_attention_heads"] * t["attention_head_dim"]
    else:
        assert isinstance(tokens_or_grid, int)
        n, c, pos = tokens_or_grid, t["audio_in_channels"], audio_positions(batch, tokens_or_grid)
        ctx_dim = (t["caption_channels"] if ref.variant == "2.0"
                   else t["audio_num_attention_heads"] * t["audio_attention_head_dim"])  # fmt: skip
    sig = torch.as_tensor(sigma, dtype=torch.float32).reshape(-1).expand(batch).clone()
    return {"latent": torch.randn(batch, n, c, generator=g), "sigma": sig, "timesteps": sig[:, None].expand(batch, n),
            "positions": pos, "context": torch.randn(batch, text_len, ctx_dim, generator=g)}  # fmt: skip


# ------------------------------------------------------------------------------------------------ runners
PerturbationSpec = list[list[tuple[str, list[int] | None]]]  # one list per batch item of (type name, blocks | None)


def _modality(d: dict[str, Any] | None) -> Modality | None:
    if d is None:
        return None
    ts = d["timesteps"]
    ts = ts.reshape(ts.shape[0], ts.shape[1], 1) if ts.ndim == 2 else ts
    return Modality(latent=d["latent"], sigma=torch.as_tensor(d["sigma"], dtype=torch.float32).reshape(-1),
                    timesteps=ts, positions=d["positions"], context=d["context"],
                    enabled=d.get("enabled", True), context_mask=d.get("context_mask"),
                    attention_mask=d.get("attention_mask"))  # fmt: skip


def make_perturbations(perturbations: PerturbationSpec | None, batch: int) -> BatchedPerturbationConfig:
    """Official ``BatchedPerturbationConfig``: one list per batch item of (type name, blocks or None = all)."""
    if perturbations is None:
        return BatchedPerturbationConfig.empty(batch)
    if len(perturbations) != batch:
        raise ValueError(f"need one perturbation list per batch item ({batch}), got {len(perturbations)}")
    return BatchedPerturbationConfig([
        PerturbationConfig([Perturbation(PerturbationType(name), blocks) for name, blocks in item])
        for item in perturbations
    ])  # fmt: skip


def _run(model: torch.nn.Module, video: dict[str, Any] | None, audio: dict[str, Any] | None,
         perturbations: PerturbationSpec | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:  # fmt: skip
    v, a = _modality(video), _modality(audio)
    batch = (v or a).latent.shape[0]  # type: ignore[union-attr]
    with torch.no_grad():
        return model(video=v, audio=a, perturbations=make_perturbations(perturbations, batch))


def run_transformer(ref: RefModels, *, video: dict[str, Any] | None, audio: dict[str, Any] | None,
                    perturbations: PerturbationSpec | None = None,
                    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:  # fmt: skip
    """Official ``LTXModel`` forward -> (video velocity (B,Tv,C) | None, audio velocity (B,Ta,Ca) | None).

    Modality dict keys: latent, sigma (B,), timesteps (B,T) or (B,T,1), positions, context, optional context_mask
    (B,L) 0/1, attention_mask (B,T,T) in [0,1], enabled. ``perturbations``: one list per batch item of
    (name, blocks | None = all) with names "skip_video_self_attn", "skip_audio_self_attn", "skip_a2v_cross_attn",
    "skip_v2a_cross_attn"; None = no perturbation.
    """
    return _run(ref.transformer, video, audio, perturbations)


def run_x0(ref: RefModels, *, video: dict[str, Any] | None, audio: dict[str, Any] | None,
           perturbations: PerturbationSpec | None = None,
           ) -> tuple[torch.Tensor | None, torch.Tensor | None]:  # fmt: skip
    """Official ``X0Model``: denoised = latent - velocity * timesteps (per token); same inputs as run_transformer."""
    return _run(X0Model(ref.transformer), video, audio, perturbations)


def run_text_path(ref: RefModels, hidden_states: Sequence[torch.Tensor],
                  attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """Official ``EmbeddingsProcessor.process_hidden_states(..., padding_side="left")``.

    ``hidden_states``: ``num_gemma_states`` tensors (B, T, hidden); ``attention_mask`` (B, T) int 0/1, left padded;
    T must be a multiple of the register count. Returns (video (B,T,Dv), audio (B,T,Da), mask (B,T) int64 all ones).
    The 1.0.0 connector supports batch 1 only, so each batch item is run separately and the results concatenated
    (exactly what a caller looping over the batch gets).
    """
    outs = []
    with torch.no_grad():
        for b in range(attention_mask.shape[0]):
            hs = tuple(h[b : b + 1] for h in hidden_states)
            outs.append(ref.embeddings_processor.process_hidden_states(hs, attention_mask[b : b + 1], "left"))
    return (torch.cat([o.video_encoding for o in outs]), torch.cat([o.audio_encoding for o in outs]),
            torch.cat([o.attention_mask for o in outs]))  # fmt: skip
