"""voxweight: class-imbalanced 3D segmentation training made easy to get right.

Per-voxel weight maps built from label volumes, and a binary cross-entropy whose weights align by
meaning (per-class vectors on the channel axis, per-sample vectors on the batch axis).
"""

from voxweight.checks import get_value_checks, set_value_checks, value_checks
from voxweight.losses import (
    BoundaryLoss,
    BoundaryLossSchedule,
    DeepSupervision,
    DiceCESkeletonRecall,
    HausdorffDTLoss,
    SkeletonRecallLoss,
    VoxelWeightedBCE,
    VoxelWeightedCE,
    VoxelWeightedClDice,
    VoxelWeightedDice,
    VoxelWeightedDiceBCE,
    VoxelWeightedDiceCE,
    boundary_loss,
    debias_logits,
    hausdorff_dt_loss,
    skeleton_recall_loss,
    voxel_weighted_bce,
    voxel_weighted_ce,
    voxel_weighted_cldice,
    voxel_weighted_dice,
)
from voxweight.maps import boundary_weights, class_balance_weights, multiclass_balance_weights, tubed_skeleton
from voxweight.pipelines import list_pipelines, load_pipeline
from voxweight.stats import LabelStats, crop_prevalence, pos_weight_from_counts, scan_labels

__version__ = "0.1.0"

__all__ = [
    "BoundaryLoss",
    "BoundaryLossSchedule",
    "DeepSupervision",
    "DiceCESkeletonRecall",
    "HausdorffDTLoss",
    "LabelStats",
    "SkeletonRecallLoss",
    "VoxelWeightedBCE",
    "VoxelWeightedCE",
    "VoxelWeightedClDice",
    "VoxelWeightedDice",
    "VoxelWeightedDiceBCE",
    "VoxelWeightedDiceCE",
    "__version__",
    "boundary_loss",
    "boundary_weights",
    "class_balance_weights",
    "crop_prevalence",
    "debias_logits",
    "get_value_checks",
    "hausdorff_dt_loss",
    "list_pipelines",
    "load_pipeline",
    "multiclass_balance_weights",
    "pos_weight_from_counts",
    "scan_labels",
    "set_value_checks",
    "skeleton_recall_loss",
    "tubed_skeleton",
    "value_checks",
    "voxel_weighted_bce",
    "voxel_weighted_ce",
    "voxel_weighted_cldice",
    "voxel_weighted_dice",
]
