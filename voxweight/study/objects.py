r"""The study's metrics of objects and topology: object F1, touching-instance splits, Betti-0 error, clDice.

Every function takes one volume's masks as numpy arrays (``[H, W]`` or ``[D, H, W]``) and counts connected
components with full connectivity (8 in 2-D, 26 in 3-D: ``scipy.ndimage.generate_binary_structure(ndim, ndim)``),
so a thin structure stepping diagonally stays one object. :func:`check_instances` checks an instance map.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import scipy.ndimage as ndi

from voxweight._validate import check_positive_number, describe
from voxweight.study.masks import check_mask, check_masks

__all__ = ["betti0_error", "check_instances", "cldice_metric", "label_components", "object_f1", "touching_split_rate"]


def check_instances(instances: Any, shape: tuple[int, ...]) -> np.ndarray:
    """An instance map checked against the prediction's ``shape``: integers >= 0 (0 the background).

    Raises:
        TypeError: if ``instances`` is not an integer array.
        ValueError: for another shape or a negative id.

    Example:
        >>> check_instances(np.array([[0, 2], [5, 5]]), (2, 2)).tolist()
        [[0, 2], [5, 5]]
    """
    ids = np.asarray(instances)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"instances: expected an integer array of instance ids (0 background), got {describe(ids)}")
    if ids.shape != tuple(shape):
        raise ValueError(f"instances: expected pred's shape {list(shape)}, got {list(ids.shape)}")
    if ids.size and ids.min() < 0:
        raise ValueError(f"instances: expected ids >= 0 (0 background), got {int(ids.min())}")
    return ids


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components of a bool mask with full connectivity: ``(labels, count)``, labels 1..count, 0 outside.

    Example:
        >>> label_components(np.eye(3, dtype=bool))[1]  # a diagonal is one component
        1
    """
    labels, count = ndi.label(mask, structure=ndi.generate_binary_structure(mask.ndim, mask.ndim))
    return labels, int(count)


def _joint_counts(pred: np.ndarray, instances: np.ndarray) -> tuple[np.ndarray, int]:
    """Joint voxel counts of true instances (rows) and predicted components (columns), and the instance count.

    Row 0 is the background, then the ids in increasing order; column 0 is outside the prediction.
    """
    labels, n_comp = label_components(pred)
    ids = np.unique(instances[instances > 0])
    row = np.where(instances > 0, np.searchsorted(ids, instances) + 1, 0)
    flat = np.bincount((row * (n_comp + 1) + labels).ravel(), minlength=(len(ids) + 1) * (n_comp + 1))
    return flat.reshape(len(ids) + 1, n_comp + 1), len(ids)


def object_f1(pred: Any, instances: Any, iou: float = 0.5) -> float:
    r"""F1 of detected objects: predicted components matched one-to-one to true instances by IoU.

    The predicted objects are the connected components of ``pred`` (full connectivity). A pair (object, instance)
    may match when its ``IoU = |O & I| / |O | I|`` exceeds ``iou``; pairs are taken greedily by decreasing IoU,
    each object and instance at most once (for ``iou >= 0.5`` every candidate pair is already unique). With
    ``TP`` the matched pairs, ``FP`` the unmatched objects and ``FN`` the unmatched instances,
    ``F1 = 2 TP / (2 TP + FP + FN)``; 1.0 when there is neither object nor instance.

    Args:
        pred: binary prediction.
        instances: true instance ids, 0 the background; ids need not be consecutive.
        iou: the IoU a match must exceed, in [0, 1).

    Returns:
        F1 in [0, 1].

    Raises:
        ValueError, TypeError: for bad masks, instance maps or ``iou``, naming the argument.

    Shape:
        - pred, instances: ``[H, W]`` or ``[D, H, W]``, the same.

    Example:
        >>> instances = np.zeros((4, 8), int); instances[:, :4] = 1; instances[:, 4:] = 2  # two touching blocks
        >>> object_f1(instances > 0, instances)  # one merged blob, IoU 1/2 with each: no match
        0.0
        >>> pred = instances > 0; pred[:, 4] = False  # kept apart: IoU 1 and 3/4
        >>> object_f1(pred, instances)
        1.0
    """
    p = check_mask("pred", pred)
    ids = check_instances(instances, p.shape)
    if not check_positive_number("iou", iou, allow_zero=True) < 1:
        raise ValueError(f"iou: expected a number in [0, 1), got {iou!r}")
    counts, n_true = _joint_counts(p, ids)
    n_pred = counts.shape[1] - 1
    if n_pred == 0 and n_true == 0:
        return 1.0
    inter = counts[1:, 1:].astype(np.float64)
    union = counts[1:, :].sum(1)[:, None] + counts[:, 1:].sum(0)[None, :] - inter
    scores = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    rows, cols = np.nonzero((scores > iou) & (inter > 0))
    used_t, used_p = set(), set()
    for k in np.argsort(-scores[rows, cols], kind="stable"):
        if rows[k] not in used_t and cols[k] not in used_p:
            used_t.add(rows[k])
            used_p.add(cols[k])
    tp = len(used_t)
    return 2 * tp / (2 * tp + (n_pred - tp) + (n_true - tp))


