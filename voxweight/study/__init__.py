"""``voxweight study``: which weighting helps on *your* data, measured across seeds on held-out volumes.

:mod:`~voxweight.study.data` finds the cases of a dataset folder (MSD / nnU-Net raw layout) or writes a synthetic
one (:mod:`~voxweight.study.synthetic`), :mod:`~voxweight.study.recipes` names the recipes (loss + maps +
calibration, built from the public API), :mod:`~voxweight.study.train` trains one recipe for one seed on the same
crops as every other, :mod:`~voxweight.study.evaluate` scores it on held-out volumes
(:mod:`~voxweight.study.metrics`), :mod:`~voxweight.study.result` pools the seeds and compares each recipe with
``bce``, :mod:`~voxweight.study.figure` draws it, and :func:`run_study` does all of it.
"""

from voxweight.study.data import SYNTHETIC_KINDS, CaseArrays, find_cases, load_case, split_cases, write_synthetic_study
from voxweight.study.metrics import METRICS, MetricInfo, pool_metrics, volume_metrics
from voxweight.study.recipes import (
    DEFAULT_RECIPES,
    RECIPES,
    TUBULAR_RECIPES,
    Recipe,
    RecipeContext,
    get_recipes,
    recipe_help,
)
from voxweight.study.result import Comparison, StudyResult
from voxweight.study.run import DEFAULT_ROI, DEFAULT_STEPS, run_study, study_context

__all__ = [
    "DEFAULT_RECIPES",
    "DEFAULT_ROI",
    "DEFAULT_STEPS",
    "METRICS",
    "RECIPES",
    "SYNTHETIC_KINDS",
    "TUBULAR_RECIPES",
    "CaseArrays",
    "Comparison",
    "MetricInfo",
    "Recipe",
    "RecipeContext",
    "StudyResult",
    "find_cases",
    "get_recipes",
    "load_case",
    "pool_metrics",
    "recipe_help",
    "run_study",
    "split_cases",
    "study_context",
    "volume_metrics",
    "write_synthetic_study",
]
