"""Boundary-emphasis weight maps from label volumes (numpy or torch, no MONAI): U-Net separation and distance bands.

:func:`boundary_weights` takes a label ``[..., *spatial]`` whose last ``spatial_dims`` axes are spatial;
every leading index (channel, batch) gets its own map. It returns float32 maps of the label's shape, as
a numpy array for an ndarray and as a tensor on the label's device for a tensor (a tensor subclass such
as MONAI's ``MetaTensor`` comes back as a plain tensor: :mod:`voxweight.transforms` keeps meta). The label
is never modified, and no ``inf`` or ``NaN`` reaches a map. The bonuses are computed in
:mod:`~voxweight.maps.bonus` (numpy: ``edt`` or scipy) or :mod:`~voxweight.maps.torch_bonus` (torch, on the
label's device), the distances in :mod:`~voxweight.maps.distance` and :mod:`~voxweight.maps.torch_edt`.
"""

from __future__ import annotations

import math
import warnings
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
    count_objects,
    distance_bonus,
    relative_spacing,
    unet_bonus,
    unet_objects,
)
from voxweight.maps.distance import resolve_backend
from voxweight.maps.labels import (
    Label,
    check_binary,
    check_classes,
    check_instances,
    check_label,
    check_weight,
    host_array,
    label_tensor,
)
from voxweight.maps.torch_bonus import batch_objects, object_boxes, torch_distance_bonus, torch_unet_bonus

__all__ = ["BOUNDARY_BACKENDS", "BOUNDARY_MODES", "boundary_weights"]

BOUNDARY_MODES = ("unet", "distance")
BOUNDARY_BACKENDS = ("auto", "edt", "scipy", "torch")
NARROW_RATIO = 5.3  # smallest spacing / sigma above which the bonus one voxel away is < exp(-14) < 1e-6 w0


