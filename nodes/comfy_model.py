"""Our transformer as a ComfyUI MODEL: the module a ``ModelPatcher`` wraps, and how a node gets a ready model.

A ComfyUI MODEL is a ``comfy.model_patcher.ModelPatcher`` around a module. Ours is :class:`LTXVModule`, whose
``diffusion_model`` is the port's :class:`~rs_ltxv.ltx.transformer.LTXAVTransformer`, so its state-dict keys are
``diffusion_model.<official name>`` — the keys core's LoRA loaders (``LoraLoaderModelOnly``) map LoRA files onto.
LoRA and other weight patches are applied by ComfyUI when the patcher is loaded (``load_models_gpu``); per-run
choices (attention kernel, feed-forward chunks) travel as an object patch on a clone (``run_options``), never as
a change to the shared module.

This file imports ComfyUI only inside functions that ComfyUI calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..ltx.errors import InputError
from ..ltx.offload import enable_weight_casting
from ..ltx.quant import QuantisedLayer, is_quantised
from ..ltx.transformer import LTXAVTransformer, RunOptions

#: the object-patch key (an attribute of :class:`LTXVModule`) carrying a run's :class:`RunOptions`
RUN_OPTIONS = "run_options"
#: the object-patch key carrying a ``rs_ltxv.distributed.ParallelConfig`` (set by RS LTXV Multi-GPU (Ray))
PARALLEL = "parallel"


@dataclass
class _ModelConfig:
    """What core's LoRA key mapping reads from ``model.model_config`` (``unet_config`` without UNet keys)."""

    unet_config: dict[str, Any] = field(default_factory=dict)


class LTXVModule(nn.Module):
    """The module behind our MODEL: ``diffusion_model`` (the transformer) plus what the pipeline needs to know.

    Attributes:
        diffusion_model: the audio-video transformer (official parameter names).
        distilled: True for distilled checkpoints (8-step schedule).
        source: the file it was loaded from (None when built in memory).
        run_options: attention mode and feed-forward chunks for the next run (set through an object patch).
        parallel: a ``rs_ltxv.distributed.ParallelConfig`` when RS LTXV Multi-GPU (Ray) put one on a clone of the
            MODEL (an object patch: the shared module keeps None); Generate / Extend then denoise on Ray workers.
    """

    parallel: Any = None

    def __init__(self, transformer: LTXAVTransformer, *, distilled: bool = False,
                 source: str | Path | None = None) -> None:
        super().__init__()
        enable_weight_casting(transformer)  # ComfyUI's low-VRAM mode may leave any layer offloaded (cast at use)
        self.diffusion_model = transformer
        self.distilled = distilled
        self.source = Path(source) if source is not None else None
        self.run_options = RunOptions(attention_mode="auto")
        self.model_config = _ModelConfig()
        self._register_state_dict_hook(_quantised_weight_keys)

    def quantised_layers(self) -> dict[str, QuantisedLayer]:
        """``{"diffusion_model.<name>.weight": layer}`` for the quantised Linear layers (GGUF, FP8, INT8, NVFP4:
        :func:`~rs_ltxv.ltx.quant.is_quantised`)."""
        return {f"diffusion_model.{n}.weight": m for n, m in self.diffusion_model.named_modules() if is_quantised(m)}

    def get_dtype(self) -> torch.dtype:
        """The dtype of the floating-point weights (ComfyUI's ``ModelPatcher.model_dtype``)."""
        for p in self.diffusion_model.parameters():
            if p.is_floating_point():
                return p.dtype
        return torch.float32

    def memory_required(self, input_shape: Any = None, **_: Any) -> int:
        """Bytes ComfyUI should keep free besides the weights; our pipeline manages activations itself."""
        return 0

    def extra_repr(self) -> str:
        """``distilled`` and the source file name, for ``repr``."""
        return f"distilled={self.distilled}, source={self.source.name if self.source else None}"


def _quantised_weight_keys(module: LTXVModule, state: dict, prefix: str, _meta: Any) -> None:
    """State-dict hook: list ``<layer>.weight`` for GGUF layers too (as empty placeholders, so memory accounting
    is unchanged), so core's LoRA key mapping and ``add_patches`` accept LoRA weights for them."""
    for key in module.quantised_layers():
        state.setdefault(prefix + key, torch.empty(0))


class _LoraDelta:
    """A quantised layer's patch: ``calculate_weight(patches, W) − W`` on the dequantised weight ``(out, in)``, each
    forward (the packed weights stay packed; this is how LoRA works on quantised layers)."""

    def __init__(self, patches: list, key: str) -> None:
        self.patches, self.key = patches, key

    def __call__(self, base: torch.Tensor) -> torch.Tensor:
        """The LoRA delta for the dequantised float32 weight ``base`` ``(out, in)``, same shape."""
        import comfy.lora

        return comfy.lora.calculate_weight(self.patches, base.clone(), self.key) - base


_PATCHER: list[type] = []


