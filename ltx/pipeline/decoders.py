"""Which video decoder a VAE file holds, and which one a run uses (``decoder``: ``auto`` | ``vae`` | ``diffusion``).

A video VAE file holds one decoder: the convolutional one (LTX-2 / 2.3 files, ``ltx-2.5-video-vae-conv-bf16``) or
LTX-2.5's diffusion decoder (``ltx-2.5-video-vae-bf16``: ``decoder.det_stages.*`` / ``diff_blocks.*`` tensors, its
``config["vae"]`` naming ``CausalDiffusionVAE``; ltx-core 1.2.0 ``model_configurator.is_diffusion_video_vae``). Both
come with the same convolutional encoder, which encodes guide images and fits the live preview.
:func:`~rs_ltxv.ltx.loading.video_vae.load_video_vae` loads either; :class:`~.parts.VideoVAEAdapter` decodes with
either (the diffusion decoder in its own tiles, :data:`~rs_ltxv.ltx.video_vae.diffusion.DEFAULT_DIFFUSION_TILING`).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError, InputError
from .defaults import DECODERS

#: a file to point at when a decoder is missing
DECODER_FILES = {"vae": "ltx-2.5-video-vae-conv-bf16.safetensors, or LTX-2.3's video VAE: LTX-2.5 keeps its latent "
                        "space",
                 "diffusion": "ltx-2.5-video-vae-bf16.safetensors"}


def decoders_in(source: str | os.PathLike) -> tuple[str, ...]:
    """The decoders the video VAE file ``source`` holds: ``("diffusion",)``, ``("vae",)`` or ``()`` (reads the header
    only; a GGUF file holds none).

    Raises:
        CheckpointError: the file is missing or unreadable.
    """
    from ..loading.checkpoint import open_file
    from ..loading.diffusion_decoder import diffusion_decoder_prefix

    path = Path(source)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such video VAE file.")
    if path.suffix.lower() == ".gguf":
        return ()
    keys = list(open_file(path).tensors)
    if diffusion_decoder_prefix(keys) is not None:
        return ("diffusion",)
    conv = any(k.startswith(("vae.decoder.", "decoder.")) for k in keys)
    return ("vae",) if conv else ()


def choose_decoder(source: str | os.PathLike, decoder: str = "auto", preferred: str = "vae") -> str:
    """The decoder a run uses from the video VAE file ``source`` (header only): ``decoder`` itself (``vae`` or
    ``diffusion``), or for ``auto`` ``preferred`` when the file holds it, else the one it holds.

    Raises:
        InputError: an unknown ``decoder``, or one the file does not hold (the message names the file to use).
        CheckpointError: the file is missing or unreadable.
    """
    if decoder not in DECODERS:
        raise InputError(f"Unknown decoder {decoder!r}; choose one of: {', '.join(DECODERS)}.")
    have = decoders_in(source)
    if not have and decoder == "auto":
        return "vae"  # an encoder-only file: fine for image guides; decoding says what is missing
    choice = decoder if decoder != "auto" else (preferred if preferred in have else next(iter(have), "vae"))
    if choice not in have:
        holds = f"only the {' and '.join(sorted(have))} decoder" if have else "no video decoder"
        raise InputError(f"decoder {choice!r}: {Path(source).name} holds {holds}. Use decoder "
                         f"{next(iter(have), 'auto')!r} or a file with the {choice} decoder ({DECODER_FILES[choice]}).")
    return choice
