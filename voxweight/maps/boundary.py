"""Voxel weight maps from label volumes: class balance and boundary emphasis (numpy or torch, no MONAI).

Both functions take a label ``[..., *spatial]`` whose last ``spatial_dims`` axes are spatial; every
leading index (channel, batch) gets its own map. They return float32 maps of the label's shape, as a
numpy array for an ndarray and as a tensor on the label's device for a tensor (a tensor subclass
such as MONAI's ``MetaTensor`` comes back as a plain tensor: :mod:`voxweight.transforms` keeps meta).
The label is never modified, and no ``inf`` or ``NaN`` reaches a map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
import torch

from voxweight.checks import check_positive_number, check_range, check_spacing, describe, look_up_option
from voxweight.maps.balance import BALANCE_MODES, balance_map
from voxweight.maps.bonus import (
    distance_bonus,
    objects_from_classes,
    objects_from_instances,
    objects_from_mask,
    unet_bonus,
)
from voxweight.maps.distance import _resolve_backend

__all__ = ["BOUNDARY_MODES", "boundary_weights", "class_balance_weights"]

BOUNDARY_MODES = ("unet", "distance")

Label = TypeVar("Label", np.ndarray, torch.Tensor)


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
    ``bg`` from above (the 1 of an empty volume included). Soft labels interpolate linearly.
    For a tensor everything runs in torch on its device, without a host-device synchronisation (the
    range check of ``label`` follows :func:`voxweight.set_value_checks`), so a loss can call it on
    every batch: ``VoxelWeightedBCE(weight_fn=class_balance_weights)``.

    Args:
        label: binary or soft labels in [0, 1], ndarray or tensor.
        fg_weight: weight of foreground voxels (``t = 1``), >= 0.
        bg_weight: weight of background voxels (``t = 0``), >= 0.
        mode: ``"balanced"``, ``"inverse_frequency"`` or ``"sqrt_inverse"`` (used when neither weight is given).
        max_weight: upper bound of ``fg`` and ``bg`` (> 0), or None.
        spatial_dims: number of trailing spatial axes of ``label``.

    Returns:
        float32 weights, ``label``'s shape, type and device.

    Raises:
        TypeError: for a label that is not an ndarray/tensor of bool, integer or float dtype, or non-numeric weights.
        ValueError: for ``label.ndim < spatial_dims``, labels outside [0, 1], negative ``fg_weight``/``bg_weight``,
            ``max_weight <= 0``, or an unknown ``mode``.

    Shape:
        - label: ``[..., *spatial]`` with ``spatial_dims`` spatial axes, e.g. ``[N, C, D, H, W]``.
        - output: the same.

    Example:
        >>> class_balance_weights(np.array([0, 0, 0, 1]), spatial_dims=1)
        array([0.6666667, 0.6666667, 0.6666667, 2.       ], dtype=float32)
    """
    _check_label(label, spatial_dims)
    mode = look_up_option("mode", mode, BALANCE_MODES)
    fixed = fg_weight is not None or bg_weight is not None
    fg = 1.0 if fg_weight is None else check_positive_number("fg_weight", fg_weight, allow_zero=True)
    bg = 1.0 if bg_weight is None else check_positive_number("bg_weight", bg_weight, allow_zero=True)
    if max_weight is not None:
        max_weight = check_positive_number("max_weight", max_weight)
    t = _float_tensor(label)
    check_range("label", t, 0.0, 1.0, "values in [0, 1] (binary or soft labels)")
    if fixed:
        if max_weight is not None:
            fg, bg = min(fg, max_weight), min(bg, max_weight)
        w = t * (fg - bg) + bg
    else:
        w = balance_map(t, mode, max_weight, spatial_dims)
    return w.numpy() if isinstance(label, np.ndarray) else w