def _patcher_class() -> type:
    """ComfyUI's ModelPatcher, plus LoRA on quantised layers (GGUF, FP8, INT8, NVFP4): their weight patches are
    attached as on-the-fly deltas when the model is loaded (fully or in low-VRAM mode) and removed when it is
    unpatched (ComfyUI only; built once)."""
    if _PATCHER:
        return _PATCHER[0]
    import comfy.model_patcher

    class LTXVModelPatcher(comfy.model_patcher.ModelPatcher):
        def load(self, *args: Any, **kwargs: Any) -> Any:
            out = super().load(*args, **kwargs)
            for key, layer in self.model.quantised_layers().items():
                layer.patches = [_LoraDelta(self.patches[key], key)] if key in self.patches else []
                # low-VRAM mode: core also attached the weight's patches as a LowVramPatch; the delta above is
                # already that LoRA (and keeps partial and full loads bit-identical), so drop core's copy
                functions = getattr(layer, "weight_function", None)
                if functions:
                    layer.weight_function = [f for f in functions if not (
                        isinstance(f, comfy.model_patcher.LowVramPatch) and f.key == key)]
            return out

        def unpatch_model(self, *args: Any, **kwargs: Any) -> Any:
            unpatch = kwargs.get("unpatch_weights", args[1] if len(args) > 1 else True)
            if unpatch:
                for layer in self.model.quantised_layers().values():
                    layer.patches = []
            return super().unpatch_model(*args, **kwargs)

    _PATCHER.append(LTXVModelPatcher)
    return LTXVModelPatcher


def wrap(module: LTXVModule, load_device: torch.device, offload_device: torch.device):
    """A ComfyUI ``ModelPatcher`` around ``module`` (ComfyUI only)."""
    return _patcher_class()(module, load_device=load_device, offload_device=offload_device)


@dataclass
class ReadyModel:
    """A model ready to run: the transformer (on its device, patches applied) and how to run it."""

    transformer: LTXAVTransformer
    distilled: bool
    options: RunOptions
    #: compute dtype / device when the weights do not tell (core's FP8 or streamed weights); None: the weights'
    compute_dtype: torch.dtype | None = None
    compute_device: torch.device | None = None


def _ours(model: Any) -> LTXVModule | None:
    if isinstance(model, LTXVModule):
        return model
    inner = getattr(model, "model", None)
    return inner if isinstance(inner, LTXVModule) else None


def describe(model: Any) -> str:
    """The class name of what a MODEL input holds (the patcher's ``model``, else the object itself), for messages."""
    inner = getattr(model, "model", None)
    return type(inner).__name__ if inner is not None else type(model).__name__


def parallel_of(model: Any) -> Any:
    """The ``parallel`` object patch a MODEL carries (a ``ParallelConfig``), or None: read through the patcher's
    ``get_model_object`` (the patch itself, never applied to the shared module), or the attribute of a bare
    :class:`LTXVModule`. Core MODELs and other objects → None."""
    if _ours(model) is None:
        return None
    getter = getattr(model, "get_model_object", None)
    return getter(PARALLEL) if getter is not None else getattr(model, PARALLEL, None)


def with_run_options(model: Any, options: RunOptions) -> Any:
    """A clone of the MODEL carrying ``options`` as an object patch (the shared MODEL is left as it is); a bare
    :class:`LTXVModule` (plain Python use) is returned unchanged."""
    if isinstance(model, LTXVModule) or not hasattr(model, "clone"):
        return model
    clone = model.clone()
    clone.add_object_patch(RUN_OPTIONS, options)
    return clone


def prepare(model: Any, options: RunOptions, *, load: Any = None, what: str = "RS LTXV") -> ReadyModel:
    """Resolve a MODEL input into a :class:`ReadyModel`.

    ``model`` is our ModelPatcher (RS LTXV Model Loader, optionally through core LoRA loaders), a core LTX-2
    ModelPatcher (CheckpointLoaderSimple / UNETLoader), or a bare :class:`LTXVModule`. ``load(patcher)`` loads a
    patcher through ComfyUI's memory manager (applies LoRA and object patches, moves it to its device).

    Raises:
        InputError: ``model`` is neither (e.g. a Wan or Flux MODEL); the message says which loader to connect.
    """
    ours = _ours(model)
    if ours is not None:
        if ours is not model:
            patched = with_run_options(model, options)
            if load is not None:  # applies the object patch: the options come back through the loaded model
                load(patched)
                options = getattr(patched.model, RUN_OPTIONS, options)
            if getattr(ours, "model_lowvram", False):  # partly loaded: layers cast their weights to the GPU at use
                return ReadyModel(ours.diffusion_model, ours.distilled, options, ours.get_dtype(), model.load_device)
        return ReadyModel(ours.diffusion_model, ours.distilled, options)
    from . import core_interop

    if core_interop.is_core_ltxav(model):
        if load is not None:
            load(model)
        dtype, device = core_interop.compute_placement(model)
        return ReadyModel(core_interop.transformer_from_core(model), core_interop.is_distilled(model), options, dtype,
                          device)
    raise InputError(f"{what}: model is a {describe(model)}, not an LTX-2 model. {core_interop.CONNECT_MODEL}")

