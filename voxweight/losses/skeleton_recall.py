r"""The Skeleton Recall loss (Kirchhoff et al., ECCV 2024) with voxel weights: how much of a tubed skeleton is found.

With probabilities ``p`` (softmax or sigmoid of the logits, or the input itself for ``activation=None``), a
tubed skeleton ``s`` (one-hot of class ids on the tube, see :func:`voxweight.tubed_skeleton`), a per-voxel
``weight`` ``w`` and sums over the spatial axes (and the batch with ``batch=True``):

.. math::

    R_{n,c} = \frac{\sum_v w\,p\,s + \epsilon}{\sum_v w\,s + \epsilon}, \qquad L_{n,c} = 1 - R_{n,c}

The reference ``SoftSkeletonRecallLoss`` (MIC-DKFZ/Skeleton-Recall) returns ``-mean(R)``; with
``reduction="mean"`` this loss is that value plus 1 (same gradient), so that it lies in ``[0, 1]`` and is 0
for a perfect recall. The skeleton needs no gradient: it is a fixed target computed by the data pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from voxweight._validate import (
    check_flag,
    check_float_tensor,
    check_positive_number,
    check_same_device,
    check_tensor,
    look_up_option,
    plain_tensor,
)
from voxweight.checks import check_all, check_range
from voxweight.losses.align import (
    WeightLike,
    align_batch,
    align_map,
    check_mask,
    checked_weight,
    multiply,
    widen_labels,
)
from voxweight.losses.base import WeightedLoss, option
from voxweight.losses.finite import LOW_PRECISION
from voxweight.losses.overlap import activate, reduce_dice, safe_ratio
from voxweight.losses.sums import dot_rows

__all__ = ["RECALL_REDUCTIONS", "SkeletonRecallLoss", "SkeletonRecallOptions", "skeleton_recall_loss",
           "skeleton_recall_options", "weighted_skeleton_recall"]

RECALL_REDUCTIONS = ("mean", "sum", "none")
_ACTIVATIONS = ("softmax", "sigmoid")


class SkeletonRecallOptions(NamedTuple):
    """The validated options of the Skeleton Recall loss (see :func:`skeleton_recall_options`)."""

    activation: str | None
    include_background: bool
    batch: bool
    smooth: float
    reduction: str


def skeleton_recall_options(*, activation: str | None = "softmax", include_background: bool = False,
                            batch: bool = False, smooth: float = 1.0, reduction: str = "mean") -> SkeletonRecallOptions:
    """Validate the options once (a module does it when built); see :class:`SkeletonRecallLoss`.

    Raises:
        TypeError: for non-bool flags or a non-numeric ``smooth``.
        ValueError: for an unknown ``activation`` or ``reduction`` (with "did you mean"), a negative or
            non-finite ``smooth``.

    Example:
        >>> skeleton_recall_options(batch=True).batch
        True
    """
    if activation is not None:
        activation = look_up_option("activation", activation, _ACTIVATIONS)
    return SkeletonRecallOptions(activation, check_flag("include_background", include_background),
                                 check_flag("batch", batch), check_positive_number("smooth", smooth, allow_zero=True),
                                 look_up_option("reduction", reduction, RECALL_REDUCTIONS))


def skeleton_recall_loss(input: torch.Tensor, skeleton: torch.Tensor, *, activation: str | None = "softmax",
                         include_background: bool = False, batch: bool = False, smooth: float = 1.0,
                         weight: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                         reduction: str = "mean", sample_weight: WeightLike | None = None) -> torch.Tensor:
    """The Skeleton Recall loss as a function; the formulas and conventions are on :class:`SkeletonRecallLoss`.

    Args:
        input: logits ``[N, C, *spatial]`` (probabilities for ``activation=None``).
        skeleton: class ids on the tube, 0 elsewhere, integer ``[N, *spatial]`` or ``[N, 1, *spatial]``
            (``"softmax"``/``None``); or a one-hot / soft skeleton of ``input``'s shape, values in [0, 1].
        activation: ``"softmax"`` (single-label), ``"sigmoid"`` (per channel) or ``None``.
        include_background: whether channel 0 is scored (the reference never scores it).
        batch: one recall per class over the whole batch (nnU-Net's ``batch_dice``), not per sample.
        smooth: ``epsilon``, added to both sums (>= 0).
        weight: per-voxel map ``[N or 1, C or 1, *spatial or 1]``, inside both sums.
        mask: bool, shaped like ``weight``; False voxels count in neither sum, whatever their logits.
        reduction: ``"mean"`` (weighted by ``sample_weight``), ``"sum"`` or ``"none"``.
        sample_weight: ``[N]`` (or a number), on the per-(n, c) losses (with ``batch``: inside the sums).

    Returns:
        The reduced loss, or the per-(n, c) losses ``[N, C']`` (``[C']`` with ``batch``) for ``"none"``.

    Raises:
        TypeError: for non-tensor or non-float input, a floating skeleton where class ids are needed, a
            non-bool mask, non-numeric weights or options.
        ValueError: for a skeleton of another shape or with ids outside ``[0, C)``, a single-channel softmax,
            ``include_background=False`` with one channel, maps that do not line up, bad options.

    Shape:
        - input: ``[N, C, *spatial]``; skeleton: ``[N, *spatial]``, ``[N, 1, *spatial]`` ids or ``[N, C, *spatial]``.
        - weight, mask: ``[N or 1, C or 1, *spatial or 1]``; sample_weight: ``[N]``; output: scalar or ``[N, C']``.

    Example:
        >>> x = torch.tensor([[[9.0, 9.0, -9.0, 9.0], [-9.0, -9.0, 9.0, -9.0]]])  # class 1 found at voxel 2 only
        >>> s = torch.tensor([[0, 1, 1, 0]])  # the skeleton of class 1: voxels 1 and 2
        >>> round(skeleton_recall_loss(x, s, smooth=0.0).item(), 3)  # 1 - 1/2
        0.5
    """
    options = skeleton_recall_options(activation=activation, include_background=include_background, batch=batch,
                                      smooth=smooth, reduction=reduction)
    return weighted_skeleton_recall(input, skeleton, weight, options, sample_weight=sample_weight, mask=mask)


def weighted_skeleton_recall(input: torch.Tensor, skeleton: torch.Tensor, weight: torch.Tensor | None,
                             options: SkeletonRecallOptions, *, sample_weight: WeightLike | None = None,
                             mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`skeleton_recall_loss` with options validated beforehand (:func:`skeleton_recall_options`).

    Shape:
        - as for :func:`skeleton_recall_loss`.

    Example:
        >>> weighted_skeleton_recall(torch.zeros(1, 2, 2), torch.tensor([[1, 1]]), None, skeleton_recall_options())
        tensor(0.3333)
    """
    x = _checked_input(input, options)
    s = _skeleton_target(skeleton, x, single_label=options.activation != "sigmoid")
    w = align_map("weight", checked_weight("weight", weight, x, tensor_only=True), x.shape)
    b = align_batch("sample_weight", checked_weight("sample_weight", sample_weight, x), x.shape)
    m = check_mask(mask, x, broadcast_to=x.shape)
    if m is not None:  # never read a masked logit (a softmax reads every channel: only fully masked voxels)
        s = torch.where(m, s, 0)
        kept = m.any(1, keepdim=True) if options.activation == "softmax" else m
        x = torch.where(kept, x, 0)
    p = activate(x, options.activation)
    if options.batch:  # the sample weight goes inside the sums
        w, b = multiply(w, b), None
    inter, ground = recall_sums(p, s, w)
    if not options.include_background:
        inter, ground = inter[:, 1:], ground[:, 1:]
    if options.batch:
        inter, ground = inter.sum(0), ground.sum(0)
    loss = 1 - safe_ratio(inter + options.smooth, ground + options.smooth)
    return reduce_dice(loss, None if b is None else b.reshape(-1, 1), options.reduction).to(input.dtype)


def recall_sums(p: torch.Tensor, s: torch.Tensor, w: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``I = sum_v w p s`` and ``T = sum_v w s`` per sample and channel (the gradient flows to ``p`` and ``w``).

    ``I`` is one dot product per row of ``p`` and ``w s`` (no voxel-sized product kept for the backward).

    Shape:
        - p, s: ``[N, C, *spatial]``; w: broadcastable to them; outputs: ``[N, C]``.

    Example:
        >>> recall_sums(torch.tensor([[[0.5, 1.0, 1.0]]]), torch.tensor([[[1.0, 1.0, 0.0]]]), None)
        (tensor([[1.5000]]), tensor([[2.]]))
    """
    sw = s if w is None else s * w
    sw = sw.expand_as(p)
    return dot_rows(p, sw.contiguous()), sw.sum(tuple(range(2, p.ndim)))


def _checked_input(input: Any, options: SkeletonRecallOptions) -> torch.Tensor:
    """``input`` checked (float, ``[N, C, *spatial]``, channels the options can score), float32 for half types."""
    input = check_float_tensor("input", input)
    if input.ndim < 3:
        raise ValueError(f"input: expected [N, C, *spatial] with at least one spatial axis, got {list(input.shape)}")
    channels = input.shape[1]
    if options.activation == "softmax" and channels < 2:
        name = "include_background" if options.include_background else "input"
        raise ValueError(f"{name}: expected input with at least 2 channels for activation='softmax' (a softmax over "
                         f"one channel is 1 everywhere: its recall is 1 whatever the logits), got shape "
                         f"{list(input.shape)}; use activation='sigmoid' for one foreground channel")
    if not options.include_background and channels < 2:
        raise ValueError(f"include_background: expected True for single-channel input (no channel would be left), "
                         f"got False for input of shape {list(input.shape)}")
    return input.float() if input.dtype in LOW_PRECISION else input


def _skeleton_target(skeleton: Any, x: torch.Tensor, single_label: bool) -> torch.Tensor:
    """The skeleton as per-channel values of ``x``'s shape and dtype (class ids one-hot encoded)."""
    skeleton = plain_tensor(check_tensor("skeleton", skeleton))
    check_same_device("skeleton", skeleton, x.device)
    if skeleton.is_complex():
        raise TypeError(f"skeleton: expected a real, bool or integer tensor, got dtype {skeleton.dtype}")
    if skeleton.shape == x.shape:
        check_range("skeleton", skeleton, 0.0, 1.0, "values in [0, 1] (a one-hot or soft skeleton of input's shape)")
        return skeleton.to(x.dtype)
    voxels = (x.shape[0], *x.shape[2:])
    ids_shape = tuple(skeleton.shape[:1] + skeleton.shape[2:]) if skeleton.ndim == x.ndim else tuple(skeleton.shape)
    if not single_label or ids_shape != voxels or (skeleton.ndim == x.ndim and skeleton.shape[1] != 1):
        hint = f" (or class ids of shape {list(voxels)} or {[voxels[0], 1, *voxels[1:]]})" if single_label else ""
        raise ValueError(f"skeleton: expected the shape of input {list(x.shape)}{hint}, got {list(skeleton.shape)}")
    if skeleton.is_floating_point() or skeleton.dtype == torch.bool:
        raise TypeError(f"skeleton: expected integer class ids for a skeleton of shape {list(skeleton.shape)} "
                        f"(input has {x.shape[1]} channels), got dtype {skeleton.dtype} (use skeleton.long())")
    ids = widen_labels(skeleton).reshape(voxels).long()
    channels = x.shape[1]
    check_all("skeleton", (ids >= 0) & (ids < channels), f"class ids in [0, {channels - 1}] (input has {channels} "
              f"channels)", "ids outside that range")
    return x.new_zeros(x.shape).scatter_(1, ids.clamp(0, channels - 1).unsqueeze(1), 1.0)


class SkeletonRecallLoss(WeightedLoss):
    r"""Skeleton Recall loss (Kirchhoff et al. 2024): ``1 - recall`` of the tubed skeleton, voxel weights inside.

    Per sample ``n`` (or over the batch with ``batch=True``) and scored class ``c``:

    .. math::

        L_{n,c} = 1 - \frac{\sum_v w\,p_c\,s_c + \epsilon}{\sum_v w\,s_c + \epsilon}

    * ``p = softmax(x)`` over the channels (``sigmoid`` per channel; ``None``: ``x`` are probabilities); ``s_c``
      is the skeleton of class ``c``: ``[s == c]`` for class ids, or channel ``c`` of a one-hot / soft
      skeleton (a multi-hot one, after max pooling for deep supervision, scores each class on its own tube).
    * ``weight`` ``w`` multiplies inside both sums; ``mask`` False voxels count in neither (applied after the
      activation: a voxel masked in every channel never has its logits read, so their value has no effect).
      Scaling ``w`` by a constant changes the loss only through ``epsilon``; a 0/1 ``w`` is exactly a crop.
    * ``include_background=False`` (the default, as the reference) scores channels ``1..C-1`` only; a
      single-channel softmax raises (its probability is 1 everywhere).
    * An empty skeleton (class absent) has recall ``epsilon / epsilon = 1``: loss 0, no gradient (with
      ``smooth=0``, 0/0 is also taken as recall 1; the reference divides by ``max(den, 1e-8)``, giving 0).
    * ``"mean"`` is ``sum(b L) / sum(b)`` over the per-(n, c) losses (plain mean without ``sample_weight``
      ``b``), ``"sum"`` is ``sum(b L)``, ``"none"`` gives ``b L`` ``[N, C']`` (``[C']`` with ``batch``).
    * Reference: ``SoftSkeletonRecallLoss(apply_nonlin=softmax, do_bg=False, batch_dice=batch, smooth=eps)``
      returns ``-mean(R)``: this loss with ``reduction="mean"`` is that plus 1 (wherever ``T + epsilon >= 1e-8``,
      the reference's floor for the denominator). float16/bfloat16 compute in
      float32 and return the input's dtype. No ``torch.distributed`` reduction (the reference all-gathers the
      batch sums under DDP).

    Args:
        activation: ``"softmax"``, ``"sigmoid"`` or ``None``.
        include_background: whether channel 0 is scored.
        batch: one recall per class over the whole batch.
        smooth: ``epsilon`` (>= 0; the reference trainer uses 1e-5).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        weight_fn: called as ``weight_fn(skeleton)`` (without gradient) when ``forward`` gets no ``weight``.

    Shape:
        - input: ``[N, C, *spatial]``; skeleton: ids ``[N, *spatial]`` / ``[N, 1, *spatial]``, or ``[N, C, *spatial]``.
        - weight, mask: ``[N or 1, C or 1, *spatial or 1]``; sample_weight: ``[N]``.

    Example:
        >>> loss_fn = SkeletonRecallLoss(smooth=0.0)
        >>> x = torch.tensor([[[9.0, 9.0, -9.0, 9.0], [-9.0, -9.0, 9.0, -9.0]]])
        >>> s = torch.tensor([[[0, 1, 1, 0]]])  # [N, 1, *spatial] class ids on the tube
        >>> round(loss_fn(x, s).item(), 3), round(loss_fn(x, s, torch.tensor([[[1.0, 0.0, 1.0, 1.0]]])).item(), 3)
        (0.5, 0.0)
    """

    options: SkeletonRecallOptions
    make_options = skeleton_recall_options
    activation = option("activation", "``'softmax'``, ``'sigmoid'`` or None (validated when assigned).")
    include_background = option("include_background", "Whether channel 0 is scored.")
    batch = option("batch", "One recall per class over the whole batch.")
    smooth = option("smooth", "Added to both sums.")
    reduction = option("reduction", "The reduction (validated when assigned).")

    def __init__(self, *, activation: str | None = "softmax", include_background: bool = False, batch: bool = False,
                 smooth: float = 1.0, reduction: str = "mean",
                 weight_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__(skeleton_recall_options(activation=activation, include_background=include_background,
                                                 batch=batch, smooth=smooth, reduction=reduction), weight_fn)

    def forward(self, input: torch.Tensor, skeleton: torch.Tensor, weight: torch.Tensor | None = None, *,
                mask: torch.Tensor | None = None, sample_weight: WeightLike | None = None) -> torch.Tensor:
        """Compute the loss; see the class docstring. ``weight`` may change on every call."""
        return weighted_skeleton_recall(input, skeleton, self.voxel_map(weight, skeleton), self.options,
                                        sample_weight=sample_weight, mask=mask)

    def extra_repr(self) -> str:
        """Configuration shown by ``repr``."""
        return ", ".join([f"{k}={v!r}" for k, v in self.options._asdict().items()] + self.weights_repr())
