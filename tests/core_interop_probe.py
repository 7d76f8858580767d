"""Run by tests/test_core_interop_comfyui.py with ComfyUI's Python: loads tiny files through core's loaders,
builds our objects with nodes.core_interop and prints a JSON report. Not a test module (nothing runs on import).

Usage: python core_interop_probe.py COMFYUI_PATH PACKAGES_DIR WORK_DIR
"""

from __future__ import annotations

import json
import sys


def _diff(a, b) -> float:
    return float((a.float() - b.float()).abs().max())


def _shares(ours, core) -> bool:
    ptrs = {p.data_ptr() for p in core.parameters()} | {b.data_ptr() for b in core.buffers()}
    return all(t.data_ptr() in ptrs for t in [*ours.parameters(), *ours.buffers()] if t.numel())


def _transformer(v: str, work: str, out: dict) -> None:
    import comfy.model_management as mm
    import comfy.sd
    import comfy.utils
    import torch

    from rs_ltxv.ltx import tokens as T
    from rs_ltxv.ltx.loading import load_transformer
    from rs_ltxv.ltx.transformer import StreamInput
    from rs_ltxv.nodes import core_conditioning as cc
    from rs_ltxv.nodes import core_interop as ci

    path = f"{work}/ltx-{v}.safetensors"
    patcher, _, vae, *_ = comfy.sd.load_checkpoint_guess_config(path, output_vae=True, output_clip=False)
    res = out[v] = {"is_core_ltxav": ci.is_core_ltxav(patcher)}
    mm.load_models_gpu([patcher])
    ours = ci.transformer_from_core(patcher)
    dm = patcher.model.diffusion_model
    res["shares_storage"] = _shares(ours, dm)
    res["param_names_equal_core"] = set(dict(ours.named_parameters())) <= set(dict(dm.named_parameters()))
    ref = load_transformer(path, dtype=torch.float32)
    cfg = ref.config
    g = torch.Generator().manual_seed(0)
    vctx, actx = ref.context_dim
    video = StreamInput(torch.randn(1, 6, 128, generator=g), torch.tensor([0.6]), torch.full((1, 6), 0.6),
                        T.video_positions(1, 1, 2, 3, 24.0), torch.randn(1, 9, vctx, generator=g))
    audio = StreamInput(torch.randn(1, 4, 128, generator=g), torch.tensor([0.6]), torch.full((1, 4), 0.6),
                        T.audio_positions(1, 4), torch.randn(1, 9, actx, generator=g))
    with torch.no_grad():
        want, got = ref(video, audio), ours(video, audio)
    res["transformer_max_diff"] = max(_diff(want[0], got[0]), _diff(want[1], got[1]))
    res["transformer_scale"] = float(want[0].abs().max())

    # text: core's conditioning layout (see core_conditioning) through core's own connector path vs ours
    width = cfg.inner_dim + cfg.audio_inner_dim if cfg.caption_proj_before_connector else cfg.caption_channels
    feats = torch.randn(1, 11, width, generator=g)
    cond = [[feats, {"pooled_output": None, cc.UNPROCESSED_KEY: True}]]
    ctx = cc.contexts_from_core(cond, patcher)
    core_ctx = patcher.model.extra_conds(cross_attn=feats, unprocessed_ltxav_embeds=True,
                                         device=torch.device("cpu"))["c_crossattn"].cond
    mine = torch.cat([ctx.video, ctx.audio], dim=-1)
    res["context_shape"], res["core_context_shape"] = list(mine.shape), list(core_ctx.shape)
    res["context_max_diff"] = _diff(mine, core_ctx) if mine.shape == core_ctx.shape else None
    res["context_scale"] = float(core_ctx.abs().max())
    finished = [[core_ctx, {"pooled_output": None}]]  # compat-mode text encoders: contexts already finished
    again = cc.contexts_from_core(finished, patcher)
    res["finished_context_passthrough"] = bool(torch.equal(torch.cat([again.video, again.audio], -1), core_ctx))
    if v == "2.3":  # core's LTX-2.3 text projection module vs our feature extractor on the same weights
        import comfy.ops
        from comfy.text_encoders.lt import DualLinearProjection

        from rs_ltxv.ltx.loading import load_text_connectors

        text = load_text_connectors(path, dtype=torch.float32)
        fe = text.feature_extractor
        states = fe.video_aggregate_embed.in_features // cfg.caption_channels
        proj = DualLinearProjection(states * cfg.caption_channels, cfg.inner_dim, cfg.audio_inner_dim,
                                    operations=comfy.ops.disable_weight_init)
        proj.load_state_dict(fe.state_dict())
        hidden = torch.randn(1, states, 1024, cfg.caption_channels, generator=g)  # core: (B, layers, T, D)
        mask = torch.zeros(1, 1024, dtype=torch.int64)
        mask[:, -11:] = 1  # left padding, as the tokenizer pads; core cuts the padding off before projecting
        with torch.no_grad():
            core_feats = proj(hidden[:, :, -11:])
            full = text(hidden.permute(0, 2, 3, 1), mask)
        ctx2 = cc.contexts_from_core([[core_feats, {cc.UNPROCESSED_KEY: True}]], patcher)
        res["projection_then_connectors_vs_our_text_path"] = max(_diff(ctx2.video, full.video),
                                                                 _diff(ctx2.audio, full.audio))

    # LoRA (LoraLoaderModelOnly's call) vs our model with the LoRA merged by hand
    lora = comfy.utils.load_torch_file(f"{work}/lora-{v}.safetensors")
    patched, _ = comfy.sd.load_lora_for_models(patcher, None, lora, 1.0, 0)
    mm.load_models_gpu([patched])
    with_lora = ci.transformer_from_core(patched)
    merged = load_transformer(path, dtype=torch.float32)
    sd = merged.state_dict()
    for key in [k for k in lora if k.endswith("lora_A.weight")]:
        name = key[len("diffusion_model."):-len(".lora_A.weight")]
        sd[name + ".weight"] += lora[key.replace("lora_A", "lora_B")] @ lora[key]
    merged.load_state_dict(sd)
    with torch.no_grad():
        want, got = merged(video, audio), with_lora(video, audio)
        plain = ref(video, audio)
    res["lora_max_diff"] = max(_diff(want[0], got[0]), _diff(want[1], got[1]))
    res["lora_changes_output"] = _diff(plain[0], got[0])
    # low-VRAM path: core leaves the weights unpatched and applies the LoRA in its Linear forward
    mm.unload_all_models()
    patched.load(torch.device("cpu"), lowvram_model_memory=1, force_patch_weights=False, full_load=False)
    lowvram = ci.transformer_from_core(patched)
    with torch.no_grad():
        got = lowvram(video, audio)
    res["lora_lowvram_max_diff"] = max(_diff(want[0], got[0]), _diff(want[1], got[1]))
    res["lowvram_patch_counter"] = patched.model.lowvram_patch_counter
    patched.detach()

    # video VAE from the checkpoint loader
    from rs_ltxv.ltx.loading.video_vae import load_video_vae

    codec = ci.video_vae_from_core(vae, tile_size=None)
    mine_vae = load_video_vae(path, dtype=torch.float32)
    res["video_vae_shares_storage"] = _shares(codec.vae, vae.first_stage_model)
    latent = torch.randn(1, 128, 2, 2, 2, generator=g)
    pixels = torch.rand(1, 3, 9, 64, 64, generator=g) * 2 - 1
    with torch.no_grad():
        res["video_decode_max_diff"] = _diff(codec.decode(latent), mine_vae.decode(latent))
        res["video_encode_max_diff"] = _diff(codec.encode(pixels), mine_vae.encode(pixels))


