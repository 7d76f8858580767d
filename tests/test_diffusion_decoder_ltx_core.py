"""The tiny diffusion VAE file, loaded by Lightricks' ltx-core 1.2.0 itself (its ``SingleGPUModelBuilder`` with
``VideoDecoderConfigurator`` and ``video_decoder_sd_ops_for_checkpoint``: fused ``qkv`` split, ``t_embedder``
renamed, static gates folded) and decoded on its eager neighbourhood-attention path, against ours loaded from the same
file: same output for the same generator seed, latents smaller than the windows (edge-padded) and a batch of two
included.

ltx-core 1.2.0 is not on PyPI (1.0.0 is what the test environment installs), so its source is taken from the
Lightricks/LTX-2 mirror at tag v1.2.0 and run in a subprocess (the installed 1.0.0 owns the ``ltx_core`` name in this
process). Without the mirror the test is skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from rs_ltxv.ltx.loading.diffusion_decoder import load_diffusion_decoder
from rs_ltxv.ltx.video_vae.diffusion.tiny import write_tiny_diffusion_decoder

from conftest import assert_close

MIRROR = Path(os.environ.get("LTX2_MIRROR", "/work/.mirror/Lightricks+LTX-2/repo"))
TAG = "v1.2.0"
LATENT = 16

RUNNER = textwrap.dedent("""
    import sys, torch
    src, latent_path, seed, *jobs = sys.argv[1:]
    sys.path.insert(0, src)
    from safetensors.torch import load_file, save_file
    from ltx_core.loader.single_gpu_model_builder import SingleGPUModelBuilder
    from ltx_core.model.video_vae.model_configurator import (VideoDecoderConfigurator,
                                                             video_decoder_sd_ops_for_checkpoint)
    from ltx_core.model.video_vae.transformer import EagerSdpaAttention, NeighborhoodAttention3D
    latents = load_file(latent_path)
    for job in jobs:
        path, out_path = job.split("::")
        builder = SingleGPUModelBuilder(VideoDecoderConfigurator, path, video_decoder_sd_ops_for_checkpoint(path))
        decoder = builder.build(torch.device("cpu"), torch.float32).eval()
        for module in decoder.modules():
            if isinstance(module, NeighborhoodAttention3D):
                module.attention_function = EagerSdpaAttention()
        with torch.inference_mode():
            out = {k: decoder(v, generator=torch.Generator().manual_seed(int(seed))).contiguous()
                   for k, v in latents.items()}
        save_file(out, out_path)
""")


def _ltx_core_source(directory: Path) -> Path:
    if shutil.which("git") is None or not MIRROR.exists():
        pytest.skip(f"no Lightricks/LTX-2 mirror at {MIRROR} (set LTX2_MIRROR) to take ltx-core {TAG} from")
    archive = subprocess.run(["git", "-C", str(MIRROR), "archive", TAG, "packages/ltx-core/src"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    return directory / "packages" / "ltx-core" / "src"


def _gated_copy(path: Path, out: Path) -> Path:
    tensors = load_file(str(path))
    gen = torch.Generator().manual_seed(5)
    for b in range(2):
        for gate in ("gate_msa", "gate_mlp", "gate_ctx"):
            tensors[f"decoder.diff_blocks.{b}.{gate}"] = 1 + 0.3 * torch.randn(16, generator=gen)
    with safe_open(str(path), "pt") as fh:
        save_file(tensors, str(out), metadata=fh.metadata())
    return out


def test_ltx_core_1_2_reads_our_file_and_decodes_the_same(tmp_path):
    src = _ltx_core_source(tmp_path)
    plain = write_tiny_diffusion_decoder(tmp_path / "ltx-2.5-video-vae-bf16.safetensors", LATENT, seed=3)
    gated = _gated_copy(plain, tmp_path / "gated.safetensors")
    gen = torch.Generator().manual_seed(1)
    latents = {"clip": torch.randn(1, LATENT, 4, 3, 3, generator=gen),
               "small": torch.randn(1, LATENT, 1, 2, 3, generator=gen),  # below the windows: edge-padded
               "batch": torch.randn(2, LATENT, 3, 2, 3, generator=gen)}
    save_file(latents, str(tmp_path / "latents.safetensors"))
    jobs = [f"{p}::{tmp_path / (p.stem + '.out.safetensors')}" for p in (plain, gated)]
    subprocess.run([sys.executable, "-c", RUNNER, str(src), str(tmp_path / "latents.safetensors"), "7", *jobs],
                   check=True, capture_output=True, timeout=300)
    for path in (plain, gated):
        ours = load_diffusion_decoder(path)
        reference = load_file(str(tmp_path / (path.stem + ".out.safetensors")))
        for name, latent in latents.items():
            with torch.inference_mode():
                got = ours(latent, torch.Generator().manual_seed(7))
            assert reference[name].abs().max() > 0.05
            assert_close(got, reference[name], f"{path.name} {name} vs ltx-core 1.2.0")
