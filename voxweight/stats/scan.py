"""Scan NIfTI label maps into a :class:`voxweight.LabelStats`, one file at a time per worker.

Which files: :mod:`voxweight.stats.files`; how a file is opened safely: :mod:`voxweight.stats.images`;
how it is counted a slab at a time: :mod:`voxweight.stats.nifti`. This module runs the workers and adds up,
and, under ``torch.distributed``, splits the files by rank and sums over the ranks
(:mod:`voxweight.stats.distributed`).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import warnings
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat

import numpy as np

from voxweight._validate import check_flag, check_positive_int
from voxweight.stats.distributed import all_gather_objects, shard_rank
from voxweight.stats.files import PathLike, list_label_files, read_errors
from voxweight.stats.label_stats import LabelStats
from voxweight.stats.nifti import stream_label_counts

__all__ = ["scan_labels"]


Results = list[tuple[np.ndarray | None, str | None]]


def scan_labels(paths: PathLike | Iterable[PathLike], *, num_classes: int | None = None, workers: int = 1,
                progress: bool = True, strict: bool = False, shard: bool | None = None) -> LabelStats:
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

    Distributed (``shard=None`` with an initialised ``torch.distributed`` default group, or ``shard=True``):
    rank ``r`` of ``W`` counts ``files[r::W]`` of the listed files (a rank may get none), then the ranks
    agree and add up (:meth:`LabelStats.all_reduce`), so every rank returns the same
    :class:`~voxweight.LabelStats`, equal (``==``) to one process scanning every file: the counts, the
    inferred ``num_classes`` (the largest over the ranks) and ``skipped`` (every rank's unreadable files,
    in file order; each rank warns about all of them). It is a collective: every rank calls it with the
    same ``paths``, ``num_classes`` and ``strict``; a mismatch, or an error on one rank (a missing path,
    ``strict``'s first unreadable file), raises the same error on every rank instead of hanging the
    others. Only rank 0 shows a progress bar. Ranks that already hold a share of their own pass
    ``shard=False`` and call :meth:`LabelStats.all_reduce` themselves.

    Args:
        paths: a file, a directory, or a sequence of them. A directory contributes its ``*.nii`` and
            ``*.nii.gz`` files (not recursive, hidden files ignored), sorted by name.
        num_classes: number of classes ``K``; values must lie in ``[0, K-1]``. ``None`` infers it as the
            largest label in the readable files + 1 (an exact count: each file's counts are padded).
        workers: processes reading files in parallel (1 reads in this process); per rank when sharded.
        progress: show a tqdm progress bar.
        strict: raise on the first unreadable file instead of skipping it.
        shard: ``None`` splits the files by rank when a default process group is initialised, ``True``
            requires one, ``False`` reads every file in this process.

    Returns:
        The dataset's :class:`~voxweight.LabelStats`, with ``skipped`` filled in.

    Raises:
        FileNotFoundError: for a path that does not exist (named).
        TypeError: for a bad argument type.
        ValueError: for an empty directory, a file listed twice, a bad ``num_classes``/``workers``, no
            readable file at all, or (``strict=True``) an unreadable file, named with the reason;
            ``shard=True`` without a process group; ranks that disagree on the files or options.

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
    if shard is not None:
        shard = check_flag("shard", shard, expected="True, False or None")
    rank, world = shard_rank(shard)
    if world > 1:
        return _scan_shard(paths, (num_classes, workers, progress, strict), rank, world)
    files = list_label_files(paths)
    num_classes, workers, progress, strict = _check_options(num_classes, workers, progress, strict)
    results = _count_files(files, num_classes, workers, progress, strict)
    skipped = _skipped(files, results, 0, 1)
    _check_outcome(strict, len(results) - len(skipped), len(files), skipped)
    k = num_classes if num_classes is not None else max(c.size for c, _ in results if c is not None)
    return _finish(_local_stats(results, k), skipped, len(files))


def _check_options(num_classes: int | None, workers: int, progress: bool, strict: bool
                   ) -> tuple[int | None, int, bool, bool]:
    """The validated ``num_classes``, ``workers``, ``progress`` and ``strict``."""
    if num_classes is not None:
        num_classes = check_positive_int("num_classes", num_classes, expected="a positive int")
    return (num_classes, check_positive_int("workers", workers, expected="a positive int"),
            check_flag("progress", progress), check_flag("strict", strict))


def _scan_shard(paths: PathLike | Iterable[PathLike], options: tuple[int | None, int, bool, bool], rank: int,
                world: int) -> LabelStats:
    """Rank ``rank``'s share of the files, counted, then checked against and summed with every other rank's."""
    results: Results = []
    local_error = None
    try:
        files = list_label_files(paths)
        num_classes, workers, progress, strict = _check_options(*options)
        results = _count_files(files[rank::world], num_classes, workers, progress and rank == 0, strict)
        sizes = [c.size for c, _ in results if c is not None]
        summary = {"error": None, "files": _fingerprint(files), "num_classes": num_classes, "strict": strict,
                   "size": max(sizes, default=0), "readable": len(sizes),
                   "skipped": _skipped(files[rank::world], results, rank, world)}
    except (ValueError, TypeError, OSError) as err:  # raised on every rank below, so that none waits forever
        local_error, summary = err, {"error": (type(err), str(err))}
    parts = all_gather_objects(summary)
    _raise_first_error(parts, local_error)
    _check_agreement(parts)
    skipped = sorted(item for part in parts for item in part["skipped"])
    _check_outcome(strict, sum(part["readable"] for part in parts), len(files), skipped)
    k = num_classes if num_classes is not None else max(part["size"] for part in parts)
    return _finish(_local_stats(results, k).all_reduce(), skipped, len(files), stacklevel=4)


def _fingerprint(files: list[str]) -> str:
    """A short description of a file list that differs when the list does: its length and a digest."""
    digest = hashlib.sha256("\0".join(files).encode("utf-8", "surrogateescape")).hexdigest()
    return f"{len(files)} files (sha256 {digest[:12]})"


def _raise_first_error(parts: list[dict], local_error: BaseException | None) -> None:
    """Raise on every rank once any rank had an error: its own, else the lowest such rank's (named)."""
    if local_error is not None:
        raise local_error
    for source, part in enumerate(parts):
        if part["error"] is not None:
            kind, message = part["error"]
            message = f"{message} (on rank {source})"
            try:
                error = kind(message)
            except TypeError:  # an exception class that takes more than a message
                error = ValueError(message)
            raise error from None


