"""Metrics the demo reports, in numpy (no scikit-learn).

Overlap, boundary-region overlap, average precision, best-threshold Dice and calibration error.
"""

from __future__ import annotations

import numpy as np

from voxweight._validate import describe
from voxweight.maps import distance_to_interface

__all__ = ["DICE_THRESHOLDS", "average_precision", "best_threshold_dice", "boundary_region",
           "expected_calibration_error", "overlap_scores"]

#: The grid :func:`best_threshold_dice` searches: 0.05, 0.10, ..., 0.95.
DICE_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20))


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


def _score_and_truth(score: np.ndarray, truth: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    score, truth = np.asarray(score), np.asarray(truth)
    if score.shape != truth.shape:
        raise ValueError(f"truth: expected the shape of {name} {list(score.shape)}, got {describe(truth)}")
    if not (np.issubdtype(score.dtype, np.number) or score.dtype == bool):
        raise TypeError(f"{name}: expected a real-valued array, got {describe(score)}")
    score = score.ravel().astype(np.float64)
    if not np.isfinite(score).all():
        raise ValueError(f"{name}: expected finite values, got {int(np.sum(~np.isfinite(score)))} inf/NaN")
    return score, truth.ravel().astype(bool)


def average_precision(score: np.ndarray, truth: np.ndarray) -> float:
    """Average precision (area under the precision-recall steps), threshold-free.

    Voxels are ranked by ``score`` (probabilities or logits: any increasing transform of the score gives
    the same value, so ranking logits avoids the ties of saturated float32 probabilities). With
    ``P_n``, ``R_n`` the precision and recall when every voxel scoring at least the ``n``-th highest
    distinct score is called positive, ``AP = sum_n (R_n - R_{n-1}) P_n`` (``R_0 = 0``), scikit-learn's
    ``average_precision_score``. Without ties this is the mean, over the positives, of the precision at
    each positive's rank. No positive in ``truth``: 0.0 (as scikit-learn).

    Args:
        score: real scores, higher meaning more likely foreground.
        truth: binary ground truth of the same shape.

    Returns:
        AP in [0, 1]; 1.0 when every positive outranks every negative.

    Raises:
        ValueError: if the shapes differ or ``score`` has inf/NaN.
        TypeError: if ``score`` is not numeric.

    Shape:
        ``score`` and ``truth``: any shape, the same; all elements are ranked together.

    Example:
        >>> import numpy as np
        >>> # ranks: 0.9 (pos, P=1), 0.8 (neg), 0.7 (pos, P=2/3): AP = (1 + 2/3) / 2
        >>> round(average_precision(np.array([0.9, 0.8, 0.7, 0.1]), np.array([1, 0, 1, 0])), 4)
        0.8333
    """
    score, truth = _score_and_truth(score, truth, "score")
    n_pos = int(truth.sum())
    if n_pos == 0:
        return 0.0
    order = np.argsort(-score, kind="stable")
    ranked, hits = score[order], truth[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # one point per distinct score
    tp = np.cumsum(hits)[last_of_tie]
    precision = tp / (last_of_tie + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def best_threshold_dice(prob: np.ndarray, truth: np.ndarray,
                        thresholds: tuple[float, ...] = DICE_THRESHOLDS) -> tuple[float, float]:
    """The highest Dice of ``prob > t`` over a grid of thresholds ``t``, and the (lowest) ``t`` reaching it.

    ``dice(t) = 2 |{prob > t} & truth| / (|{prob > t}| + |truth|)``, 1.0 when both are empty (as
    :func:`overlap_scores`). The grid defaults to :data:`DICE_THRESHOLDS` (0.05, 0.10, ..., 0.95). The
    threshold is chosen on the data it is scored on, so this is an optimistic bound on what a threshold
    picked on validation data would give: it says whether a model *ranks* the voxels well even where a
    fixed threshold of 0.5 misses.

    Args:
        prob: probabilities (or any scores on the scale of ``thresholds``).
        truth: binary ground truth of the same shape.
        thresholds: the non-empty grid to search, finite numbers.

    Returns:
        ``(dice, threshold)``.

    Raises:
        ValueError: if the shapes differ, ``prob`` has inf/NaN or ``thresholds`` is empty or not finite.

    Shape:
        ``prob`` and ``truth``: any shape, the same.

    Example:
        >>> import numpy as np
        >>> best_threshold_dice(np.array([0.3, 0.2, 0.1, 0.1]), np.array([1, 1, 0, 0]))
        (1.0, 0.1)
    """
    prob, truth = _score_and_truth(prob, truth, "prob")
    grid = np.asarray(thresholds, dtype=np.float64).ravel()
    if grid.size == 0 or not np.isfinite(grid).all():
        raise ValueError(f"thresholds: expected a non-empty sequence of finite numbers, got {thresholds!r}")
    all_sorted, pos_sorted = np.sort(prob), np.sort(prob[truth])
    n_pred = len(all_sorted) - np.searchsorted(all_sorted, grid, side="right")  # count of prob > t
    tp = len(pos_sorted) - np.searchsorted(pos_sorted, grid, side="right")
    den = n_pred + len(pos_sorted)
    dice = np.where(den > 0, 2.0 * tp / np.maximum(den, 1), 1.0)
    best = int(np.argmax(dice))
    return float(dice[best]), float(grid[best])
