"""Voxel-weighted cross-entropy for single-label multi-class segmentation, same weight semantics as the BCE."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from voxweight._validate import (
    check_broadcastable_to,
    check_float_tensor,
    check_same_device,
    check_tensor,
    describe,
    look_up_option,
)
from voxweight.checks import check_all, check_range
from voxweight.losses.align import (
    WeightLike,
    align_batch,
    check_mask,
    checked_weight,
    multiply,
    per_channel,
    widen_labels,
)
from voxweight.losses.base import WeightedLoss, option
from voxweight.losses.finite import LOW_PRECISION, normalise, saturate
from voxweight.losses.focal import check_focal_gamma, focal_ce_losses
from voxweight.losses.reduce import REDUCTIONS, reduce_losses
from voxweight.losses.sync import check_sync, max_over_ranks, synced

__all__ = ["CEOptions", "VoxelWeightedCE", "ce_options", "voxel_weighted_ce", "weighted_ce"]


class CEOptions(NamedTuple):
    """The validated options of the cross-entropy (see :func:`ce_options`)."""

    ignore_index: int | None
    label_smoothing: float
    reduction: str
    focal_gamma: float
    sync: bool = False


def ce_options(*, ignore_index: int | None = None, label_smoothing: float = 0.0, reduction: str = "mean",
               focal_gamma: float = 0.0, sync: bool = False) -> CEOptions:
    """Validate the cross-entropy's options once (a module does it when built); see :func:`voxel_weighted_ce`.

    Raises:
        TypeError: for a non-int ``ignore_index``, non-numeric ``label_smoothing``/``focal_gamma``, non-bool ``sync``.
        ValueError: for an unknown ``reduction``, ``label_smoothing`` outside [0, 1], an ``ignore_index``
            outside the int64 range, a ``focal_gamma`` that is not a finite number >= 0, or ``sync=True``
            with ``reduction="none"``.

    Example:
        >>> ce_options(ignore_index=255)
        CEOptions(ignore_index=255, label_smoothing=0.0, reduction='mean', focal_gamma=0.0, sync=False)
    """
    reduction = look_up_option("reduction", reduction, REDUCTIONS)
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"ignore_index: expected an int or None, got {describe(ignore_index)}")
    if ignore_index is not None and not -2**63 <= ignore_index < 2**63:
        raise ValueError(f"ignore_index: expected an int in the int64 range [-2**63, 2**63 - 1], got {ignore_index}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, int | float):
        raise TypeError(f"label_smoothing: expected a number in [0, 1], got {describe(label_smoothing)}")
    if not 0 <= label_smoothing <= 1:  # compared as given: float(10**400) would overflow
        raise ValueError(f"label_smoothing: expected a number in [0, 1], got {label_smoothing!r}")
    return CEOptions(ignore_index, float(label_smoothing), reduction, check_focal_gamma(focal_gamma),
                     check_sync(sync, reduction, REDUCTIONS))


def voxel_weighted_ce(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None, *,
                      class_weight: WeightLike | None = None, sample_weight: WeightLike | None = None,
                      mask: torch.Tensor | None = None, ignore_index: int | None = None, label_smoothing: float = 0.0,
                      reduction: str = "mean", focal_gamma: float = 0.0, sync: bool = False) -> torch.Tensor:
    """Cross-entropy with per-voxel, per-class and per-sample weights; see :class:`VoxelWeightedCE`.

    Args:
        input: logits ``[N, C, *spatial]``, floating point.
        target: class indices (integer ``[N, *spatial]`` or ``[N, 1, *spatial]``, any integer dtype, the
            uint16/uint32/uint64 of ``torch.from_numpy`` on NIfTI labels included) or class probabilities
            (floating ``[N, C, *spatial]``, values in [0, 1]).
        weight: per-voxel map ``[N, *spatial]`` or ``[N, 1, *spatial]`` (each dim equal or 1).
        class_weight: one weight per class, ``[C]`` (a number applies to all).
        sample_weight: ``[N]``, one weight per sample.
        mask: bool, shaped like ``weight``; False voxels are not counted.
        ignore_index: a class index whose voxels are not counted (index targets only), within int64.
        label_smoothing: in [0, 1], as in ``torch.nn.functional.cross_entropy``.
        reduction: ``"mean"``, ``"sum"``, ``"none"`` or ``"weighted_mean"`` (which divides ``weight`` and
            ``class_weight`` by their maxima first: huge finite weights give finite results).
        focal_gamma: the focal exponent ``gamma >= 0``: each class term times ``(1 - q_c)^gamma`` (see
            :class:`VoxelWeightedCE`); 0 (the default) is exactly the plain cross-entropy.
        sync: under ``torch.distributed`` (more than one rank), every rank returns the loss of the whole batch
            and DDP's averaged gradient is its gradient (:mod:`voxweight.losses.sync`); else no effect.

    Returns:
        The reduced loss, or ``[N, *spatial]`` voxel losses for ``"none"`` (uncounted voxels are 0).

    Raises:
        TypeError: for a non-float ``input``, a bool or float target of the wrong shape, a non-bool mask.
        ValueError: for shapes that do not line up, indices outside ``[0, C)`` (other than ``ignore_index``),
            probabilities outside [0, 1], negative or non-finite weights, bad options (see :func:`ce_options`).

    Shape:
        - input: ``[N, C, *spatial]``; target: ``[N, *spatial]``, ``[N, 1, *spatial]`` or ``[N, C, *spatial]``.
        - weight, mask: ``[N or 1, *spatial or 1]`` or with a channel axis of size 1.
        - output: scalar, or ``[N, *spatial]`` for ``"none"``.

    Example:
        >>> import torch
        >>> from voxweight import voxel_weighted_ce
        >>> x, y = torch.zeros(1, 3, 2, 2), torch.tensor([[[0, 1], [2, 2]]])
        >>> voxel_weighted_ce(x, y, class_weight=[1.0, 1.0, 2.0], reduction="weighted_mean")
        tensor(1.0986)
    """
    options = ce_options(ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction,
                         focal_gamma=focal_gamma, sync=sync)
    return weighted_ce(input, target, weight, options, class_weight=class_weight, sample_weight=sample_weight,
                       mask=mask)


def weighted_ce(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, options: CEOptions, *,
                class_weight: WeightLike | None = None, sample_weight: WeightLike | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`voxel_weighted_ce` with options validated beforehand (:func:`ce_options`); tensors checked here.

    Shape:
        - as for :func:`voxel_weighted_ce`.

    Example:
        >>> weighted_ce(torch.zeros(1, 2, 3), torch.tensor([[0, 1, 1]]), None, ce_options(reduction="sum"))
        tensor(2.0794)
    """
    input = check_float_tensor("input", input)
    if input.ndim < 2:
        raise ValueError(f"input: expected logits of shape [N, C, *spatial], got {list(input.shape)}")
    voxel_shape = (input.shape[0], *input.shape[2:])
    ignore_index = options.ignore_index
    a = per_channel("class_weight", class_weight, input, unit="class")
    target, is_index = _prepare_target(target, input, ignore_index)
    w = multiply(_voxel_map("weight", weight, input, voxel_shape),
                 align_batch("sample_weight", checked_weight("sample_weight", sample_weight, input), voxel_shape))
    sync = synced(options.sync)
    if options.reduction == "weighted_mean":  # scale-invariant in w and in a: keep huge finite weights finite
        top = max_over_ranks if sync else None  # with sync, every rank divides by the same (global) maxima
        a, w = normalise(a, reduce_max=top), normalise(w, reduce_max=top)
    m = None if mask is None else _drop_channel("mask", check_mask(mask, input), input, voxel_shape)
    if is_index and ignore_index is not None:
        m = target != ignore_index if m is None else m & (target != ignore_index)
    losses = _losses(input, target, a, options)
    losses = losses if w is None else losses * w
    low = input.dtype in LOW_PRECISION
    if low and options.reduction == "none":
        losses = saturate(losses, input.dtype)
    loss = reduce_losses(losses, options.reduction, m, multiply(w, _voxel_class_weight(a, target, is_index)),
                         torch.Size(voxel_shape), sync)
    return saturate(loss, input.dtype) if low else loss