def boundary_weights(label: Label, *, mode: str = "unet", w0: float = 10.0, sigma: float = 5.0,
                     spacing: float | Sequence[float] | None = None, instances: np.ndarray | torch.Tensor | None = None,
                     spatial_dims: int = 3, multiclass: bool = False, threads: int = 1, backend: str = "auto") -> Label:
    """Boundary-emphasis weight map ``1 + bonus``.

    * ``"unet"`` (Ronneberger et al. 2015): ``bonus = w0 exp(-(d1 + d2)^2 / (2 sigma^2))`` on background
      voxels and 0 on the foreground; ``d1``, ``d2`` are the distances to the nearest and second-nearest
      object. Objects are the connected components of the foreground with full connectivity (8 in
      2-D, 26 in 3-D: a diagonal contact joins two blobs, so thin oblique structures stay one object),
      or the ids of ``instances`` (an id may have several pieces). The bonus separates objects, so with
      fewer than two objects there is nothing to separate: ``d2 = inf`` and the map is all ones, with a
      ``UserWarning`` (touching objects are one component: give ``instances``, or use ``"distance"``).
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
    ``4 sigma``). ``backend`` chooses where: ``"torch"`` computes everything in torch on the label's device
    (:mod:`~voxweight.maps.torch_bonus`: connected components, validation and the band-limited EDT, no host
    copy of the volume, a few scalar syncs; a numpy label runs on the CPU and comes back as numpy);
    ``"edt"`` and ``"scipy"`` compute on the host with that EDT (a tensor goes there and back); ``"auto"``
    takes ``"torch"`` for a tensor off the CPU, else ``"edt"`` (scipy beyond 3 spatial dims). The two paths
    agree to float32 precision (within ``1e-7 w0``). Distances are measured in units of ``sigma``, so every
    finite ``spacing`` and ``sigma`` give a finite map;
    when ``sigma`` is so far below the spacing that the bonus vanishes one voxel away, a ``UserWarning``
    says so. A zero-size label gives an empty map.

    Args:
        label: binary label (0/1); with ``multiclass``, integer class indices >= 0; with ``instances``,
            any such label whose non-zero voxels are the instances'.
        mode: ``"unet"`` or ``"distance"``.
        w0: height of the bonus, in ``[0, 1e12]`` (``MAX_WEIGHT``: the map stays finite in float32).
        sigma: width of the bonus in spacing units, > 0.
        spacing: voxel size per spatial axis (``spatial_dims`` numbers, or one for all).
        instances: integer instance ids (0 = background), ``label``'s shape or its spatial shape (then shared
            by every leading index); ``"unet"`` only.
        spatial_dims: number of trailing spatial axes of ``label``.
        multiclass: read ``label`` as class indices (see above) instead of a binary label.
        threads: threads for the distance transforms (``edt``'s ``parallel=``; scipy: the two sides of a
            ``"distance"`` map at once with 2 or more); the torch path uses torch's own threads.
        backend: ``"auto"``, ``"edt"``, ``"scipy"`` or ``"torch"`` (see above).

    Returns:
        float32 weights ``>= 1``, ``label``'s shape, type and device.

    Raises:
        TypeError: for a label or ``instances`` of the wrong type or dtype (a float label with ``multiclass``),
            non-numeric options or a non-bool ``multiclass``.
        ValueError: for ``label.ndim < spatial_dims``, a non-binary label without ``instances`` or ``multiclass``,
            negative class indices, ``instances`` of the wrong shape, negative or not matching the label,
            ``w0`` outside ``[0, 1e12]``, ``sigma <= 0``, bad ``spacing``, ``threads < 1``, an unknown ``mode``
            or ``backend``, ``"edt"`` on more than 3 spatial dims, or a non-finite ``w0``, ``sigma`` or ``spacing``.

    Warns:
        UserWarning: once per call, for ``"unet"`` with ``w0 > 0`` on a label (or a leading index of it)
            with fewer than two objects, naming the object count and the fixes; otherwise for a ``sigma``
            below ``smallest spacing / 5.3`` (the bonus one voxel away is below ``1e-6 w0``).

    Shape:
        - label: ``[..., *spatial]``; instances: ``[..., *spatial]`` or ``[*spatial]``; output: ``label``'s.

    Example:
        >>> boundary_weights(np.array([1, 0, 0, 1]), w0=2.0, sigma=1.0, spatial_dims=1).round(4)
        array([1.    , 1.0222, 1.0222, 1.    ], dtype=float32)
        >>> boundary_weights(np.array([1, 1, 2, 2]), mode="distance", w0=2.0, sigma=1.0, spatial_dims=1,
        ...                  multiclass=True).round(4)
        array([1.2707, 2.2131, 2.2131, 1.2707], dtype=float32)
        >>> boundary_weights(torch.tensor([1, 0, 0, 1]), w0=2.0, sigma=1.0, spatial_dims=1, backend="torch")
        tensor([1.0000, 1.0222, 1.0222, 1.0000])
    """
    check_label(label, spatial_dims)
    mode = look_up_option("mode", mode, BOUNDARY_MODES)
    w0 = check_weight("w0", w0)
    sigma = check_positive_number("sigma", sigma)
    spacing = check_spacing("spacing", spacing, spatial_dims)
    multiclass = check_flag("multiclass", multiclass, expected="a bool")
    threads = check_positive_int("threads", threads)
    backend = look_up_option("backend", backend, BOUNDARY_BACKENDS)
    if backend == "torch" or (backend == "auto" and isinstance(label, torch.Tensor) and label.device.type != "cpu"):
        lab = label_tensor(label)
    else:
        backend, lab = resolve_backend(backend, spatial_dims), host_array(label)
    spatial = tuple(lab.shape[lab.ndim - spatial_dims:])
    flat = (math.prod(lab.shape[:lab.ndim - spatial_dims]), *spatial)  # leading axes in one
    volumes = _volumes(lab, instances, mode, multiclass, spatial).reshape(flat)
    if backend == "torch":
        out, counts = _torch_maps(volumes, mode, w0, sigma, spacing, instances is not None, multiclass)
    else:
        out, counts = _host_maps(volumes, mode, w0, sigma, spacing, backend, threads, instances is not None,
                                 multiclass)
    if w0 > 0 and math.prod(volumes.shape):
        _warn_if_no_op(counts, instances is not None, sigma, spacing)
    out = out.reshape(lab.shape)
    if isinstance(out, torch.Tensor):
        return out if isinstance(label, torch.Tensor) else out.numpy()
    return out if isinstance(label, np.ndarray) else torch.from_numpy(out).to(label.device)


