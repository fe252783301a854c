r"""Expected label counts inside random crops of one volume, exactly, with box sums (no sampling).

With :math:`W(t)` the probability of the crop starting at ``t`` (:mod:`~voxweight.stats.crop_windows`) and
:math:`C_k(t)` its voxels of class ``k``: :math:`E_k = \sum_t W(t) C_k(t)` (the expected counts) and
:math:`P_k = \sum_t W(t) [C_k(t) > 0]`. A handful of classes is stacked over the labelled voxels'
box and summed at once; with many classes each is summed inside its own bounding box (one
``scipy.ndimage.find_objects`` pass finds them all), so that an atlas of a hundred small organs costs a few
passes over the volume, not a hundred. Within a box, starts whose crops see
the same part of it have the same :math:`C_k` (:func:`~voxweight.stats.crop_boxes.window_groups`): their
weights are summed first and only the distinct windows computed.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.ndimage as ndi

from voxweight.stats.crop_boxes import axis_order, box_interval_sums, c_frame, foreground_box, window_groups
from voxweight.stats.crop_windows import monai_start_weights

__all__ = ["FEW_CLASSES", "class_sums", "crop_expectations", "grouped_weights", "monai_crop_expectations"]

FEW_CLASSES = 16  # up to this many classes, stacked over the labelled box; more: each in its own box


def monai_crop_expectations(label: np.ndarray, size: tuple[int, ...], pos_ratio: float, top: int,
                            num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`crop_expectations` of MONAI's crops, ``W`` pooled straight onto the starts that see the same box part.

    Same result as ``crop_expectations(label, monai_start_weights(label, size, pos_ratio), size, top,
    num_classes)``, without ``W`` on every start: the labelled box's window groups
    (:func:`~voxweight.stats.crop_boxes.window_groups`) are found first and the centres pooled onto them.

    Args:
        label: class indices, shape >= ``size``.
        size: crop size per axis.
        pos_ratio: ``pos / (pos + neg)``.
        top: the largest label in ``label``.
        num_classes: ``K`` (> ``top``).

    Returns:
        ``(counts, presence)``, float64 ``[K]`` each.

    Example:
        >>> monai_crop_expectations(np.array([0, 0, 0, 0, 0, 1]), (4,), 0.5, 1, 2)[0].round(12).tolist()
        [3.4, 0.6]
    """
    box = foreground_box(label)
    if box is None or top > FEW_CLASSES:  # the per-class boxes need W on every start
        return crop_expectations(label, monai_start_weights(label, size, pos_ratio), size, top, num_classes)
    groups = [window_groups(n - s + 1, s, b.start, b.stop - b.start) for n, s, b in zip(label.shape, size, box,
                                                                                          strict=True)]
    places = [np.repeat(np.arange(first.size), np.diff(np.r_[first, n - s + 1]))
              for (first, _, _), n, s in zip(groups, label.shape, size, strict=True)]
    weights = monai_start_weights(label, size, pos_ratio, places, box)
    frame, flipped = c_frame(label)
    if flipped:
        weights, size, box, groups = weights.T, tuple(size)[::-1], box[::-1], groups[::-1]
    return _stacked(frame[box], [(lo, hi) for _, lo, hi in groups], weights, size, top, num_classes)


