"""Files built to break the scan: refused headers, forged sizes, FIFOs, and mutated NIfTI bytes (hypothesis).

Oracles: nibabel's full load + ``np.bincount`` (a file that is counted must count exactly so), ``tracemalloc``
(memory never follows what a header claims), ``os.mkfifo`` + a subprocess (a FIFO is never opened), and
the skip reasons themselves (every skipped file says why).
"""

from __future__ import annotations

import gzip
import itertools
import math
import os
import struct
import subprocess
import sys
import tempfile
import tracemalloc
import warnings
from pathlib import Path
from unittest import mock

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import voxweight.stats.nifti as nc
from voxweight import scan_labels
from voxweight.stats import read_errors
from voxweight.stats.images import DEFLATE_RATIO
from voxweight.stats.nifti import stream_label_counts

GOOD = np.array([[[0, 1], [1, 2]], [[2, 2], [0, 1]]], dtype=np.uint8)
N1 = {"dim": (40, "<8h"), "datatype": (70, "<h"), "bitpix": (72, "<h"), "vox_offset": (108, "<f"),
      "scl_slope": (112, "<f"), "scl_inter": (116, "<f"), "sizeof_hdr": (0, "<i"), "magic": (344, "4s")}
N2 = {"dim": (16, "<8q"), "datatype": (12, "<h"), "bitpix": (14, "<h"), "vox_offset": (168, "<q"),
      "scl_slope": (176, "<d"), "scl_inter": (184, "<d"), "sizeof_hdr": (0, "<i"), "magic": (4, "8s")}


def nifti_bytes(array, image_class=nib.Nifti1Image, extension=None):
    header = image_class.header_class(endianness=">" if array.dtype.byteorder == ">" else "<")
    image = image_class(array, np.eye(4), header, dtype=array.dtype)
    if extension is not None:
        image.header.extensions.append(nib.nifti1.Nifti1Extension("comment", extension))
    with tempfile.TemporaryDirectory() as folder:
        nib.save(image, f"{folder}/x.nii")
        return bytearray(Path(folder, "x.nii").read_bytes())


def endian(raw):
    return "<" if struct.unpack("<i", raw[:4])[0] in (348, 540) else ">"


def set_field(raw, fields, name, *values):
    offset, fmt = fields[name]
    fmt = endian(raw) + fmt[1:]
    raw[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, *values)
    return raw


def set_element(raw, fields, name, index, number):
    """Element ``index`` of a header field set to ``number`` (clipped to the field's type), in the file's order."""
    offset, fmt = fields[name]
    code, count = fmt[-1], max(int(fmt[1:-1] or 1), 1)
    if code == "s" or isinstance(number, str):  # text (a magic string) over the field's first bytes
        data = str(number).encode()[:struct.calcsize(fmt)]
        raw[offset:offset + len(data)] = data
        return
    if code in "hiq":
        bits = 8 * struct.calcsize(code)
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1  # clipped in Python ints: float(2**63 - 1) is 2**63
        if isinstance(number, float):
            number = 0 if math.isnan(number) else hi if number >= hi else lo if number <= lo else int(number)
        number = min(max(int(number), lo), hi)
    start = offset + (index % count) * struct.calcsize(code)
    raw[start:start + struct.calcsize(code)] = struct.pack(endian(raw) + code, number)


def nibabel_counts(path):
    array = np.asanyarray(nib.load(str(path)).dataobj)
    return np.bincount(array.astype(np.int64).ravel())


def outcome(path):
    """``(counts, None)`` or ``(None, reason)`` of one file, and the peak memory (tracemalloc) it took."""
    tracemalloc.start()
    try:
        return (stream_label_counts(str(path), None, "labels"), None), tracemalloc.get_traced_memory()[1]
    except read_errors() as err:
        return (None, str(err)), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


