"""Metrics the demo reports, in numpy (no scikit-learn).

Overlap, boundary-region overlap, average precision, best-threshold Dice and calibration error. The code lives in
:mod:`voxweight.study.metrics` (the study reports them too); this module re-exports it unchanged.
"""

from voxweight.study.metrics import (
    DICE_THRESHOLDS,
    average_precision,
    best_threshold_dice,
    boundary_region,
    expected_calibration_error,
    overlap_scores,
)

__all__ = ["DICE_THRESHOLDS", "average_precision", "best_threshold_dice", "boundary_region",
           "expected_calibration_error", "overlap_scores"]
