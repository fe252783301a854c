"""Reductions shared by the losses: each one says what it divides by, and none returns NaN."""

from __future__ import annotations

import torch

from voxweight.losses.finite import saturate
from voxweight.losses.sync import global_mean

__all__ = ["REDUCTIONS", "reduce_denominator", "reduce_losses"]

REDUCTIONS = ("mean", "sum", "none", "weighted_mean")
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def reduce_losses(losses: torch.Tensor, reduction: str, mask: torch.Tensor | None,
                  weight: torch.Tensor | None, shape: torch.Size, sync: bool = False) -> torch.Tensor:
    """Reduce element losses as ``"none"``, ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

    ``"mean"`` divides by the number of counted elements, ``"weighted_mean"`` by the sum of ``weight``
    over them (by the count when ``weight`` is None). ``mask`` (broadcastable to ``shape``) marks the
    counted elements; masked losses become 0. An empty selection reduces to 0, never NaN. float16 and
    bfloat16 accumulate in float32; a result beyond their range saturates at their largest finite value.
    ``sync`` (a process group is in use: ``voxweight.losses.sync.synced``): the sum and the denominator
    are each summed over the ranks (one all-reduce, with their gradient), so every rank returns the
    reduction of all ranks' elements.

    Formula: ``"mean"``: ``sum(l) / #counted``; ``"weighted_mean"``: ``sum(l) / sum(w over counted)``
    (with ``sync``, each sum runs over every rank's elements).

    Shape:
        - losses: any shape ``S``; mask, weight: broadcastable to ``shape`` (= ``S``); output: scalar, or
          ``S`` for ``"none"``.

    Example:
        >>> losses = torch.tensor([3.0, 1.0])  # already weighted: w * plain loss, with w = [3, 1]
        >>> reduce_losses(losses, "weighted_mean", None, torch.tensor([3.0, 1.0]), torch.Size([2]))
        tensor(1.)
    """
    if mask is not None:
        losses = torch.where(mask, losses, losses.new_zeros(()))
    if reduction == "none":
        return losses
    acc = torch.float32 if losses.dtype in _LOW_PRECISION else losses.dtype
    total = losses.sum(dtype=acc)
    if reduction == "sum":
        return _cast(global_mean(total, None) if sync else total, losses.dtype)
    count = reduce_denominator(reduction, mask, weight, shape, total)
    if sync:
        return _cast(global_mean(total, count), losses.dtype)
    # An empty selection (all masked out, or all weights 0) has a sum of 0 and reduces to 0, not NaN.
    return _cast(total / torch.where(count > 0, count, torch.ones_like(count)), losses.dtype)


def reduce_denominator(reduction: str, mask: torch.Tensor | None, weight: torch.Tensor | None, shape: torch.Size,
                       like: torch.Tensor) -> torch.Tensor:
    """What :func:`reduce_losses` divides by (before the guard against 0), in ``like``'s dtype and device.

    ``"mean"`` (or ``weight`` None): the number of counted elements; ``"weighted_mean"``: the sum of
    ``weight`` over them. No host-device synchronisation.

    Shape:
        - mask, weight: broadcastable to ``shape``; like: any; output: scalar.

    Example:
        >>> reduce_denominator("mean", torch.tensor([True, False]), None, torch.Size([3, 2]), torch.zeros(()))
        tensor(3.)
    """
    if reduction == "mean" or weight is None:
        return _count(mask, shape, like)
    weight = weight.expand(shape)
    if mask is not None:
        weight = torch.where(mask, weight, weight.new_zeros(()))
    return weight.sum(dtype=like.dtype)


def _cast(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` in ``dtype``, saturating (a float16 sum above 65504 is 65504, not inf)."""
    return x if x.dtype == dtype else saturate(x, dtype)


def _count(mask: torch.Tensor | None, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    """Number of counted elements, as a tensor of ``like``'s dtype and device (no host sync)."""
    numel = shape.numel()
    if mask is None:
        return torch.tensor(float(numel), dtype=like.dtype, device=like.device)
    per_mask_element = numel // max(mask.numel(), 1)
    return torch.count_nonzero(mask).to(like.dtype) * per_mask_element
