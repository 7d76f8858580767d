"""Ray itself for multi-GPU runs: import it only when needed, start or join it, and check it has room for the ranks.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from ..ltx.errors import InputError
from .config import ParallelConfig
from .errors import DistributedError

#: the Ray namespace of RS-LTXV's actors
NAMESPACE = "rs_ltxv"
#: object store of a Ray that RS-LTXV starts itself, bytes (latents and LoRA factors pass through it)
OBJECT_STORE_BYTES = 512 * 2**20
#: seconds to wait for the head node of ``ray_address`` "HOST:PORT" to accept a connection
PROBE_S = 5.0
#: Ray reads this once, when it is imported: "0" makes a local Ray use 127.0.0.1 as its node address, so every one of
#: its servers (GCS, raylet, workers) listens on loopback only (``ray._private.ray_constants.ENABLE_RAY_CLUSTER``)
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def import_ray(local: bool = False) -> Any:
    """The ``ray`` module. With ``local`` (a Ray this process will start itself) and Ray not imported yet, Ray is
    told to listen on loopback only (:data:`LOOPBACK_ENV`), unless the user set that variable.

    Raises:
        DistributedError: Ray is not installed.
    """
    if local and "ray" not in sys.modules:
        os.environ.setdefault(LOOPBACK_ENV, "0")
    try:
        import ray
    except ImportError:
        raise DistributedError("Multi-GPU runs need Ray: pip install -U 'ray>=2.9' in the Python that runs "
                               "RS-LTXV (and on every node of a cluster).") from None
    return ray


def _probe(address: str) -> None:
    """Fail fast when nothing listens at ``HOST:PORT`` (Ray itself retries an unreachable head for minutes).

    Raises:
        DistributedError: the head node refuses or does not answer within :data:`PROBE_S` seconds.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", "ray://…" and other forms are Ray's to judge
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_S).close()
    except OSError as exc:
        raise DistributedError(f"Nothing answers at ray_address {address!r} ({exc.strerror or exc}). Start the "
                               f"head with `ray start --head --port={port}` on {host}, check the address and the "
                               "firewall, or leave ray_address empty for a Ray on this machine.") from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".")
    if "auth" in text.lower() or "token" in text.lower():
        return (f"{type(exc).__name__}: {text[:300]}. The cluster uses Ray's token authentication: give this "
                "process the head's token (~/.ray/auth_token or RAY_AUTH_TOKEN) and set RAY_AUTH_MODE=token")
    return f"{type(exc).__name__}: {text[:300]}"


def ensure_ray(config: ParallelConfig) -> Any:
    """An initialised Ray: the one already running in this process (another pack's, or ours), else a private local
    one listening on 127.0.0.1 only (``ray_address`` None, even when a machine-wide ``ray start`` Ray runs; see
    :func:`import_ray`), else the cluster at ``ray_address`` (``HOST:PORT`` is probed first, so an unreachable head
    fails in seconds).

    Raises:
        DistributedError: Ray is missing, or cannot start / reach the cluster.
    """
    ray = import_ray(local=config.ray_address is None)
    if ray.is_initialized():
        return ray
    if config.ray_address is not None:
        _probe(config.ray_address)
    try:
        if config.ray_address is None:
            ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, namespace=NAMESPACE,
                     object_store_memory=OBJECT_STORE_BYTES)
        else:
            ray.init(address=config.ray_address, namespace=NAMESPACE)
    except Exception as exc:
        if config.ray_address is None:
            raise DistributedError(f"Could not start a Ray on this machine ({_reason(exc)}).") from exc
        raise DistributedError(f"Could not connect to the Ray cluster at {config.ray_address!r} ({_reason(exc)}). "
                               "Run `ray start --head` on one machine and `ray start --address=HEAD:6379` on the "
                               "others, then use ray_address 'auto' on one of them.") from exc
    return ray


def uses_gpus(config: ParallelConfig, resources: dict[str, float]) -> bool:
    """Whether the ranks run on GPUs: backend "nccl" always, "gloo" never, "auto" when Ray sees a GPU.

    Raises:
        InputError: backend "nccl" but Ray sees no GPU.
    """
    gpus = int(resources.get("GPU", 0))
    if config.backend == "nccl" and gpus < 1:
        raise InputError("backend='nccl' needs GPUs, but Ray sees none; use backend='gloo' (CPU ranks) or 'auto'.")
    return config.backend == "nccl" or (config.backend == "auto" and gpus >= 1)


def check_capacity(config: ParallelConfig) -> bool:
    """Check that Ray sees enough GPUs (or CPUs, on CPU ranks) for ``config.gpus`` ranks; returns whether the ranks
    run on GPUs (:func:`uses_gpus`). Starts or joins Ray (:func:`ensure_ray`).

    Raises:
        InputError: more ranks than GPUs / CPUs in the Ray cluster; see :func:`uses_gpus`.
        DistributedError: see :func:`ensure_ray`.
    """
    ray = ensure_ray(config)
    resources = ray.cluster_resources()
    gpu = uses_gpus(config, resources)
    kind = "GPU" if gpu else "CPU"
    have = int(resources.get(kind, 0))
    if config.gpus > have:
        raise InputError(f"gpus={config.gpus}, but Ray sees {have} {kind}{'s' if have != 1 else ''}"
                         f"{'' if gpu else ' (no GPU: CPU ranks)'}; use gpus={max(1, have)} or add machines to "
                         "the Ray cluster.")
    return gpu
