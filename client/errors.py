"""The one exception type of the client; ``exit_code`` is what the command returns."""

from __future__ import annotations

#: exit codes of ``python -m rs_ltxv submit``
EXIT_OK = 0
EXIT_USAGE = 1  # bad prompt file, bad --set, server unreachable, timeout
EXIT_FAILED = 2  # the server refused the prompt or a node raised
EXIT_INTERRUPTED = 3  # the run was interrupted (on the server or with Ctrl-C here)


class ClientError(Exception):
    """Anything that stops ``submit``: a bad prompt file or ``--set``, an unreachable server, a refused prompt, a
    failed or interrupted run. The message says what went wrong and what to do; ``exit_code`` is the command's exit
    status (:data:`EXIT_USAGE`, :data:`EXIT_FAILED` or :data:`EXIT_INTERRUPTED`).

    Not an ``rs_ltxv.ltx.errors.RSLTXVError``: the client is standard-library only and imports nothing of the
    library.
    """

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code