def crop_expectations(label: np.ndarray, weights: np.ndarray, size: tuple[int, ...], top: int, num_classes: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    r"""Expected voxels per class in the crop, :math:`\sum_t W(t) C_k(t)`, and :math:`P(C_k > 0)`.

    Up to ``FEW_CLASSES`` classes, their indicators are stacked over the labelled voxels' box and summed
    together (few passes: the fastest for a handful of classes); ``C_0 = prod(size) - sum_k C_k``. More
    classes are summed each in its own box (:func:`class_sums`, the boxes from one
    ``scipy.ndimage.find_objects`` pass); the background is then what the crop holds besides,
    :math:`E_0 = \prod s - \sum_{k>0} E_k` (``W`` sums to 1), and a crop lacks it only if it lies inside
    the labelled box and holds no 0 (those starts alone are counted), so that a volume without background
    gives exactly 0. C or Fortran order.

    Args:
        label: integer class indices in ``[0, top]``; every crop lies inside it.
        weights: ``W``, the probability of each start ``0 .. shape - size`` (sums to 1).
        size: crop size per axis.
        top: the largest label in ``label``.
        num_classes: ``K`` (> ``top``).

    Returns:
        ``(counts, presence)``, float64 ``[K]`` each; a class absent from ``label`` gets exactly 0.

    Shape:
        - label: ``[*spatial]``; weights: ``[shape - size + 1]``; outputs: ``[K]``.

    Example:
        >>> label = np.array([0, 0, 1, 0])
        >>> crop_expectations(label, np.array([0.5, 0.0, 0.5]), (2,), 1, 2)  # crops [0, 1] and [2, 3]
        (array([1.5, 0.5]), array([1. , 0.5]))
    """
    frame, flipped = c_frame(label)
    weights = np.asarray(weights.T if flipped else weights, dtype=np.float64)
    size = tuple(size)[::-1] if flipped else tuple(size)
    counts, presence = np.zeros(num_classes), np.zeros(num_classes)
    box = foreground_box(frame)
    if box is None:  # background only: every crop is prod(size) voxels of class 0 (W sums to 1)
        counts[0], presence[0] = math.prod(size), 1.0
        return counts, presence
    cut = frame[box]
    if top <= FEW_CLASSES:
        reduced, windows = grouped_weights(weights, size, box)
        return _stacked(cut, windows, reduced, size, top, num_classes)
    origin = tuple(b.start for b in box)
    for k, local in enumerate(ndi.find_objects(cut, max_label=top), start=1):
        if local is not None:
            place = tuple(slice(o + s.start, o + s.stop) for o, s in zip(origin, local, strict=True))
            counts[k], presence[k] = class_sums(cut[local] == k, place, weights, size)
    presence[0] = _background_presence(cut != 0, box, weights, size)
    counts[0] = 0.0 if presence[0] == 0 else math.prod(size) - counts[1:].sum()
    return counts, np.minimum(presence, 1.0)


def _stacked(cut: np.ndarray, windows: list[tuple[np.ndarray, np.ndarray]], reduced: np.ndarray,
             size: tuple[int, ...], top: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`crop_expectations` for a few classes: their indicators stacked over the labelled box, summed at once.

    ``reduced`` is ``W`` summed over the starts of each window (:func:`grouped_weights`), C order like ``cut``.
    """
    classes = np.arange(1, top + 1)
    cut = np.ascontiguousarray(cut)  # one copy of the box: the K comparisons then read it contiguously
    inside = np.equal(cut[None], classes.reshape(-1, *(1,) * cut.ndim).astype(cut.dtype)).view(np.uint8)
    sums = box_interval_sums(inside, windows, axis_order(cut.shape, reduced.shape))
    rest = math.prod(size) - sums.sum(axis=0, dtype=np.int64)  # C_0
    counts, presence = np.zeros(num_classes), np.zeros(num_classes)
    counts[1:top + 1] = (sums * reduced).reshape(top, -1).sum(axis=1)  # pairwise sums: accurate
    presence[1:top + 1] = np.where(sums > 0, reduced, 0.0).reshape(top, -1).sum(axis=1)
    counts[0], presence[0] = (reduced * rest).sum(), reduced[rest > 0].sum()
    return counts, np.minimum(presence, 1.0)


def class_sums(inside: np.ndarray, box: tuple[slice, ...], weights: np.ndarray, size: tuple[int, ...]
               ) -> tuple[float, float]:
    r""":math:`\sum_t W(t) C(t)` and :math:`\sum_t W(t) [C(t) > 0]` for the voxels ``inside`` a box of the volume.

    Args:
        inside: bool (or 0/1 ``uint8``) indicator of one class within ``box``.
        box: where ``inside`` lies in the volume, one slice per axis.
        weights: ``W`` on every start of the volume.
        size: crop size per axis.

    Returns:
        ``(expected count, presence)``.

    Example:
        >>> class_sums(np.ones((1,), bool), (slice(2, 3),), np.array([0.5, 0.0, 0.5]), (2,))  # voxel 2 of 4
        (0.5, 0.5)
    """
    reduced, windows = grouped_weights(weights, size, box)
    c = box_interval_sums(inside.view(np.uint8)[None], windows, axis_order(inside.shape, reduced.shape))[0]
    return float((c * reduced).sum()), float(reduced[c > 0].sum())


def grouped_weights(weights: np.ndarray, size: tuple[int, ...], box: tuple[slice, ...]
                    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """``W`` summed over the starts that see the same part of ``box``, and those windows per axis.

    Args:
        weights: ``W`` on every start.
        size: crop size per axis.
        box: one slice per axis.

    Returns:
        ``(reduced W, [(lo, hi) per axis])``, the windows in box coordinates.

    Example:
        >>> w, windows = grouped_weights(np.full(6, 1 / 6), (4,), (slice(2, 4),))
        >>> w.round(3).tolist(), [lo.tolist() for lo, _ in windows]
        ([0.5, 0.167, 0.333], [[0, 1, 2]])
    """
    windows = []
    for axis, (n, s, b) in enumerate(zip(weights.shape, size, box, strict=True)):
        first, lo, hi = window_groups(n, s, b.start, b.stop - b.start)
        if first.size < n:  # the axis last, contiguous: reduceat runs along rows (fast), summing in order
            last = np.ascontiguousarray(np.moveaxis(weights, axis, -1))
            weights = np.moveaxis(np.add.reduceat(last, first, axis=-1), -1, axis)
        windows.append((lo, hi))
    return weights, windows


def _background_presence(foreground: np.ndarray, box: tuple[slice, ...], weights: np.ndarray,
                         size: tuple[int, ...]) -> float:
    r""":math:`\sum_t W(t) [C_0(t) > 0]`: a crop lacks background only if it fits in ``box`` and holds no 0."""
    fits = tuple(slice(b.start, b.stop - s + 1) for b, s in zip(box, size, strict=True))
    if any(f.stop <= f.start for f in fits):
        return float(weights.sum())
    firsts = [np.arange(f.start - b.start, f.stop - b.start) for f, b in zip(fits, box, strict=True)]
    windows = [(lo, lo + s) for lo, s in zip(firsts, size, strict=True)]  # whole crops, inside the box
    counts = box_interval_sums(foreground.view(np.uint8)[None], windows,
                               axis_order(foreground.shape, tuple(len(lo) for lo, _ in windows)))[0]
    some = np.ones(weights.shape, dtype=bool)
    some[fits] = counts < math.prod(size)
    return float(weights[some].sum())
