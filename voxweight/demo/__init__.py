"""``voxweight demo``: what weighting does, measured, on NIfTI volumes built on the fly.

:mod:`~voxweight.demo.data` writes the synthetic dataset, :mod:`~voxweight.demo.run` trains and evaluates,
:mod:`~voxweight.demo.metrics` holds the metrics it reports, :mod:`~voxweight.demo.table` its table and legend,
:mod:`~voxweight.demo.figure` its figure; :mod:`~voxweight.demo.vessels` writes synthetic vessel trees (thin,
branching structures) for the thin-structure losses, and :mod:`~voxweight.demo.tubular` trains Dice+CE with
and without Skeleton Recall or clDice on them (the tubular study: Dice, clDice and Betti-0 error over seeds).
"""

from voxweight.demo.data import synthetic_volume, write_synthetic_dataset
from voxweight.demo.metrics import (
    DICE_THRESHOLDS,
    average_precision,
    best_threshold_dice,
    boundary_region,
    expected_calibration_error,
    overlap_scores,
)
from voxweight.demo.run import (
    DemoReport,
    DemoResult,
    evaluate,
    format_legend,
    format_table,
    load_test_volumes,
    network,
    plain_tensor,
    run_demo,
)
from voxweight.demo.tubular import (
    CLDICE_ALPHA,
    TUBULAR_VARIANTS,
    TubularData,
    TubularReport,
    TubularScores,
    betti0_error,
    cldice_metric,
    dice_metric,
    run_tubular_study,
    tubular_data,
    tubular_network,
)
from voxweight.demo.vessels import vessel_tree, write_vessel_dataset

__all__ = [
    "CLDICE_ALPHA",
    "DICE_THRESHOLDS",
    "TUBULAR_VARIANTS",
    "DemoReport",
    "DemoResult",
    "TubularData",
    "TubularReport",
    "TubularScores",
    "average_precision",
    "best_threshold_dice",
    "betti0_error",
    "boundary_region",
    "cldice_metric",
    "dice_metric",
    "evaluate",
    "expected_calibration_error",
    "format_legend",
    "format_table",
    "load_test_volumes",
    "network",
    "overlap_scores",
    "plain_tensor",
    "run_demo",
    "run_tubular_study",
    "synthetic_volume",
    "tubular_data",
    "tubular_network",
    "vessel_tree",
    "write_synthetic_dataset",
    "write_vessel_dataset",
]
