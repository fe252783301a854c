"""Counting labels a slab at a time through nibabel's array proxy, against nibabel's full load + ``np.bincount``.

Oracle for every count: ``np.bincount`` of the array nibabel loads from the same file. Files nibabel
refuses (or whose header the file cannot back) must raise ``LabelFileError`` with a reason, never count.
"""

from __future__ import annotations

import gzip
import tracemalloc

import nibabel as nib
import numpy as np
import pytest

import voxweight.stats.nifti as nc
from voxweight import scan_labels
from voxweight.bench.volumes import nested_balls
from voxweight.stats.images import LabelFileError
from voxweight.stats.nifti import slab_slicers, stream_label_counts


def nibabel_counts(path, length):
    array = np.asanyarray(nib.load(str(path)).dataobj)
    return np.bincount(array.astype(np.int64).ravel(), minlength=length)


def save(path, array, image_class=nib.Nifti1Image, header=None, extension=None):
    image = image_class(array, np.diag([0.8, 0.8, 2.0, 1.0]), header, dtype=array.dtype)
    if extension is not None:
        image.header.extensions.append(nib.nifti1.Nifti1Extension("comment", extension))
    nib.save(image, str(path))
    return path


def labels(shape, seed, k=6):
    """Runs of random labels (as segmentations look) with some noise, in ``[0, k)``."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    runs = np.repeat(rng.integers(0, k, size), rng.integers(1, 40, size))[:size]
    runs[rng.random(size) < 0.05] = rng.integers(0, k)
    return runs.reshape(shape)


def peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


CASES = {
    "uint8 .nii.gz": (np.uint8, ".nii.gz", nib.Nifti1Image),
    "int16 .nii.gz": (np.int16, ".nii.gz", nib.Nifti1Image),
    "uint16 .nii": (np.uint16, ".nii", nib.Nifti1Image),
    "int32 .nii.gz": (np.int32, ".nii.gz", nib.Nifti1Image),
    "int64 .nii": (np.int64, ".nii", nib.Nifti1Image),
    "float32 .nii.gz": (np.float32, ".nii.gz", nib.Nifti1Image),
    "float64 .nii.gz": (np.float64, ".nii.gz", nib.Nifti1Image),
    "NIfTI-2 int16 .nii.gz": (np.int16, ".nii.gz", nib.Nifti2Image),
    "NIfTI-2 uint8 .nii": (np.uint8, ".nii", nib.Nifti2Image),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("slab", ["default", "tiny"])
def test_counts_match_nibabel_and_bincount(tmp_path, monkeypatch, case, slab):
    """Every dtype, both NIfTI versions, .nii and .nii.gz; tiny slabs (7 voxels) cut rows as well as slices."""
    if slab == "tiny":
        monkeypatch.setattr(nc, "SLAB_VOXELS", 7)
    dtype, suffix, image_class = CASES[case]
    path = save(tmp_path / f"x{suffix}", labels((13, 11, 7), seed=1).astype(dtype), image_class)
    np.testing.assert_array_equal(stream_label_counts(str(path), 6, "labels"), nibabel_counts(path, 6))
    np.testing.assert_array_equal(stream_label_counts(str(path), None, "labels"), nibabel_counts(path, 0))


@pytest.mark.parametrize(("shape", "order", "budget"), [
    ((4, 3, 5), "F", 24), ((4, 3, 5), "F", 5), ((4, 3, 5), "F", 1), ((4, 3, 5), "C", 7), ((6, 7), "F", 1000),
    ((3, 4, 2), "F", 13),
])
def test_slabs_cover_every_voxel_once_in_file_order(shape, order, budget):
    """Oracle: an array of 0..n-1 in storage order; the slabs, read in turn, give 0..n-1 back in order."""
    n = int(np.prod(shape))
    array = np.arange(n).reshape((*shape, 1), order=order)  # a trailing axis of size 1, as [X, Y, Z, 1]
    slabs = [array[s] for s in slab_slicers(shape, len(shape) + 1, order, budget)]
    assert all(s.size <= budget for s in slabs)
    np.testing.assert_array_equal(np.concatenate([s.ravel(order=order) for s in slabs]), np.arange(n))


def test_big_endian_extensions_2d_trailing_axis_one_voxel_one_class(tmp_path):
    """Big-endian data, a header extension before the data (vox_offset > 352), 2D, [X, Y, Z, 1], a single
    voxel, and a volume of one class only."""
    header = nib.Nifti1Header(endianness=">")
    big = save(tmp_path / "big.nii.gz", labels((9, 8, 7), seed=2).astype(">i2"), header=header,
               extension=b"voxweight test " * 20)
    raw = gzip.decompress(big.read_bytes())
    assert raw[:4] == (348).to_bytes(4, "big") and np.frombuffer(raw[108:112], ">f4")[0] > 352  # vox_offset
    flat = save(tmp_path / "flat.nii", labels((20, 30), seed=3).astype(np.uint8))
    trailing = save(tmp_path / "trailing.nii.gz", labels((6, 5, 4, 1), seed=4).astype(np.uint8))
    one_voxel = save(tmp_path / "one.nii.gz", np.full((1, 1, 1), 3, np.int16))
    one_class = save(tmp_path / "full.nii.gz", np.full((30, 20, 10), 5, np.uint8))  # a single run
    for path in (big, flat, trailing, one_voxel, one_class):
        np.testing.assert_array_equal(stream_label_counts(str(path), 6, "labels"), nibabel_counts(path, 6))


def test_several_gzip_members_and_zero_padding(tmp_path):
    """A stream split into gzip members (inside an element) and padded with zeros reads like one member."""
    path = save(tmp_path / "one.nii.gz", labels((10, 10, 10), seed=5).astype(np.int32))
    raw = gzip.decompress(path.read_bytes())
    split = 352 + 4 * 333 + 2  # in the middle of the 334th voxel
    members = tmp_path / "members.nii.gz"
    members.write_bytes(gzip.compress(raw[:100]) + gzip.compress(raw[100:split]) + b"\0" * 9
                        + gzip.compress(raw[split:]) + b"\0" * 5)
    expected = nibabel_counts(path, 6)
    np.testing.assert_array_equal(nibabel_counts(members, 6), expected)  # nibabel agrees on the file
    np.testing.assert_array_equal(stream_label_counts(str(members), 6, "labels"), expected)


@pytest.mark.parametrize("member_bytes", [300 * 1024, 100_003])
def test_header_member_then_members_appended_with_gzip_open_ab(tmp_path, member_bytes):
    """The issue's file: the header as its own member, then members of a few hundred KiB, each written by
    ``gzip.open(path, "ab")``; it used to be skipped ("invalid block type") or counted with gzip magic bytes
    as voxels. Oracle: nibabel reads ``{1: 64**3}``."""
    raw = save(tmp_path / "plain.nii", np.ones((64, 64, 64), np.uint8)).read_bytes()
    path = tmp_path / "appended.nii.gz"
    with gzip.open(path, "wb") as f:
        f.write(raw[:352])
    for start in range(352, len(raw), member_bytes):
        with gzip.open(path, "ab") as f:
            f.write(raw[start:start + member_bytes])
    expected = nibabel_counts(path, 2)
    assert expected.tolist() == [0, 64**3]
    np.testing.assert_array_equal(stream_label_counts(str(path), None, "labels"), expected)
    np.testing.assert_array_equal(scan_labels(path, progress=False).positives, expected)


def test_scaled_files_are_streamed_with_their_scaling(tmp_path, monkeypatch):
    """scl_slope = 2, scl_inter = 1: the counts of nibabel's scaled values, read in 50-voxel slabs."""
    path = save(tmp_path / "scaled.nii.gz", labels((6, 6, 6), seed=6).astype(np.uint8))
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[112:120] = np.array([2.0, 1.0], dtype="<f4").tobytes()  # nibabel returns 2 * stored + 1
    path.write_bytes(gzip.compress(bytes(raw)))
    monkeypatch.setattr(nc, "SLAB_VOXELS", 50)
    expected = nibabel_counts(path, 12)
    assert expected[0::2].sum() == 0 and expected.sum() == 216  # odd values only: the scaling was applied
    np.testing.assert_array_equal(stream_label_counts(str(path), 12, "labels"), expected)
    np.testing.assert_array_equal(scan_labels(path, num_classes=12, progress=False).positives, expected)


