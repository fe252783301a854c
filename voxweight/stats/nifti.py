"""Count the labels of an image file a slab at a time, through nibabel's array proxy.

The file is opened by :func:`voxweight.stats.images.open_label_image` (a regular file, nibabel's header
parsing, a shape and a data size the file can hold). Its voxels are then read by slicing the proxy
(``img.dataobj[..., k0:k1]``) along the slowest axis of the file: nibabel reads only that slab, applies
the scaling (``scl_slope``/``scl_inter``) and decompresses through Python's ``gzip`` (``indexed_gzip``
where installed), from one open file (:func:`~voxweight.stats.images.data_proxy`), so that consecutive
slabs decompress the stream once. Each slab
is counted by a :class:`~voxweight.stats.counting.LabelCounter` while it is in cache, so memory stays at
one slab (``SLAB_VOXELS`` voxels) whatever the header claims, and the counts are those of
``np.bincount`` over nibabel's full load, exactly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from voxweight.stats.counting import LabelCounter, flat_chunks, value_range
from voxweight.stats.images import data_proxy, nibabel_call, open_label_image

__all__ = ["SLAB_VOXELS", "read_label_volume", "read_slab", "slab_slicers", "stream_label_counts"]

SLAB_VOXELS = 1 << 18  # voxels per slab: 256 KiB of uint8, 2 MiB once scaled to float64


def stream_label_counts(path: str, num_classes: int | None, name: str) -> np.ndarray:
    """Label counts of the image file at ``path``, read a slab of at most ``SLAB_VOXELS`` voxels at a time.

    Counts as :func:`voxweight.stats.counting.count_labels` does on ``np.asanyarray(nib.load(path).dataobj)``
    (with ``allow_float``: whole-number floats count, so scaled files count their scaled values):
    ``counts[k]`` = number of voxels equal to ``k``.

    Args:
        path: the file (any format nibabel reads; single-file NIfTI-1/2, ``.nii`` or ``.nii.gz`` with any
            number of gzip members, is the usual one).
        num_classes: number of classes ``K``, or ``None`` to count up to the largest label.
        name: the name bad values are reported under.

    Returns:
        int64 counts per label value.

    Raises:
        LabelFileError: (a ``ValueError``) for a file that cannot be read: not a regular file, refused by
            nibabel (``"ErrorType: message"``: a bad header, truncated or corrupt data), a 4D, empty or
            negative shape, or a header claiming more data than the file holds.
        ValueError: what ``count_labels`` raises for bad values (naming ``name``).
        TypeError: for a non-numeric voxel dtype.

    Shape:
        - output: ``[K]`` (``[max + 1]`` when ``num_classes`` is ``None``).

    Example:
        >>> import tempfile, nibabel as nib
        >>> folder = tempfile.TemporaryDirectory()
        >>> label = np.array([[[0, 1], [1, 2]]], dtype=np.uint8)
        >>> nib.save(nib.Nifti1Image(label, np.eye(4)), f"{folder.name}/a.nii.gz")
        >>> stream_label_counts(f"{folder.name}/a.nii.gz", 4, "labels")
        array([1, 2, 1, 0])
        >>> folder.cleanup()
    """
    counter = None
    with open_label_image(path) as (image, shape), data_proxy(image) as proxy:
        LabelCounter(nibabel_call(image.get_data_dtype), num_classes, name, allow_float=True)  # dtype check
        for slicer in slab_slicers(shape, len(image.shape), getattr(proxy, "order", "F"), SLAB_VOXELS):
            slab = read_slab(proxy, slicer)
            if counter is None:  # the dtype after scaling
                counter = LabelCounter(slab.dtype, num_classes, name, allow_float=True)
            for chunk in flat_chunks(slab):
                counter.add(chunk)
    return counter.counts()


def read_label_volume(path: str) -> tuple[np.ndarray, Any]:
    """Read a label file whole, a slab at a time, as the smallest unsigned integer array holding its labels.

    The file is opened and checked as by :func:`stream_label_counts`; each slab (``SLAB_VOXELS`` voxels)
    is checked while in cache (whole finite numbers, as ``count_labels(allow_float=True)``), and the whole
    array is allocated only once every slab has been read, so a header claiming more data than the file
    holds costs what the file holds. The array keeps the file's storage order (NIfTI: Fortran) and the
    values of nibabel's full load (scaling applied): ``np.array_equal(out, np.asanyarray(img.dataobj))``.

    Args:
        path: the file (any format nibabel reads).

    Returns:
        ``(labels, image)``: ``uint8``/``uint16``/``uint32``/``uint64`` labels of the label shape (trailing
        axes of size 1 dropped) and the nibabel image.

    Raises:
        LabelFileError: (a ``ValueError``) for a file that cannot be read (see :func:`stream_label_counts`).
        ValueError: for negative, fractional or non-finite labels, named with the file.
        TypeError: for a non-numeric voxel dtype.

    Shape:
        - labels: ``[X, Y]`` or ``[X, Y, Z]``.

    Example:
        >>> import tempfile, nibabel as nib
        >>> folder = tempfile.TemporaryDirectory()
        >>> data = np.array([[[0.0], [2.0]], [[1.0], [0.0]]], dtype=np.float32)
        >>> nib.save(nib.Nifti1Image(data, np.eye(4)), f"{folder.name}/a.nii.gz")
        >>> labels, image = read_label_volume(f"{folder.name}/a.nii.gz")
        >>> labels.dtype, labels.shape, labels[:, :, 0].tolist()
        (dtype('uint8'), (2, 2, 1), [[0, 2], [1, 0]])
        >>> folder.cleanup()
    """
    pieces, lo, hi = [], np.inf, -np.inf
    with open_label_image(path) as (image, shape), data_proxy(image) as proxy:
        LabelCounter(nibabel_call(image.get_data_dtype), None, path, allow_float=True)  # dtype check
        order = "C" if getattr(proxy, "order", "F") == "C" else "F"
        for slicer in slab_slicers(shape, len(image.shape), order, SLAB_VOXELS):
            slab = read_slab(proxy, slicer)
            a, b = value_range(slab, path)
            lo, hi = min(lo, a), max(hi, b)
            pieces.append((slicer[:len(shape)], slab))
    if lo < 0:
        raise ValueError(f"{path}: expected labels >= 0, got a minimum of {lo:g}")
    if hi > np.iinfo(np.int64).max:
        raise ValueError(f"{path}: expected class indices below 2**63, got a maximum of {hi:g}")
    out = np.empty(shape, dtype=np.min_scalar_type(int(hi)), order=order)
    for index, slab in pieces:
        np.copyto(out[index], slab, casting="unsafe")  # whole numbers in [0, hi]: exact
    return out, image


def read_slab(proxy: Any, slicer: tuple[Any, ...]) -> np.ndarray:
    """``np.asanyarray(proxy[slicer])``: one slab, scaled, with nibabel's errors as ``LabelFileError``.

    Args:
        proxy: the image's ``dataobj``.
        slicer: an index from :func:`slab_slicers`.

    Returns:
        The slab's voxels.

    Raises:
        LabelFileError: (a ``ValueError``) for whatever nibabel raises (``EOFError`` for truncated gzip
            data, ``BadGzipFile``, ``zlib.error``, ...).
    """
    return nibabel_call(lambda: np.asanyarray(proxy[slicer]))


def slab_slicers(shape: tuple[int, ...], ndim: int, order: str, budget: int) -> Iterator[tuple[Any, ...]]:
    """Indices that cut an array stored in ``order`` into contiguous slabs of at most ``budget`` elements.

    Slabs run along the slowest axis (the last for Fortran order, NIfTI's; the first for C order), in
    file order. Where a single slice of that axis holds more than ``budget`` elements, the slabs are cut
    along the next axis within each slice, and so on: every slab is one contiguous run of the file, and
    together they cover every element once. Axes beyond ``shape`` (trailing axes of size 1 of a
    ``ndim``-D image) are indexed with 0.

    Args:
        shape: the label shape (positive sizes).
        ndim: the number of axes of the array sliced (``len(shape)`` or more).
        order: ``"F"`` or ``"C"``, the array's storage order.
        budget: the most elements in a slab (at least 1).

    Yields:
        Index tuples of length ``ndim`` (slices and ints).

    Example:
        >>> [s[2] for s in slab_slicers((4, 3, 5), 3, "F", 24)]
        [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
        >>> [s[1:] for s in slab_slicers((4, 3, 2), 3, "F", 8)]
        [(slice(0, 2, None), 0), (slice(2, 3, None), 0), (slice(0, 2, None), 1), (slice(2, 3, None), 1)]
    """
    axes = list(range(len(shape)))[:: 1 if order == "F" else -1]  # fastest first
    inner = 0  # how many of the fastest axes a slab holds whole
    while inner < len(axes) and math.prod(shape[a] for a in axes[: inner + 1]) <= budget:
        inner += 1
    tail = (0,) * (ndim - len(shape))
    if inner == len(axes):
        yield (slice(None),) * len(shape) + tail
        return
    cut = axes[inner]
    step = max(budget // math.prod(shape[a] for a in axes[:inner]), 1)
    outer = axes[inner + 1:][::-1]  # slowest first: itertools.product varies the last one fastest
    for fixed in itertools.product(*(range(shape[a]) for a in outer)):
        index: list[Any] = [slice(None)] * len(shape)
        for a, i in zip(outer, fixed, strict=True):
            index[a] = i
        for start in range(0, shape[cut], step):
            index[cut] = slice(start, min(start + step, shape[cut]))
            yield (*index, *tail)
