"""Bench cases edt, unet_device and hausdorff: their rows at a tiny size; they refuse to time different maps."""

from __future__ import annotations

import numpy as np
import pytest

from voxweight.bench import distances
from voxweight.bench.harness import BenchConfig


def test_edt_rows_compare_the_same_map():
    rows = distances.bench_edt(BenchConfig(size=12, instances=3, repeats=1))
    assert [r.max_ratio for r in rows] == [3.0, 1.5]
    assert all(r.baseline == "edt backend" or r.baseline.startswith("edt backend") for r in rows)
    assert all(r.voxweight_ms > 0 and r.baseline_ms > 0 for r in rows)


def test_hausdorff_row_and_its_agreement_check(monkeypatch):
    (row,) = distances.bench_hausdorff(BenchConfig(size=12, repeats=1))
    assert row.max_ratio == 0.2 and row.baseline == "MONAI HausdorffDTLoss" and row.voxweight_ms > 0
    import voxweight.losses as losses

    monkeypatch.setattr(losses, "hausdorff_dt_loss", lambda x, t: 2 * x.sum())  # a wrong candidate
    with pytest.raises(AssertionError):
        distances.bench_hausdorff(BenchConfig(size=12, repeats=1))


def test_the_bench_mask_has_a_boundary():
    mask = distances._mask((1, 16, 16, 16), seed=3)
    assert mask.any() and not mask.all() and mask.dtype == np.bool_


def test_unet_device_row_and_its_agreement_check(monkeypatch):
    """On the CPU (no CUDA here) the case still compares the same maps; a wrong torch map is refused."""
    (row,) = distances.bench_unet_device(BenchConfig(size=12, instances=3, repeats=1))
    assert row.max_ratio == 0.05 and row.baseline == "edt backend on the CPU" and row.voxweight_ms > 0
    real = distances.boundary_weights

    def wrong(label, *, backend, **kwargs):
        out = real(label, backend=backend, **kwargs)
        return out * 1.01 if backend == "torch" else out

    monkeypatch.setattr(distances, "boundary_weights", wrong)
    with pytest.raises(AssertionError, match="differ"):
        distances.bench_unet_device(BenchConfig(size=12, instances=3, repeats=1))
    with pytest.raises(AssertionError, match="differ"):
        distances.bench_edt(BenchConfig(size=12, instances=3, repeats=1))
