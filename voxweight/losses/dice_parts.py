"""The Dice loss before and after its sums: checked inputs, and the losses and reduction from ``I, P, T``.

:func:`voxweight.losses.dice.weighted_dice` is ``dice_inputs`` -> ``dice_sums`` -> ``dice_from_sums``; the
compound Dice + BCE computes the sums of both terms together (:mod:`voxweight.losses.dice_bce`) between the
same two steps.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from voxweight._validate import check_float_tensor
from voxweight.losses.align import WeightLike, align_batch, align_map, check_mask, checked_weight, multiply, per_channel
from voxweight.losses.finite import LOW_PRECISION
from voxweight.losses.overlap import DiceOptions, dice_losses, overlap_target, reduce_dice
from voxweight.losses.sync import all_reduce_sum, synced

__all__ = ["DiceInputs", "dice_from_sums", "dice_inputs", "fold_sample_weight"]


class DiceInputs(NamedTuple):
    """Checked and aligned Dice inputs.

    Logits ``x`` (float32 for half types), target ``t`` of ``x``'s shape, voxel map ``w``, sample weight ``b``
    (``[N, 1, ...]``), class weight ``a`` (``[C]``), mask ``m``.
    """

    x: torch.Tensor
    t: torch.Tensor
    w: torch.Tensor | None
    b: torch.Tensor | None
    a: torch.Tensor | None
    m: torch.Tensor | None


def dice_inputs(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, options: DiceOptions, *,
                class_weight: WeightLike | None = None, sample_weight: WeightLike | None = None,
                mask: torch.Tensor | None = None) -> DiceInputs:
    """Check and align the Dice loss's tensors (see :func:`voxweight.voxel_weighted_dice` for their meaning).

    Raises:
        TypeError, ValueError: as :func:`voxweight.voxel_weighted_dice` documents.

    Shape:
        - as for :func:`voxweight.voxel_weighted_dice`.

    Example:
        >>> from voxweight.losses.dice import dice_options
        >>> d = dice_inputs(torch.zeros(1, 2, 3), torch.tensor([[0, 1, 1]]), None, dice_options(activation="softmax"))
        >>> d.t.tolist()
        [[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]]
    """
    input = check_float_tensor("input", input)
    if input.ndim < 2:
        raise ValueError(f"input: expected shape [N, C, *spatial], got {list(input.shape)}")
    x = input.float() if input.dtype in LOW_PRECISION else input  # float16 sums of 128^3 voxels overflow
    t = overlap_target(target, x, single_label=options.activation != "sigmoid")
    shape = x.shape
    b = align_batch("sample_weight", checked_weight("sample_weight", sample_weight, x), shape)
    w = align_map("weight", checked_weight("weight", weight, x, tensor_only=True), shape)
    a = per_channel("class_weight", class_weight, x)
    return DiceInputs(x, t, w, b, a, check_mask(mask, x, broadcast_to=shape))


def fold_sample_weight(w: torch.Tensor | None, b: torch.Tensor | None, options: DiceOptions
                       ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(w, b)`` for the sums and the reduction: with ``batch`` the sample weight goes inside the sums.

    Example:
        >>> from voxweight.losses.dice import dice_options
        >>> fold_sample_weight(None, torch.tensor([[2.0]]), dice_options(batch=True))
        (tensor([[2.]]), None)
    """
    return (multiply(w, b), None) if options.batch else (w, b)


def dice_from_sums(inter: torch.Tensor, pred: torch.Tensor, ground: torch.Tensor, a: torch.Tensor | None,
                   b: torch.Tensor | None, options: DiceOptions, dtype: torch.dtype) -> torch.Tensor:
    """The reduced Dice (or Tversky, generalized) loss from the sums, over every rank with ``options.sync``.

    Args:
        inter: ``I`` of the scored channels, ``[N, C']`` (``[C']`` with ``batch``).
        pred: ``P``, the same shape.
        ground: ``T``, the same shape.
        a: class weight of those channels, or None.
        b: the sample weight (``[N, 1, ...]``) when not folded into the sums, or None.
        options: the Dice options.
        dtype: the result's dtype (the input's).

    Shape:
        - inter, pred, ground: ``[N, C']`` or ``[C']``; output: scalar, or the per-(n, c) losses for ``"none"``.

    Example:
        >>> from voxweight.losses.dice import dice_options
        >>> one = torch.ones(1, 1)
        >>> dice_from_sums(one, one, one, None, None, dice_options(smooth_nr=0, smooth_dr=0), torch.float32)
        tensor(0.)
    """
    sync = synced(options.sync)
    if sync and options.batch:  # the sums over every rank's samples, with their gradient: the losses are global
        inter, pred, ground = all_reduce_sum(torch.stack([inter, pred, ground])).unbind()
    loss = dice_losses(inter, pred, ground, a, options)
    rows = None if options.generalized is not None else a
    factor = multiply(rows, None if b is None else b.reshape(-1, 1))
    return reduce_dice(loss, factor, options.reduction, sync=sync and not options.batch).to(dtype)
