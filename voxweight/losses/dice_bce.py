"""The Dice + BCE compound's voxel work in one pass each way: one sigmoid, one gradient buffer.

Separately, the Dice term and the BCE term each read the logits, take a sigmoid (the BCE's backward
takes it again), and write a voxel-sized gradient that autograd then adds. Here, per sample and channel:

* the Dice sums ``I = sum w_d s t``, ``P = sum w_d s^k``, ``T = sum w_d t^k`` of ``s = sigmoid(x)``;
* the BCE sum ``B = sum w_b l`` of torch's element loss with ``pos_weight`` ``q``,
  ``l = (1 - t) x + (1 + (q - 1) t) softplus(-x)``, split into sums whose ``q`` factor is applied per
  channel afterwards;
* backward: ``dL/dx = s (1 - s) w_d (gI t + gP) + gB w_b ((s - t) + (q - 1) t (s - 1))``, written into
  one buffer in place.

Masked voxels (``m`` False) count in no sum and get no gradient, whatever their logit (it is replaced by 0
before anything reads it). The per-(n, c) sums then go through the two terms' ordinary reductions.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from voxweight.losses.sums import dot_rows, forward_sums, per_row, row_sums, sums_gradient, times_

__all__ = ["dice_bce_sums"]


def dice_bce_sums(x: torch.Tensor, t: torch.Tensor, w_dice: torch.Tensor | None, w_bce: torch.Tensor | None,
                  m: torch.Tensor | None, pos: torch.Tensor | None, squared: bool
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(I, P, T, B)`` per sample and channel, with the logits' gradient by the closed form above.

    Args:
        x: logits ``[N, C, *spatial]`` (at least one spatial axis), float32 or float64, the only input that
            needs a gradient.
        t: targets in [0, 1], ``x``'s shape and dtype.
        w_dice: the Dice term's voxel weights (broadcastable to ``x``) or None.
        w_bce: the BCE term's voxel weights (broadcastable to ``x``) or None.
        m: bool mask broadcastable to ``x``, or None.
        pos: ``pos_weight`` ``[C]``, or None.
        squared: whether ``P`` and ``T`` sum squares.

    Returns:
        Four ``[N, C]`` tensors: ``I``, ``P``, ``T`` and ``B = sum_v w_b l``.

    Shape:
        - x, t: ``[N, C, *spatial]``; outputs: ``[N, C]``.

    Example:
        >>> x, t = torch.zeros(1, 1, 2), torch.tensor([[[1.0, 0.0]]])
        >>> [round(v.item(), 4) for v in dice_bce_sums(x, t, None, None, None, None, False)]  # B = 2 log 2
        [0.5, 1.0, 1.0, 1.3863]
    """
    return _DiceBCESums.apply(x, t, w_dice, w_bce, m, pos, squared)


def _shared_forward(s: torch.Tensor, x: torch.Tensor, t: torch.Tensor, w: torch.Tensor | None, pos: Any,
                    squared: bool) -> tuple[torch.Tensor, ...]:
    """Both terms' sums with one map ``w``: ``w t`` is formed once and every sum is a dot product with it."""
    n, c = s.shape[:2]
    wt = t if w is None else t * w
    inter, cross = dot_rows(wt, s), dot_rows(wt, x)
    pred = row_sums(s * s, w) if squared else row_sums(s, w)
    ground = dot_rows(wt, t) if squared else wt.reshape(n, c, wt.shape[2:].numel()).sum(-1)
    soft = F.softplus(x)  # l = softplus(x) - t x; with q: + (q - 1) t softplus(-x) = (q - 1) t (softplus(x) - x)
    bce = row_sums(soft, w) - cross
    if pos is not None:
        bce = bce + (pos - 1) * (dot_rows(wt, soft) - cross)
    return inter, pred, ground, bce


def _separate_forward(s: torch.Tensor, x: torch.Tensor, t: torch.Tensor, w_dice: torch.Tensor | None,
                      w_bce: torch.Tensor | None, pos: Any, squared: bool) -> tuple[torch.Tensor, ...]:
    """Both terms' sums with different maps (one of them None: the map feeds one term only)."""
    inter, pred, ground = forward_sums(s, t, w_dice, squared)
    wt = t if w_bce is None else t * w_bce
    soft, cross = F.softplus(x), dot_rows(wt, x)
    bce = row_sums(soft, w_bce) - cross
    if pos is not None:
        bce = bce + (pos - 1) * (dot_rows(wt, soft) - cross)
    return inter, pred, ground, bce


class _DiceBCESums(torch.autograd.Function):
    """Forward: the Dice and BCE sums from one sigmoid. Backward: both terms' gradients in one buffer."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, t: torch.Tensor, w_dice: torch.Tensor | None,
                w_bce: torch.Tensor | None, m: torch.Tensor | None, pos: torch.Tensor | None, squared: bool
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        shared = w_dice is w_bce
        if m is not None:  # a masked logit is never read (NaN or inf included) and its weights are 0
            x = x.masked_fill(~m, 0)
            w_dice = m.to(x.dtype) if w_dice is None else w_dice * m
            w_bce = w_dice if shared else m.to(x.dtype) if w_bce is None else w_bce * m
        s = torch.sigmoid(x)
        sums = (_shared_forward(s, x, t, w_dice, pos, squared) if shared
                else _separate_forward(s, x, t, w_dice, w_bce, pos, squared))
        ctx.save_for_backward(s, t, w_dice, None if shared else w_bce, pos)
        ctx.squared, ctx.shared = squared, shared
        return sums

    @staticmethod
    def backward(ctx: Any, g_inter: torch.Tensor, g_pred: torch.Tensor, _g_ground: torch.Tensor,
                 g_bce: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        s, t, w_dice, w_bce, pos = ctx.saved_tensors
        gb = per_row(g_bce, s.ndim)
        grad = sums_gradient(s, t, None, g_inter, g_pred, ctx.squared)  # (gI t + gP), or (gI t + 2 gP s) ...
        grad.mul_(s)
        grad.addcmul_(grad, s, value=-1)  # ... times s (1 - s)
        if not ctx.shared:  # the Dice's weight now, the BCE's gradient in a buffer of its own
            grad = grad if w_dice is None else times_(grad, w_dice)
            bce = _bce_gradient(torch.zeros_like(s), s, t, gb, pos)
            return grad.add_(bce if w_bce is None else times_(bce, w_bce)), None, None, None, None, None, None
        _bce_gradient(grad, s, t, gb, pos)  # += gB ((s - t) + (q - 1) t (s - 1)), then the common weight
        return (grad if w_dice is None else times_(grad, w_dice)), None, None, None, None, None, None


def _bce_gradient(out: torch.Tensor, s: torch.Tensor, t: torch.Tensor, gb: torch.Tensor, pos: torch.Tensor | None
                  ) -> torch.Tensor:
    """``out += gB ((s - t) + (q - 1) t (s - 1))`` in place (the BCE's dL/dx before its weight)."""
    out.addcmul_(s, gb).addcmul_(t, gb, value=-1)
    if pos is not None:
        q = gb * (pos - 1).reshape(1, -1, *[1] * (s.ndim - 2))
        out.addcmul_(t * s, q).addcmul_(t, q, value=-1)
    return out
