"""Memory planner for LTX-2.5's diffusion video decoder: predictions vs measured live-tensor peaks of tiled decodes
(tiny random decoders, float32 and bfloat16, CPU), the decode's memory flat in video length, and ``plan --decoder``
on the tiny 2.5 files (weights from the header, the tiling stated)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from rs_ltxv.__main__ import main
from rs_ltxv.ltx.config import TransformerConfig
from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.loading.diffusion_decoder import load_diffusion_decoder
from rs_ltxv.ltx.pipeline.latents import VideoSize
from rs_ltxv.ltx.plan import plan_memory, require_fit
from rs_ltxv.ltx.plan.diffusion_decode import block_bytes, diffusion_decode_peak, features_bytes
from rs_ltxv.ltx.plan.measure import peak_live_bytes
from rs_ltxv.ltx.tiny import write_tiny_checkpoint
from rs_ltxv.ltx.video_vae.diffusion import (
    DEFAULT_DIFFUSION_TILING,
    DiffusionDecoderConfig,
    DiffusionVideoDecoder,
    blocks,
    decode_diffusion_tiled,
)
from rs_ltxv.ltx.video_vae.diffusion.tiny import write_tiny_diffusion_decoder
from rs_ltxv.ltx.video_vae.tiling import TilingConfig

#: tiles small enough for the tiny decoder to be cut in time and space (cells: 2 frames, 16 px)
SMALL = TilingConfig(tile_pixels=64, overlap_pixels=32, tile_frames=32, overlap_frames=16)
#: the released decoder's shape at an eighth of its widths (released strides, kernels, head split)
RELEASED_SHAPE = DiffusionDecoderConfig(latent_channels=16, head_dim=16, stage_channels=(256, 128, 64, 64, 32),
                                        stage_depths=(2, 2, 1, 1, 2), stage5_channels=32, t_emb_dim=32)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("plan25")
    vae = write_tiny_diffusion_decoder(root / "ltx-2.5-video-vae-bf16.safetensors")
    ckpt = write_tiny_checkpoint(root / "ltx-2.5-tiny.safetensors", "2.5")
    return ckpt, vae


@pytest.fixture(scope="module")
def tiny_decoder(files):
    return load_diffusion_decoder(files[1], dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def released_shape():
    from rs_ltxv.ltx.random_weights import random_init

    with torch.device("meta"):
        decoder = DiffusionVideoDecoder(RELEASED_SHAPE)
    random_init(decoder, 0, std=0.05)
    for name, value in (("mean-of-means", torch.zeros(16)), ("std-of-means", torch.ones(16))):
        decoder.per_channel_statistics.register_buffer(name, value)
    return decoder.eval()


def _measure(decoder: DiffusionVideoDecoder, latent: torch.Tensor, tiling: TilingConfig | None) -> int:
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        return peak_live_bytes(lambda: decode_diffusion_tiled(decoder, latent, tiling, generator=generator))


# (dtype, latent frames, rows, columns, tiling): one tile, two temporal tiles of the default 80 frames, and 18 tiles
# cut in time and space
DECODES = [(torch.float32, 3, 4, 4, None), (torch.bfloat16, 3, 4, 4, None),
           (torch.float32, 11, 4, 4, DEFAULT_DIFFUSION_TILING), (torch.bfloat16, 11, 4, 4, DEFAULT_DIFFUSION_TILING),
           (torch.bfloat16, 5, 4, 4, SMALL)]


@pytest.mark.parametrize("case", DECODES, ids=[f"{str(c[0])[6:]}-F{c[1]}-{'tiled' if c[4] else 'one'}"
                                               f"{'-small' if c[4] is SMALL else ''}" for c in DECODES])
def test_decode_prediction_within_5_percent_of_measured_peak(tiny_decoder, case):
    dtype, f, h, w, tiling = case
    decoder = tiny_decoder.to(dtype)
    latent = torch.randn(1, 16, f, h, w, dtype=dtype)
    measured = _measure(decoder, latent, tiling)
    predicted = diffusion_decode_peak(decoder.config, tuple(latent.shape), tiling, latent.element_size()).peak
    assert abs(predicted - measured) <= 0.05 * measured, (predicted, measured)


def test_released_shape_decode_within_5_percent(released_shape):
    """Released strides, kernels and head split (stage 5's 11³ window, widths / 8): the ratio of stage-5 tokens to
    pixels is the released model's, unlike the tiny decoder's."""
    decoder = released_shape.to(torch.bfloat16)
    latent = torch.randn(1, 16, 2, 3, 3, dtype=torch.bfloat16)
    measured = _measure(decoder, latent, None)
    predicted = diffusion_decode_peak(RELEASED_SHAPE, tuple(latent.shape), None, 2).peak
    assert abs(predicted - measured) <= 0.05 * measured, (predicted, measured)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("mlp_tokens", [16384, 20], ids=["mlp-whole", "mlp-sliced"])
def test_blocks_and_stages_1_to_3_within_5_percent(released_shape, monkeypatch, dtype, mlp_tokens):
    """Stages 1-3 and single blocks at the released shape; with ``MLP_TOKENS`` 20 the SwiGLU runs in slices, as the
    released model's does on real tiles."""
    monkeypatch.setattr(blocks, "MLP_TOKENS", mlp_tokens)
    decoder = released_shape.to(dtype)
    e = torch.empty((), dtype=dtype).element_size()
    x = torch.randn(1, 16, 6, 5, 3, dtype=dtype)
    with torch.inference_mode():
        measured = peak_live_bytes(lambda: decoder.features(x, first=False))
    predicted = features_bytes(RELEASED_SHAPE, 6, 5, 3, 1, e, first=False)[0]
    assert abs(predicted - measured) <= 0.05 * measured, ("stages 1-3", predicted, measured)
    for stage, grid in ((0, (3, 4, 4)), (3, (5, 6, 6))):
        dim = RELEASED_SHAPE.stage_channels[stage]
        block = decoder.det_stages[stage][0]
        tokens = torch.randn(1, *grid, dim, dtype=dtype)
        with torch.inference_mode():
            measured = peak_live_bytes(lambda block=block, tokens=tokens: block(tokens))
        predicted = block_bytes(RELEASED_SHAPE, grid, 1, dim, RELEASED_SHAPE.stage_kernels[stage], e)[0]
        assert abs(predicted - measured) <= 0.05 * measured, (f"stage {stage + 1} block", predicted, measured)


def test_tiled_activations_stay_flat_when_frames_grow():
    """The released decoder at 1536×1024 in its default tiles: past the tiles' full windows the per-tile part does
    not grow; the output video and the noise canvas (the whole clip) do."""
    cfg = DiffusionDecoderConfig()
    peaks = [diffusion_decode_peak(cfg, (1, 128, (frames - 1) // 8 + 1, 32, 48)) for frames in (481, 961, 1921)]
    assert peaks[0].activations > 0
    assert peaks[1].activations == peaks[0].activations
    assert peaks[2].activations == peaks[0].activations
    assert peaks[2].video > 3.9 * peaks[0].video
    video = 2 * 3 * 1921 * 1024 * 1536 * 2  # output + noise canvas, bf16
    assert video <= peaks[2].video <= 1.01 * video


def _plan_json(capsys, *args: str) -> dict:
    assert main(["plan", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_plans_the_diffusion_decoder_from_the_file_header(files, capsys):
    ckpt, vae = files
    common = ["--checkpoint", str(ckpt), "--width", "256", "--height", "192", "--vae", str(vae)]
    decode = {}
    for frames in ("161", "321"):
        d = _plan_json(capsys, *common, "--frames", frames)
        assert d["decoder"] == "diffusion"
        assert d["tiling"] == {"tile_pixels": 512, "overlap_pixels": 160, "tile_frames": 80, "overlap_frames": 40}
        decode[frames] = next(s for s in d["stages"] if s["name"] == "video decode")["parts"]
    with safe_open(str(vae), "pt") as f:  # float32 file: 4 bytes per element
        expected = sum(4 * torch.Size(f.get_slice(k).get_shape()).numel()
                       for k in f.keys() if k.startswith(("decoder.", "per_channel_statistics.")))
    assert expected > 0
    assert decode["161"]["weights"] == expected
    assert decode["161"]["activations"] > 0
    assert decode["321"]["activations"] == decode["161"]["activations"]
    assert decode["321"]["output video"] > 1.9 * decode["161"]["output video"]
    assert main(["plan", *common, "--frames", "161"]) == 0
    assert "VAE decode: diffusion decoder, tiles 512 px / 80 frames (overlap 160 px / 40 frames)" in \
        capsys.readouterr().out


def test_cli_decoder_choice(files, tmp_path, capsys):
    """``--decoder vae`` refuses the diffusion file; without --vae, asking for a decoder the checkpoint lacks names
    the file to give; auto on a file with the conv VAE plans the convolutional decode."""
    ckpt, vae = files
    common = ["--checkpoint", str(ckpt), "--width", "64", "--height", "64", "--frames", "9"]
    capsys.readouterr()
    assert main(["plan", *common, "--vae", str(vae), "--decoder", "vae"]) == 2
    assert "holds only the diffusion decoder" in capsys.readouterr().err
    assert main(["plan", *common, "--decoder", "diffusion"]) == 2
    err = capsys.readouterr().err
    assert "--decoder diffusion:" in err, err
    assert "give --vae with the video VAE file (ltx-2.5-video-vae-bf16" in err, err
    conv = write_tiny_checkpoint(tmp_path / "ltx-2.3-tiny.safetensors", "2.3", full=True)  # holds the conv VAE
    d = _plan_json(capsys, *common, "--vae", str(conv))
    assert d["decoder"] == "vae"
    assert d["tiling"] is None  # untiled: no budget


def test_refusal_names_the_diffusion_tiles():
    cfg = TransformerConfig(num_layers=1)
    size = VideoSize(121, 512, 768)
    plan = plan_memory(cfg, size, 3 << 30, vae=DiffusionDecoderConfig(), vae_weights=1 << 20, offload=True)
    assert plan.decoder == "diffusion"
    assert not plan.fits
    with pytest.raises(InputError) as err:
        require_fit(plan, size)
    text = str(err.value)
    assert "video decode needs" in text, text
    assert "diffusion decoder's tiles 512 px / 80 frames" in text, text
    assert "smallest tiles" not in text, text
