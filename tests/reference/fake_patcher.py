"""Stand-ins for the pieces of ComfyUI's ``comfy.model_patcher.ModelPatcher`` and ``comfy.weight_adapter`` the nodes
read, so node tests run without ComfyUI: a patcher with ``model``, ``patches`` (``{key: [(strength_patch, adapter,
strength_model, offset, function), …]}``, as ``ModelPatcher.add_patches`` stores them), ``object_patches``,
``hook_patches``, ``clone()``, ``add_object_patch()`` and ``get_model_object()``; LoRA-like adapters named as
ComfyUI names them (``LoRAAdapter.name == "lora"``, ``weights = (up, down, alpha, mid, dora_scale, reshape)``).
The real-ComfyUI tests check the same behaviour against ComfyUI's own classes."""

from __future__ import annotations

from typing import Any


class Adapter:
    """A ``comfy.weight_adapter`` adapter: ``name`` ("lora", "loha", "lokr", …) and ``weights``."""

    def __init__(self, name: str, weights: tuple) -> None:
        self.name, self.weights = name, weights


def lora(up, down, alpha=None, mid=None, dora_scale=None, reshape=None) -> Adapter:
    """A plain LoRA adapter as ``comfy.weight_adapter.lora.LoRAAdapter`` holds it."""
    return Adapter("lora", (up, down, alpha, mid, dora_scale, reshape))


class FakePatcher:
    """What the nodes use of ``ModelPatcher``; ``clone()`` shares ``model`` and copies the patch dicts, as
    ComfyUI's does."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.patches: dict[str, list] = {}
        self.object_patches: dict[str, Any] = {}
        self.hook_patches: dict = {}

    def clone(self) -> FakePatcher:
        other = FakePatcher(self.model)
        other.patches = {k: list(v) for k, v in self.patches.items()}
        other.object_patches = dict(self.object_patches)
        other.hook_patches = dict(self.hook_patches)
        return other

    def add_object_patch(self, name: str, obj: Any) -> None:
        self.object_patches[name] = obj

    def get_model_object(self, name: str) -> Any:
        return self.object_patches[name] if name in self.object_patches else getattr(self.model, name)

    def add(self, key: str, adapter: Any, strength: float = 1.0, strength_model: float = 1.0, offset=None,
            function=None) -> FakePatcher:
        """Append one weight patch to ``key`` (``"diffusion_model.<parameter>"``); returns self."""
        self.patches.setdefault(key, []).append((strength, adapter, strength_model, offset, function))
        return self
