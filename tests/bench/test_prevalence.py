"""The ``prevalence`` bench case at a tiny size (no timing assertions), and that it measures what it says.

Oracle: the crop statistics the bench computes equal ``crop_prevalence`` on the same arrays in memory, whose
own oracle (MONAI's enumeration) is tests/stats/test_prevalence.py.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

import voxweight.bench.prevalence as bench_module
from voxweight.bench import BenchConfig
from voxweight.bench.prevalence import bench_prevalence, roi_for
from voxweight.bench.volumes import NUM_CLASSES, nested_balls, write_nested_balls
from voxweight.stats.prevalence import crop_prevalence


def test_prevalence_case_well_formed_and_cleans_up(monkeypatch):
    folders = []

    class Recording(tempfile.TemporaryDirectory):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            folders.append(self.name)

    monkeypatch.setattr(bench_module.tempfile, "TemporaryDirectory", Recording)
    (result,) = bench_prevalence(BenchConfig(size=12, repeats=1))
    assert result.operation.startswith("crop_prevalence, 4 x 12^3") and result.baseline.startswith("scan_labels")
    assert result.baseline_ms > 0 and result.voxweight_ms > 0 and result.max_ratio == 2.0
    assert result.paired_ratio is not None and result.paired_ratio > 0
    assert len(folders) == 1 and not os.path.exists(folders[0])


def test_bench_files_give_the_in_memory_result(tmp_path):
    """The files the case writes (four dtypes) give the crop counts of the arrays themselves."""
    paths = write_nested_balls(tmp_path, 16)
    arrays = [nested_balls(16, i) for i in range(len(paths))]
    roi = roi_for(16)
    files = crop_prevalence(paths, roi_size=roi, num_classes=NUM_CLASSES)
    memory = crop_prevalence(arrays, roi_size=roi, num_classes=NUM_CLASSES)
    np.testing.assert_allclose(files.positives, memory.positives, rtol=1e-12)
    assert files.voxels == 4 * np.prod(roi) and (files.positives[1:] > 0).all()
