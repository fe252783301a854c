"""What ``voxweight demo`` reports: one row per trained model, its table and the legend defining each column."""

from __future__ import annotations

from dataclasses import dataclass

from voxweight.demo.metrics import DICE_THRESHOLDS

__all__ = ["BAND_MM", "ECE_BINS", "THRESHOLD", "DemoResult", "format_legend", "format_table"]

THRESHOLD = 0.5  #: the fixed threshold of the dice/recall/precision/bnd.dice columns (on debiased probabilities)
BAND_MM = 2.0  #: the width of the boundary region of ``bnd.dice``, in mm on either side of the interface
ECE_BINS = 10  #: equal-width bins of the calibration error


@dataclass(frozen=True)
class DemoResult:
    """Held-out metrics of one trained model.

    ``dice``, ``recall``, ``precision`` and ``boundary_dice`` threshold the debiased probabilities at
    :data:`THRESHOLD` (0.5); ``average_precision`` needs no threshold; ``best_dice`` is the highest Dice
    over :data:`~voxweight.demo.metrics.DICE_THRESHOLDS`, reached at ``best_threshold``;
    ``max_probability`` is the highest debiased probability (below 0.5, nothing is predicted at 0.5).
    :func:`format_legend` defines every column.
    """

    name: str
    dice: float
    recall: float
    precision: float
    boundary_dice: float
    ece_raw: float
    ece_debiased: float
    average_precision: float
    best_dice: float
    best_threshold: float
    max_probability: float


_GROUPS = f"{'':29} {f' threshold {THRESHOLD:g} (debiased) ':-^35} {'no thr.':>7} {'best thr.':^12} {'':6} " \
          f"{' ECE ':-^18}"
_HEADER = f"{'model':<29} {'dice':>6} {'recall':>7} {'precision':>10} {'bnd.dice':>9} {'AP':>7} {'dice':>6} " \
          f"{'thr':>5} {'max p':>6} {'raw':>8} {'debiased':>9}"


def format_table(results: list[DemoResult]) -> str:
    """Render demo results as a fixed-width text table whose header states its threshold.

    The first header line groups the columns: those thresholded at 0.5 (on the debiased
    probabilities), the threshold-free average precision, the best-threshold Dice with its threshold,
    and the calibration errors. :func:`format_legend` defines each column.

    Args:
        results: the rows, in order.

    Returns:
        The table, lines joined by newlines (no trailing newline).

    Example:
        >>> print(format_table([DemoResult("plain BCE", 0.5, 0.4, 0.7, 0.3, 0.02, 0.01, 0.66, 0.64, 0.3, 0.45)]))
                                      ---- threshold 0.5 (debiased) ----- no thr.  best thr.          ------ ECE -------
        model                           dice  recall  precision  bnd.dice      AP   dice   thr  max p      raw  debiased
        plain BCE                      0.500   0.400      0.700     0.300   0.660  0.640  0.30  0.450   0.0200    0.0100
    """
    lines = [_GROUPS.rstrip(), _HEADER]
    for r in results:
        lines.append(f"{r.name:<29} {r.dice:>6.3f} {r.recall:>7.3f} {r.precision:>10.3f} {r.boundary_dice:>9.3f} "
                     f"{r.average_precision:>7.3f} {r.best_dice:>6.3f} {r.best_threshold:>5.2f} "
                     f"{r.max_probability:>6.3f} {r.ece_raw:>8.4f} {r.ece_debiased:>9.4f}")
    return "\n".join(lines)


def format_legend() -> str:
    """One line per column of :func:`format_table`, saying what it measures.

    Returns:
        The legend, lines joined by newlines; each line starts with the column's name.

    Example:
        >>> print(format_legend().splitlines()[0])
        debiased      debias_logits: sigmoid(logit - log r - logit(crop prev.) + logit(volume prev.)), r fg/bg
    """
    grid = f"{DICE_THRESHOLDS[0]:.2f}, {DICE_THRESHOLDS[1]:.2f}, ..., {DICE_THRESHOLDS[-1]:.2f}"
    rows = [
        ("debiased", "debias_logits: sigmoid(logit - log r - logit(crop prev.) + logit(volume prev.)), r fg/bg"),
        ("dice", f"Dice 2TP / (2TP + FP + FN) of {{debiased probability > {THRESHOLD:g}}}, all held-out voxels"),
        ("recall", f"TP / (TP + FN) at {THRESHOLD:g}: the share of foreground voxels found"),
        ("precision", f"TP / (TP + FP) at {THRESHOLD:g}: the share of predicted voxels that are foreground"),
        ("bnd.dice", f"that Dice on the voxels within {BAND_MM:g} mm of the label's interface (either side)"),
        ("AP", "average precision, no threshold: voxels ranked by logit, sum over recall steps of precision"),
        ("best dice", f"the highest Dice over thresholds {grid} of the debiased probability"),
        ("thr", "the threshold reaching it (picked on these test volumes, so optimistic)"),
        ("max p", f"the highest debiased probability; below {THRESHOLD:g}, nothing is predicted at {THRESHOLD:g}"),
        ("ECE raw", f"expected calibration error ({ECE_BINS} equal-width bins) of sigmoid(logit)"),
        ("ECE debiased", "the same of the debiased probabilities"),
    ]
    return "\n".join(f"{name:<13} {text}" for name, text in rows)
