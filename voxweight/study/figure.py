"""The study's figure: one bar chart per metric (mean, sd error bars) and one slice per recipe with contours."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np

from voxweight.study.files import write_atomic
from voxweight.study.metrics import METRICS
from voxweight.study.result import StudyResult

__all__ = ["save_study_figure"]


def save_study_figure(path: str | os.PathLike[str], result: StudyResult, image: np.ndarray, label: np.ndarray,
                      probabilities: dict[str, np.ndarray]) -> Path:
    """Write the PNG (atomically): bars per metric, then one held-out slice per recipe with contours.

    The bars are the mean over seeds with sd error bars; the slice (the label's largest) shows the label's
    contour in white and each recipe's prediction at 0.5 after debiasing in red.

    Args:
        path: the PNG to write.
        result: the study result (its :meth:`~voxweight.study.result.StudyResult.summary`).
        image: one held-out image ``[*spatial]``.
        label: its label (bool).
        probabilities: recipe -> debiased probabilities of that volume.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics, summary = result.metrics(), result.summary()
    cols = max(len(metrics), len(probabilities), 1)
    ncols = min(cols, 6)
    rows_bars, rows_slices = math.ceil(len(metrics) / ncols), math.ceil(len(probabilities) / ncols)
    fig, axes = plt.subplots(rows_bars + rows_slices, ncols, figsize=(2.6 * ncols, 2.4 * (rows_bars + rows_slices)),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for i, m in enumerate(metrics):
        ax = axes.flat[i]
        ax.set_visible(True)
        means = [summary[r][m][0] for r in result.recipes]
        sds = [summary[r][m][1] or 0.0 for r in result.recipes]
        x = np.arange(len(result.recipes))
        ax.bar(x, [v if v is not None else 0.0 for v in means], yerr=sds, capsize=3, color="tab:blue")
        ax.set_xticks(x, result.recipes, rotation=60, ha="right", fontsize=6)
        ax.set_title(METRICS[m].label if m in METRICS else m, fontsize=8)
        ax.tick_params(axis="y", labelsize=6)
    z = label.shape[-1] // 2 if not label.any() else int(np.argmax(label.sum(axis=(0, 1))))
    for j, (name, prob) in enumerate(probabilities.items()):
        ax = axes.flat[rows_bars * ncols + j]
        ax.set_visible(True)
        ax.imshow(image[..., z].T, cmap="gray", origin="lower")
        for mask, colour in ((label[..., z], "white"), (prob[..., z] > 0.5, "red")):
            if mask.any() and not mask.all():
                ax.contour(mask.T.astype(float), levels=[0.5], colors=colour, linewidths=0.8)
        ax.set_title(name, fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return write_atomic(path, buffer.getvalue())
