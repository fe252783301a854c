"""Voxel-weighted soft Dice, Tversky and generalized Dice losses: a functional and a module.

The per-voxel ``weight`` and the ``mask`` enter the overlap sums *after* the activation (a masked logit has
no effect at any value); ``class_weight`` ``[C]`` and ``sample_weight`` ``[N]`` weight the per-(sample,
class) losses. See :class:`VoxelWeightedDice` for the formulas.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from voxweight._validate import check_flag, check_positive_number, look_up_option
from voxweight.losses.align import (
    WeightLike,
)
from voxweight.losses.base import WeightedLoss, option
from voxweight.losses.dice_parts import dice_from_sums, dice_inputs, fold_sample_weight
from voxweight.losses.overlap import (
    DiceOptions,
    dice_sums,
)
from voxweight.losses.sync import check_sync

__all__ = ["ACTIVATIONS", "DICE_REDUCTIONS", "DiceOptions", "VoxelWeightedDice", "dice_options",
           "voxel_weighted_dice", "weighted_dice"]

ACTIVATIONS = ("sigmoid", "softmax")
DICE_REDUCTIONS = ("mean", "sum", "none")
_GENERALIZED = ("sudre",)


def dice_options(*, activation: str | None = "sigmoid", include_background: bool = True, batch: bool = False,
                 squared: bool = False, alpha: float = 0.5, beta: float = 0.5, generalized: str | None = None,
                 smooth_nr: float = 1e-5, smooth_dr: float = 1e-5, reduction: str = "mean", sync: bool = False,
                 fused: bool = False) -> DiceOptions:
    """Validate the Dice loss's options once (a module does it when built); see :class:`VoxelWeightedDice`.

    Raises:
        TypeError: for non-bool flags or non-numeric ``alpha``/``beta``/``smooth_nr``/``smooth_dr``.
        ValueError: for an unknown ``activation``, ``generalized`` or ``reduction`` (with "did you mean"),
            ``alpha``/``beta``/smoothing negative or not finite, or options that do not combine (``squared`` or
            ``generalized`` with Tversky ``alpha``/``beta`` other than 0.5, ``squared`` with ``generalized``,
            ``sync=True`` with ``reduction="none"``).

    Example:
        >>> dice_options(activation="softmax", include_background=False).activation
        'softmax'
    """
    if activation is not None:
        activation = look_up_option("activation", activation, ACTIVATIONS)
    if generalized is not None:
        generalized = look_up_option("generalized", generalized, _GENERALIZED)
    reduction = look_up_option("reduction", reduction, DICE_REDUCTIONS)
    flags = [check_flag(n, v) for n, v in
             (("include_background", include_background), ("batch", batch), ("squared", squared))]
    alpha, beta, smooth_nr, smooth_dr = (check_positive_number(n, v, allow_zero=True) for n, v in (
        ("alpha", alpha), ("beta", beta), ("smooth_nr", smooth_nr), ("smooth_dr", smooth_dr)))
    tversky = (alpha, beta) != (0.5, 0.5)
    if tversky and (flags[2] or generalized is not None):
        name = "squared" if flags[2] else "generalized"
        raise ValueError(f"{name}: expected the default ({False if flags[2] else None}) with Tversky alpha/beta "
                         f"other than 0.5, got {flags[2] if flags[2] else generalized!r} (alpha={alpha}, beta={beta})")
    if flags[2] and generalized is not None:
        raise ValueError(f"squared: expected False with generalized={generalized!r} (the Sudre weights use "
                         f"sum_v w t), got True")
    return DiceOptions(activation, *flags, alpha, beta, generalized, smooth_nr, smooth_dr, reduction,
                       check_sync(sync, reduction, DICE_REDUCTIONS), check_flag("fused", fused))


def voxel_weighted_dice(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    *,
    class_weight: WeightLike | None = None,
    sample_weight: WeightLike | None = None,
    mask: torch.Tensor | None = None,
    activation: str | None = "sigmoid",
    include_background: bool = True,
    batch: bool = False,
    squared: bool = False,
    alpha: float = 0.5,
    beta: float = 0.5,
    generalized: str | None = None,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    reduction: str = "mean",
    sync: bool = False,
    fused: bool = False,
) -> torch.Tensor:
    """Soft Dice (or Tversky, or generalized Dice) with per-voxel, per-class and per-sample weights.

    The formulas and conventions are on :class:`VoxelWeightedDice`; this is the same loss as a function.

    Args:
        input: logits (``activation="sigmoid"``/``"softmax"``) or probabilities (``None``), ``[N, C, *spatial]``.
        target: values in [0, 1] of ``input``'s shape; with ``"softmax"`` or ``None`` also integer class indices
            ``[N, *spatial]`` or ``[N, 1, *spatial]`` (one-hot encoded here).
        weight: per-voxel map, ``input``'s ndim, each dim equal or 1; a new one may come every call.
        class_weight: one weight per channel of ``input`` (number or ``[C]``), on the per-(n, c) losses.
        sample_weight: ``[N]``, on the per-(n, c) losses (with ``batch=True``: inside the sums, per sample).
        mask: bool, shaped like ``weight``; False voxels are left out of every sum.
        activation: ``"sigmoid"``, ``"softmax"`` or ``None`` (probabilities given).
        include_background: whether channel 0 is scored.
        batch: one loss per class over the whole batch (nnU-Net's ``batch_dice``).
        squared: sum ``p^2`` and ``t^2`` in the denominator.
        alpha: Tversky weight of false positives (>= 0; 0.5 with ``beta`` 0.5 is Dice).
        beta: Tversky weight of false negatives (>= 0).
        generalized: ``None`` or ``"sudre"`` (generalized Dice).
        smooth_nr: added to the numerator (>= 0).
        smooth_dr: added to the denominator (>= 0).
        reduction: ``"mean"`` (weighted by class and sample weights), ``"sum"`` or ``"none"``.
        sync: under ``torch.distributed`` (more than one rank), every rank returns the loss of the whole batch
            and DDP's averaged gradient is its gradient (:mod:`voxweight.losses.sync`); else no effect.
        fused: with ``"sigmoid"``, the activation, mask and sums in one compiled kernel and the backward in
            another (:mod:`voxweight.losses.fused_dice`); other activations compute eagerly.

    Returns:
        The reduced loss, or the per-(n, c) losses for ``reduction="none"``.

    Raises:
        TypeError: for non-tensor or non-float input, a non-integer target where class indices are needed,
            a non-bool mask, non-numeric weights or options.
        ValueError: for shapes that do not line up (a ``[C]`` of the wrong length included), targets or
            probabilities outside [0, 1], negative or non-finite weights, bad options (see :func:`dice_options`).

    Shape:
        - input: ``[N, C, *spatial]``; target: the same, or ``[N, *spatial]`` / ``[N, 1, *spatial]`` indices.
        - weight, mask: ``[N or 1, C or 1, *spatial or 1]``; class_weight: ``[C]``; sample_weight: ``[N]``.
        - output: scalar, or ``[N, C']`` (``[C']`` with ``batch``; ``C'`` = included channels) for ``"none"``.

    Example:
        >>> import torch
        >>> x = torch.full((1, 1, 4), 20.0)  # sure of foreground everywhere
        >>> t = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])
        >>> round(voxel_weighted_dice(x, t).item(), 4)  # 1 - 2*2 / (4 + 2)
        0.3333
        >>> w = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])  # weight 0 drops the two false positives
        >>> round(voxel_weighted_dice(x, t, w).item(), 4)
        0.0
    """
    options = dice_options(activation=activation, include_background=include_background, batch=batch,
                           squared=squared, alpha=alpha, beta=beta, generalized=generalized, smooth_nr=smooth_nr,
                           smooth_dr=smooth_dr, reduction=reduction, sync=sync, fused=fused)
    return weighted_dice(input, target, weight, options, class_weight=class_weight, sample_weight=sample_weight,
                         mask=mask)


def weighted_dice(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, options: DiceOptions, *,
                  class_weight: WeightLike | None = None, sample_weight: WeightLike | None = None,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`voxel_weighted_dice` with options validated beforehand (:func:`dice_options`); tensors checked here.

    Shape:
        - as for :func:`voxel_weighted_dice`.

    Example:
        >>> weighted_dice(torch.zeros(1, 2, 3), torch.tensor([[0, 1, 1]]), None, dice_options(activation="softmax"))
        tensor(0.5143)
    """
    d = dice_inputs(input, target, weight, options, class_weight=class_weight, sample_weight=sample_weight,
                    mask=mask)
    w, b = fold_sample_weight(d.w, d.b, options)
    inter, pred, ground, a = dice_sums(d.x, d.t, w, d.m, d.a, options)
    return dice_from_sums(inter, pred, ground, a, b, options, input.dtype)


