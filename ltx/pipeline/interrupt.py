"""Cancel inside long model calls that are not sampling steps: prompt encoding (Gemma) and decoding (VAE, vocoder).

:func:`interruptible` registers a forward pre-hook on every submodule of the given models, so ``cancel()`` is asked
before each layer or block runs and :class:`~rs_ltxv.ltx.errors.Cancelled` stops the call within one layer. Objects
that are not ``nn.Module`` (adapters, core ComfyUI wrappers) are searched one attribute deep for modules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from torch import nn

from ..errors import Cancelled


def _modules(obj: Any) -> list[nn.Module]:
    if obj is None:
        return []
    if isinstance(obj, nn.Module):
        return [obj]
    attrs = vars(obj).values() if hasattr(obj, "__dict__") else ()
    return [value for value in attrs if isinstance(value, nn.Module)]


@contextlib.contextmanager
def interruptible(*objects: Any, cancel: Callable[[], bool] | None) -> Iterator[None]:
    """While the block runs, every forward of a submodule of ``objects`` first calls ``cancel()``; True raises
    :class:`Cancelled` (a host's own interrupt exception raised by ``cancel`` propagates the same way)."""
    if cancel is None:
        yield
        return

    def check(_module: nn.Module, _args: Any) -> None:
        if cancel():
            raise Cancelled("Generation was cancelled.")

    handles = [sub.register_forward_pre_hook(check)
               for obj in objects for module in _modules(obj) for sub in module.modules()]
    try:
        if cancel():
            raise Cancelled("Generation was cancelled.")
        yield
    finally:
        for handle in handles:
            handle.remove()
