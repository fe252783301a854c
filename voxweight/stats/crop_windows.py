r"""Where random crops of one volume start: the probability :math:`W(t)` of each start ``t``, exactly.

A crop of size ``s`` starting at ``t`` covers ``[t, t + s)`` per axis. :func:`monai_start_weights` gives ``W`` for
MONAI's ``RandCropByPosNegLabel``, :func:`nnunet_start_weights` for nnU-Net's foreground oversampling, both by
pooling centre voxels onto the starts they give (:func:`pool_centres`); :mod:`~voxweight.stats.crop_counts`
then weighs each crop's label counts by them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from voxweight.stats.crop_boxes import along, axis_order, c_frame, count_dtype, foreground_box, window_sums

__all__ = ["centre_starts", "monai_start_weights", "nnunet_start_weights", "pool_centres", "segment_sums",
           "window_sums"]


def centre_starts(length: int, size: int, lo: int, hi: int, origin: int = 0) -> np.ndarray:
    """The crop start each centre ``i = origin .. origin + length - 1`` gives: ``min(max(i - size // 2, lo), hi)``.

    Args:
        length: voxels along the axis.
        size: crop size along the axis.
        lo: smallest start allowed.
        hi: largest start allowed (>= ``lo``).
        origin: the position of the first centre (0: the volume's first voxel).

    Returns:
        int64 ``[length]``, non-decreasing by steps of 0 or 1.

    Example:
        >>> centre_starts(6, 4, 0, 2).tolist()  # MONAI: centres 0-2 -> start 0, centre 5 -> start 2
        [0, 0, 0, 1, 2, 2]
    """
    return np.clip(np.arange(origin, origin + length, dtype=np.int64) - size // 2, lo, hi)


def pool_centres(centres: np.ndarray, size: tuple[int, ...], lo: tuple[int, ...], hi: tuple[int, ...],
                 origin: tuple[int, ...] | None = None, groups: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Sum centre weights onto the crop starts they give (:func:`centre_starts` on each axis), or onto groups of them.

    Args:
        centres: a weight (or 0/1 indicator) per voxel, in C or Fortran order.
        size: crop size per axis.
        lo: smallest start per axis.
        hi: largest start per axis.
        origin: the volume position of ``centres``' first voxel (a box cut from the volume); None: 0.
        groups: per axis, the group of each start ``lo .. hi`` (non-decreasing by steps of 0 or 1, from 0):
            the sums go onto the groups; None: one group per start.

    Returns:
        ``W`` on the starts ``[lo, hi]`` of each axis (entry ``j`` is start ``lo + j``), or on the groups;
        unsigned or bool input gives exact unsigned sums (the smallest unsigned dtype), signed int64 and
        float input float64.

    Shape:
        - centres: ``[*spatial]``; output ``[hi - lo + 1 per axis]`` (``[groups per axis]``).

    Example:
        >>> pool_centres(np.array([1, 0, 0, 1, 0, 1]), (4,), (0,), (2,)).tolist()
        [1, 1, 1]
        >>> pool_centres(np.array([1, 0, 0, 1, 0, 1]), (4,), (0,), (2,), groups=[np.array([0, 0, 1])]).tolist()
        [2, 1]
    """
    pooled, flipped = c_frame(centres)
    origin = (0,) * centres.ndim if origin is None else origin
    if groups is None:
        groups = [np.arange(b - a + 1) for a, b in zip(lo, hi, strict=True)]
    size, lo, hi, origin, groups = (tuple(v)[::-1 if flipped else 1] for v in (size, lo, hi, origin, groups))
    bound = 1 if pooled.dtype.kind == "b" else int(pooled.max()) if pooled.dtype.kind == "u" else None  # exact
    pooled = pooled.view(np.uint8) if pooled.dtype.kind == "b" else pooled
    dtype = np.float64 if pooled.dtype.kind == "f" else np.int64
    for axis in axis_order(pooled.shape, tuple(int(g[-1]) + 1 for g in groups)):
        starts = centre_starts(pooled.shape[axis], size[axis], lo[axis], hi[axis], origin[axis])
        places = groups[axis][starts - lo[axis]]
        bounds = np.concatenate([[0], np.flatnonzero(np.diff(places)) + 1, [places.size]])
        bound = None if bound is None else bound * int(np.diff(bounds).max())
        dtype = dtype if bound is None else count_dtype(bound)
        out = np.zeros((*pooled.shape[:axis], int(groups[axis][-1]) + 1, *pooled.shape[axis + 1:]), dtype=dtype)
        out[along(axis, slice(int(places[0]), int(places[-1]) + 1))] = segment_sums(pooled, bounds, axis, dtype)
        pooled = out
    return pooled.T if flipped else pooled


def segment_sums(x: np.ndarray, bounds: np.ndarray, axis: int, dtype: type) -> np.ndarray:
    """Sums of ``x`` over the segments ``[bounds[i], bounds[i + 1])`` of ``axis``, in ``dtype``.

    A run of one-voxel segments is one copy, a longer segment one slab reduction (``np.add.reduceat``
    with a dtype change along an outer axis runs element by element). ``dtype`` must hold every sum.

    Args:
        x: any numeric array.
        bounds: increasing segment boundaries, from 0 to ``x.shape[axis]``.
        axis: the axis summed.
        dtype: the dtype of the sums.

    Returns:
        The sums, ``len(bounds) - 1`` along ``axis``.

    Example:
        >>> segment_sums(np.arange(6).reshape(3, 2), np.array([0, 2, 3]), 0, np.int64).tolist()
        [[2, 4], [4, 5]]
    """
    if axis == x.ndim - 1:
        return np.add.reduceat(x, bounds[:-1], axis=axis, dtype=dtype)
    out = np.empty((*x.shape[:axis], len(bounds) - 1, *x.shape[axis + 1:]), dtype=dtype)
    edges, i = bounds.tolist(), 0
    while i < len(edges) - 1:
        j = next((j for j in range(i, len(edges) - 1) if edges[j + 1] - edges[j] > 1), len(edges) - 1)
        if j > i:  # segments i .. j - 1 are single voxels: one copy
            np.copyto(out[along(axis, slice(i, j))], x[along(axis, slice(edges[i], edges[j]))], casting="unsafe")
        else:
            np.add.reduce(x[along(axis, slice(edges[i], edges[i + 1]))], axis=axis, dtype=dtype,
                          out=out[along(axis, slice(i, i + 1))], keepdims=True)
        i = max(j, i + 1)
    return out


def monai_start_weights(label: np.ndarray, size: tuple[int, ...], pos_ratio: float,
                        groups: Sequence[np.ndarray] | None = None, box: tuple[slice, ...] | None = None
                        ) -> np.ndarray:
    """``W`` of MONAI's ``RandCropByPosNegLabel`` on a volume at least ``size`` on every axis.

    The centre is a uniform foreground voxel (label != 0) with probability ``pos_ratio`` (0, or 1, without
    foreground, or background), else a uniform background voxel, moved as ``correct_crop_centers`` does:
    the start is ``clip(c - s // 2, 0, L - s)`` per axis.

    Args:
        label: class indices, shape >= ``size``.
        size: crop size per axis.
        pos_ratio: ``pos / (pos + neg)``.
        groups: per axis, the group of each start (as for :func:`pool_centres`): ``W`` summed over each
            group; None: every start.
        box: ``foreground_box(label)`` when already known (it must be that box); None: found here.

    Returns:
        float64 ``W`` on the starts ``0 .. L - s`` of each axis (or on the groups), summing to 1.

    Example:
        >>> monai_start_weights(np.array([0, 0, 0, 0, 0, 1]), (4,), 0.5).round(12).tolist()
        [0.3, 0.1, 0.6]
    """
    box = foreground_box(label) if box is None else box  # centres outside it weigh 0: pool the box only
    fg = label[box] != 0 if box is not None else label != 0
    n_fg = int(np.count_nonzero(fg))
    n_bg = label.size - n_fg
    p = 0.0 if n_fg == 0 else 1.0 if n_bg == 0 else pos_ratio
    hi = tuple(n - s for n, s in zip(label.shape, size, strict=True))
    origin = tuple(b.start for b in box) if box is not None else (0,) * label.ndim
    groups = [np.arange(h + 1) for h in hi] if groups is None else groups
    pooled_fg = pool_centres(fg, size, (0,) * label.ndim, hi, origin, groups).astype(np.int64)
    weights = np.zeros(pooled_fg.shape)
    if p > 0:
        weights += (p / n_fg) * pooled_fg
    if p < 1:
        per_axis = [np.bincount(g[centre_starts(n, s, 0, h)], minlength=int(g[-1]) + 1)
                    for n, s, h, g in zip(label.shape, size, hi, groups, strict=True)]  # every voxel a centre
        pooled_all = math.prod(np.ix_(*per_axis))  # separable: every voxel is a centre
        weights += ((1 - p) / n_bg) * (pooled_all - pooled_fg)
    return weights


def nnunet_start_weights(label: np.ndarray, size: tuple[int, ...], forced: float
                         ) -> tuple[np.ndarray, np.ndarray]:
    """``W`` of nnU-Net's ``get_bbox`` (no augmentation margin), on the volume padded with background.

    With ``n = max(0, s - L)`` on an axis, ``lb = -ceil(n / 2)``, ``ub = L + ceil(n / 2) - s``: a forced sample
    (probability ``forced``) picks a present foreground class uniformly, then a uniform voxel ``v`` of it,
    and starts at ``max(lb, v - s // 2)`` (no upper clip: outside the volume is background); the others
    (all, without foreground) start uniformly in ``[lb, ub]``. The volume is padded with 0 to hold every crop.

    Args:
        label: class indices.
        size: crop size per axis.
        forced: the fraction of forced-foreground samples, in [0, 1].

    Returns:
        ``(padded, W)``: the padded label and ``W`` on its starts ``0 .. P - s`` per axis, summing to 1.

    Example:
        >>> padded, w = nnunet_start_weights(np.array([0, 0, 1, 0]), (2,), 1.0)
        >>> padded.tolist(), w.tolist()  # the foreground voxel 2 starts the crop at 1
        ([0, 0, 1, 0], [0.0, 1.0, 0.0])
    """
    below = [(max(0, s - n) + 1) // 2 for n, s in zip(label.shape, size, strict=True)]
    above = [max(b, s - 1 - s // 2) for b, s in zip(below, size, strict=True)]
    padded = np.pad(label, list(zip(below, above, strict=True)))
    hi = tuple(p - s for p, s in zip(padded.shape, size, strict=True))
    uniform = []
    for n, s, b, h in zip(label.shape, size, below, hi, strict=True):
        axis = np.zeros(h + 1)
        axis[:n + 2 * b - s + 1] = 1.0 / (n + 2 * b - s + 1)  # starts lb .. ub, shifted by the padding
        uniform.append(axis)
    random = math.prod(np.ix_(*uniform))
    counts = np.bincount(label.reshape(-1), minlength=1)
    present = np.flatnonzero(counts[1:]) + 1
    if forced == 0 or present.size == 0:
        return padded, random
    table = np.zeros(counts.size)
    table[present] = 1.0 / (present.size * counts[present])
    pooled = pool_centres(table[padded], size, (0,) * label.ndim, hi)
    return padded, forced * pooled + (1 - forced) * random
