r"""Compound losses: ``lambda_dice * Dice + lambda_bce * BCE`` (multi-label) and ``Dice + CE`` (single-label).

One voxel ``weight`` map (new every call, or from ``weight_fn``) feeds the terms named in ``weight_terms``;
``mask``, ``sample_weight`` and ``class_weight`` reach both terms (see :class:`VoxelWeightedDiceBCE`). The terms
are the submodules ``dice`` and ``bce`` / ``ce``, whose options are set there (``loss_fn.dice.smooth_nr = 0.0``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from voxweight.checks import checked_once
from voxweight.losses.align import WeightLike, check_mask, multiply, per_channel
from voxweight.losses.base import WeightedLoss, option
from voxweight.losses.bce import VoxelWeightedBCE
from voxweight.losses.ce import VoxelWeightedCE
from voxweight.losses.compound_options import (
    DiceBCEOptions,
    DiceCEOptions,
    dice_bce_options,
    dice_ce_options,
    dice_term_reduction,
    term_reduction,
)
from voxweight.losses.dice import VoxelWeightedDice
from voxweight.losses.dice_bce import dice_bce_sums
from voxweight.losses.dice_parts import DiceInputs, dice_from_sums, dice_inputs, fold_sample_weight
from voxweight.losses.reduce import reduce_denominator
from voxweight.losses.sync import global_mean, synced

__all__ = ["VoxelWeightedDiceBCE", "VoxelWeightedDiceCE"]

class _Compound(WeightedLoss):
    """The forward shared by the two compounds: each term with weight > 0, the map where ``weight_terms`` says."""

    dice: VoxelWeightedDice
    second: str  # the name of the submodule and term that is not the Dice: "bce" or "ce"

    def forward(self, input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None, *,
                sample_weight: WeightLike | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Compute ``lambda_dice * Dice + lambda * BCE/CE``; ``weight`` may change on every call."""
        weight = self.voxel_map(weight, target)
        if weight is not None and not self.options.weight_terms:
            raise ValueError("weight: expected None with weight_terms=() (no term takes the voxel map), got a "
                             "tensor; name the terms it should weight, e.g. weight_terms=('dice',)")
        with checked_once():  # the terms validate the same target and map: their values are read once
            return self._terms(input, target, weight, sample_weight, mask)

    def _terms(self, input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None,
               sample_weight: WeightLike | None, mask: torch.Tensor | None) -> torch.Tensor:
        terms, lambdas = self.options.weight_terms, self.options[:2]
        loss = None
        if lambdas[1]:  # first: a fused BCE checks the target and map inside its kernel, and the Dice then skips
            loss = lambdas[1] * getattr(self, self.second)(input, target, weight if self.second in terms else None,
                                                           sample_weight=sample_weight, mask=mask)
        if lambdas[0]:
            dice_target, dice_weight, dice_mask = self.dice_term_inputs(input, target, weight, mask)
            term = lambdas[0] * self.dice(input, dice_target, dice_weight if "dice" in terms else None,
                                          sample_weight=sample_weight, mask=dice_mask)
            loss = term if loss is None else loss + term
        return loss

    def dice_term_inputs(self, input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None,
                    mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The Dice term's target, weight and mask (the same tensors, unless a subclass converts them)."""
        return target, weight, mask

    def extra_repr(self) -> str:
        """Configuration shown by ``repr`` (the terms' own options are shown by their submodules)."""
        o = self.options
        return ", ".join([f"{k}={v!r}" for k, v in o._asdict().items()] + self.weights_repr())


class VoxelWeightedDiceBCE(_Compound):
    r"""``lambda_dice * Dice + lambda_bce * BCE`` on sigmoid outputs (multi-label), one weight map for both.

    .. math::

        L = \lambda_{dice}\, \mathrm{Dice}(\sigma(x), t; w_D) + \lambda_{bce}\, \mathrm{BCE}(x, t; w_B)

    with ``w_D`` / ``w_B`` the voxel map where ``weight_terms`` names the term (1 elsewhere). What each
    weight means in each term:

    ==================  =============================================  ==============================================
    weight              Dice term (:class:`VoxelWeightedDice`)          BCE term (:class:`VoxelWeightedBCE`)
    ==================  =============================================  ==============================================
    ``weight`` (voxel)  inside the sums ``I, P, T`` (after the sigmoid)  multiplies each element loss
    ``mask``            voxel excluded from ``I, P, T``                  element not counted (not in the mean)
    ``class_weight``    weights the per-(n, c) Dice losses in the mean   multiplies channel ``c``'s element losses
    ``sample_weight``   weights the per-(n, c) losses (batch: the sums)  multiplies sample ``n``'s element losses
    ``pos_weight``      (not used)                                      multiplies the positive term, per channel
    ``focal_gamma``     (not used)                                      ``(1 - p_t)^gamma`` on each element loss
    ==================  =============================================  ==============================================

    Unlike MONAI's ``DiceCELoss(sigmoid=True)``, whose second term is a softmax cross-entropy over the
    channels whenever ``C > 1`` (a multi-label target treated as a class distribution), the second term
    here is a per-channel BCE for every ``C``, and a voxel map reaches both terms.

    Args:
        pos_weight: the BCE's positive-class weight per channel (``[C]`` or a number).
        class_weight: per channel; both terms (see the table).
        lambda_dice, lambda_bce: the terms' weights, >= 0, not both 0 (a term weighted 0 is not computed).
        weight_terms: the terms the voxel map feeds, a subset of ``("dice", "bce")``.
        focal_gamma: the BCE's focal exponent (0: plain BCE).
        include_background, batch, squared, alpha, beta, generalized, smooth_nr, smooth_dr: the Dice term's
            options (:class:`VoxelWeightedDice`).
        reduction: the Dice term's reduction, ``"mean"`` or ``"sum"``.
        bce_reduction: the BCE term's, ``"mean"``, ``"sum"`` or ``"weighted_mean"``.
        fused: compute both terms in compiled kernels (:func:`voxweight.voxel_weighted_bce`,
            :func:`voxweight.voxel_weighted_dice`).
        sync: both terms reduce over every ``torch.distributed`` rank (:mod:`voxweight.losses.sync`).
        weight_fn: called as ``weight_fn(target)`` (without gradient) when ``forward`` gets no ``weight``.

    Shape:
        - input: logits ``[N, C, *spatial]``; target: the same shape (binary or soft).
        - weight, mask: ``[N or 1, C or 1, *spatial]``; sample_weight: ``[N]``; output: scalar.

    Example:
        >>> import torch
        >>> from voxweight import VoxelWeightedDiceBCE
        >>> loss_fn = VoxelWeightedDiceBCE(pos_weight=[3.0], lambda_bce=0.5)
        >>> x, y = torch.zeros(2, 1, 4, 4, 4), (torch.rand(2, 1, 4, 4, 4) > 0.8).float()
        >>> w = 1 + 4 * y  # a new voxel map every batch
        >>> loss_fn(x, y, w).shape
        torch.Size([])
    """

    options: DiceBCEOptions
    make_options = dice_bce_options
    second = "bce"
    lambda_dice = option("lambda_dice", "Weight of the Dice term, >= 0.")
    lambda_bce = option("lambda_bce", "Weight of the BCE term, >= 0.")
    weight_terms = option("weight_terms", "The terms the voxel map feeds.")

    def __init__(self, pos_weight: WeightLike | None = None, class_weight: WeightLike | None = None, *,
                 lambda_dice: float = 1.0, lambda_bce: float = 1.0, weight_terms: Sequence[str] = ("dice", "bce"),
                 focal_gamma: float = 0.0, include_background: bool = True, batch: bool = False,
                 squared: bool = False, alpha: float = 0.5, beta: float = 0.5, generalized: str | None = None,
                 smooth_nr: float = 1e-5, smooth_dr: float = 1e-5, reduction: str = "mean",
                 bce_reduction: str = "mean", fused: bool = False, sync: bool = False,
                 weight_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        options = dice_bce_options(lambda_dice=lambda_dice, lambda_bce=lambda_bce, weight_terms=weight_terms)
        super().__init__(options, weight_fn)
        self.dice = VoxelWeightedDice(class_weight, activation="sigmoid", include_background=include_background,
                                      batch=batch, squared=squared, alpha=alpha, beta=beta, generalized=generalized,
                                      smooth_nr=smooth_nr, smooth_dr=smooth_dr, sync=sync, fused=fused,
                                      reduction=dice_term_reduction(reduction))
        self.bce = VoxelWeightedBCE(pos_weight, class_weight, reduction=term_reduction("bce_reduction",
                                    bce_reduction), fused=fused, focal_gamma=focal_gamma, sync=sync)

    def _terms(self, input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None,
               sample_weight: WeightLike | None, mask: torch.Tensor | None) -> torch.Tensor:
        """Eagerly, both terms' voxel work in one pass each way (:mod:`voxweight.losses.dice_bce`) where it applies."""
        if not self._joint_applies(input, target, weight):
            return super()._terms(input, target, weight, sample_weight, mask)
        o, do = self.options, self.dice.options
        d = dice_inputs(input, target, weight, do, class_weight=self.dice.class_weight, sample_weight=sample_weight,
                        mask=mask)
        w_dice, b = fold_sample_weight(d.w if "dice" in o.weight_terms else None, d.b, do)
        pos = per_channel("pos_weight", self.bce.pos_weight, d.x)
        *sums, bce_rows = dice_bce_sums(d.x, d.t, w_dice, d.w if "bce" in o.weight_terms else None, d.m, pos,
                                        do.squared)
        a = d.a
        if not do.include_background:
            sums, a = [v[:, 1:] for v in sums], None if a is None else a[1:]
        if do.batch:
            sums = [v.sum(0) for v in sums]
        bce = self._bce_from_rows(bce_rows, d)  # first, as the terms apart: the same collectives in the same order
        return o.lambda_bce * bce + o.lambda_dice * dice_from_sums(*sums, a, b, do, input.dtype)

    def _joint_applies(self, input: Any, target: Any, weight: Any) -> bool:
        """The eager sigmoid Dice + plain logit BCE, float32/float64, both terms, no gradient but the input's."""
        b, o = self.bce.options, self.options
        if b.fused or b.focal_gamma or b.balance is not None or not b.logits or b.reduction == "weighted_mean":
            return False
        if not (o.lambda_dice and o.lambda_bce) or self.dice.activation != "sigmoid" or torch.compiler.is_compiling():
            return False
        if not isinstance(input, torch.Tensor) or input.dtype not in (torch.float32, torch.float64):
            return False
        if input.ndim < 3 or (not self.dice.include_background and input.shape[1] < 2):  # the same on every rank
            return False
        return not any(isinstance(v, torch.Tensor) and v.requires_grad for v in (target, weight))

    def _bce_from_rows(self, rows: torch.Tensor, d: DiceInputs) -> torch.Tensor:
        """The BCE term from its per-(n, c) sums: times class and sample weights, over the count for "mean"."""
        a = per_channel("class_weight", self.bce.class_weight, d.x)
        factor = multiply(None if a is None else a.reshape(1, -1), None if d.b is None else d.b.reshape(-1, 1))
        total = (rows if factor is None else rows * factor).sum()
        options = self.bce.options
        count = None if options.reduction == "sum" else reduce_denominator("mean", d.m, None, d.x.shape, total)
        if synced(options.sync):
            return global_mean(total, count)
        return total if count is None else total / torch.where(count > 0, count, torch.ones_like(count))


class VoxelWeightedDiceCE(_Compound):
    r"""``lambda_dice * Dice + lambda_ce * CE`` on softmax outputs (single-label), one weight map for both.

    .. math::

        L = \lambda_{dice}\, \mathrm{Dice}(\mathrm{softmax}(x), \mathrm{onehot}(y); w_D)
            + \lambda_{ce}\, \mathrm{CE}(x, y; w_C)

    The weights mean what they mean in :class:`VoxelWeightedDiceBCE`'s table, with the CE in place of the
    BCE (``class_weight`` is the CE's ``a_y``; no ``pos_weight``). ``ignore_index`` voxels count in neither
    term (the Dice term masks them after the softmax). With no weights and the defaults this is MONAI's
    ``DiceCELoss(softmax=True, to_onehot_y=True)``.

    Args:
        class_weight: per class; both terms.
        lambda_dice, lambda_ce: the terms' weights, >= 0, not both 0 (a term weighted 0 is not computed).
        weight_terms: the terms the voxel map feeds, a subset of ``("dice", "ce")``.
        ignore_index: a class index whose voxels are not counted (index targets only).
        focal_gamma: the CE's focal exponent (0: plain CE).
        label_smoothing: the CE's label smoothing, in [0, 1] (the Dice term uses the hard one-hot).
        include_background, batch, squared, alpha, beta, generalized, smooth_nr, smooth_dr: the Dice term's
            options (:class:`VoxelWeightedDice`).
        reduction: the Dice term's reduction, ``"mean"`` or ``"sum"``.
        ce_reduction: the CE term's, ``"mean"``, ``"sum"`` or ``"weighted_mean"``.
        sync: both terms reduce over every ``torch.distributed`` rank (:mod:`voxweight.losses.sync`).
        weight_fn: called as ``weight_fn(target)`` (without gradient) when ``forward`` gets no ``weight``.

    Shape:
        - input: logits ``[N, C, *spatial]``; target: class indices ``[N, *spatial]`` or ``[N, 1, *spatial]``,
          or probabilities ``[N, C, *spatial]``.
        - weight, mask: ``[N, *spatial]`` or ``[N, 1, *spatial]``; sample_weight: ``[N]``; output: scalar.

    Example:
        >>> import torch
        >>> from voxweight import VoxelWeightedDiceCE
        >>> loss_fn = VoxelWeightedDiceCE(class_weight=[0.5, 1.0, 4.0], ignore_index=255)
        >>> x, y = torch.randn(2, 3, 4, 4, 4), torch.randint(0, 3, (2, 1, 4, 4, 4))
        >>> y[:, :, 0] = 255  # unlabelled slices
        >>> loss_fn(x, y, torch.rand(2, 1, 4, 4, 4)).isfinite()
        tensor(True)
    """

    options: DiceCEOptions
    make_options = dice_ce_options
    second = "ce"
    lambda_dice = option("lambda_dice", "Weight of the Dice term, >= 0.")
    lambda_ce = option("lambda_ce", "Weight of the CE term, >= 0.")
    weight_terms = option("weight_terms", "The terms the voxel map feeds.")

    def __init__(self, class_weight: WeightLike | None = None, *, lambda_dice: float = 1.0, lambda_ce: float = 1.0,
                 weight_terms: Sequence[str] = ("dice", "ce"), ignore_index: int | None = None,
                 focal_gamma: float = 0.0, label_smoothing: float = 0.0, include_background: bool = True,
                 batch: bool = False, squared: bool = False, alpha: float = 0.5, beta: float = 0.5,
                 generalized: str | None = None, smooth_nr: float = 1e-5, smooth_dr: float = 1e-5,
                 reduction: str = "mean", ce_reduction: str = "mean", sync: bool = False,
                 weight_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        options = dice_ce_options(lambda_dice=lambda_dice, lambda_ce=lambda_ce, weight_terms=weight_terms)
        super().__init__(options, weight_fn)
        self.dice = VoxelWeightedDice(class_weight, activation="softmax", include_background=include_background,
                                      batch=batch, squared=squared, alpha=alpha, beta=beta, generalized=generalized,
                                      smooth_nr=smooth_nr, smooth_dr=smooth_dr, sync=sync,
                                      reduction=dice_term_reduction(reduction))
        self.ce = VoxelWeightedCE(class_weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
                                  reduction=term_reduction("ce_reduction", ce_reduction), focal_gamma=focal_gamma,
                                  sync=sync)

    def dice_term_inputs(self, input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None,
                    mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Voxel maps get a channel axis; ``ignore_index`` voxels become class 0 under a False mask."""
        weight, mask = _with_channel(weight, input), _with_channel(mask, input)
        ignore = self.ce.ignore_index
        if ignore is None or not isinstance(target, torch.Tensor):
            return target, weight, mask
        if target.is_floating_point():
            raise ValueError(f"ignore_index: expected None with probability targets (it applies to class "
                             f"indices only), got {ignore!r}; use mask= to leave voxels out")
        index = target if target.ndim == input.ndim else target.unsqueeze(1)
        kept = index != ignore
        mask = check_mask(mask, input, broadcast_to=input.shape)
        return torch.where(kept, index, 0), weight, kept if mask is None else mask & kept


def _with_channel(x: Any, input: torch.Tensor) -> Any:
    """A voxel map ``[N, *spatial]`` as ``[N, 1, *spatial]`` (anything else unchanged, checked by the Dice)."""
    if isinstance(x, torch.Tensor) and x.ndim == input.ndim - 1:
        return x.unsqueeze(1)
    return x
