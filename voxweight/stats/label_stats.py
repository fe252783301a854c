r"""Streaming label statistics -> ``pos_weight`` and class weights (pure numpy/torch, no MONAI).

:class:`LabelStats` counts, per class, the positive voxels and the images that contain the class, one
batch or one label map at a time, so a dataset far larger than memory is summarised exactly; counts from
workers, files or ranks merge by addition. :func:`pos_weight_from_counts` turns counts into the
``pos_weight`` of ``BCEWithLogitsLoss`` / :func:`voxweight.voxel_weighted_bce`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voxweight.checks import check_range, describe, look_up_option
from voxweight.stats import weights as cw
from voxweight.stats.counting import as_target_tensor, count_labels, count_on_device
from voxweight.stats.serialise import check_num_classes, dist_all_reduce, stats_from_dict, stats_to_dict

__all__ = ["LabelStats", "pos_weight_from_counts"]

LEVELS = ("voxel", "image")


def pos_weight_from_counts(positives: Any, total: Any, *, max_weight: float | None = None,
                           absent: str = "raise") -> torch.Tensor:
    r"""``pos_weight`` per class: negatives / positives, ready for :func:`voxweight.voxel_weighted_bce`.

    .. math::

        p_c = \frac{T_c - P_c}{P_c}

    with ``P_c`` the positives of class ``c`` and ``T_c`` the total (voxels or images). The loss then acts
    as if each class had as many positives as negatives (PyTorch's ``BCEWithLogitsLoss`` recipe).

    Degenerate cases: a class with no positives has no defined weight. By default that raises; with
    ``max_weight`` it gets ``max_weight`` (every weight is also clipped there); with ``absent="skip"`` it
    gets 1, the neutral weight: its targets are all 0 in these counts, so ``pos_weight`` changes nothing
    for it, and 1 (rather than 0) keeps its positives counted if they appear later. A class that is
    positive everywhere gets 0: there are no negatives to balance.

    Args:
        positives: positives per class (numbers >= 0; fractional for soft targets).
        total: the total it was counted over: a number, or one per class.
        max_weight: optional cap (> 0) on every weight, also the weight of an absent class.
        absent: ``"raise"`` (default) or ``"skip"``: what to do with a class that has no positives.

    Returns:
        A float32 tensor with one weight per class.

    Raises:
        TypeError: for non-numeric counts.
        ValueError: for negative or non-finite counts, ``positives > total``, mismatched lengths, a bad
            ``max_weight`` or ``absent``, and (``absent="raise"`` without ``max_weight``) a class with no
            positives, named in the message.

    Shape:
        - positives: ``[C]`` (or a scalar for one class).
        - total: scalar or ``[C]``.
        - output: ``[C]``.

    Example:
        >>> from voxweight import pos_weight_from_counts
        >>> pos_weight_from_counts([600, 550, 200, 100], 1000)  # seed 000
        tensor([0.6667, 0.8182, 4.0000, 9.0000])
        >>> pos_weight_from_counts(100, 400)  # 100 positives, 300 negatives
        tensor([3.])
        >>> pos_weight_from_counts([0, 10], 100, absent="skip")
        tensor([1., 9.])
    """
    absent, max_weight = cw.check_policy(absent, max_weight)
    pos, tot = cw.counts_and_total(positives, total)
    weights, missing = cw.pos_weight_array(pos, tot)
    return cw.apply_policy(weights, missing, absent=absent, max_weight=max_weight, what="pos_weight")


class LabelStats:
    r"""Exact, mergeable per-class counts of a segmentation (or multi-label) dataset.

    Two levels are counted. Voxel level: ``positives[c]`` is the sum of class ``c``'s target over every
    voxel (float64, so soft targets count fractionally), out of ``voxels`` voxels. Image level:
    ``images_with[c]`` is the sum over images of the maximum of class ``c``'s target in the image (1 when
    the image contains the class, for hard labels), out of ``images`` images. For ``[N, C]`` targets both
    levels agree. Integer counts (label maps, 0/1 targets) are exact whatever the order of updates,
    merges, files or workers; soft counts are float64 sums (the order can move the last bits).

    ``update_labels`` counts an integer label map in which class 0 (usually background) is a class like
    any other, so ``pos_weight()[0]`` is background's own negatives/positives ratio; drop it with
    ``[1:]`` when the network has no background channel.

    Attributes:
        num_classes: number of classes ``K``.
        positives: ``[K]`` float64, positive voxels per class.
        voxels: total voxels counted (int).
        images: images counted (int).
        images_with: ``[K]`` float64, images containing each class.
        skipped: ``(path, reason)`` for each file :func:`voxweight.scan_labels` could not read.

    Shape:
        - ``update`` target: ``[N, K, *spatial]`` or ``[N, K]``, values in [0, 1].
        - ``update_labels`` label map: ``[*spatial]`` or ``[1, *spatial]``, integers in ``[0, K-1]``.
        - ``pos_weight()`` / ``class_weight()``: ``[K]`` float32.

    Example:
        >>> import numpy as np
        >>> from voxweight import LabelStats
        >>> stats = LabelStats(3)
        >>> stats.update_labels(np.array([[0, 0, 1], [0, 2, 0]]))
        >>> stats.positives, stats.voxels
        (array([4., 1., 1.]), 6)
        >>> stats.pos_weight()
        tensor([0.5000, 5.0000, 5.0000])
        >>> stats.class_weight("balanced")  # 6 / (3 * count)
        tensor([0.5000, 2.0000, 2.0000])
        >>> LabelStats.from_json(stats.to_json()) == stats
        True
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = check_num_classes("num_classes", num_classes)
        self.positives = np.zeros(self.num_classes, dtype=np.float64)
        self.images_with = np.zeros(self.num_classes, dtype=np.float64)
        self.voxels = 0
        self.images = 0
        self.skipped: list[tuple[str, str]] = []

    def update(self, target: torch.Tensor | np.ndarray) -> None:
        """Count a batch of multi-hot or soft targets ``[N, K, *spatial]`` (or ``[N, K]``).

        Raises:
            TypeError: for a non-array or complex target.
            ValueError: for a channel axis other than ``K``, an image without voxels, or values outside
                [0, 1] (a value check, see :func:`voxweight.set_value_checks`).
        """
        t = as_target_tensor("target", target)
        if t.ndim < 2 or t.shape[1] != self.num_classes:
            raise ValueError(f"target: expected shape [N, {self.num_classes}, *spatial] (one channel per class), "
                             f"got {list(t.shape)}")
        if t.shape[0] and t[0, 0].numel() == 0:
            raise ValueError(f"target: expected at least one voxel per image, got shape {list(t.shape)}")
        check_range("target", t, 0.0, 1.0, "values in [0, 1] (multi-hot or soft targets)")
        spatial = tuple(range(2, t.ndim))
        present = t.amax(dim=spatial) if spatial else t
        self.positives += t.sum(dim=(0, *spatial), dtype=torch.float64).cpu().numpy()
        self.images_with += present.sum(dim=0, dtype=torch.float64).cpu().numpy()
        self.voxels += t.numel() // self.num_classes
        self.images += t.shape[0]

    def update_labels(self, label_map: torch.Tensor | np.ndarray) -> None:
        """Count one integer label map ``[*spatial]`` or ``[1, *spatial]`` with values in ``[0, K-1]``.

        Raises:
            TypeError: for a non-array or a non-integer dtype.
            ValueError: for an empty map or a value outside ``[0, K-1]``.
        """
        if not isinstance(label_map, torch.Tensor | np.ndarray):
            raise TypeError(f"label_map: expected a numpy array or torch tensor, got {describe(label_map)}")
        if 0 in label_map.shape:
            raise ValueError(f"label_map: expected at least one voxel, got shape {list(label_map.shape)}")
        if isinstance(label_map, torch.Tensor) and label_map.device.type != "cpu":
            counts = count_on_device(label_map, self.num_classes)
        else:
            array = label_map.detach().numpy() if isinstance(label_map, torch.Tensor) else label_map
            counts = count_labels(array, self.num_classes, "label_map")
        self._add_counts(counts)

    def _add_counts(self, counts: np.ndarray) -> None:
        """Add one image's label counts (int64 ``[K]``)."""
        self.positives += counts
        self.images_with += counts > 0
        self.voxels += int(counts.sum())
        self.images += 1

    def merge(self, other: LabelStats) -> LabelStats:
        """Add ``other``'s counts (and skipped files) to these, in place; returns ``self``.

        Raises:
            TypeError: if ``other`` is not a :class:`LabelStats`.
            ValueError: if the numbers of classes differ.
        """
        if not isinstance(other, LabelStats):
            raise TypeError(f"other: expected a LabelStats, got {describe(other)}")
        if other.num_classes != self.num_classes:
            raise ValueError(f"other: expected num_classes={self.num_classes}, got {other.num_classes}")
        self.positives += other.positives
        self.images_with += other.images_with
        self.voxels += other.voxels
        self.images += other.images
        self.skipped += other.skipped
        return self

    def all_reduce(self, group: Any = None) -> LabelStats:
        """Sum the counts over the ranks of a ``torch.distributed`` group, in place; returns ``self``.

        Every rank must call it (a collective) with the same ``num_classes``; afterwards every rank holds
        the dataset's totals and the skipped files of all ranks. Counts travel as int64/float64 tensors
        (on the current CUDA device for NCCL, on CPU otherwise).

        Raises:
            RuntimeError: if no process group is initialised.
            ValueError: on every rank, if ranks disagree on ``num_classes``.
        """
        dist_all_reduce(self, group)
        return self

    def pos_weight(self, level: str = "voxel", *, max_weight: float | None = None,
                   absent: str = "raise") -> torch.Tensor:
        """Negatives / positives per class at ``level`` (see :func:`pos_weight_from_counts`).

        Args:
            level: ``"voxel"`` (segmentation) or ``"image"`` (images containing the class).
            max_weight: optional cap, also the weight of a class with no positives.
            absent: ``"raise"`` or ``"skip"`` (weight 1) for a class with no positives.

        Returns:
            float32 ``[K]``.

        Raises:
            ValueError: with no data yet, or for an absent class (named) under ``absent="raise"``.
        """
        absent, max_weight = cw.check_policy(absent, max_weight)
        positives, total = self._level_counts(level)
        weights, missing = cw.pos_weight_array(positives, np.full_like(positives, total))
        return cw.apply_policy(weights, missing, absent=absent, max_weight=max_weight, what="pos_weight")

    def class_weight(self, mode: str = "balanced", *, beta: float = 0.999, level: str = "voxel",
                     max_weight: float | None = None, absent: str = "raise") -> torch.Tensor:
        r"""Per-class weights, e.g. for ``CrossEntropyLoss(weight=...)`` or ``class_weight=``.

        With ``n_c`` the count of class ``c``, ``n`` the total (voxels or images) and ``K`` classes:

        * ``"balanced"``: ``n / (K n_c)`` (scikit-learn's ``compute_class_weight("balanced")``).
        * ``"inverse_frequency"``: ``n / n_c``.
        * ``"effective_number"`` (Cui et al., CVPR 2019): ``(1 - beta) / (1 - beta^{n_c})``, normalised
          to sum to ``K``. At voxel level ``beta^{n_c}`` vanishes for millions of voxels and all weights
          tend to 1: use ``level="image"`` or ``beta`` closer to 1 (e.g. ``1 - 1/n``).

        An absent class follows the policy of :meth:`pos_weight` (``"skip"``: weight 1, left out of the
        effective-number normalisation). ``max_weight`` clips the result.

        Raises:
            ValueError: with no data yet, for a bad option, or an absent class under ``absent="raise"``.
        """
        mode = look_up_option("mode", mode, cw.CLASS_WEIGHT_MODES)
        beta = cw.check_beta(beta)
        absent, max_weight = cw.check_policy(absent, max_weight)
        counts, total = self._level_counts(level)
        weights, missing = cw.class_weight_array(counts, total, mode, beta)
        return cw.apply_policy(weights, missing, absent=absent, max_weight=max_weight, what="class_weight")

    def _level_counts(self, level: str) -> tuple[np.ndarray, int]:
        level = look_up_option("level", level, LEVELS)
        if self.images == 0 or self.voxels == 0:
            raise ValueError("LabelStats: expected counts from update(), update_labels() or scan_labels(), "
                             "got no data")
        if level == "voxel":
            return np.minimum(self.positives, self.voxels), self.voxels
        return np.minimum(self.images_with, self.images), self.images

    def to_json(self, *, indent: int | None = None) -> str:
        """Serialise the counts to JSON text (floats round-trip exactly); see :meth:`from_json`."""
        return json.dumps(stats_to_dict(self), indent=indent)

    @classmethod
    def from_json(cls, data: str | bytes | os.PathLike[str]) -> LabelStats:
        """Rebuild a :class:`LabelStats` from :meth:`to_json`'s text (``str``/``bytes``) or a file path.

        Raises:
            ValueError: for text that is not a LabelStats JSON document.
        """
        if isinstance(data, os.PathLike):
            data = Path(data).read_text(encoding="utf-8")
        try:
            payload = json.loads(data)
        except (TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"data: expected LabelStats JSON text, got {describe(data)} ({err})") from None
        return stats_from_dict(cls, payload)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelStats):
            return NotImplemented
        return (self.num_classes == other.num_classes and self.voxels == other.voxels
                and self.images == other.images and np.array_equal(self.positives, other.positives)
                and np.array_equal(self.images_with, other.images_with) and self.skipped == other.skipped)

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return (f"LabelStats(num_classes={self.num_classes}, images={self.images}, voxels={self.voxels}, "
                f"positives={self.positives.tolist()}, images_with={self.images_with.tolist()}, "
                f"skipped={len(self.skipped)})")

