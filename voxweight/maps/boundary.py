"""Boundary-emphasis weight maps from label volumes (numpy or torch, no MONAI): U-Net separation and distance bands.

:func:`boundary_weights` takes a label ``[..., *spatial]`` whose last ``spatial_dims`` axes are spatial;
every leading index (channel, batch) gets its own map. It returns float32 maps of the label's shape, as
a numpy array for an ndarray and as a tensor on the label's device for a tensor (a tensor subclass such
as MONAI's ``MetaTensor`` comes back as a plain tensor: :mod:`voxweight.transforms` keeps meta). The label
is never modified, and no ``inf`` or ``NaN`` reaches a map. The bonuses are computed in
:mod:`~voxweight.maps.bonus`, the distances in :mod:`~voxweight.maps.distance`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from voxweight._validate import (
    check_flag,
    check_positive_int,
    check_positive_number,
    check_spacing,
    describe,
    look_up_option,
)
from voxweight.maps.bonus import (
    distance_bonus,
    objects_from_classes,
    objects_from_instances,
    objects_from_mask,
    unet_bonus,
)
from voxweight.maps.distance import resolve_backend
from voxweight.maps.labels import Label, check_binary, check_classes, check_instances, check_label, host_array

__all__ = ["BOUNDARY_MODES", "boundary_weights"]

BOUNDARY_MODES = ("unet", "distance")


def boundary_weights(label: Label, *, mode: str = "unet", w0: float = 10.0, sigma: float = 5.0,
                     spacing: float | Sequence[float] | None = None, instances: np.ndarray | torch.Tensor | None = None,
                     spatial_dims: int = 3, multiclass: bool = False, threads: int = 1) -> Label:
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
        threads: threads for the distance transforms (``edt``'s ``parallel=``; scipy: the two sides of a
            ``"distance"`` map at once with 2 or more).

    Returns:
        float32 weights ``>= 1``, ``label``'s shape, type and device.

    Raises:
        TypeError: for a label or ``instances`` of the wrong type or dtype (a float label with ``multiclass``),
            non-numeric options or a non-bool ``multiclass``.
        ValueError: for ``label.ndim < spatial_dims``, a non-binary label without ``instances`` or ``multiclass``,
            negative class indices, ``instances`` of the wrong shape, negative or not matching the label,
            ``w0 < 0``, ``sigma <= 0``, bad ``spacing``, ``threads < 1``, or an unknown ``mode``.

    Shape:
        - label: ``[..., *spatial]``; instances: ``[..., *spatial]`` or ``[*spatial]``; output: ``label``'s.

    Example:
        >>> boundary_weights(np.array([1, 0, 0, 1]), w0=2.0, sigma=1.0, spatial_dims=1).round(4)
        array([1.    , 1.0222, 1.0222, 1.    ], dtype=float32)
        >>> boundary_weights(np.array([1, 1, 2, 2]), mode="distance", w0=2.0, sigma=1.0, spatial_dims=1,
        ...                  multiclass=True).round(4)
        array([1.2707, 2.2131, 2.2131, 1.2707], dtype=float32)
    """
    check_label(label, spatial_dims)
    mode = look_up_option("mode", mode, BOUNDARY_MODES)
    w0 = check_positive_number("w0", w0, allow_zero=True)
    sigma = check_positive_number("sigma", sigma)
    spacing = check_spacing("spacing", spacing, spatial_dims)
    multiclass = check_flag("multiclass", multiclass, expected="a bool")
    threads = check_positive_int("threads", threads)
    backend = resolve_backend("auto", spatial_dims)
    lab = host_array(label)
    spatial = lab.shape[lab.ndim - spatial_dims:]
    flat = (math.prod(lab.shape[:lab.ndim - spatial_dims]), *spatial)  # leading axes in one
    volumes = _volumes(lab, instances, mode, multiclass, spatial).reshape(flat)
    out = np.ones(volumes.shape, dtype=np.float32)
    for i, volume in enumerate(volumes):
        if mode == "distance":
            out[i] += distance_bonus(volume, w0, sigma, spacing, backend, threads)
        else:
            objects = (objects_from_instances(volume) if instances is not None
                       else objects_from_classes(volume) if multiclass else objects_from_mask(volume))
            out[i] += unet_bonus(objects, w0, sigma, spacing, backend, threads)
    out = out.reshape(lab.shape)
    return out if isinstance(label, np.ndarray) else torch.from_numpy(out).to(label.device)


def _volumes(lab: np.ndarray, instances: Any, mode: str, multiclass: bool, spatial: tuple[int, ...]) -> np.ndarray:
    """What the bonus is computed from, validated: instance ids, class indices or the binary mask."""
    if multiclass:
        check_classes(lab)
    if instances is not None:
        if mode != "unet":
            raise ValueError(f"instances: expected None for mode={mode!r} (instances split objects for 'unet' "
                             f"only), got {describe(instances)}")
        return check_instances(instances, lab, spatial)
    if multiclass:
        return lab
    check_binary(lab)
    return lab != 0
