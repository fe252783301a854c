"""``voxweight bench``: each voxweight operation timed next to its baseline, in the same process.

:mod:`voxweight.bench.harness` times and reports; each case is a module of its own (``loss``, ``memory``,
``maps``, ``scan``, ``roofline``) returning :class:`BenchResult` rows; :func:`run_bench` runs them.
"""

from voxweight.bench.harness import (
    BenchConfig,
    BenchResult,
    PairTiming,
    format_results,
    run_bench,
    time_pair,
    time_paired,
)

__all__ = ["BenchConfig", "BenchResult", "PairTiming", "format_results", "run_bench", "time_pair", "time_paired"]
