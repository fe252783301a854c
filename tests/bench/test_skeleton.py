"""Bench case skeleton: its rows (the tube, the recall term's cost) at a tiny size, that it refuses to time a
different tube or a compound that is not the sum of its terms, and its baseline (the reference procedure
re-derived) against the map tests' own re-derivation of SkeletonTransform."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from tests.maps.test_skeleton import multiclass_tree, reference_skeleton_transform
from voxweight.bench import skeleton
from voxweight.bench.harness import BenchConfig


def test_skeleton_row_compares_against_the_reference():
    row, cost = skeleton.bench_skeleton(BenchConfig(size=24, repeats=1))
    assert row.max_ratio == 1.0 and row.baseline == "skimage skeletonize + 2 dilations + mask (reference)"
    assert row.baseline_ms > 0 and row.voxweight_ms > 0 and row.paired_ratio is not None
    assert "24^3" in row.operation and "tubes identical" in row.note
    assert cost.baseline == "Dice+CE alone" and cost.max_ratio == 1.5 and "12^3" in cost.operation
    assert cost.voxweight_ms > 0 and cost.baseline_ms > 0


def test_recall_cost_row_refuses_a_compound_that_is_not_the_sum(monkeypatch):
    from voxweight.losses import DiceCESkeletonRecall

    right = DiceCESkeletonRecall.forward
    monkeypatch.setattr(DiceCESkeletonRecall, "forward", lambda self, *a, **k: 1.01 * right(self, *a, **k))
    with pytest.raises(AssertionError):
        skeleton.bench_skeleton(BenchConfig(size=24, repeats=1))


def test_skeleton_refuses_to_time_a_wrong_candidate(monkeypatch):
    import voxweight.maps.skeleton as maps_skeleton

    right = maps_skeleton.tubed_skeleton
    monkeypatch.setattr(maps_skeleton, "tubed_skeleton", lambda *a, **k: right(*a, **{**k, "tube_radius": 1}))
    with pytest.raises(AssertionError, match=r"tubed_skeleton differs from the reference on \d+ voxels"):
        skeleton.bench_skeleton(BenchConfig(size=24, repeats=1))


def test_the_bench_tree_and_baseline():
    tree = skeleton.skeleton_tree(48)
    assert tree.dtype == np.uint8 and sorted(np.unique(tree).tolist()) == [0, 1]
    np.testing.assert_array_equal(tree, skeleton.skeleton_tree(48))  # deterministic
    assert ndi.label(tree, structure=np.ones((3, 3, 3)))[1] == 1 and 0.001 < tree.mean() < 0.1
    for seg in (tree[None], multiclass_tree((40, 36, 32), seed=2)[None], multiclass_tree((40, 36), seed=3)[None]):
        np.testing.assert_array_equal(skeleton.reference_tubed_skeleton(seg), reference_skeleton_transform(seg))
    empty = np.zeros((1, 8, 8, 8), dtype=np.uint8)
    np.testing.assert_array_equal(skeleton.reference_tubed_skeleton(empty), empty)
