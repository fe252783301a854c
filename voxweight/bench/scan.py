"""Benchmark case for :func:`voxweight.scan_labels` against bare nibabel loading + ``np.bincount``.

Four ``size^3`` label maps (nested balls of classes 0-4, as a segmentation looks, in the dtypes label
files come in: ``uint8``, ``int16``, ``uint8`` and whole-number ``float32``) are written as ``.nii.gz``
into a temporary folder. The baseline counts each the plain way: ``np.asanyarray(nib.load(p).dataobj)``
(the decompression any reader pays, the whole volume in memory) and ``np.bincount`` of it;
``scan_labels`` checks the header against the file, reads the same bytes through nibabel's array proxy a
slab at a time (:mod:`voxweight.stats.nifti`) and counts each slab exactly, without holding a whole
volume.
"""

from __future__ import annotations

import tempfile

import numpy as np

from voxweight.bench.harness import BenchConfig, BenchResult, time_paired
from voxweight.bench.volumes import DTYPES, NUM_CLASSES, write_nested_balls


def bench_scan(config: BenchConfig) -> list[BenchResult]:
    """``scan_labels`` (one worker) vs ``np.bincount(np.asanyarray(nib.load(p).dataobj))`` over four ``.nii.gz``."""
    import nibabel as nib

    from voxweight.stats import scan_labels

    with tempfile.TemporaryDirectory(prefix="voxweight-bench-") as folder:
        paths = write_nested_balls(folder, config.size)

        def load() -> None:
            for p in paths:
                array = np.asanyarray(nib.load(p).dataobj)
                np.bincount(array.ravel(order="K").astype(np.intp, copy=False), minlength=NUM_CLASSES)

        def scan() -> None:
            scan_labels(paths, num_classes=NUM_CLASSES, workers=1, progress=False)

        timing = time_paired(load, scan, 3 * config.repeats)  # ~10 ms: more samples
    names = "/".join(np.dtype(d).name for d in DTYPES)
    return [BenchResult.timed(f"scan_labels, 4 x {config.size}^3 .nii.gz", "nibabel load + np.bincount",
                              timing, 1.15, f"{names}, 1 worker")]
