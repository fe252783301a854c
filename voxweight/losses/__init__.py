"""Losses that take a new weight map on every call, and the inference-time correction of their bias.

Weights align by meaning (per-class on the channel axis, per-sample on the batch axis, per-voxel maps
with the input's number of dims); reductions say what they divide by.
"""

from voxweight.losses.bce import REDUCTIONS, VoxelWeightedBCE, voxel_weighted_bce
from voxweight.losses.boundary import BoundaryLoss, BoundaryLossSchedule, boundary_loss
from voxweight.losses.calibration import debias_logits
from voxweight.losses.ce import VoxelWeightedCE, voxel_weighted_ce
from voxweight.losses.cldice import VoxelWeightedClDice, voxel_weighted_cldice
from voxweight.losses.compound import VoxelWeightedDiceBCE, VoxelWeightedDiceCE
from voxweight.losses.deep_supervision import DeepSupervision
from voxweight.losses.dice import VoxelWeightedDice, voxel_weighted_dice
from voxweight.losses.hausdorff import HausdorffDTLoss, hausdorff_dt_loss
from voxweight.losses.skeleton_compound import DiceCESkeletonRecall
from voxweight.losses.skeleton_recall import SkeletonRecallLoss, skeleton_recall_loss

__all__ = [
    "REDUCTIONS",
    "BoundaryLoss",
    "BoundaryLossSchedule",
    "DeepSupervision",
    "DiceCESkeletonRecall",
    "HausdorffDTLoss",
    "SkeletonRecallLoss",
    "VoxelWeightedBCE",
    "VoxelWeightedCE",
    "VoxelWeightedClDice",
    "VoxelWeightedDice",
    "VoxelWeightedDiceBCE",
    "VoxelWeightedDiceCE",
    "boundary_loss",
    "debias_logits",
    "hausdorff_dt_loss",
    "skeleton_recall_loss",
    "voxel_weighted_bce",
    "voxel_weighted_ce",
    "voxel_weighted_cldice",
    "voxel_weighted_dice",
]
