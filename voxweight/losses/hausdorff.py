r"""The Hausdorff-distance loss of Karimi & Salcudean (2019), from distance transforms, with voxel weights.

.. math::

    L = \operatorname{mean}\big((p - t)^2\, (d_p^\alpha + d_t^\alpha)\big)

``d_p`` and ``d_t`` are the two-sided distances to the boundary of the thresholded prediction
(``p > 0.5``) and of the target, per sample and channel, computed without gradient on the input's device
(:func:`voxweight.maps.distance_to_interface`: ``edt`` on the CPU, the exact torch EDT for a fragmented mask
(:func:`fastest_backend`) and on other devices). A volume without a boundary (empty or full) has ``d = 0``
there, as in MONAI's ``HausdorffDTLoss``: the term then adds nothing, so the loss is meant next to a region
loss (Dice, BCE), as in the paper.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch

from voxweight._validate import check_float_tensor, check_positive_number, look_up_option
from voxweight.losses.align import align_map, check_mask, checked_weight
from voxweight.losses.base import WeightedLoss, option
from voxweight.losses.finite import LOW_PRECISION, saturate
from voxweight.losses.overlap import activate, overlap_target
from voxweight.losses.reduce import REDUCTIONS, reduce_losses
from voxweight.maps import distance_to_interface

__all__ = ["FRAGMENTED", "HausdorffDTLoss", "HausdorffOptions", "boundary_distances", "fastest_backend",
           "hausdorff_dt_loss", "hausdorff_options"]

_ACTIVATIONS = ("sigmoid", "softmax")


class HausdorffOptions(NamedTuple):
    """The validated options of the Hausdorff DT loss (see :func:`hausdorff_options`)."""

    alpha: float
    activation: str | None
    reduction: str
    spacing: tuple[float, ...] | float | None


def hausdorff_options(*, alpha: float = 2.0, activation: str | None = "sigmoid", reduction: str = "mean",
                      spacing: Any = None) -> HausdorffOptions:
    """Validate the options once (a module does it when built); see :func:`hausdorff_dt_loss`.

    Raises:
        TypeError: for a non-numeric ``alpha``.
        ValueError: for ``alpha <= 0`` or not finite, an unknown ``activation`` or ``reduction``.

    Example:
        >>> hausdorff_options(alpha=1).alpha
        1.0
    """
    alpha = check_positive_number("alpha", alpha)
    if activation is not None:
        activation = look_up_option("activation", activation, _ACTIVATIONS)
    spacing = tuple(float(s) for s in spacing) if isinstance(spacing, list | tuple) else spacing
    return HausdorffOptions(alpha, activation, look_up_option("reduction", reduction, REDUCTIONS), spacing)


FRAGMENTED = 0.2  # fraction of neighbours along the last axis that differ above which torch beats edt on a CPU


def fastest_backend(mask: torch.Tensor) -> str:
    """The faster exact distance backend for ``mask``: ``"auto"``, or ``"torch"`` for a fragmented CPU mask.

    On the CPU, ``edt``'s time grows with the number of runs along a line while the torch EDT's grows with
    the distances, which a fragmented mask keeps short: measured at ``[2, 1, 96^3]`` on one thread, torch
    is faster once more than ``FRAGMENTED`` of the neighbours along the last axis differ (a thresholded
    prediction early in training: 0.5). Both backends give the same map (to float32 rounding).

    Shape:
        - mask: ``[..., n]`` (bool).

    Example:
        >>> fastest_backend(torch.tensor([[True, False] * 4])), fastest_backend(torch.tensor([[True] * 8]))
        ('torch', 'auto')
    """
    if mask.device.type != "cpu" or mask.shape[-1] < 2 or mask.numel() == 0:
        return "auto"
    changes = (mask[..., 1:] != mask[..., :-1]).sum().item()
    return "torch" if changes > FRAGMENTED * mask[..., 1:].numel() else "auto"


def boundary_distances(mask: torch.Tensor, spacing: Any = None) -> torch.Tensor:
    """Two-sided distance to the boundary of each ``[N, C]`` volume of a bool mask, 0 where it has none.

    Computed without gradient on ``mask``'s device (:func:`voxweight.maps.distance_to_interface`:
    ``edt`` on the CPU, the torch EDT for a fragmented mask and on other devices), float32.

    Shape:
        - mask: ``[N, C, *spatial]`` (bool); output: the same, float32.

    Example:
        >>> boundary_distances(torch.tensor([[[False, False, True, True]]]))
        tensor([[[2., 1., 1., 2.]]])
    """
    with torch.no_grad():
        d = distance_to_interface(mask, spacing=spacing, spatial_dims=mask.ndim - 2, backend=fastest_backend(mask))
        d = torch.from_numpy(d) if isinstance(d, np.ndarray) else d
        return torch.nan_to_num_(d, posinf=0.0).to(mask.device)  # d is this call's own tensor, never NaN


def hausdorff_dt_loss(input: torch.Tensor, target: torch.Tensor, *, alpha: float = 2.0,
                      activation: str | None = "sigmoid", weight: torch.Tensor | None = None,
                      mask: torch.Tensor | None = None, reduction: str = "mean", spacing: Any = None
                      ) -> torch.Tensor:
    """The Hausdorff DT loss with per-voxel weights; see the module docstring for the formula.

    Args:
        input: logits ``[N, C, *spatial]`` (probabilities for ``activation=None``).
        target: binary or soft targets of ``input``'s shape, or class indices for ``"softmax"``.
        alpha: the distance exponent, > 0 (2 in the paper).
        activation: ``"sigmoid"`` (per channel), ``"softmax"`` (over channels) or None.
        weight: per-voxel map ``[N or 1, C or 1, *spatial]``: multiplies each element loss.
        mask: bool, shaped like ``weight``: False voxels count nowhere, not even in the distance maps
            (they are background for both the prediction and the target), so their logits have no effect.
        reduction: ``"mean"`` (over counted elements), ``"sum"``, ``"none"`` or ``"weighted_mean"``.
        spacing: voxel size per spatial axis for the distances (None: 1).

    Returns:
        The reduced loss, or the element losses for ``"none"``.

    Raises:
        TypeError, ValueError: for bad tensors or options, naming the argument.

    Shape:
        - input: ``[N, C, *spatial]``; target: the same (or ``[N, *spatial]`` indices with softmax); output: scalar.

    Example:
        >>> x = torch.tensor([[[[-4.0, 4.0, 4.0, -4.0]]]])  # predicts voxels 1, 2
        >>> t = torch.tensor([[[[0.0, 0.0, 1.0, 1.0]]]])
        >>> round(hausdorff_dt_loss(x, t).item(), 4)
        1.6882
    """
    options = hausdorff_options(alpha=alpha, activation=activation, reduction=reduction, spacing=spacing)
    return weighted_hausdorff(input, target, weight, options, mask=mask)


def weighted_hausdorff(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None,
                       options: HausdorffOptions, *, mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`hausdorff_dt_loss` with validated options.

    Shape:
        - as for :func:`hausdorff_dt_loss`.

    Example:
        >>> weighted_hausdorff(torch.zeros(1, 1, 3), torch.ones(1, 1, 3), None, hausdorff_options())
        tensor(0.)
    """
    input = check_float_tensor("input", input)
    if input.ndim < 3:
        raise ValueError(f"input: expected [N, C, *spatial] with at least one spatial axis, got {list(input.shape)}")
    x = input.float() if input.dtype in LOW_PRECISION else input
    t = overlap_target(target, x, single_label=options.activation != "sigmoid")
    w = align_map("weight", checked_weight("weight", weight, x, tensor_only=True), x.shape)
    m = check_mask(mask, x, broadcast_to=x.shape)
    p = activate(x if m is None else torch.where(m, x, 0.0), options.activation)  # a masked logit is never read
    p_fg, t_fg = p.detach() > 0.5, t > 0.5
    if m is not None:  # masked voxels are background of both maps: their predictions cannot move a boundary
        p_fg, t_fg = p_fg & m, t_fg & m
    distance = _powered(boundary_distances(p_fg, options.spacing).to(x.dtype), options.alpha)  # own tensors: in place
    distance = distance.add_(_powered(boundary_distances(t_fg, options.spacing).to(x.dtype), options.alpha))
    losses = (p - t).square() * distance
    if w is not None:
        losses = losses * w
    out = reduce_losses(losses, options.reduction, m, w, x.shape)
    return saturate(out, input.dtype) if input.dtype in LOW_PRECISION else out