def _touching_pairs(instances: np.ndarray, gap: int) -> np.ndarray:
    """``[k, 2]`` id pairs ``a < b`` of instances with voxels at most ``gap + 1`` apart on every axis."""
    found = [np.empty((0, 2), dtype=instances.dtype)]
    for offset in itertools.product(range(-gap - 1, gap + 2), repeat=instances.ndim):
        if offset <= (0,) * instances.ndim:  # every neighbour direction once, not also its opposite
            continue
        a = instances[tuple(slice(max(-o, 0), n - max(o, 0)) for o, n in zip(offset, instances.shape, strict=True))]
        b = instances[tuple(slice(max(o, 0), n - max(-o, 0)) for o, n in zip(offset, instances.shape, strict=True))]
        keep = (a != b) & (a > 0) & (b > 0)
        found.append(np.stack([np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])], axis=1))
    return np.unique(np.concatenate(found), axis=0)


def touching_split_rate(pred: Any, instances: Any, *, gap: int = 1) -> float | None:
    r"""The fraction of touching true instances that the prediction keeps apart; None when no two instances touch.

    Two instances touch when a voxel of one lies within ``gap + 1`` voxels of a voxel of the other on every axis:
    in contact (face, edge or corner), or separated by a border of at most ``gap`` voxels, as annotated touching
    objects are (a binary label can only keep them apart with such a border). The pair is
    split when both are detected (some predicted voxel inside each) and the predicted component (full
    connectivity) holding most of ``a``'s predicted voxels is not the one holding most of ``b``'s (ties: the
    lowest component label). ``rate = #split pairs / #touching pairs``: a pair with an undetected instance counts
    as not split. None means "not applicable" (no touching pair): the caller reports it as such, not as 0.

    Args:
        pred: binary prediction.
        instances: true instance ids, 0 the background.
        gap: the widest border (voxels) between two instances that still counts as touching (>= 0).

    Returns:
        The rate in [0, 1], or None.

    Raises:
        ValueError, TypeError: for bad masks or instance maps, naming the argument.

    Shape:
        - pred, instances: ``[H, W]`` or ``[D, H, W]``, the same.

    Example:
        >>> instances = np.zeros((4, 8), int); instances[:, :4] = 1; instances[:, 4:] = 2
        >>> touching_split_rate(instances > 0, instances)  # merged into one blob
        0.0
        >>> pred = instances > 0; pred[:, 4] = False
        >>> touching_split_rate(pred, instances), touching_split_rate(pred, np.eye(4, 8, dtype=int))
        (1.0, None)
    """
    p = check_mask("pred", pred)
    ids = check_instances(instances, p.shape)
    if isinstance(gap, bool) or not isinstance(gap, int | np.integer) or gap < 0:
        raise ValueError(f"gap: expected an int >= 0, got {gap!r}")
    pairs = _touching_pairs(ids, int(gap))
    if len(pairs) == 0:
        return None
    inside = _joint_counts(p, ids)[0][1:, 1:]  # instances x predicted components
    if inside.size == 0:  # nothing predicted: no instance detected, no pair split
        return 0.0
    detected, main = inside.sum(1) > 0, np.argmax(inside, axis=1)
    rows = np.searchsorted(np.unique(ids[ids > 0]), pairs)  # the instances' rows in counts[1:]
    a, b = rows[:, 0], rows[:, 1]
    return float(np.mean(detected[a] & detected[b] & (main[a] != main[b])))


def betti0_error(pred: Any, truth: Any) -> int:
    """``|#components(pred) - #components(truth)|``, full connectivity (26 in 3D, 8 in 2D; see the module).

    Raises:
        ValueError, TypeError: as :func:`~voxweight.study.masks.check_masks`.

    Shape:
        - pred, truth: ``[H, W]`` or ``[D, H, W]``, the same.

    Example:
        >>> truth = np.zeros((3, 7), bool); truth[1] = True
        >>> pred = truth.copy(); pred[1, 3] = False  # the line broken in two
        >>> betti0_error(pred, truth)
        1
    """
    p, t = check_masks(pred, truth)
    return abs(label_components(p)[1] - label_components(t)[1])


def cldice_metric(pred: Any, truth: Any) -> float:
    r"""The clDice metric (Shit et al. 2021): the harmonic mean of topology precision and sensitivity.

    ``T_prec = |S(P) & T| / |S(P)|``, ``T_sens = |S(T) & P| / |S(T)|``, ``clDice = 2 T_prec T_sens / (T_prec +
    T_sens)``, ``S`` scikit-image's ``skeletonize`` (Lee's method in 3D, Zhang's in 2D), or the mask itself where
    the skeleton is empty (thinning removes some solid blocks, a 4^3 cube, entirely). Both masks empty: 1.0; one
    empty, or ``T_prec = T_sens = 0``: 0.0. Symmetric: swapping the masks swaps ``T_prec`` and ``T_sens``.

    Raises:
        ValueError, TypeError: as :func:`~voxweight.study.masks.check_masks`.

    Shape:
        - pred, truth: ``[H, W]`` or ``[D, H, W]``, the same.

    Example:
        >>> truth = np.zeros((5, 10), bool); truth[2] = True  # a line, its own skeleton
        >>> pred = truth.copy(); pred[2, 5:] = False  # half of it: T_prec = 1, T_sens = 1/2
        >>> round(cldice_metric(pred, truth), 6)
        0.666667
    """
    from skimage.morphology import skeletonize

    p, t = check_masks(pred, truth)
    if not p.any() or not t.any():
        return float(p.any() == t.any())
    skel_p, skel_t = (s if (s := skeletonize(m)).any() else m for m in (p, t))
    tprec, tsens = np.sum(skel_p & t) / np.sum(skel_p), np.sum(skel_t & p) / np.sum(skel_t)
    return float(2 * tprec * tsens / (tprec + tsens)) if tprec + tsens > 0 else 0.0
