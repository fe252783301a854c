r"""Expected label counts inside random crops of one volume, exactly, with box sums (pure numpy, no sampling).

A crop of size ``s`` (per axis) starting at ``t`` covers the voxels ``[t, t + s)``. A sampler draws the
start with probability :math:`W(t)` on the grid of starts that keep the crop inside the (padded) volume.
With :math:`C_k(t)` the voxels of class ``k`` in the crop at ``t``:

.. math::

    E_k = \sum_t W(t)\, C_k(t), \qquad P_k = \sum_t W(t)\, [C_k(t) > 0]

(:math:`P_k`: the probability that the crop contains class ``k``). The box counts :math:`C_k` come from
cumulative sums, axis by axis (:func:`box_counts`): one pass over the volume per foreground class, background
being the rest of the crop; ``W`` lives on the grid of starts, small when the crop is large.
:func:`monai_start_weights` and :func:`nnunet_start_weights` give ``W`` for the two samplers.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["box_counts", "centre_starts", "crop_expectations", "monai_start_weights", "nnunet_start_weights",
           "pool_centres", "running_sums", "segment_sums"]


def centre_starts(length: int, size: int, lo: int, hi: int) -> np.ndarray:
    """The crop start each centre voxel gives along one axis: ``min(max(i - size // 2, lo), hi)``.

    Args:
        length: voxels along the axis.
        size: crop size along the axis.
        lo: smallest start allowed.
        hi: largest start allowed (>= ``lo``).

    Returns:
        int64 ``[length]``, non-decreasing by steps of 0 or 1.

    Example:
        >>> centre_starts(6, 4, 0, 2).tolist()  # MONAI: centres 0-2 -> start 0, centre 5 -> start 2
        [0, 0, 0, 1, 2, 2]
    """
    return np.clip(np.arange(length, dtype=np.int64) - size // 2, lo, hi)


def pool_centres(centres: np.ndarray, size: tuple[int, ...], lo: tuple[int, ...], hi: tuple[int, ...]
                 ) -> np.ndarray:
    """Sum centre weights onto the crop starts they give (:func:`centre_starts` on each axis).

    Args:
        centres: a weight (or 0/1 indicator) per voxel.
        size: crop size per axis.
        lo: smallest start per axis.
        hi: largest start per axis.

    Returns:
        ``W`` on the starts ``[lo, hi]`` of each axis (entry ``j`` is start ``lo + j``); integer input gives
        exact int64 sums, float input float64.

    Shape:
        - centres: ``[*spatial]``; output ``[hi - lo + 1 per axis]``.

    Example:
        >>> pool_centres(np.array([1, 0, 0, 1, 0, 1]), (4,), (0,), (2,)).tolist()
        [1, 1, 1]
    """
    pooled = centres
    dtype = np.float64 if centres.dtype.kind == "f" else np.int64
    for axis, (s, a, b) in enumerate(zip(size, lo, hi, strict=True)):
        starts = centre_starts(pooled.shape[axis], s, a, b)
        bounds = np.concatenate([[0], np.flatnonzero(np.diff(starts)) + 1, [starts.size]])
        out = np.zeros((*pooled.shape[:axis], b - a + 1, *pooled.shape[axis + 1:]), dtype=dtype)
        before = (slice(None),) * axis
        out[(*before, slice(int(starts[0]) - a, int(starts[-1]) - a + 1))] = segment_sums(pooled, bounds, axis, dtype)
        pooled = out
    return pooled


def segment_sums(x: np.ndarray, bounds: np.ndarray, axis: int, dtype: type) -> np.ndarray:
    """Sums of ``x`` over the segments ``[bounds[i], bounds[i + 1])`` of ``axis`` (one reduction a segment).

    A loop of whole-slab reductions: far faster than ``np.add.reduceat`` or ``np.cumsum`` with a dtype
    change along an outer axis, which numpy runs element by element.

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
    if axis == x.ndim - 1 and x.dtype == dtype:  # along rows: numpy's own loop is contiguous
        return np.add.reduceat(x, bounds[:-1], axis=axis)
    out = np.empty((*x.shape[:axis], len(bounds) - 1, *x.shape[axis + 1:]), dtype=dtype)
    before = (slice(None),) * axis
    for i, (a, b) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)):
        np.add.reduce(x[(*before, slice(a, b))], axis=axis, dtype=dtype, out=out[(*before, slice(i, i + 1))],
                      keepdims=True)
    return out


def running_sums(x: np.ndarray, axis: int) -> np.ndarray:
    """``0, x[0], x[0] + x[1], ...`` along ``axis`` (one more entry), a slab at a time (see :func:`segment_sums`).

    Example:
        >>> running_sums(np.array([[1, 2], [3, 4]]), 0).tolist()
        [[0, 0], [1, 2], [4, 6]]
    """
    out = np.zeros((*x.shape[:axis], x.shape[axis] + 1, *x.shape[axis + 1:]), dtype=x.dtype)
    before = (slice(None),) * axis
    for i in range(x.shape[axis]):
        np.add(out[(*before, slice(i, i + 1))], x[(*before, slice(i, i + 1))], out=out[(*before, slice(i + 1, i + 2))])
    return out


