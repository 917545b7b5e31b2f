"""Data-parallel training on PyTorch's own distributed engine (``torch.distributed``), for :func:`fit`.

Started by ``torchrun`` (``python -m torch.distributed.run``), every process runs the same program;
:func:`init_distributed` reads the variables torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``), initialises the default process group once
(gloo on the CPU, nccl on CUDA, one GPU per process: ``cuda:LOCAL_RANK``) and returns a
:class:`Distributed` handle, or ``None`` in a single process.

How a run stays equal to the single-process one (up to floating-point noise):

- **Same global batches.** Every process draws the same shuffle from the same seeded generator; each
  global batch is then split into contiguous per-rank slices (:meth:`Distributed.shard`), so the
  images that make up step *k* are exactly those of step *k* in one process.
- **Same gradients.** A term is a mean over the batch's counted items (labelled values). Rank *r*
  backpropagates ``Σₜ wₜ · (cᵣₜ / Cₜ) · termₜ(local batch)`` where ``cᵣₜ`` is its count of term *t*
  and ``Cₜ = Σᵣ cᵣₜ`` the global one, and the gradients are summed over the ranks
  (:meth:`Distributed.all_reduce_gradients`): ``Σᵣ (cᵣ/C)·∇meanᵣ = ∇(global mean)``. This is exact for
  any term affine in such a mean (``a·mean + b``, e.g. Kendall's ``exp(−s)·L + s``, since
  ``Σᵣ cᵣ/C = 1``).
- **Same numbers.** Each term's global value is ``Σᵣ (cᵣₜ/Cₜ)·termᵣₜ``, all-reduced with the counts,
  so epoch means, early stopping, the schedule and the divergence guard see the same values on every
  rank as in one process; metric accumulators are summed over the ranks before they are computed.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..errors import InvalidParameter, ResourceError
from .terms import summary_of

__all__ = [
    "Distributed",
    "StepValues",
    "env_world",
    "process_rank",
    "init_distributed",
    "reduce_terms",
]

_CREATED: list[bool] = []  # whether this module created the default process group (destroyed at exit)


def env_world() -> tuple[int, int, int, int] | None:
    """``(rank, world_size, local_rank, local_world_size)`` from torchrun's variables, or ``None``
    when this process was not started by torchrun (or by a world of one process)."""
    try:
        world = int(os.environ["WORLD_SIZE"])
        rank = int(os.environ["RANK"])
    except (KeyError, ValueError):
        return None
    if world <= 1:
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    return rank, world, local_rank, local_world


def process_rank() -> int:
    """This process's global rank under torchrun; 0 in a single process."""
    found = env_world()
    return found[0] if found is not None else 0


