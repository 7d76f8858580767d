"""Infer a :class:`VideoVAEConfig` from tensor names and shapes (VAE files without ``config`` metadata).

Visible in shapes: block kinds and counts, channel multipliers, up/down-sampling strides (from how the channel count
of a depth-to-space / space-to-depth conv relates to its neighbours), patch size, latent channels, log-variance
mode, timestep conditioning, noise injection, group vs pixel norm. Not visible: the padding modes, the decoder's
``residual`` flag and ``causal_decoder``. Those follow the two released layouts: a decoder whose upsamplers are all
``compress_all`` ×2 is the LTX-2 one (residual, ``reflect`` decoder padding); anything else gets the LTX-2.3 choices
(no residual, ``zeros``). The encoder pads with zeros and the decoder is non-causal in both.
"""

from __future__ import annotations

import math
import re

from ..errors import CheckpointError
from ..video_vae.config import BlockSpec, LogVariance, NormLayer, PaddingMode, VideoVAEConfig

Shapes = dict[str, tuple[int, ...]]

_UP_KIND = {2: "compress_time", 4: "compress_space", 8: "compress_all"}
_DOWN_KIND = {2: "compress_time_res", 4: "compress_space_res", 8: "compress_all_res"}


def _blocks(shapes: Shapes, prefix: str) -> dict[int, Shapes]:
    pattern = re.compile(re.escape(prefix) + r"\.(\d{1,9})\.(.+)$")
    out: dict[int, Shapes] = {}
    for key, shape in shapes.items():
        if m := pattern.match(key):
            out.setdefault(int(m.group(1)), {})[m.group(2)] = shape
    return dict(sorted(out.items()))


def _in_channels(block: Shapes) -> int:
    """Channels entering a block (its first conv's input width).

    Raises:
        CheckpointError: the block has none of the known first convolutions.
    """
    for key in ("res_blocks.0.conv1.conv.weight", "conv1.conv.weight", "conv.conv.weight", "conv.weight"):
        if key in block:
            return block[key][1]
    raise CheckpointError(f"Unrecognised video VAE block with tensors {sorted(block)[:4]}.")


def _res_spec(block: Shapes) -> BlockSpec:
    layers = len({k.split(".")[1] for k in block if k.startswith("res_blocks.")})
    return BlockSpec("res_x", num_layers=layers, inject_noise="res_blocks.0.per_channel_scale1" in block)


def _incoming(blocks: dict[int, Shapes], index: int, tail: int) -> int:
    """Channels leaving block ``index``: the next block's input width, or ``tail`` after the last one."""
    later = [i for i in blocks if i > index]
    return _in_channels(blocks[later[0]]) if later else tail


def _ratio(a: int, b: int, what: str) -> int:
    """``a / b`` for channel counts; :class:`CheckpointError` when it is not a whole number."""
    if b <= 0 or a % b:
        raise CheckpointError(f"Video VAE {what}: channel counts {a} and {b} do not fit any known block.")
    return a // b


def _infer_decoder(shapes: Shapes) -> tuple[list[BlockSpec], int, bool, bool]:
    """(decoder blocks in config order, base channels, timestep conditioning, LTX-2 layout) from the decoder's
    shapes; :class:`CheckpointError` for a block that fits no known kind."""
    blocks = _blocks(shapes, "decoder.up_blocks")
    tail = shapes["decoder.conv_out.conv.weight"][1]
    specs: list[BlockSpec] = []
    for i, block in blocks.items():
        c_in, c_out = _in_channels(block), _incoming(blocks, i, tail)
        if any(k.startswith("res_blocks.") for k in block):
            specs.append(_res_spec(block))
        elif "conv1.conv.weight" in block:
            specs.append(BlockSpec("res_x_y", multiplier=_ratio(c_in, c_out, "res_x_y"),
                                   inject_noise="per_channel_scale1" in block))
        elif "conv.conv.weight" in block:
            factor = _ratio(block["conv.conv.weight"][0], c_out, "upsampler")
            if factor not in _UP_KIND:
                raise CheckpointError(f"Video VAE decoder block {i}: upsampling factor {factor} is not 2, 4 or 8.")
            specs.append(BlockSpec(_UP_KIND[factor], multiplier=_ratio(c_in, c_out, "upsampler")))
        else:
            raise CheckpointError(f"Unrecognised video VAE decoder block {i}: {sorted(block)[:4]}.")
    ups = [s for s in specs if s.name in _UP_KIND.values()]
    ltx2 = bool(ups) and all(s.name == "compress_all" and s.multiplier == 2 for s in ups)
    if ltx2:
        specs = [BlockSpec(s.name, multiplier=2, residual=True) if s.name == "compress_all" else s for s in specs]
    base = _ratio(shapes["decoder.conv_in.conv.weight"][0], 8, "decoder conv_in")
    timestep = "decoder.last_time_embedder.timestep_embedder.linear_1.weight" in shapes
    return specs[::-1], base, timestep, ltx2


