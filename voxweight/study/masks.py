"""The study's metrics of two binary masks: Dice, and the surface distances HD95 and surface Dice (by MONAI).

Each takes one volume's masks as numpy arrays (``[H, W]`` or ``[D, H, W]``), distances honour the voxel spacing
and are in mm, and every degenerate case (an empty mask, both empty) has a defined, finite value.
:func:`check_mask`, :func:`check_masks` and :func:`check_probabilities` are the checks the study's other
metrics share.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from voxweight._validate import check_positive_number, check_spacing, describe

__all__ = ["check_mask", "check_masks", "check_probabilities", "dice_score", "hd95", "surface_dice"]


def check_mask(name: str, mask: Any) -> np.ndarray:
    """One mask as a bool array, checked: 2 or 3 axes, bool or numbers 0 and 1 only (``name`` in messages).

    Example:
        >>> check_mask("pred", np.eye(2)).tolist()
        [[True, False], [False, True]]
    """
    m = np.asarray(mask)
    if m.ndim not in (2, 3):
        raise ValueError(f"{name}: expected a 2-D or 3-D mask of one volume, got {describe(m)}")
    if m.dtype != bool and not (np.issubdtype(m.dtype, np.integer) or np.issubdtype(m.dtype, np.floating)):
        raise TypeError(f"{name}: expected a bool mask (or numbers 0 and 1), got {describe(m)}")
    if m.dtype != bool and not np.isin(m, (0, 1)).all():
        raise ValueError(f"{name}: expected a binary mask (values 0 and 1 only), got {describe(m)} with other values")
    return m.astype(bool, copy=False)


def check_masks(pred: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both masks as bool arrays, checked: 2 or 3 axes, the same shape, bool or numbers 0 and 1 only.

    Raises:
        ValueError: for other than 2 or 3 axes, values other than 0 and 1, or different shapes.
        TypeError: for a dtype that is neither bool nor numeric.

    Example:
        >>> [m.dtype.name for m in check_masks(np.zeros((2, 3), np.uint8), np.ones((2, 3), bool))]
        ['bool', 'bool']
    """
    p, t = check_mask("pred", pred), check_mask("truth", truth)
    if p.shape != t.shape:
        raise ValueError(f"truth: expected pred's shape {list(p.shape)}, got {list(t.shape)}")
    return p, t