def test_other_formats_go_through_nibabel_too(tmp_path):
    """A NIfTI pair (.img/.hdr) and an MGH file: any format nibabel reads is counted like nibabel loads it."""
    pair = save(tmp_path / "label.img", labels((4, 5, 6), seed=7).astype(np.uint8), nib.Nifti1Pair)
    mgh = tmp_path / "label.mgz"
    nib.save(nib.MGHImage(labels((5, 4, 3), seed=8).astype(np.int32), np.eye(4)), str(mgh))
    for path in (pair, mgh):
        np.testing.assert_array_equal(stream_label_counts(str(path), 6, "labels"), nibabel_counts(path, 6))


def test_files_nibabel_refuses_raise_with_its_reason(tmp_path):
    """Not gzip data under a .gz name, a header that ends early, an unknown header size: nibabel's error."""
    not_gzip = tmp_path / "plain.nii.gz"
    not_gzip.write_bytes(gzip.decompress(save(tmp_path / "p.nii.gz", np.ones((3, 3, 3), np.uint8)).read_bytes()))
    short = tmp_path / "short.nii"
    short.write_bytes(b"\x5c\x01\x00\x00" + b"\0" * 50)  # says NIfTI-1, ends inside the header
    wrong_size = tmp_path / "wrong.nii"
    wrong_size.write_bytes(b"\x00\x01\x00\x00" + b"\0" * 400)
    for other, reason in ((not_gzip, "ImageFileError: .*not a gzip file"), (short, "Error"), (wrong_size, "Error")):
        with pytest.raises(LabelFileError, match=reason):
            stream_label_counts(str(other), 2, "labels")
        try:  # the oracle: nibabel itself cannot read it either
            np.asanyarray(nib.load(str(other)).dataobj)
        except Exception:
            continue
        pytest.fail(f"nibabel reads {other.name}")


