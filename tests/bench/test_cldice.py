"""Bench case cldice: its row at a tiny size, its tube target, and that it refuses to time a wrong loss or gradient."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from voxweight.bench import cldice as case
from voxweight.bench.harness import BenchConfig


def test_cldice_row_compares_against_monai():
    (row,) = case.bench_cldice(BenchConfig(size=16, repeats=1))
    assert row.max_ratio == 1.0 and row.baseline == "MONAI SoftclDiceLoss" and "[2,1,12^3]" in row.operation
    assert row.baseline_ms > 0 and row.voxweight_ms > 0 and row.paired_ratio is not None


def test_cldice_refuses_a_wrong_loss_or_gradient(monkeypatch):
    import voxweight.losses.cldice as losses

    right = losses.voxel_weighted_cldice
    monkeypatch.setattr(losses, "voxel_weighted_cldice", lambda z, t, **k: 1.01 * right(z, t, **k))
    with pytest.raises(AssertionError):
        case.bench_cldice(BenchConfig(size=16, repeats=1))
    off = lambda z, t, **k: right(z, t, **k) + 1e-3 * (z - z.detach()).sum()  # noqa: E731 (same value, wrong gradient)
    monkeypatch.setattr(losses, "voxel_weighted_cldice", off)
    with pytest.raises(AssertionError):
        case.bench_cldice(BenchConfig(size=16, repeats=1))


def test_the_tube_target_is_thin_binary_and_deterministic():
    v = case.tube_target(32)
    np.testing.assert_array_equal(v, case.tube_target(32))
    assert set(np.unique(v).tolist()) == {0.0, 1.0} and 0.001 < v.mean() < 0.2
    fg = v > 0
    assert not ndi.binary_erosion(fg, iterations=3).any()  # radius 1 tubes: nothing survives three erosions
