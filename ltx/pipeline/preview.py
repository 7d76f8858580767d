"""Live preview: a cheap RGB picture of a video latent while it is being sampled — a linear map from the latent
channels to RGB, no VAE decode.

One latent cell stands for a ``cell × cell`` pixel patch (32×32 for the released video VAEs, which compress 32× in
height and width and 8× in time; the cell size is read off the VAE when the map is fitted, so a VAE with another
compression works too); the map predicts that patch's mean colour:
``rgb = W · latent + b`` with ``W`` ``(3, C)``, ``b`` ``(3,)``, RGB in ``[-1, 1]``. The map is **fitted on the
user's own video VAE** (:func:`fit_latent_preview`) rather than shipped as a table: a few synthetic colour images
(smooth random colour fields and solid colours) are encoded with ``video_vae.encode`` and each latent cell
``(C,)`` is paired with the mean RGB of its pixel patch; ridge least squares gives ``W`` and ``b``. The fit is
cached per VAE object (:func:`latent_preview_for`) and can be saved / loaded (:meth:`LatentPreview.save` /
:meth:`LatentPreview.load`).

The picture is one latent frame: the **middle** one (``F' // 2``) — the first latent frame is often the
conditioning image (image-to-video) and the last is the least settled, the middle one shows the motion being made.
Each latent cell becomes a ``scale × scale`` block of pixels (nearest neighbour).

What ComfyUI core calls ``Latent2RGBPreviewer`` (``latent_preview.py``) does the same with hand-fitted tables per
model; this port fits its own.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import CheckpointError, InputError
from .protocols import VideoVAEProtocol

#: pixels per latent cell of the released video VAEs (32× in height and width); a fit reads its VAE's own
CELL = 32
#: the preview's longer side is scaled (nearest neighbour, whole cells) to at least this many pixels by default
DEFAULT_LONG_SIDE = 256

#: ``preview(done, total, image)``: ``done`` of ``total`` sampling steps finished (over all stages of a run),
#: ``image`` the uint8 ``(H, W, 3)`` RGB preview of the current x0 (on the CPU)
PreviewHook = Callable[[int, int, torch.Tensor], None]


@dataclass(frozen=True)
class LatentPreview:
    """A fitted linear map latent channels → RGB: ``weight`` ``(3, C)``, ``bias`` ``(3,)`` (float32, CPU), RGB in
    ``[-1, 1]``; ``error`` is the fit's RMS error on its own samples (same units, for reports); ``cell`` the pixels
    per latent cell (a side) of the VAE it was fitted on: the picture is scaled up to at most that many pixels per
    cell."""

    weight: torch.Tensor
    bias: torch.Tensor
    error: float = float("nan")
    cell: int = CELL

    @property
    def channels(self) -> int:
        """Latent channels ``C`` the map expects."""
        return int(self.weight.shape[1])

    def rgb(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent ``(..., C, H', W')`` → RGB ``(..., 3, H', W')`` in ``[-1, 1]`` (not clamped), float32 on the
        latent's device.

        Raises:
            InputError: the latent's channel count is not :attr:`channels`.
        """
        if latent.ndim < 3 or latent.shape[-3] != self.channels:
            raise InputError(f"latent preview: expected {self.channels} latent channels (…, C, H, W), got "
                             f"{tuple(latent.shape)}; fit the preview on this model's video VAE.")
        w = self.weight.to(device=latent.device)
        b = self.bias.to(device=latent.device)
        return torch.einsum("oc,...chw->...ohw", w, latent.float()) + b[:, None, None]

    def image(self, latent: torch.Tensor, *, frame: int | None = None, scale: int | None = None) -> torch.Tensor:
        """Video latent ``(B, C, F', H', W')`` (normalised, as the transformer sees it) → uint8 RGB image
        ``(H'·scale, W'·scale, 3)`` on the CPU of batch item 0, latent frame ``frame`` (default: the middle one,
        ``F' // 2``). ``scale`` (pixels per latent cell) defaults to :func:`default_scale` (at most :attr:`cell`).

        Raises:
            InputError: not a 5-D latent, a frame outside it, or the wrong channel count.
        """
        if latent.ndim != 5:
            raise InputError(f"latent preview: expected a video latent (B, C, F', H', W'), got {tuple(latent.shape)}.")
        frames = latent.shape[2]
        frame = frames // 2 if frame is None else frame
        if not -frames <= frame < frames:
            raise InputError(f"latent preview: latent frame {frame} is outside the latent's {frames} frames.")
        return self._to_image(self.rgb(latent[0, :, frame]), scale, self.cell)

    def tokens_image(self, tokens: torch.Tensor, grid: tuple[int, int, int], *, scale: int | None = None
                     ) -> torch.Tensor:
        """Video tokens ``(B, T, C)`` of a latent grid ``(F', H', W')`` (``T ≥ F'·H'·W'``: guide tokens after the
        video's own are ignored) → the :meth:`image` of the middle latent frame, reading only that frame's tokens.

        Raises:
            InputError: fewer tokens than the grid, or the wrong channel count.
        """
        f, h, w = grid
        if tokens.ndim != 3 or tokens.shape[1] < f * h * w:
            raise InputError(f"latent preview: {tuple(tokens.shape)} tokens do not hold a {f}×{h}×{w} latent grid.")
        start = (f // 2) * h * w
        cells = tokens[0, start:start + h * w].transpose(0, 1).reshape(tokens.shape[2], h, w)
        return self._to_image(self.rgb(cells), scale, self.cell)

    @staticmethod
    def _to_image(rgb: torch.Tensor, scale: int | None, cell: int = CELL) -> torch.Tensor:
        """``(3, H', W')`` in ``[-1, 1]`` → uint8 ``(H'·s, W'·s, 3)`` on the CPU."""
        s = default_scale(rgb.shape[-2], rgb.shape[-1], cell) if scale is None else max(1, int(scale))
        pixels = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(device="cpu", dtype=torch.uint8)
        return pixels.repeat_interleave(s, 1).repeat_interleave(s, 2).permute(1, 2, 0).contiguous()

    def save(self, path: str | os.PathLike) -> Path:
        """Write the map as safetensors (``weight``, ``bias``; ``error`` and ``cell`` in the metadata), atomically.
        Returns the path.

        Raises:
            OSError: the file cannot be written.
        """
        from .output_file import save_safetensors

        return save_safetensors({"weight": self.weight.contiguous(), "bias": self.bias.contiguous()}, path,
                                metadata={"kind": "rs_ltxv.latent_preview", "error": repr(self.error),
                                          "cell": str(self.cell)})

    @staticmethod
    def load(path: str | os.PathLike) -> LatentPreview:
        """Read a map written by :meth:`save`.

        Raises:
            CheckpointError: the file is missing, unreadable or not a latent-preview map.
        """
        from safetensors import safe_open

        try:
            with safe_open(os.fspath(path), "pt") as f:
                meta = f.metadata() or {}
                weight, bias = f.get_tensor("weight").float(), f.get_tensor("bias").float()
        except Exception as exc:  # missing file, bad header, missing tensor: all "not a preview map"
            raise CheckpointError(f"{path}: not a latent-preview map ({exc}); fit it again with "
                                  "fit_latent_preview(video_vae) and save it.") from exc
        if weight.ndim != 2 or weight.shape[0] != 3 or tuple(bias.shape) != (3,):
            raise CheckpointError(f"{path}: latent-preview weight {tuple(weight.shape)} / bias {tuple(bias.shape)} "
                                  "are not (3, C) / (3,); fit it again.")
        try:
            cell = int(meta.get("cell", CELL))
        except ValueError:
            cell = CELL
        return LatentPreview(weight, bias, float(meta.get("error", "nan")), max(1, cell))


def default_scale(height: int, width: int, cell: int = CELL) -> int:
    """Pixels per latent cell so that the longer side reaches :data:`DEFAULT_LONG_SIDE`, but at most ``cell`` (the
    VAE's own pixels per cell, :data:`CELL` for the released ones): ``1 … cell``. A small video's preview stays at
    its own size (a 64-pixel video gives a 64-pixel preview)."""
    return max(1, min(cell, math.ceil(DEFAULT_LONG_SIDE / max(1, height, width))))


def synthetic_images(count: int = 8, size: int = 256, seed: int = 0) -> torch.Tensor:
    """The fit's inputs: ``count`` one-frame RGB images ``(count, 3, 1, size, size)`` in ``[-1, 1]`` (float32),
    ``size`` a multiple of :data:`CELL`. A quarter are solid colours, the rest smooth random colour fields (a coarse
    random colour grid, bilinearly enlarged), so neighbouring 32-pixel patches differ in colour but each is nearly
    flat."""
    gen = torch.Generator().manual_seed(seed)
    images = []
    for i in range(count):
        if i % 4 == 0:
            colour = torch.rand(3, 1, 1, generator=gen) * 2 - 1
            images.append(colour.expand(3, size, size))
            continue
        g = 2 + i % 5  # coarse grids of 2…6 colours a side
        coarse = torch.rand(1, 3, g, g, generator=gen) * 2 - 1
        images.append(F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=True)[0])
    return torch.stack(images).unsqueeze(2).contiguous()


