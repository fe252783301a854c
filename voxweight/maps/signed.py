r"""Per-class signed distance maps (the boundary loss's :math:`\phi_G`), numpy or torch, no MONAI.

:func:`class_signed_distance` gives every class (``multiclass=True``: one per class index, in one-hot order)
or every channel of a binary label its signed distance to the class boundary, in the units of ``spacing``,
computed by :func:`voxweight.maps.distance.signed_distance` (``edt``, scipy, or the exact torch EDT on the
label's device). Distances run between voxel centres: ``d_out(x)``, for a voxel outside the class, is its
distance to the nearest voxel of the class; ``d_in(x)``, for a voxel of the class, its distance to the
nearest voxel outside it (so both are at least the spacing along the contact axis, never 0).

Conventions (``convention=``):

* ``"levelset"``: ``phi = +d_out`` outside, ``-d_in`` inside (negative inside, 0 nowhere: the zero level
  set lies between voxel centres). A class without a boundary in a volume (absent, or filling it) gets
  0 everywhere there: it has no boundary to measure, and the region loss supervises it (the same rule
  as :func:`voxweight.hausdorff_dt_loss`).
* ``"kervadec"``: ``one_hot2dist`` of Kervadec et al.'s reference code (LIVIAETS/boundary-loss,
  ``utils.py``), re-derived: ``phi = d_out`` outside and ``-(d_in - 1)`` inside, so a class's own voxels
  touching its boundary get ``1 - spacing`` (0 in voxel units; the 1 is not scaled by the spacing). An
  absent class stays all zeros. A class filling the whole volume gets what the reference's scipy EDT
  returns for a mask without background, ``-(r - 1)`` with ``r`` the distance of each voxel to the
  virtual voxel just before the first one along the first spatial axis (index ``(-1, 0, ..., 0)``): a
  scipy artefact, kept so that the maps equal the reference's everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from voxweight._validate import check_flag, check_positive_int, check_spacing, look_up_option, plain_tensor
from voxweight.checks import check_all
from voxweight.maps.distance import signed_distance
from voxweight.maps.labels import Label, check_classes, check_label

__all__ = ["SDM_CONVENTIONS", "class_signed_distance"]

SDM_CONVENTIONS = ("levelset", "kervadec")


def class_signed_distance(label: Label, *, num_classes: int | None = None, multiclass: bool = False,
                          spacing: float | tuple[float, ...] | list[float] | None = None, convention: str = "levelset",
                          spatial_dims: int = 3, backend: str = "auto", threads: int = 1) -> Label:
    """Signed distance map of each class (``multiclass``) or each channel of a binary label.

    See the module docstring for the conventions: ``"levelset"`` is ``+d_out`` outside and ``-d_in``
    inside (0 where a volume has no boundary of that class); ``"kervadec"`` is the reference
    ``one_hot2dist``, ``d_out`` outside and ``-(d_in - 1)`` inside.

    Args:
        label: a binary label (bool, or values 0 and 1; each leading index is its own volume, so a one-hot
            ``[K, *spatial]`` label gives the reference's per-class maps), or with ``multiclass`` integer
            class indices ``0 .. K-1`` (bool too).
        num_classes: ``K`` (``multiclass`` only); default ``label.max() + 1`` (1 for a zero-size label).
            Giving it spares a host-device synchronisation for a CUDA label.
        multiclass: read ``label`` as class indices and return one map per class.
        spacing: voxel size per spatial axis (``spatial_dims`` numbers, or one for all); None means 1.
        convention: ``"levelset"`` or ``"kervadec"``.
        spatial_dims: number of trailing spatial axes of ``label``.
        backend: ``"auto"``, ``"edt"``, ``"scipy"`` or ``"torch"`` (:mod:`voxweight.maps.distance`; ``"auto"``
            keeps a CUDA label on its device).
        threads: threads for the distance transforms (``edt``'s ``parallel=``).

    Returns:
        float32 maps, finite: numpy for an ndarray, else a tensor on the label's device.

    Raises:
        TypeError: for a label that is not an ndarray/tensor of bool, integer or float dtype, a float label with
            ``multiclass``, or a non-bool ``multiclass``.
        ValueError: for a non-binary label without ``multiclass`` (threshold soft labels first), negative class
            indices or indices ``>= num_classes``, ``num_classes`` without ``multiclass``, an unknown
            ``convention`` or ``backend``, bad ``spacing``, or ``label.ndim < spatial_dims``.

    Shape:
        - label: ``[..., *spatial]``; output: the same, or ``[..., K, *spatial]`` with ``multiclass``.

    Example:
        >>> class_signed_distance(np.array([0, 0, 1, 1, 1, 0]), spatial_dims=1)
        array([ 2.,  1., -1., -2., -1.,  1.], dtype=float32)
        >>> class_signed_distance(np.array([0, 0, 1, 1, 1, 0]), spatial_dims=1, convention="kervadec")
        array([ 2.,  1.,  0., -1.,  0.,  1.], dtype=float32)
        >>> class_signed_distance(np.array([[0, 1, 1]]), multiclass=True, num_classes=3, spatial_dims=1)
        array([[[-1.,  1.,  2.],
                [ 1., -1., -2.],
                [ 0.,  0.,  0.]]], dtype=float32)
    """
    check_label(label, spatial_dims)
    convention = look_up_option("convention", convention, SDM_CONVENTIONS)
    multiclass = check_flag("multiclass", multiclass, expected="a bool")
    steps = check_spacing("spacing", spacing, spatial_dims)
    fg = _class_masks(label, num_classes, multiclass, spatial_dims)
    phi = signed_distance(fg, spacing=steps, backend=backend, threads=threads, spatial_dims=spatial_dims)
    phi = torch.from_numpy(phi) if isinstance(phi, np.ndarray) else phi
    fg = fg.to(phi.device) if isinstance(fg, torch.Tensor) else torch.from_numpy(fg)
    out = _finish(phi, fg, convention, steps)
    if isinstance(label, np.ndarray):
        return out.numpy()
    return out.to(label.device)


def _class_masks(label: Any, num_classes: Any, multiclass: bool, spatial_dims: int) -> np.ndarray | torch.Tensor:
    """The foreground of each volume: the binary label itself, or one mask per class ``[..., K, *spatial]``."""
    if not multiclass:
        if num_classes is not None:
            raise ValueError(f"num_classes: expected None without multiclass=True (each channel is a binary "
                             f"label), got {num_classes!r}")
        _check_binary(label)
        return label != 0 if isinstance(label, np.ndarray) else plain_tensor(label.detach()) != 0
    if isinstance(label, np.ndarray):
        check_classes(label)
        classes = _num_classes(num_classes, int(label.max()) + 1 if label.size else 1)
        if label.size and label.max() >= classes:
            raise ValueError(f"label: expected class indices in [0, {classes - 1}] (num_classes={classes}), "
                             f"got maximum {label.max()}")
        ids = np.arange(classes).reshape((classes,) + (1,) * spatial_dims)
        return np.expand_dims(label, label.ndim - spatial_dims) == ids
    t = plain_tensor(label.detach())
    if t.is_floating_point():
        raise TypeError(f"label: expected integer class indices (or bool) with multiclass=True, got dtype {t.dtype}; "
                        f"cast a float label that holds class indices with .long()")
    t = t.to(torch.int64)
    classes = _num_classes(num_classes, int(t.max()) + 1 if t.numel() else 1)
    check_all("label", (t >= 0) & (t < classes), f"class indices in [0, {classes - 1}] (num_classes={classes})",
              "indices outside that range")
    ids = torch.arange(classes, device=t.device).reshape((classes,) + (1,) * spatial_dims)
    return t.unsqueeze(t.ndim - spatial_dims) == ids


def _num_classes(num_classes: Any, found: int) -> int:
    """``num_classes`` validated, or the number of classes found in the label."""
    return found if num_classes is None else check_positive_int("num_classes", num_classes, allow_none=True)


def _check_binary(label: np.ndarray | torch.Tensor) -> None:
    """Values 0 and 1 only (a soft label must be thresholded first: the maps measure to a hard boundary)."""
    if label.dtype in (np.bool_, torch.bool):
        return
    ok = (label == 0) | (label == 1)
    check_all("label", torch.from_numpy(ok) if isinstance(ok, np.ndarray) else ok,
              "a binary label (values 0 and 1) without multiclass=True",
              "other values (threshold a soft label first, e.g. label > 0.5)")


def _finish(phi: torch.Tensor, fg: torch.Tensor, convention: str, spacing: tuple[float, ...]) -> torch.Tensor:
    """Apply ``convention`` to the signed map ``phi`` (``+inf`` in a volume without the class, ``-inf`` if full)."""
    phi = phi.contiguous()
    if phi.numel() == 0:
        return phi
    if convention == "kervadec":
        phi.add_(fg)  # -d_in becomes -(d_in - 1)
    spatial = phi.shape[phi.ndim - len(spacing):]
    rows = phi.view(-1, spatial.numel())  # one row per volume; a volume is all inf or all finite
    absent, full = torch.isposinf(rows[:, :1]), torch.isneginf(rows[:, :1])
    rows.masked_fill_(absent, 0.0)  # absent class: all zeros (both conventions)
    if convention == "levelset":
        rows.masked_fill_(full, 0.0)
    elif phi.device.type != "cpu" or bool(full.any()):
        rows.copy_(torch.where(full, _kervadec_full(spatial, spacing, phi.device).reshape(1, -1), rows))
    return phi


def _kervadec_full(shape: tuple[int, ...], spacing: tuple[float, ...], device: torch.device) -> torch.Tensor:
    """The reference's map of a class filling its volume, ``-(r - 1)`` (float64 maths, then float32).

    ``r`` is what ``scipy.ndimage.distance_transform_edt`` returns for a mask without background: every
    voxel's distance to the virtual voxel at index ``(-1, 0, ..., 0)``, ``r(x) = ||(x + e_0) * spacing||``.
    """
    r2 = torch.zeros(shape, dtype=torch.float64, device=device)
    for axis, (n, step) in enumerate(zip(shape, spacing, strict=True)):
        offset = 1 if axis == 0 else 0
        coord = (torch.arange(n, dtype=torch.float64, device=device) + offset) * step
        r2 = r2 + coord.square().reshape((n,) + (1,) * (len(shape) - axis - 1))
    return (1 - r2.sqrt()).to(torch.float32)
