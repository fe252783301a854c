"""The study's metrics of one held-out volume, their table entries, and their pooling over volumes (numpy in).

Overlap and ranking (Dice, best-threshold Dice, average precision) and calibration (expected calibration error)
live here; the mask-pair metrics (Dice, HD95, surface Dice) in :mod:`voxweight.study.masks` and the object and
topology metrics (object F1, touching-instance splits, Betti-0 error, clDice) in :mod:`voxweight.study.objects`,
re-exported. :data:`METRICS` names and describes every metric in the order of the study's table;
:func:`volume_metrics` computes those that apply to one volume and :func:`pool_metrics` averages them over volumes.
No scikit-learn: average precision follows its definition (ties grouped).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from voxweight._validate import check_flag, check_positive_int, check_positive_number, check_spacing, describe
from voxweight.maps import distance_to_interface
from voxweight.study.masks import check_mask, check_probabilities, dice_score, hd95, surface_dice
from voxweight.study.objects import betti0_error, check_instances, cldice_metric, object_f1, touching_split_rate

__all__ = ["DICE_THRESHOLDS", "METRICS", "MetricInfo", "average_precision", "best_threshold_dice", "betti0_error",
           "boundary_region", "cldice_metric", "dice_score", "expected_calibration_error", "hd95", "object_f1",
           "overlap_scores", "pool_metrics", "surface_dice", "touching_split_rate", "volume_metrics"]

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


class MetricInfo(NamedTuple):
    """A metric in the study's table; ``kind``: ``"all"``, ``"instances"`` (with an instance map) or ``"tubular"``."""

    label: str
    higher_is_better: bool
    kind: str
    doc: str


#: Every metric of :func:`volume_metrics`, in the order of the study's table (read-only).
METRICS: Mapping[str, MetricInfo] = MappingProxyType({
    "dice": MetricInfo("Dice", True, "all", "Dice of prob > 0.5 after debiasing (1 when both masks are empty)"),
    "best_dice": MetricInfo("best Dice", True, "all", "max Dice of prob > t, t in DICE_THRESHOLDS (fit on it)"),
    "ap": MetricInfo("AP", True, "all", "average precision of the voxels ranked by prob (0 when the label is empty)"),
    "hd95": MetricInfo("HD95 (mm)", False, "all", "95th-percentile symmetric surface distance in mm (see hd95)"),
    "surface_dice": MetricInfo("surface Dice", True, "all", "share of both surfaces within the tolerance (mm)"),
    "ece_raw": MetricInfo("ECE raw", False, "all", "expected calibration error of the probabilities before debiasing"),
    "ece": MetricInfo("ECE", False, "all", "expected calibration error of the probabilities after debiasing"),
    "object_f1": MetricInfo("object F1", True, "instances", "F1 of components matched to instances at IoU > 0.5"),
    "split_rate": MetricInfo("split rate", True, "instances", "share of touching instances kept apart (n/a if none)"),
    "betti0_error": MetricInfo("Betti-0 error", False, "tubular", "|#components(pred) - #components(label)|"),
    "cldice": MetricInfo("clDice", True, "tubular", "harmonic mean of topology precision and sensitivity"),
})


