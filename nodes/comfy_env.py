"""The few ComfyUI services the nodes use — model folders, device, memory, progress bar with previews, interrupt —
each imported lazily, so this package imports (and its specs and conversions are testable) without ComfyUI.

Only long-lived ComfyUI names are used: ``folder_paths.get_filename_list / get_folder_paths / get_full_path``,
``comfy.utils.ProgressBar``, ``comfy.cli_args.args.{preview_method, preview_size}``, ``comfy.model_management.{
get_torch_device, throw_exception_if_processing_interrupted, unload_all_models, soft_empty_cache, should_use_bf16,
unet_offload_device, load_models_gpu, get_free_memory}``.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from ..ltx.errors import CheckpointError

EXTENSIONS = (".safetensors", ".sft", ".gguf")


def _folder_paths():
    import folder_paths

    return folder_paths


def _mm():
    import comfy.model_management as mm

    return mm


def _roots(folder: str) -> list[str]:
    try:
        return list(_folder_paths().get_folder_paths(folder))
    except Exception:  # a folder name this ComfyUI does not know (e.g. "unet" on versions without the alias)
        return []


def list_models(folders: Iterable[str], with_dirs: bool = False) -> list[str]:
    """Relative names of model files (``.safetensors``, ``.gguf``) in ComfyUI's ``folders``, and with ``with_dirs``
    Hugging Face folders (a directory holding ``config.json``). Sorted, without duplicates."""
    names: set[str] = set()
    for folder in folders:
        for root in _roots(folder):
            if not os.path.isdir(root):
                continue
            for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
                rel = os.path.relpath(dirpath, root)
                if with_dirs and rel != "." and "config.json" in filenames:
                    names.add(rel.replace(os.sep, "/"))
                    dirnames.clear()
                    continue
                for f in filenames:
                    if f.lower().endswith(EXTENSIONS):
                        names.add(f if rel == "." else f"{rel}/{f}".replace(os.sep, "/"))
    return sorted(names)


def model_path(folders: Iterable[str], name: str) -> Path:
    """The full path of ``name`` (a value from :func:`list_models`) — the first folder that has it. Uses
    ``folder_paths.get_folder_paths`` (like ``folder_paths.get_full_path``, but also for Hugging Face folders).

    Raises:
        CheckpointError: no folder has it (the message says where to put the file).
    """
    for folder in folders:
        for root in _roots(folder):
            candidate = Path(root) / name
            if candidate.exists():
                return candidate
    raise CheckpointError(f"{name!r} was not found in the ComfyUI model folders {', '.join(folders)}. Put the "
                          f"file in models/{next(iter(folders))} and refresh (press R in the UI).")


def device(choice: str = "default") -> torch.device:
    """``"cpu"`` → the CPU; anything else → ComfyUI's ``comfy.model_management.get_torch_device()``."""
    return torch.device("cpu") if choice == "cpu" else _mm().get_torch_device()


def model_devices(choice: str = "default") -> tuple[torch.device, torch.device]:
    """(load device, offload device) for a MODEL: ComfyUI's GPU and its offload device, or the CPU for both."""
    if choice == "cpu":
        return torch.device("cpu"), torch.device("cpu")
    mm = _mm()
    return mm.get_torch_device(), mm.unet_offload_device()


def load_model(patcher) -> None:
    """Load a ModelPatcher through ComfyUI's memory manager: frees room, applies its weight (LoRA) and object
    patches, moves it to its load device (fully: our modules have no ComfyUI low-VRAM casting)."""
    _mm().load_models_gpu([patcher], force_full_load=True)


def dtype(choice: str, on: torch.device) -> torch.dtype:
    """``auto``: bfloat16 where ComfyUI says the device supports it, else float32."""
    table = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
    if choice in table:
        return table[choice]
    if on.type == "cpu":
        return torch.float32
    try:
        return torch.bfloat16 if _mm().should_use_bf16(on) else torch.float16
    except Exception:
        return torch.bfloat16


def free_memory() -> None:
    """Ask ComfyUI to unload its models and empty caches before a run of ours (replaces RSFreeVRAM)."""
    mm = _mm()
    mm.unload_all_models()
    gc.collect()
    mm.soft_empty_cache()


def free_bytes(on: torch.device) -> int:
    """Free memory of ``on`` in bytes, as ComfyUI's memory manager counts it (``get_free_memory``)."""
    return int(_mm().get_free_memory(on))


def progress_hook() -> Callable[[int, int], None]:
    """``progress(done, total)`` for the library, driving ComfyUI's progress bar (created on the first call, when
    the total is known)."""
    return progress_hooks()[0]


def previews_enabled() -> bool:
    """Whether the user wants sampling previews: ComfyUI's preview method (``--preview-method``, or the one the
    front end sends with the prompt) is not ``none``. Every other method (auto, latent2rgb, taesd) gets our fitted
    latent → RGB map (:mod:`rs_ltxv.ltx.pipeline.preview`)."""
    from comfy.cli_args import LatentPreviewMethod, args

    return args.preview_method != LatentPreviewMethod.NoPreviews


def progress_hooks() -> tuple[Callable[[int, int], None], Callable[[int, int, torch.Tensor], None] | None]:
    """``progress(done, total)`` and ``preview(done, total, image)`` (None when :func:`previews_enabled` says no)
    sharing one ComfyUI progress bar: a preview goes out as ``ProgressBar.update_absolute(done, total, ("JPEG",
    PIL image, --preview-size))``, ComfyUI's standard preview message (``latent_preview.prepare_callback`` sends the
    same); ``image`` is uint8 ``(H, W, 3)``."""
    import comfy.utils

    state: dict[str, object] = {}

    def bar_for(total: int):
        bar = state.get("bar")
        if bar is None or state.get("total") != total:
            bar = state["bar"] = comfy.utils.ProgressBar(total)
            state["total"] = total
        return bar

    def progress(done: int, total: int) -> None:
        bar_for(total).update_absolute(done, total)

    if not previews_enabled():
        return progress, None
    from comfy.cli_args import args
    from PIL import Image

    def preview(done: int, total: int, image: torch.Tensor) -> None:
        picture = Image.fromarray(image.cpu().numpy())
        bar_for(total).update_absolute(done, total, ("JPEG", picture, args.preview_size))

    return progress, preview


def cancel_hook() -> Callable[[], bool]:
    """``cancel()`` for the library: raises ComfyUI's own interrupt exception when the user pressed Cancel, so
    ComfyUI reports the run as interrupted (not as an error)."""
    mm = _mm()

    def cancel() -> bool:
        mm.throw_exception_if_processing_interrupted()
        return False

    return cancel
