r"""The study's recipes: small declarative specs of a loss, its maps and its calibration, from voxweight's API.

Every recipe trains the same network on the same pos/neg 1:1 crops (the study's sampler rebalances once), so a
recipe may rebalance at most once more (README, "Choosing how to rebalance"): ``build(ctx)`` gives its
:class:`~voxweight.study.recipe_losses.RecipeLoss` and ``shift(ctx)`` the fg/bg loss-weight ratio ``r`` that
:func:`voxweight.debias_logits` undoes at inference together with the crops' prior (1 for a recipe that
adds no class ratio). Boundary, distance and skeleton maps emphasise places, not a class: their shift is 1.

* ``bce``: :class:`~voxweight.losses.VoxelWeightedBCE`, the baseline. ``bce_pos_weight``: BCE with
  ``pos_weight = (1 - p) / p``, ``p`` the crops' prior (:func:`crop_pos_weight`, also its shift). ``focal``: BCE
  times ``(1 - p_t)^gamma``; shift 1, but its optimum is not the posterior, which the calibration error shows.
* ``dice_bce``: :class:`~voxweight.losses.VoxelWeightedDiceBCE` (soft Dice per crop + BCE). ``dice_bce_unet_map``
  / ``dice_bce_distance_map``: its BCE term weighted by :func:`~voxweight.study.recipe_losses.unet_map` (per
  instance when the batch has instance maps, else per connected component) or
  :func:`~voxweight.study.recipe_losses.distance_map`, reduced ``sum(w l) / sum(w)``.
* ``dice_bce_boundary_loss``: :class:`~voxweight.study.recipe_losses.ScheduledBoundaryLoss`, the budget cut into
  :data:`BOUNDARY_EPOCHS` epochs of ``total_steps / BOUNDARY_EPOCHS`` steps each.
* ``dice_ce_skeleton_recall`` and ``cldice`` (tubular): Dice + BCE plus Skeleton Recall on the tubed skeleton, or
  soft clDice. The recall uses the sigmoid of the one channel: the 2-class softmax of ``[0, x]`` is exactly
  ``(1 - sigmoid(x), sigmoid(x))``, so it is the reference's softmax recall of the foreground, and the BCE is the
  2-class CE.

The knobs are the module constants below (physical units in mm).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from voxweight._validate import check_spacing, describe, look_up_option
from voxweight.losses import (
    BoundaryLossSchedule,
    SkeletonRecallLoss,
    VoxelWeightedBCE,
    VoxelWeightedClDice,
    VoxelWeightedDiceBCE,
    voxel_weighted_bce,
)
from voxweight.study.recipe_losses import (
    MappedLoss,
    PlusTerm,
    RecipeLoss,
    ScheduledBoundaryLoss,
    distance_map,
    skeleton_target,
    unet_map,
)

__all__ = ["BOUNDARY_EPOCHS", "BOUNDARY_FLOOR", "BOUNDARY_STEP", "CLDICE_ITERATIONS", "CLDICE_WEIGHT",
           "DATA_KINDS", "DEFAULT_RECIPES", "DISTANCE_SIGMA_MM", "DISTANCE_W0", "FOCAL_GAMMA", "MAP_BCE_REDUCTION",
           "RECIPES", "SKELETON_SMOOTH", "SKELETON_TUBE_RADIUS", "SKELETON_WEIGHT", "TUBULAR_RECIPES",
           "UNET_SIGMA_MM", "UNET_W0", "Recipe", "RecipeContext", "check_context", "crop_pos_weight", "get_recipes",
           "no_shift", "recipe_help"]

DATA_KINDS = ("any", "instances", "tubular")
UNET_W0 = 10.0  # U-Net separation bonus height w0 (Ronneberger et al. 2015)
UNET_SIGMA_MM = 5.0  # its width: the paper's sigma = 5 pixels, taken as 5 mm
DISTANCE_W0 = 10.0  # distance band height (boundary_weights' default)
DISTANCE_SIGMA_MM = 5.0  # distance band width in mm (boundary_weights' default)
MAP_BCE_REDUCTION = "weighted_mean"  # a mapped BCE is sum(w l) / sum(w): the Dice:BCE balance of dice_bce kept
BOUNDARY_EPOCHS = 10  # the budget is cut into this many "epochs" for BoundaryLossSchedule
BOUNDARY_STEP = 0.05  # region weight lost per epoch: 1.0 -> 0.55 by the last epoch (the paper's 0.01 over ~100)
BOUNDARY_FLOOR = 0.01  # the smallest region weight (the schedule's default)
SKELETON_TUBE_RADIUS = 2  # cross dilations of the skeleton (the reference SkeletonTransform's)
SKELETON_WEIGHT = 1.0  # weight of the Skeleton Recall term (the reference trainer's weight_srec)
SKELETON_SMOOTH = 1e-5  # the recall's smoothing (the reference trainer's)
FOCAL_GAMMA = 2.0  # focal exponent (Lin et al. 2017)
CLDICE_WEIGHT = 0.5  # weight of the clDice term (MONAI's and the authors' alpha)
CLDICE_ITERATIONS = 3  # soft-skeleton iterations (MONAI's iter_)


class RecipeContext(NamedTuple):
    """What a recipe may know of the data and the budget (see :func:`voxweight.study.run.study_context`)."""

    spacing: tuple[float, ...]  # mm per spatial axis of the training crops
    crop_prior: float  # foreground fraction inside the training crops (crop_prevalence)
    dataset_prior: float  # foreground fraction of the full training volumes (scan_labels)
    total_steps: int  # the training budget in optimiser steps


class Recipe(NamedTuple):
    """A recipe: its name, a one-line summary, the data it is meant for, its loss and its calibration shift."""

    name: str
    summary: str  # one line for `voxweight study --recipes help`
    data: str  # "any", "instances" (needs instance maps to be meaningful) or "tubular"
    build: Callable[[RecipeContext], RecipeLoss]
    shift: Callable[[RecipeContext], float]  # the fg/bg loss-weight ratio r that debias_logits undoes (1.0: none)


def check_context(ctx: Any) -> RecipeContext:
    """A validated :class:`RecipeContext`: spacing positive and finite, priors in (0, 1), at least one step.

    Raises:
        TypeError: for something other than a :class:`RecipeContext`.
        ValueError: for a bad field, naming it.

    Example:
        >>> check_context(RecipeContext((1.0, 1.0, 2.0), 0.5, 0.01, 10)).spacing
        (1.0, 1.0, 2.0)
        >>> check_context(RecipeContext((1.0, 1.0, 2.0), 0.0, 0.01, 10))
        Traceback (most recent call last):
        ...
        ValueError: crop_prior: expected a number in (0, 1) (a fraction with a logit), got float 0.0
    """
    if not isinstance(ctx, RecipeContext):
        raise TypeError(f"ctx: expected a RecipeContext, got {describe(ctx)}")
    if not isinstance(ctx.spacing, Sequence) or not ctx.spacing:
        raise ValueError(f"spacing: expected mm per spatial axis, got {describe(ctx.spacing)}")
    spacing = check_spacing("spacing", tuple(ctx.spacing), len(ctx.spacing))
    for name in ("crop_prior", "dataset_prior"):
        p = getattr(ctx, name)
        if isinstance(p, bool | np.bool_) or not isinstance(p, numbers.Real) or not 0 < p < 1:
            raise ValueError(f"{name}: expected a number in (0, 1) (a fraction with a logit), got {describe(p)}")
    steps = ctx.total_steps
    if isinstance(steps, bool | np.bool_) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"total_steps: expected an integer >= 1, got {describe(steps)}")
    return RecipeContext(spacing, float(ctx.crop_prior), float(ctx.dataset_prior), int(steps))


def no_shift(ctx: RecipeContext) -> float:
    """The shift of a recipe without a class ratio: 1.0.

    Example:
        >>> no_shift(RecipeContext((1.0,), 0.5, 0.1, 1))
        1.0
    """
    check_context(ctx)
    return 1.0


def crop_pos_weight(ctx: RecipeContext) -> float:
    """``(1 - p) / p`` with ``p`` the crops' prior: the ``pos_weight`` that balances what the loss sees.

    Example:
        >>> crop_pos_weight(RecipeContext((1.0,), 0.2, 0.01, 1))
        4.0
    """
    p = check_context(ctx).crop_prior
    return (1.0 - p) / p


def _region(ctx: RecipeContext, region: Any, weight_map: Any = None, **knobs: float) -> MappedLoss:
    """``region`` with the map ``weight_map(label, instances, spacing=ctx.spacing, **knobs)``, if any."""
    ctx = check_context(ctx)
    bound = None if weight_map is None else partial(weight_map, spacing=ctx.spacing, **knobs)
    return MappedLoss(region, bound, spatial_dims=len(ctx.spacing))


def _bce(ctx: RecipeContext) -> RecipeLoss:
    return _region(ctx, VoxelWeightedBCE())


def _bce_pos_weight(ctx: RecipeContext) -> RecipeLoss:
    return _region(ctx, partial(voxel_weighted_bce, pos_weight=crop_pos_weight(ctx)))  # a number: any device


def _focal(ctx: RecipeContext) -> RecipeLoss:
    return _region(ctx, VoxelWeightedBCE(focal_gamma=FOCAL_GAMMA))


def _dice_bce(ctx: RecipeContext) -> RecipeLoss:
    return _region(ctx, VoxelWeightedDiceBCE())


def _dice_bce_unet_map(ctx: RecipeContext) -> RecipeLoss:
    region = VoxelWeightedDiceBCE(weight_terms=("bce",), bce_reduction=MAP_BCE_REDUCTION)
    return _region(ctx, region, unet_map, w0=UNET_W0, sigma=UNET_SIGMA_MM)


def _dice_bce_distance_map(ctx: RecipeContext) -> RecipeLoss:
    region = VoxelWeightedDiceBCE(weight_terms=("bce",), bce_reduction=MAP_BCE_REDUCTION)
    return _region(ctx, region, distance_map, w0=DISTANCE_W0, sigma=DISTANCE_SIGMA_MM)


def _dice_bce_boundary_loss(ctx: RecipeContext) -> RecipeLoss:
    ctx = check_context(ctx)
    schedule = BoundaryLossSchedule(start=1.0, step=BOUNDARY_STEP, floor=BOUNDARY_FLOOR)
    return ScheduledBoundaryLoss(_region(ctx, VoxelWeightedDiceBCE()), schedule, ctx.spacing,
                                 total_steps=ctx.total_steps, epochs=BOUNDARY_EPOCHS)


def _dice_ce_skeleton_recall(ctx: RecipeContext) -> RecipeLoss:
    srec = SkeletonRecallLoss(activation="sigmoid", include_background=True, smooth=SKELETON_SMOOTH)
    return PlusTerm(_region(ctx, VoxelWeightedDiceBCE()), srec, SKELETON_WEIGHT,
                    partial(skeleton_target, tube_radius=SKELETON_TUBE_RADIUS))


def _cldice(ctx: RecipeContext) -> RecipeLoss:
    cldice = VoxelWeightedClDice(iterations=CLDICE_ITERATIONS, activation="sigmoid", harmonic_smooth=1e-4)
    return PlusTerm(_region(ctx, VoxelWeightedDiceBCE()), cldice, CLDICE_WEIGHT)


_LAST_REGION = max(BOUNDARY_FLOOR, 1.0 - (BOUNDARY_EPOCHS - 1) * BOUNDARY_STEP)  # a at the last epoch
RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("bce", "BCE, class weights 1: the baseline", "any", _bce, no_shift),
    Recipe("bce_pos_weight", "BCE, pos_weight (1 - p) / p balancing the crops; debiased by that ratio", "any",
           _bce_pos_weight, crop_pos_weight),
    Recipe("dice_bce", "soft Dice + BCE, no map", "any", _dice_bce, no_shift),
    Recipe("dice_bce_unet_map", f"Dice + BCE, BCE x U-Net separation map (w0 {UNET_W0:g}, sigma {UNET_SIGMA_MM:g} "
           f"mm); an emphasis, not a class ratio", "instances", _dice_bce_unet_map, no_shift),
    Recipe("dice_bce_distance_map", f"Dice + BCE, BCE x distance band at the border (w0 {DISTANCE_W0:g}, sigma "
           f"{DISTANCE_SIGMA_MM:g} mm)", "any", _dice_bce_distance_map, no_shift),
    Recipe("dice_bce_boundary_loss", f"a Dice + BCE + b boundary loss (Kervadec, mm), a 1 -> {_LAST_REGION:g} over "
           f"the budget", "any", _dice_bce_boundary_loss, no_shift),
    Recipe("dice_ce_skeleton_recall", "Dice + BCE + Skeleton Recall on the tubed skeleton (sigmoid = 2-class CE)",
           "tubular", _dice_ce_skeleton_recall, no_shift),
    Recipe("focal", f"focal BCE (gamma {FOCAL_GAMMA:g}, no alpha); its probabilities are not calibrated", "any",
           _focal, no_shift),
    Recipe("cldice", f"Dice + BCE + {CLDICE_WEIGHT:g} soft clDice ({CLDICE_ITERATIONS} skeleton iterations)",
           "tubular", _cldice, no_shift),
)}

DEFAULT_RECIPES: tuple[str, ...] = tuple(n for n, r in RECIPES.items() if r.data in ("any", "instances"))
TUBULAR_RECIPES: tuple[str, ...] = DEFAULT_RECIPES + tuple(n for n, r in RECIPES.items() if r.data == "tubular")


def get_recipes(names: Sequence[str]) -> list[Recipe]:
    """The recipes named, in the order given.

    Raises:
        TypeError: for a single string or a non-string name.
        ValueError: for no names, a duplicate, or an unknown name (with "did you mean" and the known names).

    Example:
        >>> [r.name for r in get_recipes(["dice_bce", "bce"])]
        ['dice_bce', 'bce']
        >>> get_recipes(["dice_bc"])
        Traceback (most recent call last):
        ...
        ValueError: recipes: expected one of 'bce', 'bce_pos_weight', 'dice_bce', 'dice_bce_unet_map', \