def boundary_weights(label: Label, *, mode: str = "unet", w0: float = 10.0, sigma: float = 5.0,
                     spacing: float | Sequence[float] | None = None, instances: np.ndarray | torch.Tensor | None = None,
                     spatial_dims: int = 3, multiclass: bool = False) -> Label:
    """Boundary-emphasis weight map ``1 + bonus``.

    * ``"unet"`` (Ronneberger et al. 2015): ``bonus = w0 exp(-(d1 + d2)^2 / (2 sigma^2))`` on background
      voxels and 0 on the foreground; ``d1``, ``d2`` are the distances to the nearest and second-nearest
      object. Objects are the connected components of the foreground with full connectivity (8 in
      2-D, 26 in 3-D: a diagonal contact joins two blobs, so thin oblique structures stay one object),
      or the ids of ``instances`` (an id may have several pieces). The bonus separates objects, so with
      fewer than two objects there is nothing to separate: ``d2 = inf`` and the map is all ones.
    * ``"distance"``: ``bonus = w0 exp(-d^2 / (2 sigma^2))`` on both sides, ``d`` the distance from a
      background voxel to the nearest foreground voxel and from a foreground voxel to the nearest
      background voxel (voxel centres: voxels on either side of the interface get the spacing along
      the contact axis, so the bonus peaks slightly below ``w0``). An empty or full volume has no
      interface: all ones.

    With ``multiclass=True`` the label holds integer class indices (0 = background): ``"distance"``
    measures ``d`` from every voxel to the nearest voxel of a different class (interfaces between any
    two classes, background included; one class everywhere: all ones), and ``"unet"`` takes each
    connected component of each class > 0 as an object, so touching objects of different classes are
    separate objects (the bonus still lies on the background only). A 0/1 label gives the binary map.

    Distances and ``sigma`` are in the units of ``spacing`` (mm for NIfTI; voxels if None). For speed
    the distances are computed only within ``4 sigma`` of the objects, which keeps the map within
    ``exp(-8) w0 < 1e-3 w0`` of the exact one (exact wherever the contributing distances are below
    ``4 sigma``). Distances are computed on the CPU (``edt``, else scipy); a tensor goes there and back.

    Args:
        label: binary label (0/1); with ``multiclass``, integer class indices >= 0; with ``instances``,
            any such label whose non-zero voxels are the instances'.
        mode: ``"unet"`` or ``"distance"``.
        w0: height of the bonus, >= 0.
        sigma: width of the bonus in spacing units, > 0.
        spacing: voxel size per spatial axis (``spatial_dims`` numbers, or one for all).
        instances: integer instance ids (0 = background), ``label``'s shape or its spatial shape (then shared
            by every leading index); ``"unet"`` only.
        spatial_dims: number of trailing spatial axes of ``label``.
        multiclass: read ``label`` as class indices (see above) instead of a binary label.

    Returns:
        float32 weights ``>= 1``, ``label``'s shape, type and device.

    Raises:
        TypeError: for a label or ``instances`` of the wrong type or dtype (a float label with ``multiclass``),
            non-numeric options or a non-bool ``multiclass``.
        ValueError: for ``label.ndim < spatial_dims``, a non-binary label without ``instances`` or ``multiclass``,
            negative class indices, ``instances`` of the wrong shape, negative or not matching the label,
            ``w0 < 0``, ``sigma <= 0``, bad ``spacing``, or an unknown ``mode``.

    Shape:
        - label: ``[..., *spatial]``; instances: ``[..., *spatial]`` or ``[*spatial]``; output: ``label``'s.

    Example:
        >>> boundary_weights(np.array([1, 0, 0, 1]), w0=2.0, sigma=1.0, spatial_dims=1).round(4)
        array([1.    , 1.0222, 1.0222, 1.    ], dtype=float32)
        >>> boundary_weights(np.array([1, 1, 2, 2]), mode="distance", w0=2.0, sigma=1.0, spatial_dims=1,
        ...                  multiclass=True).round(4)
        array([1.2707, 2.2131, 2.2131, 1.2707], dtype=float32)
    """
    _check_label(label, spatial_dims)
    mode = look_up_option("mode", mode, BOUNDARY_MODES)
    w0 = check_positive_number("w0", w0, allow_zero=True)
    sigma = check_positive_number("sigma", sigma)
    spacing = check_spacing("spacing", spacing, spatial_dims)
    if not isinstance(multiclass, bool | np.bool_):
        raise TypeError(f"multiclass: expected a bool, got {describe(multiclass)}")
    backend = _resolve_backend("auto", spatial_dims)
    lab = _numpy(label)
    spatial = lab.shape[lab.ndim - spatial_dims:]
    flat = (math.prod(lab.shape[:lab.ndim - spatial_dims]), *spatial)  # leading axes in one
    volumes = _volumes(lab, instances, mode, bool(multiclass), spatial).reshape(flat)
    out = np.ones(volumes.shape, dtype=np.float32)
    for i, volume in enumerate(volumes):
        if mode == "distance":
            out[i] += distance_bonus(volume, w0, sigma, spacing, backend)
        else:
            objects = (objects_from_instances(volume) if instances is not None
                       else objects_from_classes(volume) if multiclass else objects_from_mask(volume))
            out[i] += unet_bonus(objects, w0, sigma, spacing, backend)
    out = out.reshape(lab.shape)
    return out if isinstance(label, np.ndarray) else torch.from_numpy(out).to(label.device)


