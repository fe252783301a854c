"""Keeping the losses finite: a saturating cast, weight normalisation, overflow as a named ValueError.

float16 has a largest finite value of 65504: a class-balance weight of 131072 (one foreground voxel in
a 64^3 crop) or the sum of a few hundred thousand element losses does not fit. The losses therefore
compute what does not fit in float32 and cast the result back with :func:`saturate`, which clamps to
the target dtype's finite range instead of overflowing to ``inf`` (and passes gradients straight through,
clamped the same way). ``"weighted_mean"`` does not change when every weight is scaled by one constant,
so :func:`normalise` divides a weight by its largest value first: huge finite weights (3e38) then give
the same finite result as small ones.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["LOW_PRECISION", "normalise", "saturate"]

LOW_PRECISION = (torch.float16, torch.bfloat16)


def saturate(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` cast to ``dtype``, values beyond its finite range clamped to ``[-max, max]`` (NaN stays NaN).

    Differentiable: the gradient passes straight through (cast back to ``x``'s dtype, clamped to its
    finite range), so a saturated loss still trains; double backward works.

    Formula: ``clamp(x, -finfo(dtype).max, finfo(dtype).max).to(dtype)``.

    Shape:
        - x: any shape; output: the same.

    Example:
        >>> saturate(torch.tensor([1.0, 1e6, -1e6]), torch.float16).tolist()
        [1.0, 65504.0, -65504.0]
    """
    return _Saturate.apply(x, dtype)


def normalise(w: torch.Tensor | None, pos: torch.Tensor | None = None,
              reduce_max: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor | None:
    """``w / (max(w) * max(1, max(pos)))``, the scale treated as a constant (None if both are None).

    ``"weighted_mean"`` is unchanged by one common scale of ``w`` (0 maxima count as 1), and with the
    ``pos_weight`` maximum folded in, every effective weight ``w (1 + (p - 1) t)`` is at most 1: ``w * loss``
    and the sums stay finite however large the (finite) weights are. No host-device synchronisation.
    ``reduce_max`` (``voxweight.losses.sync.max_over_ranks`` under ``sync=True``) turns the local maxima,
    stacked, into the maxima over every rank in one call, so that every rank divides by the same scale.

    Shape:
        - w: any shape (None means 1); pos: any shape; output: ``w``'s shape, 0-d if ``w`` is None.

    Example:
        >>> normalise(torch.tensor([3e38, 1.5e38])), normalise(None, torch.tensor([4.0, 2.0]))
        (tensor([1.0000, 0.5000]), tensor(0.2500))
    """
    if w is None and pos is None:
        return None
    tops = [_local_max(x) for x in (w, pos) if x is not None]
    if reduce_max is not None:  # one collective for both maxima, in a dtype that holds each of them exactly
        common = functools.reduce(torch.promote_types, [t.dtype for t in tops])
        tops = [g.to(t.dtype) for g, t in zip(reduce_max(torch.stack([t.to(common) for t in tops])), tops, strict=True)]
    tops = [torch.where(t > 0, t, torch.ones_like(t)) for t in tops]
    out = w / tops[0] if w is not None else pos.new_ones(())
    return out if pos is None else out / tops[-1].clamp(min=1)  # one at a time: 3e38 * 3e38 is inf


def _local_max(x: torch.Tensor) -> torch.Tensor:
    """``max(x)`` detached, 0 where ``x`` is empty."""
    return x.detach().amax() if x.numel() else x.new_zeros(())


class _Saturate(torch.autograd.Function):
    """Forward: the saturating cast; backward: the gradient saturated back to the input's dtype."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        ctx.source = x.dtype
        top = torch.finfo(dtype).max
        if top <= torch.finfo(x.dtype).max:  # inf, or beyond a narrower dtype (a wider one holds every value)
            x = x.clamp(-top, top)
        return x.to(dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return saturate(grad, ctx.source), None
