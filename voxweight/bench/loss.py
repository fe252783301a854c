"""Benchmark cases for the loss: forward + backward on ``[2, 1, size^3]`` against torch's eager kernel."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from voxweight.bench.harness import BenchConfig, BenchResult, backward_step, time_paired
from voxweight.checks import value_checks
from voxweight.losses import voxel_weighted_bce
from voxweight.losses.fused import compile_failed
from voxweight.maps import balance_factors


def loss_inputs(config: BenchConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded logits, 3%-foreground targets and their class-balance map ``[2, 1, size^3]`` on ``config.device``.

    Shared by the loss, memory and roofline cases, so that they measure the same data.
    """
    g = torch.Generator().manual_seed(0)
    shape = (2, 1, config.size, config.size, config.size)
    x = torch.randn(shape, generator=g)
    t = (torch.rand(shape, generator=g) > 0.97).float()
    fg, bg = balance_factors(t.mean(dim=(2, 3, 4), keepdim=True), "balanced")
    w = bg + (fg - bg) * t  # a precomputed class-balance map, as a data loader would deliver it
    return x.to(config.device), t.to(config.device), w.to(config.device)


def bench_loss(config: BenchConfig) -> list[BenchResult]:
    """Loss forward + backward: voxel map (checks on / off), fused, and class balance inside the loss."""
    x, t, w = loss_inputs(config)
    reps, dev = 3 * config.repeats, config.device  # short operations: more samples
    inner = 4  # each timed sample is 4 forward+backward passes
    shape = f"[2,1,{config.size}^3]"
    torch_map = backward_step(x, lambda xi: F.binary_cross_entropy_with_logits(xi, t, weight=w))
    ours = backward_step(x, lambda xi: voxel_weighted_bce(xi, t, w))
    results = [BenchResult.timed(f"loss fwd+bwd {shape}, voxel map", "torch eager, same map",
                                 time_paired(torch_map, ours, reps, dev, inner), 1.15, "value checks on (default)")]

    def ours_unchecked() -> None:
        with value_checks("off"):
            ours()

    unchecked = time_paired(torch_map, ours_unchecked, reps, dev, inner)
    results.append(BenchResult.timed(f"loss fwd+bwd {shape}, voxel map", "torch eager, same map", unchecked, 1.05,
                                     "value checks off"))
    balanced = backward_step(x, lambda xi: voxel_weighted_bce(xi, t, balance="balanced"))
    results.append(BenchResult.timed(f"loss fwd+bwd {shape}, balance='balanced'", "torch eager, precomputed map",
                                     time_paired(torch_map, balanced, reps, dev, inner), 1.0, "eager, no map built"))
    results.append(_fused(x, t, w, torch_map, config, shape, balance=None))
    results.append(_fused(x, t, None, torch_map, config, shape, balance="balanced"))
    return results


def _fused(x: torch.Tensor, t: torch.Tensor, w: torch.Tensor | None, torch_map: Callable[[], None],
           config: BenchConfig, shape: str, balance: str | None) -> BenchResult:
    fused = backward_step(x, lambda xi: voxel_weighted_bce(xi, t, w, fused=True, balance=balance))
    start = time.perf_counter()
    fused()  # compilation happens here, outside the timed repeats
    compile_s = time.perf_counter() - start
    note = f"first call (compile) {compile_s:.1f} s"
    if compile_failed():
        note = "torch.compile unavailable here: eager fallback"
    if balance is None:
        name, baseline, target = f"loss fwd+bwd {shape}, fused=True", "torch eager, same map", 1 / 1.5
    else:
        name, baseline, target = f"loss fwd+bwd {shape}, balance, fused=True", "torch eager, precomputed map", 1.0
    timing = time_paired(torch_map, fused, 3 * config.repeats, config.device, inner=4)
    return BenchResult.timed(name, baseline, timing, target, note)
