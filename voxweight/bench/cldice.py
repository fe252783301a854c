"""Bench case ``cldice``: :func:`voxweight.losses.cldice.voxel_weighted_cldice` against MONAI's ``SoftclDiceLoss``.

Forward + backward at ``[2, 1, e^3]`` (``e = 3 size / 4``: 96 at the default size), sigmoid of random logits
against a target of straight tubes (thin structures, what clDice is for), 3 skeleton iterations, MONAI's
defaults (``smooth_nr = smooth_dr = 1``, ``smooth = 1e-4``: voxweight's ``harmonic_smooth=1e-4``). The two
losses and their gradients must agree before anything is timed. Target: no slower (ratio <= 1.0).
"""

from __future__ import annotations

import numpy as np
import torch

from voxweight.bench.harness import BenchConfig, BenchResult, backward_step, time_paired

__all__ = ["bench_cldice", "tube_target"]


def tube_target(size: int, tubes: int = 6, seed: int = 7) -> np.ndarray:
    """A ``size^3`` float32 volume of ``tubes`` straight tubes (radius ``size / 32``, at least 1) between random points.

    Example:
        >>> v = tube_target(16)
        >>> v.shape, v.dtype, bool(0 < v.mean() < 0.5)
        ((16, 16, 16), dtype('float32'), True)
    """
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(size, dtype=np.float32)] * 3, indexing="ij"), axis=-1)
    out = np.zeros((size,) * 3, dtype=bool)
    radius = max(1.0, size / 32)
    for _ in range(tubes):
        a, b = rng.uniform(0, size - 1, 3), rng.uniform(0, size - 1, 3)
        along = np.clip(((grid - a) @ (b - a)) / max(float((b - a) @ (b - a)), 1e-9), 0.0, 1.0)
        out |= np.linalg.norm(grid - (a + along[..., None] * (b - a)), axis=-1) <= radius
    return out.astype(np.float32)


def bench_cldice(config: BenchConfig) -> list[BenchResult]:
    """``voxel_weighted_cldice`` fwd+bwd vs MONAI's ``SoftclDiceLoss(sigmoid=True)`` (target: ratio <= 1.0).

    Raises:
        AssertionError: when the two losses or gradients differ (nothing is timed then).

    Example:
        >>> bench_cldice(BenchConfig(size=16, repeats=1))[0].max_ratio
        1.0
    """
    from monai.losses import SoftclDiceLoss

    from voxweight.losses import cldice

    e = max(8, 3 * config.size // 4)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 1, e, e, e, generator=g).to(config.device)
    t = torch.from_numpy(np.stack([tube_target(e, seed=s) for s in (7, 8)])[:, None]).to(config.device)
    monai = SoftclDiceLoss(iter_=3, sigmoid=True)

    def ours(z: torch.Tensor) -> torch.Tensor:
        return cldice.voxel_weighted_cldice(z, t, iterations=3, harmonic_smooth=1e-4)

    baseline, candidate = backward_step(x, lambda z: monai(z, t)), backward_step(x, ours)
    (loss_b, grad_b), (loss_o, grad_o) = baseline(), candidate()
    torch.testing.assert_close(loss_o, loss_b, rtol=1e-5, atol=1e-6)  # the same loss, or nothing is compared
    torch.testing.assert_close(grad_o, grad_b, rtol=1e-4, atol=1e-9)
    timing = time_paired(baseline, candidate, config.repeats, config.device)
    note = f"sigmoid, 3 iterations, {config.device}; losses agree to 1e-5, gradients to 1e-4"
    return [BenchResult.timed(f"clDice loss fwd+bwd [2,1,{e}^3]", "MONAI SoftclDiceLoss", timing, 1.0, note)]
