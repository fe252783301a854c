"""Bench cases ``edt`` and ``hausdorff``: the torch EDT against ``edt``, the Hausdorff loss against MONAI's.

``edt``: ``distance_to_interface(..., backend="torch")`` of a ``size^3`` volume against the ``edt`` backend on
the same mask (the maps must agree before anything is timed), and the band-limited pass
(``max_distance = 20``, a U-Net map's ``4 sigma`` at ``sigma = 5``) against the same ``edt`` map.
``hausdorff``: :func:`voxweight.hausdorff_dt_loss` forward + backward at ``[2, 1, e^3]`` (``e = 3 size / 4``)
against MONAI's ``HausdorffDTLoss(sigmoid=True, include_background=True)``, after checking that the two
give the same loss.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
import torch

from voxweight.bench.harness import BenchConfig, BenchResult, time_paired

__all__ = ["bench_edt", "bench_hausdorff"]


def _mask(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """A few dilated blobs: boundaries like a label's, distances up to tens of voxels."""
    rng = np.random.default_rng(seed)
    return ndi.binary_dilation(rng.random(shape) < 2e-4, iterations=max(1, shape[-1] // 16))


def bench_edt(config: BenchConfig) -> list[BenchResult]:
    """``backend="torch"`` full and band-limited EDT vs the ``edt`` backend (targets: <= 3x and <= 1.5x).

    Example:
        >>> [r.operation.split()[0] for r in bench_edt(BenchConfig(size=16, repeats=1))]
        ['torch', 'torch']
    """
    from voxweight.maps import distance_to_interface

    e = config.size
    mask = _mask((e, e, e), seed=1)
    tensor = torch.from_numpy(mask).to(config.device)
    reference = distance_to_interface(mask, spacing=(2.0, 0.8, 0.8), backend="edt")
    ours = distance_to_interface(tensor, spacing=(2.0, 0.8, 0.8), backend="torch").cpu().numpy()
    np.testing.assert_allclose(ours, reference, rtol=1e-5)  # the same map, or the bench compares nothing
    full = time_paired(lambda: distance_to_interface(mask, spacing=(2.0, 0.8, 0.8), backend="edt"),
                       lambda: distance_to_interface(tensor, spacing=(2.0, 0.8, 0.8), backend="torch"),
                       config.repeats, config.device)
    band = time_paired(lambda: distance_to_interface(mask, spacing=(2.0, 0.8, 0.8), backend="edt"),
                       lambda: distance_to_interface(tensor, spacing=(2.0, 0.8, 0.8), backend="torch",
                                                     max_distance=20.0), config.repeats, config.device)
    note = f"{e}^3, spacing (2.0, 0.8, 0.8), device {config.device}; maps agree to 1e-5"
    return [BenchResult(f"torch EDT {e}^3, full", "edt backend", full.baseline_ms, full.candidate_ms, 3.0, note,
                        paired_ratio=full.ratio),
            BenchResult(f"torch EDT {e}^3, max_distance 20", "edt backend (full)", band.baseline_ms,
                        band.candidate_ms, 1.5, note, paired_ratio=band.ratio)]


def bench_hausdorff(config: BenchConfig) -> list[BenchResult]:
    """``hausdorff_dt_loss`` fwd+bwd vs MONAI's ``HausdorffDTLoss`` (target: at least 5x faster).

    Example:
        >>> bench_hausdorff(BenchConfig(size=16, repeats=1))[0].max_ratio
        0.2
    """
    from monai.losses import HausdorffDTLoss

    from voxweight.losses import hausdorff_dt_loss

    e = max(8, 3 * config.size // 4)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 1, e, e, e, generator=g).to(config.device)
    t = torch.from_numpy(np.stack([_mask((1, e, e, e), seed=s) for s in (3, 4)])).float().to(config.device)
    monai = HausdorffDTLoss(sigmoid=True, include_background=True)
    torch.testing.assert_close(hausdorff_dt_loss(x, t), monai(x, t), rtol=1e-4, atol=1e-6)

    def step(fn):
        xi = x.detach().requires_grad_()
        fn(xi).backward()
        return xi.grad

    timing = time_paired(lambda: step(lambda z: monai(z, t)), lambda: step(lambda z: hausdorff_dt_loss(z, t)),
                         config.repeats, config.device)
    return [BenchResult(f"Hausdorff DT loss fwd+bwd [2,1,{e}^3]", "MONAI HausdorffDTLoss", timing.baseline_ms,
                        timing.candidate_ms, 0.2, "sigmoid, alpha 2; losses agree to 1e-4",
                        paired_ratio=timing.ratio)]
