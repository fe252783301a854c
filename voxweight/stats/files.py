"""Finding and reading label files: which files a scan reads, and one whole file as a checked label map.

:func:`list_label_files` expands files and directories into the files :func:`voxweight.scan_labels`
counts; :func:`load_label` reads one whole file as a checked integer array (the CLI's entry point), opened
by :func:`voxweight.stats.images.open_label_image` (the checks every read goes through), and
:func:`read_errors` lists the exceptions that mean "this file cannot be counted".
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from voxweight._validate import describe
from voxweight.stats.counting import value_range
from voxweight.stats.images import nibabel_call, open_label_image

__all__ = ["NIFTI_SUFFIXES", "PathLike", "list_label_files", "load_label", "read_errors", "read_label"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")

PathLike = str | os.PathLike[str]


def list_label_files(paths: PathLike | Iterable[PathLike]) -> list[str]:
    """Expand files and directories into the sorted list of label files :func:`voxweight.scan_labels` reads.

    A directory contributes its ``*.nii`` and ``*.nii.gz`` files (not recursive, hidden files ignored),
    sorted by name; a file is listed as given, whatever its suffix.

    Args:
        paths: a file, a directory, or a sequence of them.

    Returns:
        The files, in the order given (each directory's files sorted by name).

    Raises:
        FileNotFoundError: for a path that does not exist (named).
        TypeError: for something that is not a path or a sequence of paths.
        ValueError: for an empty sequence, a directory without label files, or a file listed twice
            (also through a link or another spelling of its path).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> folder = tempfile.TemporaryDirectory()
        >>> for name in ("b.nii.gz", "a.nii", ".hidden.nii", "notes.txt"):
        ...     _ = Path(folder.name, name).write_bytes(b"")
        >>> [Path(f).name for f in list_label_files(folder.name)]
        ['a.nii', 'b.nii.gz']
        >>> folder.cleanup()
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not isinstance(paths, Iterable):
        raise TypeError(f"paths: expected a path or a sequence of paths, got {describe(paths)}")
    items = list(paths)
    if not items:
        raise ValueError("paths: expected at least one file or directory, got an empty sequence")
    files: list[str] = []
    for item in items:
        if not isinstance(item, str | os.PathLike):
            raise TypeError(f"paths: expected file or directory paths, got {describe(item)}")
        path = Path(item)
        if path.is_dir():
            found = sorted(str(p) for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                           and p.name.endswith(NIFTI_SUFFIXES))
            if not found:
                raise ValueError(f"paths: expected at least one .nii/.nii.gz file, got none in {path}")
            files += found
        elif path.exists():
            files.append(str(path))
        else:
            raise FileNotFoundError(f"paths: expected an existing file or directory, got {str(path)!r}")
    seen: set[str] = set()
    for f in files:
        key = os.path.realpath(f)
        if key in seen:
            raise ValueError(f"paths: expected each file once, got {f} more than once")
        seen.add(key)
    return files


def load_label(path: PathLike) -> tuple[np.ndarray, Any]:
    """Read one label file: its integer array (2D/3D) and the nibabel image (affine, header).

    Whole-number float files are converted to ``int64``; other files keep their integer dtype.

    Args:
        path: the label file (any format nibabel reads).

    Returns:
        ``(labels, image)``: the label map and the nibabel image it came from.

    Raises:
        ValueError: for a 4D image, negative, fractional or non-finite labels (named with the file).
        OSError: and nibabel's errors (see :func:`read_errors`) for unreadable files.

    Shape:
        - labels: ``[X, Y]`` or ``[X, Y, Z]`` (trailing axes of size 1 dropped).

    Example:
        >>> import tempfile, nibabel as nib
        >>> folder = tempfile.TemporaryDirectory()
        >>> data = np.array([[[0.0], [2.0]], [[1.0], [0.0]]], dtype=np.float32)
        >>> nib.save(nib.Nifti1Image(data, np.eye(4)), f"{folder.name}/a.nii.gz")
        >>> labels, image = load_label(f"{folder.name}/a.nii.gz")
        >>> labels.dtype, labels.shape, image.shape
        (dtype('int64'), (2, 2, 1), (2, 2, 1))
        >>> folder.cleanup()
    """
    array, image = read_label(str(path))
    try:
        lo, _ = value_range(array, "labels")
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    if lo < 0:
        raise ValueError(f"{path}: expected labels >= 0, got a minimum of {lo:g}")
    if array.dtype.kind in "fb":
        array = array.astype(np.int64)
    return np.asarray(array), image


def read_label(path: str) -> tuple[np.ndarray, Any]:
    """Read a file whole with nibabel, as stored (no value checks), without its trailing axes of size 1.

    The file is opened by :func:`open_label_image`, so its header has been checked against its size
    before the voxel data is allocated.

    Args:
        path: the file.

    Returns:
        ``(array, image)``: the data in its stored dtype (scaling applied) and the nibabel image.

    Raises:
        LabelFileError: (a ``ValueError``) for what :func:`open_label_image` refuses, and for nibabel's
            errors reading the data (a truncated file), with nibabel's reason.

    Shape:
        - array: ``label_shape(image.shape)``.
    """
    with open_label_image(path) as (image, shape):
        array = nibabel_call(np.asanyarray, image.dataobj)
    return array[(..., *([0] * (array.ndim - len(shape))))], image


def read_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "this file cannot be counted" (rather than a bug): a scan skips them.

    Returns:
        ``OSError``, ``EOFError``, ``zlib.error``, ``ValueError`` (:class:`LabelFileError` included),
        ``TypeError`` and nibabel's ``ImageFileError`` and ``HeaderDataError``.
    """
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError

    return OSError, EOFError, zlib.error, ValueError, TypeError, ImageFileError, HeaderDataError
