"""Opening one label image with nibabel, checked so that no file can block, abort a scan or exhaust memory.

:func:`open_label_image` is the one door every read goes through: a regular file only (``os.stat``: a
FIFO named ``x.nii`` is never opened), nibabel's own header parsing (``nib.load``), a positive 2D/3D
shape (:func:`label_shape`), and a data size the file can hold, checked before any voxel is read.
Whatever nibabel (or ``gzip``, ``zlib``, ``os``) raises for a file becomes a :class:`LabelFileError`
carrying its reason (:func:`nibabel_call`), so a scan skips that file and goes on.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import stat
from collections.abc import Iterator
from typing import Any

__all__ = ["DEFLATE_RATIO", "PIECE_BYTES", "LabelFileError", "data_proxy", "label_shape", "nibabel_call",
           "open_label_image"]

DEFLATE_RATIO = 1032  # deflate's largest expansion: a gzip file of n bytes decompresses to at most 1032 n
DEFLATE_SUFFIXES = (".gz", ".mgz")  # the gzip names nibabel's ImageOpener decompresses
PIECE_BYTES = 1 << 20  # the most one read asks of a file


class LabelFileError(ValueError):
    """A file that cannot be read as a label map (nibabel's reason, or a header the file cannot back)."""



@contextlib.contextmanager
def open_label_image(path: str) -> Iterator[tuple[Any, tuple[int, ...]]]:
    """Open ``path`` with nibabel, checked so that reading it can neither block nor exhaust memory.

    In order: the path must be a regular file (``os.stat``: a FIFO or a device is never opened); nibabel
    parses and checks the header (its own image classes: the one ``nib.load`` would pick, no memory map),
    reading a single-file image through one open file whose reads ask for at most ``PIECE_BYTES`` at a
    time (a forged extension size costs what the file holds, not what it claims); the shape must be
    positive and 2D/3D (:func:`label_shape`); and, for nibabel's array proxies, the data the header
    implies (``vox_offset + voxels * itemsize``) must fit in the file: its size for an uncompressed file,
    ``DEFLATE_RATIO`` times its size for a gzip one. Nothing past the header is read here.

    Args:
        path: the file.

    Yields:
        ``(image, shape)``: the nibabel image (slice it through :func:`data_proxy`) and its label shape;
        the file is closed when the context ends.

    Raises:
        LabelFileError: (a ``ValueError``) naming the reason: not a regular file, nibabel's error (as
            ``"ErrorType: message"``), a non-positive, 4D or empty shape, or a header claiming more data
            than the file holds.

    Shape:
        - shape: ``[X, Y]`` or ``[X, Y, Z]``.

    Example:
        >>> import tempfile, nibabel as nib, numpy as np
        >>> folder = tempfile.TemporaryDirectory()
        >>> nib.save(nib.Nifti1Image(np.zeros((4, 3, 2, 1), np.uint8), np.eye(4)), f"{folder.name}/a.nii")
        >>> with open_label_image(f"{folder.name}/a.nii") as (image, shape):
        ...     shape, image.shape
        ((4, 3, 2), (4, 3, 2, 1))
        >>> folder.cleanup()
    """
    import nibabel as nib
    from nibabel.openers import ImageOpener

    info = nibabel_call(os.stat, path)
    if not stat.S_ISREG(info.st_mode):
        raise LabelFileError(f"expected a regular file, got {_file_kind(info.st_mode)}")
    klass, sniff = None, None
    for candidate in nib.all_image_classes:
        valid, sniff = nibabel_call(candidate.path_maybe_image, path, sniff)
        if valid:
            klass = candidate
            break
    with contextlib.ExitStack() as stack:
        if klass is not None and len(klass.files_types) == 1:  # single file: read it through bounded reads
            reader = _BoundedReads(stack.enter_context(nibabel_call(ImageOpener, path)))
            file_map = nibabel_call(klass.filespec_to_file_map, path)
            for holder in file_map.values():
                holder.fileobj = reader
            image = nibabel_call(klass.from_file_map, file_map, mmap=False)
        else:  # pairs (.hdr/.img) and what nibabel cannot work out: nibabel's own load, and its error
            image = nibabel_call(nib.load, path, mmap=False)
        dims = tuple(int(d) for d in nibabel_call(lambda: image.shape))
        if any(d < 0 for d in dims):
            raise LabelFileError(f"expected non-negative dimensions in the header, got shape {list(dims)}")
        shape = label_shape(dims)
        _check_data_fits(image.dataobj, dims, info.st_size, path)
        yield image, shape


class _BoundedReads(io.IOBase):
    """A binary file whose ``read(n)`` asks the file for at most ``PIECE_BYTES`` at a time.

    ``read(n)`` of a buffered or gzip file allocates ``n`` bytes up front: nibabel reading an extension
    whose header claims 2 GiB would allocate them. Here the result grows only with what the file holds.
    """

    def __init__(self, fileobj: Any) -> None:
        super().__init__()
        self._f = fileobj

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = math.inf
        pieces = []
        while n > 0:
            piece = self._f.read(int(min(n, PIECE_BYTES)))
            if not piece:
                break
            pieces.append(piece)
            n -= len(piece)
        return b"".join(pieces)

    def seek(self, *args: Any) -> int:
        return self._f.seek(*args)

    def tell(self) -> int:
        return self._f.tell()

    @property
    def closed(self) -> bool:
        return self._f.closed


def _check_data_fits(proxy: Any, dims: tuple[int, ...], file_size: int, path: str) -> None:
    """Raise unless the voxel data a raw array proxy's header implies can lie in a file of ``file_size``."""
    from nibabel.arrayproxy import ArrayProxy

    if not isinstance(proxy, ArrayProxy):
        return  # other formats (MINC, PAR/REC, ...) compress or index their data in their own way
    lowered = path.lower()
    if lowered.endswith((".bz2", ".zst")):
        return  # no useful bound on their expansion; memory stays at a slab all the same
    itemsize = nibabel_call(lambda: proxy.dtype.itemsize)
    needed = int(proxy.offset) + math.prod(dims) * itemsize  # Python ints: no overflow
    room = file_size * (DEFLATE_RATIO if lowered.endswith(DEFLATE_SUFFIXES) else 1)
    if needed > room:
        raise LabelFileError(f"expected a file that can hold the header's data ({needed} bytes: offset "
                             f"{int(proxy.offset)} + {math.prod(dims)} voxels of {proxy.dtype}), got a file of "
                             f"{file_size} bytes (truncated, or a forged header)")


def _file_kind(mode: int) -> str:
    """A name for the kind of a non-regular file."""
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))
    return next((name for test, name in kinds if test(mode)), f"file mode {oct(mode)}")


