"""Integer-factor downsampling of targets, weight maps and masks for deep supervision.

``"nearest"`` keeps one voxel per block (nnU-Net's and MONAI's target resampling), ``"area"`` the block mean
(a weight map's total per region is kept), ``"all"`` the block's logical and (a coarse voxel counts only if
all its fine voxels do), ``"max"`` the block maximum (a thin structure, such as a tubed skeleton, keeps every
coarse voxel it touches), one axis at a time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from voxweight._validate import look_up_option

__all__ = ["DOWNSAMPLE_MODES", "downsample"]

DOWNSAMPLE_MODES = ("nearest", "area", "all", "max")


def downsample(x: torch.Tensor, factors: Sequence[int], mode: str) -> torch.Tensor:
    """Shrink the last ``len(factors)`` axes of ``x`` by integer factors (axes of size 1 stay, for broadcasting).

    ``"nearest"`` keeps voxel ``f * i + f // 2`` of each block (torch's ``"nearest-exact"``, which MONAI's
    ``DeepSupervisionLoss`` uses; any dtype, integer labels stay integer). ``"area"`` is the block mean
    (``F.interpolate(mode="area")``, so a region's total is kept up to the factor ``prod(f)``), ``"all"``
    the block's logical and (for masks), ``"max"`` the block maximum (``F.max_pool``; any dtype, bool is the
    block's logical or: a one-hot skeleton keeps each class wherever its tube touches a block).

    Args:
        x: a tensor ``[..., *spatial]``; floating point for ``"area"``, bool for ``"all"``.
        factors: one integer >= 1 per spatial axis, dividing its size (or the axis has size 1).
        mode: ``"nearest"``, ``"area"``, ``"all"`` or ``"max"``.

    Returns:
        ``x`` at the coarse scale (``x`` itself when every factor is 1).

    Raises:
        ValueError: for an unknown ``mode``, or an axis its factor does not divide.

    Shape:
        ``[..., *spatial]`` -> ``[..., *(s // f if s > 1 else 1)]``.

    Example:
        >>> x = torch.arange(8.0).reshape(1, 8)
        >>> downsample(x, [4], "nearest"), downsample(x, [4], "area"), downsample(x, [4], "max")
        (tensor([[2., 6.]]), tensor([[1.5000, 5.5000]]), tensor([[3., 7.]]))
    """
    mode = look_up_option("mode", mode, DOWNSAMPLE_MODES)
    spatial = x.shape[x.ndim - len(factors):]
    pooled = [s > 1 and f > 1 for s, f in zip(spatial, factors, strict=True)]
    for s, f in zip(spatial, factors, strict=True):
        if s > 1 and s % f:
            raise ValueError(f"factors: expected factors dividing the spatial sizes {list(spatial)}, "
                             f"got {list(factors)}")
    if not any(pooled):
        return x
    if mode == "nearest":  # contiguous: the loss's kernels and checks run several times faster on it
        index = tuple(slice(f // 2, None, f) if p else slice(None) for f, p in zip(factors, pooled, strict=True))
        return x[(..., *index)].contiguous()
    kernel = [f if p else 1 for f, p in zip(factors, pooled, strict=True)]
    return _reduce_axes(x, kernel, mode)


def _reduce_axes(x: torch.Tensor, kernel: list[int], mode: str) -> torch.Tensor:
    """Block sums (then the mean), block ands or block maxima, one axis at a time: each pass reads a shrinking tensor.

    A block sum along an axis adds its ``f`` slices (large contiguous runs, vectorised; about twice as fast as
    ``avg_pool3d``), in float32 at least; a bool mask is reduced as uint8 (``amin`` of 0/1 values, several
    times faster than ``all`` on bool); ``"max"`` keeps the dtype (bool as uint8).
    """
    if mode == "max":
        return _max_axes(x, kernel)
    y = x.view(torch.uint8) if mode == "all" else x.to(torch.promote_types(x.dtype, torch.float32))
    for i, f in enumerate(kernel):
        if f > 1:
            axis = y.ndim - len(kernel) + i
            blocks = y.reshape(*y.shape[:axis], y.shape[axis] // f, f, *y.shape[axis + 1:])
            if mode == "all":
                y = blocks.amin(dim=axis + 1)
                continue
            y = blocks.select(axis + 1, 0).clone()
            for j in range(1, f):
                y += blocks.select(axis + 1, j)
    if mode == "all":
        return y.to(torch.bool)
    return (y / math.prod(kernel)).to(x.dtype)


def _max_axes(x: torch.Tensor, kernel: list[int]) -> torch.Tensor:
    """Block maxima, one axis at a time, in ``x``'s dtype (a bool tensor is reduced as uint8: the block's or)."""
    y = x.view(torch.uint8) if x.dtype == torch.bool else x
    for i, f in enumerate(kernel):
        if f > 1:
            axis = y.ndim - len(kernel) + i
            y = y.reshape(*y.shape[:axis], y.shape[axis] // f, f, *y.shape[axis + 1:]).amax(dim=axis + 1)
    return y.to(torch.bool) if x.dtype == torch.bool else y
