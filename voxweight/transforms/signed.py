"""MONAI transforms for the boundary loss's signed distance maps: ``SignedDistance`` and ``SignedDistanced``.

Thin wrappers around :func:`voxweight.maps.class_signed_distance` (the conventions and degenerate cases are
documented there): these classes handle MONAI's types (``numpy.ndarray``, ``torch.Tensor``, ``MetaTensor``),
read the voxel spacing from a ``MetaTensor``'s affine (``pixdim``, mm for NIfTI), and keep the label's
type, device and meta. The dictionary twin writes the map of ``d[key]`` to ``d[key + sdm_postfix]``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms.transform import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type

from voxweight._validate import check_flag, describe, plain_tensor
from voxweight.maps import class_signed_distance
from voxweight.transforms.array import meta_spacing, whole_class_indices

__all__ = ["SignedDistance", "SignedDistanceD", "SignedDistanceDict", "SignedDistanced"]

Spacing = float | tuple[float, ...] | list[float] | None


class SignedDistance(Transform):
    """Per-channel (or, with ``multiclass=True``, per-class) signed distance maps of a channel-first label.

    ``"levelset"`` (default): ``+d`` outside the class, ``-d`` inside (distances between voxel centres, in
    the units of the spacing), 0 where a class has no boundary. ``"kervadec"``: exactly the reference
    ``one_hot2dist`` of Kervadec et al. (inside ``-(d - 1)``, an absent class all zeros). See
    :func:`voxweight.maps.class_signed_distance`.

    Without ``multiclass`` every channel is a binary label (a one-hot label gives one map per class).
    With ``multiclass=True`` the label is one channel of class indices ``0 .. K-1`` (float labels holding
    whole numbers, as MONAI's ``LoadImaged`` gives, included) and the output has ``K`` channels in one-hot
    order. If ``spacing`` is None and the label is a ``MetaTensor``, the spacing is read from its affine.

    Args:
        multiclass: read the label as one channel of class indices.
        num_classes: ``K`` (multiclass only); default ``label.max() + 1`` (give it for a stable channel count).
        spacing: voxel size per spatial axis (or one number); overrides the ``MetaTensor``'s.
        convention: ``"levelset"`` or ``"kervadec"``.
        backend: ``"auto"``, ``"edt"``, ``"scipy"`` or ``"torch"`` (``"auto"``: a CUDA tensor stays on its device).

    Shape:
        - img: ``[C, *spatial]`` binary, or ``[1, *spatial]`` class indices with ``multiclass``.
        - output: ``[C, *spatial]`` (``[K, *spatial]`` with ``multiclass``), float32, ``img``'s type and device
          (a ``MetaTensor`` keeps its affine and meta).

    Raises:
        TypeError: if ``img`` is not an ndarray or tensor, or ``multiclass`` is not a bool.
        ValueError: for a label without a spatial axis, a multiclass label with several channels or fractional
            values, or the errors of :func:`voxweight.maps.class_signed_distance` (options checked when built).

    Example:
        >>> import numpy as np
        >>> SignedDistance()(np.array([[0, 1, 1, 0]]))
        array([[ 1., -1., -1.,  1.]], dtype=float32)
        >>> SignedDistance(multiclass=True, convention="kervadec")(np.array([[0, 1, 1]]))
        array([[ 0.,  1.,  2.],
               [ 1.,  0., -1.]], dtype=float32)
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, *, multiclass: bool = False, num_classes: int | None = None, spacing: Spacing = None,
                 convention: str = "levelset", backend: str = "auto") -> None:
        self.multiclass = check_flag("multiclass", multiclass, expected="a bool")
        self.num_classes = num_classes
        self.spacing = spacing
        self.convention = convention
        self.distance_backend = backend
        n = 1 if spacing is None or np.ndim(spacing) == 0 else len(spacing)
        self._compute(np.zeros((1,) + (2,) * n, dtype=np.int64), spacing)  # fail here, not in a DataLoader worker

    def _compute(self, label: np.ndarray | torch.Tensor, spacing: Any) -> np.ndarray | torch.Tensor:
        if self.multiclass:
            label = _class_indices(label)[0]
        return class_signed_distance(label, num_classes=self.num_classes, multiclass=self.multiclass,
                                     spacing=spacing, convention=self.convention,
                                     spatial_dims=label.ndim if self.multiclass else label.ndim - 1,
                                     backend=self.distance_backend)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Signed distance maps of ``img``, float32, ``img``'s type, device and meta."""
        if not isinstance(img, np.ndarray | torch.Tensor):
            raise TypeError(f"img: expected a numpy.ndarray or torch.Tensor [C, *spatial], got {describe(img)}")
        if img.ndim < 2:
            raise ValueError(f"img: expected a channel-first array [C, *spatial] with at least one spatial axis, "
                             f"got shape {list(img.shape)}")
        label = plain_tensor(img) if isinstance(img, torch.Tensor) else img
        out = self._compute(label, meta_spacing(img, self.spacing))
        converted, *_ = convert_to_dst_type(out, img, dtype=torch.float32)
        return converted


