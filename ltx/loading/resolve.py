"""Where a component's config comes from: given → the file's stored config → inferred from tensor shapes.

Every component loader (transformer, video VAE, audio VAE and vocoder, latent upsampler, Gemma) asks
:func:`resolve_config` with its own parser and inferrer; the order, the error wrapping and the recorded source are
written once. Mirrors ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder.model_config`` (the
``config`` metadata, read by ``ltx_core.loader.sft_loader.SafetensorsModelStateDictLoader.metadata``) +
``ltx_core.model.model_protocol.ModelConfigurator.from_config``, which have no inference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from ..errors import CheckpointError, ConfigError
from .config_limits import check_config
from .config_schema import check_raw

C = TypeVar("C")
ConfigSource = Literal["given", "metadata", "inferred"]


@dataclass(frozen=True)
class Resolved(Generic[C]):
    """A config and where it came from: ``"given"`` (passed in), ``"metadata"`` (stored with the weights) or
    ``"inferred"`` (from tensor names and shapes)."""

    config: C
    source: ConfigSource


def _resolve(where: str, given: Any, stored: Callable[[], Mapping[str, Any] | None], key: str | None,
             config_type: type | tuple[type, ...], parse: Callable[[Mapping[str, Any]], Any],
             infer: Callable[[], Any] | None, cannot_infer: str) -> Resolved[Any]:
    """The three steps of :func:`resolve_config`; every dict is type-checked (:func:`~.config_schema.check_raw`)
    before ``parse`` sees it."""
    if isinstance(given, config_type):
        return Resolved(given, "given")
    if given is not None:
        check_raw(where, given, config_type)
        return Resolved(parse(given), "given")
    raw = stored()
    if raw is not None and key is not None:
        if not isinstance(raw, Mapping):
            raise CheckpointError(f"{where}: the stored config is a {type(raw).__name__}, not a JSON object.")
        raw = raw.get(key)
    if raw is not None:
        check_raw(where, raw, config_type)
        return Resolved(parse(raw), "metadata")
    if infer is None:
        section = "" if key is None else f"[{key!r}]"
        raise CheckpointError(f"{where} has no __metadata__['config']{section}; {cannot_infer}")
    return Resolved(infer(), "inferred")


def resolve_config(
    where: str,
    given: C | Mapping[str, Any] | None,
    stored: Callable[[], Mapping[str, Any] | None],
    *,
    key: str | None,
    config_type: type[C] | tuple[type, ...],
    parse: Callable[[Mapping[str, Any]], C],
    infer: Callable[[], C] | None = None,
    cannot_infer: str = "",
) -> Resolved[C]:
    """The config of one component, in this order:

    1. ``given`` — a ``config_type`` instance as is, or a dict read with ``parse``;
    2. ``stored()[key]`` — the section of the file's stored config (all of it when ``key`` is None) read with
       ``parse``; ``stored`` is only called when nothing is given;
    3. ``infer()`` — from the tensors.

    Args:
        where: the file name, at the start of every message.
        given: what the caller passed (None: nothing).
        stored: returns the file's stored config or None (usually :meth:`~.source.TensorSource.config`).
        key: the component's section in ``stored`` ("transformer", "vae", "audio_vae", "vocoder"); None when the
            stored config is the component's own (upsampler files, Gemma ``config.json``).
        config_type: the config class, or classes (tells a given config from a given dict).
        parse: dict → config; raises :class:`ConfigError` (or :class:`CheckpointError`) for a bad dict.
        infer: config from tensor shapes; None when shapes cannot tell (the audio VAE's STFT settings).
        cannot_infer: the end of the message when there is no config and ``infer`` is None.

    Every dict is checked for JSON types and ranges before ``parse`` (:func:`~.config_schema.check_raw`), and the
    resulting config, whatever its source, against :mod:`.config_limits` before any model is built.

    Raises:
        CheckpointError: the given or stored config is invalid, inference fails, or there is no config and it
            cannot be inferred; the message starts with ``where``.
        ConfigError: a config field of the wrong type or out of its plausible range (message starts with ``where``).
    """
    try:
        resolved = _resolve(where, given, stored, key, config_type, parse, infer, cannot_infer)
        check_config(where, resolved.config)
        return resolved
    except (ConfigError, CheckpointError) as exc:
        if str(exc).startswith(where):
            raise
        raise CheckpointError(f"{where}: {exc}") from exc
