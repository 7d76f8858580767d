"""Exceptions a user can meet, each with a message that says what to do.

Their ``__module__`` is ``rs_ltxv.ltx.errors`` however the package was imported: ComfyUI imports a node pack under
its folder path, and shows an error's module in the UI (``…/custom_nodes/rs-ltxv.ltx.errors.InputError`` otherwise).
"""


class RSLTXVError(Exception):
    """Base class of every error RS-LTXV raises on purpose."""


class ConfigError(RSLTXVError, ValueError):
    """A model config is missing, inconsistent or describes something we do not support."""


class CheckpointError(RSLTXVError, ValueError):
    """A checkpoint file cannot be used: unreadable, truncated, not LTX-2, or with missing/unexpected tensors."""


class InputError(RSLTXVError, ValueError):
    """A setting, file or tensor given by the user is invalid (wrong size, range, shape, type or content)."""


class NonFiniteError(RSLTXVError, ArithmeticError):
    """The model produced NaN or infinite values (typically float16 overflow); the run was stopped at that step."""


class Cancelled(RSLTXVError):
    """The run was cancelled (ComfyUI's interrupt, Ctrl-C, a cancel hook that returned True)."""


def canonical_module(name: str) -> str:
    """``rs_ltxv.<sub.module>`` for a module ``name`` of this package, whatever its top-level name is."""
    return f"rs_ltxv.{name.partition('.')[2]}" if "." in name else name


for _cls in (RSLTXVError, ConfigError, CheckpointError, InputError, NonFiniteError, Cancelled):
    _cls.__module__ = canonical_module(__name__)
