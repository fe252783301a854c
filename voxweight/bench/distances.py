"""Bench cases ``edt``, ``unet_device`` and ``hausdorff``: the torch EDT and maps, the Hausdorff loss.

``edt``: ``distance_to_interface(..., backend="torch")`` of a ``size^3`` volume against the ``edt`` backend on
the same mask, and the U-Net map of ``instances`` separated balls with ``backend="torch"`` (connected
components, object windows and the band-limited EDT, all in torch) against ``backend="edt"``, on a CPU
tensor; the maps must agree before anything is timed. ``unet_device``: the U-Net maps of a
``[4, 1, size^3]`` batch on ``config.device`` (meant for CUDA) against the CPU ``edt`` path.
``hausdorff``: :func:`voxweight.hausdorff_dt_loss` forward + backward at ``[2, 1, e^3]`` (``e = 3 size / 4``)
against MONAI's ``HausdorffDTLoss(sigmoid=True, include_background=True)``, after checking that the two
give the same loss.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
import torch

from voxweight.bench.harness import BenchConfig, BenchResult, backward_step, time_paired
from voxweight.bench.volumes import SIGMA, SPACING, W0, separated_balls
from voxweight.maps import boundary_weights
from voxweight.maps.torch_bonus import BAND_SIGMAS

__all__ = ["bench_edt", "bench_hausdorff", "bench_unet_device"]


def _mask(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """A few dilated blobs: boundaries like a label's, distances up to tens of voxels."""
    rng = np.random.default_rng(seed)
    return ndi.binary_dilation(rng.random(shape) < 2e-4, iterations=max(1, shape[-1] // 16))


def bench_edt(config: BenchConfig) -> list[BenchResult]:
    """The torch EDT and the torch U-Net map vs the ``edt`` backend on the CPU (targets: <= 3x and <= 1.5x).

    Example:
        >>> [r.operation.split()[1] for r in bench_edt(BenchConfig(size=16, instances=3, repeats=1))]
        ['EDT', 'U-Net']
    """
    from voxweight.maps import distance_to_interface

    e = config.size
    mask = _mask((e, e, e), seed=1)
    tensor = torch.from_numpy(mask)
    reference = distance_to_interface(mask, spacing=SPACING, backend="edt")
    ours = distance_to_interface(tensor, spacing=SPACING, backend="torch").numpy()
    np.testing.assert_allclose(ours, reference, rtol=1e-5)  # the same map, or the bench compares nothing
    full = time_paired(lambda: distance_to_interface(mask, spacing=SPACING, backend="edt"),
                       lambda: distance_to_interface(tensor, spacing=SPACING, backend="torch"), config.repeats)
    note = f"{e}^3, spacing {SPACING}, cpu; maps agree to 1e-5"
    return [BenchResult.timed(f"torch EDT {e}^3, full", "edt backend", full, 3.0, note), _unet_torch_vs_edt(config)]


def _unet_maps(label: np.ndarray | torch.Tensor, backend: str) -> np.ndarray | torch.Tensor:
    return boundary_weights(label, mode="unet", w0=W0, sigma=SIGMA, spacing=SPACING, backend=backend)


def _unet_torch_vs_edt(config: BenchConfig) -> BenchResult:
    """``boundary_weights(backend="torch")`` on a CPU tensor vs ``backend="edt"``, ``config.instances`` objects."""
    fg = separated_balls(config.size, config.instances, seed=2) > 0
    tensor = torch.from_numpy(fg)
    error = float(np.abs(_unet_maps(tensor, "torch").numpy() - _unet_maps(fg, "edt")).max())
    if error > 1e-6 * W0:
        raise AssertionError(f"bench unet torch: the torch and edt maps differ by {error:.2e} > 1e-6 w0")
    timing = time_paired(lambda: _unet_maps(fg, "edt"), lambda: _unet_maps(tensor, "torch"), config.repeats)
    note = f"band {BAND_SIGMAS:.2f} sigma, sigma {SIGMA}, spacing {SPACING}; max |diff| {error / W0:.1e} w0"
    return BenchResult.timed(f"torch U-Net map {config.size}^3, {config.instances} objects", "edt backend", timing,
                             1.5, note)


def bench_unet_device(config: BenchConfig) -> list[BenchResult]:
    """U-Net maps of a ``[4, 1, size^3]`` batch on ``config.device`` vs the same maps on the CPU with ``edt``.

    The issue's target is "at least 20x faster on a GPU" (a ratio of at most 0.05); the case is meant for a
    CUDA device (``voxweight bench --device cuda``). The maps must agree before anything is timed.

    Example:
        >>> bench_unet_device(BenchConfig(size=16, instances=3, repeats=1))[0].max_ratio
        0.05
    """
    fg = np.stack([separated_balls(config.size, config.instances, seed=s) > 0 for s in range(4)])[:, None]
    batch = torch.from_numpy(fg).to(config.device)
    error = float(np.abs(_unet_maps(batch, "torch").cpu().numpy() - _unet_maps(fg, "edt")).max())
    if error > 1e-5 * W0:
        raise AssertionError(f"bench unet_device: the {config.device} and edt maps differ by {error:.2e} > 1e-5 w0")
    timing = time_paired(lambda: _unet_maps(fg, "edt"), lambda: _unet_maps(batch, "torch"), config.repeats,
                         config.device)
    note = f"{config.instances} objects per volume, sigma {SIGMA}, spacing {SPACING}; max |diff| {error / W0:.1e} w0"
    return [BenchResult.timed(f"U-Net maps [4,1,{config.size}^3] on {config.device}", "edt backend on the CPU",
                              timing, 0.05, note)]


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

    timing = time_paired(backward_step(x, lambda z: monai(z, t)), backward_step(x, lambda z: hausdorff_dt_loss(z, t)),
                         config.repeats, config.device)
    return [BenchResult(f"Hausdorff DT loss fwd+bwd [2,1,{e}^3]", "MONAI HausdorffDTLoss", timing.baseline_ms,
                        timing.candidate_ms, 0.2, "sigmoid, alpha 2; losses agree to 1e-4",
                        paired_ratio=timing.ratio)]
