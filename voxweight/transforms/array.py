"""Array transforms that turn a channel-first label ``[C, *spatial]`` into a voxel weight map.

Thin MONAI wrappers around :func:`voxweight.class_balance_weights`,
:func:`voxweight.multiclass_balance_weights` and :func:`voxweight.boundary_weights`: the maths lives in
those pure functions, these classes only handle MONAI's types (``numpy.ndarray``, ``torch.Tensor``,
``MetaTensor``) and read the voxel spacing from a ``MetaTensor``'s affine. The weight map has the label's
shape ``[C, *spatial]`` (one map per channel, channels independent; with ``multiclass=True`` the label is
one channel of class indices and gets one map), dtype float32, the label's type and device, and for a
``MetaTensor`` the label's affine and meta, so that spatial transforms and crops treat it like the label.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing
from monai.transforms.transform import Transform
from monai.utils import TransformBackends, convert_to_dst_type

from voxweight._validate import check_flag, describe, plain_tensor
from voxweight.checks import check_all
from voxweight.maps import boundary_weights, class_balance_weights, multiclass_balance_weights

__all__ = ["WHOLE_INDICES", "BoundaryWeight", "ClassBalanceWeight", "meta_spacing", "whole_class_indices"]


def _plain(name: str, img: Any) -> np.ndarray | torch.Tensor:
    """Channel-first label as a plain ndarray or tensor (a ``MetaTensor`` loses its meta, not its data)."""
    if not isinstance(img, np.ndarray | torch.Tensor):
        raise TypeError(f"{name}: expected a numpy.ndarray or torch.Tensor [C, *spatial], got {describe(img)}")
    if img.ndim < 2:
        raise ValueError(f"{name}: expected a channel-first array [C, *spatial] with at least one spatial axis, "
                         f"got shape {list(img.shape)}")
    return plain_tensor(img) if isinstance(img, torch.Tensor) else img


def _like(out: np.ndarray | torch.Tensor, img: NdarrayOrTensor) -> NdarrayOrTensor:
    """``out`` (float32) in ``img``'s type and device; a ``MetaTensor`` gets a copy of ``img``'s meta."""
    converted, *_ = convert_to_dst_type(out, img, dtype=torch.float32)
    return converted


WHOLE_INDICES = "whole-number class indices with multiclass=True"
_FRACTIONAL = "fractional values (soft labels, or a label resampled without mode='nearest'?)"


def whole_class_indices(name: str, label: np.ndarray | torch.Tensor, what: str = WHOLE_INDICES
                        ) -> np.ndarray | torch.Tensor:
    """Integer class indices as they are; whole-number floats (as MONAI loads labels) as int64; fractions raise.

    Args:
        name: the argument named in the error.
        label: class indices, any shape.
        what: what the error says was expected.

    Raises:
        ValueError: for fractional values (governed by the value-check mode).

    Shape:
        - label: any; output: the same.

    Example:
        >>> whole_class_indices("img", np.array([0.0, 2.0])).dtype
        dtype('int64')
    """
    if isinstance(label, np.ndarray):
        if label.dtype.kind != "f":
            return label
        check_all(name, torch.from_numpy(np.asarray(label == np.round(label))), what, _FRACTIONAL)
        return label.astype(np.int64)
    if not label.is_floating_point():
        return label
    check_all(name, label == torch.round(label), what, _FRACTIONAL)
    return label.long()


def _class_indices(name: str, label: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """One channel ``[1, *spatial]`` of class indices; whole-number floats (as loaded by MONAI) become int64."""
    if label.shape[0] != 1:
        raise ValueError(f"{name}: expected one channel [1, *spatial] of class indices with multiclass=True "
                         f"(not one-hot), got shape {list(label.shape)}")
    return whole_class_indices(name, label)


def meta_spacing(img: NdarrayOrTensor, spacing: Any) -> Any:
    """The explicit ``spacing`` if given, else a ``MetaTensor``'s voxel size from its affine, else None.

    Example:
        >>> meta_spacing(np.zeros((1, 2, 2)), None) is None
        True
    """
    if spacing is not None or not isinstance(img, MetaTensor):
        return spacing
    return tuple(float(s) for s in affine_to_spacing(img.affine, r=img.ndim - 1))


class ClassBalanceWeight(Transform):
    """Class-balance weight map of a channel-first label (foreground/background, or multi-class).

    Calls :func:`voxweight.class_balance_weights` on each channel: with ``fg_weight`` and ``bg_weight``
    given, ``w = bg + (fg - bg) * t``; otherwise both come from the channel's own foreground fraction
    ``f`` (``"balanced"``: ``0.5 / f`` and ``0.5 / (1 - f)``, mean weight 1). An empty or full channel
    gets weights of 1.

    With ``multiclass=True`` the label is one channel of integer class indices ``0 .. K-1`` and
    :func:`voxweight.multiclass_balance_weights` gives ``w(x) = a[label(x)]``: ``a = class_weight`` if
    given, else from the volume's class frequencies ``f_c`` (``"balanced"``: ``1 / (K_present f_c)``, mean
    weight 1; absent classes do not count; one class only: all ones). Float labels holding whole numbers
    (MONAI's ``LoadImaged`` gives float32) are read as class indices.

    Args:
        fg_weight: weight of foreground voxels (``t = 1``), in ``[0, 1e12]``; with ``bg_weight``, fixes both
            weights. Binary labels only.
        bg_weight: weight of background voxels (``t = 0``), in ``[0, 1e12]``. Binary labels only.
        mode: how to compute the weights from the class frequencies when they are not given:
            ``"balanced"``, ``"inverse_frequency"`` or ``"sqrt_inverse"``.
        max_weight: clip the weights from above.
        multiclass: read the label as integer class indices (one map per volume).
        num_classes: ``K`` (multiclass only); default ``len(class_weight)``, else ``label.max() + 1`` (or,
            for sparse ids such as 3e9, the ids present: memory follows the label). Indices ``>= K`` raise.
        class_weight: fixed weights, one per class, >= 0 (multiclass only); None computes them per volume.

    Shape:
        - img: ``[C, *spatial]``, binary or soft labels in [0, 1]; with ``multiclass``, ``[1, *spatial]``
          class indices.
        - output: ``img``'s shape, float32, the type and device of ``img`` (a ``MetaTensor`` keeps
          its affine and meta).

    Raises:
        TypeError: if ``img`` is not an ndarray or tensor, or ``multiclass`` is not a bool.
        ValueError: for a label without a spatial axis, ``fg_weight``/``bg_weight`` with ``multiclass``,
            ``num_classes``/``class_weight`` without it, a multiclass label with several channels or
            fractional values, or the errors of :func:`voxweight.class_balance_weights` /
            :func:`voxweight.multiclass_balance_weights` (options checked when the transform is built).

    Example:
        >>> import numpy as np
        >>> ClassBalanceWeight()(np.array([[0, 0, 0, 1]]))
        array([[0.6666667, 0.6666667, 0.6666667, 2.       ]], dtype=float32)
        >>> ClassBalanceWeight(multiclass=True, num_classes=3)(np.array([[0, 0, 1, 2]]))
        array([[0.6666667, 0.6666667, 1.3333334, 1.3333334]], dtype=float32)
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, *, fg_weight: float | None = None, bg_weight: float | None = None,
                 mode: str = "balanced", max_weight: float | None = None, multiclass: bool = False,
                 num_classes: int | None = None, class_weight: Sequence[float] | None = None) -> None:
        self.fg_weight = fg_weight
        self.bg_weight = bg_weight
        self.mode = mode
        self.max_weight = max_weight
        self.multiclass = check_flag("multiclass", multiclass, expected="a bool")
        self.num_classes = num_classes
        self.class_weight = class_weight
        self._check_options()
        tiny = np.zeros((1, 2), dtype=np.int64 if self.multiclass else np.float32)
        self._compute(tiny)  # fail here, not later in a DataLoader worker

    def _check_options(self) -> None:
        """Binary-only options without ``multiclass``, multiclass-only options with it."""
        wrong = (("fg_weight", "bg_weight") if self.multiclass else ("num_classes", "class_weight"))
        for name in wrong:
            value = getattr(self, name)
            if value is not None:
                why = ("binary labels only; give per-class weights as class_weight" if self.multiclass
                       else "multiclass=True only")
                raise ValueError(f"{name}: expected None with multiclass={self.multiclass} ({why}), "
                                 f"got {describe(value)}")

    def _compute(self, label: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        if self.multiclass:
            return multiclass_balance_weights(_class_indices("img", label), num_classes=self.num_classes,
                                              mode=self.mode, class_weight=self.class_weight,
                                              max_weight=self.max_weight, spatial_dims=label.ndim - 1)
        return class_balance_weights(label, fg_weight=self.fg_weight, bg_weight=self.bg_weight, mode=self.mode,
                                     max_weight=self.max_weight, spatial_dims=label.ndim - 1)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Weight map of ``img`` (``[C, *spatial]``), same shape, float32, ``img``'s type."""
        return _like(self._compute(_plain("img", img)), img)


class BoundaryWeight(Transform):
    """Boundary-emphasis weight map ``1 + bonus`` of a channel-first label.

    Calls :func:`voxweight.boundary_weights` on each channel. ``"unet"`` (Ronneberger et al. 2015):
    ``bonus = w0 * exp(-(d1 + d2)^2 / (2 sigma^2))`` on background voxels, ``d1``/``d2`` the distances
    to the nearest and second-nearest object. ``"distance"``: ``bonus = w0 * exp(-d^2 / (2 sigma^2))``,
    ``d`` the distance to the foreground/background interface, on both sides.

    With ``multiclass=True`` the label is one channel of integer class indices (0 = background):
    ``"distance"`` measures ``d`` to the nearest voxel of another class (interfaces between any two
    classes), ``"unet"`` takes each connected component of each class > 0 as an object. Float labels
    holding whole numbers (MONAI's ``LoadImaged`` gives float32) are read as class indices.

    Distances and ``sigma`` are in the units of ``spacing``: if ``spacing`` is None and the label is a
    ``MetaTensor``, its voxel size (``pixdim``, mm for NIfTI) is read from its affine, so the map stays
    right after ``Spacingd``/``Orientationd``; a plain array or tensor then uses voxel units.

    ``backend`` is :func:`voxweight.boundary_weights`'s: with ``"auto"`` a label on a GPU (tensor or
    ``MetaTensor``) is weighted there in torch and its map stays on that device, a CPU label on the host
    (``edt``); ``"torch"`` uses torch for any label, ``"edt"``/``"scipy"`` the host for any label.

    ``"unet"`` needs two or more objects per channel: touching objects are one connected component,
    so a single-structure mask gets an all-ones map, with a ``UserWarning`` (once per call) naming the
    object count; pass ``instances`` to separate touching objects, or use ``mode="distance"``.

    Args:
        mode: ``"unet"`` or ``"distance"``.
        w0: height of the bonus, in [0, 1e12].
        sigma: width of the bonus, in spacing units.
        spacing: voxel size per spatial axis (or one number); overrides the ``MetaTensor``'s.
        multiclass: read the label as integer class indices (one map per volume).
        backend: ``"auto"``, ``"edt"``, ``"scipy"`` or ``"torch"`` (see above).

    Shape:
        - img: ``[C, *spatial]``, binary labels (or instance ids, see ``instances``); with ``multiclass``,
          ``[1, *spatial]`` class indices.
        - instances: optional integer instance ids (0 = background), ``img``'s shape or its spatial
          shape, passed to :func:`voxweight.boundary_weights` (``"unet"`` only).
        - output: ``[C, *spatial]``, float32, the type and device of ``img`` (a ``MetaTensor`` keeps
          its affine and meta).

    Raises:
        TypeError: if ``img`` is not an ndarray or tensor, or ``multiclass`` is not a bool.
        ValueError: for a label without a spatial axis, a multiclass label with several channels or
            fractional values, or the errors of :func:`voxweight.boundary_weights` (options checked when
            the transform is built).

    Warns:
        UserWarning: as :func:`voxweight.boundary_weights` (``"unet"`` with fewer than two objects, or a
            ``sigma`` far below the spacing).

    Example:
        >>> import numpy as np
        >>> w = BoundaryWeight(mode="distance", w0=2.0, sigma=1.0)(np.array([[0, 0, 1, 1]]))
        >>> w.shape, w.dtype, bool(w.min() >= 1.0)
        ((1, 4), dtype('float32'), True)
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, *, mode: str = "unet", w0: float = 10.0, sigma: float = 5.0,
                 spacing: float | tuple[float, ...] | list[float] | None = None, multiclass: bool = False,
                 backend: str = "auto") -> None:
        self.mode = mode
        self.w0 = w0
        self.sigma = sigma
        self.spacing = spacing
        self.multiclass = check_flag("multiclass", multiclass, expected="a bool")
        self.boundary_backend = backend
        n = 1 if spacing is None or np.ndim(spacing) == 0 else len(spacing)
        tiny = np.zeros((1,) + (2,) * n, dtype=np.int64 if self.multiclass else np.float32)
        with warnings.catch_warnings():  # the tiny label's "no objects" warning is not the user's
            warnings.simplefilter("ignore", UserWarning)
            self._compute(tiny, spacing)  # fail early on bad options

    def _compute(self, label: np.ndarray | torch.Tensor, spacing: Any, instances: Any = None
                 ) -> np.ndarray | torch.Tensor:
        return boundary_weights(label, mode=self.mode, w0=self.w0, sigma=self.sigma, spacing=spacing,
                                instances=instances, spatial_dims=label.ndim - 1, multiclass=self.multiclass,
                                backend=self.boundary_backend)

    def __call__(self, img: NdarrayOrTensor, instances: NdarrayOrTensor | None = None) -> NdarrayOrTensor:
        """Weight map of ``img`` (``[C, *spatial]``), same shape, float32, ``img``'s type."""
        label = _plain("img", img)
        if self.multiclass:
            label = _class_indices("img", label)
        if instances is not None:
            instances = _plain("instances", instances)
        return _like(self._compute(label, meta_spacing(img, self.spacing), instances), img)
