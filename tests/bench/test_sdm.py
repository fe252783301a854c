"""Bench case sdm: its row at a tiny size, its registration, and that it refuses to time different maps."""

from __future__ import annotations

import numpy as np
import pytest

from tests.maps.test_signed import one_hot2dist
from voxweight.bench import CASES, sdm
from voxweight.bench.harness import BenchConfig


def test_sdm_row_compares_against_the_reference():
    (row,) = sdm.bench_sdm(BenchConfig(size=16, repeats=1))
    assert row.max_ratio == 0.2 and row.baseline == "scipy one_hot2dist (reference)"
    assert row.baseline_ms > 0 and row.voxweight_ms > 0 and row.paired_ratio is not None
    assert CASES["sdm"] is sdm.bench_sdm


def test_sdm_refuses_to_time_a_wrong_candidate(monkeypatch):
    import voxweight.maps as maps

    right = maps.class_signed_distance
    monkeypatch.setattr(maps, "class_signed_distance", lambda *a, **k: right(*a, **{**k, "convention": "levelset"}))
    with pytest.raises(AssertionError):
        sdm.bench_sdm(BenchConfig(size=16, repeats=1))


def test_the_bench_label_and_baseline():
    label = sdm.sdm_label(32)
    assert label.dtype == np.uint8 and sorted(np.unique(label).tolist()) == [0, 1, 2, 3]
    np.testing.assert_array_equal(label, sdm.sdm_label(32))  # deterministic
    one_hot = (label[None] == np.arange(4).reshape(-1, 1, 1, 1)).astype(np.uint8)
    np.testing.assert_array_equal(sdm.reference_one_hot2dist(one_hot, sdm.SPACING), one_hot2dist(one_hot, sdm.SPACING))