def fit_latent_preview(video_vae: VideoVAEProtocol, *, images: torch.Tensor | None = None, ridge: float = 1e-3,
                       batch: int = 2) -> LatentPreview:
    """Fit the latent → RGB map of ``video_vae`` (anything with ``encode(pixels (B, 3, F, H, W) in [-1, 1]) ->
    latent (B, C, F', H/s, W/s)``): encode ``images`` (default :func:`synthetic_images`; ``(N, 3, 1, H, W)``, H and
    W multiples of 32), ``batch`` at a time, pair every latent cell with the mean RGB of its ``s × s`` patch and solve
    ridge least squares (``ridge`` relative to the mean diagonal of the normal matrix; the bias is not penalised),
    in float64 on the CPU. The cell size ``s`` is read off the first encoded latent (``H / H'``: 32 for the
    released VAEs, 8 for the tiny ComfyUI-compatible test file); the images have one frame, so only latent frame 0
    is used and the VAE's time compression does not enter the fit.

    Cost: one VAE encode of the images (8 one-frame 256² images by default; ~0.3 s for the tiny test VAE, ~22 s on
    2 CPU cores for an encoder of the released size, 347 M parameters) plus a ``(C + 1)²`` solve.

    Raises:
        InputError: images of the wrong shape, or a VAE whose latent is not a whole number of pixels per cell
            (the same in height and width) of them.
        CheckpointError: the VAE has no encoder (as its ``encode``).
    """
    images = synthetic_images() if images is None else images
    if images.ndim != 5 or images.shape[1] != 3 or images.shape[-1] % CELL or images.shape[-2] % CELL:
        raise InputError(f"latent preview fit: images must be (N, 3, F, H, W) with H and W multiples of {CELL}, "
                         f"got {tuple(images.shape)}.")
    xs, ys = [], []
    cell = 0
    with torch.inference_mode():
        for chunk in images.split(max(1, batch)):
            latent = video_vae.encode(chunk).float().cpu()  # (b, C, F', h, w)
            cell = cell or _cell_size(tuple(chunk.shape), tuple(latent.shape))
            target = F.avg_pool2d(chunk[:, :, 0].float(), cell)  # (b, 3, h, w): mean colour of each patch
            first = latent[:, :, 0]  # one-frame images: latent frame 0
            xs.append(first.permute(0, 2, 3, 1).reshape(-1, first.shape[1]))
            ys.append(target.permute(0, 2, 3, 1).reshape(-1, 3))
    x = torch.cat(xs).double()
    y = torch.cat(ys).double()
    n, c = x.shape
    xb = torch.cat([x, torch.ones(n, 1, dtype=x.dtype)], 1)
    gram = xb.T @ xb
    penalty = ridge * float(gram.diagonal()[:c].mean())
    reg = torch.diag(torch.cat([torch.full((c,), penalty, dtype=x.dtype), torch.zeros(1, dtype=x.dtype)]))
    solution = torch.linalg.solve(gram + reg, xb.T @ y)  # (C + 1, 3)
    error = float(((xb @ solution - y) ** 2).mean().sqrt())
    return LatentPreview(solution[:c].T.float().contiguous(), solution[c].float().contiguous(), error, cell)


