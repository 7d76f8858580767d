"""LTX-2.5's diffusion video decoder: normalised latents ``(B, 128, F, H, W)`` → pixels
``(B, 3, 8(F−1)+1, 32H, 32W)`` in about [-1, 1], by one x0 step from seeded noise (released config).

Stages 1-4 (:meth:`DiffusionVideoDecoder.features`, :meth:`~DiffusionVideoDecoder.context`) turn the latent into a
context volume on the stage-5 token grid (one token per ``patch × patch`` pixels); stage 5
(:meth:`~DiffusionVideoDecoder.denoise`) denoises patchified pixel noise conditioned on it. The untiled decode
(:meth:`~DiffusionVideoDecoder.forward`) is the single-tile case of :mod:`.tiled`.
"""

from __future__ import annotations

import torch
from torch import nn

from ...errors import InputError
from ..frames import check_latent_shape
from ..ops import PerChannelStatistics, patchify, unpatchify
from .blocks import AdaLNZero, DiffusionNABlock, NABlock, PixelShuffleUpsample, TimestepMLP
from .config import DiffusionDecoderConfig


def pad_axis(x: torch.Tensor, dim: int, before: int, after: int) -> torch.Tensor:
    """Edge-replicate ``before`` / ``after`` slices of ``x`` along ``dim`` (any shape, e.g. ``(B, C, F, H, W)``).
    Mirrors ``ltx_core.model.video_vae.diffusion_tiling.resize_axis`` when it pads."""
    parts = []
    if before:
        parts.append(x.narrow(dim, 0, 1).expand(*x.shape[:dim], before, *x.shape[dim + 1:]))
    parts.append(x)
    if after:
        parts.append(x.narrow(dim, x.shape[dim] - 1, 1).expand(*x.shape[:dim], after, *x.shape[dim + 1:]))
    return torch.cat(parts, dim=dim) if len(parts) > 1 else x