@dataclass(frozen=True)
class Distributed:
    """This process's place in a data-parallel run, and the collectives :func:`fit` needs.

    Attributes:
        rank: Global rank, ``0 .. world_size - 1``; rank 0 prints and writes files.
        world_size: Number of processes.
        local_rank: Rank on this node (the CUDA device index with nccl).
        local_world_size: Processes on this node.
        backend: ``gloo`` or ``nccl``.
        device: Where this process computes (``cpu`` or ``cuda:LOCAL_RANK``).
    """

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the one that prints and writes)."""
        return self.rank == 0

    @property
    def comm_device(self) -> torch.device:
        """Where collective buffers live: the GPU for nccl, the CPU for gloo."""
        return self.device if self.backend == "nccl" else torch.device("cpu")

    # ---- partitioning --------------------------------------------------------------------------

    def shard_bounds(self, n: int) -> tuple[int, int]:
        """This rank's contiguous part ``[start, stop)`` of ``n`` items (as :func:`torch.tensor_split`:
        the first ``n % world_size`` ranks get one item more; a rank may get none)."""
        base, extra = divmod(int(n), self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (1 if self.rank < extra else 0)

    def shard(self, n: int) -> slice:
        """:meth:`shard_bounds` as a slice."""
        return slice(*self.shard_bounds(n))

    # ---- collectives ---------------------------------------------------------------------------

    def all_reduce(self, tensor: Tensor) -> Tensor:
        """The element-wise sum of ``tensor`` over the ranks (a new tensor on ``tensor``'s device)."""
        import torch.distributed as dist

        buffer = tensor.detach().to(self.comm_device, copy=True)
        dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
        return buffer.to(tensor.device)

    def all_reduce_floats(self, values: Sequence[float]) -> list[float]:
        """The sums over the ranks of a list of numbers (float64), in order."""
        if not values:
            return []
        return self.all_reduce(torch.tensor(list(values), dtype=torch.float64)).tolist()

    def all_reduce_gradients(self, params: Sequence[Tensor]) -> None:
        """Replaces each parameter's ``.grad`` by its sum over the ranks.

        A missing gradient counts as zeros; it stays ``None`` only when it is missing on every rank
        (as it would be in one process), so optimisers that skip such parameters still do.
        """
        import torch.distributed as dist

        buckets: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
        for p in params:
            buckets.setdefault((p.device, p.dtype), []).append(p)
        for (_, dtype), group in buckets.items():
            flags = torch.tensor(
                [0.0 if p.grad is None else 1.0 for p in group], dtype=dtype, device=self.comm_device
            )
            flat = torch.cat(
                [
                    (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(self.comm_device)
                    for p in group
                ]
                + [flags]
            )
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            offset = 0
            for k, p in enumerate(group):
                n = p.numel()
                if float(flat[flat.numel() - len(group) + k]) > 0:
                    p.grad = flat[offset : offset + n].view_as(p).to(p.device)
                else:
                    p.grad = None
                offset += n

    def all_gather_rows(self, x: Tensor) -> Tensor:
        """Every rank's ``x`` (``(nᵣ, ...)``, same trailing shape and dtype), concatenated in rank
        order: ``(Σ nᵣ, ...)`` on ``x``'s device."""
        import torch.distributed as dist

        sizes = self.all_gather_object(int(x.shape[0]))
        largest = max(sizes)
        padded = torch.zeros((largest, *x.shape[1:]), dtype=x.dtype, device=self.comm_device)
        padded[: x.shape[0]] = x.to(self.comm_device)
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        return torch.cat([part[:n] for part, n in zip(parts, sizes)]).to(x.device)

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order."""
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """Rank ``src``'s ``obj`` on every rank."""
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]

    def broadcast(self, tensor: Tensor, src: int = 0) -> Tensor:
        """Rank ``src``'s ``tensor`` (every rank passes one of the same shape and dtype)."""
        import torch.distributed as dist

        buffer = tensor.to(self.comm_device)
        if buffer is tensor:
            buffer = tensor.clone()
        dist.broadcast(buffer, src=src)
        return buffer.to(tensor.device)

    def barrier(self) -> None:
        """Waits until every rank gets here."""
        import torch.distributed as dist

        dist.barrier()


def _device_for(spec: str, local_rank: int, local_world: int) -> torch.device:
    """The device of one torchrun process for ``--device spec``."""
    from ..device import resolve_device

    text = str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    if text == "mps":
        raise InvalidParameter(
            "--device", spec, "cpu (gloo) or cuda (nccl) under torchrun", "mps has no distributed backend"
        )
    if text.startswith("cuda:"):
        resolve_device(spec)  # its syntax and existence first
        raise InvalidParameter(
            "--device",
            spec,
            "cuda, auto or cpu under torchrun",
            "each process uses cuda:LOCAL_RANK, its own GPU",
        )
    device = resolve_device(spec)
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise ResourceError(
                f"--device {spec}: torchrun started {local_world} processes on this node but it has "
                f"{count} CUDA device(s); use --nproc_per_node {count} or fewer (one GPU each)"
            )
        return torch.device("cuda", local_rank)
    return device


def init_distributed(device: str = "auto") -> Distributed | None:
    """Joins the torchrun world this process belongs to, or returns ``None`` outside one.

    The default process group is created once per process (gloo for the CPU, nccl for CUDA) and
    destroyed at exit; one created by the caller beforehand is used as it is, if its backend suits
    the device.

    Args:
        device: ``--device``: ``auto`` (CUDA when available, else the CPU), ``cpu`` or ``cuda``
            (``cuda:LOCAL_RANK`` in each process). ``cuda:N`` and ``mps`` are errors under torchrun.

    Raises:
        InvalidParameter: A device that cannot be used under torchrun.
        ResourceError: More processes on this node than GPUs, no ``torch.distributed``, or a
            process group whose backend does not match the device.
    """
    found = env_world()
    if found is None:
        return None
    rank, world, local_rank, local_world = found
    target = _device_for(device, local_rank, local_world)
    backend = "nccl" if target.type == "cuda" else "gloo"
    import torch.distributed as dist

    if not dist.is_available():
        raise ResourceError("torchrun: this build of PyTorch has no torch.distributed; run a single process")
    if dist.is_initialized():
        current = str(dist.get_backend()).lower()
        if backend not in current.split(":") and not (backend == "gloo" and "gloo" in current):
            raise ResourceError(
                f"--device {device}: the process group already uses {current}, which does not suit "
                f"{target.type} tensors; use --device {'cuda' if 'nccl' in current else 'cpu'}"
            )
        if dist.get_world_size() != world or dist.get_rank() != rank:
            raise ResourceError("torchrun: the process group does not match RANK/WORLD_SIZE")
    else:
        if target.type == "cuda":
            torch.cuda.set_device(target)
        if backend == "nccl" and not dist.is_nccl_available():
            raise ResourceError(
                f"--device {device}: this build of PyTorch has no nccl backend; use --device cpu (gloo)"
            )
        dist.init_process_group(backend=backend, init_method="env://", world_size=world, rank=rank)
        if not _CREATED:
            _CREATED.append(True)
            atexit.register(_destroy)
    return Distributed(rank, world, local_rank, local_world, backend, target)


def _destroy() -> None:
    """Leaves the process group together: every rank waits for the others before tearing it down.

    Without the barrier a rank that finishes first destroys its end while a peer's gloo threads
    still talk to it, and that peer can abort at exit ("terminate called without an active
    exception"). The barrier is bounded, so a rank whose peer died does not hang.
    """
    import datetime

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        try:
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=datetime.timedelta(seconds=60))
            else:
                dist.barrier()
        except Exception:  # a peer already gone: nothing left to wait for
            pass
        dist.destroy_process_group()


