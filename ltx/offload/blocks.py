"""Block-by-block weight streaming for the transformer (outside ComfyUI: CLI and library).

The weights of every transformer block live on the CPU (in pinned memory when CUDA is available) and are copied to
the compute device just before the block runs; the next block is copied meanwhile (on a side CUDA stream), and a
block's device copy is dropped as soon as it has run. Everything outside the blocks (projections, AdaLN, output
head) stays resident on the compute device. At most two blocks' weights are on the device at any time.

It works through forward hooks on the blocks, so every caller that runs ``model.transformer_blocks[i](...)`` in
order streams the same way: :meth:`LTXAVTransformer.forward` and the sequence-parallel
``rs_ltxv.distributed.forward.SPForward``. On a CPU-only machine the same mechanics run with ``device="cpu"`` (each
load is a real copy into fresh memory), which is what the tests check bit for bit.

Prior art: WanVideoWrapper's ``block_swap`` (move a block in before use and out after), ComfyUI's per-block
prefetch under DynamicVRAM. Own implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import InputError


@dataclass
class _Slot:
    """One parameter or buffer of a block: the module holding it, its name, and its CPU master copy."""

    module: nn.Module
    name: str
    is_param: bool
    master: torch.Tensor  # on the CPU (pinned when CUDA is available)
    loaded_ptr: int = 0  # data_ptr of the device copy while loaded

    def current(self) -> torch.Tensor:
        """The tensor the module holds now (a Parameter's data, or the buffer)."""
        t = self.module._parameters[self.name] if self.is_param else self.module._buffers[self.name]
        return t.data if self.is_param else t

    def set(self, tensor: torch.Tensor) -> None:
        """Point the module's parameter (keeping the Parameter object) or buffer at ``tensor``."""
        if self.is_param:
            self.module._parameters[self.name].data = tensor
        else:
            self.module._buffers[self.name] = tensor

    def adopt(self, expected_ptr: int, pin: bool) -> None:
        """If the module's tensor was replaced behind our back (``apply_loras`` sets ``param.data``), make the new
        one the CPU master (moved to the CPU, pinned when ``pin``)."""
        cur = self.current()
        if cur.data_ptr() != expected_ptr:
            master = cur.to("cpu")
            self.master = master.pin_memory() if pin and not master.is_pinned() else master


@dataclass
class _Block:
    slots: list[_Slot]
    nbytes: int
    loaded: bool = False
    event: torch.cuda.Event | None = None  # copy finished (CUDA prefetch only)
    handles: list = field(default_factory=list)


@dataclass
class OffloadStats:
    """Bytes of block weights on the compute device (what the offloader holds; the resident non-block weights are
    ``resident_bytes``). ``peak_block_bytes`` is since :meth:`BlockOffload.reset_peak`."""

    block_bytes: int  # bytes of one block (the largest)
    resident_bytes: int  # non-block weights kept on the device
    current_block_bytes: int
    peak_block_bytes: int
    loads: int  # block loads since attach


def check_offload_device(device: torch.device | str) -> None:
    """What :meth:`BlockOffload.attach` needs from ``device``, checked before any model loads.

    Raises:
        InputError: ``device`` is CUDA but this torch has no CUDA, or it is neither CUDA nor CPU.
    """
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("Block offload to a CUDA device needs CUDA, and this torch has none; run without "
                         "--offload (offload=False) or on a GPU machine.")
    if device.type not in ("cuda", "cpu"):
        raise InputError(f"Block offload streams weights to a CUDA device (or 'cpu', for testing); got {device}. "
                         "Run without --offload (offload=False) on this device.")


def _tensors(module: nn.Module):
    for mod in module.modules():
        for name, p in mod._parameters.items():
            if p is not None:
                yield mod, name, True, p.data
        for name, b in mod._buffers.items():
            if b is not None:
                yield mod, name, False, b


class BlockOffload:
    """Streams ``model.transformer_blocks`` from CPU memory to ``device`` one block at a time (see module doc).

    Use :meth:`attach`; :meth:`detach` removes the hooks and leaves every block's weights on the CPU.

    Attributes:
        device: the compute device.
        prefetch: copy block ``i + 1`` while block ``i`` runs (a side stream on CUDA; on the CPU the copy is made
            right away, so the mechanics and the at-most-two-blocks bound are the same).
    """

    def __init__(self, model: nn.Module, device: torch.device | str, *, prefetch: bool = True) -> None:
        blocks = getattr(model, "transformer_blocks", None)
        if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
            raise InputError(f"Block offload needs a model with transformer_blocks (an LTXAVTransformer); got a "
                             f"{type(model).__name__}.")
        if getattr(model, "_block_offload", None) is not None:
            raise InputError("This transformer already streams its blocks; call .detach() on its BlockOffload "
                             "before attaching another.")
        self.model = model
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.prefetch = prefetch
        self._cuda = self.device.type == "cuda"
        self._pin = torch.cuda.is_available()
        self._stream = torch.cuda.Stream(self.device) if self._cuda else None
        self._blocks: list[_Block] = []
        self._order = {id(b): i for i, b in enumerate(blocks)}
        self._current = 0
        self._peak = 0
        self._loads = 0
        self._resident = 0

    # -- attach / detach ------------------------------------------------------------------------------------------
    @classmethod
    def attach(cls, model: nn.Module, device: torch.device | str, *, prefetch: bool = True) -> BlockOffload:
        """Keep ``model``'s non-block weights on ``device`` and stream its blocks from the CPU; returns the offloader
        (also ``model._block_offload``).

        Raises:
            InputError: ``model`` has no ``transformer_blocks``, already streams, or ``device`` is CUDA without
                CUDA (the message says to drop ``--offload`` / ``offload=``).
        """
        check_offload_device(device)
        self = cls(model, device, prefetch=prefetch)
        self._setup()
        model._block_offload = self
        return self

    def _setup(self) -> None:
        blocks = self.model.transformer_blocks
        self.place()  # non-block weights: resident on the device
        inside = {id(m) for b in blocks for m in b.modules()}
        self._resident = sum(t.nbytes for mod in self.model.modules() if id(mod) not in inside
                             for t in [*mod._parameters.values(), *mod._buffers.values()] if t is not None)
        for block in blocks:
            slots = []
            for mod, name, is_param, t in _tensors(block):
                slot = _Slot(mod, name, is_param, t)
                slot.adopt(-1, self._pin)
                slot.set(slot.master)
                slots.append(slot)
            entry = _Block(slots, sum(s.master.nbytes for s in slots))
            entry.handles = [block.register_forward_pre_hook(self._before),
                             block.register_forward_hook(self._after)]
            self._blocks.append(entry)

    def detach(self) -> None:
        """Remove the hooks; every block's weights end on the CPU (move the model with ``.to()`` to run it whole)."""
        self.release_all()
        for entry in self._blocks:
            for h in entry.handles:
                h.remove()
        self._blocks = []
        self.model._block_offload = None

    # -- moving ---------------------------------------------------------------------------------------------------
    def _load(self, i: int, *, asynchronous: bool) -> None:
        entry = self._blocks[i]
        if entry.loaded:
            return
        for s in entry.slots:
            s.adopt(s.master.data_ptr(), self._pin)
        if self._cuda:
            main = torch.cuda.current_stream(self.device)
            stream = self._stream if asynchronous else main
            with torch.cuda.stream(stream):
                for s in entry.slots:
                    t = s.master.to(self.device, non_blocking=True)
                    if stream is not main:
                        t.record_stream(main)  # the allocator must not reuse it before the block has run
                    s.set(t)
                    s.loaded_ptr = t.data_ptr()
                if stream is not main:
                    entry.event = torch.cuda.Event()
                    entry.event.record(stream)
        else:
            for s in entry.slots:
                t = s.master.clone()  # a real copy: the device copy is its own memory, as on CUDA
                s.set(t)
                s.loaded_ptr = t.data_ptr()
        entry.loaded = True
        self._loads += 1
        self._current += entry.nbytes
        self._peak = max(self._peak, self._current)

    def _release(self, i: int) -> None:
        entry = self._blocks[i]
        if not entry.loaded:
            return
        for s in entry.slots:
            s.adopt(s.loaded_ptr, self._pin)  # replaced while on the device: keep the new tensor
            s.set(s.master)
        entry.loaded, entry.event = False, None
        self._current -= entry.nbytes

    def release_all(self) -> None:
        """Drop every block's device copy (after an interrupted forward, or to free the device between runs)."""
        for i in range(len(self._blocks)):
            self._release(i)

    def _before(self, block: nn.Module, _args) -> None:
        i = self._order[id(block)]
        nxt = i + 1 if self.prefetch and i + 1 < len(self._blocks) else None
        for j, entry in enumerate(self._blocks):  # bound residency even after an interrupted forward
            if entry.loaded and j not in (i, nxt):
                self._release(j)
        self._load(i, asynchronous=False)
        entry = self._blocks[i]
        if entry.event is not None:
            torch.cuda.current_stream(self.device).wait_event(entry.event)
            entry.event = None
        if nxt is not None:
            self._load(nxt, asynchronous=True)

    def _after(self, block: nn.Module, _args, _out) -> None:
        self._release(self._order[id(block)])

    # -- placing the resident part ------------------------------------------------------------------------------
    def place(self, device: torch.device | str | None = None) -> None:
        """Move the non-block weights to ``device`` (default: the compute device); blocks stay on the CPU. The
        pipeline calls this instead of ``model.to(device)`` (parking on the CPU: ``place("cpu")``)."""
        target = torch.device(device) if device is not None else self.device
        self.release_all()
        blocks = self.model.transformer_blocks
        inside = {id(m) for b in blocks for m in b.modules()}
        for mod in self.model.modules():
            if id(mod) in inside:
                continue
            for p in mod._parameters.values():
                if p is not None:
                    p.data = p.data.to(target)
            for name, b in list(mod._buffers.items()):
                if b is not None:
                    mod._buffers[name] = b.to(target)

    # -- numbers --------------------------------------------------------------------------------------------------
    def reset_peak(self) -> None:
        """Start a new peak measurement from the block bytes on the device now."""
        self._peak = self._current

    def stats(self) -> OffloadStats:
        """Bytes on the compute device (see :class:`OffloadStats`)."""
        return OffloadStats(max((b.nbytes for b in self._blocks), default=0), self._resident, self._current,
                            self._peak, self._loads)
