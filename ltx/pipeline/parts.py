"""Load every model part a generation needs and adapt it to :mod:`.protocols`.

One call from files to :class:`ModelParts`: the LTX checkpoint (transformer, text connectors, video VAE, audio VAE
and vocoder — the official single file has them all; ComfyUI split files can be given separately), the Gemma text
encoder (Hugging Face folder, ComfyUI single file or GGUF) and an optional latent upsampler.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..duration_head import DurationHead, predict_num_frames
from ..errors import InputError
from ..loading import LTXCheckpoint, load_prompt_encoder, load_transformer, open_checkpoint
from ..lora import LoraInput, LoraPatch, apply_loras, as_lora_spec
from ..offload import BlockOffload, check_offload_device
from ..text.processor import TextContexts
from ..transformer import LTXAVTransformer
from ..upsampler import LatentUpsampler, upsample_latent
from ..video_vae import TilingConfig, VideoVAE
from .defaults import model_defaults, model_has_duration_head
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
        from ..loading.upsampler import is_spatial_x2, spatial_x2_file, upsampler_kind

        cfg = getattr(self.upsampler, "cfg", None)  # core's upsampler objects carry no config: trusted as they are
        if cfg is not None and not is_spatial_x2(cfg):
            kind = upsampler_kind(cfg)
            raise InputError(f"The 2× upscale pass needs the spatial ×2 latent upsampler of the model "
                             f"({spatial_x2_file()}); this one is {kind}.")

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


def check_part_files(ckpt: LTXCheckpoint, *, text_encoder: str | os.PathLike | None = None,
                     upsampler: str | os.PathLike | None = None, duration_head: str | os.PathLike | None = None,
                     flags: bool = False) -> None:
    """Before any weight is read (headers only), that the files given for the parts fit the checkpoint: the text
    encoder is a Gemma, and the one the checkpoint's version needs (Gemma-3 for LTX-2 / 2.3, LTX's Gemma-4 for 2.5;
    :func:`check_text_encoder_file`); the upsampler is the spatial ×2 one the 2× pass runs; a duration head only goes
    with an LTX-2.5 checkpoint. With ``flags`` the messages name the command-line flags.

    Raises:
        InputError: an upsampler of another kind; a duration head with an LTX-2 / LTX-2.3 checkpoint.
        CheckpointError: a text encoder that is no Gemma or not the checkpoint's; a file that is no upsampler or
            unreadable.
    """
    from ..loading.upsampler import check_spatial_x2

    if text_encoder is not None:
        check_text_encoder_file(ckpt, text_encoder, "--text-encoder" if flags else "")
    if upsampler is not None:
        check_spatial_x2(upsampler, ckpt.version, "--upsampler" if flags else "")
    if duration_head is not None and not model_has_duration_head(ckpt.version):
        given = f"--duration-head {Path(duration_head).name}" if flags else f"duration_head={Path(duration_head).name}"
        frames = "--frames N" if flags else "Request(frames=N)"
        raise InputError(f"{given}: the duration head is LTX-2.5's; {ckpt.path.name} is an {ckpt.version.display} "
                         f"checkpoint, which has none. Give a number of frames ({frames}, 8k + 1, e.g. 121) and drop "
                         f"the duration head.")


def check_text_encoder_file(ckpt: LTXCheckpoint, text_encoder: str | os.PathLike, flag: str = "") -> None:
    """Headers only: ``text_encoder`` holds a Gemma text encoder, and the one ``ckpt`` needs (Gemma-3 for LTX-2 /
    2.3, LTX's Gemma-4 of the checkpoint's ``gemma_version`` for 2.5; ltx-core 1.2.0 ``_check_gemma_version``).
    A path that does not exist passes (the loaders say so). ``flag`` starts the messages (e.g. ``--text-encoder``).

    Raises:
        CheckpointError: the file holds something else (the message says what, and which Gemma to use), or the
            wrong Gemma for the checkpoint (:func:`~rs_ltxv.ltx.loading.gemma4_parts.check_text_encoder`).
    """
    from ..errors import CheckpointError
    from ..loading.gemma import open_gemma
    from ..loading.gemma4 import is_gemma4, open_gemma4
    from ..loading.gemma4_parts import GEMMA3_FILES, GEMMA4_FILES, check_text_encoder, needed_gemma

    path = Path(text_encoder)
    if not path.exists():
        return
    name = f"{flag} {path.name}" if flag else path.name
    if is_gemma4(path):
        check_text_encoder(ckpt, name, open_gemma4(path).config.gemma_version, gemma4=True)
        return
    try:
        open_gemma(path)  # the header: a Gemma-3 model (file, folder or GGUF)?
    except CheckpointError as exc:
        holds = _file_holds(path)
        if holds is None:  # a folder, GGUF, truncated or foreign format: the loader's own message says it
            raise
        needs4, _, what = needed_gemma(ckpt)
        wanted = f"LTX's Gemma-4 fine-tune: {GEMMA4_FILES}" if needs4 else f"Gemma-3 12B: {GEMMA3_FILES}"
        raise CheckpointError(f"{name} is not a Gemma text encoder: {holds}. {what} encodes prompts with "
                              f"{wanted}.") from exc
    check_text_encoder(ckpt, name, None, gemma4=False)


def _file_holds(path: Path) -> str | None:
    """What a readable ``.safetensors`` file holds, in words (:func:`~rs_ltxv.ltx.loading.upsampler.file_contents`);
    None for anything else."""
    from ..errors import CheckpointError
    from ..loading.safetensors_file import SafetensorsFile
    from ..loading.upsampler import file_contents

    if not (path.is_file() and path.suffix.lower() in (".safetensors", ".sft")):
        return None
    try:
        return file_contents(list(SafetensorsFile(path).tensors))
    except CheckpointError:
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
        InputError: ``upsampler`` is given but no video VAE is available (its statistics are needed), or is not the
            spatial ×2 upsampler; ``duration_head`` with an LTX-2 / LTX-2.3 checkpoint; a LoRA is missing, not a
            plain LoRA or made for another model; ``loras`` or ``offload`` with ``transformer``; ``offload`` to a CUDA
            device without CUDA; an unknown ``decoder`` or one the video VAE file lacks. The files' checks
            (:func:`check_part_files`) run before any weight is read.
        CheckpointError: a file is missing, truncated, not what its argument expects (e.g. a text encoder that is no
            Gemma, or not the one the checkpoint needs), or lacks tensors.
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
    check_part_files(ckpt, text_encoder=text_encoder, upsampler=upsampler, duration_head=duration_head)
    vae_source = video_vae or (checkpoint if "vae" in ckpt.components else components)
    if upsampler is not None and vae_source is None:
        raise InputError("The latent upsampler needs the video VAE's statistics; give a checkpoint with the VAE, or "
                         "video_vae= / components= with the video VAE file.")
    parts = ModelParts(transformer if transformer is not None else
                       load_transformer(ckpt, dtype=dtype, device="cpu" if offload else device))
    if specs:
        apply_loras(parts.transformer, specs)
    if offload:
        parts.offload = BlockOffload.attach(parts.transformer, device)
    vae_dtype = vae_dtype or dtype
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
    if upsampler is not None and parts.video_vae is not None:
        mean, std = vae_statistics(parts.video_vae.vae)
        parts.upsampler = UpsamplerAdapter(load_upsampler(upsampler, dtype=dtype, device=device), mean, std)
    head = duration_head_source(checkpoint, duration_head) if model_has_duration_head(ckpt.version) else None
    if head is not None:
        from ..loading.duration_head import load_duration_head

        parts.duration_head = DurationHeadAdapter(load_duration_head(head, dtype=torch.float32, device=device))
    parts.distilled = ckpt.is_distilled if distilled is None else distilled
    parts.device = torch.device(device)
    return parts
