"""``sync=True``: under ``torch.distributed``, every rank's loss is the loss of the whole batch.

With data parallelism each rank holds a slice of the batch. A ``"mean"`` or ``"weighted_mean"`` divided on
each rank by its own count or weight sum, then averaged over the ranks by ``DistributedDataParallel``, is
not the mean over the whole batch (a rank with 1 sample weighs as much as one with 3, a rank whose voxels
are all masked as much as a full one), and a batch Dice sees only its rank's samples. With ``sync=True``
the losses all-reduce (sum over the ranks of the default process group) what they add up: the numerator
*with its gradient*, the denominator (the counted elements, the weight sum), the maxima that
``"weighted_mean"`` divides the weights by first (all-reduce max), and the batch Dice's ``I, P, T``.

Every rank then returns the same value: the loss one process would compute on the concatenated batch.
DDP's averaged gradient is that loss's gradient too. With local sums ``s_r`` and ``L = f(sum_r s_r)`` on
every rank, backward on rank ``r`` reaches the all-reduce with ``dL/dS`` (the same on every rank); the
all-reduce's backward sums it over the ranks, ``R dL/dS``, so rank ``r``'s parameters get
``R dL/dS ds_r/dtheta``, and DDP's average over the ``R`` ranks is ``dL/dS sum_r ds_r/dtheta = dL/dtheta``.

Every rank must make the same collectives in the same order. A loss call makes one all-reduce of sums
on every code path (eager, balanced, fused; an empty or fully masked slice included), after, for
``"weighted_mean"``, one all-reduce of maxima (BCE: of the map and ``pos_weight`` together; cross-entropy:
one for ``class_weight`` and one for the map). So every rank calls the loss at every step, with the same
options and the same kinds of weights (a map on one rank and none on another would not match).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from voxweight._validate import check_flag

__all__ = ["SYNC_REDUCTIONS", "all_reduce_sum", "check_sync", "global_mean", "max_over_ranks", "synced"]

SYNC_REDUCTIONS = ("mean", "sum", "weighted_mean")
_LOW_PRECISION = (torch.float16, torch.bfloat16)  # all-reduced in float32 (exact for maxima; sums widen)


def synced(sync: bool) -> bool:
    """Whether a loss with ``sync=sync`` reduces over ranks: a default process group of more than one rank.

    Without ``torch.distributed``, before ``init_process_group`` or with one rank, ``sync=True`` computes
    exactly what ``sync=False`` computes.

    Example:
        >>> synced(True), synced(False)  # no process group here
        (False, False)
    """
    return bool(sync) and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def check_sync(sync: Any, reduction: str, reductions: tuple[str, ...] = SYNC_REDUCTIONS) -> bool:
    """Validate a loss's ``sync`` option: a bool, and True only with a reduced loss (not ``"none"``).

    Args:
        sync: the option.
        reduction: the loss's (validated) reduction.
        reductions: the loss's reductions, named in the message (those other than ``"none"``).

    Raises:
        TypeError: for a non-bool ``sync``.
        ValueError: for ``sync=True`` with ``reduction="none"`` (a slice's element losses have no global form).

    Example:
        >>> check_sync(True, "mean")
        True
        >>> check_sync(True, "none")
        Traceback (most recent call last):
        ...
        ValueError: sync: expected a reduced loss ('mean', 'sum', 'weighted_mean'), got reduction='none'
    """
    sync = check_flag("sync", sync)
    if sync and reduction == "none":
        allowed = ", ".join(repr(r) for r in reductions if r != "none")
        raise ValueError(f"sync: expected a reduced loss ({allowed}), got reduction={reduction!r}")
    return sync


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """The sum of ``x`` over every rank of the default process group, differentiable.

    Backward all-reduces the gradient (the sum over the ranks of each rank's output gradient): see the
    module docstring for why DDP's averaged gradient is then exact. float16/bfloat16 are summed in float32.
    Needs an initialised process group (:func:`synced`).

    Formula: ``out = sum_r x_r``; ``grad x_r = sum_r' grad out_r'``.

    Shape:
        - x: any shape, the same on every rank; output: the same.

    Example:
        >>> import torch.distributed as dist
        >>> if dist.is_initialized():  # needs a process group; e.g. with 2 ranks, x = 1 on each
        ...     all_reduce_sum(torch.ones(2))  # tensor([2., 2.])
    """
    return _AllReduceSum.apply(x)


def max_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """The elementwise maximum of ``x`` over every rank of the default process group, without gradient.

    Needs an initialised process group (:func:`synced`).

    Shape:
        - x: any shape, the same on every rank; output: the same.

    Example:
        >>> import torch.distributed as dist
        >>> if dist.is_initialized():  # needs a process group; with 2 ranks holding 3 and 5:
        ...     max_over_ranks(torch.tensor(3.0 + 2 * dist.get_rank()))  # tensor(5.)
    """
    return _all_reduce(x.detach(), dist.ReduceOp.MAX)


def global_mean(total: torch.Tensor, count: torch.Tensor | None) -> torch.Tensor:
    """``sum_r total_r / sum_r count_r`` over every rank (0 if that count is 0); ``sum_r total_r`` if count is None.

    One all-reduce of ``[total, count]``, differentiable in both (a weight sum with a gradient keeps it).
    A local mean ``m`` of ``n`` elements is passed as ``total = m * n``. Needs a process group (:func:`synced`).

    Formula: ``sum_r total_r / sum_r count_r``, with an empty selection (count 0, total 0) giving 0, never NaN.

    Shape:
        - total, count: scalars; output: a scalar, ``total``'s dtype.

    Example:
        >>> import torch.distributed as dist
        >>> if dist.is_initialized():  # with 2 ranks: (1 + 3) / (1 + 3), not (1/1 + 3/3) / 2
        ...     global_mean(torch.tensor(1.0 + 2 * dist.get_rank()), torch.tensor(1.0 + 2 * dist.get_rank()))
    """
    if count is None:
        return all_reduce_sum(total)
    total, count = all_reduce_sum(torch.stack([total, count.to(total.dtype)])).unbind()
    return total / torch.where(count > 0, count, torch.ones_like(count))


def _all_reduce(x: torch.Tensor, op: Any) -> torch.Tensor:
    """A reduced copy of ``x`` (``x`` itself untouched); half types travel as float32."""
    out = x.to(torch.float32) if x.dtype in _LOW_PRECISION else x.clone(memory_format=torch.contiguous_format)
    dist.all_reduce(out, op=op)
    return out.to(x.dtype)


class _AllReduceSum(torch.autograd.Function):
    """Forward: the sum over the ranks; backward: the sum over the ranks of the gradients (differentiable)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return _all_reduce(x, dist.ReduceOp.SUM)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return all_reduce_sum(grad)
