r"""The boundary loss of Kervadec et al. (2019) with voxel weights and masks, and its rebalancing schedule.

.. math::

    L_B = \operatorname{mean}_{n, c, q}\big(s_\theta(q)\, \phi_G(q)\big)

``s_theta`` are the predicted probabilities (softmax over the channels, a per-channel sigmoid, or given) and
``phi_G`` the signed distance map of the ground truth of each class (negative inside), precomputed by
:class:`voxweight.transforms.SignedDistanced` or :func:`voxweight.maps.class_signed_distance`. The loss is
lowest when each class's probability is 1 inside it and 0 outside; it is negative for a good prediction,
which is expected. The paper trains it next to a region loss (``alpha L_R + (1 - alpha) L_B``), with the
weights moved each epoch by :class:`BoundaryLossSchedule`.
"""

from __future__ import annotations

import operator
from typing import Any, NamedTuple

import numpy as np
import torch

from voxweight._validate import (
    check_flag,
    check_float_tensor,
    check_positive_number,
    check_same_device,
    describe,
    look_up_option,
)
from voxweight.checks import check_range
from voxweight.losses.align import align_map, check_mask, checked_weight
from voxweight.losses.base import WeightedLoss, option
from voxweight.losses.finite import LOW_PRECISION, saturate
from voxweight.losses.overlap import activate, drop_background
from voxweight.losses.reduce import REDUCTIONS, reduce_losses

__all__ = ["BOUNDARY_ACTIVATIONS", "BoundaryLoss", "BoundaryLossSchedule", "BoundaryOptions", "boundary_loss",
           "boundary_options"]

BOUNDARY_ACTIVATIONS = ("softmax", "sigmoid", "none")
_SCHEDULES = ("rebalance", "steal")


class BoundaryOptions(NamedTuple):
    """The validated options of the boundary loss (see :func:`boundary_options`)."""

    activation: str
    include_background: bool
    reduction: str


def boundary_options(*, activation: str | None = "softmax", include_background: bool = False,
                     reduction: str = "mean") -> BoundaryOptions:
    """Validate the options once (a module does it when built); see :func:`boundary_loss`.

    Raises:
        TypeError: for a non-bool ``include_background``.
        ValueError: for an unknown ``activation`` or ``reduction``.

    Example:
        >>> boundary_options(activation=None)
        BoundaryOptions(activation='none', include_background=False, reduction='mean')
    """
    activation = "none" if activation is None else look_up_option("activation", activation, BOUNDARY_ACTIVATIONS)
    include_background = check_flag("include_background", include_background)
    return BoundaryOptions(activation, include_background, look_up_option("reduction", reduction, REDUCTIONS))


