"""Benchmark cases for the weight maps: the two-sided distance map and the U-Net map on ``size^3`` labels.

Baselines are what a user would write without voxweight: MONAI's ``DistanceTransformEDT`` on the
foreground and on the background (scipy underneath), and a naive U-Net map with one full-volume
scipy EDT per object (:func:`naive_unet_weights`). Both sides use the same anisotropic spacing.
The maps are computed on the CPU; ``config.threads`` is passed as voxweight's ``threads=`` (``edt``'s
``parallel=``), while scipy, and so MONAI, always runs on one thread.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.ndimage as ndi

from voxweight.bench.harness import BenchConfig, BenchResult, time_paired
from voxweight.bench.volumes import SIGMA, SPACING, W0, separated_balls
from voxweight.maps import boundary_weights, distance_to_interface

__all__ = ["bench_distance", "bench_unet", "naive_unet_weights"]



def naive_unet_weights(fg: np.ndarray, w0: float, sigma: float, spacing: Sequence[float]) -> np.ndarray:
    """Baseline U-Net map: one full-volume scipy EDT per connected object, running two smallest (float64).

    ``1 + w0 exp(-(d1 + d2)^2 / (2 sigma^2))`` on the background, 1 on objects (26-connected components).
    """
    objects, count = ndi.label(fg, structure=np.ones((3,) * fg.ndim, dtype=bool))
    d1 = np.full(fg.shape, np.inf)
    d2 = np.full(fg.shape, np.inf)
    for k in range(1, count + 1):
        dk = ndi.distance_transform_edt(objects != k, sampling=spacing)
        np.minimum(d2, np.maximum(d1, dk), out=d2)
        np.minimum(d1, dk, out=d1)
    bonus = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))  # exp(-inf) = 0 with fewer than two objects
    bonus[objects > 0] = 0.0
    return (1.0 + bonus).astype(np.float32)


def bench_distance(config: BenchConfig) -> list[BenchResult]:
    """Two-sided distance to the interface vs MONAI ``DistanceTransformEDT`` on foreground and background."""
    from monai.transforms import DistanceTransformEDT

    fg = separated_balls(config.size, 6, seed=1) > 0
    transform = DistanceTransformEDT(sampling=list(SPACING))

    def monai_two_sided() -> np.ndarray:
        d = transform(np.stack([fg, ~fg]))  # channel 0: inside distances, channel 1: outside distances
        return d[0] + d[1]

    def ours() -> np.ndarray:
        return distance_to_interface(fg, spacing=SPACING, threads=config.threads)

    error = float(np.max(np.abs(ours() - monai_two_sided())))
    note = f"spacing {SPACING} on both; max |diff| {error:.1e}; edt threads {config.threads}"
    return [BenchResult.timed(f"distance to interface {config.size}^3, fg+bg", "MONAI DistanceTransformEDT",
                              time_paired(monai_two_sided, ours, config.repeats), 1 / 5, note)]


def bench_unet(config: BenchConfig) -> list[BenchResult]:
    """U-Net map with ``config.instances`` objects vs :func:`naive_unet_weights`; checks their agreement once."""
    fg = separated_balls(config.size, config.instances, seed=2) > 0

    def naive() -> np.ndarray:
        return naive_unet_weights(fg, W0, SIGMA, SPACING)

    def ours() -> np.ndarray:
        return boundary_weights(fg, mode="unet", w0=W0, sigma=SIGMA, spacing=SPACING, threads=config.threads)

    error = float(np.max(np.abs(ours() - naive())))
    verdict = "ok" if error <= 1e-3 * W0 else "EXCEEDS 1e-3 w0"
    note = f"max |diff| {error:.1e} = {error / W0:.1e} w0 ({verdict}); spacing {SPACING}, sigma {SIGMA}"
    return [BenchResult.timed(f"U-Net map {config.size}^3, {config.instances} objects", "naive scipy, per object",
                              time_paired(naive, ours, config.repeats), 1 / 20, note)]
