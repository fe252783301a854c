"""``voxweight bench``: each voxweight operation timed next to its baseline, in the same process.

:mod:`~voxweight.bench.harness` times pairs and formats results; each case is a module of its own
(:mod:`~voxweight.bench.loss`, :mod:`~voxweight.bench.memory`, :mod:`~voxweight.bench.maps`,
:mod:`~voxweight.bench.scan`, :mod:`~voxweight.bench.roofline`) returning :class:`BenchResult` rows;
:mod:`~voxweight.bench.registry` names them and :func:`run_bench` runs them. A new case is a module here
plus one entry in ``CASES``.
"""

from voxweight.bench.harness import BenchConfig, BenchResult, PairTiming, format_results, time_pair, time_paired
from voxweight.bench.registry import CASES, GPU_CASES, run_bench

__all__ = [
    "CASES",
    "GPU_CASES",
    "BenchConfig",
    "BenchResult",
    "PairTiming",
    "format_results",
    "run_bench",
    "time_pair",
    "time_paired",
]
