"""scan_labels over synthetic NIfTI files: counts against numpy's bincount, workers, bad files."""

from __future__ import annotations

import os
import warnings

import nibabel as nib
import numpy as np
import pytest

from voxweight import LabelStats, scan_labels
from voxweight.stats.files import list_label_files, load_label


def write(path, array, dtype=np.uint8):
    nib.save(nib.Nifti1Image(np.asarray(array, dtype=dtype), np.diag([1.0, 1.0, 2.5, 1.0])), str(path))
    return path


@pytest.fixture
def dataset(tmp_path, rng):
    """Five label maps (.nii and .nii.gz, several dtypes, sizes and label sets) and their arrays."""
    folder = tmp_path / "labels"
    folder.mkdir()
    arrays = {
        "a.nii.gz": (rng.integers(0, 3, (10, 9, 8)), np.uint8),
        "b.nii.gz": (rng.integers(0, 5, (7, 6, 5)), np.int16),
        "c.nii": (rng.integers(0, 2, (6, 6, 6)), np.uint8),
        "d.nii.gz": (np.zeros((4, 4, 4)), np.int32),  # background only
        "e.nii.gz": (rng.integers(0, 4, (5, 8)), np.uint16),  # 2D
    }
    for name, (array, dtype) in arrays.items():
        write(folder / name, array, dtype)
    return folder, [a for a, _ in arrays.values()]


def numpy_stats(arrays, k):
    counts = [np.bincount(a.astype(int).ravel(), minlength=k) for a in arrays]
    return np.sum(counts, axis=0), np.sum([c > 0 for c in counts], axis=0), sum(a.size for a in arrays)


def test_counts_match_numpy_bincount(dataset):
    folder, arrays = dataset
    stats = scan_labels(folder, progress=False)
    positives, images_with, voxels = numpy_stats(arrays, 5)
    assert stats.num_classes == 5  # inferred: largest label + 1
    assert stats.positives.tolist() == positives.tolist()
    assert stats.images_with.tolist() == images_with.tolist()
    assert (stats.voxels, stats.images, stats.skipped) == (voxels, 5, [])


def test_two_workers_and_any_order_give_the_same_counts(dataset):
    folder, _ = dataset
    (folder / "broken.nii.gz").write_bytes(b"broken")
    files = list_label_files(folder)
    with pytest.warns(UserWarning, match="skipped 1 of 6"):
        one = scan_labels(files, progress=False)
    with pytest.warns(UserWarning, match="skipped 1 of 6"):
        two = scan_labels(files[::-1], workers=2, progress=False)
    assert one == two and len(one.skipped) == 1
    with pytest.raises(ValueError, match=r"broken\.nii\.gz: ImageFileError"):
        scan_labels(files, workers=2, strict=True, progress=False)


def test_given_num_classes_keeps_absent_classes(dataset):
    folder, arrays = dataset
    stats = scan_labels(folder, num_classes=7, progress=False)
    assert stats.positives.tolist() == numpy_stats(arrays, 7)[0].tolist()
    with pytest.raises(ValueError, match="none for classes 5, 6"):
        stats.pos_weight()


def test_whole_number_float_labels_count_like_integers(tmp_path, rng):
    labels = rng.integers(0, 3, (6, 5, 4))
    a = scan_labels(write(tmp_path / "int.nii.gz", labels), progress=False)
    b = scan_labels(write(tmp_path / "float.nii.gz", labels, np.float32), progress=False)
    c = scan_labels(write(tmp_path / "trailing.nii.gz", labels[..., None]), progress=False)  # [X, Y, Z, 1]
    assert a == b == c
    array, image = load_label(tmp_path / "float.nii.gz")
    assert array.dtype == np.int64 and np.array_equal(array, labels)
    assert image.header.get_zooms() == (1.0, 1.0, 2.5)