class VoxelWeightedDice(WeightedLoss):
    r"""Soft Dice loss (or Tversky, or generalized Dice) whose per-voxel weights change every call.

    With probabilities ``p`` (``sigmoid`` or ``softmax`` of the logits, or the input itself for
    ``activation=None``), target ``t``, per-voxel ``weight`` ``w`` (0 where ``mask`` is False, applied after
    the activation) and sums over the spatial axes (and the batch axis with ``batch=True``):

    .. math::

        I = \sum_v w\,p\,t, \quad P = \sum_v w\,p^k, \quad T = \sum_v w\,t^k \quad (k = 2 \text{ if squared}),
        \qquad L_{n,c} = 1 - \frac{2 I + s_{nr}}{P + T + s_{dr}}

    * Tversky (``alpha``, ``beta`` not both 0.5): ``L = 1 - (I + s_nr) / (I + alpha FP + beta FN + s_dr)`` with
      ``FP = sum w p (1 - t)``, ``FN = sum w (1 - p) t`` (MONAI's ``TverskyLoss``); at 0.5/0.5 it would equal Dice
      up to the smoothing, so the Dice formula above is used.
    * ``generalized="sudre"``: one loss per sample, ``1 - (2 sum_c g_c I_c + s_nr) / (sum_c g_c (P_c + T_c) + s_dr)``
      with ``g_c = a_c / T_c^2`` (Sudre et al. 2017; MONAI's ``GeneralizedDiceLoss``); a class absent from the
      sample (``T_c = 0``) takes the largest ``1 / T^2`` of the present classes; no class present gives 0.
    * ``class_weight`` ``a`` ``[C]`` and ``sample_weight`` ``b`` ``[N]`` weight the per-(n, c) losses:
      ``"mean"`` is ``sum(a b L) / sum(a b)`` (MONAI's plain mean without them), ``"sum"`` is ``sum(a b L)``,
      ``"none"`` gives ``a b L``, ``[N, C']`` or ``[C']`` with ``batch`` (``C'`` = the included channels;
      generalized: ``[N, 1]`` or ``[1]``). With ``batch=True`` the sample weight multiplies ``w`` instead.
    * A zero denominator (nothing predicted or present and ``smooth_dr=0``) gives ``L = 0``, never NaN.
    * ``sync=True`` under ``torch.distributed``: with ``batch``, ``I, P, T`` are summed over every rank's samples
      before the ratio; without, ``"mean"``/``"sum"`` run over every rank's (n, c). Every rank returns the loss
      of the whole batch (:mod:`voxweight.losses.sync`).

    ``softmax`` targets may be integer class indices ``[N, *spatial]`` / ``[N, 1, *spatial]`` (MONAI's
    ``to_onehot_y``); ``include_background=False`` drops channel 0 after the activation (``class_weight``
    stays ``[C]``, the input's channels). Scaling ``w`` by a constant leaves the loss unchanged up to the
    smoothing terms; a 0/1 weight is exactly cropping those voxels. float16/bfloat16 compute in float32.

    Args:
        class_weight: one weight per channel (number, sequence or ``[C]`` tensor); stored as a buffer.
        activation: ``"sigmoid"`` (multi-label), ``"softmax"`` (single-label) or ``None`` (probabilities).
        include_background: whether channel 0 is scored.
        batch: one loss per class over the whole batch (nnU-Net's ``batch_dice``), not per sample.
        squared: sum ``p^2`` and ``t^2`` in the denominator (MONAI's ``squared_pred``, Milletari et al.).
        alpha, beta: Tversky weights of false positives and false negatives, >= 0.
        generalized: ``None`` or ``"sudre"``.
        smooth_nr, smooth_dr: added to the numerator and the denominator, >= 0.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        sync: reduce over every ``torch.distributed`` rank (see above).
        fused: compiled kernels for the sigmoid Dice's sums and their gradient.
        weight_fn: called as ``weight_fn(target)`` (without gradient) when ``forward`` gets no ``weight``.

    Shape:
        - input: ``[N, C, *spatial]``; target: the same, or ``[N, *spatial]`` / ``[N, 1, *spatial]`` indices.
        - weight, mask: ``[N or 1, C or 1, *spatial or 1]``; sample_weight: ``[N]``.

    Example:
        >>> import torch
        >>> from voxweight.losses.dice import VoxelWeightedDice
        >>> loss_fn = VoxelWeightedDice(activation="softmax", include_background=False)
        >>> x = torch.tensor([[[9.0, 9.0, -9.0], [-9.0, -9.0, 9.0]]])  # [N=1, C=2, 3 voxels]
        >>> y = torch.tensor([[0, 1, 1]])  # class indices
        >>> round(loss_fn(x, y).item(), 3)  # foreground: I = 1, P = 1, T = 2
        0.333
        >>> round(loss_fn(x, y, mask=torch.tensor([[[True, False, True]]])).item(), 3)
        0.0
    """

    class_weight: torch.Tensor | None
    options: DiceOptions
    make_options = dice_options
    activation = option("activation", "``'sigmoid'``, ``'softmax'`` or None (validated when assigned).")
    include_background = option("include_background", "Whether channel 0 is scored.")
    batch = option("batch", "One loss per class over the whole batch.")
    squared = option("squared", "Whether the denominator sums squares.")
    alpha = option("alpha", "Tversky weight of false positives.")
    beta = option("beta", "Tversky weight of false negatives.")
    generalized = option("generalized", "None or ``'sudre'``.")
    smooth_nr = option("smooth_nr", "Numerator smoothing.")
    smooth_dr = option("smooth_dr", "Denominator smoothing.")
    reduction = option("reduction", "The reduction (validated when assigned).")
    sync = option("sync", "Whether the reduction runs over every torch.distributed rank.")
    fused = option("fused", "Whether the sigmoid Dice's sums run in compiled kernels.")

    def __init__(self, class_weight: WeightLike | None = None, *, activation: str | None = "sigmoid",
                 include_background: bool = True, batch: bool = False, squared: bool = False, alpha: float = 0.5,
                 beta: float = 0.5, generalized: str | None = None, smooth_nr: float = 1e-5,
                 smooth_dr: float = 1e-5, reduction: str = "mean", sync: bool = False, fused: bool = False,
                 weight_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        options = dice_options(activation=activation, include_background=include_background, batch=batch,
                               squared=squared, alpha=alpha, beta=beta, generalized=generalized,
                               smooth_nr=smooth_nr, smooth_dr=smooth_dr, reduction=reduction, sync=sync,
                               fused=fused)
        super().__init__(options, weight_fn, class_weight=class_weight)

    def forward(self, input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None, *,
                sample_weight: WeightLike | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Compute the loss; see the class docstring. ``weight`` may change on every call."""
        return weighted_dice(input, target, self.voxel_map(weight, target), self.options,
                             class_weight=self.class_weight, sample_weight=sample_weight, mask=mask)

    def extra_repr(self) -> str:
        """Configuration shown by ``repr``."""
        o = self.options
        parts = [f"activation={o.activation!r}", f"reduction={o.reduction!r}"]
        parts += [f"{k}={v!r}" for k, v in o._asdict().items()
                  if k not in ("activation", "reduction") and v != dice_options()._asdict()[k]]
        return ", ".join(parts + self.weights_repr())
