"""MONAI transforms for Skeleton Recall's ground truth: ``TubedSkeleton`` and ``TubedSkeletond``.

Thin wrappers around :func:`voxweight.maps.skeleton.tubed_skeleton` (the definition, the reference it
reproduces and the degenerate cases are documented there): these classes handle MONAI's types
(``numpy.ndarray``, ``torch.Tensor``, ``MetaTensor``) and keep the label's type, dtype, device and meta, so
that crops and flips treat the skeleton like the label. The dictionary twin writes the skeleton of
``d[key]`` to ``d[key + skeleton_postfix]`` (``"_skeleton"``).

Spacing: the reference ignores the voxel size (two dilations in voxels), and so does the default
``spacing=None``. ``spacing="pixdim"`` reads the voxel size from the ``MetaTensor``'s affine and makes
``tube_radius`` a physical radius (mm for NIfTI); explicit numbers do the same with the given size.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms.transform import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type

from voxweight._validate import check_flag, describe, look_up_option, plain_tensor
from voxweight.maps.skeleton import tubed_skeleton
from voxweight.transforms.array import meta_spacing, whole_class_indices

__all__ = ["TubedSkeleton", "TubedSkeletonD", "TubedSkeletonDict", "TubedSkeletond"]

Spacing = str | float | tuple[float, ...] | list[float] | None
PIXDIM = "pixdim"


class TubedSkeleton(Transform):
    """The tubed skeleton of each channel of a channel-first label, in the label's dtype, type and meta.

    The skeleton of the foreground (scikit-image's ``skeletonize``), thickened by ``tube_radius`` dilations
    with the cross and kept inside the label with its values: by default exactly the reference
    ``SkeletonTransform`` of Skeleton Recall. See :func:`voxweight.maps.skeleton.tubed_skeleton`.

    Without ``multiclass`` every channel is a binary label (0/1 tube). With ``multiclass=True`` every channel
    holds class ids (float labels holding whole numbers, as MONAI's ``LoadImaged`` gives, included) and the
    tube carries them.

    Args:
        tube_radius: dilations with the cross (an integer >= 0, default 2 as the reference); with a spacing,
            the tube's physical radius (a number >= 0). 0 gives the bare skeleton.
        spacing: None (default, the reference: voxels), ``"pixdim"`` (the ``MetaTensor``'s voxel size from its
            affine), or the voxel size per spatial axis (one number for all).
        multiclass: read the channels as class ids, which the tube carries.

    Shape:
        - img: ``[C, *spatial]`` with 2 or 3 spatial axes; output: the same, ``img``'s dtype, type and device
          (a ``MetaTensor`` keeps its affine and meta).

    Raises:
        TypeError: if ``img`` is not an ndarray or tensor, ``spacing="pixdim"`` meets an image without an
            affine, or the errors of :func:`~voxweight.maps.skeleton.tubed_skeleton` (options checked when built).
        ValueError: for an image without 2 or 3 spatial axes, fractional class ids with ``multiclass``, or the
            errors of :func:`~voxweight.maps.skeleton.tubed_skeleton`.

    Example:
        >>> import numpy as np
        >>> bar = np.zeros((1, 5, 7), dtype=np.float32)
        >>> bar[0, 1:4, 1:6] = 1
        >>> TubedSkeleton(tube_radius=0)(bar)[0, 1:4]
        array([[0., 0., 0., 0., 1., 0., 0.],
               [0., 1., 1., 1., 0., 0., 0.],
               [0., 0., 0., 0., 0., 0., 0.]], dtype=float32)
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, *, tube_radius: float = 2, spacing: Spacing = None, multiclass: bool = False) -> None:
        self.tube_radius = tube_radius
        self.multiclass = check_flag("multiclass", multiclass, expected="a bool")
        if isinstance(spacing, str):
            spacing = look_up_option("spacing", spacing, (PIXDIM,))
        self.spacing = spacing
        n = 2 if not isinstance(spacing, str) and np.ndim(spacing) == 1 and np.size(spacing) == 2 else 3
        probe = 1.0 if isinstance(spacing, str) else spacing
        tubed_skeleton(np.zeros((1,) + (2,) * n, dtype=np.uint8), tube_radius=tube_radius, spacing=probe,
                       multiclass=self.multiclass, spatial_dims=n)  # fail here, not in a DataLoader worker

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """The tubed skeleton of ``img``, in ``img``'s dtype, type, device and meta."""
        if not isinstance(img, np.ndarray | torch.Tensor):
            raise TypeError(f"img: expected a numpy.ndarray or torch.Tensor [C, *spatial], got {describe(img)}")
        if img.ndim not in (3, 4):
            raise ValueError(f"img: expected a channel-first array [C, *spatial] with 2 or 3 spatial axes, "
                             f"got shape {list(img.shape)}")
        label = plain_tensor(img) if isinstance(img, torch.Tensor) else img
        if self.multiclass:
            label = whole_class_indices("img", label, "whole-number class ids with multiclass=True")
        out = tubed_skeleton(label, tube_radius=self.tube_radius, spacing=_spacing(img, self.spacing),
                             multiclass=self.multiclass, spatial_dims=img.ndim - 1)
        converted, *_ = convert_to_dst_type(out, img, dtype=img.dtype)
        return converted


def _spacing(img: NdarrayOrTensor, spacing: Spacing) -> Any:
    """The spacing to use: None (voxels), the ``MetaTensor``'s voxel size for ``"pixdim"``, or the given one."""
    if not isinstance(spacing, str):
        return spacing
    if not isinstance(img, MetaTensor):
        raise TypeError(f"img: expected a MetaTensor (with an affine) for spacing='pixdim', got {describe(img)}; "
                        f"give the spacing explicitly for arrays and plain tensors")
    return meta_spacing(img, None)


class TubedSkeletond(MapTransform):
    """Dictionary twin of :class:`TubedSkeleton`: the skeleton of ``d[key]`` goes to ``d[key + skeleton_postfix]``.

    The skeleton has the label's shape, dtype and meta; a crop or flip that follows must list both keys (and
    the image) to keep them aligned. An existing ``d[key + skeleton_postfix]`` is replaced.

    Args:
        keys: keys of the labels (channel-first).
        tube_radius: as :class:`TubedSkeleton`.
        spacing: as :class:`TubedSkeleton` (None: voxels, as the reference; ``"pixdim"``: from each label's affine).
        multiclass: read each label as class ids.
        skeleton_postfix: the skeleton of ``key`` goes to ``key + skeleton_postfix``.
        allow_missing_keys: skip keys that are missing instead of raising ``KeyError``.

    Shape:
        - ``d[key]``: as :class:`TubedSkeleton`'s ``img``; ``d[key + skeleton_postfix]``: the same.

    Raises:
        ValueError: for an empty ``skeleton_postfix``, or the errors of :class:`TubedSkeleton`.

    Example:
        >>> import numpy as np
        >>> bar = np.zeros((1, 5, 7), dtype=np.uint8)
        >>> bar[0, 1:4, 1:6] = 1
        >>> TubedSkeletond("label")({"label": bar})["label_skeleton"].sum()  # 2 dilations: 14 of the 15 voxels
        np.uint64(14)
    """

    backend = TubedSkeleton.backend

    def __init__(self, keys: KeysCollection, *, tube_radius: float = 2, spacing: Spacing = None,
                 multiclass: bool = False, skeleton_postfix: str = "_skeleton", allow_missing_keys: bool = False
                 ) -> None:
        super().__init__(keys, allow_missing_keys)
        if not isinstance(skeleton_postfix, str) or not skeleton_postfix:
            raise ValueError(f"skeleton_postfix: expected a non-empty string (the skeleton would overwrite the "
                             f"label), got {describe(skeleton_postfix)}")
        self.skeleton_postfix = skeleton_postfix
        self.transform = TubedSkeleton(tube_radius=tube_radius, spacing=spacing, multiclass=multiclass)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """Add ``key + skeleton_postfix`` for every key."""
        d = dict(data)
        for key in self.key_iterator(d):
            d[f"{key}{self.skeleton_postfix}"] = self.transform(d[key])
        return d


TubedSkeletonD = TubedSkeletonDict = TubedSkeletond
