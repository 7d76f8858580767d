"""diffusers 0.42.1 ``LTX2VideoTransformer3DModel`` as a second, independent transformer reference.

Maps official (ltx-core / checkpoint) transformer names to diffusers names, builds a diffusers transformer whose
config matches an official checkpoint config (LTX-2 "2.0", LTX-2.3 "2.3" and LTX-2.5 "2.5" layouts), loads
the weights strictly and runs it with the same modality dicts as :func:`ltx_core_ref.run_transformer`.

Input-convention differences handled here (reference notes §6): diffusers takes timesteps and sigmas already
multiplied by 1000, positions through ``video_coords``/``audio_coords`` and needs ``use_cross_timestep=True`` to
modulate the audio<->video cross-attention with the *other* modality's sigma as the official code does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from diffusers import LTX2VideoTransformer3DModel

from . import ltx_core_ref

OFFICIAL_PREFIX = "model.diffusion_model."

# Keys living under the transformer prefix in official files that are not part of the transformer.
_NON_TRANSFORMER = ("video_embeddings_connector.", "audio_embeddings_connector.", "embeddings_connector.")

# Top-level module renames (exact prefix match; longest first so "audio_adaln_single." wins over "adaln_single.").
_PREFIX_RENAMES: tuple[tuple[str, str], ...] = (
    ("av_ca_video_scale_shift_adaln_single.", "av_cross_attn_video_scale_shift."),
    ("av_ca_audio_scale_shift_adaln_single.", "av_cross_attn_audio_scale_shift."),
    ("av_ca_a2v_gate_adaln_single.", "av_cross_attn_video_a2v_gate."),
    ("av_ca_v2a_gate_adaln_single.", "av_cross_attn_audio_v2a_gate."),
    ("audio_prompt_adaln_single.", "audio_prompt_adaln."),  # 2.3
    ("prompt_adaln_single.", "prompt_adaln."),  # 2.3
    ("audio_adaln_single.", "audio_time_embed."),
    ("adaln_single.", "time_embed."),
    ("audio_patchify_proj.", "audio_proj_in."),
    ("patchify_proj.", "proj_in."),
)
# Renames of the last name components inside transformer blocks (``transformer_blocks.N.<...>``).
_BLOCK_RENAMES: tuple[tuple[str, str], ...] = (
    (".scale_shift_table_a2v_ca_video", ".video_a2v_cross_attn_scale_shift_table"),
    (".scale_shift_table_a2v_ca_audio", ".audio_a2v_cross_attn_scale_shift_table"),
    (".q_norm.", ".norm_q."),
    (".k_norm.", ".norm_k."),
)


def official_to_diffusers_name(name: str) -> str | None:
    """Diffusers name for one official transformer key (``model.diffusion_model.`` prefix optional).

    Returns None for keys that are not transformer weights (connectors, ``text_embedding_projection``, VAE, ...).
    Caption projections (2.0) keep their names: ``caption_projection.linear_{1,2}`` /
    ``audio_caption_projection.linear_{1,2}`` exist in diffusers when ``use_prompt_embeddings=True``.
    """
    if name.startswith(OFFICIAL_PREFIX):
        name = name[len(OFFICIAL_PREFIX) :]
    elif "." in name and name.split(".", 1)[0] in ("vae", "audio_vae", "vocoder", "text_embedding_projection"):
        return None
    if name.startswith(_NON_TRANSFORMER):
        return None
    for old, new in _PREFIX_RENAMES:
        if name.startswith(old):
            return new + name[len(old) :]
    for old, new in _BLOCK_RENAMES:
        name = name.replace(old, new)
    return name


def official_to_diffusers_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official transformer state dict (prefixed or stripped) to diffusers names, dropping non-transformer
    keys. Raises on a name collision."""
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        nk = official_to_diffusers_name(k)
        if nk is None:
            continue
        if nk in out:
            raise KeyError(f"two official keys map to {nk!r}")
        out[nk] = v
    return out


def diffusers_config(cfg: Mapping[str, Any], *, perturbed_attn: bool = True) -> dict[str, Any]:
    """``LTX2VideoTransformer3DModel`` kwargs equivalent to an official config (full dict or its "transformer").

    ``perturbed_attn=True`` selects diffusers' STG-capable attention processor (same maths when no STG is asked).
    """
    t = cfg.get("transformer", cfg)
    max_pos = t.get("positional_embedding_max_pos", [20, 2048, 2048])
    gated = bool(t.get("apply_gated_attention", False))
    ca_adaln = bool(t.get("cross_attention_adaln", False))
    return {
        "in_channels": t.get("in_channels", 128), "out_channels": t.get("out_channels", 128),
        "num_attention_heads": t.get("num_attention_heads", 32), "attention_head_dim": t.get("attention_head_dim", 128),
        "cross_attention_dim": t.get("cross_attention_dim", 4096),
        "audio_in_channels": t.get("audio_in_channels", 128), "audio_out_channels": t.get("audio_out_channels", 128),
        "audio_num_attention_heads": t.get("audio_num_attention_heads", 32),
        "audio_attention_head_dim": t.get("audio_attention_head_dim", 64),
        "audio_cross_attention_dim": t.get("audio_cross_attention_dim", 2048),
        "num_layers": t.get("num_layers", 48), "caption_channels": t.get("caption_channels", 3840),
        "norm_eps": t.get("norm_eps", 1e-6), "rope_theta": t.get("positional_embedding_theta", 10000.0),
        "pos_embed_max_pos": max_pos[0], "base_height": max_pos[1], "base_width": max_pos[2],
        "audio_pos_embed_max_pos": t.get("audio_positional_embedding_max_pos", [20])[0],
        "rope_type": t.get("rope_type", "interleaved"),
        "rope_double_precision": t.get("frequencies_precision") == "float64",
        "timestep_scale_multiplier": t.get("timestep_scale_multiplier", 1000),
        "cross_attn_timestep_scale_multiplier": t.get("av_ca_timestep_scale_multiplier", 1),
        "gated_attn": gated, "audio_gated_attn": gated,
        "cross_attn_mod": ca_adaln, "audio_cross_attn_mod": ca_adaln,
        "use_prompt_embeddings": not t.get("caption_proj_before_connector", False),
        "perturbed_attn": perturbed_attn,
        "ff_bias": bool(t.get("ff_bias", True)), "audio_ff_bias": bool(t.get("audio_ff_bias", True)),
        "use_keyframes_abs_pos_embedding": bool(t.get("use_keyframes_abs_pos_embedding", False)),
    }  # fmt: skip


