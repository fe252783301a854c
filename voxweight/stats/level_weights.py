r"""Weights from counts at a level: the ``pos_weight`` and class-weight methods of :class:`voxweight.LabelStats`.

:class:`WeightsFromCounts` holds :meth:`~WeightsFromCounts.pos_weight` and
:meth:`~WeightsFromCounts.class_weight`, which read four count fields (``positives``, ``images_with``,
``voxels``, ``images``) and hand them to :mod:`voxweight.stats.weights`; ``LabelStats`` inherits them, so
its module keeps to the counting, merging and serialising.
"""

from __future__ import annotations

import numpy as np
import torch

from voxweight._validate import look_up_option
from voxweight.stats import weights as cw

__all__ = ["LEVELS", "WeightsFromCounts"]

LEVELS = ("voxel", "image")


class WeightsFromCounts:
    r"""``pos_weight`` and class weights of per-class counts, at voxel or image level (a mixin).

    The class that inherits it sets ``positives`` and ``images_with`` (``[K]`` float64), ``voxels`` and
    ``images`` (ints), as :class:`voxweight.LabelStats` does.

    Example:
        >>> from voxweight.stats import LabelStats
        >>> stats = LabelStats(2)
        >>> stats.update_labels(np.array([0, 0, 0, 1]))
        >>> isinstance(stats, WeightsFromCounts), stats.pos_weight(), stats.pos_weight("image")
        (True, tensor([0.3333, 3.0000]), tensor([0., 0.]))
    """

    positives: np.ndarray
    images_with: np.ndarray
    voxels: int
    images: int

    def pos_weight(self, level: str = "voxel", *, max_weight: float | None = None,
                   absent: str = "raise") -> torch.Tensor:
        r"""Negatives / positives per class at ``level`` (see :func:`voxweight.pos_weight_from_counts`).

        With ``P_c`` the positives of class ``c`` and ``T`` the total: :math:`p_c = (T - P_c) / P_c`.

        Args:
            level: ``"voxel"`` (segmentation) or ``"image"`` (images containing the class).
            max_weight: optional cap, also the weight of a class with no positives.
            absent: ``"raise"`` or ``"skip"`` (weight 1) for a class with no positives.

        Returns:
            float32 ``[K]``.

        Raises:
            ValueError: with no data yet, a bad option, or an absent class (named) under ``absent="raise"``.
        """
        absent, max_weight = cw.check_policy(absent, max_weight)
        positives, total = self._level_counts(level)
        weights, missing = cw.pos_weight_array(positives, np.full_like(positives, total))
        return cw.apply_policy(weights, missing, absent=absent, max_weight=max_weight, what="pos_weight")

    def class_weight(self, mode: str = "balanced", *, beta: float = 0.999, level: str = "voxel",
                     max_weight: float | None = None, absent: str = "raise") -> torch.Tensor:
        r"""Per-class weights, e.g. for ``CrossEntropyLoss(weight=...)`` or ``class_weight=``.

        With ``n_c`` the count of class ``c``, ``n`` the total (voxels or images) and ``K`` classes:

        * ``"balanced"``: ``n / (K n_c)`` (scikit-learn's ``compute_class_weight("balanced")``);
          ``"inverse_frequency"``: ``n / n_c``.
        * ``"effective_number"`` (Cui et al., CVPR 2019): ``(1 - beta) / (1 - beta^{n_c})``, normalised
          to sum to ``K``. At voxel level ``beta^{n_c}`` vanishes for millions of voxels and all weights
          tend to 1: use ``level="image"`` or ``beta`` closer to 1 (e.g. ``1 - 1/n``).

        An absent class follows :meth:`pos_weight`'s policy (``"skip"``: weight 1, out of the normalisation).

        Args:
            mode: ``"balanced"``, ``"inverse_frequency"`` or ``"effective_number"``.
            beta: the effective-number ``beta``, in [0, 1).
            level: ``"voxel"`` or ``"image"``.
            max_weight: optional cap, also the weight of an absent class.
            absent: ``"raise"`` or ``"skip"`` (weight 1) for an absent class.

        Returns:
            float32 ``[K]``.

        Raises:
            TypeError: for a non-numeric ``beta`` or ``max_weight``.
            ValueError: with no data yet, for a bad option, or an absent class under ``absent="raise"``.
        """
        mode = look_up_option("mode", mode, cw.CLASS_WEIGHT_MODES)
        beta = cw.check_beta(beta)
        absent, max_weight = cw.check_policy(absent, max_weight)
        counts, total = self._level_counts(level)
        weights, missing = cw.class_weight_array(counts, total, mode, beta)
        return cw.apply_policy(weights, missing, absent=absent, max_weight=max_weight, what="class_weight")

    def _level_counts(self, level: str) -> tuple[np.ndarray, int]:
        """The counts per class at ``level`` (clipped to the total) and that total."""
        level = look_up_option("level", level, LEVELS)
        if self.images == 0 or self.voxels == 0:
            raise ValueError("LabelStats: expected counts from update(), update_labels() or scan_labels(), got no data")
        if level == "voxel":
            return np.minimum(self.positives, self.voxels), self.voxels
        return np.minimum(self.images_with, self.images), self.images
