"""The arithmetic of the voxel-weighted BCE, on tensors that are already validated and aligned.

Torch's own kernels do the element losses; this module adds the reductions (``voxweight.losses.fused``
compiles them for ``fused=True``). Nothing here validates: ``voxweight.losses`` does that first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from voxweight.losses.align import multiply
from voxweight.losses.balanced import balanced_bce, can_fuse_balance
from voxweight.losses.reduce import reduce_losses
from voxweight.maps.balance import balance_map


def compute_bce(input: torch.Tensor, target: torch.Tensor, w: torch.Tensor | None, pos: torch.Tensor | None,
                mask: torch.Tensor | None, logits: bool, reduction: str,
                balance: tuple[str, float | None] | None = None) -> torch.Tensor:
    """Element losses and reduction; torch's own reduction (exact parity) when no mask is involved.

    ``balance = (mode, max_weight)`` multiplies ``w`` by the class-balance map of ``target``. Eagerly, with
    logits, no ``pos_weight``/mask and per-``(n, c)`` weights, :func:`balanced_bce` never writes the map
    out; otherwise the map is built here, which ``torch.compile`` fuses into the loss kernel.

    Args:
        input: logits or probabilities.
        target: targets of ``input``'s shape and dtype.
        w: the product of the aligned weights, or None.
        pos: the aligned ``pos_weight``, or None.
        mask: bool, broadcastable to ``input``, or None.
        logits: whether ``input`` holds logits.
        reduction: as in :func:`voxweight.voxel_weighted_bce`.
        balance: ``(mode, max_weight)``, or None.

    Example:
        >>> x, t = torch.zeros(1, 1, 4), torch.tensor([[[1.0, 0.0, 0.0, 0.0]]])
        >>> compute_bce(x, t, None, torch.tensor(3.0), None, True, "weighted_mean")  # log 2 whatever the weights
        tensor(0.6931)
    """
    if balance is not None and can_fuse_balance(input, target, w, pos, mask, logits, reduction):
        return balanced_bce(input, target, w, reduction, *balance)
    if balance is not None:
        w = multiply(w, balance_map(target, *balance))
    if mask is None and reduction != "weighted_mean" and input.numel() > 0:
        return _elementwise(input, target, w, pos, logits, reduction)
    losses = _elementwise(input, target, w, pos, logits, "none")
    return reduce_losses(losses, reduction, mask, _effective_weight(w, pos, target), input.shape)


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
