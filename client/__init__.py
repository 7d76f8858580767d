"""Submit API-format prompts to a running ComfyUI and fetch the results (``python -m rs_ltxv submit``).

Standard library only: no ComfyUI, no third-party HTTP or websocket package. :mod:`.prompt` loads and edits the
prompt, :mod:`.http` talks to the server, :mod:`.ws` is a minimal websocket client for the progress messages,
:mod:`.history` reads ``/history`` entries, :mod:`.submit` ties them together.
"""

from .errors import ClientError

__all__ = ["ClientError"]
