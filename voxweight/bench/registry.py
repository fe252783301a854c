"""The bench cases by name, and :func:`run_bench`, which runs them (the harness knows no case: no circle)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from types import MappingProxyType

import torch

from voxweight._validate import look_up_option
from voxweight.bench.cldice import bench_cldice
from voxweight.bench.compound import bench_compound, bench_ds
from voxweight.bench.distances import bench_edt, bench_hausdorff, bench_unet_device
from voxweight.bench.harness import BenchConfig, BenchResult
from voxweight.bench.loss import bench_loss
from voxweight.bench.maps import bench_distance, bench_unet
from voxweight.bench.memory import bench_memory
from voxweight.bench.nnunet import bench_nnunet
from voxweight.bench.prevalence import bench_prevalence
from voxweight.bench.roofline import bench_roofline
from voxweight.bench.scan import bench_scan
from voxweight.bench.sdm import bench_sdm
from voxweight.bench.skeleton import bench_skeleton

__all__ = ["CASES", "GPU_CASES", "OPTIONAL_CASES", "run_bench"]

Case = Callable[[BenchConfig], list[BenchResult]]

CASES: Mapping[str, Case] = MappingProxyType({
    "loss": bench_loss, "memory": bench_memory, "distance": bench_distance, "unet": bench_unet, "scan": bench_scan,
    "roofline": bench_roofline, "compound": bench_compound, "ds": bench_ds, "edt": bench_edt,
    "hausdorff": bench_hausdorff, "sdm": bench_sdm, "unet_device": bench_unet_device, "skeleton": bench_skeleton,
    "cldice": bench_cldice, "prevalence": bench_prevalence, "nnunet": bench_nnunet,
})  # read-only: a new case is a module of this package plus one entry here
GPU_CASES = ("roofline", "unet_device")  # run by default only with a CUDA device (CPU figures say nothing)
OPTIONAL_CASES = {"nnunet": "nnunetv2"}  # run by default only where the package they time is installed


def run_bench(config: BenchConfig | None = None, *, cases: list[str] | None = None,
              progress: Callable[[str], None] | None = None) -> list[BenchResult]:
    """Run the selected benchmark cases (all by default) and return their results.

    Args:
        config: sizes, repeats, threads and device; defaults to :class:`BenchConfig`'s.
        cases: names of the cases to run (``voxweight bench --help`` lists them). By default all of them,
            except the GPU-only cases when ``config.device`` is not CUDA and ``nnunet`` without nnunetv2.
        progress: optional callback called with each case's name before it runs.

    Returns:
        One :class:`BenchResult` per comparison.

    Raises:
        ValueError: for an unknown case name.
    """
    config = config or BenchConfig()
    available = CASES
    default = [c for c in available if (c not in GPU_CASES or config.device.startswith("cuda"))
               and (c not in OPTIONAL_CASES or importlib.util.find_spec(OPTIONAL_CASES[c]) is not None)]
    selected = [look_up_option("cases", c, tuple(available)) for c in (cases or default)]
    previous = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        results = []
        for name in selected:
            if progress is not None:
                progress(name)
            results.extend(available[name](config))
        return results
    finally:
        torch.set_num_threads(previous)