def _losses(input: torch.Tensor, target: torch.Tensor, a: torch.Tensor | None, options: CEOptions) -> torch.Tensor:
    """Voxel losses ``[N, *spatial]``: torch's cross-entropy, or the focal one (float32 for half inputs)."""
    if options.focal_gamma:
        x = input.float() if input.dtype in LOW_PRECISION else input
        return focal_ce_losses(x, target, a, options.label_smoothing, options.focal_gamma)
    ignore = options.ignore_index if options.ignore_index is not None else -100
    return F.cross_entropy(input, target, weight=a, reduction="none", label_smoothing=options.label_smoothing,
                           ignore_index=ignore)


def _prepare_target(target: Any, input: torch.Tensor, ignore_index: int | None) -> tuple[torch.Tensor, bool]:
    check_tensor("target", target)
    check_same_device("target", target, input.device)
    if target.is_floating_point():
        if ignore_index is not None:
            raise ValueError(f"ignore_index: expected None with probability targets (it applies to class "
                             f"indices only), got {ignore_index!r}; use mask= to leave voxels out")
        if target.shape != input.shape:
            raise TypeError(f"target: expected integer class indices, or float probabilities of input's shape "
                            f"{list(input.shape)}, got a {target.dtype} tensor of shape {list(target.shape)}")
        check_range("target", target, 0.0, 1.0, "probabilities in [0, 1]")
        return target.to(input.dtype), False
    if target.dtype == torch.bool or target.is_complex():
        raise TypeError(f"target: expected integer class indices or float probabilities, got dtype {target.dtype}")
    target = widen_labels(target)
    if target.ndim == input.ndim and target.shape[1] == 1:
        target = target.squeeze(1)
    expected = (input.shape[0], *input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"target: expected class indices of shape {list(expected)} (or with a channel axis of "
                         f"size 1), got {list(target.shape)}")
    channels = input.shape[1]
    valid = (target >= 0) & (target < channels)
    if ignore_index is not None:
        valid |= target == ignore_index
    allowed = f"class indices in [0, {channels - 1}]" + (f" or {ignore_index}" if ignore_index is not None else "")
    check_all("target", valid, allowed, "indices outside that range")
    return target.long(), True


