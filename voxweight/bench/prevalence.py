"""Benchmark case for :func:`voxweight.stats.crop_prevalence` against :func:`voxweight.scan_labels` on the same files.

The four ``size^3`` label maps of the ``scan`` case (nested balls of classes 0-4, in ``uint8``, ``int16``,
``uint8`` and whole-number ``float32``) are written as ``.nii.gz`` into a temporary folder. The baseline
counts the dataset (``scan_labels``, one worker); the candidate computes the exact expected counts of the
shipped pipelines' crops (``roi_size = 96, 96, 64`` scaled to ``size``, ``pos = neg = 1``): each file read
whole, then one box-sum pass per foreground class.
"""

from __future__ import annotations

import tempfile

from voxweight.bench.harness import BenchConfig, BenchResult, time_paired
from voxweight.bench.volumes import NUM_CLASSES, write_nested_balls

__all__ = ["bench_prevalence", "roi_for"]


def roi_for(size: int) -> tuple[int, int, int]:
    """The pipelines' ``roi_size`` (96, 96, 64 at 128^3) scaled to a ``size^3`` volume (at least 1).

    Example:
        >>> roi_for(128), roi_for(8)
        ((96, 96, 64), (6, 6, 4))
    """
    return tuple(max(1, round(r * size / 128)) for r in (96, 96, 64))  # type: ignore[return-value]


def bench_prevalence(config: BenchConfig) -> list[BenchResult]:
    """``crop_prevalence`` (MONAI mode) vs ``scan_labels`` over four ``.nii.gz`` label files."""
    from voxweight.stats import scan_labels
    from voxweight.stats.prevalence import crop_prevalence

    roi = roi_for(config.size)
    with tempfile.TemporaryDirectory(prefix="voxweight-bench-") as folder:
        paths = write_nested_balls(folder, config.size)

        def scan() -> None:
            scan_labels(paths, num_classes=NUM_CLASSES, workers=1, progress=False)

        def crops() -> None:
            crop_prevalence(paths, roi_size=roi, num_classes=NUM_CLASSES)

        timing = time_paired(scan, crops, config.repeats)
    return [BenchResult.timed(f"crop_prevalence, 4 x {config.size}^3 .nii.gz", "scan_labels (same files)",
                              timing, 2.0, f"roi {'x'.join(map(str, roi))}, pos = neg = 1, 5 classes, 1 worker")]
