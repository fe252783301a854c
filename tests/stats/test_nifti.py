"""Counting NIfTI labels while they decompress, against nibabel's full load + ``np.bincount``.

Oracle for every count: ``np.bincount`` of the array nibabel loads from the same file. Files this
reader does not take must come back as ``None`` (nibabel then reads them), never as wrong counts.
"""

from __future__ import annotations

import gzip
import tracemalloc

import nibabel as nib
import numpy as np
import pytest

import voxweight.stats.nifti as nc
from voxweight import scan_labels
from voxweight.bench.scan import nested_balls
from voxweight.stats.nifti import stream_label_counts


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
@pytest.mark.parametrize("pieces", ["default", "tiny"])
def test_counts_match_nibabel_and_bincount(tmp_path, monkeypatch, case, pieces):
    """Every dtype, both NIfTI versions, .nii and .nii.gz; tiny pieces split elements across reads."""
    if pieces == "tiny":  # 3 compressed bytes per read and 7-byte pieces: elements straddle pieces
        monkeypatch.setattr(nc, "PIECE_BYTES", 7)
        monkeypatch.setattr(nc, "INPUT_BYTES", 3)
    dtype, suffix, image_class = CASES[case]
    path = save(tmp_path / f"x{suffix}", labels((13, 11, 7), seed=1).astype(dtype), image_class)
    np.testing.assert_array_equal(stream_label_counts(str(path), 6, "labels"), nibabel_counts(path, 6))
    np.testing.assert_array_equal(stream_label_counts(str(path), None, "labels"), nibabel_counts(path, 0))


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


def test_files_it_does_not_take_are_left_to_nibabel(tmp_path):
    """Scaled data, other names, other formats and broken headers give None, and scan_labels still counts."""
    path = save(tmp_path / "scaled.nii.gz", labels((6, 6, 6), seed=6).astype(np.uint8))
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[112:116] = np.array([2.0], dtype="<f4").tobytes()  # scl_slope = 2: nibabel returns 2 * stored
    path.write_bytes(gzip.compress(bytes(raw)))
    assert stream_label_counts(str(path), 12, "labels") is None
    np.testing.assert_array_equal(scan_labels(path, num_classes=12, progress=False).positives,
                                  nibabel_counts(path, 12))
    other_name = save(tmp_path / "label.img", labels((4, 4, 4), seed=7).astype(np.uint8), nib.Nifti1Pair)
    not_gzip = tmp_path / "plain.nii.gz"
    not_gzip.write_bytes(gzip.decompress(save(tmp_path / "p.nii.gz", np.ones((3, 3, 3), np.uint8)).read_bytes()))
    short = tmp_path / "short.nii"
    short.write_bytes(b"\x5c\x01\x00\x00" + b"\0" * 50)  # says NIfTI-1, ends inside the header
    wrong_size = tmp_path / "wrong.nii"
    wrong_size.write_bytes(b"\x00\x01\x00\x00" + b"\0" * 400)
    for other in (other_name, not_gzip, short, wrong_size):
        assert stream_label_counts(str(other), 2, "labels") is None, other.name


def test_truncated_data_raises_eoferror(tmp_path):
    """Voxel data that ends early: EOFError (.nii: with the count; .nii.gz: the gzip stream ends early)."""
    plain = save(tmp_path / "t.nii", labels((8, 8, 8), seed=8).astype(np.int16))
    plain.write_bytes(plain.read_bytes()[:352 + 2 * 300 + 1])
    with pytest.raises(EOFError, match="expected 512 voxels of int16 after the header, got 300"):
        stream_label_counts(str(plain), 6, "labels")
    packed = save(tmp_path / "t.nii.gz", labels((8, 8, 8), seed=8).astype(np.int16))
    packed.write_bytes(packed.read_bytes()[:-20])
    with pytest.raises(EOFError, match="end-of-stream marker"):
        stream_label_counts(str(packed), 6, "labels")


def test_garbage_where_the_next_member_should_be(tmp_path):
    path = save(tmp_path / "g.nii.gz", np.ones((5, 5, 5), np.uint8))
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:400]) + b"garbage")
    with pytest.raises(gzip.BadGzipFile, match="Not a gzipped file"):
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


def test_memory_stays_at_a_piece_not_the_volume(tmp_path):
    """Property: counting a 8 MB volume allocates well under its size; loading it whole does not."""
    path = save(tmp_path / "big.nii.gz", nested_balls(200, seed=0))
    volume_bytes = 200**3

    def peak(fn):
        tracemalloc.start()
        try:
            fn()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak(lambda: np.asanyarray(nib.load(str(path)).dataobj)) >= volume_bytes  # tracemalloc sees numpy
    assert peak(lambda: stream_label_counts(str(path), 5, "labels")) < volume_bytes / 4
