"""Class-balance weight maps: foreground/background for binary labels, per class for class indices.

:func:`class_balance_weights` gives ``w = bg + (fg - bg) * t`` for binary or soft labels,
:func:`multiclass_balance_weights` gives ``w(x) = a[label(x)]`` for integer class indices; both take the
weights from each volume's own frequencies unless they are given. :func:`balance_factors` and
:func:`balance_map` are the pure-torch core that the losses use too (``balance=`` in the BCE): any
device, no host-device synchronisation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from voxweight._validate import (
    as_weight_tensor,
    check_positive_int,
    check_positive_number,
    describe,
    look_up_option,
)
from voxweight.checks import check_nonnegative, check_range
from voxweight.maps.labels import MAX_WEIGHT, Label, check_label, check_weight, class_index_tensor, float_tensor

__all__ = [
    "BALANCE_MODES",
    "MULTICLASS_BALANCE_MODES",
    "balance_factors",
    "balance_map",
    "class_balance_weights",
    "multiclass_balance_weights",
]

BALANCE_MODES = ("balanced", "inverse_frequency", "sqrt_inverse")
MULTICLASS_BALANCE_MODES = BALANCE_MODES  # the same modes, by their multi-class name


def balance_factors(fraction: torch.Tensor, mode: str, max_weight: float | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground and background weights for a foreground fraction ``f`` (elementwise, no host sync).

    ``"balanced"``: ``0.5 / f`` and ``0.5 / (1 - f)`` (the mean weight over the volume is 1, as in
    scikit-learn's "balanced"); ``"inverse_frequency"``: ``1 / f`` and ``1 / (1 - f)``;
    ``"sqrt_inverse"``: ``1 / sqrt(f)`` and ``1 / sqrt(1 - f)``. Where ``f`` is 0 or 1 (no foreground,
    or no background) both weights are 1. ``max_weight`` clips both from above, and so does
    ``MAX_WEIGHT`` (1e12) always, so that a tiny soft fraction gives a finite weight, never ``inf``.

    Shape:
        - fraction: any shape; outputs: the same.

    Example:
        >>> balance_factors(torch.tensor([0.2, 0.0]), "balanced")
        (tensor([2.5000, 1.0000]), tensor([0.6250, 1.0000]))
    """
    defined = (fraction > 0) & (fraction < 1)
    f = torch.where(defined, fraction, torch.full_like(fraction, 0.5))
    if mode == "balanced":
        fg, bg = 0.5 / f, 0.5 / (1 - f)
    elif mode == "inverse_frequency":
        fg, bg = 1 / f, 1 / (1 - f)
    else:
        fg, bg = torch.rsqrt(f), torch.rsqrt(1 - f)
    one = torch.ones_like(f)
    fg, bg = torch.where(defined, fg, one), torch.where(defined, bg, one)
    cap = MAX_WEIGHT if max_weight is None else min(max_weight, MAX_WEIGHT)
    if f.is_floating_point():  # float16 cannot hold 1e12: its largest finite value is the cap there
        cap = min(cap, torch.finfo(f.dtype).max)
    return fg.clamp(max=cap), bg.clamp(max=cap)


def balance_map(target: torch.Tensor, mode: str, max_weight: float | None = None,
                spatial_dims: int | None = None) -> torch.Tensor:
    """``bg + (fg - bg) * t`` with fg/bg from the foreground fraction over the last ``spatial_dims`` axes.

    ``spatial_dims`` defaults to every axis after ``[N, C]``; each leading index gets its own fg/bg.

    Shape:
        - target: ``[..., *spatial]``, values in [0, 1]; output: the same.

    Example:
        >>> balance_map(torch.tensor([[[0.0, 0.0, 0.0, 1.0]]]), "balanced")
        tensor([[[0.6667, 0.6667, 0.6667, 2.0000]]])
    """
    spatial_dims = target.ndim - 2 if spatial_dims is None else spatial_dims
    fraction = target.mean(dim=tuple(range(target.ndim - spatial_dims, target.ndim)), keepdim=True)
    fg, bg = balance_factors(fraction, mode, max_weight)
    return torch.addcmul(bg, fg - bg, target)


