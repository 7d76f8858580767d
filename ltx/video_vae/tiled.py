"""Tiled encode and decode. Working memory is bounded by one tile (plus, when decoding, one temporal tile's worth of
full-size frames for blending), not by the video length: decoded frames are handed out chunk by chunk as soon as no
later tile can touch them."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..errors import InputError
from .decoder import VideoDecoder
from .encoder import VideoEncoder
from .frames import check_latent_shape, check_video_shape, latent_frames, pixel_frames
from .tiling import AxisPlan, TilingConfig, auto_tiling, plan_axes, time_out_span


def _param(module: torch.nn.Module) -> torch.Tensor:
    return next(module.parameters())


def _window(plan: AxisPlan, i: int, device: torch.device, dtype: torch.dtype, axis: int) -> torch.Tensor:
    shape = [1, 1, 1, 1, 1]
    shape[axis] = -1
    return plan.weights[i].to(device=device, dtype=dtype).view(shape)


def _resolve(decoder_or_encoder: VideoDecoder | VideoEncoder, latent_shape: tuple[int, ...],
             tiling: TilingConfig | None, memory_budget: int | None) -> TilingConfig:
    if tiling is not None:
        return tiling
    if memory_budget is None:
        return TilingConfig()
    element = _param(decoder_or_encoder).element_size()
    return auto_tiling(decoder_or_encoder.config, latent_shape, memory_budget, element)


def iter_decode_tiled(decoder: VideoDecoder, latent: torch.Tensor, tiling: TilingConfig | None = None, *,
                      memory_budget: int | None = None, timestep: torch.Tensor | float | None = None,
                      generator: torch.Generator | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """Decode ``latent`` ``(B, C, F', H', W')`` tile by tile; yields ``(first_frame, frames)`` with ``frames``
    ``(B, 3, n, 32H', 32W')`` on the decoder's device/dtype, in order, covering ``1 + 8(F'−1)`` frames.

    ``tiling`` gives the tile sizes; without it ``memory_budget`` (bytes) picks them (:func:`auto_tiling`), and
    without either the defaults of :class:`TilingConfig` apply. Each tile is moved to the decoder's device/dtype.
    Units: ``first_frame`` and ``n`` are pixel frames. Mirrors
    ``ltx_core.model.video_vae.video_vae.VideoDecoder.tiled_decode`` (also a generator of temporal chunks), with
    per-axis normalised blend weights.

    Raises:
        InputError: ``latent`` is not ``(B, latent_channels, F', H', W')``, or ``tiling`` is invalid
            (:meth:`TilingConfig.validate`).
    """
    cfg = decoder.config
    check_latent_shape(tuple(latent.shape), cfg.latent_channels)
    tiling = _resolve(decoder, tuple(latent.shape), tiling, memory_budget)
    tp, sp = cfg.decoder_temporal_upsampling, cfg.decoder_spatial_upsampling
    t_plan, h_plan, w_plan = plan_axes(tuple(latent.shape), tiling, sp, tp, decode=True)
    ref = _param(decoder)
    batch, _, _, height, width = latent.shape
    out_shape = (batch, cfg.out_channels, 0, height * sp, width * sp)
    buffer = None
    for ti, (a, b) in enumerate(t_plan.spans):
        start, stop = time_out_span(a, b, tp)
        # The buffer holds frames [start, stop); frames carried over from the previous tile are its first ones.
        grown = torch.zeros((*out_shape[:2], stop - start, *out_shape[3:]), device=ref.device, dtype=ref.dtype)
        if buffer is not None:
            grown[:, :, : buffer.shape[2]] = buffer
        buffer = grown
        del grown
        wt = _window(t_plan, ti, ref.device, ref.dtype, 2)
        for hi, (y0, y1) in enumerate(h_plan.spans):
            wh = _window(h_plan, hi, ref.device, ref.dtype, 3)
            for wi, (x0, x1) in enumerate(w_plan.spans):
                tile = latent[:, :, a:b, y0:y1, x0:x1].to(device=ref.device, dtype=ref.dtype)
                decoded = decoder(tile, timestep, generator)
                del tile
                decoded.mul_(wt * wh * _window(w_plan, wi, ref.device, ref.dtype, 4))
                buffer[:, :, :, y0 * sp: y1 * sp, x0 * sp: x1 * sp] += decoded
                del decoded
        done = t_plan.spans[ti + 1][0] * tp if ti + 1 < len(t_plan.spans) else stop
        yield start, buffer[:, :, : done - start]
        buffer = buffer[:, :, done - start:].clone() if done < stop else None


def decode_tiled(decoder: VideoDecoder, latent: torch.Tensor, tiling: TilingConfig | None = None, *,
                 memory_budget: int | None = None, out: torch.Tensor | None = None,
                 timestep: torch.Tensor | float | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Tiled decode into ``out`` (allocated on the latent's device, decoder dtype, when None); see
    :func:`iter_decode_tiled`. Returns ``(B, 3, 1 + 8(F'−1), 32H', 32W')``.

    Mirrors ``ltx_core.model.video_vae.video_vae.VideoDecoder.tiled_decode`` with its chunks written into one
    tensor.

    Raises:
        InputError: ``out`` has the wrong shape, or as :func:`iter_decode_tiled`.
    """
    cfg = decoder.config
    batch, _, frames, height, width = latent.shape
    shape = (batch, cfg.out_channels, pixel_frames(frames, cfg.decoder_temporal_upsampling),
             height * cfg.decoder_spatial_upsampling, width * cfg.decoder_spatial_upsampling)
    if out is None:
        out = torch.empty(shape, device=latent.device, dtype=_param(decoder).dtype)
    elif tuple(out.shape) != shape:
        raise InputError(f"decode_tiled: `out` has shape {tuple(out.shape)}, the decoded video is {shape}.")
    for first, chunk in iter_decode_tiled(decoder, latent, tiling, memory_budget=memory_budget, timestep=timestep,
                                          generator=generator):
        out[:, :, first: first + chunk.shape[2]] = chunk
        del chunk  # do not keep the previous blend buffer alive while the next tile decodes
    return out


def encode_tiled(encoder: VideoEncoder, video: torch.Tensor, tiling: TilingConfig | None = None) -> torch.Tensor:
    """Encode ``video`` ``(B, 3, 1 + 8k, H, W)`` tile by tile (tiles in pixels/frames as in :class:`TilingConfig`,
    mapped to latent cells; temporal tiles are 1 + 8n-frame clips) and blend the latents. Returns
    ``(B, C, 1 + k, H/32, W/32)`` on the encoder's device/dtype.

    Mirrors ``ltx_core.model.video_vae.video_vae.VideoEncoder.tiled_encode``.

    Raises:
        InputError: ``video`` is not a valid ``(B, 3, 1 + 8k, 32h, 32w)`` clip, or ``tiling`` is invalid.
    """
    cfg = encoder.config
    tp, sp = cfg.temporal_compression, cfg.spatial_compression
    check_video_shape(tuple(video.shape), cfg.in_channels, tp, sp)
    batch, _, frames, height, width = video.shape
    latent_shape = (batch, cfg.latent_channels, latent_frames(frames, tp), height // sp, width // sp)
    t_plan, h_plan, w_plan = plan_axes(latent_shape, tiling or TilingConfig(), sp, tp, decode=False)
    ref = _param(encoder)
    out = torch.zeros(latent_shape, device=ref.device, dtype=ref.dtype)
    for ti, (a, b) in enumerate(t_plan.spans):
        f0, f1 = time_out_span(a, b, tp)
        wt = _window(t_plan, ti, ref.device, ref.dtype, 2)
        for hi, (y0, y1) in enumerate(h_plan.spans):
            wh = _window(h_plan, hi, ref.device, ref.dtype, 3)
            for wi, (x0, x1) in enumerate(w_plan.spans):
                clip = video[:, :, f0:f1, y0 * sp: y1 * sp, x0 * sp: x1 * sp].to(device=ref.device, dtype=ref.dtype)
                weight = wt * wh * _window(w_plan, wi, ref.device, ref.dtype, 4)
                out[:, :, a:b, y0:y1, x0:x1] += encoder(clip) * weight
    return out
