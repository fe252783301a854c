r"""Streaming label statistics -> ``pos_weight`` and class weights (pure numpy/torch, no MONAI).

:class:`LabelStats` counts, per class, the positive voxels and the images that contain the class, one
batch or one label map at a time, so a dataset far larger than memory is summarised exactly; counts from
workers, files or ranks merge by addition (:mod:`~voxweight.stats.distributed` across ranks).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from voxweight._validate import check_positive_int, describe, look_up_option
from voxweight.checks import check_range
from voxweight.stats import weights as cw
from voxweight.stats.counting import as_target_tensor, count_labels, count_on_device
from voxweight.stats.distributed import all_reduce_counts
from voxweight.stats.from_pipeline import stats_from_pipeline
from voxweight.stats.serialise import counts_from_json, counts_to_json

__all__ = ["LEVELS", "LabelStats"]

LEVELS = ("voxel", "image")


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
        num_classes: number of classes ``K``, the constructor's argument (int >= 1, else ``TypeError``/``ValueError``).
        positives: ``[K]`` float64, positive voxels per class.
        voxels: total voxels counted (int).
        images: images counted (int).
        images_with: ``[K]`` float64, images containing each class.
        skipped: ``(path, reason)`` for each file :func:`voxweight.scan_labels` could not read.

    Example:
        >>> from voxweight.stats import LabelStats
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
        self.num_classes: int = check_positive_int("num_classes", num_classes, expected="a positive int")
        self.positives = np.zeros(self.num_classes, dtype=np.float64)
        self.images_with = np.zeros(self.num_classes, dtype=np.float64)
        self.voxels = self.images = 0
        self.skipped: list[tuple[str, str]] = []

    def update(self, target: torch.Tensor | np.ndarray) -> None:
        """Count a batch of multi-hot or soft targets (on any device).

        Args:
            target: one channel per class, values in [0, 1]; each of the ``N`` images counts once.

        Raises:
            TypeError: for a non-array or complex target.
            ValueError: for a channel axis other than ``K``, an image without voxels, or values outside
                [0, 1] (a value check, see :func:`voxweight.set_value_checks`).

        Shape:
            - target: ``[N, K, *spatial]`` or ``[N, K]``.
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
        """Count one integer label map as one image (a CUDA tensor is counted on its device).

        Args:
            label_map: class indices in ``[0, K-1]``.

        Raises:
            TypeError: for a non-array or a non-integer dtype.
            ValueError: for an empty map or a value outside ``[0, K-1]``.

        Shape:
            - label_map: ``[*spatial]`` or ``[1, *spatial]``.
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
        self.add_counts(counts)

    def add_counts(self, counts: np.ndarray) -> None:
        """Add one image's per-class voxel counts, as counted by :meth:`update_labels` (not validated here).

        Args:
            counts: int64 voxel counts per class.

        Shape:
            - counts: ``[K]``.

        Example:
            >>> stats = LabelStats(3)
            >>> stats.add_counts(np.array([5, 0, 2]))
            >>> stats.positives, stats.images_with, stats.voxels, stats.images
            (array([5., 0., 2.]), array([1., 0., 1.]), 7, 1)
        """
        self.positives += counts
        self.images_with += counts > 0
        self.voxels += int(counts.sum())
        self.images += 1

    def merge(self, other: LabelStats) -> LabelStats:
        """Add ``other``'s counts (and skipped files) to these, in place.

        Args:
            other: counts of the same classes (another worker, file set or shard).

        Returns:
            ``self``.

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
        """Sum the counts over the ranks of a ``torch.distributed`` group, in place.

        A collective (:func:`~voxweight.stats.distributed.all_reduce_counts`): every rank calls it with the
        same ``num_classes`` and then holds the dataset's totals and the skipped files of all ranks.

        Args:
            group: the process group (``None``: the default group).

        Returns:
            ``self``.

        Raises:
            RuntimeError: if no process group is initialised.
            ValueError: on every rank, if ranks disagree on ``num_classes``.
        """
        self.voxels, self.images, self.positives, self.images_with, self.skipped = all_reduce_counts(
            self.num_classes, self.voxels, self.images, self.positives, self.images_with, self.skipped, group)
        return self

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

    def to_json(self, *, indent: int | None = None) -> str:
        """Serialise the counts to JSON text (floats round-trip exactly); see :meth:`from_json`.

        Args:
            indent: passed to :func:`json.dumps` (``None``: one line).

        Returns:
            The JSON document (format ``"voxweight.LabelStats"``, version 1).
        """
        return counts_to_json(self.num_classes, self.images, self.voxels, self.positives, self.images_with,
                              self.skipped, indent=indent)

    @classmethod
    def from_json(cls, data: str | bytes | os.PathLike[str]) -> LabelStats:
        """Rebuild a :class:`LabelStats` from :meth:`to_json`'s text (``str``/``bytes``) or a file path.

        Args:
            data: the JSON text, or the path of a file holding it.

        Returns:
            The counts, equal (``==``) to those serialised.

        Raises:
            TypeError: for a ``num_classes`` in the document that is not an int.
            ValueError: for text that is not a LabelStats JSON document.
        """
        fields = counts_from_json(data)
        stats = cls(fields["num_classes"])
        stats.images, stats.voxels, stats.skipped = fields["images"], fields["voxels"], fields["skipped"]
        stats.positives, stats.images_with = fields["positives"], fields["images_with"]
        return stats

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelStats):
            return NotImplemented
        return (self.num_classes == other.num_classes and self.voxels == other.voxels
                and self.images == other.images and np.array_equal(self.positives, other.positives)
                and np.array_equal(self.images_with, other.images_with) and self.skipped == other.skipped)

    __hash__ = None  # mutable
    weight_mass: np.ndarray | None = None  # [K] float64 loss weight per class (from_pipeline); not merged, not JSON
    from_pipeline = classmethod(stats_from_pipeline)  # LabelStats.from_pipeline(pipeline, items, *, label_key, ...)

    def __repr__(self) -> str:
        return (f"LabelStats(num_classes={self.num_classes}, images={self.images}, voxels={self.voxels}, "
                f"positives={self.positives.tolist()}, images_with={self.images_with.tolist()}, "
                f"skipped={len(self.skipped)})")
