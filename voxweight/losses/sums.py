"""The Dice family's weighted sums ``I, P, T`` with a hand-written backward: few passes over the voxels.

Autograd of ``(w * p * t).sum()`` and ``(w * p).sum()`` keeps the products and replays them backwards; but
the sums are linear in ``p`` (or quadratic, ``squared``), so their gradient is known in closed form:
``dI/dp = w t``, ``dP/dp = w`` (``2 w p``). :func:`weighted_sums` computes the sums as batched dot products
(one read of each tensor, no voxel-sized temporaries where the weight has one channel) and its backward
writes ``gI w t + gP w`` in two passes. Everything after the sums (the Dice ratio, reductions, an all-reduce
across processes) runs on ``[N, C]`` tensors with ordinary autograd.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["dot_rows", "forward_sums", "per_row", "plain_sums", "row_sums", "sigmoid_weighted_sums", "sums_gradient",
           "times_", "weighted_sums"]


def weighted_sums(p: torch.Tensor, t: torch.Tensor, w: torch.Tensor | None, squared: bool
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per sample and channel, ``I = sum_v w p t``, ``P = sum_v w p^k``, ``T = sum_v w t^k`` (k = 2 if squared).

    The gradient flows to ``p`` (by the closed form above) and, where they require one, to ``t`` and ``w``
    (then by ordinary autograd of the products).

    Args:
        p: probabilities ``[N, C, *spatial]``.
        t: targets, ``p``'s shape and dtype.
        w: voxel weights ``[N or 1, C or 1, *spatial or 1]`` in ``p``'s dtype, or None.
        squared: whether ``P`` and ``T`` sum squares.

    Returns:
        ``(I, P, T)``, each ``[N, C]``.

    Shape:
        - p, t: ``[N, C, *spatial]``; outputs: ``[N, C]``.

    Example:
        >>> p, t = torch.tensor([[[0.5, 1.0]]]), torch.tensor([[[1.0, 1.0]]])
        >>> weighted_sums(p, t, torch.tensor([[[2.0, 1.0]]]), squared=False)
        (tensor([[2.]]), tensor([[2.]]), tensor([[3.]]))
    """
    if p.ndim < 3 or p.numel() == 0 or t.requires_grad or (w is not None and w.requires_grad):
        return plain_sums(p, t, w, squared)
    return _WeightedSums.apply(p, t, w, squared)