def volume_metrics(prob: Any, raw_prob: Any, truth: Any, spacing: float | Sequence[float], *,
                   instances: Any = None, tubular: bool = False, tolerance_mm: float = 1.0,
                   ece_bins: int = 10) -> dict[str, float | None]:
    """Every metric of :data:`METRICS` that applies to one held-out volume, in that order.

    The prediction is ``prob > 0.5``; ``dice``, ``hd95``, ``surface_dice`` (at ``tolerance_mm``) and, with
    ``instances``, ``object_f1`` and ``split_rate``, and with ``tubular``, ``betti0_error`` and ``cldice`` score
    it; ``best_dice`` and ``ap`` rank the voxels by ``prob``; ``ece`` is the calibration of ``prob``, ``ece_raw``
    that of ``raw_prob`` (with ``ece_bins`` equal-width bins). Without ``instances`` the instance metrics are absent
    from the result, without ``tubular`` the tubular ones; ``split_rate`` is None when no two instances touch.

    Args:
        prob: the debiased foreground probabilities, floats in [0, 1] (float16 too).
        raw_prob: the probabilities before debiasing.
        truth: the binary label.
        spacing: voxel size in mm, one number per axis (or one for all).
        instances: the label's instance ids (0 background), or None.
        tubular: also report the tubular metrics.
        tolerance_mm: the surface Dice tolerance in mm, >= 0.
        ece_bins: the calibration error's bin count, >= 1.

    Returns:
        ``{metric: value}``; every value finite (or None for ``split_rate``).

    Raises:
        ValueError, TypeError: for bad arguments, naming them.

    Shape:
        - prob, raw_prob, truth, instances: ``[H, W]`` or ``[D, H, W]``, the same.

    Example:
        >>> truth = np.zeros((8, 8), bool); truth[2:6, 2:6] = True
        >>> row = volume_metrics(np.where(truth, 0.9, 0.1), np.where(truth, 0.6, 0.3), truth, (1.0, 1.0))
        >>> list(row) == [m for m, info in METRICS.items() if info.kind == "all"], row["dice"], round(row["ece_raw"], 3)
        (True, 1.0, 0.325)
    """
    p, t = check_probabilities("prob", prob), check_mask("truth", truth)
    if t.shape != p.shape:
        raise ValueError(f"truth: expected prob's shape {list(p.shape)}, got {list(t.shape)}")
    raw, pred = check_probabilities("raw_prob", raw_prob, p.shape), p > 0.5
    spacing, bins = check_spacing("spacing", spacing, p.ndim), check_positive_int("ece_bins", ece_bins)
    tolerance = check_positive_number("tolerance_mm", tolerance_mm, allow_zero=True)
    ids, tubular = None if instances is None else check_instances(instances, p.shape), check_flag("tubular", tubular)
    out: dict[str, float | None] = {
        "dice": dice_score(pred, t), "best_dice": best_threshold_dice(p, t)[0], "ap": average_precision(p, t),
        "hd95": hd95(pred, t, spacing), "surface_dice": surface_dice(pred, t, spacing, tolerance),
        "ece_raw": expected_calibration_error(raw, t, bins), "ece": expected_calibration_error(p, t, bins)}
    if ids is not None:
        out |= {"object_f1": object_f1(pred, ids), "split_rate": touching_split_rate(pred, ids)}
    if tubular:
        out |= {"betti0_error": float(betti0_error(pred, t)), "cldice": cldice_metric(pred, t)}
    return out


def pool_metrics(per_volume: Sequence[Mapping[str, float | None]]) -> dict[str, float | None]:
    """The mean over volumes of each metric, leaving out the volumes where it is None or absent.

    ``pooled[m] = mean(v[m] for v in per_volume if v.get(m) is not None)``, None when no volume has a value. Keys in
    :data:`METRICS` order, then any others in the order first seen; no volume: ``{}``.

    Raises:
        TypeError: for a row that is not a mapping or a value that is not a number or None.
        ValueError: for a value that is inf or NaN.

    Example:
        >>> pool_metrics([{"dice": 0.5, "split_rate": None}, {"dice": 1.0, "split_rate": 0.25}])
        {'dice': 0.75, 'split_rate': 0.25}
    """
    if not isinstance(per_volume, Sequence) or isinstance(per_volume, str):
        raise TypeError(f"per_volume: expected a list of {{metric: value}} dicts, got {describe(per_volume)}")
    names: dict[str, None] = {}
    for i, row in enumerate(per_volume):
        if not isinstance(row, Mapping):
            raise TypeError(f"per_volume[{i}]: expected a {{metric: value}} mapping, got {describe(row)}")
        for name, v in row.items():
            where = f"per_volume[{i}][{name!r}]"
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating)):
                raise TypeError(f"{where}: expected a number or None, got {describe(v)}")
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{where}: expected a finite number or None, got {v!r}")
            names.setdefault(name)
    pooled: dict[str, float | None] = {}
    for name in [m for m in METRICS if m in names] + [m for m in names if m not in METRICS]:
        values = [float(row[name]) for row in per_volume if row.get(name) is not None]
        pooled[name] = math.fsum(values) / len(values) if values else None
    return pooled
