"""The base of voxweight's loss modules, in the spirit of torch's ``_WeightedLoss``.

A loss module stores configuration only: its options (validated once, when built or when an option
attribute is assigned), its configured weights as buffers (they follow ``.to()`` and ``state_dict``), and
an optional ``weight_fn`` that builds the per-voxel map from the target when ``forward`` gets none. Its
``forward`` hands everything to the loss function with the options already validated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from voxweight._validate import describe
from voxweight.losses.align import WeightLike, checked_weight

__all__ = ["WeightedLoss", "option"]


class WeightedLoss(nn.Module):
    """Options, weight buffers and ``weight_fn`` shared by the voxel-weighted loss modules.

    Subclasses set ``make_options`` (a function of keyword options returning a validated ``NamedTuple``)
    and expose each option as an attribute with :func:`option`.

    Args:
        options: the validated options (a ``NamedTuple`` from ``make_options``).
        weight_fn: called as ``weight_fn(target)`` (without gradient) when ``forward`` gets no ``weight``.
        **weights: configured weights (number, sequence or tensor, finite and >= 0) stored as buffers
            under their names, or ``None``: a floating-point tensor keeps its dtype (float64 stays float64),
            numbers, sequences, arrays and integer tensors become float32; ``.double()``/``.float()``/``.to()``
            convert them like any buffer.

    Raises:
        TypeError: for a ``weight_fn`` that is not callable, or non-numeric weights.
        ValueError: for negative or non-finite weights.

    Example:
        >>> from voxweight.losses import VoxelWeightedBCE
        >>> loss_fn = VoxelWeightedBCE(pos_weight=[2.0, 3.0])
        >>> loss_fn.reduction = "sum"  # validated when assigned, not on every call
        >>> loss_fn.options.reduction, loss_fn.pos_weight
        ('sum', tensor([2., 3.]))
        >>> VoxelWeightedBCE(pos_weight=torch.tensor([2.0], dtype=torch.float64)).pos_weight.dtype
        torch.float64
    """

    make_options: Callable[..., NamedTuple]

    def __init__(self, options: NamedTuple, weight_fn: Callable[[torch.Tensor], torch.Tensor] | None,
                 **weights: WeightLike | None) -> None:
        super().__init__()
        if weight_fn is not None and not callable(weight_fn):
            raise TypeError(f"weight_fn: expected a callable target -> weight map, got {describe(weight_fn)}")
        self.options = options
        self.weight_fn = weight_fn
        for name, value in weights.items():
            self.register_buffer(name, _weight_buffer(name, value))

    def voxel_map(self, weight: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor | None:
        """``weight`` if given, else ``weight_fn(target)`` computed without gradient (None without a weight_fn)."""
        if weight is None and self.weight_fn is not None:
            with torch.no_grad():
                weight = self.weight_fn(target)
        return weight

    def weights_repr(self) -> list[str]:
        """``name=[shape]`` for each configured weight buffer, and the ``weight_fn``'s name, for ``extra_repr``."""
        parts = [f"{n}={list(b.shape)}" for n, b in self.named_buffers(recurse=False) if b is not None]
        if self.weight_fn is not None:
            parts.append(f"weight_fn={getattr(self.weight_fn, '__name__', type(self.weight_fn).__name__)}")
        return parts


def option(name: str, doc: str) -> property:
    """A module attribute that reads ``self.options.<name>``; assigning it re-validates the options.

    Example:
        >>> from voxweight.losses import VoxelWeightedCE
        >>> loss_fn = VoxelWeightedCE()
        >>> loss_fn.reduction = "avg"
        Traceback (most recent call last):
        ...
        ValueError: reduction: expected one of 'mean', 'sum', 'none', 'weighted_mean', got 'avg'
    """

    def read(self: WeightedLoss) -> Any:
        return getattr(self.options, name)

    def write(self: WeightedLoss, value: Any) -> None:
        self.options = type(self).make_options(**{**self.options._asdict(), name: value})

    return property(read, write, doc=doc)


def _weight_buffer(name: str, value: WeightLike | None) -> torch.Tensor | None:
    """A validated copy of a configured weight: a float tensor keeps its dtype, anything else is float32."""
    if value is None:
        return None
    device = value.device if isinstance(value, torch.Tensor) else "cpu"
    floating = isinstance(value, torch.Tensor) and value.is_floating_point()
    dtype = value.dtype if floating else torch.float32
    out = checked_weight(name, value, torch.empty(0, dtype=dtype, device=device))
    return out.detach().clone()
