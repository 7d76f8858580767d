"""The ``config`` JSON stored in model files (``__metadata__["config"]`` of ``.safetensors``, the ``config`` key of
``.gguf``, a Hugging Face ``config.json`` next to the weights), parsed with bounds.

Limits (the official LTX-2.3 config is about 10 KB, at most 6 levels deep):

===================  =========  ================================================================
MAX_CONFIG_BYTES     1 MiB      size of the JSON text
MAX_CONFIG_ITEMS     65 536     ``{`` + ``[`` + ``,`` in the text (counted before parsing)
MAX_CONFIG_DEPTH     32         nesting of objects and lists
===================  =========  ================================================================
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import CheckpointError

MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_ITEMS = 65_536
MAX_CONFIG_DEPTH = 32
_FIX = "The file is corrupt or its config was edited by hand; download it again or pass a config."


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion (a deep value must not raise RecursionError)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_CONFIG_DEPTH:
                stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def parse_config_text(where: str, text: Any) -> dict[str, Any]:
    """The JSON object in ``text``; ``where`` ("model.safetensors: __metadata__['config']") starts every message.

    Raises:
        CheckpointError: ``text`` is not a string, is larger than :data:`MAX_CONFIG_BYTES` or has more than
            :data:`MAX_CONFIG_ITEMS` items, is not valid JSON (integers of more than 4 300 digits included), is not
            an object, or is nested deeper than :data:`MAX_CONFIG_DEPTH`.
    """
    if not isinstance(text, str):
        raise CheckpointError(f"{where} is a {type(text).__name__}, not a JSON string. {_FIX}")
    if len(text) > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{where} is {len(text):,} characters long (at most {MAX_CONFIG_BYTES:,} are "
                              f"accepted; real configs are about 10 KB). {_FIX}")
    items = text.count("{") + text.count("[") + text.count(",")
    if items > MAX_CONFIG_ITEMS:
        raise CheckpointError(f"{where} has {items:,} JSON items (at most {MAX_CONFIG_ITEMS:,} are accepted). {_FIX}")
    try:
        value = json.loads(text)
    except RecursionError:
        raise CheckpointError(f"{where} is nested too deeply to be a model config. {_FIX}") from None
    except ValueError as exc:  # JSONDecodeError, or an integer longer than Python's 4300-digit limit
        raise CheckpointError(f"{where} is not valid JSON ({str(exc)[:200]}). {_FIX}") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{where} is a JSON {type(value).__name__}, not an object. {_FIX}")
    if _depth(value) > MAX_CONFIG_DEPTH:
        raise CheckpointError(f"{where} is nested more than {MAX_CONFIG_DEPTH} levels deep. {_FIX}")
    return value


def read_config_file(path: Path) -> dict[str, Any]:
    """A ``config.json`` (or index) file next to the weights, read with :func:`parse_config_text`'s bounds.

    Raises:
        CheckpointError: the file cannot be read, is not UTF-8, or fails :func:`parse_config_text`.
    """
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES * 4:
            raise CheckpointError(f"{path} is {path.stat().st_size:,} bytes, too large for a config file. {_FIX}")
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} cannot be read as a UTF-8 JSON file ({str(exc)[:200]}). {_FIX}") from None
    return parse_config_text(str(path), text)
