r"""Tubed skeletons of labels, the ground truth of Skeleton Recall (Kirchhoff et al., ECCV 2024), numpy or torch.

:func:`tubed_skeleton` thins the foreground of each volume to its skeleton with scikit-image's
``skeletonize`` (Zhang and Suen's method in 2D, Lee et al.'s in 3D, as scikit-image picks by default),
thickens it into a tube and keeps the tube inside the label, each tube voxel carrying the label's value
there (its class id; 1 for a binary label). With the default arguments the result equals the reference
``SkeletonTransform`` (MIC-DKFZ/Skeleton-Recall, ``custom_transforms/skeletonization.py``) voxel for voxel,
re-derived from its behaviour:

* the skeleton is that of the whole foreground (``label > 0``, all classes together), not one per class:
  where two classes touch, one centre line runs through both, and each tube voxel takes the class id of
  the label at that voxel;
* the tube is two dilations with the cross (``scipy.ndimage.generate_binary_structure(ndim, 1)``,
  scikit-image's default footprint), i.e. every voxel within L1 (city-block) distance 2 of the skeleton,
  multiplied by the label: a structure thinner than the tube gets a tube clipped to itself;
* an empty volume gives an empty skeleton.

``tube_radius=k`` makes ``k`` dilations (``k = 0``: the bare skeleton). With ``spacing`` the tube is round in
physical space instead: every voxel whose Euclidean distance to the skeleton,
:math:`\min_s \lVert (x - s) \cdot \mathrm{spacing} \rVert`, is at most ``tube_radius`` (in the units of
``spacing``, mm for NIfTI; measured with :func:`voxweight.maps.distance_to_foreground`, float32 distances
within a relative 1e-6 of the radius count as inside). The skeleton itself is the same either way: the
thinning works on the voxel grid and ignores the spacing, as the reference does.

Speed: each volume is cropped to the bounding box of its foreground before the thinning and the tube
(identical output: outside the box there is nothing to thin, and the tube is cut to the label), and the
tube is a binary dilation of a bool array rather than the reference's grey dilation of an int16 one.
The work runs on the CPU (scikit-image); a CUDA tensor is copied to the host and the result back.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.ndimage as ndi
import torch

from voxweight._validate import check_flag, check_positive_number, check_spacing, describe
from voxweight.maps.distance import distance_to_foreground
from voxweight.maps.labels import Label, check_classes, check_label, host_array

__all__ = ["tubed_skeleton"]

_TIE = 1 + 1e-6  # float32 distances equal to the radius (up to rounding) are inside the tube


def tubed_skeleton(label: Label, *, tube_radius: float = 2,
                   spacing: float | tuple[float, ...] | list[float] | None = None, multiclass: bool = False,
                   spatial_dims: int = 3) -> Label:
    """The skeleton of each volume's foreground, thickened into a tube kept inside the label, with its values.

    See the module docstring for the definition and the reference it reproduces.

    Args:
        label: a binary label (bool, or values 0 and 1), or with ``multiclass`` integer class ids ``>= 0``
            (bool too). Each leading index is its own volume.
        tube_radius: without ``spacing``, the number of dilations with the cross, an integer ``>= 0`` (the
            tube holds the voxels within that city-block distance of the skeleton; 2 as the reference); with
            ``spacing``, the tube's physical radius, a number ``>= 0``. 0 gives the bare skeleton.
        spacing: voxel size per spatial axis (``spatial_dims`` numbers, or one for all) for a tube of
            physical radius ``tube_radius``; None (default, the reference) counts dilations in voxels.
        multiclass: read ``label`` as class ids, which the tube carries (a binary label gives 0 and 1 either
            way; without it, other values raise).
        spatial_dims: number of trailing spatial axes, 2 or 3.

    Returns:
        The tubed skeleton in ``label``'s dtype and shape: ``label``'s value on the tube, 0 elsewhere. Numpy for
        an ndarray, else a plain tensor on ``label``'s device. ``label`` is not modified.

    Raises:
        TypeError: for a label that is not an ndarray/tensor of bool, integer or float dtype, a float label with
            ``multiclass``, a non-integer ``tube_radius`` without ``spacing``, or a non-bool ``multiclass``.
        ValueError: for a non-binary label without ``multiclass``, negative class ids, a negative
            ``tube_radius``, bad ``spacing``, ``spatial_dims`` other than 2 or 3, or ``label.ndim < spatial_dims``.

    Shape:
        - label: ``[..., *spatial]``; output: the same.

    Example:
        >>> bar = np.zeros((5, 7), dtype=np.uint8)
        >>> bar[1:4, 1:6] = 2
        >>> tubed_skeleton(bar, tube_radius=0, multiclass=True, spatial_dims=2)  # Zhang's skeleton in 2D
        array([[0, 0, 0, 0, 0, 0, 0],
               [0, 0, 0, 0, 2, 0, 0],
               [0, 2, 2, 2, 0, 0, 0],
               [0, 0, 0, 0, 0, 0, 0],
               [0, 0, 0, 0, 0, 0, 0]], dtype=uint8)
        >>> tubed_skeleton(torch.from_numpy(bar > 0), tube_radius=1, spatial_dims=2).int()  # clipped to the bar
        tensor([[0, 0, 0, 0, 0, 0, 0],
                [0, 1, 1, 1, 1, 1, 0],
                [0, 1, 1, 1, 1, 0, 0],
                [0, 1, 1, 1, 0, 0, 0],
                [0, 0, 0, 0, 0, 0, 0]], dtype=torch.int32)
    """
    check_label(label, spatial_dims)
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims: expected 2 or 3 (scikit-image skeletonizes 2D and 3D images), "
                         f"got {spatial_dims}")
    multiclass = check_flag("multiclass", multiclass, expected="a bool")
    radius, steps = _tube_options(tube_radius, spacing, spatial_dims)
    host = host_array(label)
    if multiclass:
        check_classes(host)
    else:
        _check_binary(host)
    out = np.zeros(host.shape, dtype=host.dtype)
    spatial = host.shape[host.ndim - spatial_dims:]
    count = math.prod(host.shape[:host.ndim - spatial_dims])
    volumes, targets = host.reshape(count, *spatial), out.reshape(count, *spatial)
    for volume, target in zip(volumes, targets, strict=True):
        _tube_into(volume, target, radius, steps)
    if isinstance(label, np.ndarray):
        return out
    return torch.from_numpy(out).to(device=label.device, dtype=label.dtype)


def _tube_options(tube_radius: Any, spacing: Any, spatial_dims: int) -> tuple[float, tuple[float, ...] | None]:
    """``tube_radius`` validated (an integer count of dilations without ``spacing``) and the spacing, or None."""
    if spacing is None:
        if isinstance(tube_radius, bool) or not isinstance(tube_radius, int | np.integer):
            raise TypeError(f"tube_radius: expected an integer >= 0 (dilations with the cross, in voxels) without "
                            f"spacing; give spacing for a physical radius, got {describe(tube_radius)}")
        if tube_radius < 0:
            raise ValueError(f"tube_radius: expected an integer >= 0, got {tube_radius}")
        return int(tube_radius), None
    steps = check_spacing("spacing", spacing, spatial_dims)
    return check_positive_number("tube_radius", tube_radius, allow_zero=True), steps


def _check_binary(host: np.ndarray) -> None:
    """Values 0 and 1 only (bool passes): class ids need ``multiclass=True``, soft labels a threshold."""
    if host.dtype == np.bool_:
        return
    other = (host != 0) & (host != 1)
    if other.any():
        shown = ", ".join(f"{v:g}" for v in np.unique(host[other])[:5])
        raise ValueError(f"label: expected a binary label (values 0 and 1) without multiclass=True, got "
                         f"{int(other.sum())} voxels with other values, e.g. {shown}; pass multiclass=True for class "
                         f"ids, or threshold a soft label first")


def _bounding_box(fg: np.ndarray) -> tuple[slice, ...] | None:
    """The smallest box holding every True voxel of ``fg``, or None if there is none."""
    box = []
    for axis in range(fg.ndim):
        others = tuple(a for a in range(fg.ndim) if a != axis)
        hits = np.flatnonzero(fg.any(axis=others))
        if hits.size == 0:
            return None
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def _tube_into(volume: np.ndarray, target: np.ndarray, radius: float, steps: tuple[float, ...] | None) -> None:
    """Write the tubed skeleton of one volume into ``target`` (zeros on entry), inside its foreground's box."""
    fg = volume > 0 if volume.dtype != np.bool_ else volume
    box = _bounding_box(fg)
    if box is None:
        return
    from skimage.morphology import skeletonize  # here: `import voxweight` does not load scikit-image

    inside = fg[box]
    tube = _thicken(skeletonize(inside), radius, steps)
    target[box][tube] = volume[box][tube]  # 0 off the label: the tube is clipped to it


def _thicken(skeleton: np.ndarray, radius: float, steps: tuple[float, ...] | None) -> np.ndarray:
    """The voxels within ``radius`` of ``skeleton``: city-block (cross dilations) without spacing, else Euclidean."""
    if radius == 0:
        return skeleton
    if steps is None:
        cross = ndi.generate_binary_structure(skeleton.ndim, 1)
        return ndi.binary_dilation(skeleton, structure=cross, iterations=int(radius))
    if not skeleton.any():
        return skeleton
    return distance_to_foreground(skeleton, spacing=steps) <= radius * _TIE
