r"""Dice + CE + Skeleton Recall (the reference nnU-Net trainer's loss), one voxel map for every term.

.. math::

    L = \underbrace{\lambda_{dice}\,\mathrm{Dice} + \lambda_{ce}\,\mathrm{CE}}_{\text{VoxelWeightedDiceCE}}
        + \lambda_{srec}\,\mathrm{SRec}(\mathrm{softmax}(x), s)

The skeleton ``s`` (class ids on the tube, e.g. from :func:`voxweight.tubed_skeleton`) is a keyword argument,
so that :class:`voxweight.DeepSupervision` can resample it at each scale as it does the target (its
``skeleton=`` hook: block max by default, which keeps every skeleton voxel at coarser scales).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch

from voxweight._validate import check_positive_number, describe, look_up_option
from voxweight.checks import checked_once
from voxweight.losses.align import WeightLike, check_mask
from voxweight.losses.base import WeightedLoss, option
from voxweight.losses.compound import VoxelWeightedDiceCE
from voxweight.losses.skeleton_recall import SkeletonRecallLoss

__all__ = ["SKELETON_TERMS", "DiceCESkeletonRecall", "SkeletonCompoundOptions", "skeleton_compound_options"]

SKELETON_TERMS = ("dice_ce", "srec")


class SkeletonCompoundOptions(NamedTuple):
    """The validated options of :class:`DiceCESkeletonRecall` (see :func:`skeleton_compound_options`)."""

    weight_srec: float
    weight_terms: tuple[str, ...]


def skeleton_compound_options(*, weight_srec: float = 1.0,
                              weight_terms: Sequence[str] = SKELETON_TERMS) -> SkeletonCompoundOptions:
    """Validate the Skeleton Recall term's weight and the terms the voxel map feeds.

    Raises:
        TypeError: for a non-numeric ``weight_srec`` or ``weight_terms`` that is not a sequence of names.
        ValueError: for a negative or non-finite ``weight_srec``, an unknown term (with "did you mean").

    Example:
        >>> skeleton_compound_options(weight_srec=0.5, weight_terms="srec")
        SkeletonCompoundOptions(weight_srec=0.5, weight_terms=('srec',))
    """
    terms = (weight_terms,) if isinstance(weight_terms, str) else weight_terms
    if not isinstance(terms, Sequence) or not all(isinstance(t, str) for t in terms):
        raise TypeError(f"weight_terms: expected a sequence of term names from {SKELETON_TERMS}, got "
                        f"{describe(weight_terms)}")
    chosen = {look_up_option("weight_terms", t, SKELETON_TERMS) for t in terms}
    return SkeletonCompoundOptions(check_positive_number("weight_srec", weight_srec, allow_zero=True),
                                   tuple(t for t in SKELETON_TERMS if t in chosen))


class DiceCESkeletonRecall(WeightedLoss):
    r"""``VoxelWeightedDiceCE + weight_srec * SkeletonRecallLoss`` on softmax outputs, one voxel map for all.

    .. math::

        L = \mathrm{DiceCE}(x, y; w) + \lambda_{srec}\, \mathrm{SRec}(x, s; w)

    * ``weight`` (or ``weight_fn(target)``) feeds the terms named in ``weight_terms``: ``"dice_ce"`` (where the
      Dice + CE's own ``weight_terms`` route it) and ``"srec"`` (inside both recall sums). ``mask`` and
      ``sample_weight`` reach every term; ``[N, *spatial]`` maps get their channel axis.
    * The Dice + CE's ``ignore_index`` voxels are masked in the recall term too, and skeleton ids there become 0
      (as the reference trainer does with its ignore label).
    * ``weight_srec=0`` skips the recall term (the skeleton is then not read).
    * :meth:`nnunet` builds the reference trainer's loss (``DC_SkelREC_and_CE_loss``: Dice without background,
      smoothing 1e-5, CE, recall with smoothing 1e-5): equal to it plus ``1 + weight_srec`` (each of its
      ``-Dice`` and ``-recall`` is our ``1 - Dice``, ``1 - recall`` minus 1).

    Args:
        dice_ce: the Dice + CE term (default ``VoxelWeightedDiceCE()``); its options are set there.
        srec: the recall term (default ``SkeletonRecallLoss()``: softmax, no background, smoothing 1), softmax.
        weight_srec: the recall term's weight, >= 0 (the reference trainer's ``weight_srec``, 1).
        weight_terms: the terms the voxel map feeds, a subset of ``("dice_ce", "srec")``.
        weight_fn: called as ``weight_fn(target)`` (without gradient) when ``forward`` gets no ``weight``.

    Raises:
        TypeError: for terms of the wrong class.
        ValueError: for a recall term whose activation is not ``"softmax"``, bad options.

    Shape:
        - input: logits ``[N, C, *spatial]``; target: class ids ``[N, *spatial]`` / ``[N, 1, *spatial]`` or
          probabilities; skeleton: ids of the same shape, or ``[N, C, *spatial]`` one-hot / soft.
        - weight, mask: ``[N, *spatial]`` or ``[N, 1, *spatial]``; sample_weight: ``[N]``; output: scalar.

    Example:
        >>> loss_fn = DiceCESkeletonRecall.nnunet(weight_srec=2.0)
        >>> x, y = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 1, 8, 8))
        >>> skeleton = torch.where(torch.rand(2, 1, 8, 8) > 0.7, y, 0)  # ids on the tube, 0 elsewhere
        >>> loss_fn(x, y, torch.rand(2, 1, 8, 8), skeleton=skeleton).isfinite()
        tensor(True)
    """

    options: SkeletonCompoundOptions
    make_options = skeleton_compound_options
    weight_srec = option("weight_srec", "Weight of the Skeleton Recall term, >= 0.")
    weight_terms = option("weight_terms", "The terms the voxel map feeds.")

    def __init__(self, dice_ce: VoxelWeightedDiceCE | None = None, srec: SkeletonRecallLoss | None = None, *,
                 weight_srec: float = 1.0, weight_terms: Sequence[str] = SKELETON_TERMS,
                 weight_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__(skeleton_compound_options(weight_srec=weight_srec, weight_terms=weight_terms), weight_fn)
        dice_ce = VoxelWeightedDiceCE() if dice_ce is None else dice_ce
        srec = SkeletonRecallLoss() if srec is None else srec
        for name, term, cls in (("dice_ce", dice_ce, VoxelWeightedDiceCE), ("srec", srec, SkeletonRecallLoss)):
            if not isinstance(term, cls):
                raise TypeError(f"{name}: expected a {cls.__name__}, got {describe(term)}")
        if srec.activation != "softmax":
            raise ValueError(f"srec: expected a SkeletonRecallLoss with activation='softmax' (the Dice + CE's), got "
                             f"{srec.activation!r}")
        self.dice_ce, self.srec = dice_ce, srec

    @classmethod
    def nnunet(cls, *, batch: bool = False, weight_srec: float = 1.0,
               weight_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> DiceCESkeletonRecall:
        """The reference trainer's loss: Dice (no background, smoothing 1e-5) + CE + ``weight_srec`` recall.

        Args:
            batch: nnU-Net's ``batch_dice``, for the Dice and the recall.
            weight_srec: the recall term's weight.
            weight_fn: as for the class.

        Returns:
            The compound loss.

        Example:
            >>> DiceCESkeletonRecall.nnunet(batch=True).srec.smooth
            1e-05
        """
        dice_ce = VoxelWeightedDiceCE(include_background=False, batch=batch, smooth_nr=1e-5, smooth_dr=1e-5)
        srec = SkeletonRecallLoss(batch=batch, smooth=1e-5)
        return cls(dice_ce, srec, weight_srec=weight_srec, weight_fn=weight_fn)

    def forward(self, input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None, *,
                skeleton: torch.Tensor, sample_weight: WeightLike | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Compute the loss; see the class docstring. ``weight`` may change on every call."""
        weight = self.voxel_map(weight, target)
        terms = self.options.weight_terms
        with checked_once():  # the terms validate the same map: its values are read once
            loss = self.dice_ce(input, target, weight if "dice_ce" in terms else None, sample_weight=sample_weight,
                                mask=mask)
            if not self.options.weight_srec:
                return loss
            skeleton, mask = self._recall_inputs(input, target, skeleton, mask)
            srec_weight = _with_channel(weight, input) if "srec" in terms else None
            return loss + self.options.weight_srec * self.srec(input, skeleton, srec_weight, mask=mask,
                                                               sample_weight=sample_weight)

    def _recall_inputs(self, input: torch.Tensor, target: Any, skeleton: Any, mask: Any) -> tuple[Any, Any]:
        """The recall's skeleton and mask: ``ignore_index`` voxels masked (their skeleton ids set to 0)."""
        mask = _with_channel(mask, input)
        ignore = self.dice_ce.ce.ignore_index
        if ignore is None or not isinstance(target, torch.Tensor) or target.is_floating_point():
            return skeleton, mask  # probability targets with ignore_index: the Dice + CE term has raised already
        kept = _with_channel(target, input) != ignore
        ids = isinstance(skeleton, torch.Tensor) and skeleton.shape != input.shape and not skeleton.is_floating_point()
        if ids and skeleton.numel() == kept.numel():  # another shape: the recall term raises
            skeleton = torch.where(kept.reshape(skeleton.shape), skeleton, 0)
        mask = check_mask(mask, input, broadcast_to=input.shape)
        return skeleton, kept if mask is None else mask & kept

    def extra_repr(self) -> str:
        """Configuration shown by ``repr`` (the terms' own options are shown by their submodules)."""
        return ", ".join([f"{k}={v!r}" for k, v in self.options._asdict().items()] + self.weights_repr())


def _with_channel(x: Any, input: torch.Tensor) -> Any:
    """A voxel map ``[N, *spatial]`` as ``[N, 1, *spatial]`` (anything else unchanged, checked by the terms)."""
    if isinstance(x, torch.Tensor) and x.ndim == input.ndim - 1:
        return x.unsqueeze(1)
    return x