def _audio_and_upsampler(work: str, out: dict) -> None:
    import comfy.sd
    import comfy.utils
    import folder_paths
    import torch
    from comfy_extras.nodes_hunyuan import LatentUpscaleModelLoader

    from rs_ltxv.ltx.loading.audio import load_audio_vae
    from rs_ltxv.ltx.loading.upsampler import load_upsampler
    from rs_ltxv.nodes import core_interop as ci

    res = out["parts"] = {}
    path = f"{work}/ltx-2.3.safetensors"
    sd, metadata = comfy.utils.load_torch_file(path, return_metadata=True)  # what LTXVAudioVAELoader does
    sd = comfy.utils.state_dict_prefix_replace(sd, {"audio_vae.": "autoencoder.", "vocoder.": "vocoder."},
                                               filter_keys=True)
    core_audio = comfy.sd.VAE(sd=sd, metadata=metadata)
    config = json.loads(metadata["config"])
    codec = ci.audio_vae_from_core(core_audio, config)
    mine = load_audio_vae(path, dtype=torch.float32)
    res["audio_shares_storage"] = _shares(codec.decoder, core_audio.first_stage_model) and _shares(
        codec.vocoder, core_audio.first_stage_model)
    g = torch.Generator().manual_seed(4)
    latent = torch.randn(1, 8, 5, 16, generator=g)
    wave = torch.randn(1, 2, 16000, generator=g) * 0.1
    with torch.no_grad():
        a, rate_a = codec.decode(latent)
        b, rate_b = mine.decode(latent)
        res["audio_decode_max_diff"] = _diff(a, b) if rate_a == rate_b else None
        res["audio_encode_max_diff"] = _diff(codec.encode(wave, 16000), mine.encode(wave, 16000))

    folder_paths.add_model_folder_path("latent_upscale_models", work)
    node_out = LatentUpscaleModelLoader.execute("upsampler.safetensors")
    core_up = node_out.result[0] if hasattr(node_out, "result") else node_out[0]
    ups = ci.upsampler_from_core(core_up)
    ref = load_upsampler(f"{work}/upsampler.safetensors", dtype=next(core_up.parameters()).dtype)
    res["upsampler_shares_storage"] = _shares(ups, core_up)
    x = torch.randn(1, 16, 2, 4, 4, generator=g).to(next(core_up.parameters()).dtype)
    with torch.no_grad():
        res["upsampler_max_diff"] = _diff(ups(x), ref(x))
    try:
        ci.upsampler_from_core(core_audio)
    except Exception as exc:
        res["wrong_object_error"] = f"{type(exc).__name__}: {exc}"


def main() -> None:
    comfy_path, packages, work = sys.argv[1:4]
    sys.path[:0] = [comfy_path, packages]
    from comfy.cli_args import args

    args.cpu = True
    out: dict = {}
    for v in ("2.3", "2.0"):
        _transformer(v, work, out)
    _audio_and_upsampler(work, out)
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
