"""Exact voxel counts per label value of an integer (or whole-number float) array, in bounded memory.

``np.bincount`` casts its input to ``intp`` (8 bytes a voxel); counting in chunks of ``CHUNK`` voxels
keeps that copy small whatever the size of the volume (a ``uint8`` volume is never copied whole).
Label maps are mostly long runs of one value, so each chunk is first reduced to its runs (one
comparison pass), and the value checks and counts work on those: the cost hardly grows with classes.
:class:`LabelCounter` does this for a volume that arrives chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from voxweight._validate import describe

__all__ = [
    "CHUNK",
    "MAX_INFERRED_CLASSES",
    "MIN_RUN",
    "LabelCounter",
    "as_target_tensor",
    "count_labels",
    "count_on_device",
    "flat_chunks",
    "run_lengths",
    "value_range",
]

CHUNK = 1 << 22  # voxels per bincount call (32 MiB of intp)
MAX_INFERRED_CLASSES = 1 << 16
MIN_RUN = 16  # mean run length (voxels) above which labels are counted by runs


def flat_chunks(array: np.ndarray) -> Iterator[np.ndarray]:
    """Yield 1-D views (or small copies) of ``array`` covering every element once, in memory order.

    Args:
        array: any array.

    Yields:
        Pieces of at most ``CHUNK`` elements (C or Fortran order, whichever ``array`` is stored in).

    Example:
        >>> [chunk.tolist() for chunk in flat_chunks(np.arange(6).reshape(2, 3))]
        [[0, 1, 2, 3, 4, 5]]
    """
    flat = array.reshape(-1, order="F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C")
    for start in range(0, flat.size, CHUNK):
        yield flat[start:start + CHUNK]


def count_labels(array: np.ndarray, num_classes: int | None, name: str, *, allow_float: bool = False) -> np.ndarray:
    """Count the elements of each label value: ``counts[k]`` = number of elements equal to ``k``.

    Args:
        array: class indices (integers or bools; whole-number floats with ``allow_float``).
        num_classes: number of classes ``K``, or ``None`` to count up to the largest value.
        name: the name errors report the array under.
        allow_float: accept a float array whose values are all whole numbers.

    Returns:
        int64 counts, of length ``num_classes`` (or the largest value + 1).

    Raises:
        TypeError: for a float array without ``allow_float``, or a non-numeric dtype.
        ValueError: naming ``name``, for negative values, values ``>= num_classes`` (or, inferred, above
            ``MAX_INFERRED_CLASSES``), and (with ``allow_float``) non-finite or non-integer values.

    Shape:
        - array: any.
        - output: ``[K]``.

    Example:
        >>> count_labels(np.array([[0, 2], [2, 2]]), 4, "labels")
        array([1, 0, 3, 0])
    """
    counter = LabelCounter(array.dtype, num_classes, name, allow_float=allow_float)
    for chunk in flat_chunks(array):
        counter.add(chunk)
    return counter.counts()


class LabelCounter:
    """Exact label counts of a volume that arrives in 1-D chunks (any order, any chunk sizes).

    :func:`count_labels` feeds it a whole array chunk by chunk; :mod:`voxweight.stats.nifti` feeds it
    voxel data as it comes out of the decompressor, so a file is counted without ever being held whole.
    Range errors (negative values, values ``>= num_classes``) are raised by :meth:`counts` with the range
    of the whole volume; the chunks that follow the first bad one are only checked, not counted.

    Args:
        dtype: the dtype of every chunk.
        num_classes: number of classes ``K``, or ``None`` to count up to the largest value.
        name: the name errors report the volume under.
        allow_float: accept float chunks whose values are all whole numbers.

    Raises:
        TypeError: for a float ``dtype`` without ``allow_float``, or a non-numeric one.

    Example:
        >>> counter = LabelCounter(np.dtype(np.uint8), None, "labels")
        >>> counter.add(np.array([0, 0, 1], dtype=np.uint8))
        >>> counter.add(np.array([3], dtype=np.uint8))
        >>> counter.counts()
        array([2, 1, 0, 1])
    """

    def __init__(self, dtype: np.dtype, num_classes: int | None, name: str, *, allow_float: bool = False) -> None:
        kind = np.dtype(dtype).kind
        if (kind == "f" and not allow_float) or kind not in "buif":
            raise TypeError(f"{name}: expected an integer array of class indices, got dtype {dtype}")
        self.num_classes, self.name = num_classes, name
        self._lo, self._hi = np.inf, -np.inf
        self._counts = np.zeros(num_classes or 0, dtype=np.int64)

    def add(self, chunk: np.ndarray) -> None:
        """Count a 1-D chunk.

        Args:
            chunk: 1-D values of the counter's dtype, at most ``CHUNK`` of them (``np.bincount`` copies it
                to ``intp``).

        Raises:
            ValueError: for non-finite or fractional float values (with ``allow_float``); range errors
                wait for :meth:`counts`.

        Shape:
            - chunk: ``[n]``.
        """
        if chunk.size == 0:
            return
        values, lengths = run_lengths(chunk)
        lo, hi = value_range(values, self.name)  # each run's value: every value, in order
        self._lo, self._hi = min(self._lo, lo), max(self._hi, hi)
        if self._lo < 0 or self._hi >= (self.num_classes or MAX_INFERRED_CLASSES):
            return  # an error for counts() to raise; nothing more to count
        counts = np.bincount(values.astype(np.intp, copy=False), lengths, minlength=self._counts.size)
        if counts.size > self._counts.size:
            self._counts = np.pad(self._counts, (0, counts.size - self._counts.size))
        self._counts += counts.astype(np.int64)  # float weights: exact, a chunk holds far fewer than 2**53

    def counts(self) -> np.ndarray:
        """The counts so far, checked against the range of every value added.

        Returns:
            int64 counts (a copy), of length ``num_classes`` (or the largest value + 1).

        Raises:
            ValueError: for a negative value, a value ``>= num_classes``, or (``num_classes=None``) a value
                ``>= MAX_INFERRED_CLASSES``, with the range of the values seen.

        Shape:
            - output: ``[K]``.
        """
        lo, hi, name, num_classes = self._lo, self._hi, self.name, self.num_classes
        if lo < 0:
            raise ValueError(f"{name}: expected class indices >= 0, got values in [{lo:g}, {hi:g}]")
        if num_classes is not None and hi >= num_classes:
            raise ValueError(f"{name}: expected class indices in [0, {num_classes - 1}] (num_classes={num_classes}), "
                             f"got values in [{lo:g}, {hi:g}]")
        if num_classes is None and hi >= MAX_INFERRED_CLASSES:
            raise ValueError(f"{name}: expected class indices below {MAX_INFERRED_CLASSES} when num_classes is "
                             f"inferred, got a maximum of {hi:g} (an image or instance ids rather than class labels?); "
                             f"pass num_classes to count only 0..K-1")
        return self._counts.copy()


def run_lengths(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The value and length of each run of equal values of a 1-D ``chunk``, in order.

    Label maps are mostly long runs, so counting runs is much cheaper than counting voxels. Where runs
    are short (noise: over one boundary in ``MIN_RUN`` voxels) it returns ``(chunk, None)`` instead.
    NaN is never equal to itself, so each NaN is a run of its own and still shows in the values.

    Args:
        chunk: 1-D values, not empty.

    Returns:
        ``(values, lengths)`` (``np.bincount(values, lengths)`` counts ``chunk``), or ``(chunk, None)``.

    Shape:
        - chunk: ``[n]``.
        - values, lengths: ``[runs]``.

    Example:
        >>> run_lengths(np.array([5] * 20 + [7] * 12))
        (array([5, 7]), array([20, 12]))
    """
    boundaries = np.flatnonzero(chunk[1:] != chunk[:-1])  # at most one intp a voxel, as bincount's copy
    if boundaries.size > chunk.size // MIN_RUN:
        return chunk, None
    starts = np.concatenate(([0], boundaries + 1))
    return chunk[starts], np.diff(starts, append=chunk.size)


