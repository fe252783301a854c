"""Label volumes as the weight maps read them: type and shape checks, conversions, and value checks.

Shared by :mod:`~voxweight.maps.balance` and :mod:`~voxweight.maps.boundary`. Conversions never modify
the label and never hand out memory that is written to later; a tensor subclass (MONAI's
``MetaTensor``) becomes a plain tensor with the same data.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import torch

from voxweight._validate import check_positive_int, check_positive_number, describe, plain_tensor

__all__ = [
    "MAX_WEIGHT",
    "Label",
    "check_binary",
    "check_classes",
    "check_instances",
    "check_label",
    "check_weight",
    "class_index_tensor",
    "float_tensor",
    "host_array",
]

Label = TypeVar("Label", np.ndarray, torch.Tensor)

MAX_WEIGHT = 1e12  # largest weight option: two composed maps (1e24) and a loss's sum over them stay finite in float32


def check_weight(name: str, value: Any, *, allow_zero: bool = True) -> float:
    """Require a finite number in ``[0, MAX_WEIGHT]`` (``(0, MAX_WEIGHT]`` without ``allow_zero``); return it.

    ``MAX_WEIGHT`` (1e12) keeps every map finite in float32, also once two maps are multiplied.

    Raises:
        TypeError: for a non-number; ``ValueError`` for a value out of range, inf or NaN.

    Example:
        >>> check_weight("w0", 10)
        10.0
    """
    value = check_positive_number(name, value, allow_zero=allow_zero)
    if value > MAX_WEIGHT:
        raise ValueError(f"{name}: expected a number <= {MAX_WEIGHT:g} (larger weights overflow the float32 map), "
                         f"got {value!r}")
    return value


def check_label(label: Any, spatial_dims: Any) -> None:
    """Type, dtype and number of dims of ``label``; ``spatial_dims`` an integer >= 1.

    Raises:
        TypeError: for a label that is not an ndarray/tensor of bool, integer or float dtype, or a
            non-integer ``spatial_dims``.
        ValueError: for ``spatial_dims < 1`` or ``label.ndim < spatial_dims``.

    Example:
        >>> check_label(np.zeros((2, 4, 4)), spatial_dims=2)
    """
    check_positive_int("spatial_dims", spatial_dims)
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


def float_tensor(label: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``label`` as a float32 tensor on its device, never sharing memory that is written to.

    Example:
        >>> float_tensor(np.array([0, 1], dtype=np.uint8))
        tensor([0., 1.])
    """
    if isinstance(label, np.ndarray):
        a = np.asarray(label, dtype=np.float32)
        return torch.from_numpy(a if a.flags.writeable else a.copy())
    return plain_tensor(label.detach()).to(torch.float32)


def host_array(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """A host ndarray with ``x``'s values (a tensor is copied to the CPU; bfloat16 becomes float32).

    Example:
        >>> host_array(torch.tensor([1.5], dtype=torch.bfloat16))
        array([1.5], dtype=float32)
    """
    if isinstance(x, np.ndarray):
        return x
    t = plain_tensor(x.detach())
    return (t.float() if t.dtype == torch.bfloat16 else t).cpu().numpy()


def class_index_tensor(label: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``label`` as an int64 tensor on its device (a copy for ndarrays); float and complex dtypes raise.

    Raises:
        TypeError: for a floating-point or complex label (cast class indices held as floats first).

    Example:
        >>> class_index_tensor(np.array([0, 2], dtype=np.uint8))
        tensor([0, 2])
    """
    integer = label.dtype.kind in "biu" if isinstance(label, np.ndarray) else not (
        label.is_floating_point() or label.is_complex())
    if not integer:
        raise TypeError(f"label: expected integer class indices (or bool), got dtype {label.dtype}; "
                        f"cast a float label that holds class indices with .long() / .astype(int)")
    if isinstance(label, np.ndarray):
        return torch.from_numpy(label.astype(np.int64))
    return plain_tensor(label.detach()).to(torch.int64)


def check_classes(lab: np.ndarray) -> None:
    """Require integer (or bool) class indices >= 0.

    Raises:
        TypeError: for a float label; ``ValueError`` for a negative index.
    """
    if lab.dtype.kind not in "biu":
        raise TypeError(f"label: expected integer class indices (or bool) with multiclass=True, got dtype "
                        f"{lab.dtype}; cast a float label that holds class indices with .long() / .astype(int)")
    if lab.dtype.kind == "i" and lab.size and lab.min() < 0:
        raise ValueError(f"label: expected class indices >= 0 (0 = background), got minimum {lab.min()}")


def check_binary(lab: np.ndarray) -> None:
    """Require a binary label (bool, or values 0 and 1 only), naming up to five other values found.

    Raises:
        ValueError: for any other value.
    """
    if lab.dtype == bool:
        return
    bad = lab[(lab != 0) & (lab != 1)]
    if bad.size:
        shown = ", ".join(f"{v:g}" for v in np.unique(bad)[:5])
        raise ValueError(f"label: expected a binary label (values 0 and 1; give instance ids as `instances`), "
                         f"got {bad.size} voxels with other values, e.g. {shown}")


def check_instances(instances: Any, lab: np.ndarray, spatial: tuple[int, ...]) -> np.ndarray:
    """Validated instance ids broadcast to ``lab``'s shape; their foreground must be the label's.

    Raises:
        TypeError: for instances that are not an integer ndarray/tensor.
        ValueError: for the wrong shape, negative ids, a negative label, or ids > 0 where the label is 0
            (or the reverse).

    Shape:
        - instances: ``lab``'s shape or ``spatial``; output: ``lab``'s shape.
    """
    if not isinstance(instances, np.ndarray | torch.Tensor):
        raise TypeError(f"instances: expected a numpy.ndarray or torch.Tensor of integer ids, "
                        f"got {describe(instances)}")
    inst = host_array(instances)
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