def _powered(d: torch.Tensor, alpha: float) -> torch.Tensor:
    """``d ** alpha`` in place (``d`` is a fresh distance map of the caller's); a square for the paper's 2."""
    return d.square_() if alpha == 2 else d.pow_(alpha)


class HausdorffDTLoss(WeightedLoss):
    r"""The Hausdorff DT loss (Karimi & Salcudean 2019) as a module; see :func:`hausdorff_dt_loss`.

    Args:
        alpha: the distance exponent, > 0.
        activation: ``"sigmoid"``, ``"softmax"`` or None.
        reduction: ``"mean"``, ``"sum"``, ``"none"`` or ``"weighted_mean"``.
        spacing: voxel size per spatial axis for the distances.
        weight_fn: called as ``weight_fn(target)`` (without gradient) when ``forward`` gets no ``weight``.

    Shape:
        - input: ``[N, C, *spatial]``; target: the same; weight, mask: ``[N or 1, C or 1, *spatial]``.

    Example:
        >>> loss_fn = HausdorffDTLoss(alpha=2.0)
        >>> x, t = torch.randn(2, 1, 8, 8, 8), (torch.rand(2, 1, 8, 8, 8) > 0.5).float()
        >>> bool(loss_fn(x, t) > 0)
        True
    """

    options: HausdorffOptions
    make_options = hausdorff_options
    alpha = option("alpha", "The distance exponent, > 0.")
    activation = option("activation", "``'sigmoid'``, ``'softmax'`` or None.")
    reduction = option("reduction", "The reduction (validated when assigned).")
    spacing = option("spacing", "Voxel size per spatial axis for the distances.")

    def __init__(self, *, alpha: float = 2.0, activation: str | None = "sigmoid", reduction: str = "mean",
                 spacing: Any = None, weight_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__(hausdorff_options(alpha=alpha, activation=activation, reduction=reduction, spacing=spacing),
                         weight_fn)

    def forward(self, input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None, *,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Compute the loss; ``weight`` may change on every call."""
        return weighted_hausdorff(input, target, self.voxel_map(weight, target), self.options, mask=mask)

    def extra_repr(self) -> str:
        """Configuration shown by ``repr``."""
        o = self.options
        parts = [f"alpha={o.alpha}", f"activation={o.activation!r}", f"reduction={o.reduction!r}"]
        return ", ".join([*parts, *self.weights_repr()])