class DiffusionVideoDecoder(nn.Module):
    """The decoder. Keys (official, after ``vae.decoder.`` / ``decoder.``; the statistics after ``vae.`` / none):
    ``conv_in``, ``det_stages.S.B`` (:class:`NABlock`), ``upsamples.S`` (:class:`PixelShuffleUpsample`),
    ``t_embedder`` (:class:`TimestepMLP`), ``conv_in_x_t``, ``shared_adaln`` (:class:`AdaLNZero`), ``diff_blocks.B``
    (:class:`DiffusionNABlock`), ``norm_out``, ``conv_out``, ``per_channel_statistics``.

    Mirrors ``ltx_core.model.video_vae.diffusion_video_decoder.DiffusionVideoDecoder`` (diffusers:
    ``diffusers.models.autoencoders.ltx2_diffusion_decoder.LTX2VideoDiffusionDecoder3d``, which takes
    un-normalised latents).
    """

    def __init__(self, config: DiffusionDecoderConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.per_channel_statistics = PerChannelStatistics(cfg.latent_channels)
        self.conv_in = nn.Linear(cfg.latent_channels, cfg.stage_channels[0])
        self.det_stages = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        for i, kernel in enumerate(cfg.stage_kernels):
            dim = cfg.stage_channels[i]
            self.det_stages.append(nn.ModuleList(NABlock(dim, kernel, cfg.head_dim, cfg.mlp_hidden(dim))
                                                 for _ in range(cfg.stage_depths[i])))
            self.upsamples.append(PixelShuffleUpsample(dim, cfg.upsample_strides[i], cfg.upsample_reductions[i]))
        c5, pixels = cfg.stage5_channels, cfg.out_channels * cfg.patch_size**2
        self.t_embedder = TimestepMLP(cfg.t_emb_dim)
        self.conv_in_x_t = nn.Linear(pixels, c5)
        self.shared_adaln = AdaLNZero(c5, cfg.t_emb_dim)
        self.diff_blocks = nn.ModuleList(
            DiffusionNABlock(c5, cfg.stage5_kernel, cfg.head_dim, cfg.mlp_hidden(c5), cfg.context_channels, cfg.gates)
            for _ in range(cfg.stage_depths[-1]))
        self.norm_out = nn.RMSNorm(c5, eps=1e-6)
        self.conv_out = nn.Linear(c5, pixels)

    # ------------------------------------------------------------------------------------------------ stages
    def features(self, latent: torch.Tensor, first: bool = True) -> torch.Tensor:
        """Stages 1-3 (all deterministic stages but the last) on normalised latents ``(B, C, F, H, W)`` (trailing
        pad frames included when the window reaches the video's end) → channels-last ``(B, T4, H4, W4, C4)`` on the
        stage-4 input grid. ``first``: the window starts at the video's first frame (the upsamples drop their
        duplicate first frame).

        Mirrors ``DiffusionVideoDecoder.forward_stages_1_to_3`` of ltx-core 1.2.0.
        """
        x = self.conv_in(self.per_channel_statistics.un_normalize(latent).permute(0, 2, 3, 4, 1))
        for blocks, upsample in zip(self.det_stages[:-1], self.upsamples[:-1], strict=True):
            for block in blocks:
                x = block(x)
            x = upsample(x, drop_first=first)
        return x

    def context(self, features: torch.Tensor, first: bool = True, trailing: bool = True) -> torch.Tensor:
        """The last deterministic stage on a (tile of the) stage-4 input ``(B, T4, H4, W4, C4)`` → context
        ``(B, T5, H5, W5, C_ctx)`` on the stage-5 token grid. ``first`` as in :meth:`features`; ``trailing``: the
        tile holds the video's end with its pad frames, whose outputs are cropped here (keeping at least stage 5's
        temporal window).

        Mirrors ``DiffusionVideoDecoder.forward_stage_4`` of ltx-core 1.2.0.
        """
        for block in self.det_stages[-1]:
            features = block(features)
        x = self.upsamples[-1](features, drop_first=first)
        if trailing and self.config.trailing_pad_frames:
            ghost = self.config.trailing_pad_frames * self.config.temporal_upsampling
            keep = min(x.shape[1], max(x.shape[1] - ghost, 1, self.config.stage5_kernel[0]))
            x = x[:, :keep]
        return x

    def predict(self, context: torch.Tensor, x_t: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """One stage-5 pass: noisy pixels ``x_t`` ``(B, 3, T5, p·H5, p·W5)`` at noise level ``sigma`` ``(B,)`` (0…1)
        with ``context`` ``(B, T5, H5, W5, C_ctx)`` → the model's prediction (x0 or velocity), same shape as
        ``x_t``.

        Mirrors ``DiffusionVideoDecoder.forward_diff_step`` of ltx-core 1.2.0 (diffusers:
        ``LTX2VideoDiffusionDecoder3d.forward_diffusion_step``).
        """
        cfg = self.config
        x = self.conv_in_x_t(patchify(x_t, cfg.patch_size).permute(0, 2, 3, 4, 1))
        modulation = self.shared_adaln(self.t_embedder(cfg.timestep_scale_multiplier * sigma.float(), x.dtype))
        for block in self.diff_blocks:
            x = block(x, context, modulation)
        x = self.conv_out(self.norm_out(x))
        return unpatchify(x.permute(0, 4, 1, 2, 3).contiguous(), cfg.patch_size)

    def denoise(self, context: torch.Tensor, noise: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """Pixels ``(B, 3, T5, p·H5, p·W5)`` from ``noise`` (same shape) in ``steps`` (default: the config's, 1 for
        the released model) Euler steps over σ = 1, 1 − 1/n, …, 1/n; an x0 model's last prediction is the output.

        Mirrors ``DiffusionVideoDecoder._decode_one_tile`` / ``_euler_step`` of ltx-core 1.2.0.

        Raises:
            InputError: ``steps`` < 1.
        """
        steps = self.config.num_inference_steps if steps is None else steps
        if steps < 1:
            raise InputError(f"The diffusion decoder needs at least 1 step, got {steps}.")
        batch = context.shape[0]
        sigmas = torch.linspace(1.0, 1.0 / steps, steps, dtype=torch.float32, device=context.device)
        x_t = noise
        for i in range(steps):
            sigma = sigmas[i].expand(batch)
            out = self.predict(context, x_t, sigma)
            last = i == steps - 1
            if last and self.config.model_output_type == "x0":
                return out
            if self.config.model_output_type == "v":
                velocity = out.float()
            else:  # x0 → velocity, ltx_core.utils.to_velocity
                velocity = (x_t.float() - out.float()) / sigmas[i].item()
            dt = sigmas[i] - (0.0 if last else sigmas[i + 1])
            x_t = (x_t.float() - dt * velocity).to(x_t.dtype)
        return x_t

    # ------------------------------------------------------------------------------------------------ decode
    def check_latent(self, latent: torch.Tensor) -> None:
        """Check a latent's shape ``(B, latent_channels, F, H, W)``.

        Raises:
            InputError: it is not of that shape.
        """
        check_latent_shape(tuple(latent.shape), self.config.latent_channels)

    def prepare(self, latent: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Normalised latents ``(B, C, F, H, W)`` → (the same on the decoder's device and dtype, edge-padded up to
        :attr:`~.config.DiffusionDecoderConfig.min_latent_size` (frames at the end, rows and columns on both sides,
        the extra one after) and followed by the trailing pad frames, ``(pad_frames, pad_rows, pad_columns)``).

        Mirrors ``diffusion_tiling.ensure_min_latent_shape`` + ``pad_trailing_latent_for_natten_border`` of
        ltx-core 1.2.0.

        Raises:
            InputError: ``latent`` is not ``(B, latent_channels, F, H, W)``.
        """
        self.check_latent(latent)
        ref = next(self.parameters())
        mins, (_b, _c, f, h, w) = self.config.min_latent_size, latent.shape
        pads = (max(0, mins[0] - f), max(0, mins[1] - h), max(0, mins[2] - w))
        x = latent.to(device=ref.device, dtype=ref.dtype)
        x = pad_axis(x, 2, 0, pads[0] + self.config.trailing_pad_frames)
        x = pad_axis(x, 3, pads[1] // 2, pads[1] - pads[1] // 2)
        return pad_axis(x, 4, pads[2] // 2, pads[2] - pads[2] // 2), pads

    def start_noise(self, latent_shape: tuple[int, ...], generator: torch.Generator | None = None,
                    noise: torch.Tensor | None = None) -> torch.Tensor:
        """The stage-5 starting noise ``(B, 3, T5, H5, W5)`` of :func:`decode_noise_shape` for latents of
        ``latent_shape``: ``noise`` checked, or ``torch.randn`` from ``generator`` on the generator's device (the
        decoder's without one) in the decoder's dtype, as ltx-core 1.2.0 and diffusers 0.42.1 draw it.

        Raises:
            InputError: ``noise`` has another shape.
        """
        shape = decode_noise_shape(self.config, latent_shape)
        ref = next(self.parameters())
        if noise is None:
            device = generator.device if generator is not None else ref.device
            return torch.randn(shape, generator=generator, dtype=ref.dtype, device=device)
        if tuple(noise.shape) != shape:
            raise InputError(f"Diffusion decoder noise must have shape {shape} for latents {tuple(latent_shape)}; "
                             f"got {tuple(noise.shape)}.")
        return noise

    def crop(self, pixels: torch.Tensor, latent_shape: tuple[int, ...], pads: tuple[int, int, int]) -> torch.Tensor:
        """Cut decoded pixels ``(B, 3, T, H', W')`` of a padded latent back to the latent's own video
        ``(B, 3, 8(F−1)+1, 32H, 32W)`` (``pads`` from :meth:`prepare`)."""
        _b, _c, f, h, w = latent_shape
        px = self.config.spatial_upsampling
        y0, x0 = pads[1] // 2 * px, pads[2] // 2 * px
        return pixels[:, :, :1 + self.config.temporal_upsampling * (f - 1), y0:y0 + h * px, x0:x0 + w * px]

    def forward(self, latent: torch.Tensor, generator: torch.Generator | None = None, *,
                noise: torch.Tensor | None = None, steps: int | None = None) -> torch.Tensor:
        """Decode normalised latents ``(B, C, F, H, W)`` → pixels ``(B, 3, 8(F−1)+1, 32H, 32W)`` (released
        strides) in the decoder's dtype and device, untiled.

        ``noise`` (:meth:`start_noise`) defaults to a draw from ``generator``; ``steps`` overrides the config's
        step count. Units: latent frames in, pixel frames out. Mirrors ``DiffusionVideoDecoder.forward`` of
        ltx-core 1.2.0 (diffusers: ``LTX2VideoDiffusionDecoderModel.decode`` without tiling, which also skips the
        padding of latents smaller than the windows).

        Raises:
            InputError: ``latent`` is not ``(B, latent_channels, F, H, W)``, ``noise`` has the wrong shape, or
                ``steps`` < 1.
        """
        x, pads = self.prepare(latent)
        start = self.start_noise(tuple(latent.shape), generator, noise)
        context = self.context(self.features(x))
        pixels = self.denoise(context, start.to(context.device), steps)
        return self.crop(pixels, tuple(latent.shape), pads)


def frames_after(frames: int, strides: list[int] | tuple[int, ...]) -> int:
    """Frames after temporal upsamples that drop their duplicate first frame (stride 2: ``2F − 1``). Also the
    stage-4-input index of the first output of a window starting at latent frame ``frames`` > 0."""
    for s in strides:
        frames = s * frames - (1 if s == 2 else 0)
    return frames


def decode_noise_shape(config: DiffusionDecoderConfig, latent_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape ``(B, 3, T5, H5, W5)`` of the stage-5 starting noise for latents ``(B, C, F, H, W)``: the untiled
    decode's pixel canvas, ``(B, 3, 8(F−1)+1, 32H, 32W)`` for latents at least
    :attr:`~.config.DiffusionDecoderConfig.min_latent_size` (smaller ones are edge-padded up to it first; a clip
    shorter than stage 5's temporal window keeps that many frames)."""
    batch, _c, f, h, w = latent_shape
    mins = config.min_latent_size
    f, h, w = max(f, mins[0]), max(h, mins[1]), max(w, mins[2])
    frames = frames_after(f, [s[0] for s in config.upsample_strides])
    frames = max(frames, min(config.stage5_kernel[0], frames + config.trailing_pad_frames * config.temporal_upsampling))
    px = config.spatial_upsampling
    return (batch, config.out_channels, frames, h * px, w * px)