def _check_label(label: Any, spatial_dims: Any) -> None:
    """Type, dtype and number of dims of ``label``; ``spatial_dims`` an integer >= 1."""
    if isinstance(spatial_dims, bool) or not isinstance(spatial_dims, int | np.integer):
        raise TypeError(f"spatial_dims: expected an integer >= 1, got {describe(spatial_dims)}")
    if spatial_dims < 1:
        raise ValueError(f"spatial_dims: expected an integer >= 1, got {spatial_dims}")
    if isinstance(label, np.ndarray):
        bad_dtype = label.dtype.kind not in "biuf"
    elif isinstance(label, torch.Tensor):
        bad_dtype = label.is_complex()
    else:
        raise TypeError(f"label: expected a numpy.ndarray or torch.Tensor [..., *spatial], got {describe(label)}")
    if bad_dtype:
        raise TypeError(f"label: expected a bool, integer or floating-point dtype, got {label.dtype}")
    if label.ndim < spatial_dims:
        raise ValueError(f"label: expected at least {spatial_dims} dims ([..., *spatial] with spatial_dims="
                         f"{spatial_dims}), got shape {list(label.shape)}")


def _float_tensor(label: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``label`` as a float32 tensor on its device, never sharing memory that is written to."""
    if isinstance(label, np.ndarray):
        a = np.asarray(label, dtype=np.float32)
        return torch.from_numpy(a if a.flags.writeable else a.copy())
    t = label.detach()
    if type(t) is not torch.Tensor:
        t = t.as_subclass(torch.Tensor)
    return t.to(torch.float32)


def _numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """A host ndarray with ``x``'s values (a tensor is copied to the CPU; bfloat16 becomes float32)."""
    if isinstance(x, np.ndarray):
        return x
    t = x.detach()
    if type(t) is not torch.Tensor:
        t = t.as_subclass(torch.Tensor)
    return (t.float() if t.dtype == torch.bfloat16 else t).cpu().numpy()


def _volumes(lab: np.ndarray, instances: Any, mode: str, multiclass: bool, spatial: tuple[int, ...]) -> np.ndarray:
    """What the bonus is computed from, validated: instance ids, class indices or the binary mask."""
    if multiclass:
        _check_classes(lab)
    if instances is not None:
        if mode != "unet":
            raise ValueError(f"instances: expected None for mode={mode!r} (instances split objects for 'unet' "
                             f"only), got {describe(instances)}")
        return _check_instances(instances, lab, spatial)
    if multiclass:
        return lab
    _check_binary(lab)
    return lab != 0


def _check_classes(lab: np.ndarray) -> None:
    """Integer (or bool) class indices >= 0."""
    if lab.dtype.kind not in "biu":
        raise TypeError(f"label: expected integer class indices (or bool) with multiclass=True, got dtype "
                        f"{lab.dtype}; cast a float label that holds class indices with .long() / .astype(int)")
    if lab.dtype.kind == "i" and lab.size and lab.min() < 0:
        raise ValueError(f"label: expected class indices >= 0 (0 = background), got minimum {lab.min()}")


def _check_binary(lab: np.ndarray) -> None:
    if lab.dtype == bool:
        return
    bad = lab[(lab != 0) & (lab != 1)]
    if bad.size:
        shown = ", ".join(f"{v:g}" for v in np.unique(bad)[:5])
        raise ValueError(f"label: expected a binary label (values 0 and 1; give instance ids as `instances`), "
                         f"got {bad.size} voxels with other values, e.g. {shown}")


def _check_instances(instances: Any, lab: np.ndarray, spatial: tuple[int, ...]) -> np.ndarray:
    """Validated instance ids broadcast to ``lab``'s shape; their foreground must be the label's."""
    if not isinstance(instances, np.ndarray | torch.Tensor):
        raise TypeError(f"instances: expected a numpy.ndarray or torch.Tensor of integer ids, "
                        f"got {describe(instances)}")
    inst = _numpy(instances)
    if inst.dtype.kind not in "iu":
        raise TypeError(f"instances: expected integer instance ids, got dtype {inst.dtype}")
    if inst.shape not in (lab.shape, spatial):
        raise ValueError(f"instances: expected shape {list(lab.shape)} (the label's) or {list(spatial)} (its spatial "
                         f"shape), got {list(inst.shape)}")
    if inst.size and inst.min() < 0:
        raise ValueError(f"instances: expected ids >= 0 (0 = background), got minimum {inst.min()}")
    if lab.dtype != bool and not np.all(lab >= 0):
        raise ValueError("label: expected values >= 0 (non-zero = foreground), got negative or NaN values")
    inst = np.broadcast_to(inst, lab.shape)
    disagree = np.count_nonzero((lab != 0) != (inst > 0))
    if disagree:
        raise ValueError(f"instances: expected ids > 0 exactly where label != 0, got {disagree} voxels that disagree")
    return inst