def test_truncated_data_is_refused(tmp_path):
    """.nii: the header implies more bytes than the file has (before reading); .nii.gz: gzip's EOFError."""
    plain = save(tmp_path / "t.nii", labels((8, 8, 8), seed=8).astype(np.int16))
    plain.write_bytes(plain.read_bytes()[:352 + 2 * 300 + 1])
    with pytest.raises(LabelFileError, match=r"1376 bytes: offset 352 \+ 512 voxels of int16\), got a file of 953"):
        stream_label_counts(str(plain), 6, "labels")
    packed = save(tmp_path / "t.nii.gz", labels((8, 8, 8), seed=8).astype(np.int16))
    packed.write_bytes(packed.read_bytes()[:-20])
    with pytest.raises(LabelFileError, match=r"EOFError: .*end-of-stream marker"):
        stream_label_counts(str(packed), 6, "labels")


def test_garbage_where_the_next_member_should_be(tmp_path):
    """After the first member (past the bytes nibabel sniffs), bytes that are no gzip member: gzip's error."""
    path = save(tmp_path / "g.nii.gz", np.ones((40, 40, 40), np.uint8))
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:30000]) + b"garbage")
    with pytest.raises(gzip.BadGzipFile):  # the oracle: nibabel's full load
        np.asanyarray(nib.load(str(path)).dataobj)
    with pytest.raises(LabelFileError, match="BadGzipFile: Not a gzipped file"):
        stream_label_counts(str(path), 2, "labels")


def test_bad_values_and_shapes_raise_like_the_nibabel_path(tmp_path):
    """Same messages as count_labels on the loaded array: range, fractions, 4D, no voxels."""
    values = np.zeros((4, 4, 4), np.int16)
    values[0, 0, 0], values[3, 3, 3] = 7, -2
    with pytest.raises(ValueError, match=r"labels: expected class indices >= 0, got values in \[-2, 7\]"):
        stream_label_counts(str(save(tmp_path / "r.nii.gz", values)), 4, "labels")
    with pytest.raises(ValueError, match=r"labels: expected whole-number class indices, .*e\.g\. 0\.5"):
        stream_label_counts(str(save(tmp_path / "f.nii.gz", np.full((3, 3, 3), 0.5, np.float32))), 2, "labels")
    with pytest.raises(ValueError, match="expected a 2D or 3D label map, got a 4D image of shape"):
        stream_label_counts(str(save(tmp_path / "4d.nii.gz", np.zeros((2, 2, 2, 3), np.uint8))), 2, "labels")
    with pytest.raises(ValueError, match=r"expected at least one voxel, got shape \[3, 0, 2\]"):
        stream_label_counts(str(save(tmp_path / "e.nii.gz", np.zeros((3, 0, 2), np.uint8))), 2, "labels")
    with pytest.raises(TypeError, match="labels: expected an integer array of class indices, got dtype complex64"):
        stream_label_counts(str(save(tmp_path / "c.nii.gz", np.zeros((2, 2, 2), np.complex64))), 2, "labels")


def test_memory_stays_at_a_slab_not_the_volume(tmp_path):
    """Property: counting a 8 MB volume allocates well under its size; loading it whole does not."""
    path = save(tmp_path / "big.nii.gz", nested_balls(200, seed=0))
    volume_bytes = 200**3
    assert peak_bytes(lambda: np.asanyarray(nib.load(str(path)).dataobj)) >= volume_bytes  # tracemalloc sees numpy
    assert peak_bytes(lambda: stream_label_counts(str(path), 5, "labels")) < volume_bytes / 4