def nibabel_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, any exception it raises turned into a :class:`LabelFileError`.

    nibabel and the standard library reading a hostile file raise many kinds of errors (``OverflowError``
    from a forged offset, ``IndexError``, ``EOFError``, ``zlib.error``, ``gzip.BadGzipFile``, ...): all of
    them mean "this file cannot be read", and a scan skips the file with this reason.

    Args:
        fn: the call into nibabel (or ``os``).
        *args: its positional arguments.
        **kwargs: its keyword arguments.

    Returns:
        What ``fn`` returns.

    Raises:
        LabelFileError: ``"ErrorType: message"`` of whatever ``fn`` raised (an ``Exception``).

    Example:
        >>> nibabel_call(int, "12")
        12
        >>> nibabel_call(int, "x")
        Traceback (most recent call last):
        ...
        voxweight.stats.images.LabelFileError: ValueError: invalid literal for int() with base 10: 'x'
    """
    try:
        return fn(*args, **kwargs)
    except LabelFileError:
        raise
    except Exception as err:  # a hostile file can make nibabel raise anything; it is the file's fault
        raise LabelFileError(f"{type(err).__name__}: {err}") from err


@contextlib.contextmanager
def data_proxy(image: Any) -> Iterator[Any]:
    """The image's array proxy, reading from one file this context opens (and closes) for every slice.

    A single-file image from :func:`open_label_image` already reads from one open file. A proxy that holds
    a file name (NIfTI pairs) would open its file anew for each slice, and a new ``gzip`` stream
    decompresses from the start; for it, this proxy (same shape, dtype, offset and scaling, no memory
    map) reads through one ``nibabel.openers.ImageOpener``, so slabs read in file order decompress the
    stream once. Other proxies (MINC, PAR/REC, ...) are yielded as they are.

    Args:
        image: an image from :func:`open_label_image`.

    Yields:
        A proxy to slice: ``proxy[..., k0:k1]`` reads, decompresses and scales only that slab.

    Raises:
        LabelFileError: (a ``ValueError``) where the file cannot be opened, with the reason.

    Example:
        >>> import tempfile, nibabel as nib, numpy as np
        >>> folder = tempfile.TemporaryDirectory()
        >>> label = np.arange(8, dtype=np.uint8).reshape(2, 2, 2, order="F")
        >>> nib.save(nib.Nifti1Image(label, np.eye(4)), f"{folder.name}/a.nii.gz")
        >>> with open_label_image(f"{folder.name}/a.nii.gz") as (image, _), data_proxy(image) as proxy:
        ...     proxy[..., 1:].ravel(order="F").tolist()
        [4, 5, 6, 7]
        >>> folder.cleanup()
    """
    from nibabel.arrayproxy import ArrayProxy
    from nibabel.openers import ImageOpener

    proxy = image.dataobj
    if type(proxy) is not ArrayProxy or not isinstance(proxy.file_like, str):
        yield proxy  # another kind of proxy, or one reading from the file open_label_image holds open
        return
    with nibabel_call(ImageOpener, proxy.file_like) as fileobj:
        spec = (proxy.shape, proxy.dtype, proxy.offset, proxy.slope, proxy.inter)
        yield ArrayProxy(fileobj, spec, mmap=False, order=proxy.order)


def label_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of a label map without its trailing axes of size 1 (beyond the third).

    Args:
        shape: an image's shape.

    Returns:
        The 2D or 3D shape.

    Raises:
        LabelFileError: (a ``ValueError``) for a true 4D (or higher) image, a 0D one (a header whose
            ``dim[0]`` is 0 or negative), or a shape without voxels.

    Example:
        >>> label_shape((4, 5, 6, 1)), label_shape((4, 5))
        ((4, 5, 6), (4, 5))
    """
    dims = tuple(shape)
    while len(dims) > 3 and dims[-1] == 1:
        dims = dims[:-1]
    if len(dims) > 3 or not dims:
        raise LabelFileError(f"expected a 2D or 3D label map, got a {len(dims)}D image of shape {list(shape)}")
    if 0 in dims:
        raise LabelFileError(f"expected at least one voxel, got shape {list(shape)}")
    return dims
