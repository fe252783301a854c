"""Count the labels of a NIfTI file while it decompresses, without ever holding the whole volume.

A single-file NIfTI-1 or NIfTI-2 image (``.nii``, or ``.nii.gz`` with one or more gzip members) is a
header, optional extensions and the voxel data. Here the header is parsed by nibabel's own header
classes, and the voxel data is decompressed in pieces of ``PIECE_BYTES`` that are counted by a
:class:`~voxweight.stats.counting.LabelCounter` while they are still in the CPU cache: memory stays at one
piece whatever the size of the file, and the cost is about that of the decompression alone (nibabel
decompresses through ``gzip.GzipFile`` into a full-size array, then the counting reads it again).

Anything this reader is not sure of (not a ``.nii``/``.nii.gz`` name, not a gzip stream, an unknown or
unparsable header, scaled data) makes :func:`stream_label_counts` return ``None``, and the caller reads
the file with nibabel instead, which then gives its own error for a broken file. Errors past the header
are this reader's: ``EOFError`` for a file that ends early, ``zlib.error`` for corrupt compressed data.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np

from voxweight.stats.counting import LabelCounter
from voxweight.stats.files import NIFTI_SUFFIXES, label_shape

__all__ = ["INPUT_BYTES", "PIECE_BYTES", "stream_label_counts"]

PIECE_BYTES = 1 << 19  # decompressed bytes per piece: fits in a core's L2 cache, amortises the call
INPUT_BYTES = 1 << 18  # compressed bytes read from the file at a time
GZIP_MAGIC = b"\x1f\x8b"
HEADER_SIZES = {348: "Nifti1Header", 540: "Nifti2Header"}
SINGLE_FILE_MAGIC = (b"n+1", b"n+2")


def stream_label_counts(path: str, num_classes: int | None, name: str) -> np.ndarray | None:
    """Label counts of the NIfTI file at ``path``, or ``None`` where nibabel should read it instead.

    Counts as :func:`voxweight.stats.counting.count_labels` does (with ``allow_float``: whole-number
    floats count), reading at most ``PIECE_BYTES`` of voxel data at a time.

    Args:
        path: the file; only names ending in ``.nii`` or ``.nii.gz`` (any case) are read here.
        num_classes: number of classes ``K``, or ``None`` to count up to the largest label.
        name: the name bad values are reported under.

    Returns:
        int64 counts per label value, or ``None`` for a file this reader leaves to nibabel (another
        name, not gzip data, an unknown or unparsable header, scaled data).

    Raises:
        ValueError: what ``count_labels`` raises for bad values (naming ``name``), and for a 4D image
            or an empty one.
        TypeError: for a non-numeric voxel dtype.
        EOFError: for truncated voxel data.
        zlib.error: for corrupt compressed data (``gzip.BadGzipFile`` for data after a member).

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
    lowered = path.lower()
    if not lowered.endswith(NIFTI_SUFFIXES):
        return None
    with open(path, "rb") as f:
        compressed = lowered.endswith(".gz")
        if compressed and f.read(len(GZIP_MAGIC)) != GZIP_MAGIC:
            return None
        f.seek(0)
        source = _GzipSource(f) if compressed else _RawSource(f)
        header = _read_header(source)
        if header is None:
            return None
        layout = _data_layout(header)
        if layout is None:
            return None
        shape, dtype, offset = layout
        _skip(source, offset - header.sizeof_hdr)
        counter = LabelCounter(dtype, num_classes, name, allow_float=True)
        for chunk in _voxel_chunks(source, dtype, int(np.prod(shape))):
            counter.add(chunk)
        return counter.counts()


