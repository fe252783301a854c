"""The voxweight nnU-Net trainers' losses, built from a trainer: what their ``_build_loss`` returns.

Each builder takes the trainer (an ``nnUNetTrainer``, read by its attributes only, so that this module needs
no nnU-Net import) and the loss nnU-Net's own ``_build_loss`` made, and returns the voxweight loss with the
same Dice module, deep-supervision weights, ignore label, regions and ``batch_dice``. The trainer's class
attributes (``voxweight_*``) carry the options; a knob that cannot work with the dataset raises here, when
the trainer initialises, before any epoch.

Spacing: ``voxweight_sigma_unit = "mm"`` (default) measures distances in the configuration's preprocessed
spacing (``plans["configurations"][c]["spacing"]``, nnU-Net's axis order), ``"voxel"`` in full-resolution
voxels; either way the spacing at deep-supervision scale ``s`` is that spacing divided by ``s``.
"""

from __future__ import annotations

from typing import Any

from voxweight._validate import look_up_option
from voxweight.losses import BoundaryLossSchedule
from voxweight.nnunet.losses import BoundaryWeightedDiceCE, stock_parts
from voxweight.nnunet.paths import check_nnunet
from voxweight.nnunet.terms import BoundaryLossDiceCE, SkeletonRecallDiceCE

__all__ = ["SIGMA_UNITS", "boundary_loss_loss", "boundary_weighted_loss", "scale_spacings", "skeleton_recall_loss"]

SIGMA_UNITS = ("mm", "voxel")


def scale_spacings(trainer: Any) -> list[tuple[float, ...]]:
    """The voxel spacing at each deep-supervision output of ``trainer`` (one entry without deep supervision).

    Example:
        >>> from types import SimpleNamespace as NS
        >>> trainer = NS(voxweight_sigma_unit="mm", configuration_manager=NS(spacing=[2.0, 1.0, 1.0]),
        ...              _get_deep_supervision_scales=lambda: [[1.0, 1.0, 1.0], [1.0, 0.5, 0.5]])
        >>> scale_spacings(trainer)
        [(2.0, 1.0, 1.0), (2.0, 2.0, 2.0)]
    """
    unit = look_up_option("voxweight_sigma_unit", getattr(trainer, "voxweight_sigma_unit", "mm"), SIGMA_UNITS)
    spacing = [float(s) for s in trainer.configuration_manager.spacing]
    base = spacing if unit == "mm" else [1.0] * len(spacing)
    scales = trainer._get_deep_supervision_scales()
    if scales is None:
        return [tuple(base)]
    return [tuple(b / float(f) for b, f in zip(base, scale, strict=True)) for scale in scales]


def _common(trainer: Any, stock: Any) -> tuple[Any, Any, dict[str, Any]]:
    """nnU-Net's single-scale loss, its weights and the keyword arguments every voxweight loss takes."""
    check_nnunet()
    inner, factors = stock_parts(stock)
    lm = trainer.label_manager
    return inner, factors, {"regions": bool(lm.has_regions), "ignore_label": lm.ignore_label}


def boundary_weighted_loss(trainer: Any, stock: Any) -> BoundaryWeightedDiceCE:
    """``nnUNetTrainerVoxweightBoundary``'s loss: nnU-Net's Dice + a boundary-weighted CE.

    Reads ``voxweight_mode``, ``voxweight_w0``, ``voxweight_sigma``, ``voxweight_sigma_unit``,
    ``voxweight_ce_reduction`` and ``voxweight_backend`` from the trainer.

    Raises:
        ValueError: for bad options (named by their attribute), or a loss nnU-Net built that has no Dice module.
    """
    inner, factors, kw = _common(trainer, stock)
    if not all(hasattr(inner, a) for a in ("dc", "weight_ce", "weight_dice")):
        raise ValueError(f"_build_loss: expected nnU-Net's DC_and_CE_loss or DC_and_BCE_loss (with .dc, .weight_ce "
                         f"and .weight_dice) to reweight, got {type(inner).__name__}")
    return BoundaryWeightedDiceCE(inner, factors, scale_spacings(trainer), mode=trainer.voxweight_mode,
                                  w0=trainer.voxweight_w0, sigma=trainer.voxweight_sigma,
                                  reduction=trainer.voxweight_ce_reduction, backend=trainer.voxweight_backend, **kw)


def skeleton_recall_loss(trainer: Any, stock: Any) -> SkeletonRecallDiceCE:
    """``nnUNetTrainerVoxweightSkeletonRecall``'s loss: nnU-Net's Dice + CE + ``voxweight_weight_srec`` recall.

    Raises:
        ValueError: for a region-based dataset (named with the reason).
    """
    inner, factors, kw = _common(trainer, stock)
    if kw["regions"]:
        raise ValueError(f"{type(trainer).__name__}: this dataset is region-based (dataset.json 'regions_class_order'"
                         f"); Skeleton Recall scores a softmax over classes and has no region variant (nor has the "
                         f"reference trainer). Use class labels, or nnUNetTrainerVoxweightBoundary")
    return SkeletonRecallDiceCE(inner, factors, scale_spacings(trainer), weight_srec=trainer.voxweight_weight_srec,
                                batch=bool(trainer.configuration_manager.batch_dice),
                                tube_radius=trainer.voxweight_tube_radius, **kw)


def boundary_loss_loss(trainer: Any, stock: Any) -> BoundaryLossDiceCE:
    """``nnUNetTrainerVoxweightBoundaryLoss``'s loss, with a new :class:`~voxweight.losses.BoundaryLossSchedule`.

    The schedule is built from ``voxweight_schedule_start``, ``voxweight_schedule_step``,
    ``voxweight_schedule_floor`` and ``voxweight_schedule_mode``; the trainer sets its epoch.
    """
    inner, factors, kw = _common(trainer, stock)
    schedule = BoundaryLossSchedule(trainer.voxweight_schedule_start, trainer.voxweight_schedule_step,
                                    trainer.voxweight_schedule_floor, mode=trainer.voxweight_schedule_mode)
    return BoundaryLossDiceCE(inner, factors, scale_spacings(trainer), schedule=schedule,
                              backend=trainer.voxweight_backend, **kw)
