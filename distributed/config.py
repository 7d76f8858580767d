"""How a generation is spread over several GPUs (or CPU ranks): :class:`ParallelConfig`."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..ltx.errors import InputError

#: ``ParallelConfig.backend`` values: auto (NCCL on GPUs when Ray sees any, gloo on CPU ranks otherwise)
BACKENDS = ("auto", "nccl", "gloo")
#: the most ranks one run may use
MAX_RANKS = 64


@dataclass(frozen=True)
class ParallelConfig:
    """Multi-GPU settings (the RS LTXV Multi-GPU (Ray) node's inputs, the CLI's ``--gpus`` / ``--ray-address`` /
    ``--comm-timeout``).

    Attributes:
        gpus: world size W: one Ray worker (rank) per GPU; on a machine where Ray sees no GPU (or with backend
            "gloo"), W CPU ranks talking gloo.
        ray_address: None: reuse an initialised Ray or start a local one listening on 127.0.0.1; "auto" or
            "host:port": join a running Ray cluster (``ray start --head`` / ``ray start --address=…``).
        backend: "auto" (NCCL on GPUs, gloo on CPU ranks), "nccl" (GPU ranks) or "gloo" (CPU ranks).
        comm_timeout_s: seconds a rank waits in a collective (and at start-up) before giving up; a rank that dies
            or hangs is reported within about this long.
        keep_loaded: keep the workers and their weights between stages and runs (False: stop them after each
            stage, freeing their memory).
    """

    gpus: int = 2
    ray_address: str | None = None
    backend: str = "auto"
    comm_timeout_s: float = 120.0
    keep_loaded: bool = True

    def check(self) -> ParallelConfig:
        """Return ``self`` when every field is valid.

        Raises:
            InputError: ``gpus`` is not a whole number in 1 … :data:`MAX_RANKS`, ``ray_address`` is an empty
                string, ``backend`` is not one of :data:`BACKENDS`, ``comm_timeout_s`` is not a finite number of
                seconds ≥ 1, or ``keep_loaded`` is not a bool.
        """
        if isinstance(self.gpus, bool) or not isinstance(self.gpus, int) or not 1 <= self.gpus <= MAX_RANKS:
            raise InputError(f"gpus must be a whole number from 1 to {MAX_RANKS} (one rank per GPU); "
                             f"got {self.gpus!r}.")
        if self.ray_address is not None and (not isinstance(self.ray_address, str) or not self.ray_address.strip()):
            raise InputError(f"ray_address must be None (a local Ray), 'auto' or 'host:port'; got "
                             f"{self.ray_address!r}.")
        if self.backend not in BACKENDS:
            raise InputError(f"backend must be one of {', '.join(BACKENDS)}; got {self.backend!r}.")
        timeout = self.comm_timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
                or timeout < 1:
            raise InputError(f"comm_timeout_s must be a number of seconds ≥ 1; got {timeout!r}.")
        if not isinstance(self.keep_loaded, bool):
            raise InputError(f"keep_loaded must be True or False; got {self.keep_loaded!r}.")
        return self
