"""Class-balanced BCE with logits whose balance weights are never written out as a voxel map.

With per-sample-and-channel foreground/background weights ``fg``/``bg`` (from the target's own
foreground fraction) a voxel's weight is ``w = bg + (fg - bg) t``, so the weighted loss of one ``(n, c)``
volume is two reductions::

    sum_v w_v l_v = bg * sum_v l_v + (fg - bg) * sum_v t_v l_v,    l = softplus(x) - x t

and the gradient ``w (sigmoid(x) - t)`` is written straight into the gradient buffer. One voxel-sized
buffer per step: it holds the element losses in the forward pass and becomes the input's gradient in
the backward pass. ``torch.compile`` (``fused=True``) does not come here: it fuses the map formulation.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from voxweight.losses.sync import global_mean
from voxweight.maps.balance import balance_factors

_FAST_DTYPES = (torch.float32, torch.float64)


def can_fuse_balance(input: torch.Tensor, target: torch.Tensor, w: torch.Tensor | None, pos: torch.Tensor | None,
                     mask: torch.Tensor | None, logits: bool, reduction: str) -> bool:
    """Whether :func:`balanced_bce` computes this call (otherwise the loss builds the map)."""
    if not logits or pos is not None or mask is not None or reduction == "none" or input.numel() == 0:
        return False
    if input.dtype not in _FAST_DTYPES or target.requires_grad or torch.compiler.is_compiling():
        return False
    return w is None or (not w.requires_grad and all(s == 1 for s in w.shape[2:]))


def balanced_bce(input: torch.Tensor, target: torch.Tensor, w: torch.Tensor | None, reduction: str,
                 mode: str, max_weight: float | None, sync: bool = False) -> torch.Tensor:
    """Reduced ``w * balance(target) * BCE(input, target)`` (see the module docstring).

    ``w`` is None or a per-``(n, c)`` weight (spatial sizes 1); ``reduction`` is ``"mean"``, ``"sum"``
    or ``"weighted_mean"`` with :func:`voxweight.voxel_weighted_bce`'s denominators. The balance weights
    are per sample and channel, so a rank's slice of the batch has the same ones as the whole batch;
    ``sync`` (a process group is in use) sums the weighted sum and the denominator over every rank.

    Example:
        >>> x, t = torch.zeros(1, 1, 4), torch.tensor([[[1.0, 0.0, 0.0, 0.0]]])
        >>> balanced_bce(x, t, None, "mean", "balanced", None)  # the mean balanced weight is 1: log 2
        tensor(0.6931)
    """
    n, c = input.shape[:2]
    spatial = tuple(range(2, input.ndim))
    fraction = target.mean(dim=spatial)
    fg, bg = balance_factors(fraction, mode, max_weight)
    extra = torch.ones_like(fraction) if w is None else w.reshape(w.shape[:2]).expand(n, c)
    den = _denominator(extra, fg, bg, fraction, input[0, 0].numel(), reduction)
    if sync:  # the local weighted sum over the local denominator's share of the global one
        total = _BalancedBCE.apply(input, target, fg, bg, extra)
        return global_mean(total, None if reduction == "sum" else den)
    scale = extra / torch.where(den > 0, den, torch.ones_like(den))
    return _BalancedBCE.apply(input, target, fg, bg, scale)


def _denominator(extra: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor, fraction: torch.Tensor, voxels: int,
                 reduction: str) -> torch.Tensor:
    """What the weighted sum is divided by (0 for an empty selection, which the callers treat as 1)."""
    if reduction == "sum":
        return torch.ones((), dtype=extra.dtype, device=extra.device)
    if reduction == "mean":
        return torch.tensor(float(extra.numel() * voxels), dtype=extra.dtype, device=extra.device)
    return (extra * (bg + (fg - bg) * fraction)).sum() * voxels  # sum of w over all voxels, exactly


class _BalancedBCE(torch.autograd.Function):
    """``sum_nc scale * sum_v (bg + (fg - bg) t) l``; every ``[N, C]`` factor is constant (no gradient)."""

    @staticmethod
    def forward(ctx: Any, input: torch.Tensor, target: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor,
                scale: torch.Tensor) -> torch.Tensor:
        losses = F.softplus(input).addcmul_(input, target, value=-1)
        flat, t = losses.flatten(2), target.flatten(2).to(losses.dtype)
        per_sample = bg * flat.sum(dim=2) + (fg - bg) * torch.einsum("ncv,ncv->nc", flat, t)
        ctx.save_for_backward(input, target, fg, bg, scale)
        ctx.buffer = losses  # reused as the input's gradient: one voxel-sized buffer per step
        return (scale * per_sample).sum()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None, None]:
        input, target, fg, bg, scale = ctx.saved_tensors
        buffer, ctx.buffer = ctx.buffer, None  # a second backward (retain_graph) gets a fresh one
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        view = (*scale.shape, *([1] * (input.ndim - 2)))
        coef = (grad * scale * bg).reshape(view)
        ratio = ((fg - bg) / bg).reshape(view)
        if torch.is_grad_enabled():  # create_graph=True: differentiable, out of place
            return (torch.sigmoid(input) - target) * (1 + ratio * target) * coef, None, None, None, None
        out = torch.sigmoid(input, out=buffer if buffer is not None else torch.empty_like(input))
        out.sub_(target)
        _scale_by_target(out, target, ratio, per_slice=out.device.type == "cpu")
        return out.mul_(coef), None, None, None, None


def _scale_by_target(out: torch.Tensor, target: torch.Tensor, ratio: torch.Tensor, per_slice: bool) -> None:
    """``out *= 1 + ratio * target`` in place, ``ratio`` constant per ``(n, c)``.

    ``per_slice`` (for the CPU): one ``addcmul_`` per ``(n, c)`` slice with the ratio as a number, which
    avoids a voxel-sized temporary (fresh CPU memory costs page faults). On a GPU the temporary comes
    from the caching allocator, and reading the ratios would synchronise.
    """
    if not per_slice:
        out.mul_(torch.addcmul(torch.ones_like(ratio), ratio, target))
        return
    for (n, c), r in zip(_indices(ratio), ratio.flatten().tolist(), strict=True):
        if r != 0.0:
            out[n, c].addcmul_(out[n, c], target[n, c], value=r)


def _indices(ratio: torch.Tensor) -> list[tuple[int, int]]:
    n, c = ratio.shape[:2]
    return [(i, j) for i in range(n) for j in range(c)]