REFUSED = {  # (header class, field, values, the phrase of the reason)
    "negative dims (-2, -2, 4)": (N1, "dim", (3, -2, -2, 4, 1, 1, 1, 1), "non-negative dimensions"),
    "zero voxels": (N1, "dim", (3, 2, 0, 2, 1, 1, 1, 1), "at least one voxel"),
    "NIfTI-2 dims whose int64 product is 8": (N2, "dim", (3, 2, 2, 2**62 + 2, 1, 1, 1, 1), "can hold"),
    "dims beyond the file": (N1, "dim", (3, 2000, 2000, 2000, 1, 1, 1, 1), "can hold"),
    "dim[0] = 0": (N1, "dim", (0, 2, 2, 2, 1, 1, 1, 1), ""),
    "dim[0] = 9": (N1, "dim", (9, 2, 2, 2, 1, 1, 1, 1), ""),
    "dim[0] = -1": (N1, "dim", (-1, 2, 2, 2, 1, 1, 1, 1), ""),
    "vox_offset = 1e30": (N1, "vox_offset", (1e30,), "can hold"),
    "vox_offset = NaN": (N1, "vox_offset", (float("nan"),), "ValueError"),
    "vox_offset = -5": (N1, "vox_offset", (-5.0,), "HeaderDataError"),
    "NIfTI-2 vox_offset = 2**62": (N2, "vox_offset", (2**62,), "can hold"),
    "datatype 0": (N1, "datatype", (0,), "HeaderDataError"),
    "sizeof_hdr 0": (N1, "sizeof_hdr", (0,), ""),  # nibabel mends it (with a warning)
    "magic n+9": (N1, "magic", (b"n+9\0",), ""),  # nibabel reads it as a plain Analyze image
}


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("case", list(REFUSED))
def test_headers_nibabel_or_the_file_cannot_back_are_skipped_not_counted(tmp_path, case, suffix):
    """Each bad header is skipped with its reason, or (dim[0], which nibabel may mend) counted exactly as
    nibabel loads it; the scan goes on to the good file either way."""
    fields, name, values, phrase = REFUSED[case]
    image_class = nib.Nifti2Image if fields is N2 else nib.Nifti1Image
    raw = set_field(nifti_bytes(GOOD, image_class), fields, name, *values)
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(gzip.compress(bytes(raw)) if suffix == ".nii.gz" else bytes(raw))
    good = tmp_path / "good.nii"
    good.write_bytes(bytes(nifti_bytes(GOOD)))
    (counts, reason), _ = outcome(bad)
    if counts is None:
        assert reason and phrase in reason
    else:
        assert not phrase, f"{case} was counted: {counts}"
        np.testing.assert_array_equal(counts, nibabel_counts(bad))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stats = scan_labels([bad, good], progress=False)
    expected = np.bincount(GOOD.ravel())
    if counts is not None:
        size = max(expected.size, counts.size)
        expected = np.pad(expected, (0, size - expected.size)) + np.pad(counts, (0, size - counts.size))
    np.testing.assert_array_equal(stats.positives, expected)
    assert stats.images == (1 if counts is None else 2) and len(caught) == (counts is not None) ^ 1
    if counts is None:
        assert stats.skipped == [(str(bad), reason)]
        with pytest.raises(ValueError, match=f"bad{suffix}: "):
            scan_labels([bad, good], progress=False, strict=True)


def test_scaled_file_claiming_256_mib_costs_a_slab(tmp_path):
    """The issue's 58-byte .nii.gz (scl_slope = 2) claiming 512^3 voxels: refused before reading, and the
    same header inside a file big enough for the guard still reads a slab at a time."""
    raw = set_field(nifti_bytes(GOOD), N1, "dim", 3, 512, 512, 1024, 1, 1, 1, 1)
    set_field(raw, N1, "scl_slope", 2.0)
    forged = tmp_path / "forged.nii.gz"
    forged.write_bytes(gzip.compress(bytes(raw[:352])))
    (counts, reason), peak = outcome(forged)
    assert counts is None and "can hold" in reason and peak < (1 << 20)
    # 128 x 128 x 68 voxels claimed (8.5 MiB once scaled to float64); the gzip file of 1 MiB of zeros is small
    # enough to pass the deflate-ratio guard, so it is read, a slab at a time, up to its end.
    set_field(raw, N1, "dim", 3, 128, 128, 68, 1, 1, 1, 1)
    padded = tmp_path / "padded.nii.gz"
    padded.write_bytes(gzip.compress(bytes(raw[:352]) + bytes(1 << 20)))
    assert (1 << 20) < 128 * 128 * 68 < DEFLATE_RATIO * padded.stat().st_size - 352
    with mock.patch.object(nc, "SLAB_VOXELS", 1 << 14):
        (counts, reason), peak = outcome(padded)
    assert counts is None and "not enough data in file" in reason and peak < (1 << 20)  # nibabel's words