@dataclass(frozen=True)
class StepValues:
    """One batch's loss terms over all ranks.

    Attributes:
        raw: Each term's global value (what one process would compute on the whole batch).
        counts: Each term's global count, or ``None`` when the loop has no ``counts`` (every batch
            then counts 1 in the epoch mean).
        shares: This rank's weight of each term, ``cᵣₜ / Cₜ`` (``1/world_size`` for a term nobody counted).
        finite: Whether every rank's every term was finite.
        stop: Whether any rank asked to stop after this step (Ctrl-C).
    """

    raw: dict[str, float]
    counts: dict[str, float] | None
    shares: dict[str, float]
    finite: bool
    stop: bool = False

    def total(self, weights: Mapping[str, float]) -> float:
        """``Σ weight × raw``: the :attr:`~styleforge.engine.terms.LossSummary.total` of these values."""
        return summary_of(self.raw, weights).total


def reduce_terms(
    dist: Distributed,
    raw: Mapping[str, Tensor],
    batch: Any,
    counts: Callable[[Any], Mapping[str, float]] | None,
    *,
    stop: bool = False,
) -> StepValues:
    """All-reduces one batch's terms and counts: a single collective of ``3T + 2`` float64 values.

    Args:
        dist: The run.
        raw: This rank's value of each term on its part of the batch (0-d tensors).
        batch: This rank's part of the batch (given to ``counts``).
        counts: Batch → each term's count (e.g. labelled values); ``None``: the batch's length
            (or 1 when it has none) for every term.
        stop: This rank asks to stop after this step; every rank learns it (:attr:`StepValues.stop`),
            so all stop at the same step.

    Returns:
        The :class:`StepValues`.
    """
    names = list(raw)
    if counts is not None:
        given = counts(batch)
        local = [float(given.get(n, 0.0)) for n in names]
    else:
        size = float(len(batch)) if hasattr(batch, "__len__") else 1.0
        local = [size] * len(names)
    values = (
        torch.stack([raw[n].detach().reshape(()) for n in names]).double().cpu()
        if names
        else torch.zeros(0, dtype=torch.float64)
    )
    c = torch.tensor(local, dtype=torch.float64)
    counted = torch.where(c > 0, values * c, torch.zeros_like(values))
    nonfinite = float(not bool(torch.isfinite(values).all()))
    flags = torch.tensor([nonfinite, float(stop)], dtype=torch.float64)
    reduced = dist.all_reduce(torch.cat([c, counted, values, flags])).tolist()
    t = len(names)
    big_c, sums, plain, bad, stops = (
        reduced[:t],
        reduced[t : 2 * t],
        reduced[2 * t : 3 * t],
        reduced[3 * t],
        reduced[3 * t + 1],
    )
    world = dist.world_size
    global_raw = {n: (sums[k] / big_c[k] if big_c[k] > 0 else plain[k] / world) for k, n in enumerate(names)}
    shares = {n: (local[k] / big_c[k] if big_c[k] > 0 else 1.0 / world) for k, n in enumerate(names)}
    return StepValues(
        global_raw, dict(zip(names, big_c)) if counts is not None else None, shares, bad == 0, stops > 0
    )
