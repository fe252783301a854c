"""voxweight bench cases "distance" and "unet" at tiny sizes (no timing assertions).

Oracles: scipy.ndimage.label for the synthetic objects' count and separation, a brute-force
all-pairs U-Net map for the naive baseline, and the baseline itself for the agreement in the note.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.ndimage as ndi

from voxweight.bench import BenchConfig, run_bench
from voxweight.bench.maps import naive_unet_weights
from voxweight.bench.volumes import separated_balls
from voxweight.maps import boundary_weights, distance_to_interface

FULL = np.ones((3, 3, 3), dtype=bool)


def brute_unet(objects: np.ndarray, w0: float, sigma: float, spacing) -> np.ndarray:
    """All pairwise voxel distances (float64), per-object minimum, two smallest by sorting."""
    grid = np.stack(np.indices(objects.shape), -1).reshape(-1, 3) * np.asarray(spacing)
    flat = objects.reshape(-1)
    per_object = np.sort([np.sqrt(((grid[:, None] - grid[flat == k][None]) ** 2).sum(-1)).min(1)
                          for k in range(1, flat.max() + 1)], axis=0)
    bonus = w0 * np.exp(-((per_object[0] + per_object[1]) ** 2) / (2 * sigma**2))
    return 1 + np.where(flat == 0, bonus, 0.0).reshape(objects.shape)


@pytest.mark.parametrize(("size", "count"), [(16, 20), (24, 4), (9, 27), (12, 1)])
def test_separated_balls_are_count_separate_objects(size, count):
    """Oracle: scipy.ndimage.label with 26-connectivity finds exactly ``count`` objects, ids 1..count."""
    objects = separated_balls(size, count, seed=3)
    _, n = ndi.label(objects > 0, structure=FULL)
    assert n == count
    assert set(np.unique(objects)) == set(range(count + 1))


def test_separated_balls_rejects_too_many_objects():
    with pytest.raises(ValueError, match=r"instances: expected at most 8 objects for size 6, got 9"):
        separated_balls(6, 9)


def test_naive_unet_matches_brute_force():
    """Oracle: brute-force all-pairs distances (float64) on a tiny anisotropic volume."""
    fg = separated_balls(10, 5, seed=4) > 0
    objects, _ = ndi.label(fg, structure=FULL)
    spacing = (2.0, 0.8, 0.8)
    expected = brute_unet(objects, 10.0, 3.0, spacing)
    np.testing.assert_allclose(naive_unet_weights(fg, 10.0, 3.0, spacing), expected, rtol=1e-6)


def test_threads_give_the_same_distances_and_maps():
    """Property: edt's result does not depend on the thread count it is passed (distances and U-Net maps)."""
    fg = separated_balls(20, 6, seed=5) > 0
    single = distance_to_interface(fg, spacing=(2.0, 0.8, 0.8))
    unet = boundary_weights(fg, sigma=3.0, spacing=(2.0, 0.8, 0.8))
    for threads in (2, 3):
        np.testing.assert_array_equal(distance_to_interface(fg, spacing=(2.0, 0.8, 0.8), threads=threads), single)
        np.testing.assert_array_equal(boundary_weights(fg, sigma=3.0, spacing=(2.0, 0.8, 0.8), threads=threads), unet)


@pytest.mark.parametrize("threads", [1, 2])
def test_distance_and_unet_cases_are_well_formed(threads):
    """Both cases return one result each with positive times, their targets, and an agreement note."""
    results = run_bench(BenchConfig(size=20, instances=6, repeats=1, threads=threads), cases=["distance", "unet"])
    assert [r.max_ratio for r in results] == pytest.approx([1 / 5, 1 / 20])
    distance, unet = results
    assert distance.baseline == "MONAI DistanceTransformEDT" and "20^3" in distance.operation
    assert unet.baseline == "naive scipy, per object" and "6 objects" in unet.operation
    assert all(r.baseline_ms > 0 and r.voxweight_ms > 0 for r in results)
    for r in results:
        error = float(re.search(r"max \|diff\| ([0-9.e+-]+)", r.note).group(1))
        assert 0 <= error <= (1e-4 if r is distance else 1e-3 * 10.0)
    assert "(ok)" in unet.note and f"edt threads {threads}" in distance.note