def bad_files(folder):
    """Each kind of unreadable file with the phrase its reason contains."""
    (folder / "corrupt.nii.gz").write_bytes(os.urandom(400))
    truncated = write(folder / "truncated.nii.gz", np.random.default_rng(1).integers(0, 9, (20, 20, 20)))
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # the header survives, the voxel data ends early
    write(folder / "four_d.nii.gz", np.zeros((3, 3, 3, 2)))
    write(folder / "fractional.nii.gz", np.full((3, 3, 3), 0.5), np.float32)
    write(folder / "negative.nii.gz", np.full((3, 3, 3), -1), np.int8)
    return {
        "corrupt.nii.gz": "ImageFileError",
        "truncated.nii.gz": "EOFError",
        "four_d.nii.gz": "expected a 2D or 3D label map, got a 4D image",
        "fractional.nii.gz": "non-integer values",
        "negative.nii.gz": "class indices >= 0",
    }


def test_bad_files_are_skipped_by_name_with_a_warning(dataset):
    folder, arrays = dataset
    reasons = bad_files(folder)
    with pytest.warns(UserWarning, match=r"skipped 5 of 10 files .*corrupt.nii.gz"):
        stats = scan_labels(folder, progress=False)
    assert {os.path.basename(p): r for p, r in stats.skipped}.keys() == reasons.keys()
    for path, reason in stats.skipped:
        assert reasons[os.path.basename(path)] in reason
    # The good files are counted exactly as without the bad ones.
    assert stats.positives.tolist() == numpy_stats(arrays, 5)[0].tolist() and stats.images == 5
    assert LabelStats.from_json(stats.to_json()).skipped == stats.skipped


@pytest.mark.parametrize("name", ["corrupt.nii.gz", "truncated.nii.gz", "four_d.nii.gz", "fractional.nii.gz"])
def test_strict_raises_naming_the_file(tmp_path, name):
    good = write(tmp_path / "good.nii.gz", np.ones((4, 4, 4)))
    reasons = bad_files(tmp_path)
    with pytest.raises(ValueError, match=f"{name}: .*{reasons[name]}"):
        scan_labels([good, tmp_path / name], strict=True, progress=False)


def test_labels_beyond_num_classes_are_a_file_error(tmp_path):
    write(tmp_path / "x.nii.gz", np.arange(8).reshape(2, 2, 2))
    with pytest.raises(ValueError, match=r"x.nii.gz: labels: expected class indices in \[0, 3\]"):
        scan_labels(tmp_path, num_classes=4, strict=True, progress=False)


def test_no_readable_file_is_an_error(tmp_path):
    (tmp_path / "junk.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(ValueError, match="expected at least one readable label file, got none among 1"):
        scan_labels(tmp_path, progress=False)


def test_missing_path_empty_directory_and_repeats(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"paths: expected an existing file or directory, got '.*nope'"):
        scan_labels(tmp_path / "nope", progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no labels here")
    (empty / ".hidden.nii.gz").write_bytes(b"")  # hidden files are ignored
    with pytest.raises(ValueError, match=r"paths: expected at least one \.nii/\.nii\.gz file, got none in .*empty"):
        scan_labels(empty, progress=False)
    f = write(tmp_path / "x.nii.gz", np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="paths: expected each file once"):
        scan_labels([f, tmp_path], progress=False)
    with pytest.raises(ValueError, match="paths: expected at least one file or directory"):
        scan_labels([], progress=False)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"workers": 0}, ValueError, "workers: expected a positive int, got 0"),
    ({"num_classes": 1.5}, TypeError, "num_classes: expected a positive int"),
    ({"progress": "yes"}, TypeError, "progress: expected True or False"),
])
def test_argument_errors(tmp_path, kwargs, error, match):
    f = write(tmp_path / "x.nii.gz", np.ones((2, 2, 2)))
    with pytest.raises(error, match=match):
        scan_labels(f, **kwargs)


def test_progress_bar_reports_files(tmp_path, capsys):
    write(tmp_path / "x.nii.gz", np.ones((2, 2, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scan_labels(tmp_path, progress=True)
    assert "scanning labels" in capsys.readouterr().err


def test_load_label_rejects_4d_and_fractional(tmp_path):
    with pytest.raises(ValueError, match="4D image"):
        load_label(write(tmp_path / "t.nii.gz", np.zeros((2, 2, 2, 3))))
    with pytest.raises(ValueError, match=r"f\.nii\.gz: labels: expected whole-number"):
        load_label(write(tmp_path / "f.nii.gz", np.full((2, 2, 2), 1.5), np.float32))
