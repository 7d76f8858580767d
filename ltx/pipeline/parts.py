"""Load every model part a generation needs and adapt it to :mod:`.protocols`.

One call from files to :class:`ModelParts`: the LTX checkpoint (transformer, text connectors, video VAE, audio VAE
and vocoder — the official single file has them all; ComfyUI split files can be given separately), the Gemma text
encoder (Hugging Face folder, ComfyUI single file or GGUF) and an optional latent upsampler.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..duration_head import DurationHead, predict_num_frames
from ..errors import InputError
from ..loading import load_prompt_encoder, load_transformer, open_checkpoint
from ..lora import LoraInput, LoraPatch, apply_loras, as_lora_spec
from ..offload import BlockOffload, check_offload_device
from ..text.processor import TextContexts
from ..transformer import LTXAVTransformer
from ..upsampler import LatentUpsampler, upsample_latent
from ..video_vae import TilingConfig, VideoVAE
from .defaults import model_defaults
from .protocols import ModelParts

DEFAULT_TILING = TilingConfig()  # 512 px / 64 px overlap spatial, 64 frames / 24 overlap temporal


@dataclass
class VideoVAEAdapter:
    """:class:`VideoVAE` as a :class:`~.protocols.VideoVAEProtocol`, decoding with tiles (``tiling`` None = untiled).
    With LTX-2.5's diffusion decoder the decode's pixel noise is drawn from a generator seeded with ``seed`` (on the
    decoder's device), so a decode is reproducible."""

    vae: VideoVAE
    tiling: TilingConfig | None = None
    memory_budget: int | None = None
    seed: int = 0

    def _cast(self, x: torch.Tensor, part: str) -> torch.Tensor:
        param = next(self.vae._need(part).parameters())  # CheckpointError when the file had no such part
        return x.to(device=param.device, dtype=param.dtype)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels ``(B, 3, F, H, W)`` in ``[-1, 1]`` (F = 8k+1), cast to the encoder's device and dtype → normalised
        latent ``(B, 128, 1 + (F − 1)/8, H/32, W/32)``, untiled (:meth:`VideoVAE.encode`)."""
        return self.vae.encode(self._cast(pixels, "encoder"))

    @property
    def decoder_kind(self) -> str:
        """``diffusion`` (LTX-2.5's diffusion decoder) or ``vae`` (the convolutional one)."""
        from ..video_vae.diffusion import DiffusionVideoDecoder

        return "diffusion" if isinstance(self.vae.decoder, DiffusionVideoDecoder) else "vae"

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalised latent ``(B, 128, F', H', W')``, cast to the decoder's device and dtype → pixels
        ``(B, 3, 1 + 8(F' − 1), 32H', 32W')`` in ``[-1, 1]``, tiled by ``tiling`` / ``memory_budget`` (bytes)
        (:meth:`VideoVAE.decode`; the diffusion decoder's noise from ``seed``)."""
        latent = self._cast(latent, "decoder")
        generator = None
        if self.decoder_kind == "diffusion":
            generator = torch.Generator(device=latent.device).manual_seed(self.seed)
        return self.vae.decode(latent, self.tiling, memory_budget=self.memory_budget, generator=generator)


@dataclass
class UpsamplerAdapter:
    """:class:`LatentUpsampler` as a :class:`~.protocols.LatentUpsamplerProtocol`: un-normalise with the video VAE's
    statistics → upsampler → normalise (``mean``/``std`` ``(C,)``). The 2× pass expects the spatial ×2 upsampler:
    normalised ``(B, C, F, H, W)`` → ``(B, C, F, 2H, 2W)``. Mirrors
    ``ltx_core.model.upsampler.model.upsample_video``."""

    upsampler: LatentUpsampler
    mean: torch.Tensor
    std: torch.Tensor

    def __post_init__(self) -> None:
        cfg = getattr(self.upsampler, "cfg", None)  # core's upsampler objects carry no config: trusted as they are
        if cfg is not None and not (cfg.spatial_upsample and not cfg.temporal_upsample and cfg.spatial_scale == 2.0):
            kind = "temporal ×2" if cfg.temporal_upsample and not cfg.spatial_upsample else (
                f"spatial ×{cfg.spatial_scale:g}" + (" + temporal" if cfg.temporal_upsample else ""))
            raise InputError(f"The 2× upscale pass needs the spatial ×2 latent upsampler "
                             f"(e.g. ltx-2.3-spatial-upscaler-x2-1.0.safetensors); this one is {kind}.")

    def __call__(self, latent: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return upsample_latent(latent, self.upsampler, self.mean, self.std)


@dataclass
class DurationHeadAdapter:
    """The LTX-2.5 :class:`~rs_ltxv.ltx.duration_head.DurationHead` as a
    :class:`~.protocols.DurationPredictorProtocol`: the prompt's contexts → pixel frames (8k + 1)."""

    head: DurationHead

    def __call__(self, contexts: TextContexts, fps: float, min_seconds: float, max_seconds: float) -> int:
        """Contexts video ``(1, S, D_v)`` / audio ``(1, S, D_a)`` (cast to the head's device and dtype) → pixel frames
        at ``fps`` frames per second within ``[min_seconds, max_seconds]``
        (:func:`~rs_ltxv.ltx.duration_head.predict_num_frames`)."""
        param = next(self.head.parameters())
        video, audio = (c.to(device=param.device, dtype=param.dtype) for c in (contexts.video, contexts.audio))
        with torch.inference_mode():
            return predict_num_frames(self.head, video, audio, frame_rate=fps, min_seconds=min_seconds,
                                      max_seconds=max_seconds)


def duration_head_source(checkpoint: str | os.PathLike, duration_head: str | os.PathLike | None = None
                         ) -> str | os.PathLike | None:
    """Where the duration head comes from: ``duration_head`` when given, else ``checkpoint`` when it is a
    ``.safetensors`` file holding ``duration_head.*`` tensors (header only), else None.

    Raises:
        CheckpointError: ``duration_head`` is given but holds no duration head, or a file is unreadable.
    """
    from ..loading.duration_head import has_duration_head

    if duration_head is not None:
        if not has_duration_head(duration_head):
            from ..errors import CheckpointError

            raise CheckpointError(f"{os.path.basename(duration_head)} holds no duration head (no duration_head.* "
                                  "tensors); give ltx-2.5-duration-head-bf16.safetensors.")
        return duration_head
    if str(checkpoint).lower().endswith((".safetensors", ".sft")) and has_duration_head(checkpoint):
        return checkpoint
    return None


def vae_statistics(vae: VideoVAE) -> tuple[torch.Tensor, torch.Tensor]:
    """The video VAE's per-channel ``mean-of-means`` / ``std-of-means`` ``(C,)`` (for :class:`UpsamplerAdapter`)."""
    part = vae.encoder if vae.encoder is not None else vae.decoder
    stats = part.per_channel_statistics
    return stats.get_buffer("mean-of-means"), stats.get_buffer("std-of-means")


def load_video_vae_with_decoder(source: str | os.PathLike, decoder: str = "auto", preferred: str = "vae", *,
                                dtype: torch.dtype = torch.bfloat16, device: torch.device | str = "cpu",
                                tiling: TilingConfig | None = DEFAULT_TILING) -> VideoVAEAdapter:
    """The video VAE of ``source`` (encoder and the chosen decoder) as a :class:`VideoVAEAdapter`: ``decoder``
    ``vae`` = the convolutional decoder, ``diffusion`` = LTX-2.5's diffusion decoder (with :data:`DEFAULT_TILING`
    its own default tiles), ``auto`` = ``preferred`` when the file holds it, else the one it holds
    (:func:`~.decoders.choose_decoder`).

    Raises:
        InputError: an unknown ``decoder``, or one the file does not hold (the message names the file to use).
        CheckpointError: the file is missing, unreadable or holds no video VAE.
    """
    from ..loading.video_vae import load_video_vae
    from .decoders import choose_decoder

    choice = choose_decoder(source, decoder, preferred)
    if choice == "diffusion" and tiling == DEFAULT_TILING:  # the diffusion decoder's own tiles (wider overlaps)
        from ..video_vae.diffusion import DEFAULT_DIFFUSION_TILING

        tiling = DEFAULT_DIFFUSION_TILING
    return VideoVAEAdapter(load_video_vae(source, dtype=dtype, device=device, decoder=choice), tiling)


def load_model_parts(
    checkpoint: str | os.PathLike,
    *,
    text_encoder: str | os.PathLike | None = None,
    upsampler: str | os.PathLike | None = None,
    video_vae: str | os.PathLike | None = None,
    audio_vae: str | os.PathLike | None = None,
    vocoder: str | os.PathLike | None = None,
    components: str | os.PathLike | None = None,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
    vae_dtype: torch.dtype | None = None,
    tiling: TilingConfig | None = DEFAULT_TILING,
    distilled: bool | None = None,
    transformer: LTXAVTransformer | None = None,
    loras: Sequence[LoraInput] = (),
    offload: bool = False,
    decoder: str = "auto",
    duration_head: str | os.PathLike | None = None,
) -> ModelParts:
    """Load the transformer and whatever else is available.

    Args:
        checkpoint: official single file (everything inside) or a transformer-only file.
        text_encoder: Gemma-3 (folder, single file or .gguf); its text connectors come from ``checkpoint``.
        upsampler: a latent upsampler file (needed for the 2× upscale pass).
        video_vae / audio_vae / vocoder: separate files when ``checkpoint`` lacks ``vae.*`` / ``audio_vae.*`` /
            ``vocoder.*`` tensors (GGUF and ComfyUI split files hold only the transformer).
        components: one file with the VAEs and vocoder (e.g. the official single file), used for each of them that
            neither its own argument nor ``checkpoint`` provides.
        vae_dtype: dtype of the VAEs (default: ``dtype``; the audio VAE and vocoder always run in float32).
        distilled: whether the checkpoint is distilled (picks the 8-step schedule); default: from its name or
            ``model_version`` metadata.
        transformer: use this transformer instead of loading the checkpoint's (e.g. one without weights on the
            meta device when the stages run on workers that load it themselves, ``rs_ltxv.distributed``).
        loras: LoRAs applied to the transformer this call loads, in order, right after it loads (``LoraSpec(path,
            strength)``, ``(path, strength)`` or ready ``LoraPatch`` es; :func:`~rs_ltxv.ltx.lora.apply_loras`). Not
            with ``transformer`` (apply them to yours, or put them in the workers' ``LoadRecipe``).
        offload: keep the transformer's blocks in (pinned) CPU memory and stream them to ``device`` one block at a
            time, the next one prefetched (:class:`~rs_ltxv.ltx.offload.BlockOffload`, ``ModelParts.offload``): at
            most two blocks' weights on the device besides the small non-block ones; same outputs. Not with
            ``transformer``.
        decoder: the video decoder: ``vae`` (convolutional), ``diffusion`` (LTX-2.5's diffusion decoder) or ``auto``
            (the model's preferred one among those the video VAE file holds: diffusion for LTX-2.5).
        duration_head: the LTX-2.5 duration head file (``ltx-2.5-duration-head-bf16.safetensors``) that
            ``Request(frames=0)`` needs; default: the checkpoint's own ``duration_head.*`` tensors when it has them.

    Plays the part of ``ltx_pipelines.utils.model_ledger.ModelLedger`` (which loads each part when asked).

    Raises:
        InputError: ``upsampler`` is given but no video VAE is available (its statistics are needed); a LoRA is
            missing, not a plain LoRA or made for another model; ``loras`` or ``offload`` with ``transformer``;
            ``offload`` to a CUDA device without CUDA; an unknown ``decoder`` or one the video VAE file lacks.
        CheckpointError: a file is missing, truncated, not what its argument expects, or lacks tensors.
        ConfigError: Gemma and the checkpoint's text projection do not fit together.
    """
    from ..loading.audio import load_audio_vae, load_vocoder
    from ..loading.upsampler import load_upsampler

    if offload and transformer is not None:
        raise InputError("load_model_parts: offload=True streams the transformer this call loads; with transformer= "
                         "attach rs_ltxv.ltx.offload.BlockOffload to yours instead.")
    if offload:
        check_offload_device(device)
    if loras and transformer is not None:
        raise InputError("load_model_parts: loras= patch the transformer this call loads; with transformer= apply "
                         "them yourself (rs_ltxv.ltx.lora.apply_loras) or give them to the workers' LoadRecipe.")
    specs = [item if isinstance(item, LoraPatch) else as_lora_spec(item) for item in loras]  # before any loading
    ckpt = open_checkpoint(checkpoint)
    parts = ModelParts(transformer if transformer is not None else
                       load_transformer(ckpt, dtype=dtype, device="cpu" if offload else device))
    if specs:
        apply_loras(parts.transformer, specs)
    if offload:
        parts.offload = BlockOffload.attach(parts.transformer, device)
    vae_dtype = vae_dtype or dtype
    vae_source = video_vae or (checkpoint if "vae" in ckpt.components else components)
    if vae_source is not None:
        preferred = model_defaults(parts.transformer.config.version, ckpt.is_distilled).decoder
        parts.video_vae = load_video_vae_with_decoder(vae_source, decoder, preferred, dtype=vae_dtype, device=device,
                                                      tiling=tiling)
    audio_source = audio_vae or (checkpoint if "audio_vae" in ckpt.components else components)
    if audio_source is not None:
        parts.audio_vae = load_audio_vae(audio_source, dtype=torch.float32, device=device)
        if parts.audio_vae.vocoder is None and (vocoder or components) is not None:
            parts.audio_vae.vocoder = load_vocoder(vocoder or components, dtype=torch.float32, device=device)
    if text_encoder is not None:
        parts.prompt_encoder = load_prompt_encoder(text_encoder, ckpt, dtype=dtype, device=device)
    if upsampler is not None:
        if parts.video_vae is None:
            raise InputError("The latent upsampler needs the video VAE's statistics; give a checkpoint with the VAE.")
        mean, std = vae_statistics(parts.video_vae.vae)
        parts.upsampler = UpsamplerAdapter(load_upsampler(upsampler, dtype=dtype, device=device), mean, std)
    head = duration_head_source(checkpoint, duration_head)
    if head is not None:
        from ..loading.duration_head import load_duration_head

        parts.duration_head = DurationHeadAdapter(load_duration_head(head, dtype=torch.float32, device=device))
    parts.distilled = ckpt.is_distilled if distilled is None else distilled
    parts.device = torch.device(device)
    return parts
