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

from voxweight.checks import check_broadcastable_to, check_nonnegative, check_same_device, describe

WeightLike = float | Sequence[float] | np.ndarray | torch.Tensor


def as_weight_tensor(name: str, value: Any, *, like: torch.Tensor) -> torch.Tensor | None:
    """Convert a number, sequence, array or tensor to a tensor with ``like``'s float dtype and device."""
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
    except (TypeError, ValueError):
        raise TypeError(
            f"{name}: expected a number, a sequence of numbers or a tensor, got {describe(value)}"
        ) from None
    return torch.as_tensor(array, dtype=like.dtype, device=like.device)


def align_channel(name: str, w: torch.Tensor | None, shape: Sequence[int], channel_dim: int = 1
                  ) -> torch.Tensor | None:
    """Place a per-class weight on the channel axis of ``shape``.

    A 0-d tensor applies to everything; a 1-D tensor must hold one value per channel; a tensor with the
    full number of dimensions must match ``shape`` (or have size 1) on every axis.
    """
    if w is None or w.ndim == 0:
        return w
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
    """Place a per-sample weight ``[N]`` on the batch axis (dim 0) of ``shape``."""
    if w is None or w.ndim == 0:
        return w
    if w.ndim != 1 or w.shape[0] != shape[0]:
        raise ValueError(
            f"{name}: expected shape [{shape[0]}] (one value per sample on the batch axis of input with "
            f"shape {list(shape)}), got {list(w.shape)}"
        )
    return w.reshape([shape[0]] + [1] * (len(shape) - 1))


def align_map(name: str, w: torch.Tensor | None, shape: Sequence[int]) -> torch.Tensor | None:
    """Check a per-element map: same number of dims as input, each dim equal or 1."""
    if w is None:
        return None
    hint = ""
    if w.ndim == len(shape) - 1 and len(shape) > 1 and shape[1] == 1:
        hint = f" (a map of shape [N, *spatial] needs its channel axis: {name}.unsqueeze(1))"
    check_broadcastable_to(name, w, shape, hint=hint)
    return w


def multiply(*factors: torch.Tensor | None) -> torch.Tensor | None:
    """Product of the factors that are not None (None if all are)."""
    out = None
    for factor in factors:
        if factor is not None:
            out = factor if out is None else out * factor
    return out


def checked_weight(name: str, value: Any, like: torch.Tensor) -> torch.Tensor | None:
    """:func:`as_weight_tensor` plus the value check: finite and >= 0."""
    out = as_weight_tensor(name, value, like=like)
    if out is not None:
        check_nonnegative(name, out)
    return out


def weight_buffer(name: str, value: WeightLike | None) -> torch.Tensor | None:
    """A float32 copy of a module's configured weight (on the tensor's device), validated once."""
    if value is None:
        return None
    device = value.device if isinstance(value, torch.Tensor) else "cpu"
    out = checked_weight(name, value, torch.empty(0, dtype=torch.float32, device=device))
    return out.detach().clone()


def check_weight_fn(weight_fn: Any) -> None:
    """A module's ``weight_fn`` must be None or a callable ``target -> weight map``."""
    if weight_fn is not None and not callable(weight_fn):
        raise TypeError(f"weight_fn: expected a callable target -> weight map, got {describe(weight_fn)}")


def weight_or_fn(weight: torch.Tensor | None, weight_fn: Any, target: torch.Tensor) -> torch.Tensor | None:
    """``weight`` if given, else ``weight_fn(target)`` computed without gradient (None without a weight_fn)."""
    if weight is None and weight_fn is not None:
        with torch.no_grad():
            weight = weight_fn(target)
    return weight
