r"""What the loss actually sees: the expected label counts inside training crops, exactly (no sampling).

:func:`crop_prevalence` models MONAI's ``RandCropByPosNegLabeld`` (after the pipelines' ``SpatialPadd``) or
nnU-Net's foreground oversampling, one volume at a time with box sums (:mod:`voxweight.stats.crop_counts`),
and returns a :class:`~voxweight.LabelStats` of the crops; :func:`format_prevalence` sets it beside the
dataset's own counts (:func:`voxweight.scan_labels`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from voxweight._validate import check_positive_int, check_positive_number, check_spacing, describe
from voxweight.stats.counting import value_range
from voxweight.stats.crop_counts import crop_expectations, monai_crop_expectations
from voxweight.stats.crop_windows import nnunet_start_weights
from voxweight.stats.files import list_label_files
from voxweight.stats.label_stats import LabelStats
from voxweight.stats.nifti import read_label_volume

__all__ = ["crop_prevalence", "format_prevalence"]

Volume = tuple[str, np.ndarray, "tuple[float, ...] | None"]


def crop_prevalence(labels: Any, *, roi_size: int | Sequence[int], pos: float = 1.0, neg: float = 1.0,
                    num_classes: int | None = None, oversample_foreground: float | None = None,
                    spacing: float | Sequence[float] | None = None) -> LabelStats:
    r"""The exact expected per-class voxel counts inside the training crops of a dataset of label maps.

    Each volume gives the same number of crops (volumes weigh equally, whatever their size). MONAI mode
    (``oversample_foreground=None``), as ``SpatialPadd(roi_size)`` then ``RandCropByPosNegLabeld``: a volume
    smaller than ``roi_size`` on an axis is padded with background (class 0) to ``roi_size``; the crop's
    centre is a uniform foreground voxel (label != 0) with probability ``pos / (pos + neg)``, else a uniform
    background voxel (padding included; with no foreground MONAI samples only background, with no background
    only foreground), then moved so the crop lies inside: start ``= clip(c - s // 2, 0, L - s)`` per axis.
    nnU-Net mode (``oversample_foreground=f``, ``get_bbox`` without augmentation margin): a fraction ``f``
    of the crops is forced to contain foreground (a uniformly chosen foreground class present in the
    volume, then a uniform voxel of it, as centre; the crop may leave the volume above, which counts as
    background), the others are uniform over the valid crops. nnU-Net's default batch rule forces the last
    ``B - round(B (1 - p))`` of each batch of ``B``: pass that fraction (0.5 for ``p = 0.33``, ``B = 2``).

    With ``W(t)`` the probability of the crop starting at ``t`` and ``C_k(t)`` its voxels of class ``k``,
    a volume's expected crop counts are :math:`E_k = \sum_t W(t) C_k(t)`, computed as the label's counts
    weighted by a box filter of ``W``. The result holds, summed over the ``V`` volumes: ``positives[k] =
    sum E_k`` (float64), ``voxels = V * prod(roi_size)``, ``images = V`` and ``images_with[k]`` the expected
    number of crops containing class ``k``: one crop's worth per volume, so ``pos_weight()`` and
    ``class_weight()`` are the weights that balance the crops the loss sees.

    Args:
        labels: label files (a file, a directory of ``.nii``/``.nii.gz``, or a sequence of them, as for
            :func:`voxweight.scan_labels`; each read whole by :func:`voxweight.stats.nifti.read_label_volume`), or label
            maps in memory (an ndarray/tensor, or a sequence of them; ``[1, *spatial]`` is one channel).
        roi_size: crop size in voxels per spatial axis (an int for every axis).
        pos: MONAI's ``pos`` (>= 0).
        neg: MONAI's ``neg`` (>= 0, not both 0).
        num_classes: ``K``; ``None`` infers the largest label + 1.
        oversample_foreground: nnU-Net's fraction of forced-foreground crops, in [0, 1] (``None``: MONAI).
        spacing: ``None``: ``roi_size`` counts the volumes' own voxels. Else the voxel spacing (mm) of the
            grid ``roi_size`` is counted on (the pipelines' ``pixdim``): a volume of voxel size ``p`` (its
            NIfTI header, a ``MetaTensor``'s ``pixdim``, else ``spacing`` itself) is cropped to
            ``max(1, round(roi_size * spacing / p))`` of its voxels and its counts scaled to
            ``prod(roi_size)`` voxels: resampling then cropping, up to the interpolation.

    Returns:
        The crops' :class:`~voxweight.LabelStats`.

    Raises:
        TypeError: for a bad argument type.
        ValueError: for a bad ``roi_size`` (length, values < 1), ``pos``/``neg`` < 0 or both 0,
            ``oversample_foreground`` outside [0, 1] or given with ``pos``/``neg`` other than 1, a bad
            ``spacing``, or labels that are not class indices in ``[0, K)`` (named), and unreadable files.

    Shape:
        - each volume: ``[X, Y]`` or ``[X, Y, Z]`` (``len(roi_size)`` axes).
        - result counts: ``[K]``.

    Example:
        >>> from voxweight.stats.prevalence import crop_prevalence
        >>> label = np.zeros((8, 8), dtype=np.uint8)
        >>> label[0, 0] = 1  # one foreground voxel in a corner
        >>> crops = crop_prevalence([label], roi_size=4)  # 1/2 centred on it, 1/2 * 8/63 near it
        >>> crops.positives.round(4), crops.voxels, crops.images
        (array([15.4365,  0.5635]), 16, 1)
        >>> crop_prevalence([label], roi_size=4, oversample_foreground=0.0).positives  # 1 of 25 crops
        array([15.96,  0.04])
    """
    size, forced, pos_ratio = _check_options(roi_size, pos, neg, oversample_foreground)
    if num_classes is not None:
        num_classes = check_positive_int("num_classes", num_classes, expected="a positive int")
    totals: list[tuple[np.ndarray, np.ndarray]] = []
    for name, array, pixdim in _volumes(labels):
        label, roi, scale, top = _prepare(name, array, pixdim, size, spacing, num_classes)
        k = num_classes if num_classes is not None else top + 1
        if forced is None:
            counts, presence = monai_crop_expectations(_pad_to(label, roi), roi, pos_ratio, top, k)
        else:
            padded, weights = nnunet_start_weights(label, roi, forced)
            counts, presence = crop_expectations(padded, weights, roi, top, k)
        totals.append((counts * scale, presence, math.prod(roi) * scale))
    return _assemble(totals, num_classes)


def _check_options(roi_size: Any, pos: Any, neg: Any, oversample: Any
                   ) -> tuple[int | tuple[int, ...], float | None, float]:
    """``(roi, forced fraction or None, pos ratio)``, every argument checked and named."""
    if isinstance(roi_size, int | np.integer) and not isinstance(roi_size, bool):
        size: int | tuple[int, ...] = check_positive_int("roi_size", roi_size, expected="crop sizes >= 1")
    elif isinstance(roi_size, Sequence | np.ndarray | torch.Tensor) and not isinstance(roi_size, str):
        values = list(roi_size.tolist() if isinstance(roi_size, np.ndarray | torch.Tensor) else roi_size)
        if len(values) not in (2, 3):
            raise ValueError(f"roi_size: expected 2 or 3 crop sizes (one per spatial axis), got {values}")
        size = tuple(check_positive_int(f"roi_size[{i}]", v, expected="a crop size >= 1")
                     for i, v in enumerate(values))
    else:
        raise TypeError(f"roi_size: expected an int or a sequence of ints, got {describe(roi_size)}")
    pos = check_positive_number("pos", pos, allow_zero=True)
    neg = check_positive_number("neg", neg, allow_zero=True)
    if pos + neg == 0:
        raise ValueError("pos, neg: expected at least one of them > 0, got pos=0 and neg=0")
    if oversample is None:
        return size, None, pos / (pos + neg)
    forced = check_positive_number("oversample_foreground", oversample, allow_zero=True)
    if forced > 1:
        raise ValueError(f"oversample_foreground: expected a fraction in [0, 1], got {forced!r}")
    if (pos, neg) != (1.0, 1.0):
        raise ValueError(f"oversample_foreground: expected pos and neg left at 1 (they are MONAI's options, "
                         f"oversample_foreground is nnU-Net's), got pos={pos:g}, neg={neg:g}")
    return size, forced, 0.5


def _volumes(labels: Any) -> Iterator[Volume]:
    """``(name, array, pixdim)`` per volume: files are listed first, then read one at a time."""
    if isinstance(labels, (str | os.PathLike, np.ndarray | torch.Tensor)):
        labels = [labels]
    if not isinstance(labels, Iterable):
        raise TypeError(f"labels: expected label files or label maps (ndarray/tensor), got {describe(labels)}")
    items = list(labels)
    if not items:
        raise ValueError("labels: expected at least one label file or label map, got an empty sequence")
    if all(isinstance(item, str | os.PathLike) for item in items):
        for path in list_label_files(items):
            array, image = read_label_volume(path)
            yield path, array, tuple(float(z) for z in image.header.get_zooms()[:array.ndim])
        return
    for i, item in enumerate(items):
        if not isinstance(item, np.ndarray | torch.Tensor):
            raise TypeError(f"labels[{i}]: expected a label map (ndarray or tensor) like the others, "
                            f"got {describe(item)}")
        pixdim = getattr(item, "pixdim", None)  # a MONAI MetaTensor
        array = item.detach().cpu().numpy() if isinstance(item, torch.Tensor) else item
        yield f"labels[{i}]", array, None if pixdim is None else tuple(float(p) for p in np.asarray(pixdim))


def _prepare(name: str, array: np.ndarray, pixdim: tuple[float, ...] | None, size: int | tuple[int, ...],
             spacing: Any, num_classes: int | None) -> tuple[np.ndarray, tuple[int, ...], float, int]:
    """The checked label, its crop size in its own voxels, the factor to ``prod(roi_size)`` voxels, the top label."""
    ndim = len(size) if isinstance(size, tuple) else array.ndim - (array.ndim == 4 and array.shape[0] == 1)
    if array.ndim == ndim + 1 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != ndim or ndim not in (2, 3):
        raise ValueError(f"roi_size: expected one crop size per spatial axis of {name} (2D or 3D), got "
                         f"{size} for shape {list(array.shape)}")
    if array.size == 0:
        raise ValueError(f"{name}: expected at least one voxel, got shape {list(array.shape)}")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected integer class indices, got dtype {array.dtype}")
    lo, hi = (0.0, float(array.max())) if array.dtype.kind in "bu" else value_range(array, name)  # unsigned: >= 0
    if lo < 0 or (num_classes is not None and hi >= num_classes):
        top = "" if num_classes is None else f" and < num_classes={num_classes}"
        raise ValueError(f"{name}: expected class indices >= 0{top}, got values in [{lo:g}, {hi:g}]")
    label = array.view(np.uint8) if array.dtype.kind == "b" else array
    if label.dtype.kind == "f" or label.dtype.itemsize > 4:
        label = label.astype(np.int64)
    roi = size if isinstance(size, tuple) else (size,) * ndim
    if spacing is None:
        return label, roi, 1.0, int(hi)
    target = check_spacing("spacing", spacing, ndim)
    own = target if pixdim is None else tuple(pixdim[:ndim])
    native = tuple(max(1, round(r * t / p)) for r, t, p in zip(roi, target, own, strict=True))
    return label, native, math.prod(roi) / math.prod(native), int(hi)


def _pad_to(label: np.ndarray, roi: tuple[int, ...]) -> np.ndarray:
    """``SpatialPadd``: background up to ``roi`` on every smaller axis (where does not matter: the crop is whole)."""
    pad = [max(0, s - n) for n, s in zip(label.shape, roi, strict=True)]
    return label if not any(pad) else np.pad(label, [(p // 2, p - p // 2) for p in pad])


def _assemble(totals: list[tuple[np.ndarray, np.ndarray, float]], num_classes: int | None) -> LabelStats:
    """Sum the volumes' expectations (padded to ``K``) into a :class:`LabelStats` of one crop per volume."""
    k = num_classes if num_classes is not None else max(c.size for c, _, _ in totals)
    stats = LabelStats(k)
    for counts, presence, _ in totals:
        stats.positives += np.pad(counts, (0, k - counts.size))
        stats.images_with += np.pad(presence, (0, k - presence.size))
    stats.images = len(totals)
    stats.voxels = round(sum(v for _, _, v in totals))  # prod(roi_size) per crop: whole numbers
    return stats


def format_prevalence(dataset: LabelStats, crops: LabelStats) -> str:
    """A text table of the dataset's and the crops' prevalence per class, with the weights each implies.

    ``pos_weight`` and ``class_weight`` (``"balanced"``) are at voxel level; a class absent from one of
    them shows weight 1 there (``absent="skip"``).

    Args:
        dataset: the dataset's counts (:func:`voxweight.scan_labels`).
        crops: the crops' counts (:func:`crop_prevalence`), for the same classes.

    Returns:
        The table, one line per class after a header line.

    Raises:
        TypeError: for an argument that is not a :class:`LabelStats`.
        ValueError: for different numbers of classes or counts without data.

    Example:
        >>> from voxweight.stats import LabelStats
        >>> data, crop = LabelStats(2), LabelStats(2)
        >>> data.add_counts(np.array([99, 1])); crop.add_counts(np.array([3, 1]))
        >>> print(format_prevalence(data, crop))
        class  dataset prevalence  crop prevalence  pos_weight dataset / crops  class_weight dataset / crops
            0            0.990000         0.750000         0.0101 /     0.3333          0.5051 /     0.6667
            1            0.010000         0.250000        99.0000 /     3.0000         50.0000 /     2.0000
    """
    for name, stats in (("dataset", dataset), ("crops", crops)):
        if not isinstance(stats, LabelStats):
            raise TypeError(f"{name}: expected a LabelStats, got {describe(stats)}")
    if crops.num_classes != dataset.num_classes:
        raise ValueError(f"crops: expected num_classes={dataset.num_classes} (the dataset's), "
                         f"got {crops.num_classes}")
    rows = ["class  dataset prevalence  crop prevalence  pos_weight dataset / crops  class_weight dataset / crops"]
    fractions = [s.positives / max(s.voxels, 1) for s in (dataset, crops)]
    pos = [s.pos_weight(absent="skip").tolist() for s in (dataset, crops)]
    cls = [s.class_weight("balanced", absent="skip").tolist() for s in (dataset, crops)]
    for c in range(dataset.num_classes):
        rows.append(f"{c:5d}  {fractions[0][c]:18.6f}  {fractions[1][c]:15.6f}  {pos[0][c]:13.4f} / "
                    f"{pos[1][c]:10.4f}  {cls[0][c]:14.4f} / {cls[1][c]:10.4f}")
    return "\n".join(rows)
