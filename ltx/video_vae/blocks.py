"""Block kind → module, for the encoder and the decoder (one table each). Each builder takes the block spec and
the incoming channel count and returns ``(module, outgoing channels)``. The tables replace the ``if`` chains of
``ltx_core.model.video_vae.video_vae._make_encoder_block`` / ``_make_decoder_block``."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .config import STRIDES, BlockSpec, NormLayer, PaddingMode
from .ops import CausalConv3d
from .resnet import ResBlocks, ResnetBlock3D
from .sampling import DepthToSpaceUpsample, SpaceToDepthDownsample

Builder = Callable[[BlockSpec, int, NormLayer, PaddingMode, bool], tuple[nn.Module, int]]


def _stride(spec: BlockSpec) -> tuple[int, int, int]:
    t, s = STRIDES[spec.name]
    return (t, s, s)


def _mult(spec: BlockSpec, default: int) -> int:
    return default if spec.multiplier is None else int(spec.multiplier)


def _enc_res(spec: BlockSpec, c: int, norm: NormLayer, pad: PaddingMode, _tc: bool) -> tuple[nn.Module, int]:
    return ResBlocks(c, spec.num_layers, norm, pad), c


def _enc_res_xy(spec: BlockSpec, c: int, norm: NormLayer, pad: PaddingMode, _tc: bool) -> tuple[nn.Module, int]:
    out = c * _mult(spec, 2)
    return ResnetBlock3D(c, out, norm, pad), out


def _enc_strided(spec: BlockSpec, c: int, _norm: NormLayer, pad: PaddingMode, _tc: bool) -> tuple[nn.Module, int]:
    out = c * _mult(spec, 2) if spec.name == "compress_all_x_y" else c
    return CausalConv3d(c, out, pad, stride=_stride(spec)), out


def _enc_s2d(spec: BlockSpec, c: int, _norm: NormLayer, pad: PaddingMode, _tc: bool) -> tuple[nn.Module, int]:
    out = c * _mult(spec, 2)
    return SpaceToDepthDownsample(c, out, _stride(spec), pad), out


ENCODER_BUILDERS: dict[str, Builder] = {
    "res_x": _enc_res, "res_x_y": _enc_res_xy,
    "compress_time": _enc_strided, "compress_space": _enc_strided, "compress_all": _enc_strided,
    "compress_all_x_y": _enc_strided,
    "compress_time_res": _enc_s2d, "compress_space_res": _enc_s2d, "compress_all_res": _enc_s2d,
}


def _dec_res(spec: BlockSpec, c: int, norm: NormLayer, pad: PaddingMode, tc: bool) -> tuple[nn.Module, int]:
    return ResBlocks(c, spec.num_layers, norm, pad, inject_noise=spec.inject_noise, timestep_conditioning=tc), c


def _dec_res_xy(spec: BlockSpec, c: int, norm: NormLayer, pad: PaddingMode, _tc: bool) -> tuple[nn.Module, int]:
    out = c // _mult(spec, 2)
    return ResnetBlock3D(c, out, norm, pad, inject_noise=spec.inject_noise), out


def _dec_d2s(spec: BlockSpec, c: int, _norm: NormLayer, pad: PaddingMode, _tc: bool) -> tuple[nn.Module, int]:
    reduction = _mult(spec, 1)
    # ltx-core reads `residual` for compress_all only.
    residual = spec.residual and spec.name == "compress_all"
    return DepthToSpaceUpsample(c, _stride(spec), pad, residual=residual, reduction=reduction), c // reduction


DECODER_BUILDERS: dict[str, Builder] = {
    "res_x": _dec_res, "res_x_y": _dec_res_xy,
    "compress_time": _dec_d2s, "compress_space": _dec_d2s, "compress_all": _dec_d2s,
}
