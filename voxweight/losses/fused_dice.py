"""``fused=True`` for the sigmoid Dice: the activation, the mask and the sums ``I, P, T`` in compiled kernels.

Eagerly the Dice reads and writes voxel-sized tensors several times (the sigmoid, the masked
probabilities, the products). Here one compiled kernel reads the logits, the target, the weight and the
mask once and returns the ``[N, C]`` sums, and the backward is one compiled kernel too: with
``s = sigmoid(x)``, ``dL/dx = s (1 - s) w (gI t + gP)`` (``gI t + 2 gP p`` with ``squared``), masked voxels 0.
Nothing is saved but the inputs. Where compiling is unavailable the eager path runs, after one warning.

Module state, on purpose: the compiled kernels (built on first use, kept for the process) and whether
compiling failed (so that it warns once and is not retried on every call).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from voxweight.losses.sums import plain_sums, sigmoid_weighted_sums

__all__ = ["sigmoid_sums"]

_kernels: dict[str, Any] = {}
_failed = False


def sigmoid_sums(x: torch.Tensor, t: torch.Tensor, w: torch.Tensor | None, m: torch.Tensor | None, squared: bool,
                 fused: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``I, P, T`` (:func:`~voxweight.losses.sums.weighted_sums`) of ``p = sigmoid(x)``, masked voxels left out.

    Args:
        x: logits ``[N, C, *spatial]``.
        t: targets in [0, 1], ``x``'s shape and dtype.
        w: voxel weights (broadcastable to ``x``, ``x``'s dtype) or None.
        m: bool mask (broadcastable to ``x``) or None: False voxels count in no sum.
        squared: whether ``P`` and ``T`` sum squares.
        fused: compute in compiled kernels (when the logits are the only tensor needing a gradient).

    Returns:
        ``(I, P, T)``, each ``[N, C]``.

    Shape:
        - x, t: ``[N, C, *spatial]``; outputs: ``[N, C]``.

    Example:
        >>> x, t = torch.zeros(1, 1, 2), torch.tensor([[[1.0, 0.0]]])
        >>> sigmoid_sums(x, t, None, torch.tensor([[[True, False]]]), squared=False, fused=False)
        (tensor([[0.5000]]), tensor([[0.5000]]), tensor([[1.]]))
    """
    if fused and _applies(x, t, w):
        try:
            return _FusedSigmoidSums.apply(x, t, w, m, squared)
        except Exception as err:  # e.g. no C++ compiler for inductor: eagerly from now on
            _give_up(err)
    return sigmoid_weighted_sums(x, t, w, m, squared)


def _applies(x: torch.Tensor, t: torch.Tensor, w: torch.Tensor | None) -> bool:
    if _failed or x.ndim < 3 or x.numel() == 0 or torch.compiler.is_compiling():
        return False
    return not (t.requires_grad or (w is not None and w.requires_grad))


def _give_up(err: Exception) -> None:
    global _failed
    _failed = True
    warnings.warn(f"voxweight: fused=True could not compile the Dice kernels ({type(err).__name__}: {err}); "
                  "using the eager path", RuntimeWarning, stacklevel=4)


def _forward(x: torch.Tensor, t: torch.Tensor, w: torch.Tensor | None, m: torch.Tensor | None, squared: bool
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    p = torch.sigmoid(x)
    if m is not None:
        p, t = torch.where(m, p, 0), torch.where(m, t, 0)
    return plain_sums(p, t, w, squared)


def _backward(x: torch.Tensor, t: torch.Tensor, w: torch.Tensor | None, m: torch.Tensor | None,
              g_inter: torch.Tensor, g_pred: torch.Tensor, squared: bool) -> torch.Tensor:
    scalars = [1] * (x.ndim - 2)
    gi, gp = g_inter.reshape(*g_inter.shape, *scalars), g_pred.reshape(*g_pred.shape, *scalars)
    s = torch.sigmoid(x)
    g = gi * t + (2 * gp * s if squared else gp)
    if w is not None:
        g = g * w
    g = g * s * (1 - s)
    return g if m is None else torch.where(m, g, 0)


def _kernel(name: str) -> Any:
    if name not in _kernels:
        _kernels[name] = torch.compile(_forward if name == "forward" else _backward)
    return _kernels[name]


class _FusedSigmoidSums(torch.autograd.Function):
    """Forward and backward each one compiled kernel over the voxels; only the inputs are saved."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, t: torch.Tensor, w: torch.Tensor | None, m: torch.Tensor | None,
                squared: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ctx.save_for_backward(x, t, w, m)
        ctx.squared = squared
        return _kernel("forward")(x, t, w, m, squared)

    @staticmethod
    def backward(ctx: Any, g_inter: torch.Tensor, g_pred: torch.Tensor, _g_ground: torch.Tensor
                 ) -> tuple[torch.Tensor | None, ...]:
        x, t, w, m = ctx.saved_tensors
        args = (x, t, w, m, g_inter, g_pred, ctx.squared)
        if torch.is_grad_enabled():  # create_graph=True: a differentiable gradient, eagerly
            return _backward(*args), None, None, None, None
        try:
            grad = _kernel("backward")(*args)
        except Exception as err:  # the forward kernel compiled but this one did not
            _give_up(err)
            grad = _backward(*args)
        return grad, None, None, None, None
