"""Bench cases edt and hausdorff: their rows at a tiny size, and that they refuse to time different results."""

from __future__ import annotations

import numpy as np
import pytest

from voxweight.bench import distances
from voxweight.bench.harness import BenchConfig


def test_edt_rows_compare_the_same_map():
    rows = distances.bench_edt(BenchConfig(size=12, repeats=1))
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