def value_range(array: np.ndarray, name: str) -> tuple[float, float]:
    """Minimum and maximum; for floats also require finite whole numbers (checked chunk by chunk).

    Args:
        array: a non-empty numeric array.
        name: the name errors report the array under.

    Returns:
        ``(min, max)`` as floats.

    Raises:
        ValueError: for a NaN, an infinity or a fractional value in a float array.

    Example:
        >>> value_range(np.array([3.0, 0.0, 2.0]), "labels")
        (0.0, 3.0)
    """
    if array.dtype.kind == "b":
        return float(array.min()), float(array.max())
    lo, hi = np.inf, -np.inf
    for chunk in flat_chunks(array):
        if chunk.dtype.kind == "f":
            if not np.all(np.isfinite(chunk)):
                raise ValueError(f"{name}: expected finite class indices, got NaN or inf")
            fractional = chunk[np.floor(chunk) != chunk]
            if fractional.size:
                raise ValueError(f"{name}: expected whole-number class indices, got non-integer values "
                                 f"(e.g. {fractional[0]:g}) in a {array.dtype} array: an image rather than "
                                 f"a label map?")
        lo, hi = min(lo, chunk.min()), max(hi, chunk.max())
    return float(lo), float(hi)


def as_target_tensor(name: str, x: Any) -> torch.Tensor:
    """``x`` (ndarray or tensor, real) as a detached tensor; bool becomes uint8 (a view, no copy).

    A numpy array is shared, not copied (one with negative strides is made contiguous first).

    Args:
        name: the name errors report ``x`` under.
        x: a numpy array or torch tensor of real values.

    Returns:
        A detached tensor on ``x``'s device, sharing its data.

    Raises:
        TypeError: for something else, or a complex or non-numeric dtype.

    Example:
        >>> as_target_tensor("target", np.array([True, False]))
        tensor([1, 0], dtype=torch.uint8)
    """
    if isinstance(x, np.ndarray):
        try:
            x = torch.from_numpy(x if all(s >= 0 for s in x.strides) else np.ascontiguousarray(x))
        except TypeError:
            raise TypeError(f"{name}: expected a bool, integer or float array, got dtype {x.dtype}") from None
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a numpy array or torch tensor, got {describe(x)}")
    if x.is_complex():
        raise TypeError(f"{name}: expected real values in [0, 1], got dtype {x.dtype}")
    return x.detach().view(torch.uint8) if x.dtype == torch.bool else x.detach()


