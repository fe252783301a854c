"""voxweight inside nnU-Net v2: trainers whose losses use voxweight's maps and terms.

The trainer modules live in :func:`trainer_directory` (point ``nnUNet_extTrainer`` there); the losses they
build are here and import no nnU-Net code (:mod:`~voxweight.nnunet.losses`, :mod:`~voxweight.nnunet.terms`),
so ``import voxweight.nnunet`` works without nnunetv2. :func:`check_nnunet` says whether a usable nnU-Net
(>= 2.8) is installed.
"""

from voxweight.nnunet.build import boundary_loss_loss, boundary_weighted_loss, scale_spacings, skeleton_recall_loss
from voxweight.nnunet.losses import BoundaryWeightedDiceCE, NnunetScaleLoss, nnunet_targets, region_ce, stock_parts
from voxweight.nnunet.paths import MIN_NNUNET_VERSION, check_nnunet, trainer_directory
from voxweight.nnunet.terms import BoundaryLossDiceCE, SkeletonRecallDiceCE, scale_skeletons

__all__ = [
    "MIN_NNUNET_VERSION",
    "BoundaryLossDiceCE",
    "BoundaryWeightedDiceCE",
    "NnunetScaleLoss",
    "SkeletonRecallDiceCE",
    "boundary_loss_loss",
    "boundary_weighted_loss",
    "check_nnunet",
    "nnunet_targets",
    "region_ce",
    "scale_skeletons",
    "scale_spacings",
    "skeleton_recall_loss",
    "stock_parts",
    "trainer_directory",
]
