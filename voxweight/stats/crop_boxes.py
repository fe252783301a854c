r"""Window sums of the crops restricted to the foreground's bounding box, where all the class voxels are.

A class indicator is 0 outside the box ``[a, b]`` of the labelled voxels, so the sum over the window
``[t, t + s)`` of an axis is the sum over ``[max(t, a), min(t + s, b + 1))`` of the box alone:
:math:`S(\min(t + s, b + 1) - a) - S(\max(t, a) - a)` with :math:`S` the running sum from ``a``
(clipped to the box), or the box's slabs entering and leaving the window (:func:`window_sums`). The work
is the box's voxels, not the volume's: for a tumour, a small fraction.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["along", "box_window_sums", "count_dtype", "foreground_box", "window_sums"]


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


def along(axis: int, index: int | slice) -> tuple:
    """An index selecting ``index`` along ``axis`` (everything on the axes before it).

    Example:
        >>> np.arange(6).reshape(2, 3)[along(1, slice(1, 2))].tolist()
        [[1], [4]]
    """
    return (slice(None),) * axis + (index,)


def window_sums(x: np.ndarray, axis: int, size: int, starts: int, bound: int, origin: int = 0) -> np.ndarray:
    """Sums of ``x`` over the windows ``[t, t + size)`` of ``axis`` (``t < starts``), ``x`` starting at ``origin``.

    ``x`` holds positions ``origin .. origin + m - 1`` of the axis (0 elsewhere), so window ``t`` sums ``x`` over
    ``[lo_t, hi_t) = [t - origin, t + size - origin)`` clipped to ``[0, m]``. The first window is one reduction,
    each next one the previous plus the slab entering minus the one leaving (adding first); many small windows
    are differences of running sums; the last (contiguous) axis is one float32 product with the 0/1 band of
    windows (exact below 2**24; else it is turned second). Smallest unsigned dtype.

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
    m = x.shape[axis]
    t = np.arange(starts)
    lo, hi = np.clip(t - origin, 0, m), np.clip(t + size - origin, 0, m)
    span = min(size, m)
    if axis == x.ndim - 1 and x.ndim > 1 and starts <= 128 and bound * span < 1 << 24:  # rows: one exact matmul
        j = torch.arange(m)[:, None]
        band = (j >= torch.from_numpy(lo)) & (j < torch.from_numpy(hi))  # torch: its thread setting, not BLAS's
        rows = torch.from_numpy(x.reshape(-1, m).astype(np.float32))
        sums = (rows @ band.float()).numpy()
        return sums.astype(count_dtype(bound * span)).reshape(*x.shape[:-1], starts)
    if axis == x.ndim - 1 and x.ndim > 2:  # along rows: slabs would be strided columns, so turn them first
        turned = window_sums(np.ascontiguousarray(np.moveaxis(x, -1, 1)), 1, size, starts, bound, origin)
        return np.moveaxis(turned, 1, -1)
    small = 2 * (starts - 1) > m  # small windows: running sums of every voxel, then differences
    dtype = count_dtype(bound * (m if small else span + 1))
    out = np.empty((*x.shape[:axis], starts, *x.shape[axis + 1:]), dtype=dtype)
    if small:
        total = np.zeros((*x.shape[:axis], m + 1, *x.shape[axis + 1:]), dtype=dtype)
        for i in range(m):  # slab by slab: faster than np.cumsum along an outer axis
            np.add(total[along(axis, slice(i, i + 1))], x[along(axis, slice(i, i + 1))],
                   out=total[along(axis, slice(i + 1, i + 2))])
        return np.subtract(np.take(total, hi, axis=axis), np.take(total, lo, axis=axis), out=out)
    first = out[along(axis, slice(0, 1))]
    np.add.reduce(x[along(axis, slice(int(lo[0]), int(hi[0])))], axis=axis, dtype=dtype, out=first, keepdims=True)
    for i in range(1, starts):
        now, before = out[along(axis, slice(i, i + 1))], out[along(axis, slice(i - 1, i))]
        np.copyto(now, before)
        if hi[i] > hi[i - 1]:
            np.add(now, x[along(axis, slice(int(hi[i]) - 1, int(hi[i])))], out=now)
        if lo[i] > lo[i - 1]:
            np.subtract(now, x[along(axis, slice(int(lo[i]) - 1, int(lo[i])))], out=now)
    return out


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
    bound = 1
    for axis in order:
        inside = window_sums(inside, axis + 1, size[axis], starts[axis], bound, box[axis].start)
        bound *= min(size[axis], box[axis].stop - box[axis].start)
    return inside
