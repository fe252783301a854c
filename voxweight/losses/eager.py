"""The arithmetic of the voxel-weighted BCE, on tensors that are already validated and aligned.

Torch's own kernels do the element losses; this module adds the reductions (``voxweight.losses.fused``
compiles them for ``fused=True``). Nothing here validates: ``voxweight.losses`` does that first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from voxweight.losses.align import multiply
from voxweight.losses.balanced import balanced_bce, can_fuse_balance
from voxweight.losses.finite import LOW_PRECISION, normalise, saturate
from voxweight.losses.focal import bce_focal_factor
from voxweight.losses.reduce import reduce_denominator, reduce_losses
from voxweight.losses.sync import global_mean, max_over_ranks
from voxweight.maps.balance import balance_map

__all__ = ["bce_denominator", "compute_bce"]

# The smallest weight each balance mode gives (0.5 / f >= 0.5, 1 / f >= 1, 1 / sqrt(f) >= 1, 1 where undefined):
# a max_weight below it makes every weight equal, which "weighted_mean" does not see.
_SMALLEST_FACTOR = {"balanced": 0.5, "inverse_frequency": 1.0, "sqrt_inverse": 1.0}


def compute_bce(input: torch.Tensor, target: torch.Tensor, w: torch.Tensor | None, pos: torch.Tensor | None,
                mask: torch.Tensor | None, logits: bool, reduction: str,
                balance: tuple[str, float | None] | None = None, focal_gamma: float = 0.0, sync: bool = False
                ) -> torch.Tensor:
    """Element losses and reduction; torch's own reduction (exact parity) when no mask is involved.

    ``balance = (mode, max_weight)`` multiplies ``w`` by the class-balance map of ``target``. Eagerly, with
    logits, no ``pos_weight``/mask and per-``(n, c)`` weights, :func:`balanced_bce` never writes the map
    out; otherwise the map is built here, which ``torch.compile`` fuses into the loss kernel. For
    ``"weighted_mean"``, which one common scale of the weights does not change, ``w`` is divided by its
    maximum and a ``max_weight`` below the mode's smallest balance weight is raised to it (every weight is
    equal either way), so that huge or tiny finite weights give a finite result.

    Args:
        input: logits or probabilities.
        target: targets of ``input``'s shape and dtype.
        w: the product of the aligned weights, or None.
        pos: the aligned ``pos_weight``, or None.
        mask: bool, broadcastable to ``input``, or None.
        logits: whether ``input`` holds logits.
        reduction: as in :func:`voxweight.voxel_weighted_bce`.
        balance: ``(mode, max_weight)``, or None.
        focal_gamma: the focal exponent; the element losses are multiplied by ``(1 - p_t)^gamma``
            (:func:`voxweight.losses.focal.bce_focal_factor`), the denominators stay the same. 0: plain BCE.
        sync: a process group is in use and ``sync=True`` (:func:`voxweight.losses.sync.synced`): the loss
            of every rank's elements, the same on every rank (one all-reduce, after one of the weights'
            maxima for ``"weighted_mean"``, on every path).

    Example:
        >>> x, t = torch.zeros(1, 1, 4), torch.tensor([[[1.0, 0.0, 0.0, 0.0]]])
        >>> compute_bce(x, t, None, torch.tensor(3.0), None, True, "weighted_mean")  # log 2 whatever the weights
        tensor(0.6931)
    """
    if reduction == "weighted_mean":  # scale-invariant: keep w * loss and the sums finite for huge weights
        w, balance = _weighted_mean_inputs(w, pos, balance, sync)
    if balance is not None and not focal_gamma and can_fuse_balance(input, target, w, pos, mask, logits, reduction):
        return balanced_bce(input, target, w, reduction, *balance, sync=sync)
    if balance is not None:
        w = multiply(w, balance_map(target, *balance))
    if mask is None and reduction != "weighted_mean" and input.numel() > 0 and not focal_gamma:
        loss = _elementwise(input, target, w, pos, logits, reduction)
        if not sync:
            return loss
        local = loss.float() if loss.dtype in LOW_PRECISION else loss  # torch's mean, times its count: the sum
        count = None if reduction == "sum" else reduce_denominator(reduction, None, None, input.shape, local)
        out = global_mean(local if count is None else local * count, count)
        return out if out.dtype == loss.dtype else saturate(out, loss.dtype)
    losses = _elementwise(input, target, w, pos, logits, "none")
    if focal_gamma:
        losses = losses * bce_focal_factor(input, target, focal_gamma, logits)
    return reduce_losses(losses, reduction, mask, _effective_weight(w, pos, target), input.shape, sync)


def bce_denominator(target: torch.Tensor, w: torch.Tensor | None, pos: torch.Tensor | None,
                    mask: torch.Tensor | None, reduction: str, balance: tuple[str, float | None] | None,
                    sync: bool) -> torch.Tensor:
    """What :func:`compute_bce` divides by, with the weights scaled by their maxima over every rank with ``sync``.

    ``"mean"``: the number of counted elements; ``"weighted_mean"``: ``sum(w a b (1 + (p - 1) t))`` over
    them, the balance map included (built here); float32 for half types. ``sync=True`` with a local mean
    ``m`` (the fused kernel's) gives the global loss as ``global_mean(m * denominator, denominator)``.

    Shape:
        - target: ``[N, C, *spatial]``; w, pos, mask: broadcastable to it; output: scalar.

    Example:
        >>> t = torch.tensor([[[1.0, 0.0]]])
        >>> bce_denominator(t, None, torch.tensor(3.0), None, "weighted_mean", None, sync=False)  # (3 + 1) / 3
        tensor(1.3333)
    """
    like = target.new_zeros((), dtype=torch.float32 if target.dtype in LOW_PRECISION else target.dtype)
    if reduction == "weighted_mean":
        w, balance = _weighted_mean_inputs(w, pos, balance, sync)
        if balance is not None:
            w = multiply(w, balance_map(target, *balance))
    return reduce_denominator(reduction, mask, _effective_weight(w, pos, target), target.shape, like)


def _weighted_mean_inputs(w: torch.Tensor | None, pos: torch.Tensor | None, balance: tuple[str, float | None] | None,
                          sync: bool) -> tuple[torch.Tensor | None, tuple[str, float | None] | None]:
    """``w`` over its (global, with ``sync``) maximum, and a ``max_weight`` never below the mode's smallest weight."""
    w = normalise(w, pos, max_over_ranks if sync else None)
    return w, None if balance is None else _weighted_mean_balance(*balance)


def _weighted_mean_balance(mode: str, max_weight: float | None) -> tuple[str, float | None]:
    """The same ``"weighted_mean"`` with a ``max_weight`` of at least the mode's smallest weight (never tiny)."""
    if max_weight is None:
        return mode, None
    return mode, max(max_weight, _SMALLEST_FACTOR[mode])


def _elementwise(input: torch.Tensor, target: torch.Tensor, w: torch.Tensor | None,
                 pos: torch.Tensor | None, logits: bool, reduction: str) -> torch.Tensor:
    """Torch's own kernels do the maths; ``pos_weight`` with probabilities is rewritten for them.

    With probabilities, ``-[p t log s + (1 - t) log(1 - s)] = k * BCE(s, p t / k)`` with
    ``k = p t + 1 - t``, so ``F.binary_cross_entropy`` (and its clamped, stable gradient) applies.
    """
    if logits:
        return F.binary_cross_entropy_with_logits(input, target, weight=w, pos_weight=pos, reduction=reduction)
    if pos is not None:
        k = pos * target + (1 - target)
        target = torch.where(k > 0, pos * target / torch.where(k > 0, k, 1), target)
        w = multiply(w, k)
    if w is not None:
        w = w.expand(input.shape)  # F.binary_cross_entropy wants a weight of the full shape
    return F.binary_cross_entropy(input, target, weight=w, reduction=reduction)


def _effective_weight(w: torch.Tensor | None, pos: torch.Tensor | None, target: torch.Tensor
                      ) -> torch.Tensor | None:
    """The weight each element's plain BCE received: ``w * (1 + (p - 1) t)``."""
    if pos is None:
        return w
    return multiply(w, 1 + (pos - 1) * target)