def count_on_device(label_map: torch.Tensor, num_classes: int) -> np.ndarray:
    """Label counts of an integer tensor on its device (``bincount``), range-checked against ``num_classes``.

    The range check reads two numbers back to the host (one synchronisation), whatever the value-check mode.

    Args:
        label_map: integer class indices, on any device.
        num_classes: number of classes ``K``.

    Returns:
        int64 counts on the host.

    Raises:
        TypeError: for a float or complex tensor.
        ValueError: for a value outside ``[0, K-1]``.

    Shape:
        - label_map: any.
        - output: ``[K]``.

    Example:
        >>> count_on_device(torch.tensor([[0, 1], [1, 1]]), 3)
        array([1, 3, 0])
    """
    if label_map.is_floating_point() or label_map.is_complex():
        raise TypeError(f"label_map: expected an integer tensor of class indices, got dtype {label_map.dtype}")
    flat = label_map.detach().reshape(-1).long()
    lo, hi = (int(v) for v in torch.aminmax(flat))
    if lo < 0 or hi >= num_classes:
        raise ValueError(f"label_map: expected class indices in [0, {num_classes - 1}] (num_classes={num_classes}), "
                         f"got values in [{lo}, {hi}]")
    return torch.bincount(flat, minlength=num_classes).cpu().numpy()
