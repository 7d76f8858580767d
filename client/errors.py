"""The one exception type of the client; ``exit_code`` is what the command returns."""

from __future__ import annotations

#: exit codes of ``python -m rs_ltxv submit``
EXIT_OK = 0
EXIT_USAGE = 1  # bad prompt file, bad --set, server unreachable, timeout
EXIT_FAILED = 2  # the server refused the prompt or a node raised
EXIT_INTERRUPTED = 3  # the run was interrupted (on the server or with Ctrl-C here)


class ClientError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code