def test_a_fifo_is_never_opened(tmp_path):
    """Oracle: a subprocess scanning [FIFO, good file] finishes (nobody ever writes to the FIFO) and says why.
    The timeout only stops a hang from blocking the suite; it asserts nothing about speed."""
    fifo = tmp_path / "x.nii"
    os.mkfifo(fifo)
    good = tmp_path / "good.nii"
    good.write_bytes(bytes(nifti_bytes(GOOD)))
    code = ("import warnings, sys; from voxweight import scan_labels\n"
            "with warnings.catch_warnings(record=True):\n"
            "    s = scan_labels(sys.argv[1:], progress=False)\n"
            "print(s.images, s.skipped[0][1])")
    done = subprocess.run([sys.executable, "-c", code, str(fifo), str(good)], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "1 expected a regular file, got a FIFO"


def valid_files():
    """A valid NIfTI file's bytes: dtype, byte order, NIfTI-1/2, extension, whole-number scaling, shape."""
    dtypes = st.sampled_from(["u1", "i1", "<i2", ">i2", "<u2", "<i4", ">i4", "<i8", "<f4", ">f4", "<f8"])
    shapes = st.lists(st.integers(1, 7), min_size=2, max_size=3).map(tuple) | st.just((3, 4, 5, 1))
    return st.tuples(dtypes, shapes, st.sampled_from([nib.Nifti1Image, nib.Nifti2Image]), st.booleans(),
                     st.sampled_from([None, (2.0, 0.0), (1.0, 3.0), (3.0, 1.0)]), st.integers(0, 2**16))


def build(spec):
    dtype, shape, image_class, extension, scaling, seed = spec
    array = np.random.default_rng(seed).integers(0, 5, shape).astype(dtype)
    raw = nifti_bytes(array, image_class, b"voxweight " * 7 if extension else None)
    if scaling is not None:
        set_field(raw, N2 if image_class is nib.Nifti2Image else N1, "scl_slope", scaling[0])
        set_field(raw, N2 if image_class is nib.Nifti2Image else N1, "scl_inter", scaling[1])
    return raw


MUTATIONS = st.one_of(
    st.tuples(st.just("none")),
    st.tuples(st.just("field"), st.sampled_from(sorted(N1)), st.integers(0, 7),
              st.sampled_from([0, -1, 1, 2, 3, 7, 8, 9, 351.0, 353.5, 1e30, -5.0, float("nan"), float("inf"),
                               2**15 - 1, 2**31 - 1, 2**62 + 2, "n+1", "ni1", "n+2"]) | st.integers(-2**15, 2**15)),
    st.tuples(st.just("bytes"), st.integers(0, 2**20), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("truncate"), st.integers(0, 2**20)),
)
PACKINGS = st.one_of(
    st.tuples(st.just("nii")),
    st.tuples(st.just("gz"), st.lists(st.integers(0, 2**12), max_size=4), st.integers(0, 8)),  # members, padding
    st.tuples(st.just("gz-cut"), st.integers(1, 2**12)),  # truncated compressed stream
    st.tuples(st.just("gz-tail"), st.binary(min_size=1, max_size=12)),  # bytes after the last member
)


def mutate(raw, mutation, fields):
    kind, *args = mutation
    if kind == "field":
        set_element(raw, fields, *args)
    elif kind == "bytes":
        position, value = args
        raw[position % len(raw):position % len(raw) + len(value)] = value
    elif kind == "truncate":
        del raw[args[0] % len(raw):]
    return bytes(raw)


def pack(raw, packing):
    kind, *args = packing
    if kind == "nii":
        return raw, ".nii"
    if kind == "gz":
        cuts = sorted({c % (len(raw) + 1) for c in args[0]} | {0, len(raw)})
        members = [gzip.compress(raw[a:b]) for a, b in itertools.pairwise(cuts)]
        return b"".join(members) + bytes(args[1]), ".nii.gz"
    data = gzip.compress(raw)
    if kind == "gz-cut":
        return data[:max(len(data) - args[0], 1)], ".nii.gz"
    return data + args[0], ".nii.gz"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=valid_files(), mutation=MUTATIONS, packing=PACKINGS)
@example(spec=("<f4", (3, 4, 5, 1), nib.Nifti2Image, True, None, 0), mutation=("bytes", 1032, b"\0\0"),
         packing=("nii",))  # found: an extension size claiming 1 GiB, once allocated by the read
@example(spec=(">i2", (3, 4, 5, 1), nib.Nifti1Image, False, None, 0), mutation=("field", "dim", 0, -1),
         packing=("nii",))  # found: dim[0] = -1 read as a 0D image of one voxel
def test_mutated_files_count_like_nibabel_or_are_skipped_with_a_reason(spec, mutation, packing):
    """Property: a valid file (any dtype, byte order, NIfTI-1/2, extension, scaling, .nii/.nii.gz, gzip
    members and padding) mutated in a header field, a byte, a truncation or its gzip stream either counts
    exactly as nibabel + np.bincount do, or is skipped with a reason; never an exception out of the scan,
    memory within a few slabs (tracemalloc; 512-voxel slabs here) and the work bounded by the file: the
    voxels read never exceed what the file's bytes can hold (no timing asserted, the house rule)."""
    fields = N2 if spec[2] is nib.Nifti2Image else N1
    raw = mutate(build(spec), mutation, fields)
    data, suffix = pack(raw, packing)
    unmutated = mutation == ("none",) and packing[0] in ("nii", "gz")
    read = []
    real_read = nc.read_slab
    with tempfile.TemporaryDirectory() as folder, mock.patch.object(nc, "SLAB_VOXELS", 512), \
            mock.patch.object(nc, "read_slab", lambda p, s: read.append(real_read(p, s)) or read[-1]):
        path = Path(folder, "x" + suffix)
        path.write_bytes(data)
        (counts, reason), peak = outcome(path)
        assert peak < (4 << 20)
        assert sum(slab.size for slab in read) <= len(data) * (DEFLATE_RATIO if suffix == ".nii.gz" else 1)
        event("skipped" if counts is None else "counted")
        if counts is None:
            assert reason, "a skipped file says why"
            assert not unmutated, f"a valid file was skipped: {reason}"
            return
        expected = nibabel_counts(path)  # counted: nibabel must read it, and agree exactly
        np.testing.assert_array_equal(counts, np.pad(expected, (0, counts.size - expected.size)))
        assert counts.size == expected.size
