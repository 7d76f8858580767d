"""Kernels and model patches shared by the LTX port: attention backends and memory helpers.

Only depends on torch. Every attention call of the model goes through :func:`attention`.
"""

from .attention import AttentionBackendError, attention, available_backends, resolve_backend

__all__ = ["AttentionBackendError", "attention", "available_backends", "resolve_backend"]