def build_diffusers_transformer(cfg: Mapping[str, Any], official_sd: Mapping[str, torch.Tensor],
                                *, perturbed_attn: bool = True) -> LTX2VideoTransformer3DModel:  # fmt: skip
    """Tiny diffusers transformer for ``cfg`` with ``official_sd`` (official names) loaded strictly; float32, eval."""
    model = LTX2VideoTransformer3DModel(**diffusers_config(cfg, perturbed_attn=perturbed_attn))
    sd = official_to_diffusers_state_dict(official_sd)
    model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    return model.float().eval()


def from_reference(ref: ltx_core_ref.RefModels) -> LTX2VideoTransformer3DModel:
    """Diffusers twin of ``ref.transformer`` (same weights)."""
    return build_diffusers_transformer(ref.config, ref.transformer.state_dict())


def _marker(m: torch.Tensor | None) -> torch.Tensor | None:
    return None if m is None else m.reshape(m.shape[0], -1, 1)


def _timesteps(d: Mapping[str, Any]) -> torch.Tensor:
    ts = d["timesteps"]
    return ts[..., 0] if ts.ndim == 3 else ts


def run_diffusers_transformer(
    model: LTX2VideoTransformer3DModel,
    video: Mapping[str, Any],
    audio: Mapping[str, Any],
    *,
    stg_blocks: list[int] | None = None,
    perturbation_mask: torch.Tensor | None = None,
    isolate_modalities: bool = False,
    timestep_scale: float = 1000.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run diffusers on :func:`ltx_core_ref.run_transformer`-style modality dicts -> (video (B,Tv,C), audio (B,Ta,C)).

    ``sigma`` (B,) and ``timesteps`` (B,T)/(B,T,1) are given unscaled (official convention) and multiplied by
    ``timestep_scale`` here. ``positions`` go to ``video_coords``/``audio_coords``; ``context_mask`` (B,L) 0/1 to the
    encoder attention masks. Video ``attention_mask`` (B,T,T) becomes ``video_self_attention_mask`` — diffusers turns
    it into a (1-m)*-1e4 bias while ltx-core uses log(m), so only 0/1 masks are comparable; audio self-attention masks
    are not supported by diffusers. Video ``keyframes_mask`` (B,T)/(B,T,1) goes to ``video_keyframes_mask``.
    STG: ``stg_blocks`` skips *both* video and audio self-attention in those blocks
    (= official "skip_video_self_attn" + "skip_audio_self_attn"), ``perturbation_mask`` (B,) selects batch items
    (0 = perturbed; default all). ``isolate_modalities`` = official skip_a2v + skip_v2a in all blocks.
    Both modalities must be present and enabled (diffusers always runs both streams).
    """
    for d in (video, audio):
        if not d.get("enabled", True):
            raise NotImplementedError("diffusers cannot disable a modality")
    if audio.get("attention_mask") is not None:
        raise NotImplementedError("diffusers has no audio self-attention mask")
    vmask, amask = video.get("context_mask"), audio.get("context_mask")
    with torch.no_grad():
        out = model(
            hidden_states=video["latent"],
            audio_hidden_states=audio["latent"],
            encoder_hidden_states=video["context"],
            audio_encoder_hidden_states=audio["context"],
            timestep=_timesteps(video) * timestep_scale,
            audio_timestep=_timesteps(audio) * timestep_scale,
            sigma=torch.as_tensor(video["sigma"], dtype=torch.float32).reshape(-1) * timestep_scale,
            audio_sigma=torch.as_tensor(audio["sigma"], dtype=torch.float32).reshape(-1) * timestep_scale,
            encoder_attention_mask=vmask,
            audio_encoder_attention_mask=amask,
            video_coords=video["positions"],
            audio_coords=audio["positions"],
            video_self_attention_mask=video.get("attention_mask"),
            video_keyframes_mask=_marker(video.get("keyframes_mask")),
            isolate_modalities=isolate_modalities,
            spatio_temporal_guidance_blocks=stg_blocks,
            perturbation_mask=perturbation_mask,
            use_cross_timestep=True,
            return_dict=False,
        )
    return out[0], out[1]