def _voxel_map(name: str, value: Any, input: torch.Tensor, voxel_shape: tuple[int, ...]) -> torch.Tensor | None:
    return None if value is None else _drop_channel(name, checked_weight(name, value, input, tensor_only=True),
                                                    input, voxel_shape)


def _drop_channel(name: str, x: torch.Tensor, input: torch.Tensor, voxel_shape: tuple[int, ...]) -> torch.Tensor:
    """Accept ``[N, 1, *spatial]`` as well as ``[N, *spatial]`` (each dim equal or 1)."""
    if x.ndim == input.ndim and x.shape[1] == 1:
        x = x.squeeze(1)
    check_broadcastable_to(name, x, voxel_shape, hint=" (a voxel map has no class axis, or one of size 1)")
    return x


def _voxel_class_weight(a: torch.Tensor | None, target: torch.Tensor, is_index: bool) -> torch.Tensor | None:
    """The class weight each voxel received: ``a[y]`` for indices, ``sum_c a_c p_c`` for probabilities."""
    if a is None:
        return None
    if is_index:
        return a[target.clamp(0, a.shape[0] - 1)]
    return (target * a.reshape([1, -1] + [1] * (target.ndim - 2))).sum(dim=1)


class VoxelWeightedCE(WeightedLoss):
    r"""Cross-entropy for single-label multi-class segmentation, with weights that mean what you think.

    For a voxel ``v`` of sample ``n`` with logits ``x`` and target class ``y`` (or probabilities ``p``):

    .. math::

        l = -\,w_{n,v}\, b_n \sum_c a_c\, p_c\, (1 - q_c)^\gamma \log q_c, \qquad q = \mathrm{softmax}(x)

    with ``p`` the one-hot of ``y`` (smoothed by ``label_smoothing`` as in torch), ``w`` the per-voxel map,
    ``a`` the ``class_weight``, ``b`` the ``sample_weight`` and ``gamma`` the ``focal_gamma`` (Lin et al.
    2017; 0 is the plain cross-entropy, and ``a`` plays the role of focal's alpha).
    Reductions use the same denominators for index and probability targets (torch's differ, pytorch 54843):

    * ``"mean"``: ``sum(l) / #counted voxels`` (masked and ``ignore_index`` voxels are not counted);
    * ``"weighted_mean"``: ``sum(l) / sum(w b a_y)`` with ``a_y = sum_c a_c p_c`` for probabilities; for index
      targets with only ``class_weight`` this is torch's ``"mean"``;
    * ``"sum"``; ``"none"`` (``[N, *spatial]``, uncounted voxels 0). ``sync=True`` (``torch.distributed``): each
      sum and maximum runs over every rank's voxels: the loss of the whole batch (:mod:`voxweight.losses.sync`).

    Training with ``class_weight`` shifts the optimal softmax towards weighted classes;
    ``softmax(voxweight.debias_logits(logits, class_weight))`` undoes that shift at inference.

    Args:
        class_weight: one weight per class (number, sequence or ``[C]`` tensor); stored as a buffer.
        ignore_index: class index whose voxels are not counted (index targets only).
        label_smoothing: in [0, 1], as in ``torch.nn.CrossEntropyLoss``.
        reduction: ``"mean"``, ``"sum"``, ``"none"`` or ``"weighted_mean"``.
        focal_gamma: the focal exponent ``gamma >= 0``.
        sync: reduce over every ``torch.distributed`` rank (see :func:`voxel_weighted_ce`).
        weight_fn: called as ``weight_fn(target)`` (without gradient) when ``forward`` gets no ``weight``.

    Shape:
        - input: ``[N, C, *spatial]``; target: ``[N, *spatial]``, ``[N, 1, *spatial]`` or ``[N, C, *spatial]``.
        - weight, mask: ``[N, *spatial]`` or ``[N, 1, *spatial]``; sample_weight: ``[N]``.

    Example:
        >>> import torch
        >>> from voxweight import VoxelWeightedCE
        >>> loss_fn = VoxelWeightedCE(class_weight=[0.1, 1.0, 5.0], ignore_index=255, reduction="weighted_mean")
        >>> x = torch.zeros(2, 3, 4, 4, 4)  # uniform softmax: every voxel's plain loss is log 3
        >>> y = torch.randint(0, 3, (2, 4, 4, 4))
        >>> w = torch.rand(2, 1, 4, 4, 4)  # a new voxel map every batch
        >>> loss_fn(x, y, w, sample_weight=[1.0, 3.0])
        tensor(1.0986)
    """

    class_weight: torch.Tensor | None
    options: CEOptions
    make_options = ce_options
    ignore_index = option("ignore_index", "Class index whose voxels are not counted, or None.")
    label_smoothing = option("label_smoothing", "Label smoothing in [0, 1] (validated when assigned).")
    reduction = option("reduction", "The reduction (validated when assigned).")
    focal_gamma = option("focal_gamma", "The focal exponent, >= 0 (validated when assigned).")
    sync = option("sync", "Whether the reduction runs over every torch.distributed rank.")

    def __init__(self, class_weight: WeightLike | None = None, *, ignore_index: int | None = None,
                 label_smoothing: float = 0.0, reduction: str = "mean", focal_gamma: float = 0.0,
                 sync: bool = False, weight_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        options = ce_options(ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction,
                             focal_gamma=focal_gamma, sync=sync)
        super().__init__(options, weight_fn, class_weight=class_weight)

    def forward(self, input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None, *,
                sample_weight: WeightLike | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Compute the loss; see the class docstring. ``weight`` may change on every call."""
        return weighted_ce(input, target, self.voxel_map(weight, target), self.options, class_weight=self.class_weight,
                           sample_weight=sample_weight, mask=mask)

    def extra_repr(self) -> str:
        """Configuration shown by ``repr``."""
        o = self.options
        parts = [f"reduction={o.reduction!r}", f"label_smoothing={o.label_smoothing}"]
        extra = {"ignore_index": o.ignore_index, "focal_gamma": o.focal_gamma or None, "sync": o.sync or None}
        parts += [f"{k}={v}" for k, v in extra.items() if v is not None]  # shown when set
        return ", ".join(parts + self.weights_repr())
