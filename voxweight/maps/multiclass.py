"""Class-balance weight maps for integer multi-class labels (numpy or torch, no MONAI).

The multi-class twin of :func:`voxweight.class_balance_weights`: a label of class indices
``0 .. K-1`` becomes one float32 map in which each voxel carries its class's weight. Boundary maps
for multi-class labels are :func:`voxweight.boundary_weights` with ``multiclass=True``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from voxweight.checks import check_nonnegative, check_positive_number, check_range, describe, look_up_option
from voxweight.losses.align import as_weight_tensor
from voxweight.maps.boundary import Label, _check_label

__all__ = ["MULTICLASS_BALANCE_MODES", "multiclass_balance_weights"]

MULTICLASS_BALANCE_MODES = ("balanced", "inverse_frequency", "sqrt_inverse")


def multiclass_balance_weights(label: Label, *, num_classes: int | None = None, mode: str = "balanced",
                               class_weight: Any = None, max_weight: float | None = None,
                               spatial_dims: int = 3) -> Label:
    """Per-class balance weight map ``w(x) = a[label(x)]`` for integer class indices ``0 .. K-1``.

    With ``class_weight`` given, ``a`` is that fixed vector (one value per class, e.g. from dataset
    statistics). Otherwise ``a`` comes from each volume's own class frequencies ``f_c = n_c / V``
    (``n_c`` voxels of class ``c`` among the ``V`` spatial voxels), per leading index:

    * ``"balanced"``: ``a_c = 1 / (K_present f_c)``, ``K_present`` the number of classes present in the
      volume, so the mean weight over the volume is 1 (scikit-learn's "balanced"; with ``K = 2`` it is
      :func:`voxweight.class_balance_weights`'s ``0.5 / f``);
    * ``"inverse_frequency"``: ``a_c = 1 / f_c``;
    * ``"sqrt_inverse"``: ``a_c = 1 / sqrt(f_c)``.

    Classes absent from a volume carry no voxels and do not count in ``K_present``; a volume holding one
    class only gets weights of 1 (``"balanced"``, ``"inverse_frequency"``, ``"sqrt_inverse"`` alike).
    ``max_weight`` clips ``a`` from above.

    For a tensor everything runs in torch on its device. With ``num_classes`` (or ``class_weight``)
    given there is no host-device synchronisation: counts use ``scatter_add_`` into ``[*, K]`` and
    the range check of ``label`` follows :func:`voxweight.set_value_checks` (queued on CUDA). With
    neither, ``K = label.max() + 1`` is read back to the host (one synchronisation per call).
    With value checks off, indices outside ``[0, K)`` are clamped into it instead of raising.

    Args:
        label: integer (or bool) class indices, ndarray or tensor.
        num_classes: ``K``, an integer >= 1; default ``len(class_weight)``, else ``label.max() + 1``.
        mode: ``"balanced"``, ``"inverse_frequency"`` or ``"sqrt_inverse"`` (when ``class_weight`` is None).
        class_weight: fixed per-class weights ``[K]`` (sequence, ndarray or tensor), >= 0; or None.
        max_weight: upper bound of the class weights (> 0), or None.
        spatial_dims: number of trailing spatial axes of ``label``.

    Returns:
        float32 weights, ``label``'s shape, type (ndarray or tensor) and device.

    Raises:
        TypeError: for a label that is not an ndarray/tensor of integer or bool dtype (float labels
            included: cast them), a non-integer ``num_classes``, or non-numeric weights.
        ValueError: for ``label.ndim < spatial_dims``, class indices outside ``[0, K)``, ``num_classes < 1``,
            ``class_weight`` that is not 1-D with ``K`` values or has negative values, ``max_weight <= 0``,
            or an unknown ``mode``.

    Shape:
        - label: ``[..., *spatial]`` with ``spatial_dims`` spatial axes, e.g. ``[N, D, H, W]``.
        - output: the same.

    Example:
        >>> multiclass_balance_weights(np.array([0, 0, 0, 0, 1, 1, 2, 2]), num_classes=3, spatial_dims=1)
        array([0.6666667, 0.6666667, 0.6666667, 0.6666667, 1.3333334, 1.3333334,
               1.3333334, 1.3333334], dtype=float32)
    """
    _check_label(label, spatial_dims)
    mode = look_up_option("mode", mode, MULTICLASS_BALANCE_MODES)
    idx = _class_indices(label)
    table = _fixed_weights(class_weight, idx.device)
    k = _num_classes(num_classes, table, idx)
    if max_weight is not None:
        max_weight = check_positive_number("max_weight", max_weight)
    check_range("label", idx, 0, k - 1, f"class indices in [0, {k - 1}] (num_classes={k})")
    lead = math.prod(idx.shape[:idx.ndim - spatial_dims])
    flat = idx.reshape(lead, math.prod(idx.shape[idx.ndim - spatial_dims:])).clamp(0, k - 1)
    table = _frequency_weights(flat, k, mode) if table is None else table.expand(lead, k)
    if max_weight is not None:
        table = table.clamp(max=max_weight)
    w = torch.gather(table, 1, flat).reshape(idx.shape)
    return w.numpy() if isinstance(label, np.ndarray) else w


def _class_indices(label: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``label`` as an int64 tensor on its device (a copy for ndarrays); float and complex dtypes raise."""
    integer = label.dtype.kind in "biu" if isinstance(label, np.ndarray) else not (
        label.is_floating_point() or label.is_complex())
    if not integer:
        raise TypeError(f"label: expected integer class indices (or bool), got dtype {label.dtype}; "
                        f"cast a float label that holds class indices with .long() / .astype(int)")
    if isinstance(label, np.ndarray):
        return torch.from_numpy(label.astype(np.int64))
    t = label.detach()
    return (t if type(t) is torch.Tensor else t.as_subclass(torch.Tensor)).to(torch.int64)


def _fixed_weights(class_weight: Any, device: torch.device) -> torch.Tensor | None:
    """``class_weight`` as a float32 ``[1, K]`` tensor on ``device`` (checked: 1-D, >= 0), or None."""
    table = as_weight_tensor("class_weight", class_weight, like=torch.empty(0, device=device))
    if table is None:
        return None
    if table.ndim != 1 or table.shape[0] < 1:
        raise ValueError(f"class_weight: expected a 1-D sequence with one weight per class, got {describe(table)}")
    check_nonnegative("class_weight", table)
    return table.reshape(1, -1)


def _num_classes(num_classes: Any, table: torch.Tensor | None, idx: torch.Tensor) -> int:
    """``K`` from ``num_classes``, else from ``class_weight``, else ``idx.max() + 1`` (a host sync)."""
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
            raise TypeError(f"num_classes: expected an integer >= 1 or None, got {describe(num_classes)}")
        if num_classes < 1:
            raise ValueError(f"num_classes: expected an integer >= 1 or None, got {num_classes}")
        if table is not None and table.shape[1] != num_classes:
            raise ValueError(f"class_weight: expected num_classes={num_classes} values, got {table.shape[1]}")
        return int(num_classes)
    if table is not None:
        return table.shape[1]
    return max(int(idx.max()) + 1, 1) if idx.numel() else 1


def _frequency_weights(flat: torch.Tensor, k: int, mode: str) -> torch.Tensor:
    """Per-volume class weights ``[B, K]`` (float32) from the class counts of ``flat`` ``[B, V]``."""
    counts = torch.zeros(flat.shape[0], k, dtype=torch.int64, device=flat.device)
    counts.scatter_add_(1, flat, torch.ones(1, 1, dtype=torch.int64, device=flat.device).expand_as(flat))
    present = counts > 0
    inverse = flat.shape[1] / torch.where(present, counts, 1).double()  # 1 / f_c
    if mode == "balanced":
        a = inverse / present.sum(dim=1, keepdim=True).clamp(min=1)
    elif mode == "inverse_frequency":
        a = inverse
    else:
        a = inverse.sqrt()
    return torch.where(present, a, 1.0).float()