def box_counts(indicator: np.ndarray, size: tuple[int, ...], starts: tuple[int, ...]) -> np.ndarray:
    """True voxels inside the crop at each start ``0 .. starts - 1`` (per axis): a box sum, axis by axis.

    Along an axis of length ``L``, the voxels are first summed into the cells between the boundaries
    ``0 .. n`` and ``s .. L`` (``n`` starts, crop size ``s``): one pass that shrinks the axis when the crop
    is large; the box sums are then differences of the cells' cumulative sums.

    Args:
        indicator: bool (or 0/1) per voxel.
        size: crop size per axis.
        starts: the number of starts per axis (``<= L - s + 1``).

    Returns:
        int64 counts on the starts.

    Shape:
        - indicator: ``[*spatial]``; output: ``starts``.

    Example:
        >>> box_counts(np.array([True, False, True, True, False]), (2,), (4,)).tolist()
        [1, 1, 2, 1]
    """
    out = indicator
    for axis, (s, n) in enumerate(zip(size, starts, strict=True)):
        length = out.shape[axis]
        bounds = np.union1d(np.arange(n + 1), np.arange(s, length + 1))
        total = running_sums(segment_sums(out, bounds, axis, np.int64 if out.dtype.kind in 'biu' else out.dtype), axis)
        t = np.arange(n)
        out = (np.take(total, np.searchsorted(bounds, t + s), axis=axis)
               - np.take(total, np.searchsorted(bounds, t), axis=axis))
    return out


def crop_expectations(label: np.ndarray, weights: np.ndarray, size: tuple[int, ...], top: int, num_classes: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    r"""Expected voxels per class in the crop, :math:`\sum_t W(t) C_k(t)`, and :math:`P(C_k > 0)`.

    One pass per foreground class present (:func:`box_counts`); background's counts are the rest of the
    crop, ``C_0 = prod(size) - sum_k C_k`` (exact integers).

    Args:
        label: integer class indices in ``[0, top]``; every crop lies inside it.
        weights: ``W``, the probability of each start ``0 .. shape - size`` (sums to 1).
        size: crop size per axis.
        top: the largest label in ``label``.
        num_classes: ``K`` (> ``top``).

    Returns:
        ``(counts, presence)``, float64 ``[K]`` each; a class absent from ``label`` gets exactly 0.

    Example:
        >>> label = np.array([0, 0, 1, 0])
        >>> crop_expectations(label, np.array([0.5, 0.0, 0.5]), (2,), 1, 2)  # crops [0, 1] and [2, 3]
        (array([1.5, 0.5]), array([1. , 0.5]))
    """
    counts, presence = np.zeros(num_classes), np.zeros(num_classes)
    rest = np.full(weights.shape, math.prod(size), dtype=np.int64)
    for k in range(1, top + 1):
        indicator = label == k
        if not indicator.any():
            continue
        inside = box_counts(indicator, size, weights.shape)
        rest -= inside
        counts[k], presence[k] = (weights * inside).sum(), weights[inside > 0].sum()
    counts[0], presence[0] = (weights * rest).sum(), weights[rest > 0].sum()
    return counts, np.minimum(presence, 1.0)


def monai_start_weights(label: np.ndarray, size: tuple[int, ...], pos_ratio: float) -> np.ndarray:
    """``W`` of MONAI's ``RandCropByPosNegLabel`` on a volume at least ``size`` on every axis.

    The centre is a uniform foreground voxel (label != 0) with probability ``pos_ratio``, else a uniform
    background voxel (MONAI uses 0, or 1, when the volume has no foreground, or no background); it is then
    moved to ``[s // 2, L - s + s // 2]`` (``correct_crop_centers``), so the start is ``clip(c - s // 2, 0,
    L - s)`` on each axis.

    Args:
        label: class indices, shape >= ``size``.
        size: crop size per axis.
        pos_ratio: ``pos / (pos + neg)``.

    Returns:
        float64 ``W`` on the starts ``0 .. L - s`` of each axis, summing to 1.

    Example:
        >>> monai_start_weights(np.array([0, 0, 0, 0, 0, 1]), (4,), 0.5).round(12).tolist()
        [0.3, 0.1, 0.6]
    """
    fg = label != 0
    n_fg = int(np.count_nonzero(fg))
    n_bg = fg.size - n_fg
    p = 0.0 if n_fg == 0 else 1.0 if n_bg == 0 else pos_ratio
    lo = (0,) * label.ndim
    hi = tuple(n - s for n, s in zip(label.shape, size, strict=True))
    pooled_fg = pool_centres(fg.view(np.uint8), size, lo, hi)
    weights = np.zeros(pooled_fg.shape)
    if p > 0:
        weights += (p / n_fg) * pooled_fg
    if p < 1:
        per_axis = [pool_centres(np.ones(n, dtype=np.int64), (s,), (0,), (h,))
                    for n, s, h in zip(label.shape, size, hi, strict=True)]
        pooled_all = math.prod(np.ix_(*per_axis))  # separable: every voxel is a centre
        weights += ((1 - p) / n_bg) * (pooled_all - pooled_fg)
    return weights


def nnunet_start_weights(label: np.ndarray, size: tuple[int, ...], forced: float
                         ) -> tuple[np.ndarray, np.ndarray]:
    """``W`` of nnU-Net's ``get_bbox`` (no augmentation margin), on the volume padded with background.

    With ``n = max(0, s - L)`` on an axis, ``lb = -ceil(n / 2)`` and ``ub = L + ceil(n / 2) - s``: a forced
    sample (probability ``forced``) picks a foreground class present in the volume uniformly, then a
    uniform voxel ``v`` of it, and starts the crop at ``max(lb, v - s // 2)`` (no upper clip: the crop may
    leave the volume, where nnU-Net pads, and its training transforms turn the padding into background);
    the others start uniformly in ``[lb, ub]``. A volume without foreground is always cropped uniformly.
    The volume is padded with 0 (``ceil(n / 2)`` below, enough above) so that every crop lies inside it.

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
