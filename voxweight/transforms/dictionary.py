"""Dictionary transforms: the weight map of ``d[key]`` goes to ``d[key + weight_postfix]``.

If that key already holds a map, the new one is composed with it rather than replacing it:
:class:`ClassBalanceWeightd` multiplies it, :class:`BoundaryWeightd` adds its bonus (its map minus 1).
So ``ClassBalanceWeightd`` followed by ``BoundaryWeightd(mode="unet")`` gives the U-Net paper's
``w = w_c + w0 * exp(-(d1 + d2)^2 / (2 sigma^2))`` (the other order gives ``w_c * (1 + bonus)``).
The map has the label's shape ``[C, *spatial]`` (``[1, *spatial]`` for a multi-class label of class
indices, ``multiclass=True``): add ``key + weight_postfix`` to the keys of the crops and flips that
follow, so that it stays aligned with the label.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms.transform import MapTransform
from monai.utils import convert_to_dst_type

from voxweight._validate import describe
from voxweight.transforms.array import BoundaryWeight, ClassBalanceWeight

__all__ = [
    "BoundaryWeightD",
    "BoundaryWeightDict",
    "BoundaryWeightd",
    "ClassBalanceWeightD",
    "ClassBalanceWeightDict",
    "ClassBalanceWeightd",
]


def _check_postfix(weight_postfix: Any) -> str:
    if not isinstance(weight_postfix, str) or not weight_postfix:
        raise ValueError(f"weight_postfix: expected a non-empty string (the map would overwrite the label), "
                         f"got {describe(weight_postfix)}")
    return weight_postfix


def _store(d: dict, key: str, new: NdarrayOrTensor, combine: Callable[[Any, Any], Any]) -> None:
    """Put ``new`` under ``key``, or ``combine(old, new)`` if ``key`` already holds a map of the same shape."""
    if key not in d:
        d[key] = new
        return
    old = d[key]
    if tuple(getattr(old, "shape", ())) != tuple(new.shape):
        raise ValueError(f"{key}: expected an existing weight map of shape {list(new.shape)} (the label's) "
                         f"to compose with, got {describe(old)}")
    new, *_ = convert_to_dst_type(new, old, dtype=new.dtype)
    d[key] = combine(old, new)


def _multiply(old: Any, new: Any) -> Any:
    return old * new


def _add_bonus(old: Any, new: Any) -> Any:
    return old + (new - 1.0)


class ClassBalanceWeightd(MapTransform):
    """Dictionary twin of :class:`~voxweight.transforms.ClassBalanceWeight`.

    Writes the class-balance map of ``d[key]`` to ``d[key + weight_postfix]``, or multiplies the map
    already there (same shape required). With ``multiclass=True`` each label is one channel of integer
    class indices and each voxel gets its class's weight (:func:`voxweight.multiclass_balance_weights`).

    Args:
        keys: keys of the labels (channel-first ``[C, *spatial]``).
        fg_weight: weight of foreground voxels; with ``bg_weight``, fixes both weights. Binary labels only.
        bg_weight: weight of background voxels. Binary labels only.
        mode: ``"balanced"``, ``"inverse_frequency"`` or ``"sqrt_inverse"``, used when the weights are
            not given (computed from each label's own foreground fraction, or class frequencies).
        max_weight: clip the weights from above.
        multiclass: read each label as integer class indices ``0 .. K-1`` (float labels holding whole
            numbers, as ``LoadImaged`` gives, included).
        num_classes: ``K`` (multiclass only); default ``len(class_weight)``, else ``label.max() + 1``.
        class_weight: fixed weights, one per class, >= 0 (multiclass only); None computes them per label.
        weight_postfix: the map of ``key`` goes to ``key + weight_postfix``.
        allow_missing_keys: skip keys that are missing instead of raising ``KeyError``.

    Shape:
        - ``d[key]``: ``[C, *spatial]`` (``[1, *spatial]`` with ``multiclass``); ``d[key + weight_postfix]``:
          the same shape, float32, the label's type (a ``MetaTensor`` keeps the label's affine and meta).

    Raises:
        ValueError: for an empty ``weight_postfix``, an existing map of another shape, or the errors of
            :class:`~voxweight.transforms.ClassBalanceWeight`.

    Example:
        >>> import numpy as np
        >>> out = ClassBalanceWeightd("label")({"label": np.array([[0, 0, 0, 1]])})
        >>> out["label_weight"]
        array([[0.6666667, 0.6666667, 0.6666667, 2.       ]], dtype=float32)
        >>> ClassBalanceWeightd("label", multiclass=True, class_weight=[0.5, 2.0, 4.0])(
        ...     {"label": np.array([[0, 1, 2, 2]])})["label_weight"]
        array([[0.5, 2. , 4. , 4. ]], dtype=float32)
    """

    backend = ClassBalanceWeight.backend

    def __init__(self, keys: KeysCollection, *, fg_weight: float | None = None, bg_weight: float | None = None,
                 mode: str = "balanced", max_weight: float | None = None, multiclass: bool = False,
                 num_classes: int | None = None, class_weight: Sequence[float] | None = None,
                 weight_postfix: str = "_weight", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.weight_postfix = _check_postfix(weight_postfix)
        self.weighter = ClassBalanceWeight(fg_weight=fg_weight, bg_weight=bg_weight, mode=mode,
                                           max_weight=max_weight, multiclass=multiclass,
                                           num_classes=num_classes, class_weight=class_weight)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """Add (or multiply into) ``key + weight_postfix`` for every key."""
        d = dict(data)
        for key in self.key_iterator(d):
            _store(d, f"{key}{self.weight_postfix}", self.weighter(d[key]), _multiply)
        return d


class BoundaryWeightd(MapTransform):
    """Dictionary twin of :class:`~voxweight.transforms.BoundaryWeight`.

    Writes the boundary map ``1 + bonus`` of ``d[key]`` to ``d[key + weight_postfix]``, or adds
    ``bonus`` to the map already there (same shape required). The spacing is read from each label's
    ``MetaTensor`` affine unless ``spacing`` is given. With ``multiclass=True`` each label is one channel
    of integer class indices and the bonus marks the interfaces between any two classes.

    Args:
        keys: keys of the labels (channel-first ``[C, *spatial]``).
        mode: ``"unet"`` or ``"distance"``.
        w0: height of the bonus, in [0, 1e12].
        sigma: width of the bonus, in spacing units (mm for NIfTI).
        spacing: voxel size per spatial axis; overrides the ``MetaTensor``'s.
        instance_key: optional key of an integer instance map (the label's shape) separating touching
            objects for ``"unet"``.
        multiclass: read each label as integer class indices, 0 = background (float labels holding
            whole numbers, as ``LoadImaged`` gives, included).
        backend: ``"auto"`` (a GPU label is weighted there, in torch), ``"edt"``, ``"scipy"`` or ``"torch"``
            (see :class:`~voxweight.transforms.BoundaryWeight`).
        weight_postfix: the map of ``key`` goes to ``key + weight_postfix``.
        allow_missing_keys: skip keys that are missing instead of raising ``KeyError``.

    Shape:
        - ``d[key]``: ``[C, *spatial]`` (``[1, *spatial]`` with ``multiclass``); ``d[key + weight_postfix]``:
          the same shape, float32, the label's type (a ``MetaTensor`` keeps the label's affine and meta).

    Raises:
        ValueError: for an empty ``weight_postfix``, an existing map of another shape, or the errors of
            :class:`~voxweight.transforms.BoundaryWeight`.

    Example:
        >>> import numpy as np
        >>> d = {"label": np.array([[0, 0, 1, 1]]), "label_weight": np.full((1, 4), 2.0, np.float32)}
        >>> out = BoundaryWeightd("label", mode="distance", w0=0.0)(d)
        >>> out["label_weight"]
        array([[2., 2., 2., 2.]], dtype=float32)
    """

    backend = BoundaryWeight.backend

    def __init__(self, keys: KeysCollection, *, mode: str = "unet", w0: float = 10.0, sigma: float = 5.0,
                 spacing: float | tuple[float, ...] | list[float] | None = None, instance_key: str | None = None,
                 multiclass: bool = False, backend: str = "auto", weight_postfix: str = "_weight",
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.weight_postfix = _check_postfix(weight_postfix)
        self.instance_key = instance_key
        self.weighter = BoundaryWeight(mode=mode, w0=w0, sigma=sigma, spacing=spacing, multiclass=multiclass,
                                       backend=backend)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """Add ``key + weight_postfix`` (or add the bonus to it) for every key."""
        d = dict(data)
        instances = None
        if self.instance_key is not None:
            if self.instance_key not in d:
                raise KeyError(f"instance_key: expected {self.instance_key!r} among the keys, got {list(d)}")
            instances = d[self.instance_key]
        for key in self.key_iterator(d):
            _store(d, f"{key}{self.weight_postfix}", self.weighter(d[key], instances), _add_bonus)
        return d


ClassBalanceWeightD = ClassBalanceWeightDict = ClassBalanceWeightd
BoundaryWeightD = BoundaryWeightDict = BoundaryWeightd
