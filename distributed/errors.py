"""Errors of multi-GPU runs (:mod:`rs_ltxv.distributed`), each with a message that names the rank and says what to
do. Their ``__module__`` is ``rs_ltxv.distributed.errors`` however the package was imported (as in
:mod:`rs_ltxv.ltx.errors`)."""

from __future__ import annotations

from ..ltx.errors import RSLTXVError, canonical_module


class DistributedError(RSLTXVError):
    """A multi-GPU run failed outside the model's own checks: Ray is missing or unreachable, a worker could not
    start, or a rank failed, hung or disagreed; the message names the rank. Every worker has been stopped; the next
    run starts new ones."""


class WorkerDied(DistributedError):
    """A worker process (one rank) died during a run (killed, crashed, out of host memory)."""


for _cls in (DistributedError, WorkerDied):
    _cls.__module__ = canonical_module(__name__)


def project_error_class(name: str) -> type[RSLTXVError] | None:
    """The loaded project error class called ``name`` (:class:`~rs_ltxv.ltx.errors.RSLTXVError` or a subclass of
    it, found by walking the subclasses), None when there is none. Workers send errors by name, because the pack's
    classes cannot be pickled by reference across processes that imported it under another module name."""
    todo: list[type[RSLTXVError]] = [RSLTXVError]
    while todo:
        cls = todo.pop()
        if cls.__name__ == name:
            return cls
        todo.extend(cls.__subclasses__())
    return None
