"""Kernels shared by the LTX port: the attention backends (``sdpa``, ``sage``, ``flash``, ``auto``), chosen by name.

Only depends on torch. Every attention call of the model goes through :func:`attention` with a backend name (the
library's ``attention_mode``, :class:`~rs_ltxv.ltx.transformer.RunOptions`) or a callable. The chunked feed-forward
(``ffn_chunks``) lives with the feed-forward layer, :mod:`rs_ltxv.ltx.transformer.feed_forward`.
"""

from .attention import AttentionBackendError, attention, available_backends, resolve_backend

__all__ = ["AttentionBackendError", "attention", "available_backends", "resolve_backend"]