'dice_bce_distance_map', 'dice_bce_boundary_loss', 'dice_ce_skeleton_recall', 'focal', 'cldice', \
got 'dice_bc' (did you mean 'dice_bce'?)
    """
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(f"recipes: expected a sequence of recipe names, got {describe(names)}")
    if not names:
        raise ValueError(f"recipes: expected at least one name of {', '.join(RECIPES)}, got none")
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"recipes: expected recipe names (str), got {describe(name)}")
        if name in seen:
            raise ValueError(f"recipes: expected distinct names, got {name!r} twice in {list(names)}")
        seen.add(look_up_option("recipes", name, tuple(RECIPES)))
    return [RECIPES[n] for n in names]


def recipe_help() -> str:
    """A table of every recipe: name, data kind and summary (what ``voxweight study --recipes help`` prints).

    Example:
        >>> print(recipe_help().splitlines()[0])
        recipe                    data       summary
    """
    width = max(len("recipe"), *(len(n) for n in RECIPES)) + 2
    rows = [f"{'recipe':<{width}} {'data':<10} summary"]
    rows += [f"{r.name:<{width}} {r.data:<10} {r.summary}" for r in RECIPES.values()]
    rows += ["", f"defaults: {' '.join(DEFAULT_RECIPES)}",
             f"tubular data adds: {' '.join(n for n in TUBULAR_RECIPES if n not in DEFAULT_RECIPES)}",
             "'instances': separates the ids of the instance maps (connected components without them).",
             "bce, the baseline, always runs; every recipe is debiased for the crops' prior and its own ratio."]
    return "\n".join(rows)