def _check_agreement(parts: list[dict]) -> None:
    """The same files and options on every rank, or one ``ValueError`` naming the first that differs."""
    for key, name in (("files", "paths"), ("num_classes", "num_classes"), ("strict", "strict")):
        for rank, part in enumerate(parts):
            if part[key] != parts[0][key]:
                raise ValueError(f"{name}: expected the same value on every rank of a sharded scan (shard=), got "
                                 f"{parts[0][key]} on rank 0 and {part[key]} on rank {rank}")


def _count_file(path: str, num_classes: int | None) -> tuple[np.ndarray | None, str | None]:
    """Worker: the label counts of one file (a slab at a time), or the reason it cannot be counted."""
    try:
        return stream_label_counts(path, num_classes, "labels"), None
    except read_errors() as err:
        message = str(err) if isinstance(err, ValueError | TypeError) else f"{type(err).__name__}: {err}"
        return None, message


def _count_files(files: list[str], num_classes: int | None, workers: int, progress: bool, strict: bool) -> Results:
    """``(counts, reason)`` per file, in file order, from ``workers`` spawned processes (or this one).

    With ``strict`` the list stops at the first file that could not be counted.
    """
    from tqdm.auto import tqdm

    results = []
    with tqdm(total=len(files), unit="file", desc="scanning labels", disable=not progress) as bar:
        if workers == 1 or len(files) <= 1:
            stream = map(_count_file, files, repeat(num_classes))
            pool = None
        else:
            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(max_workers=min(workers, len(files)), mp_context=context)
            stream = pool.map(_count_file, files, repeat(num_classes))
        try:
            for counts, reason in stream:
                results.append((counts, reason))
                bar.update(1)
                if strict and reason is not None:
                    break
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
    return results


def _skipped(files: list[str], results: Results, start: int, step: int) -> list[tuple[int, str, str]]:
    """``(index in the whole file list, path, reason)`` of each file of ``results`` that was not counted."""
    return [(start + i * step, path, reason) for i, (path, (_, reason)) in enumerate(zip(files, results, strict=False))
            if reason is not None]


def _check_outcome(strict: bool, readable: int, files: int, skipped: list[tuple[int, str, str]]) -> None:
    """Raise for ``strict``'s first unreadable file (in file order), or when no file at all was readable."""
    if strict and skipped:
        raise ValueError(f"{skipped[0][1]}: {skipped[0][2]}")
    if not readable:
        raise ValueError(f"paths: expected at least one readable label file, got none among {files} "
                         f"(first: {skipped[0][1]}: {skipped[0][2]})")


def _local_stats(results: Results, k: int) -> LabelStats:
    """A :class:`LabelStats` of ``K`` classes holding the counted files of ``results`` (padded to ``K``)."""
    stats = LabelStats(k)
    for counts, _ in results:
        if counts is not None:
            stats.add_counts(np.pad(counts, (0, k - counts.size)))
    return stats


def _finish(stats: LabelStats, skipped: list[tuple[int, str, str]], files: int, stacklevel: int = 3) -> LabelStats:
    """``stats`` with its ``skipped`` list, after a warning about them (pointing at scan_labels' caller)."""
    stats.skipped = [(path, reason) for _, path, reason in skipped]
    if skipped:
        shown = "; ".join(f"{f}: {r}" for f, r in stats.skipped[:5]) + ("; ..." if len(skipped) > 5 else "")
        warnings.warn(f"scan_labels: skipped {len(skipped)} of {files} files that could not be counted "
                      f"as label maps (listed in stats.skipped): {shown}", UserWarning, stacklevel=stacklevel)
    return stats