def class_balance_weights(label: Label, *, fg_weight: float | None = None, bg_weight: float | None = None,
                          mode: str = "balanced", max_weight: float | None = None, spatial_dims: int = 3) -> Label:
    """Foreground/background class-balance weight map ``w = bg + (fg - bg) * t``.

    With ``fg_weight`` and/or ``bg_weight`` given (e.g. from dataset statistics), those are ``fg`` and
    ``bg`` (a missing one is 1). Otherwise they come from each volume's own foreground fraction
    ``f = mean(t)`` over the spatial axes, per leading index:

    * ``"balanced"``: ``fg = 0.5 / f``, ``bg = 0.5 / (1 - f)``: the mean weight of a binary volume is 1
      (scikit-learn's "balanced");
    * ``"inverse_frequency"``: ``1 / f`` and ``1 / (1 - f)``;
    * ``"sqrt_inverse"``: ``1 / sqrt(f)`` and ``1 / sqrt(1 - f)``.

    An empty (``f = 0``) or full (``f = 1``) volume gets weights of 1. ``max_weight`` clips ``fg`` and
    ``bg`` from above (the 1 of an empty volume included), and so does 1e12 (``MAX_WEIGHT``) always, so
    every map is finite. Soft labels interpolate linearly. A zero-size label gives an empty map.
    For a tensor everything runs in torch on its device, without a host-device synchronisation (the
    range check of ``label`` follows :func:`voxweight.set_value_checks`), so a loss can call it on
    every batch: ``VoxelWeightedBCE(weight_fn=class_balance_weights)``.

    Args:
        label: binary or soft labels in [0, 1], ndarray or tensor.
        fg_weight: weight of foreground voxels (``t = 1``), in ``[0, 1e12]``.
        bg_weight: weight of background voxels (``t = 0``), in ``[0, 1e12]``.
        mode: ``"balanced"``, ``"inverse_frequency"`` or ``"sqrt_inverse"`` (used when neither weight is given).
        max_weight: upper bound of ``fg`` and ``bg`` (> 0), or None.
        spatial_dims: number of trailing spatial axes of ``label``.

    Returns:
        float32 weights, ``label``'s shape, type and device.

    Raises:
        TypeError: for a label that is not an ndarray/tensor of bool, integer or float dtype, or non-numeric weights.
        ValueError: for ``label.ndim < spatial_dims``, labels outside [0, 1], ``fg_weight``/``bg_weight`` outside
            ``[0, 1e12]`` (or not finite), ``max_weight <= 0`` (or not finite), or an unknown ``mode``.

    Shape:
        - label: ``[..., *spatial]`` with ``spatial_dims`` spatial axes, e.g. ``[N, C, D, H, W]``.
        - output: the same.

    Example:
        >>> class_balance_weights(np.array([0, 0, 0, 1]), spatial_dims=1)
        array([0.6666667, 0.6666667, 0.6666667, 2.       ], dtype=float32)
    """
    check_label(label, spatial_dims)
    mode = look_up_option("mode", mode, BALANCE_MODES)
    fixed = fg_weight is not None or bg_weight is not None
    fg = 1.0 if fg_weight is None else check_weight("fg_weight", fg_weight)
    bg = 1.0 if bg_weight is None else check_weight("bg_weight", bg_weight)
    if max_weight is not None:
        max_weight = check_positive_number("max_weight", max_weight)
    t = float_tensor(label)
    check_range("label", t, 0.0, 1.0, "values in [0, 1] (binary or soft labels)")
    if fixed:
        if max_weight is not None:
            fg, bg = min(fg, max_weight), min(bg, max_weight)
        w = t * (fg - bg) + bg  # fg, bg <= 1e12: finite in float32
    else:
        w = balance_map(t, mode, max_weight, spatial_dims)
    return w.numpy() if isinstance(label, np.ndarray) else w


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
    neither, ``K = label.max() + 1`` is read back to the host (one synchronisation per call); when
    ``K`` exceeds the voxels per volume (sparse ids such as 3e9), the classes are the ids present
    instead (``torch.unique`` per volume), so memory follows the label's size, never its largest id.
    With value checks off, indices outside ``[0, K)`` are clamped into it instead of raising.

    Args:
        label: integer (or bool) class indices, ndarray or tensor.
        num_classes: ``K``, an integer >= 1; default ``len(class_weight)``, else ``label.max() + 1``.
        mode: ``"balanced"``, ``"inverse_frequency"`` or ``"sqrt_inverse"`` (when ``class_weight`` is None).
        class_weight: fixed per-class weights ``[K]`` (sequence, ndarray or tensor), in ``[0, 1e12]``; or None.
        max_weight: upper bound of the class weights (> 0), or None.
        spatial_dims: number of trailing spatial axes of ``label``.

    Returns:
        float32 weights, ``label``'s shape, type (ndarray or tensor) and device.

    Raises:
        TypeError: for a label that is not an ndarray/tensor of integer or bool dtype (float labels
            included: cast them), a non-integer ``num_classes``, or non-numeric weights.
        ValueError: for ``label.ndim < spatial_dims``, class indices outside ``[0, K)``, ``num_classes < 1``,
            ``class_weight`` that is not 1-D with ``K`` values or has values outside ``[0, 1e12]``, ``max_weight <= 0``,
            or an unknown ``mode``.

    Shape:
        - label: ``[..., *spatial]`` with ``spatial_dims`` spatial axes, e.g. ``[N, D, H, W]``.
        - output: the same.

    Example:
        >>> multiclass_balance_weights(np.array([0, 0, 0, 0, 1, 1, 2, 2]), num_classes=3, spatial_dims=1)
        array([0.6666667, 0.6666667, 0.6666667, 0.6666667, 1.3333334, 1.3333334,
               1.3333334, 1.3333334], dtype=float32)
    """
    check_label(label, spatial_dims)
    mode = look_up_option("mode", mode, BALANCE_MODES)
    idx = class_index_tensor(label)
    table = _fixed_weights(class_weight, idx.device)
    k = _num_classes(num_classes, table, idx)
    if max_weight is not None:
        max_weight = check_positive_number("max_weight", max_weight)
    check_range("label", idx, 0, k - 1, f"class indices in [0, {k - 1}] (num_classes={k})")
    lead = math.prod(idx.shape[:idx.ndim - spatial_dims])
    flat = idx.reshape(lead, math.prod(idx.shape[idx.ndim - spatial_dims:]))
    if table is None and num_classes is None and k > max(flat.shape[1], 1):  # sparse ids: the present ones
        w = _present_class_weights(flat, mode, max_weight).reshape(idx.shape)
        return w.numpy() if isinstance(label, np.ndarray) else w
    flat = flat.clamp(0, k - 1)
    table = _frequency_weights(flat, k, mode) if table is None else table.expand(lead, k)
    if max_weight is not None:
        table = table.clamp(max=max_weight)
    w = torch.gather(table, 1, flat).reshape(idx.shape)
    return w.numpy() if isinstance(label, np.ndarray) else w


def _present_class_weights(flat: torch.Tensor, mode: str, max_weight: float | None) -> torch.Tensor:
    """Weights ``[B, V]`` from the ids present in each row of ``flat`` (``torch.unique``: memory O(V), any ids)."""
    out = torch.empty(flat.shape, dtype=torch.float32, device=flat.device)
    for b, row in enumerate(flat):
        _, inverse, counts = torch.unique(row, return_inverse=True, return_counts=True)
        a = _weights_from_counts(counts.unsqueeze(0), flat.shape[1], mode)[0]
        out[b] = (a if max_weight is None else a.clamp(max=max_weight))[inverse]
    return out


def _fixed_weights(class_weight: Any, device: torch.device) -> torch.Tensor | None:
    """``class_weight`` as a float32 ``[1, K]`` tensor on ``device`` (checked: 1-D, >= 0), or None."""
    table = as_weight_tensor("class_weight", class_weight, like=torch.empty(0, device=device))
    if table is None:
        return None
    if table.ndim != 1 or table.shape[0] < 1:
        raise ValueError(f"class_weight: expected a 1-D sequence with one weight per class, got {describe(table)}")
    check_nonnegative("class_weight", table)
    check_range("class_weight", table, 0.0, MAX_WEIGHT, f"values <= {MAX_WEIGHT:g} (larger overflow the float32 map)")
    return table.reshape(1, -1)


def _num_classes(num_classes: Any, table: torch.Tensor | None, idx: torch.Tensor) -> int:
    """``K`` from ``num_classes``, else from ``class_weight``, else ``idx.max() + 1`` (a host sync)."""
    if num_classes is not None:
        num_classes = check_positive_int("num_classes", num_classes, allow_none=True)
        if table is not None and table.shape[1] != num_classes:
            raise ValueError(f"class_weight: expected num_classes={num_classes} values, got {table.shape[1]}")
        return num_classes
    if table is not None:
        return table.shape[1]
    return max(int(idx.max()) + 1, 1) if idx.numel() else 1


def _frequency_weights(flat: torch.Tensor, k: int, mode: str) -> torch.Tensor:
    """Per-volume class weights ``[B, K]`` (float32) from the class counts of ``flat`` ``[B, V]``."""
    counts = torch.zeros(flat.shape[0], k, dtype=torch.int64, device=flat.device)
    counts.scatter_add_(1, flat, torch.ones(1, 1, dtype=torch.int64, device=flat.device).expand_as(flat))
    return _weights_from_counts(counts, flat.shape[1], mode)


def _weights_from_counts(counts: torch.Tensor, voxels: int, mode: str) -> torch.Tensor:
    """Class weights ``[B, K]`` (float32) from class counts ``[B, K]`` among ``voxels`` per volume (absent: 1)."""
    present = counts > 0
    inverse = voxels / torch.where(present, counts, 1).double()  # 1 / f_c
    if mode == "balanced":
        a = inverse / present.sum(dim=1, keepdim=True).clamp(min=1)
    elif mode == "inverse_frequency":
        a = inverse
    else:
        a = inverse.sqrt()
    return torch.where(present, a, 1.0).float()