def check_probabilities(name: str, x: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Probabilities as float64, checked: floating point (float16 too), in [0, 1], 2 or 3 axes or ``shape``.

    Example:
        >>> check_probabilities("prob", np.full((2, 2), 0.5, np.float16)).dtype
        dtype('float64')
    """
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{name}: expected floating-point probabilities, got {describe(a)}")
    if shape is None and a.ndim not in (2, 3):
        raise ValueError(f"{name}: expected a 2-D or 3-D volume, got {describe(a)}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name}: expected the shape {list(shape)}, got {list(a.shape)}")
    a = a.astype(np.float64)
    if (bad := int(np.sum(~((a >= 0) & (a <= 1))))) > 0:
        raise ValueError(f"{name}: expected probabilities in [0, 1], got {bad} value(s) outside it (or NaN)")
    return a


def dice_score(pred: Any, truth: Any) -> float:
    """Dice of two binary masks, ``2 |P & T| / (|P| + |T|)``; 1.0 when both are empty.

    Raises:
        ValueError, TypeError: as :func:`check_masks`.

    Shape:
        - pred, truth: ``[H, W]`` or ``[D, H, W]``, the same.

    Example:
        >>> dice_score(np.array([[1, 1, 0]]), np.array([[1, 0, 0]]))
        0.6666666666666666
    """
    p, t = check_masks(pred, truth)
    total = int(p.sum()) + int(t.sum())
    return 2 * int(np.sum(p & t)) / total if total else 1.0


def _surfaces(pred: Any, truth: Any, spacing: Any) -> tuple[np.ndarray, np.ndarray, tuple[float, ...], Any]:
    """Checked masks and spacing, and MONAI's metrics module (imported here: ``import voxweight`` stays light)."""
    from monai import metrics

    p, t = check_masks(pred, truth)
    return p, t, check_spacing("spacing", spacing, p.ndim), metrics


def _monai(fn: Any, p: np.ndarray, t: np.ndarray, spacing: tuple[float, ...], **options: Any) -> float:
    import torch

    with warnings.catch_warnings():  # MONAI 1.5+ warns that its own call passes a deprecated argument
        warnings.filterwarnings("ignore", category=FutureWarning, module="monai")
        out = fn(*(torch.from_numpy(m[None, None].astype(np.float32)) for m in (p, t)), include_background=True,
                 spacing=list(spacing), **options)
    return float(out.reshape(-1)[0])


def hd95(pred: Any, truth: Any, spacing: float | Sequence[float]) -> float:
    r"""The 95th-percentile symmetric Hausdorff distance between the masks' surfaces, in mm.

    MONAI's ``compute_hausdorff_distance(..., percentile=95, spacing=spacing)``: the surface voxels of a mask are
    those its erosion removes; ``d(A -> B)`` the 95th percentile of the Euclidean distances (in mm) from each
    surface voxel of ``A`` to the nearest of ``B``; ``HD95 = max(d(P -> T), d(T -> P))``. Defined everywhere,
    finite: both masks empty, 0.0; exactly one empty, the volume's diagonal ``sqrt(sum_i (n_i s_i)^2)`` (``n_i``
    voxels of ``s_i`` mm along axis ``i``), a bound no two non-empty masks of the volume can exceed.

    Args:
        pred: binary prediction.
        truth: binary ground truth.
        spacing: voxel size in mm, one number per axis (or one for all).

    Returns:
        The distance in mm, >= 0.

    Raises:
        ValueError, TypeError: for bad masks (:func:`check_masks`) or spacing.

    Shape:
        - pred, truth: ``[H, W]`` or ``[D, H, W]``, the same.

    Example:
        >>> a, b = np.zeros((6, 4, 4), bool), np.zeros((6, 4, 4), bool)
        >>> a[1], b[4] = True, True  # two planes 3 voxels apart along the first axis
        >>> hd95(a, b, (2.0, 1.0, 1.0)), round(hd95(a, np.zeros_like(a), 1.0), 4)  # one empty: sqrt(6^2 + 4^2 + 4^2)
        (6.0, 8.2462)
    """
    p, t, spacing, metrics = _surfaces(pred, truth, spacing)
    if not p.any() or not t.any():
        return math.hypot(*(n * s for n, s in zip(p.shape, spacing, strict=True))) if p.any() or t.any() else 0.0
    return _monai(metrics.compute_hausdorff_distance, p, t, spacing, percentile=95)


def surface_dice(pred: Any, truth: Any, spacing: float | Sequence[float], tolerance_mm: float) -> float:
    r"""The normalised surface Dice: the fraction of both surfaces within ``tolerance_mm`` of the other.

    MONAI's ``compute_surface_dice(..., class_thresholds=[tolerance_mm], spacing=spacing)``: with ``S_P``, ``S_T``
    the surface voxels (as :func:`hd95`) and ``d`` the distance in mm to the other surface,
    ``(|{x in S_P: d(x) <= tol}| + |{y in S_T: d(y) <= tol}|) / (|S_P| + |S_T|)``. Both masks empty: 1.0; exactly
    one empty: 0.0.

    Args:
        pred: binary prediction.
        truth: binary ground truth.
        spacing: voxel size in mm, one number per axis (or one for all).
        tolerance_mm: the distance (mm, >= 0) within which a surface voxel counts as matched.

    Returns:
        The surface Dice in [0, 1].

    Raises:
        ValueError, TypeError: for bad masks, spacing or tolerance, naming the argument.

    Shape:
        - pred, truth: ``[H, W]`` or ``[D, H, W]``, the same.

    Example:
        >>> a, b = np.zeros((6, 4, 4), bool), np.zeros((6, 4, 4), bool)
        >>> a[1], b[4] = True, True  # 6 mm apart
        >>> surface_dice(a, b, (2.0, 1.0, 1.0), 6.0), surface_dice(a, b, (2.0, 1.0, 1.0), 5.9)
        (1.0, 0.0)
    """
    p, t, spacing, metrics = _surfaces(pred, truth, spacing)
    tolerance = check_positive_number("tolerance_mm", tolerance_mm, allow_zero=True)
    if not p.any() or not t.any():
        return float(p.any() == t.any())
    return _monai(metrics.compute_surface_dice, p, t, spacing, class_thresholds=[tolerance])
