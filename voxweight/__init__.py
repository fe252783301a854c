"""voxweight: class-imbalanced 3D segmentation training made easy to get right.

Per-voxel weight maps built from label volumes, and a binary cross-entropy whose weights align by
meaning (per-class vectors on the channel axis, per-sample vectors on the batch axis).
"""

from voxweight._checks import get_value_checks, set_value_checks, value_checks
from voxweight.calibration import debias_logits
from voxweight.losses import VoxelWeightedBCE, voxel_weighted_bce
from voxweight.losses_ce import VoxelWeightedCE, voxel_weighted_ce
from voxweight.pipelines import list_pipelines, load_pipeline
from voxweight.scan import scan_labels
from voxweight.stats import LabelStats, pos_weight_from_counts
from voxweight.weights import boundary_weights, class_balance_weights
from voxweight.weights_multiclass import multiclass_balance_weights

__version__ = "0.1.0"

__all__ = [
    "LabelStats",
    "VoxelWeightedBCE",
    "VoxelWeightedCE",
    "__version__",
    "boundary_weights",
    "class_balance_weights",
    "debias_logits",
    "get_value_checks",
    "list_pipelines",
    "load_pipeline",
    "multiclass_balance_weights",
    "pos_weight_from_counts",
    "scan_labels",
    "set_value_checks",
    "value_checks",
    "voxel_weighted_bce",
    "voxel_weighted_ce",
]
