r"""Soft morphology on probability maps: erosion, dilation, opening and the clDice soft skeleton.

The soft skeleton of Shit et al. (2021, "clDice", section 3.2) peels a probability map ``x`` with min/max
filters and keeps, at each step, what an opening removes:

.. math::

    s_0 = \operatorname{relu}(x - \operatorname{open}(x)),\qquad
    x_{i} = \operatorname{erode}(x_{i-1}),\qquad
    s_i = s_{i-1} + \operatorname{relu}(\delta_i - s_{i-1}\,\delta_i),\quad
    \delta_i = \operatorname{relu}(x_i - \operatorname{open}(x_i))

with ``open = dilate(erode(.))``. ``erode`` is the minimum over the voxel and its ``2k`` face neighbours (the
cross: in 2-D and 3-D exactly the minimum of the axis-wise 3-voxel min-pools that MONAI and the authors' code
take), ``dilate`` the maximum over the ``3^k`` box (their ``3 x 3 (x 3)`` max-pool). A neighbour outside the
volume is ignored (the pools' padding), so the volume's edge is not background: an all-ones map has an empty
skeleton. Values are those of MONAI's ``soft_skel`` bit for bit (min and max are exact).

Speed: the box is separable (three 3-voxel passes) and each pass is a few shifted elementwise ``minimum`` /
``maximum`` calls instead of a pooling kernel; with a gradient, erosion and dilation are autograd functions
that keep which neighbour won (one byte per voxel) and route the gradient back to it, the first of tied
neighbours in the order "self, then axis by axis, lower then upper" (a max-pool's argmax also takes one of
them; MONAI's elementwise ``min`` of the axis pools splits a tie between axes: the same total gradient, unless
two different voxels hold exactly equal values). Each erosion is computed once: ``erode(x_i)`` is both
``x_{i+1}`` and the inside of ``open(x_i)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable

from voxweight._validate import check_float_tensor, describe

__all__ = ["check_iterations", "soft_dilate", "soft_erode", "soft_open", "soft_skeleton"]


def check_iterations(iterations: Any) -> int:
    """Require an integer >= 0 (not a bool) for ``iterations``; return it as ``int``.

    Example:
        >>> check_iterations(-1)
        Traceback (most recent call last):
        ...
        ValueError: iterations: expected an integer >= 0 (the skeleton's peeling steps), got -1
    """
    expected = "an integer >= 0 (the skeleton's peeling steps)"
    if isinstance(iterations, bool) or not hasattr(iterations, "__index__"):
        raise TypeError(f"iterations: expected {expected}, got {describe(iterations)}")
    if iterations.__index__() < 0:
        raise ValueError(f"iterations: expected {expected}, got {iterations}")
    return iterations.__index__()


def _steps(x: torch.Tensor, axes: range | list[int]) -> list[tuple[int, int, int, int]]:
    """``(axis, size, out_start, src_start)`` for each lower and upper neighbour along ``axes`` that exist."""
    out = []
    for d in axes:
        n = x.shape[d]
        if n > 1:  # along an axis of size 1 there is no neighbour
            out += [(d, n - 1, 1, 0), (d, n - 1, 0, 1)]  # voxel i reads i - 1, then i + 1
    return out


def _pass(x: torch.Tensor, steps: list[tuple[int, int, int, int]], lower: bool, index: bool
          ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The min (``lower``) or max of each voxel and the neighbours in ``steps``; which one won, if ``index``."""
    out = x.clone()
    won = torch.zeros(x.shape, dtype=torch.uint8, device=x.device) if index else None
    pick = torch.minimum if lower else torch.maximum
    beats = torch.lt if lower else torch.gt
    for code, (d, n, o, s) in enumerate(steps, start=1):
        target, source = out.narrow(d, o, n), x.narrow(d, s, n)
        if won is not None:  # strict, so the first of tied neighbours wins; a later winner has a larger code
            slot = won.narrow(d, o, n)
            torch.maximum(slot, beats(source, target).view(torch.uint8).mul_(code), out=slot)
        pick(target, source, out=target)
    return out, won


def _route(grad: torch.Tensor, won: torch.Tensor, steps: list[tuple[int, int, int, int]]) -> torch.Tensor:
    """The gradient of :func:`_pass`: each output's gradient goes to the voxel that won there."""
    out = grad * (won == 0)  # multiplying by a bool mask is faster than torch.where on the CPU
    for code, (d, n, o, s) in enumerate(steps, start=1):
        out.narrow(d, s, n).addcmul_(grad.narrow(d, o, n), won.narrow(d, o, n) == code)
    return out


class _Erode(torch.autograd.Function):
    """Cross-shaped min filter with the gradient routed to the winning neighbour."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        steps = _steps(x, range(2, x.ndim))
        out, won = _pass(x, steps, lower=True, index=True)
        ctx.steps = steps
        ctx.save_for_backward(won)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (won,) = ctx.saved_tensors
        return _route(grad, won, ctx.steps)


class _Dilate(torch.autograd.Function):
    """Box max filter as one 3-voxel pass per axis, each pass's winners kept for the backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.steps, winners = [], []
        for d in range(2, x.ndim):
            steps = _steps(x, [d])
            x, won = _pass(x, steps, lower=False, index=True)
            ctx.steps.append(steps)
            winners.append(won)
        ctx.save_for_backward(*winners)
        return x

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        for won, steps in zip(reversed(ctx.saved_tensors), reversed(ctx.steps), strict=True):
            grad = _route(grad, won, steps)
        return grad


def _tracked(x: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and x.requires_grad


def _checked(x: Any) -> torch.Tensor:
    x = check_float_tensor("x", x)
    if x.ndim < 3:
        raise ValueError(f"x: expected [N, C, *spatial] with at least one spatial axis, got {list(x.shape)}")
    return x


def soft_erode(x: torch.Tensor) -> torch.Tensor:
    """Soft erosion: the minimum over each voxel and its face neighbours (outside the volume: ignored).

    Formula: ``erode(x)_v = min(x_v, x_{v +- e_d} for each spatial axis d)``.

    Shape:
        - x: ``[N, C, *spatial]`` (any number of spatial axes); output: the same.

    Example:
        >>> soft_erode(torch.tensor([[[0.2, 0.9, 0.7, 0.8]]]))
        tensor([[[0.2000, 0.2000, 0.7000, 0.7000]]])
    """
    x = _checked(x)
    if _tracked(x):
        return _Erode.apply(x)
    return _pass(x, _steps(x, range(2, x.ndim)), lower=True, index=False)[0]


def soft_dilate(x: torch.Tensor) -> torch.Tensor:
    """Soft dilation: the maximum over each voxel's ``3^k`` box (outside the volume: ignored).

    Formula: ``dilate(x)_v = max(x_u for |u - v|_inf <= 1)``.

    Shape:
        - x: ``[N, C, *spatial]``; output: the same.

    Example:
        >>> soft_dilate(torch.tensor([[[[0.0, 0.0, 0.0], [0.0, 0.0, 0.5]]]]))
        tensor([[[[0.0000, 0.5000, 0.5000],
                  [0.0000, 0.5000, 0.5000]]]])
    """
    x = _checked(x)
    if _tracked(x):
        return _Dilate.apply(x)
    for d in range(2, x.ndim):
        x = _pass(x, _steps(x, [d]), lower=False, index=False)[0]
    return x


def soft_open(x: torch.Tensor) -> torch.Tensor:
    """Soft opening ``dilate(erode(x))``: removes what is thinner than the cross (never adds: ``<= x``).

    Shape:
        - x: ``[N, C, *spatial]``; output: the same.

    Example:
        >>> soft_open(torch.tensor([[[0.0, 1.0, 0.0, 1.0, 1.0]]]))
        tensor([[[0., 0., 0., 1., 1.]]])
    """
    return soft_dilate(soft_erode(x))


def soft_skeleton(x: torch.Tensor, iterations: int = 3) -> torch.Tensor:
    """The clDice soft skeleton of a probability map (see the module docstring for the recursion).

    Args:
        x: values in [0, 1] (probabilities or a binary/soft label), ``[N, C, *spatial]``.
        iterations: peeling steps after the first, >= 0 (MONAI's ``iter_``, the reference's ``num_iter``);
            a structure wider than about ``2 iterations + 2`` voxels keeps an empty core.

    Returns:
        The soft skeleton, ``x``'s shape, in [0, 1] (0 wherever ``x`` is 0).

    Raises:
        TypeError: for a non-float ``x`` or a non-integer ``iterations``.
        ValueError: for ``x`` without a spatial axis, negative ``iterations``.

    Shape:
        - x: ``[N, C, *spatial]``; output: the same.

    Example:
        >>> block = torch.zeros(1, 1, 5, 5)
        >>> block[..., 1:4, 1:4] = 1.0  # a 3 x 3 square: its skeleton is its centre
        >>> soft_skeleton(block, iterations=1)[0, 0]
        tensor([[0., 0., 0., 0., 0.],
                [0., 0., 0., 0., 0.],
                [0., 0., 1., 0., 0.],
                [0., 0., 0., 0., 0.],
                [0., 0., 0., 0., 0.]])
    """
    iterations = check_iterations(iterations)
    x = _checked(x)
    if not _tracked(x):
        return _skeleton_in_place(x, iterations)
    eroded = soft_erode(x)
    skel = torch.relu(x - soft_dilate(eroded))
    for _ in range(iterations):
        image, eroded = eroded, soft_erode(eroded)
        delta = torch.relu(image - soft_dilate(eroded))
        skel = skel + torch.relu(delta - skel * delta)
    return skel


def _skeleton_in_place(x: torch.Tensor, iterations: int) -> torch.Tensor:
    """:func:`soft_skeleton` without a gradient, its temporaries reused in place."""
    eroded = soft_erode(x)
    skel = torch.sub(x, soft_dilate(eroded)).clamp_(min=0)
    for _ in range(iterations):
        image, eroded = eroded, soft_erode(eroded)
        delta = image.sub_(soft_dilate(eroded)).clamp_(min=0)  # image (the last erosion) is not needed again
        skel.add_(delta.sub_(skel * delta).clamp_(min=0))
    return skel
