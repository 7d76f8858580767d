"""Exceptions a user can meet, each with a message that says what to do."""


class RSLTXVError(Exception):
    """Base class of every error RS-LTXV raises on purpose."""


class ConfigError(RSLTXVError, ValueError):
    """A model config is missing, inconsistent or describes something we do not support."""


class CheckpointError(RSLTXVError, ValueError):
    """A checkpoint file cannot be used: unreadable, truncated, not LTX-2, or with missing/unexpected tensors."""


class InputError(RSLTXVError, ValueError):
    """Tensors given to a model have the wrong shape, dtype or size."""
