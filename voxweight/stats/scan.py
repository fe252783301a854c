"""Scan NIfTI label maps into a :class:`voxweight.LabelStats`, one file at a time per worker.

Which files: :mod:`voxweight.stats.files`; how a file is opened safely: :mod:`voxweight.stats.images`;
how it is counted a slab at a time: :mod:`voxweight.stats.nifti`. This module runs the workers and adds up.
"""

from __future__ import annotations

import multiprocessing
import warnings
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat

import numpy as np

from voxweight._validate import check_flag, check_positive_int
from voxweight.stats.files import PathLike, list_label_files, read_errors
from voxweight.stats.label_stats import LabelStats
from voxweight.stats.nifti import stream_label_counts

__all__ = ["scan_labels"]


def scan_labels(paths: PathLike | Iterable[PathLike], *, num_classes: int | None = None, workers: int = 1,
                progress: bool = True, strict: bool = False) -> LabelStats:
    """Count every label file under ``paths`` into one :class:`~voxweight.LabelStats`.

    Each file is counted as one image with :meth:`LabelStats.update_labels` semantics: value ``k`` is
    class ``k``, background (0) included. Every file is opened by nibabel (header parsing, decompression,
    scaling) and read through its array proxy one slab of at most ``SLAB_VOXELS`` voxels at a time along
    the slowest axis, so a file is never held whole, whatever its header claims (and scanning costs about
    what decompressing does). The counts are exactly ``np.bincount`` of nibabel's full load. Workers are
    processes (``spawn``), each on one file at a time. Counts are exact integers, the same for any
    ``workers`` and any file order.

    What counts as a label file: a 2D or 3D image (trailing axes of size 1 are dropped; a true 4D image is
    rejected) of integers >= 0. Files stored as floats (or scaled) are accepted when every value is a whole
    number (many tools write labels as float32); a fractional, NaN or negative value is rejected. Files
    that cannot be read are skipped with a warning and listed in ``stats.skipped`` as ``(path, reason)``:
    not a regular file (a FIFO is never opened), a header nibabel refuses (with nibabel's reason), a
    negative, empty or 4D shape, a header claiming more data than the file can hold, corrupt or truncated
    data, non-integer labels, labels >= ``num_classes``. Any error nibabel raises for a file skips that
    file; it never aborts the scan. With ``strict=True`` the first of them (in file order) raises instead.

    Args:
        paths: a file, a directory, or a sequence of them. A directory contributes its ``*.nii`` and
            ``*.nii.gz`` files (not recursive, hidden files ignored), sorted by name.
        num_classes: number of classes ``K``; values must lie in ``[0, K-1]``. ``None`` infers it as the
            largest label in the readable files + 1 (an exact count: each file's counts are padded).
        workers: processes reading files in parallel (1 reads in this process).
        progress: show a tqdm progress bar.
        strict: raise on the first unreadable file instead of skipping it.

    Returns:
        The dataset's :class:`~voxweight.LabelStats`, with ``skipped`` filled in.

    Raises:
        FileNotFoundError: for a path that does not exist (named).
        TypeError: for a bad argument type.
        ValueError: for an empty directory, a file listed twice, a bad ``num_classes``/``workers``, no
            readable file at all, or (``strict=True``) an unreadable file, named with the reason.

    Shape:
        - each file: ``[X, Y]`` or ``[X, Y, Z]`` (``[X, Y, Z, 1]`` too).
        - result counts: ``[K]``.

    Example:
        >>> import tempfile, numpy as np, nibabel as nib
        >>> from voxweight.stats import scan_labels
        >>> folder = tempfile.TemporaryDirectory()
        >>> label = np.array([[[0, 1], [1, 2]]], dtype=np.uint8)
        >>> nib.save(nib.Nifti1Image(label, np.eye(4)), f"{folder.name}/a.nii.gz")
        >>> stats = scan_labels(folder.name, progress=False)
        >>> stats.positives, stats.images
        (array([1., 2., 1.]), 1)
        >>> folder.cleanup()
    """
    files = list_label_files(paths)
    if num_classes is not None:
        num_classes = check_positive_int("num_classes", num_classes, expected="a positive int")
    workers = check_positive_int("workers", workers, expected="a positive int")
    progress = check_flag("progress", progress)
    strict = check_flag("strict", strict)
    results = _count_files(files, num_classes, workers, progress, strict)
    return _assemble(files, results, num_classes)


def _count_file(path: str, num_classes: int | None) -> tuple[np.ndarray | None, str | None]:
    """Worker: the label counts of one file (a slab at a time), or the reason it cannot be counted."""
    try:
        return stream_label_counts(path, num_classes, "labels"), None
    except read_errors() as err:
        message = str(err) if isinstance(err, ValueError | TypeError) else f"{type(err).__name__}: {err}"
        return None, message


def _count_files(files: list[str], num_classes: int | None, workers: int, progress: bool, strict: bool
                 ) -> list[tuple[np.ndarray | None, str | None]]:
    """``(counts, reason)`` per file, in file order, from ``workers`` spawned processes (or this one)."""
    from tqdm.auto import tqdm

    results = []
    with tqdm(total=len(files), unit="file", desc="scanning labels", disable=not progress) as bar:
        if workers == 1 or len(files) == 1:
            stream = map(_count_file, files, repeat(num_classes))
            pool = None
        else:
            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(max_workers=min(workers, len(files)), mp_context=context)
            stream = pool.map(_count_file, files, repeat(num_classes))
        try:
            for path, (counts, reason) in zip(files, stream, strict=True):
                if strict and reason is not None:
                    raise ValueError(f"{path}: {reason}")
                results.append((counts, reason))
                bar.update(1)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
    return results


def _assemble(files: list[str], results: list[tuple[np.ndarray | None, str | None]],
              num_classes: int | None) -> LabelStats:
    """One :class:`LabelStats` of the counted files (padded to ``K``), warning about the skipped ones."""
    counts = [c for c, _ in results if c is not None]
    skipped = [(f, reason) for f, (_, reason) in zip(files, results, strict=True) if reason is not None]
    if not counts:
        raise ValueError(f"paths: expected at least one readable label file, got none among {len(files)} "
                         f"(first: {skipped[0][0]}: {skipped[0][1]})")
    k = num_classes if num_classes is not None else max(c.size for c in counts)
    stats = LabelStats(k)
    for c in counts:
        stats.add_counts(np.pad(c, (0, k - c.size)))
    stats.skipped = skipped
    if skipped:
        shown = "; ".join(f"{f}: {r}" for f, r in skipped[:5]) + ("; ..." if len(skipped) > 5 else "")
        warnings.warn(f"scan_labels: skipped {len(skipped)} of {len(files)} files that could not be counted "
                      f"as label maps (listed in stats.skipped): {shown}", UserWarning, stacklevel=3)
    return stats