def _class_indices(label: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """One channel ``[1, *spatial]`` of class indices; whole-number floats (as loaded by MONAI) become int64."""
    if label.shape[0] != 1:
        raise ValueError(f"img: expected one channel [1, *spatial] of class indices with multiclass=True "
                         f"(not one-hot: give a one-hot label with multiclass=False), got shape {list(label.shape)}")
    return whole_class_indices("img", label)


class SignedDistanced(MapTransform):
    """Dictionary twin of :class:`SignedDistance`: the maps of ``d[key]`` go to ``d[key + sdm_postfix]``.

    The spacing is read from each label's ``MetaTensor`` affine (``pixdim``) unless ``spacing`` is given.
    An existing ``d[key + sdm_postfix]`` is replaced. With ``multiclass=True`` the map has ``K`` channels
    while the label has one: a crop or flip that follows must list both keys to keep them aligned.

    Args:
        keys: keys of the labels (channel-first).
        multiclass: read each label as one channel of class indices.
        num_classes: ``K`` (multiclass only).
        spacing: voxel size per spatial axis; overrides the ``MetaTensor``'s.
        convention: ``"levelset"`` or ``"kervadec"``.
        backend: ``"auto"``, ``"edt"``, ``"scipy"`` or ``"torch"``.
        sdm_postfix: the maps of ``key`` go to ``key + sdm_postfix``.
        allow_missing_keys: skip keys that are missing instead of raising ``KeyError``.

    Shape:
        - ``d[key]``: as :class:`SignedDistance`'s ``img``; ``d[key + sdm_postfix]``: its output.

    Raises:
        ValueError: for an empty ``sdm_postfix``, or the errors of :class:`SignedDistance`.

    Example:
        >>> import numpy as np
        >>> SignedDistanced("label")({"label": np.array([[0, 0, 1]])})["label_sdm"]
        array([[ 2.,  1., -1.]], dtype=float32)
    """

    backend = SignedDistance.backend

    def __init__(self, keys: KeysCollection, *, multiclass: bool = False, num_classes: int | None = None,
                 spacing: Spacing = None, convention: str = "levelset", backend: str = "auto",
                 sdm_postfix: str = "_sdm", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if not isinstance(sdm_postfix, str) or not sdm_postfix:
            raise ValueError(f"sdm_postfix: expected a non-empty string (the map would overwrite the label), "
                             f"got {describe(sdm_postfix)}")
        self.sdm_postfix = sdm_postfix
        self.transform = SignedDistance(multiclass=multiclass, num_classes=num_classes, spacing=spacing,
                                        convention=convention, backend=backend)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """Add ``key + sdm_postfix`` for every key."""
        d = dict(data)
        for key in self.key_iterator(d):
            d[f"{key}{self.sdm_postfix}"] = self.transform(d[key])
        return d


SignedDistanceD = SignedDistanceDict = SignedDistanced