class _RawSource:
    """Bytes of an uncompressed file, at most ``n`` at a time (``b""`` at the end)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def read_some(self, n: int) -> bytes:
        return self._f.read(n)


class _GzipSource:
    """Decompressed bytes of a gzip file (members one after the other), at most ``n`` at a time.

    Like ``gzip.GzipFile``: zero padding after a member is skipped, anything else after one that is not
    a gzip member raises ``gzip.BadGzipFile``, and a member that ends early raises ``EOFError``.
    """

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._zlib = zlib.decompressobj(wbits=31)
        self._input = b""

    def read_some(self, n: int) -> bytes:
        while True:
            if self._zlib.eof and not self._next_member():
                return b""
            if not self._input:
                self._input = self._f.read(INPUT_BYTES)
                if not self._input:
                    raise EOFError("Compressed file ended before the end-of-stream marker was reached")
            out = self._zlib.decompress(self._input, n)
            self._input = self._zlib.unconsumed_tail
            if out:
                return out

    def _next_member(self) -> bool:
        """Start the next gzip member after the one that ended; False at the end of the file."""
        rest = (self._zlib.unused_data + self._input).lstrip(b"\0")
        while len(rest) < len(GZIP_MAGIC):
            more = self._f.read(INPUT_BYTES)
            if not more:
                if rest:
                    raise gzip.BadGzipFile(f"Not a gzipped file ({rest!r})")
                return False
            rest = (rest + more).lstrip(b"\0")
        if not rest.startswith(GZIP_MAGIC):
            raise gzip.BadGzipFile(f"Not a gzipped file ({rest[:2]!r})")
        self._zlib, self._input = zlib.decompressobj(wbits=31), rest
        return True


def _read_exact(source: _RawSource | _GzipSource, n: int) -> bytes:
    """``n`` bytes, or fewer where the data ends first."""
    pieces, got = [], 0
    while got < n:
        piece = source.read_some(n - got)
        if not piece:
            break
        pieces.append(piece)
        got += len(piece)
    return b"".join(pieces)


def _read_header(source: _RawSource | _GzipSource) -> Any:
    """The nibabel header (``Nifti1Header``/``Nifti2Header``) of a single-file NIfTI, or None otherwise."""
    import nibabel as nib

    head = _read_exact(source, 4)
    size = next((s for s in HEADER_SIZES if head in (s.to_bytes(4, "little"), s.to_bytes(4, "big"))), None)
    if size is None:
        return None
    head += _read_exact(source, size - 4)
    if len(head) < size:
        return None
    try:
        header = getattr(nib, HEADER_SIZES[size]).from_fileobj(io.BytesIO(head), check=True)
    except Exception:  # anything nibabel objects to: let nibabel read the file and say why
        return None
    if header["magic"].item() not in SINGLE_FILE_MAGIC:
        return None
    return header


def _data_layout(header: Any) -> tuple[tuple[int, ...], np.dtype, int] | None:
    """Shape, dtype and offset of the voxel data; None where the data is scaled (nibabel reads it)."""
    shape = tuple(int(s) for s in header.get_data_shape())
    label_shape(shape)  # a 4D image, or one without voxels, raises here
    slope, inter = header.get_slope_inter()
    offset = int(header.get_data_offset())
    if slope not in (None, 1.0) or inter not in (None, 0.0) or offset < header.sizeof_hdr:
        return None
    return shape, header.get_data_dtype(), offset


def _skip(source: _RawSource | _GzipSource, n: int) -> None:
    """Skip ``n`` bytes (the extensions between the header and the voxel data)."""
    while n > 0:
        piece = source.read_some(min(n, PIECE_BYTES))
        if not piece:
            raise EOFError("expected voxel data after the header, got the end of the file")
        n -= len(piece)


def _voxel_chunks(source: _RawSource | _GzipSource, dtype: np.dtype, count: int) -> Iterator[np.ndarray]:
    """1-D arrays of ``dtype`` holding the ``count`` voxels in file order, one piece at a time.

    A piece that ends inside an element (possible at the end of a gzip member) carries its last bytes over.
    """
    itemsize, remaining, carry = dtype.itemsize, count * dtype.itemsize, b""
    step = max(PIECE_BYTES - PIECE_BYTES % itemsize, itemsize)
    while remaining > 0:
        piece = source.read_some(min(step - len(carry), remaining))
        if not piece:
            raise EOFError(f"expected {count} voxels of {dtype} after the header, got "
                           f"{(count * itemsize - remaining) // itemsize} (a truncated file?)")
        remaining -= len(piece)
        if carry:
            piece = carry + piece
        whole = len(piece) - len(piece) % itemsize
        carry = piece[whole:]
        if whole:
            yield np.frombuffer(piece, dtype=dtype, count=whole // itemsize)