def boundary_loss(input: torch.Tensor, sdm: torch.Tensor, *, activation: str | None = "softmax",
                  include_background: bool = False, weight: torch.Tensor | None = None,
                  mask: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """The boundary loss ``mean(s_theta * phi_G)`` with per-voxel weights; see :class:`BoundaryLoss`.

    Args:
        input: logits ``[N, C, *spatial]`` (probabilities in [0, 1] for ``activation="none"``).
        sdm: the signed distance maps ``phi_G``, ``input``'s shape exactly, every channel (background included),
            finite; no gradient flows into it.
        activation: ``"softmax"`` (over channels), ``"sigmoid"`` (per channel) or ``"none"`` (None too).
        include_background: False drops channel 0 of the probabilities, ``sdm``, ``weight`` and ``mask`` after
            the activation (the reference's ``idc=[1, ...]``).
        weight: per-voxel map ``[N or 1, C or 1, *spatial]``: multiplies each element ``s * phi``.
        mask: bool, shaped like ``weight``: False elements count in no reduction and their logits have no effect.
        reduction: ``"mean"`` (over counted elements), ``"sum"``, ``"none"`` or ``"weighted_mean"``.

    Returns:
        The reduced loss, or the element losses ``[N, C', *spatial]`` for ``"none"`` (``C' = C - 1`` without
        the background).

    Raises:
        TypeError: for non-tensors, integer ``input`` or ``sdm``, a non-bool ``mask``.
        ValueError: for an ``sdm`` of another shape or device, a non-finite ``sdm``, bad options, weights or
            probabilities, naming the argument.

    Shape:
        - input, sdm: ``[N, C, *spatial]``; weight, mask: ``[N or 1, C or 1, *spatial or 1]``; output: scalar.

    Example:
        >>> x = torch.tensor([[[4.0, 4.0, -4.0], [-4.0, -4.0, 4.0]]])  # predicts class 1 at voxel 2 only
        >>> sdm = torch.tensor([[[-1.0, 1.0, 2.0], [1.0, -1.0, -2.0]]])  # class 1 truly at voxels 1, 2
        >>> round(boundary_loss(x, sdm).item(), 4)
        -0.6664
    """
    options = boundary_options(activation=activation, include_background=include_background, reduction=reduction)
    return weighted_boundary(input, sdm, weight, options, mask=mask)


def weighted_boundary(input: torch.Tensor, sdm: torch.Tensor, weight: torch.Tensor | None,
                      options: BoundaryOptions, *, mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`boundary_loss` with validated options (float16/bfloat16 computed in float32, saturated back).

    Shape:
        - as for :func:`boundary_loss`.

    Example:
        >>> weighted_boundary(torch.zeros(1, 2, 3), torch.ones(1, 2, 3), None, boundary_options())
        tensor(0.5000)
    """
    input = check_float_tensor("input", input)
    if input.ndim < 3:
        raise ValueError(f"input: expected [N, C, *spatial] with at least one spatial axis, got {list(input.shape)}")
    x = input.float() if input.dtype in LOW_PRECISION else input
    phi = _checked_sdm(sdm, input).to(x.dtype)
    w = align_map("weight", checked_weight("weight", weight, x, tensor_only=True), x.shape)
    m = check_mask(mask, x, broadcast_to=x.shape)
    p = activate(x if m is None else torch.where(m, x, 0.0), None if options.activation == "none" else
                 options.activation)
    if not options.include_background:
        p, phi, w, _ = drop_background(p, phi, w, None)
        m = m if m is None or m.shape[1] == 1 else m[:, 1:]
    losses = p * phi if w is None else p * phi * w
    out = reduce_losses(losses, options.reduction, m, w, losses.shape)
    return saturate(out, input.dtype) if input.dtype in LOW_PRECISION else out


def _checked_sdm(sdm: Any, input: torch.Tensor) -> torch.Tensor:
    """A floating ``sdm`` of ``input``'s shape and device, finite (value check), detached."""
    sdm = check_float_tensor("sdm", sdm)
    check_same_device("sdm", sdm, input.device)
    if sdm.shape != input.shape:
        raise ValueError(f"sdm: expected the shape of input {list(input.shape)} (one map per channel, background "
                         f"included; include_background=False drops channel 0 of both), got {list(sdm.shape)}")
    top = torch.finfo(sdm.dtype).max
    check_range("sdm", sdm, -top, top, "finite values (signed distances; a volume without a boundary has 0)")
    return sdm.detach()


class BoundaryLoss(WeightedLoss):
    r"""The boundary loss (Kervadec et al. 2019, "Boundary loss for highly unbalanced segmentation").

    ``l = w * s_theta * phi_G`` per element, reduced as the other voxweight losses are (``"mean"`` divides by
    the number of counted elements: the reference ``SurfaceLoss``'s ``mean`` without weights or mask).
    ``phi_G`` comes from :class:`voxweight.transforms.SignedDistanced` (``"levelset"``, or ``"kervadec"`` for
    the reference's maps exactly). Use it with a region loss and :class:`BoundaryLossSchedule`.

    Args:
        activation: ``"softmax"``, ``"sigmoid"`` or ``"none"``.
        include_background: keep channel 0 (False, the default, drops it as the reference's ``idc=[1]``).
        reduction: ``"mean"``, ``"sum"``, ``"none"`` or ``"weighted_mean"``.

    Shape:
        - input, sdm: ``[N, C, *spatial]``; weight, mask: ``[N or 1, C or 1, *spatial]``; output: scalar.

    Example:
        >>> loss_fn = BoundaryLoss()
        >>> x, sdm = torch.randn(2, 3, 8, 8, 8), torch.randn(2, 3, 8, 8, 8)
        >>> loss_fn(x, sdm).shape
        torch.Size([])
    """

    options: BoundaryOptions
    make_options = boundary_options
    activation = option("activation", "``'softmax'``, ``'sigmoid'`` or ``'none'``.")
    include_background = option("include_background", "Whether channel 0 counts.")
    reduction = option("reduction", "The reduction (validated when assigned).")

    def __init__(self, *, activation: str | None = "softmax", include_background: bool = False,
                 reduction: str = "mean") -> None:
        super().__init__(boundary_options(activation=activation, include_background=include_background,
                                          reduction=reduction), None)

    def forward(self, input: torch.Tensor, sdm: torch.Tensor, weight: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Compute the loss; ``weight`` and ``mask`` may change on every call."""
        return weighted_boundary(input, sdm, weight, self.options, mask=mask)

    def extra_repr(self) -> str:
        """Configuration shown by ``repr``."""
        o = self.options
        return f"activation={o.activation!r}, include_background={o.include_background}, reduction={o.reduction!r}"


class BoundaryLossSchedule:
    """Per-epoch weights of the region and boundary losses: ``loss = a_e * L_region + b_e * L_boundary``.

    * ``mode="rebalance"`` (the paper's, Kervadec et al. 2019, section 3: ``alpha L_R + (1 - alpha) L_B``):
      ``a_e = max(floor, start - e * step)``, ``b_e = 1 - a_e``; by default ``a`` goes from 1 down by 0.01
      per epoch to 0.01 (as the reference repository's Keras port clips it), ``b`` from 0 up to 0.99.
    * ``mode="steal"`` (the reference's PyTorch runs, ``--scheduler StealWeight --scheduler_params
      "{'to_steal': 0.01}"`` with weights starting at ``(1, 0.01)``): ``a_e = max(floor, start - e * step)``,
      ``b_e = boundary_start + e * step``, ``b`` unbounded. The reference uses ``floor=0.1``.

    ``e`` counts the epochs done (0 for the first); :meth:`step` adds one, like a learning-rate scheduler at
    each epoch's end. Closed forms, so ``weights(e)`` equals the reference's repeated subtraction up to float
    rounding (never below ``floor``). Calling the schedule combines two losses with the current weights.

    Args:
        start: ``a_0``, in ``(0, 1]`` for ``"rebalance"`` (``b`` stays >= 0), > 0 for ``"steal"``.
        step: change per epoch, >= 0 (stored as ``step_size``).
        floor: smallest region weight, in ``[0, start]``.
        mode: ``"rebalance"`` or ``"steal"``.
        boundary_start: ``b_0`` for ``"steal"`` (default 0.01, the reference's); must be None for ``"rebalance"``.

    Raises:
        TypeError, ValueError: for non-numbers or values out of range, naming the argument.

    Example:
        >>> from voxweight.losses import VoxelWeightedDiceCE
        >>> region, schedule = VoxelWeightedDiceCE(), BoundaryLossSchedule()
        >>> x, y = torch.randn(1, 2, 6, 6), torch.randint(0, 2, (1, 1, 6, 6))
        >>> sdm = torch.randn(1, 2, 6, 6)  # SignedDistanced(multiclass=True) of y, in practice
        >>> for epoch in range(3):
        ...     loss = schedule(region(x, y), boundary_loss(x, sdm))  # a * region + b * boundary
        ...     schedule.step()
        >>> schedule.epoch, schedule.weights(0), schedule.weights(50), schedule.weights(500)
        (3, (1.0, 0.0), (0.5, 0.5), (0.01, 0.99))
    """

    def __init__(self, start: float = 1.0, step: float = 0.01, floor: float = 0.01, *, mode: str = "rebalance",
                 boundary_start: float | None = None) -> None:
        self.mode = look_up_option("mode", mode, _SCHEDULES)
        self.start = check_positive_number("start", start)
        if self.mode == "rebalance" and self.start > 1:
            raise ValueError(f"start: expected a region weight in (0, 1] for mode='rebalance' (the boundary weight "
                             f"is 1 - a), got {self.start!r}")
        self.step_size = check_positive_number("step", step, allow_zero=True)
        self.floor = check_positive_number("floor", floor, allow_zero=True)
        if self.floor > self.start:
            raise ValueError(f"floor: expected a value in [0, start={self.start!r}], got {self.floor!r}")
        if self.mode == "rebalance" and boundary_start is not None:
            raise ValueError(f"boundary_start: expected None for mode='rebalance' (b = 1 - a), got "
                             f"{describe(boundary_start)}")
        default = 0.01 if self.mode == "steal" else 0.0
        self.boundary_start = default if boundary_start is None else check_positive_number(
            "boundary_start", boundary_start, allow_zero=True)
        self.epoch = 0

    def weights(self, epoch: int | None = None) -> tuple[float, float]:
        """``(region_weight, boundary_weight)`` at ``epoch`` (default: the current one, :attr:`epoch`)."""
        e = self.epoch if epoch is None else _epoch(epoch)
        region = max(self.floor, self.start - e * self.step_size)
        if self.mode == "rebalance":
            return region, 1.0 - region
        return region, self.boundary_start + e * self.step_size

    def step(self) -> None:
        """Move to the next epoch (call once at the end of each epoch)."""
        self.epoch += 1

    def __call__(self, region_loss: torch.Tensor, boundary_loss: torch.Tensor) -> torch.Tensor:
        """``a * region_loss + b * boundary_loss`` with the current epoch's weights."""
        a, b = self.weights()
        return a * region_loss + b * boundary_loss

    def state_dict(self) -> dict[str, Any]:
        """The configuration and the epoch, for checkpoints (:meth:`load_state_dict` restores them)."""
        return {"mode": self.mode, "start": self.start, "step": self.step_size, "floor": self.floor,
                "boundary_start": self.boundary_start if self.mode == "steal" else None, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (validated as the constructor's arguments are)."""
        state = dict(state)
        epoch = _epoch(state.pop("epoch", 0))
        self.__dict__.update(BoundaryLossSchedule(**state).__dict__)
        self.epoch = epoch

    def __repr__(self) -> str:
        a, b = self.weights()
        return f"BoundaryLossSchedule(mode={self.mode!r}, epoch={self.epoch}, region={a:g}, boundary={b:g})"


def _epoch(epoch: Any) -> int:
    """An epoch index: an integer >= 0 (numpy integers too; not a bool or a float)."""
    try:
        if isinstance(epoch, bool | np.bool_):
            raise TypeError
        epoch = operator.index(epoch)
    except TypeError:
        raise TypeError(f"epoch: expected an integer >= 0, got {describe(epoch)}") from None
    if epoch < 0:
        raise ValueError(f"epoch: expected an integer >= 0, got {epoch}")
    return epoch
