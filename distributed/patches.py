"""Attach sequence parallelism to a transformer the way ComfyUI's object patches do: replace one attribute
(``forward``) and put back exactly what was there, so the model is bit-for-bit the single-device model again.

ComfyUI's ``ModelPatcher.add_object_patch("diffusion_model.forward", …)`` sets and restores the same attribute
(``comfy.model_patcher.ModelPatcher.patch_model`` / ``unpatch_model``); :func:`sp_object_patches` returns it in
that form, :func:`sequence_parallel` does it without ComfyUI.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..ltx.transformer import LTXAVTransformer
from .comm import Group
from .forward import SPForward

_MISSING = object()


def sp_object_patches(model: LTXAVTransformer, group: Group, prefix: str = "diffusion_model.") -> dict[str, object]:
    """``{prefix + "forward": SPForward}``: the object patch that makes ``model`` (the module at ``prefix`` of a
    ComfyUI MODEL) run sequence-parallel over ``group``.

    Raises:
        InputError: ``group`` has more ranks than the model has attention heads.
    """
    return {prefix + "forward": SPForward(model, group)}


@contextmanager
def sequence_parallel(model: LTXAVTransformer, group: Group | None = None) -> Iterator[SPForward]:
    """Inside the block, ``model(video, audio, perturbations, options)`` runs Ulysses-sharded over ``group``
    (default: the whole initialised default process group); every rank must call it with the same full inputs and
    gets the same full outputs. On exit ``model.forward`` is what it was before. Yields the :class:`SPForward`.

    Raises:
        InputError: ``group`` has more ranks than the model has attention heads.
    """
    group = group or Group.current()
    sp = SPForward(model, group)
    before = model.__dict__.get("forward", _MISSING)
    model.forward = sp
    try:
        yield sp
    finally:
        if before is _MISSING:
            del model.forward
        else:
            model.forward = before
