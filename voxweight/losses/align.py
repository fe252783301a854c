"""Turn user-supplied weights into tensors aligned by meaning, not by accident.

Per-class vectors go on the channel axis, per-sample vectors on the batch axis, per-voxel maps must
already have the input's number of dimensions. Nothing here broadcasts silently: a shape that does
not line up raises a ``ValueError`` naming the argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from voxweight._validate import as_weight_tensor, check_broadcastable_to, check_same_device, check_tensor
from voxweight.checks import check_nonnegative

__all__ = [
    "WeightLike",
    "align_batch",
    "align_channel",
    "align_map",
    "check_mask",
    "checked_weight",
    "multiply",
    "per_channel",
    "widen_labels",
]

WeightLike = float | Sequence[float] | np.ndarray | torch.Tensor


def align_channel(name: str, w: torch.Tensor | None, shape: Sequence[int], channel_dim: int = 1
                  ) -> torch.Tensor | None:
    """Place a per-class weight on the channel axis of ``shape``.

    A 0-d tensor applies to everything; a 1-D tensor must hold one value per channel; a tensor with the
    full number of dimensions must match ``shape`` (or have size 1) on every axis.

    Raises:
        ValueError: naming ``name``, for a vector of the wrong length, a tensor that does not line up, or a
            non-scalar weight for an input without a channel axis (0-d or 1-d input).

    Example:
        >>> align_channel("pos_weight", torch.tensor([1.0, 2.0, 3.0]), (2, 3, 8, 8, 3)).shape  # C, not W
        torch.Size([1, 3, 1, 1, 1])
    """
    if w is None or w.ndim == 0:
        return w
    if len(shape) <= channel_dim:
        raise ValueError(
            f"{name}: expected a number (0-d) for input with shape {list(shape)}, which has no channel axis "
            f"{channel_dim}; per-class weights need input of shape [N, C, *spatial], got {list(w.shape)}"
        )
    if w.ndim == 1:
        channels = shape[channel_dim]
        if w.shape[0] != channels:
            raise ValueError(
                f"{name}: expected one value per channel ({channels}, the size of axis {channel_dim} of "
                f"input with shape {list(shape)}), got {w.shape[0]} values"
            )
        view = [1] * len(shape)
        view[channel_dim] = channels
        return w.reshape(view)
    check_broadcastable_to(name, w, shape, hint=" (or pass a 1-D tensor with one value per channel)")
    return w


def align_batch(name: str, w: torch.Tensor | None, shape: Sequence[int]) -> torch.Tensor | None:
    """Place a per-sample weight ``[N]`` on the batch axis (dim 0) of ``shape``.

    Raises:
        ValueError: naming ``name``, for anything but a number or ``[N]``, or a non-scalar for a 0-d input.

    Example:
        >>> align_batch("sample_weight", torch.tensor([1.0, 0.5]), (2, 3, 4)).shape
        torch.Size([2, 1, 1])
    """
    if w is None or w.ndim == 0:
        return w
    if len(shape) == 0:
        raise ValueError(f"{name}: expected a number (0-d) for a 0-d input, which has no batch axis; per-sample "
                         f"weights need input of shape [N, ...], got {list(w.shape)}")
    if w.ndim != 1 or w.shape[0] != shape[0]:
        raise ValueError(
            f"{name}: expected shape [{shape[0]}] (one value per sample on the batch axis of input with "
            f"shape {list(shape)}), got {list(w.shape)}"
        )
    return w.reshape([shape[0]] + [1] * (len(shape) - 1))


def align_map(name: str, w: torch.Tensor | None, shape: Sequence[int]) -> torch.Tensor | None:
    """Check a per-element map: same number of dims as input, each dim equal or 1 (never broadcast silently).

    Example:
        >>> align_map("weight", torch.ones(2, 8, 8), (2, 1, 8, 8))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: weight: expected shape [2, 1, 8, 8] ... needs its channel axis: weight.unsqueeze(1))
    """
    if w is None:
        return None
    hint = ""
    if w.ndim == len(shape) - 1 and len(shape) > 1 and shape[1] == 1:
        hint = f" (a map of shape [N, *spatial] needs its channel axis: {name}.unsqueeze(1))"
    check_broadcastable_to(name, w, shape, hint=hint)
    return w


def multiply(*factors: torch.Tensor | None) -> torch.Tensor | None:
    """Product of the factors that are not None (None if all are).

    Example:
        >>> multiply(None, torch.tensor(2.0), torch.tensor(3.0)), multiply(None, None)
        (tensor(6.), None)
    """
    out = None
    for factor in factors:
        if factor is not None:
            out = factor if out is None else out * factor
    return out


def checked_weight(name: str, value: Any, like: torch.Tensor, *, tensor_only: bool = False) -> torch.Tensor | None:
    """:func:`voxweight._validate.as_weight_tensor` plus the value check: finite and >= 0.

    ``tensor_only`` requires a tensor (a per-voxel map), not a number or a sequence.

    Example:
        >>> checked_weight("class_weight", [-1.0], torch.zeros(1))
        Traceback (most recent call last):
        ...
        ValueError: class_weight: expected finite non-negative values, got values in [-1, -1]
    """
    if tensor_only and value is not None:
        check_tensor(name, value)
    out = as_weight_tensor(name, value, like=like)
    if out is not None:
        check_nonnegative(name, out)
    return out


def check_mask(mask: Any, input: torch.Tensor, broadcast_to: Sequence[int] | None = None) -> torch.Tensor | None:
    """A bool tensor on ``input``'s device (True = counted), or None.

    Its shape is checked against ``broadcast_to`` if given (each dim equal or 1), else by the caller.
    """
    if mask is None:
        return None
    check_tensor("mask", mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"mask: expected a bool tensor (True = counted), got dtype {mask.dtype}")
    check_same_device("mask", mask, input.device)
    if broadcast_to is not None:
        check_broadcastable_to("mask", mask, broadcast_to)
    return mask


def widen_labels(target: torch.Tensor) -> torch.Tensor:
    """uint16/uint32/uint64 labels (``torch.from_numpy`` on NIfTI data; few kernels take them) as int64.

    A uint64 above ``2**63`` wraps negative, so a range check reports it. Other dtypes are returned as given.

    Example:
        >>> widen_labels(torch.tensor([3], dtype=torch.uint16)).dtype
        torch.int64
    """
    return target.to(torch.int64) if target.dtype in (torch.uint16, torch.uint32, torch.uint64) else target


def per_channel(name: str, value: Any, x: torch.Tensor, unit: str = "channel") -> torch.Tensor | None:
    """A checked per-channel weight ``[C]`` for input ``x`` (a number applies to every channel), or None.

    Args:
        name: the argument's name, for error messages.
        value: a number, a sequence or a tensor of ``C`` values, or None.
        x: the input ``[N, C, *spatial]`` (its dtype and device are used).
        unit: what a channel is, for error messages (``"class"`` for a softmax's classes).

    Returns:
        The weight ``[C]`` in ``x``'s dtype, or None.

    Raises:
        ValueError: naming ``name``, for negative or non-finite values or a length other than ``C``.

    Shape:
        - x: ``[N, C, *spatial]``; output: ``[C]``.

    Example:
        >>> per_channel("class_weight", 2.0, torch.zeros(1, 3))
        tensor([2., 2., 2.])
    """
    a = checked_weight(name, value, x)
    if a is None:
        return None
    channels = x.shape[1]
    if a.ndim == 0:
        return a.expand(channels).contiguous()
    if a.ndim != 1 or a.shape[0] != channels:
        raise ValueError(f"{name}: expected one value per {unit} ({channels}, the size of axis 1 of input "
                         f"with shape {list(x.shape)}, background included), got shape {list(a.shape)}")
    return a
