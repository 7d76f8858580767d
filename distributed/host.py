"""The Ray actor that hosts one rank, and the bootstrap that imports the pack inside the worker process.

ComfyUI imports a node pack under a module name made from its folder path (``custom_nodes/rs-ltxv`` →
``…custom_nodes_x_rs-ltxv``), which a Ray worker cannot import. So this module is pickled **by value**
(``ray.cloudpickle.register_pickle_by_value``): the worker receives :class:`WorkerHost` itself, which imports the pack
as ``rs_ltxv`` from the driver's pack folder (:func:`import_pack`; the name may contain spaces) — or, on another node
where that folder does not exist, the ``rs_ltxv`` installed there — and delegates everything to
:class:`rs_ltxv.distributed.worker.RankWorker`. This module therefore imports nothing of the pack at module level.

Ray is imported only inside :func:`actor_class` and the actor's methods.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

#: the name the workers import the pack under
PACKAGE = "rs_ltxv"
#: the actor's methods that run on the "control" thread, beside a running stage
CONTROL_METHODS = ("cancel", "progress", "ping")


def pack_root() -> str:
    """The folder of the pack this module belongs to (the repository root, ``custom_nodes/<folder>``)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def import_pack(root: str) -> ModuleType:
    """Import the pack as ``rs_ltxv``: the already imported one, else from ``root``'s ``__init__.py`` (the driver's
    folder, when it exists on this node), else the ``rs_ltxv`` installed here.

    Raises:
        ModuleNotFoundError: neither exists on this node (install rs-ltxv there, or put the pack at the same path).
    """
    loaded = sys.modules.get(PACKAGE)
    if loaded is not None:
        return loaded
    init = os.path.join(root, "__init__.py")
    if not os.path.isfile(init):
        return importlib.import_module(PACKAGE)
    spec = importlib.util.spec_from_file_location(PACKAGE, init, submodule_search_locations=[root])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[PACKAGE]
        raise
    return module


def node_ip() -> str:
    """The address Ray knows this process's node by (``NodeManagerAddress``: 127.0.0.1 for a Ray started on the
    loopback), else the address ``ray.util.get_node_ip_address`` finds."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    for info in ray.nodes():
        if info.get("NodeID") == node and info.get("NodeManagerAddress"):
            return info["NodeManagerAddress"]
    return ray.util.get_node_ip_address()


class WorkerHost:
    """The actor of rank ``rank`` of ``world``: bootstraps the pack (:func:`import_pack` from ``root``), then every
    method forwards to :class:`rs_ltxv.distributed.worker.RankWorker` (see there). :data:`CONTROL_METHODS` run in
    the "control" concurrency group, so the driver can cancel, poll progress and ping while a stage runs."""

    def __init__(self, root: str, rank: int, world: int, use_cuda: bool, threads: int) -> None:
        import_pack(root)
        worker = importlib.import_module(f"{PACKAGE}.distributed.worker")
        self._worker = worker.RankWorker(rank, world, use_cuda=use_cuda, threads=threads)

    def free_port(self, host: str) -> int:
        """:meth:`RankWorker.free_port` (asked of rank 0 for the group's rendezvous)."""
        return self._worker.free_port(host)

    def connect(self, master: str, port: int, backend: str, timeout_s: float) -> float:
        """:meth:`RankWorker.connect`."""
        return self._worker.connect(master, port, backend, timeout_s)

    def load(self, key: str, recipe: dict[str, Any]) -> dict[str, Any]:
        """:meth:`RankWorker.load`."""
        return self._worker.load(key, recipe)

    def run_stage(self, job_id: int, stage: dict[str, Any], fault: dict[str, Any] | None = None) -> dict[str, Any]:
        """:meth:`RankWorker.run_stage`."""
        return self._worker.run_stage(job_id, stage, fault)

    def cancel(self, job_id: int) -> None:
        """:meth:`RankWorker.cancel` (control group)."""
        self._worker.cancel(job_id)

    def progress(self) -> list[tuple[int, int]]:
        """:meth:`RankWorker.progress` (control group)."""
        return self._worker.progress()

    def ping(self) -> dict[str, Any]:
        """:meth:`RankWorker.ping` plus this node's IP address ``node`` (control group)."""
        return {**self._worker.ping(), "node": node_ip()}

    def close(self) -> None:
        """:meth:`RankWorker.close`."""
        self._worker.close()


def actor_class() -> Any:
    """The Ray actor class of :class:`WorkerHost` (a "control" concurrency group of 2 threads for
    :data:`CONTROL_METHODS`), with this module registered for pickling by value."""
    import ray
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    for name in CONTROL_METHODS:
        ray.method(concurrency_group="control")(getattr(WorkerHost, name))
    return ray.remote(concurrency_groups={"control": 2})(WorkerHost)
