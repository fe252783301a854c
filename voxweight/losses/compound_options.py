"""The options of the compound losses (:mod:`voxweight.losses.compound`): term weights, map terms, reductions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from voxweight._validate import check_positive_number, describe, look_up_option

__all__ = ["DiceBCEOptions", "DiceCEOptions", "dice_bce_options", "dice_ce_options", "dice_term_reduction",
           "term_reduction"]

_TERM_REDUCTIONS = ("mean", "sum", "weighted_mean")  # the BCE/CE term of a compound: a scalar, added to the Dice


class DiceBCEOptions(NamedTuple):
    """The validated options of :class:`VoxelWeightedDiceBCE` (see :func:`dice_bce_options`)."""

    lambda_dice: float
    lambda_bce: float
    weight_terms: tuple[str, ...]


class DiceCEOptions(NamedTuple):
    """The validated options of :class:`VoxelWeightedDiceCE` (see :func:`dice_ce_options`)."""

    lambda_dice: float
    lambda_ce: float
    weight_terms: tuple[str, ...]


def dice_bce_options(*, lambda_dice: float = 1.0, lambda_bce: float = 1.0,
                     weight_terms: Sequence[str] = ("dice", "bce")) -> DiceBCEOptions:
    """Validate the Dice + BCE weights of the terms and which terms the voxel map feeds.

    Raises:
        TypeError: for a non-numeric lambda or ``weight_terms`` that is not a sequence of names.
        ValueError: for a negative or non-finite lambda, both lambdas 0, an unknown term (with "did you mean").

    Example:
        >>> dice_bce_options(lambda_bce=0.5, weight_terms="bce")
        DiceBCEOptions(lambda_dice=1.0, lambda_bce=0.5, weight_terms=('bce',))
    """
    return DiceBCEOptions(*_lambdas(lambda_dice, "lambda_bce", lambda_bce), _terms(weight_terms, ("dice", "bce")))


def dice_ce_options(*, lambda_dice: float = 1.0, lambda_ce: float = 1.0,
                    weight_terms: Sequence[str] = ("dice", "ce")) -> DiceCEOptions:
    """Validate the Dice + CE weights of the terms and which terms the voxel map feeds.

    Raises:
        TypeError: for a non-numeric lambda or ``weight_terms`` that is not a sequence of names.
        ValueError: for a negative or non-finite lambda, both lambdas 0, an unknown term (with "did you mean").

    Example:
        >>> dice_ce_options(weight_terms=())
        DiceCEOptions(lambda_dice=1.0, lambda_ce=1.0, weight_terms=())
    """
    return DiceCEOptions(*_lambdas(lambda_dice, "lambda_ce", lambda_ce), _terms(weight_terms, ("dice", "ce")))


def _lambdas(lambda_dice: Any, other_name: str, other: Any) -> tuple[float, float]:
    dice = check_positive_number("lambda_dice", lambda_dice, allow_zero=True)
    second = check_positive_number(other_name, other, allow_zero=True)
    if dice == 0 and second == 0:
        raise ValueError(f"lambda_dice, {other_name}: expected at least one > 0 (a loss of two terms weighted 0 "
                         f"is 0), got 0 and 0")
    return dice, second


def _terms(value: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"weight_terms: expected a sequence of term names from {allowed}, got {describe(value)}")
    chosen = {look_up_option("weight_terms", v, allowed) for v in value}
    return tuple(t for t in allowed if t in chosen)


def dice_term_reduction(value: Any) -> str:
    """The Dice term's reduction in a compound: ``"mean"`` or ``"sum"`` (a scalar to add to the other term).

    Example:
        >>> dice_term_reduction("sum")
        'sum'
    """
    return look_up_option("reduction", value, ("mean", "sum"))


def term_reduction(name: str, value: Any) -> str:
    """The BCE/CE term's reduction in a compound (``name`` is its argument): any but ``"none"``.

    Example:
        >>> term_reduction("bce_reduction", "weighted_mean")
        'weighted_mean'
    """
    return look_up_option(name, value, _TERM_REDUCTIONS)