def _host_maps(volumes: np.ndarray, mode: str, w0: float, sigma: float, spacing: tuple[float, ...], backend: str,
               threads: int, instances: bool, multiclass: bool) -> tuple[np.ndarray, list[int]]:
    """``1 + bonus`` of each volume ``[V, *spatial]`` on the host, and the object counts (``"unet"``)."""
    out = np.ones(volumes.shape, dtype=np.float32)
    counts = []  # objects per volume ("unet")
    for i, volume in enumerate(volumes):
        if volume.size == 0:  # a zero-size label: an empty map
            continue
        if mode == "distance":
            out[i] += distance_bonus(volume, w0, sigma, spacing, backend, threads)
        else:
            objects = unet_objects(volume, instances=instances, multiclass=multiclass)
            counts.append(count_objects(objects))
            out[i] += unet_bonus(objects, w0, sigma, spacing, backend, threads)
    return out, counts


def _torch_maps(volumes: torch.Tensor, mode: str, w0: float, sigma: float, spacing: tuple[float, ...],
                instances: bool, multiclass: bool) -> tuple[torch.Tensor, list[int]]:
    """``1 + bonus`` of the batch ``[V, *spatial]`` in torch on its device, and the object counts (``"unet"``)."""
    if volumes.numel() == 0:
        return torch.ones(volumes.shape, dtype=torch.float32, device=volumes.device), []
    if mode == "distance":
        return torch_distance_bonus(volumes, w0, sigma, spacing).add_(1.0), []
    if w0 == 0:
        return torch.ones(volumes.shape, dtype=torch.float32, device=volumes.device), []
    objects = batch_objects(volumes, len(spacing), instances=instances, multiclass=multiclass)
    boxes = object_boxes(objects)
    counts = [0] * volumes.shape[0]
    for _, v, _, _ in boxes:
        counts[v] += 1
    return torch_unet_bonus(objects, w0, sigma, spacing, boxes).add_(1.0), counts


def _warn_if_no_op(counts: list[int], instances: bool, sigma: float, spacing: tuple[float, ...]) -> None:
    """One ``UserWarning`` when the bonus is (almost) 0 everywhere: too few objects, or sigma far below spacing."""
    few = [n for n in counts if n < 2]
    if few:
        found = (f"found {counts[0]} object{'' if counts[0] == 1 else 's'}" if len(counts) == 1 else
                 f"found fewer than two objects in {len(few)} of {len(counts)} volumes (object counts: "
                 f"{', '.join(map(str, few[:8]))}{', ...' if len(few) > 8 else ''})")
        fix = ("check that instances holds one id per object" if instances else
               "touching objects merge into one connected component (full connectivity): pass instances= "
               "(an integer instance map) to separate them")
        warnings.warn(f"boundary_weights: mode='unet' {found}; its bonus separates two or more objects, so the "
                      f"map is all ones there. Fixes: {fix}, or use mode='distance' to emphasise the "
                      f"foreground/background interface", UserWarning, stacklevel=3)
    elif min(relative_spacing(sigma, spacing)) > NARROW_RATIO:
        warnings.warn(f"sigma: the bonus one voxel away is below 1e-6 w0 (sigma={sigma:g}, smallest spacing "
                      f"{min(spacing):g}), so the map is all ones. Fixes: give sigma in the units of spacing (mm "
                      f"for NIfTI), or check the spacing (a NIfTI header's pixdim)", UserWarning, stacklevel=3)


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
