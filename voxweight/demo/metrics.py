"""Metrics the demo reports: overlap, boundary-region overlap and calibration error (numpy)."""

from __future__ import annotations

import numpy as np

from voxweight.maps import distance_to_interface

__all__ = ["boundary_region", "expected_calibration_error", "overlap_scores"]


def overlap_scores(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Dice, recall and precision of two binary masks.

    All three are 1.0 when both masks are empty; otherwise a score whose denominator is 0 is 0.0
    (e.g. precision when nothing is predicted), as in scikit-learn's ``zero_division=0``.

    Formula: ``dice = 2 TP / (2 TP + FP + FN)``, ``recall = TP / (TP + FN)``, ``precision = TP / (TP + FP)``.

    Example:
        >>> import numpy as np
        >>> overlap_scores(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool))
        (0.5, 0.5, 0.5)
    """
    pred, truth = pred.astype(bool), truth.astype(bool)
    tp = float(np.sum(pred & truth))
    fp = float(np.sum(pred & ~truth))
    fn = float(np.sum(~pred & truth))

    both_empty = not pred.any() and not truth.any()

    def ratio(num: float, den: float) -> float:
        return num / den if den > 0 else (1.0 if both_empty else 0.0)

    return ratio(2 * tp, 2 * tp + fp + fn), ratio(tp, tp + fn), ratio(tp, tp + fp)


def boundary_region(label: np.ndarray, band_mm: float, spacing: tuple[float, ...]) -> np.ndarray:
    """Voxels within ``band_mm`` of the foreground/background interface, on either side.

    A foreground voxel's distance is to the nearest background voxel and vice versa
    (:func:`voxweight.maps.distance_to_interface` with ``spacing``), so the voxels touching the interface
    have distance one voxel step. An empty or full label has no interface: no voxel.

    Example:
        >>> import numpy as np
        >>> boundary_region(np.array([0, 0, 1, 1, 1, 0]), 1.0, (1.0,)).astype(int).tolist()
        [0, 1, 1, 0, 1, 1]
    """
    return distance_to_interface(label.astype(bool), spacing=spacing) <= band_mm


def expected_calibration_error(prob: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: ``sum_b (n_b / n) |mean(prob in b) - mean(truth in b)|`` over equal-width bins.

    Example:
        >>> import numpy as np
        >>> round(expected_calibration_error(np.array([0.9, 0.9, 0.1, 0.1]), np.array([1, 1, 0, 0])), 3)
        0.1
    """
    prob, truth = prob.ravel().astype(np.float64), truth.ravel().astype(np.float64)
    index = np.minimum((prob * bins).astype(int), bins - 1)
    sum_prob = np.bincount(index, weights=prob, minlength=bins)
    sum_true = np.bincount(index, weights=truth, minlength=bins)
    return float(np.sum(np.abs(sum_prob - sum_true)) / max(len(prob), 1))