def sigmoid_weighted_sums(x: torch.Tensor, t: torch.Tensor, w: torch.Tensor | None, m: torch.Tensor | None,
                          squared: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`weighted_sums` of ``p = sigmoid(x)`` with the mask ``m`` (False voxels count in no sum).

    The sigmoid is taken inside, so the backward writes ``dL/dx = s (1 - s) w (gI t + gP)`` into one buffer
    (no separate sigmoid backward); the mask zeroes ``s`` in place and joins the weight.

    Shape:
        - x, t: ``[N, C, *spatial]``; w, m: broadcastable to them; outputs: ``[N, C]``.

    Example:
        >>> x, t = torch.zeros(1, 1, 2), torch.tensor([[[1.0, 1.0]]])
        >>> sigmoid_weighted_sums(x, t, None, torch.tensor([[[True, False]]]), squared=False)
        (tensor([[0.5000]]), tensor([[0.5000]]), tensor([[1.]]))
    """
    if x.ndim < 3 or x.numel() == 0 or t.requires_grad or (w is not None and w.requires_grad):
        p = torch.sigmoid(x)
        if m is not None:  # after the activation: a masked logit has no effect at any value
            p, t = torch.where(m, p, 0), torch.where(m, t, 0)
        return plain_sums(p, t, w, squared)
    return _SigmoidSums.apply(x, t, w, m, squared)


def plain_sums(p: torch.Tensor, t: torch.Tensor, w: torch.Tensor | None, squared: bool
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`weighted_sums` as plain tensor expressions (any shapes; autograd gives every input's gradient).

    Shape:
        - as for :func:`weighted_sums`.

    Example:
        >>> plain_sums(torch.tensor([[[0.5, 1.0]]]), torch.tensor([[[1.0, 1.0]]]), None, squared=True)
        (tensor([[1.5000]]), tensor([[1.2500]]), tensor([[2.]]))
    """
    pk, tk = (p * p, t * t) if squared else (p, t)
    if w is not None:
        t, pk, tk = t * w, pk * w, tk * w
    dims = list(range(2, p.ndim))
    terms = (p * t, pk, tk)
    if not dims:
        return terms
    return terms[0].sum(dims), terms[1].sum(dims), terms[2].sum(dims)


def _rows(x: torch.Tensor, n: int, c: int, spatial: torch.Size) -> torch.Tensor:
    """``x`` broadcast to ``[n, c, *spatial]`` as ``[n, c, V]`` (no copy where only ``n`` or ``c`` expand)."""
    return x.expand(n, c, *spatial).reshape(n, c, spatial.numel())


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise dot products of ``[n, c, V]`` tensors: ``[n, c]``, one ``torch.dot`` per row (one read of each).

    A batched ``bmm`` of ``[1, V] @ [V, 1]`` products runs several times slower on the CPU than the BLAS dot.
    """
    n, c, v = a.shape
    rows = zip(a.reshape(n * c, v), b.reshape(n * c, v), strict=True)
    return torch.stack([torch.dot(x, y) for x, y in rows]).reshape(n, c) if n * c else a.new_zeros(n, c)


def _matvec(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``sum_v a[n, c, v] w[n, 0, v]``: ``[n, c]`` by a matrix-vector product per sample."""
    return torch.bmm(a, w.transpose(1, 2)).squeeze(2)


def row_sums(a: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """``sum_v w a`` per sample and channel (``w`` None: 1), reading ``a`` once.

    No voxel-sized temporary where ``w`` has one channel and full spatial size (a matrix-vector product per
    sample).

    Shape:
        - a: ``[N, C, *spatial]``; w: broadcastable to it; output: ``[N, C]``.

    Example:
        >>> row_sums(torch.ones(1, 2, 3), torch.tensor([[[1.0, 2.0, 3.0]]]))
        tensor([[6., 6.]])
    """
    n, c = a.shape[:2]
    ar = a.reshape(n, c, a.shape[2:].numel())
    if w is None:
        return ar.sum(-1)
    if w.shape[2:] == a.shape[2:] and w.shape[1] == 1:
        return _matvec(ar, _rows(w, n, 1, a.shape[2:]))
    return _dot(ar, _rows(w, n, c, a.shape[2:]))


def dot_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``sum_v a b`` per sample and channel, ``a`` and ``b`` of the same shape ``[N, C, *spatial]``.

    Example:
        >>> dot_rows(torch.ones(1, 2, 3), torch.full((1, 2, 3), 2.0))
        tensor([[6., 6.]])
    """
    n, c = a.shape[:2]
    v = a.shape[2:].numel()
    return _dot(a.reshape(n, c, v), b.reshape(n, c, v))


def forward_sums(p: torch.Tensor, t: torch.Tensor, w: torch.Tensor | None, squared: bool
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The values of :func:`weighted_sums` (no autograd), for the kernels that write their own backward.

    Shape:
        - p, t: ``[N, C, *spatial]`` (at least one spatial axis); w: broadcastable; outputs: ``[N, C]``.

    Example:
        >>> forward_sums(torch.tensor([[[0.5, 1.0]]]), torch.tensor([[[1.0, 1.0]]]), None, squared=False)
        (tensor([[1.5000]]), tensor([[1.5000]]), tensor([[2.]]))
    """
    n, c = p.shape[:2]
    v = p.shape[2:].numel()
    pr, tr = p.reshape(n, c, v), t.reshape(n, c, v)
    if w is None:
        pred = _dot(pr, pr) if squared else pr.sum(-1)
        ground = _dot(tr, tr) if squared else tr.sum(-1)
        return _dot(pr, tr), pred, ground
    if w.shape[2:] == p.shape[2:] and w.shape[1] == 1:  # one map for every channel: matrix-vector products
        pk, tk = (p * p, t * t) if squared else (p, t)
        return row_sums(p * t, w), row_sums(pk, w), row_sums(tk, w)
    wr = _rows(w, n, c, p.shape[2:])
    wp = wr * pr
    pred = _dot(wp, pr) if squared else wp.sum(-1)
    ground = _dot(wr * tr, tr) if squared else _dot(wr, tr)
    return _dot(wp, tr), pred, ground


def per_row(g: torch.Tensor, ndim: int) -> torch.Tensor:
    """A per-(sample, channel) ``[N, C]`` tensor shaped to broadcast against ``[N, C, *spatial]`` (``ndim`` dims).

    Example:
        >>> per_row(torch.ones(2, 3), 5).shape
        torch.Size([2, 3, 1, 1, 1])
    """
    return g.reshape(*g.shape, *[1] * (ndim - g.ndim))


def times_(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x * w``, written into ``x`` where ``w`` broadcasts to ``x``'s shape (a new tensor otherwise).

    Example:
        >>> times_(torch.ones(1, 2), torch.tensor([2.0]))
        tensor([[2., 2.]])
    """
    return x.mul_(w) if torch.broadcast_shapes(x.shape, w.shape) == x.shape else x * w


def sums_gradient(p: torch.Tensor | None, t: torch.Tensor, w: torch.Tensor | None, g_inter: torch.Tensor,
                  g_pred: torch.Tensor, squared: bool) -> torch.Tensor:
    """``dL/dp`` of the sums from their gradients: ``w (gI t + gP)``, or ``w (gI t + 2 gP p)`` when squared.

    ``p`` is read only when ``squared``. The result is a new voxel-sized buffer (the callers scale it in place).

    Shape:
        - t: ``[N, C, *spatial]``; p, w: broadcastable to it; g_inter, g_pred: ``[N, C]``; output: ``t``'s shape.

    Example:
        >>> t = torch.tensor([[[1.0, 0.0]]])
        >>> sums_gradient(None, t, None, torch.tensor([[2.0]]), torch.tensor([[1.0]]), squared=False)
        tensor([[[3., 1.]]])
    """
    grad = t * per_row(g_inter, t.ndim)  # t gI, then + gP (an addcmul onto an expanded gP is several times slower)
    gp = per_row(g_pred, t.ndim)
    grad.addcmul_(p, 2 * gp) if squared else grad.add_(gp)
    return grad if w is None else times_(grad, w)


class _WeightedSums(torch.autograd.Function):
    """Forward: the three sums. Backward: ``dL/dp = w (gI t + gP)`` or ``w (gI t + 2 gP p)`` (squared)."""

    @staticmethod
    def forward(ctx: Any, p: torch.Tensor, t: torch.Tensor, w: torch.Tensor | None, squared: bool
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ctx.save_for_backward(p if squared else None, t, w)
        ctx.squared = squared
        return forward_sums(p, t, w, squared)

    @staticmethod
    def backward(ctx: Any, g_inter: torch.Tensor, g_pred: torch.Tensor, _g_ground: torch.Tensor
                 ) -> tuple[torch.Tensor | None, ...]:
        p, t, w = ctx.saved_tensors
        return sums_gradient(p, t, w, g_inter, g_pred, ctx.squared), None, None, None


class _SigmoidSums(torch.autograd.Function):
    """Forward: ``s = sigmoid(x)`` (0 where masked) and the sums. Backward: ``s (1 - s) dL/dp`` in place."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, t: torch.Tensor, w: torch.Tensor | None, m: torch.Tensor | None,
                squared: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s = torch.sigmoid(x)
        if m is not None:  # s = 0 and weight 0 where masked: whatever the logit, nothing is counted
            s.masked_fill_(~m, 0)
            w = m.to(x.dtype) if w is None else w * m
        ctx.save_for_backward(s, t, w)
        ctx.squared = squared
        return forward_sums(s, t, w, squared)

    @staticmethod
    def backward(ctx: Any, g_inter: torch.Tensor, g_pred: torch.Tensor, _g_ground: torch.Tensor
                 ) -> tuple[torch.Tensor | None, ...]:
        s, t, w = ctx.saved_tensors
        grad = sums_gradient(s, t, w, g_inter, g_pred, ctx.squared)
        grad.mul_(s)
        return grad.addcmul_(grad, s, value=-1), None, None, None, None  # g s - g s^2 = g s (1 - s)
