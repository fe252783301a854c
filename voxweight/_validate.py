"""Argument checks shared by every part of voxweight: names, types, shapes (metadata only, no data read).

Every message names the argument and reads ``"<arg>: expected ..., got ..."``. Value checks, which read
the data (ranges, finiteness), live in :mod:`voxweight.checks`, governed by its value-check mode.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "as_weight_tensor",
    "check_broadcastable_to",
    "check_flag",
    "check_float_tensor",
    "check_positive_int",
    "check_positive_number",
    "check_same_device",
    "check_spacing",
    "check_tensor",
    "describe",
    "look_up_option",
    "plain_tensor",
]


def describe(x: Any) -> str:
    """Short description of a value for error messages: shape and dtype for arrays.

    Example:
        >>> describe(np.zeros((2, 3), dtype=np.uint8)), describe(1.5), describe(None)
        ('array of shape [2, 3] and dtype uint8', 'float 1.5', 'NoneType')
    """
    if isinstance(x, torch.Tensor | np.ndarray):
        kind = "tensor" if isinstance(x, torch.Tensor) else "array"
        return f"{kind} of shape {list(x.shape)} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}" if isinstance(x, int | float | str | bool) else type(x).__name__


def look_up_option(name: str, value: Any, options: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``options``, else raise ``ValueError`` with a "did you mean" hint.

    Example:
        >>> look_up_option("mode", "unet", ("unet", "distance"))
        'unet'
    """
    if isinstance(value, str) and value in options:
        return value
    listed = ", ".join(repr(o) for o in options)
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value.lower(), options, n=1, cutoff=0.5)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
    raise ValueError(f"{name}: expected one of {listed}, got {value!r}{hint}")


def check_flag(name: str, value: Any, *, expected: str = "True or False") -> bool:
    """Require a bool (numpy's ``bool_`` too); return it as ``bool``. ``expected`` words the message."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name}: expected {expected}, got {describe(value)}")
    return bool(value)


def check_positive_int(name: str, value: Any, *, allow_none: bool = False,
                       expected: str = "an integer >= 1") -> int | None:
    """Require an integer >= 1 (not a bool; ``None`` too with ``allow_none``); return it as ``int``.

    ``expected`` words the message (``" or None"`` is appended with ``allow_none``).

    Example:
        >>> check_positive_int("workers", 4), check_positive_int("num_classes", None, allow_none=True)
        (4, None)
    """
    if value is None and allow_none:
        return None
    wanted = expected + (" or None" if allow_none else "")
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name}: expected {wanted}, got {describe(value)}")
    if value < 1:
        raise ValueError(f"{name}: expected {wanted}, got {value}")
    return int(value)


def check_positive_number(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Require a finite real number > 0 (or >= 0 with ``allow_zero``); return it as ``float``.

    An int too large for a float (``10**400``) is a ``ValueError`` like any other out-of-range value.

    Example:
        >>> check_positive_number("sigma", 10**400)
        Traceback (most recent call last):
        ...
        ValueError: sigma: expected a finite number > 0, got an int too large for a float
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name}: expected a number, got {describe(value)}")
    need = "a finite number >= 0" if allow_zero else "a finite number > 0"
    try:
        value = float(value)
    except OverflowError:
        raise ValueError(f"{name}: expected {need}, got an int too large for a float") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name}: expected {need}, got {value!r}")
    return value


def check_spacing(name: str, spacing: Any, ndim: int) -> tuple[float, ...]:
    """Normalise voxel spacing to ``ndim`` positive floats (a scalar means isotropic, None means 1).

    Example:
        >>> check_spacing("spacing", 2, 3), check_spacing("spacing", [1, 2.5], 2)
        ((2.0, 2.0, 2.0), (1.0, 2.5))
    """
    if spacing is None:
        return (1.0,) * ndim
    if isinstance(spacing, int | float | np.integer | np.floating) and not isinstance(spacing, bool):
        return (check_positive_number(name, spacing),) * ndim
    if isinstance(spacing, torch.Tensor | np.ndarray):
        spacing = [float(s) for s in np.asarray(spacing.tolist()).reshape(-1)]
    if not isinstance(spacing, Sequence) or isinstance(spacing, str):
        raise TypeError(f"{name}: expected a number or a sequence of {ndim} numbers, got {describe(spacing)}")
    if len(spacing) != ndim:
        raise ValueError(f"{name}: expected {ndim} values (one per spatial axis), got {len(spacing)}: "
                         f"{list(spacing)}")
    return tuple(check_positive_number(f"{name}[{i}]", s) for i, s in enumerate(spacing))


def check_tensor(name: str, x: Any) -> torch.Tensor:
    """Require a torch tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {describe(x)}")
    return x


def check_float_tensor(name: str, x: Any) -> torch.Tensor:
    """Require a real floating-point torch tensor."""
    check_tensor(name, x)
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    return x


def check_same_device(name: str, x: torch.Tensor, device: torch.device) -> None:
    """Require ``x`` to live on ``device``."""
    if x.device != device:
        raise ValueError(f"{name}: expected a tensor on {device} (where input is), got one on {x.device}")


def check_broadcastable_to(name: str, x: torch.Tensor, shape: Sequence[int], hint: str = "") -> None:
    """Require ``x`` to have ``len(shape)`` dims, each equal to ``shape``'s or 1 (no silent broadcast)."""
    ok = x.ndim == len(shape) and all(a in (1, b) for a, b in zip(x.shape, shape, strict=True))
    if not ok:
        raise ValueError(
            f"{name}: expected shape {list(shape)} or with some dims of size 1 (same number of dims), "
            f"got {list(x.shape)}{hint}"
        )


def plain_tensor(x: torch.Tensor) -> torch.Tensor:
    """``x`` as a plain ``torch.Tensor``, sharing its data (a subclass such as MONAI's ``MetaTensor`` drops its meta).

    Example:
        >>> from monai.data import MetaTensor
        >>> type(plain_tensor(MetaTensor(torch.zeros(2)))).__name__
        'Tensor'
    """
    return x if type(x) is torch.Tensor else x.as_subclass(torch.Tensor)


def as_weight_tensor(name: str, value: Any, *, like: torch.Tensor) -> torch.Tensor | None:
    """Convert a number, sequence, array or tensor to a tensor with ``like``'s float dtype and device.

    ``None`` stays ``None``. A tensor must already be on ``like``'s device (it is never moved silently).

    Raises:
        TypeError: for a bool, string, complex or bool tensor, or anything numpy cannot read as numbers.
        ValueError: for a tensor on another device.

    Example:
        >>> as_weight_tensor("pos_weight", [1, 2], like=torch.zeros(1))
        tensor([1., 2.])
    """
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name}: expected a real-valued tensor, got dtype {value.dtype}")
        check_same_device(name, value, like.device)
        return value.to(like.dtype)
    if isinstance(value, bool | str):
        raise TypeError(f"{name}: expected a number, a sequence of numbers or a tensor, got {describe(value)}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except OverflowError:
        raise ValueError(f"{name}: expected finite values, got a number too large for float64") from None
    except (TypeError, ValueError):
        raise TypeError(
            f"{name}: expected a number, a sequence of numbers or a tensor, got {describe(value)}"
        ) from None
    return torch.as_tensor(array, dtype=like.dtype, device=like.device)
