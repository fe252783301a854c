r"""Window sums of the crops restricted to the foreground's bounding box, where all the class voxels are.

A class indicator is 0 outside the box ``[a, b]`` of the labelled voxels, so the sum over the window
``[t, t + s)`` of an axis is the sum over ``[max(t, a), min(t + s, b + 1))`` of the box alone:
:math:`S(\min(t + s, b + 1) - a) - S(\max(t, a) - a)` with :math:`S` the running sum from ``a``
(clipped to the box), or the box's slabs entering and leaving the window (:func:`window_sums`). The work
is the box's voxels, not the volume's: for a tumour, a small fraction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["along", "axis_order", "box_interval_sums", "box_window_sums", "box_windows", "c_frame", "count_dtype",
           "foreground_box", "interval_sums", "window_groups", "window_sums"]


def count_dtype(bound: int) -> type:
    """The smallest unsigned dtype holding the integers ``0 .. bound``.

    Example:
        >>> count_dtype(255).__name__, count_dtype(256).__name__
        ('uint8', 'uint16')
    """
    return next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if bound <= np.iinfo(t).max)


def foreground_box(label: np.ndarray) -> tuple[slice, ...] | None:
    """The bounding box of ``label != 0`` as one slice per axis, or None without a labelled voxel.

    Args:
        label: non-negative class indices (unsigned, bool or whole non-negative numbers), C or Fortran order.

    Returns:
        The box, or None.

    Shape:
        - label: ``[*spatial]``; the box: ``len(label.shape)`` slices.

    Example:
        >>> foreground_box(np.array([[0, 0, 0], [0, 3, 1]]))
        (slice(1, 2, None), slice(1, 3, None))
        >>> foreground_box(np.zeros((2, 2))) is None
        True
    """
    if label.size == 0:
        return None
    if label.ndim > 1 and label.flags.f_contiguous and not label.flags.c_contiguous:  # NIfTI: the C view
        box = foreground_box(label.T)
        return None if box is None else box[::-1]
    rows = np.flatnonzero(label.reshape(label.shape[0], -1).max(axis=1))  # long rows and vertical maxima: fast
    if rows.size == 0:
        return None
    rest = foreground_box(label.max(axis=0)) if label.ndim > 1 else ()
    box = [slice(int(rows[0]), int(rows[-1]) + 1), *(rest or ())]
    return tuple(box)


def c_frame(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """``x`` as a C-ordered view: its transpose when it is stored in Fortran order (NIfTI's), and whether so.

    Example:
        >>> view, flipped = c_frame(np.asfortranarray(np.zeros((2, 3))))
        >>> view.shape, flipped, view.flags.c_contiguous
        ((3, 2), True, True)
    """
    flipped = x.ndim > 1 and x.flags.f_contiguous and not x.flags.c_contiguous
    return (x.T, True) if flipped else (x, False)


def axis_order(lengths: tuple[int, ...], outs: tuple[int, ...]) -> list[int]:
    """The axes to reduce from ``lengths`` to ``outs``: those that shrink most first, the last (contiguous) one last.

    Example:
        >>> axis_order((10, 10, 10), (9, 2, 5))
        [1, 0, 2]
    """
    return [*sorted(range(len(lengths) - 1), key=lambda a: outs[a] / lengths[a]), len(lengths) - 1]


def along(axis: int, index: int | slice) -> tuple:
    """An index selecting ``index`` along ``axis`` (everything on the axes before it).

    Example:
        >>> np.arange(6).reshape(2, 3)[along(1, slice(1, 2))].tolist()
        [[1], [4]]
    """
    return (slice(None),) * axis + (index,)


def box_windows(starts: int, size: int, origin: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``[lo_t, hi_t)``: the part of a box at ``origin .. origin + m - 1`` that the crop ``[t, t + size)`` covers.

    ``[t - origin, t + size - origin)`` clipped to ``[0, m]``, for every start ``t < starts``.

    Example:
        >>> [a.tolist() for a in box_windows(4, 2, 2, 3)]  # a box at positions 2-4
        [[0, 0, 0, 1], [0, 1, 2, 3]]
    """
    t = np.arange(-origin, starts - origin)
    return np.minimum(np.maximum(t, 0), m), np.minimum(np.maximum(t + size, 0), m)  # np.clip costs more


def window_groups(starts: int, size: int, origin: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs of crop starts that see the same part of a box: first start of each run, and its window.

    Start ``t`` covers ``[t, t + size)``; cut to a box at ``origin .. origin + m - 1`` that is
    ``[lo_t, hi_t) = [t - origin, t + size - origin)`` clipped to ``[0, m]``. Starts whose crops hang over
    the box's end by different amounts see the same voxels: their sums are equal, so their weights can be
    summed first (``np.add.reduceat(W, first, axis)``) and only the distinct windows computed.

    Args:
        starts: the number of crop starts (``0 .. starts - 1``).
        size: the crop size.
        origin: the box's first position.
        m: the box's length.

    Returns:
        ``(first, lo, hi)``: int64 arrays, one entry per run, ``lo`` and ``hi`` non-decreasing.

    Example:
        >>> [a.tolist() for a in window_groups(6, 4, 2, 2)]  # starts 0-2 see the whole box, 3 its end, 4-5 none
        [[0, 3, 4], [0, 1, 2], [2, 2, 2]]
    """
    lo, hi = box_windows(starts, size, origin, m)
    change = np.empty(starts, dtype=bool)
    change[:1] = True
    np.not_equal(lo[1:], lo[:-1], out=change[1:])
    change[1:] |= hi[1:] != hi[:-1]
    first = np.flatnonzero(change)
    return first, lo[first], hi[first]


def window_sums(x: np.ndarray, axis: int, size: int, starts: int, bound: int, origin: int = 0) -> np.ndarray:
    """Sums of ``x`` over the windows ``[t, t + size)`` of ``axis`` (``t < starts``), ``x`` starting at ``origin``.

    ``x`` holds positions ``origin .. origin + m - 1`` of the axis (0 elsewhere), so window ``t`` sums ``x`` over
    ``[lo_t, hi_t) = [t - origin, t + size - origin)`` clipped to ``[0, m]`` (:func:`interval_sums`).

    Args:
        x: unsigned (or bool-as-uint8) counts.
        axis: the axis summed.
        size: the window.
        starts: the number of windows.
        bound: the largest value in ``x`` (or more).
        origin: the position of ``x``'s first element along ``axis``.

    Returns:
        The window sums, ``starts`` along ``axis``.

    Shape:
        - x: ``[..., m, ...]``; output: ``[..., starts, ...]``.

    Example:
        >>> window_sums(np.array([1, 0, 1, 1, 0], np.uint8), 0, 2, 4, 1).tolist()
        [1, 1, 2, 1]
        >>> window_sums(np.array([1, 1, 0], np.uint8), 0, 2, 4, 1, origin=2).tolist()  # x at positions 2-4
        [0, 1, 2, 1]
    """
    return interval_sums(x, axis, *box_windows(starts, size, origin, x.shape[axis]), bound)


def interval_sums(x: np.ndarray, axis: int, lo: np.ndarray, hi: np.ndarray, bound: int) -> np.ndarray:
    """Sums of ``x`` over ``[lo_i, hi_i)`` along ``axis``, ``lo`` and ``hi`` non-decreasing, in ``[0, m]``.

    The first window is one reduction, each next one the previous plus the slabs entering minus those
    leaving (adding first, one operation per change); where that costs more slab operations than running
    sums of every slab, differences of running sums. The last (contiguous) axis is turned second first
    (one copy: whole slabs then, not strided columns). Smallest unsigned dtype that holds the sums.

    Args:
        x: unsigned (or bool-as-uint8) counts.
        axis: the axis summed.
        lo: first element of each window.
        hi: one past the last element of each window (``>= lo``).
        bound: the largest value in ``x`` (or more).

    Returns:
        The sums, ``len(lo)`` along ``axis``.

    Shape:
        - x: ``[..., m, ...]``; output: ``[..., len(lo), ...]``.

    Example:
        >>> interval_sums(np.array([1, 0, 1, 1, 0], np.uint8), 0, np.array([0, 0, 2]), np.array([1, 4, 5]), 1).tolist()
        [1, 3, 2]
    """
    m, starts = x.shape[axis], len(lo)
    span = int((hi - lo).max()) if starts else 0
    if axis == x.ndim - 1 and x.ndim > 2:  # along rows: slabs would be strided columns, so turn them first
        turned = interval_sums(np.ascontiguousarray(np.moveaxis(x, -1, 1)), 1, lo, hi, bound)
        return np.moveaxis(turned, 1, -1)
    moved = int(hi[-1] - hi[0] + lo[-1] - lo[0]) if starts else 0
    small = 2 * m + 3 * starts < span + moved + starts  # running sums beat sliding (slab operations each way)
    step = int(np.diff(hi).max()) if starts > 1 else 0
    dtype = count_dtype(bound * (m if small else span + step))
    out = np.empty((*x.shape[:axis], starts, *x.shape[axis + 1:]), dtype=dtype)
    if small:
        total = np.zeros((*x.shape[:axis], m + 1, *x.shape[axis + 1:]), dtype=dtype)
        for i in range(m):  # slab by slab: faster than np.cumsum along an outer axis
            np.add(total[along(axis, slice(i, i + 1))], x[along(axis, slice(i, i + 1))],
                   out=total[along(axis, slice(i + 1, i + 2))])
        return np.subtract(np.take(total, hi, axis=axis), np.take(total, lo, axis=axis), out=out)
    if starts:
        first = out[along(axis, slice(0, 1))]
        np.add.reduce(x[along(axis, slice(int(lo[0]), int(hi[0])))], axis=axis, dtype=dtype, out=first, keepdims=True)
    for i in range(1, starts):  # the previous window, plus the slabs entering, minus those leaving
        now = out[along(axis, slice(i, i + 1))]
        source = _slide(x, axis, int(hi[i - 1]), int(hi[i]), out[along(axis, slice(i - 1, i))], now, np.add)
        source = _slide(x, axis, int(lo[i - 1]), int(lo[i]), source, now, np.subtract)
        if source is not now:
            np.copyto(now, source)
    return out


def _slide(x: np.ndarray, axis: int, a: int, b: int, source: np.ndarray, now: np.ndarray, combine: Any
           ) -> np.ndarray:
    """``now = combine(source, sum of x[a:b] along axis)``, and ``now``; ``source`` untouched when ``b <= a``."""
    if b <= a:
        return source
    part = x[along(axis, slice(a, b))]
    if b - a > 1:
        part = np.add.reduce(part, axis=axis, dtype=now.dtype, keepdims=True)
    combine(source, part, out=now)
    return now


def box_window_sums(inside: np.ndarray, box: tuple[slice, ...], size: tuple[int, ...], starts: tuple[int, ...],
                    order: list[int]) -> np.ndarray:
    """The crop sums :math:`C_k(t)` of stacked class indicators cut to ``box``, one axis after another.

    Args:
        inside: 0/1 ``uint8`` indicators ``[K, *box shape]`` (the volume's voxels inside ``box``).
        box: the box's slices in the volume (``foreground_box``).
        size: crop size per spatial axis.
        starts: the number of crop starts per spatial axis.
        order: the spatial axes in the order to sum them.

    Returns:
        ``[K, *starts]`` unsigned counts.

    Example:
        >>> box_window_sums(np.ones((1, 2), np.uint8), (slice(1, 3),), (2,), (3,), [0]).tolist()
        [[1, 2, 1]]
    """
    windows = [box_windows(t, s, b.start, b.stop - b.start) for t, s, b in zip(starts, size, box, strict=True)]
    return box_interval_sums(inside, windows, order)


def box_interval_sums(inside: np.ndarray, windows: list[tuple[np.ndarray, np.ndarray]], order: list[int]
                      ) -> np.ndarray:
    """The sums of stacked class indicators over given windows of a box, one spatial axis after another.

    Args:
        inside: 0/1 ``uint8`` indicators ``[K, *box shape]``.
        windows: per spatial axis, ``(lo, hi)`` in box coordinates (:func:`window_groups`).
        order: the spatial axes in the order to sum them.

    Returns:
        ``[K, len(lo) per axis]`` unsigned counts.

    Example:
        >>> lo, hi = np.array([0, 1]), np.array([1, 2])
        >>> box_interval_sums(np.ones((1, 2), np.uint8), [(lo, hi)], [0]).tolist()
        [[1, 1]]
    """
    bound = 1
    for axis in order:
        lo, hi = windows[axis]
        inside = interval_sums(inside, axis + 1, lo, hi, bound)
        bound *= int((hi - lo).max()) if len(lo) else 1
    return inside
