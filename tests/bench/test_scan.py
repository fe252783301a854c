"""The ``scan`` bench case (tiny size, no timing assertions) and the run-length counting it relies on.

Oracle for every count: ``np.bincount`` over the whole array, voxel by voxel.
"""

from __future__ import annotations

import os
import tempfile

import nibabel as nib
import numpy as np
import pytest

import voxweight.bench.scan as bench_scan_module
import voxweight.stats.counting as lc
from voxweight import scan_labels
from voxweight.bench import BenchConfig, run_bench
from voxweight.bench.scan import bench_scan
from voxweight.bench.volumes import NUM_CLASSES, nested_balls
from voxweight.stats.counting import count_labels, run_lengths


def numpy_counts(array, length):
    return np.bincount(np.asarray(array).astype(np.int64).ravel(order="K"), minlength=length)


def test_scan_case_well_formed_and_cleans_up(monkeypatch):
    """One result with positive medians and the 1.15 target; the temporary folder is gone afterwards."""
    folders = []

    class Recording(tempfile.TemporaryDirectory):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            folders.append(self.name)

    monkeypatch.setattr(bench_scan_module.tempfile, "TemporaryDirectory", Recording)
    (result,) = bench_scan(BenchConfig(size=8, repeats=1))
    assert result.operation.startswith("scan_labels, 4 x 8^3") and "nibabel" in result.baseline
    assert result.baseline_ms > 0 and result.voxweight_ms > 0 and result.max_ratio == 1.15
    assert result.paired_ratio is not None and result.to_dict()["ratio"] == result.paired_ratio > 0
    assert len(folders) == 1 and not os.path.exists(folders[0])


def test_scan_case_is_registered():
    (result,) = run_bench(BenchConfig(size=6, repeats=1), cases=["scan"])
    assert result.operation.startswith("scan_labels")


def test_nested_balls_counts_match_numpy_through_scan_labels(tmp_path):
    """The bench's files, counted by scan_labels, against np.bincount of the arrays written."""
    arrays = [nested_balls(24, seed) for seed in range(4)]
    for i, (array, dtype) in enumerate(zip(arrays, bench_scan_module.DTYPES, strict=True)):
        nib.save(nib.Nifti1Image(array.astype(dtype), np.eye(4)), str(tmp_path / f"{i}.nii.gz"))
    stats = scan_labels(tmp_path, num_classes=NUM_CLASSES, progress=False)
    expected = sum(numpy_counts(a, NUM_CLASSES) for a in arrays)
    np.testing.assert_array_equal(stats.positives, expected)
    assert stats.voxels == 4 * 24**3 and stats.images == 4
    assert set(np.unique(np.concatenate([a.ravel() for a in arrays]))) <= set(range(NUM_CLASSES))
    assert (arrays[0] > 0).any() and (arrays[0] == 0).any()


def test_run_lengths_rebuild_the_chunk(rng):
    """np.repeat(values, lengths) gives the chunk back exactly; noise falls back to the chunk itself."""
    chunk = np.repeat(rng.integers(0, 5, 50).astype(np.uint8), rng.integers(1, 40, 50))
    values, lengths = run_lengths(chunk)
    np.testing.assert_array_equal(np.repeat(values, lengths), chunk)
    assert np.all(values[1:] != values[:-1]) and lengths.sum() == chunk.size
    noise = np.arange(64, dtype=np.int16) % 3
    values, lengths = run_lengths(noise)
    assert values is noise and lengths is None
    values, lengths = run_lengths(np.array([7], dtype=np.uint8))
    assert values.tolist() == [7] and lengths.tolist() == [1]


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.int64, np.float32, np.float64, bool])
@pytest.mark.parametrize("order", ["C", "F"])
def test_count_labels_matches_bincount_across_chunks(monkeypatch, rng, dtype, order):
    """Runs, noise and runs crossing chunk boundaries (CHUNK shrunk to 37), in C and F order, vs np.bincount."""
    monkeypatch.setattr(lc, "CHUNK", 37)
    runs = np.repeat(rng.integers(0, 2 if dtype is bool else 6, 40), rng.integers(1, 30, 40))
    voxels = np.concatenate([runs, rng.integers(0, 2, 200)])  # a long-run part, then a noise part
    array = np.resize(voxels, 6 * 7 * 11).reshape(6, 7, 11).astype(dtype)
    array = np.asfortranarray(array) if order == "F" else array
    length = 2 if dtype is bool else 8
    np.testing.assert_array_equal(count_labels(array, length, "x", allow_float=True), numpy_counts(array, length))
    np.testing.assert_array_equal(count_labels(array[:, ::2], None, "x", allow_float=True),
                                  numpy_counts(array[:, ::2], int(array[:, ::2].max()) + 1))


def test_count_labels_float_edge_cases():
    """-0.0 counts as class 0; NaN, inf and fractions inside long runs are still found and named."""
    signed_zero = np.array([0.0, -0.0, -0.0, 1.0, 1.0, 0.0] * 10, dtype=np.float32)
    np.testing.assert_array_equal(count_labels(signed_zero, 2, "x", allow_float=True), [40, 20])
    for bad, message in ((np.nan, "finite"), (np.inf, "finite"), (2.5, r"whole-number .*e\.g\. 2\.5")):
        array = np.zeros(500, dtype=np.float32)
        array[300:305] = bad
        with pytest.raises(ValueError, match=f"x: expected {message}"):
            count_labels(array, 4, "x", allow_float=True)
    ints = np.zeros(500, dtype=np.int16)
    ints[100] = -1
    with pytest.raises(ValueError, match=r"x: expected class indices >= 0, got values in \[-1, 0\]"):
        count_labels(ints, 2, "x")
