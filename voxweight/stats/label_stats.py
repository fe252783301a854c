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

from voxweight._validate import check_positive_int, describe
from voxweight.checks import check_range
from voxweight.stats.counting import as_target_tensor, count_labels, count_on_device
from voxweight.stats.distributed import all_reduce_counts, all_reduce_weight_mass
from voxweight.stats.from_pipeline import stats_from_pipeline
from voxweight.stats.level_weights import LEVELS, WeightsFromCounts
from voxweight.stats.serialise import counts_from_json, counts_to_json

__all__ = ["LEVELS", "LabelStats"]


class LabelStats(WeightsFromCounts):
    r"""Exact, mergeable per-class counts of a segmentation (or multi-label) dataset.

    Two levels are counted. Voxel level: ``positives[c]`` is the sum of class ``c``'s target over every
    voxel (float64, so soft targets count fractionally), out of ``voxels`` voxels. Image level:
    ``images_with[c]`` is the sum over images of the maximum of class ``c``'s target in the image (1 when
    the image contains the class, for hard labels), out of ``images`` images. For ``[N, C]`` targets both
    levels agree. Integer counts (label maps, 0/1 targets) are exact whatever the order of updates,
    merges, files or workers; soft counts are float64 sums (the order can move the last bits).

    ``update_labels`` counts an integer label map in which class 0 (usually background) is a class like
    any other, so ``pos_weight()[0]`` is background's own negatives/positives ratio; drop it with
    ``[1:]`` when the network has no background channel. ``pos_weight`` and ``class_weight`` come from
    :class:`~voxweight.stats.level_weights.WeightsFromCounts`.

    ``weight_mass`` is the loss weight per class that :meth:`from_pipeline` sums when the samples carry a
    weight map, else ``None``. :meth:`update` and :meth:`update_labels` leave it as it is (they see no
    weights); :meth:`merge` and :meth:`all_reduce` add it up, :meth:`to_json` keeps it, ``==`` compares it.

    Attributes:
        num_classes: number of classes ``K``, the constructor's argument (int >= 1, else ``TypeError``/``ValueError``).
        positives: ``[K]`` float64, positive voxels per class.
        voxels: total voxels counted (int).
        images: images counted (int).
        images_with: ``[K]`` float64, images containing each class.
        skipped: ``(path, reason)`` for each file :func:`voxweight.scan_labels` could not read.
        weight_mass: ``[K]`` float64 label-weight mass per class (:meth:`from_pipeline`), or ``None``.

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
        self.weight_mass: np.ndarray | None = None

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

        ``weight_mass`` adds up when both have one. When only one has it, the one without must have counted
        no image (its mass is zero, whatever the weights): otherwise the sum would weigh only some of the
        samples it counts, so that raises rather than keep one side's mass.

        Args:
            other: counts of the same classes (another worker, file set or shard).

        Returns:
            ``self``.

        Raises:
            TypeError: if ``other`` is not a :class:`LabelStats`.
            ValueError: if the numbers of classes differ, or one has a ``weight_mass`` and the other has
                none but counted images.
        """
        if not isinstance(other, LabelStats):
            raise TypeError(f"other: expected a LabelStats, got {describe(other)}")
        if other.num_classes != self.num_classes:
            raise ValueError(f"other: expected num_classes={self.num_classes}, got {other.num_classes}")
        mine, theirs = self.weight_mass, other.weight_mass
        if (mine is None) != (theirs is None) and (self if mine is None else other).images:
            raise ValueError(f"other: expected {'no' if mine is None else 'a'} weight_mass, like self, got "
                             f"{'none' if theirs is None else 'one'}; count both with from_pipeline and a weight map")
        if theirs is not None:
            self.weight_mass = theirs.copy() if mine is None else mine + theirs
        self.positives += other.positives
        self.images_with += other.images_with
        self.voxels += other.voxels
        self.images += other.images
        self.skipped += other.skipped
        return self

    def all_reduce(self, group: Any = None) -> LabelStats:
        """Sum the counts over the ranks of a ``torch.distributed`` group, in place.

        A collective (:func:`~voxweight.stats.distributed.all_reduce_counts`): every rank calls it with the
        same ``num_classes`` and then holds the dataset's totals and the skipped files of all ranks;
        ``weight_mass`` is summed too (:func:`~voxweight.stats.distributed.all_reduce_weight_mass`).

        Args:
            group: the process group (``None``: the default group).

        Returns:
            ``self``.

        Raises:
            RuntimeError: if no process group is initialised.
            ValueError: on every rank, if ranks disagree on ``num_classes``, or some have a ``weight_mass``
                and others, which counted images, have none.
        """
        counts = all_reduce_counts(self.num_classes, self.voxels, self.images, self.positives, self.images_with,
                                   self.skipped, group)
        self.weight_mass = all_reduce_weight_mass(self.num_classes, self.images, self.weight_mass, group)
        self.voxels, self.images, self.positives, self.images_with, self.skipped = counts
        return self

    def to_json(self, *, indent: int | None = None) -> str:
        """Serialise the counts to JSON text (floats round-trip exactly); see :meth:`from_json`.

        Args:
            indent: passed to :func:`json.dumps` (``None``: one line).

        Returns:
            The JSON document (format ``"voxweight.LabelStats"``; version 2 with a ``weight_mass``, else 1).
        """
        return counts_to_json(self.num_classes, self.images, self.voxels, self.positives, self.images_with,
                              self.skipped, indent=indent, weight_mass=self.weight_mass)

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
        stats.weight_mass = fields["weight_mass"]  # None in a document without one (version 1)
        return stats

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelStats):
            return NotImplemented
        return (self.num_classes == other.num_classes and self.voxels == other.voxels
                and self.images == other.images and np.array_equal(self.positives, other.positives)
                and np.array_equal(self.images_with, other.images_with) and self.skipped == other.skipped
                and (self.weight_mass is None) == (other.weight_mass is None)
                and (self.weight_mass is None or np.array_equal(self.weight_mass, other.weight_mass)))

    __hash__ = None  # mutable
    from_pipeline = classmethod(stats_from_pipeline)  # LabelStats.from_pipeline(pipeline, items, *, label_key, ...)

    def __repr__(self) -> str:
        mass = "" if self.weight_mass is None else f", weight_mass={self.weight_mass.tolist()}"
        return (f"LabelStats(num_classes={self.num_classes}, images={self.images}, voxels={self.voxels}, "
                f"positives={self.positives.tolist()}, images_with={self.images_with.tolist()}, "
                f"skipped={len(self.skipped)}{mass})")