def _cell_size(pixels: tuple[int, ...], latent: tuple[int, ...]) -> int:
    """Pixels per latent cell (a side) of a VAE that encoded ``pixels`` ``(b, 3, F, H, W)`` to ``latent``
    ``(b, C, F', H', W')``.

    Raises:
        InputError: not a 5-D latent of the same batch, or ``H / H'`` and ``W / W'`` are not the same whole number.
    """
    h, w = pixels[-2:]
    if len(latent) != 5 or latent[0] != pixels[0] or not latent[-2] or not latent[-1]:
        raise InputError(f"latent preview fit: the video VAE encoded {pixels} pixels to {latent}, not a video latent "
                         "(B, C, F', H', W').")
    cell = h // latent[-2]
    if cell < 1 or cell * latent[-2] != h or cell * latent[-1] != w:
        raise InputError(f"latent preview fit: the video VAE encoded {h}×{w} pixels to {latent[-2]}×{latent[-1]} "
                         "latent cells, not a whole number of pixels per cell.")
    return cell


_CACHE: dict[int, tuple[weakref.ref, LatentPreview]] = {}
_LOCK = threading.Lock()


def _weights_owner(video_vae: object) -> object:
    """The encoder's first weight tensor of a :class:`~.parts.VideoVAEAdapter` (``adapter.vae.encoder``), else
    ``video_vae`` itself."""
    encoder = getattr(getattr(video_vae, "vae", None), "encoder", None)
    first = next(encoder.parameters(), None) if isinstance(encoder, torch.nn.Module) else None
    return video_vae if first is None else first


