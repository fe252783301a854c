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
    "label_tensor",
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


def label_tensor(label: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``label`` as a plain tensor on its device, for reading only (an ndarray is wrapped on the CPU, not copied).

    A read-only ndarray is copied (torch cannot wrap it); dtypes torch has few kernels for (uint16, uint32,
    uint64) become int64.

    Example:
        >>> label_tensor(np.array([0, 1], dtype=np.uint16))
        tensor([0, 1])
    """
    if isinstance(label, np.ndarray):
        a = np.ascontiguousarray(label)
        t = torch.from_numpy(a if a.flags.writeable else a.copy())
    else:
        t = plain_tensor(label.detach())
    return t.to(torch.int64) if t.dtype in (torch.uint16, torch.uint32, torch.uint64) else t


def _numel(x: np.ndarray | torch.Tensor) -> int:
    return x.numel() if isinstance(x, torch.Tensor) else x.size


def _is_integer(x: np.ndarray | torch.Tensor, *, bool_ok: bool) -> bool:
    if isinstance(x, np.ndarray):
        return x.dtype.kind in ("biu" if bool_ok else "iu")
    return not (x.is_floating_point() or x.is_complex() or (x.dtype == torch.bool and not bool_ok))


def _is_signed(x: np.ndarray | torch.Tensor) -> bool:
    return x.dtype.kind == "i" if isinstance(x, np.ndarray) else x.dtype.is_signed and not x.is_floating_point()


def _is_bool(x: np.ndarray | torch.Tensor) -> bool:
    return x.dtype == (np.bool_ if isinstance(x, np.ndarray) else torch.bool)


def check_classes(lab: np.ndarray | torch.Tensor) -> None:
    """Require integer (or bool) class indices >= 0 (ndarray, or tensor on its device: one scalar sync).

    Raises:
        TypeError: for a float label; ``ValueError`` for a negative index.
    """
    if not _is_integer(lab, bool_ok=True):
        raise TypeError(f"label: expected integer class indices (or bool) with multiclass=True, got dtype "
                        f"{lab.dtype}; cast a float label that holds class indices with .long() / .astype(int)")
    if _is_signed(lab) and _numel(lab) and int(lab.min()) < 0:
        raise ValueError(f"label: expected class indices >= 0 (0 = background), got minimum {int(lab.min())}")


def check_binary(lab: np.ndarray | torch.Tensor) -> None:
    """Require a binary label (bool, or values 0 and 1 only), naming up to five other values found.

    A tensor is checked on its device (one scalar sync; the values are read only to word the error).

    Raises:
        ValueError: for any other value.
    """
    if _is_bool(lab):
        return
    other = (lab != 0) & (lab != 1)
    if not bool(other.any()):
        return
    bad = lab[other]
    if isinstance(bad, np.ndarray):
        shown = ", ".join(f"{v:g}" for v in np.unique(bad)[:5])
    else:
        shown = ", ".join(f"{v:g}" for v in torch.unique(bad.double() if bad.is_floating_point() else bad)[:5].tolist())
    raise ValueError(f"label: expected a binary label (values 0 and 1; give instance ids as `instances`), "
                     f"got {_numel(bad)} voxels with other values, e.g. {shown}")


def check_instances(instances: Any, lab: np.ndarray | torch.Tensor, spatial: tuple[int, ...]
                    ) -> np.ndarray | torch.Tensor:
    """Validated instance ids broadcast to ``lab``'s shape; their foreground must be the label's.

    For a tensor ``lab`` the ids become a tensor on its device (moved there if given elsewhere) and every
    check runs there (scalar syncs only); for an ndarray ``lab`` they become an ndarray.

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
    on_device = isinstance(lab, torch.Tensor)
    inst = label_tensor(instances).to(lab.device) if on_device else host_array(instances)
    if not _is_integer(inst, bool_ok=False):
        raise TypeError(f"instances: expected integer instance ids, got dtype {inst.dtype}")
    if tuple(inst.shape) not in (tuple(lab.shape), spatial):
        raise ValueError(f"instances: expected shape {list(lab.shape)} (the label's) or {list(spatial)} (its spatial "
                         f"shape), got {list(inst.shape)}")
    if _numel(inst) and _is_signed(inst) and int(inst.min()) < 0:
        raise ValueError(f"instances: expected ids >= 0 (0 = background), got minimum {int(inst.min())}")
    if not _is_bool(lab) and not bool((lab >= 0).all()):
        raise ValueError("label: expected values >= 0 (non-zero = foreground), got negative or NaN values")
    inst = inst.expand(lab.shape) if on_device else np.broadcast_to(inst, lab.shape)
    disagree = int(((lab != 0) != (inst > 0)).sum())
    if disagree:
        raise ValueError(f"instances: expected ids > 0 exactly where label != 0, got {disagree} voxels that disagree")
    return inst