def _infer_encoder(shapes: Shapes) -> list[BlockSpec]:
    """Encoder blocks from the encoder's shapes; :class:`CheckpointError` for a block that fits no known kind."""
    blocks = _blocks(shapes, "encoder.down_blocks")
    tail = shapes["encoder.conv_out.conv.weight"][1]
    specs: list[BlockSpec] = []
    for i, block in blocks.items():
        c_in, c_out = _in_channels(block), _incoming(blocks, i, tail)
        if any(k.startswith("res_blocks.") for k in block):
            specs.append(_res_spec(block))
        elif "conv1.conv.weight" in block:
            specs.append(BlockSpec("res_x_y", multiplier=_ratio(c_out, c_in, "res_x_y")))
        elif "conv.conv.weight" in block:
            factor = _ratio(c_out, block["conv.conv.weight"][0], "downsampler")
            if factor not in _DOWN_KIND:
                raise CheckpointError(f"Video VAE encoder block {i}: downsampling factor {factor} is not 2, 4 or 8.")
            specs.append(BlockSpec(_DOWN_KIND[factor], multiplier=_ratio(c_out, c_in, "downsampler")))
        else:
            raise CheckpointError(f"Video VAE encoder block {i} is a plain strided conv whose stride is not visible "
                                  "in its shape; this file needs __metadata__['config'] with a 'vae' section.")
    return specs


def infer_video_vae(shapes: Shapes) -> VideoVAEConfig:
    """Config of the VAE whose tensors (names relative to the VAE: ``encoder.*``, ``decoder.*``,
    ``per_channel_statistics.*``) have ``shapes``. Either half may be absent. Latent channels and patch size come
    from ``conv_in`` / ``conv_out`` (``(C_out, C_in, kT, kH, kW)``, patch channels ``3 · p²``). ltx-core has no
    inference (``ltx_core.model.video_vae.model_configurator.VideoDecoderConfigurator`` reads the config).

    Raises:
        CheckpointError: no encoder or decoder, a convolution weight that is not 5-D, or a block, channel count or
            patch size that fits no known layout (the file then needs ``__metadata__["config"]["vae"]``).
    """
    bad = [k for k, v in shapes.items() if k.endswith("conv.weight") and (len(v) != 5 or min(v) < 1)]
    if bad:
        raise CheckpointError(f"Video VAE convolution '{bad[0]}' has shape {list(shapes[bad[0]])}, not a 3-D "
                              "convolution's (out, in, kT, kH, kW). The file is corrupt or not an LTX-2 video VAE.")
    has_enc = "encoder.conv_in.conv.weight" in shapes and "encoder.conv_out.conv.weight" in shapes
    has_dec = "decoder.conv_in.conv.weight" in shapes and "decoder.conv_out.conv.weight" in shapes
    if not (has_enc or has_dec):
        raise CheckpointError("No video VAE encoder or decoder found (expected 'encoder.conv_in.conv.weight' / "
                              "'decoder.conv_in.conv.weight').")
    norm = NormLayer.GROUP_NORM if any(k.endswith("norm1.weight") for k in shapes) else NormLayer.PIXEL_NORM
    kw: dict = {"norm_layer": norm, "encoder_padding": PaddingMode.ZEROS}
    if has_dec:
        dec, base, timestep, ltx2 = _infer_decoder(shapes)
        latent = shapes["decoder.conv_in.conv.weight"][1]
        patch_area = shapes["decoder.conv_out.conv.weight"][0]
        kw.update(decoder_blocks=tuple(dec), decoder_base_channels=base, timestep_conditioning=timestep,
                  decoder_padding=PaddingMode.REFLECT if ltx2 else PaddingMode.ZEROS)
    if has_enc:
        kw["encoder_blocks"] = tuple(_infer_encoder(shapes))
        patch_area = shapes["encoder.conv_in.conv.weight"][1]
        conv_out = shapes["encoder.conv_out.conv.weight"][0]
        latent = shapes["encoder.conv_in.conv.weight"][0]
        kw["latent_log_var"] = LogVariance.PER_CHANNEL if conv_out == 2 * latent else LogVariance.UNIFORM
        if conv_out not in (latent + 1, 2 * latent):
            raise CheckpointError(f"Video VAE encoder conv_out has {conv_out} channels for {latent} latent channels "
                                  "(expected latent+1 or 2·latent).")
    patch = math.isqrt(patch_area // 3)
    if 3 * patch * patch != patch_area:
        raise CheckpointError(f"Video VAE patch channels {patch_area} are not 3·p² (RGB patches).")
    return VideoVAEConfig(latent_channels=latent, patch_size=patch, **kw)