def latent_preview_for(video_vae: VideoVAEProtocol) -> LatentPreview:
    """:func:`fit_latent_preview` of ``video_vae``, fitted once per encoder and kept while its weights live: keyed by
    the identity of the encoder's first weight tensor (a :class:`~.parts.VideoVAEAdapter`), so adapters rebuilt
    around the same weights — ComfyUI's VAE is wrapped anew on every run — share one fit; other objects are keyed by
    themselves (one that cannot be weakly referenced is fitted every time).

    Raises:
        as :func:`fit_latent_preview`.
    """
    owner = _weights_owner(video_vae)
    key = id(owner)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit[0]() is owner:
            return hit[1]
    preview = fit_latent_preview(video_vae)
    try:
        ref = weakref.ref(owner, lambda _r, k=key: _CACHE.pop(k, None))
    except TypeError:
        return preview
    with _LOCK:
        _CACHE[key] = (ref, preview)
    return preview


def png_writer(folder: str | os.PathLike) -> PreviewHook:
    """A ``preview(done, total, image)`` hook that writes each picture to ``folder/step_0001.png``, … (``done``
    numbered over all stages of a run, 4 digits), creating ``folder`` on the first write (PNG through PyAV:
    :func:`~.media.write_png`). Check the folder first with :func:`~.output_file.check_output_path`.

    Raises (when called):
        OSError: a file cannot be written.
    """
    from .media import write_png

    target = Path(folder)

    def write(done: int, _total: int, image: torch.Tensor) -> None:
        target.mkdir(parents=True, exist_ok=True)
        write_png(target / f"step_{done:04d}.png", image)

    return write
