"""The study's metrics against MONAI, brute-force re-derivations and hand-computed volumes.

Oracles: MONAI's ``compute_hausdorff_distance`` / ``compute_surface_dice`` and a re-derivation of both (surface
voxels by scipy's erosion, every pairwise distance, numpy's percentile); shifted cubes and planes whose distances
are known by hand; hand-made instance maps, and loop-by-loop references for object F1 and the split rate.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from monai.metrics import compute_hausdorff_distance, compute_surface_dice

from voxweight.study.metrics import (
    DICE_THRESHOLDS,
    METRICS,
    average_precision,
    best_threshold_dice,
    betti0_error,
    cldice_metric,
    dice_score,
    expected_calibration_error,
    hd95,
    object_f1,
    pool_metrics,
    surface_dice,
    touching_split_rate,
    volume_metrics,
)

FULL = {2: ndi.generate_binary_structure(2, 2), 3: ndi.generate_binary_structure(3, 3)}
# MONAI's own calls (the oracle) warn about an argument MONAI itself passes
pytestmark = pytest.mark.filterwarnings("ignore:.*always_return_as_numpy:FutureWarning")


def _blobs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return ndi.gaussian_filter(rng.standard_normal(shape), 1.5) > 0.15


def _monai(fn, p, t, spacing, **kw) -> float:
    p, t = (torch.from_numpy(m[None, None].astype(np.float32)) for m in (p, t))
    return float(fn(p, t, include_background=True, spacing=list(spacing), **kw).reshape(-1)[0])


def _surface_distances(a, b, spacing):
    """Re-derived: surface = mask minus its erosion (zero outside); each surface voxel's distance to the other's."""
    sa, sb = (m & ~ndi.binary_erosion(m) for m in (a, b))
    pa, pb = (np.argwhere(s) * np.asarray(spacing) for s in (sa, sb))
    d = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1))
    return d.min(1), d.min(0)


@pytest.mark.parametrize("seed, shape, spacing", [(0, (20, 18), (1.0, 1.0)), (1, (16, 14, 10), (0.8, 0.8, 2.5)),
                                                  (2, (12, 12, 12), (1.5, 0.5, 1.0))])
def test_hd95_and_surface_dice_match_monai_and_a_rederivation(seed, shape, spacing):
    rng = np.random.default_rng(seed)
    p, t = _blobs(rng, shape), _blobs(rng, shape)
    assert p.any() and t.any() and (p != t).any()
    d_pt, d_tp = _surface_distances(p, t, spacing)
    assert hd95(p, t, spacing) == pytest.approx(_monai(compute_hausdorff_distance, p, t, spacing, percentile=95))
    assert hd95(p, t, spacing) == pytest.approx(max(np.percentile(d_pt, 95), np.percentile(d_tp, 95)), rel=1e-5)
    for tol in (0.0, 1.0, 2.7):
        expected = (np.sum(d_pt <= tol) + np.sum(d_tp <= tol)) / (len(d_pt) + len(d_tp))
        assert surface_dice(p, t, spacing, tol) == pytest.approx(
            _monai(compute_surface_dice, p, t, spacing, class_thresholds=[tol]))
        assert surface_dice(p, t, spacing, tol) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_hd95_of_a_cube_and_its_shift_is_the_shift_in_mm(k):
    """By hand: each surface voxel's shifted twin is on the other surface (distance <= k s), and the face behind
    (16 of 56 surface voxels, over 5%) is exactly k s away; anisotropic spacing, the shift on the 2.5 mm axis."""
    a, b = np.zeros((14, 8, 8), bool), np.zeros((14, 8, 8), bool)
    a[1:5, 2:6, 2:6], b[1 + k:5 + k, 2:6, 2:6] = True, True
    assert hd95(a, b, (2.5, 1.0, 0.7)) == pytest.approx(2.5 * k)
    assert hd95(b, a, (2.5, 1.0, 0.7)) == pytest.approx(2.5 * k)
    assert hd95(a.transpose(1, 0, 2), b.transpose(1, 0, 2), (1.0, 2.5, 0.7)) == pytest.approx(2.5 * k)


def test_surface_dice_of_shifted_cubes_planes_and_identical_masks():
    a, b = np.zeros((10, 8, 8), bool), np.zeros((10, 8, 8), bool)
    a[1:5, 2:6, 2:6], b[2:6, 2:6, 2:6] = True, True  # shift 1: 36 of 56 surface voxels at 0 on each side
    assert surface_dice(a, b, 1.0, 0.5) == pytest.approx(72 / 112, rel=1e-6)
    assert surface_dice(a, b, 1.0, 1.0) == 1.0
    assert surface_dice(a, a, (0.3, 2.0, 5.0), 0.0) == 1.0
    planes_a, planes_b = np.zeros((9, 5, 5), bool), np.zeros((9, 5, 5), bool)
    planes_a[1], planes_b[7] = True, True  # 6 voxels of 0.5 mm: 3 mm apart, every surface voxel
    assert surface_dice(planes_a, planes_b, (0.5, 1.0, 1.0), 2.9) == 0.0
    assert surface_dice(planes_a, planes_b, (0.5, 1.0, 1.0), 3.0) == 1.0  # within means <=
    assert hd95(planes_a, planes_b, (0.5, 1.0, 1.0)) == pytest.approx(3.0)


def test_surface_metrics_degenerate_cases():
    empty, full = np.zeros((6, 4, 5), bool), np.ones((6, 4, 5), bool)
    one = empty.copy()
    one[2, 1, 3] = True
    diagonal = math.sqrt((6 * 0.5) ** 2 + (4 * 1.0) ** 2 + (5 * 3.0) ** 2)
    assert hd95(empty, empty, (0.5, 1.0, 3.0)) == 0.0
    assert hd95(one, empty, (0.5, 1.0, 3.0)) == pytest.approx(diagonal)
    assert hd95(empty, full, (0.5, 1.0, 3.0)) == pytest.approx(diagonal)
    assert hd95(full, full, 1.0) == 0.0 and hd95(one, one, 1.0) == 0.0
    other = empty.copy()
    other[2, 3, 3] = True  # two single voxels 2 voxels of 1 mm apart
    assert hd95(one, other, (0.5, 1.0, 3.0)) == pytest.approx(2.0)
    assert hd95(np.zeros((3, 4), bool), np.eye(3, 4, dtype=bool), (2.0, 1.0)) == pytest.approx(math.hypot(6, 4))
    assert surface_dice(empty, empty, 1.0, 1.0) == 1.0
    assert surface_dice(one, empty, 1.0, 1.0) == surface_dice(empty, full, 1.0, 5.0) == 0.0
    for value in (hd95(one, full, 1.0), surface_dice(one, full, 1.0, 1.0)):
        assert math.isfinite(value)


def test_dice_score_hand_computed():
    p, t = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    assert dice_score(p, t) == 1.0  # both empty
    p[0, :3], t[0, 1:] = True, True  # |P & T| = 2, |P| = |T| = 3
    assert dice_score(p, t) == pytest.approx(4 / 6)
    assert dice_score(p, np.zeros_like(t)) == 0.0 and dice_score(np.ones((2, 2, 2)), np.ones((2, 2, 2))) == 1.0


def _touching_blocks(width2: int = 4) -> np.ndarray:
    instances = np.zeros((6, 12), int)
    instances[1:5, 1:5], instances[1:5, 5:5 + width2] = 3, 7  # ids need not be consecutive
    return instances


def test_object_f1_hand_computed():
    instances = _touching_blocks()
    merged = instances > 0
    assert object_f1(merged, instances) == 0.0  # one blob, IoU 16/32 = 1/2 with each: not > 0.5
    assert object_f1(merged, instances, iou=0.4) == pytest.approx(2 / 3)  # the blob matches one: 2 / (2 + 0 + 1)
    big = np.zeros((8, 10), int)
    big[1:7, 1:7], big[2:4, 7:9] = 1, 2  # 36 voxels touching 4 voxels
    assert object_f1(big > 0, big) == pytest.approx(2 / 3)  # IoU 36/40 with the big one: TP 1, FN 1
    apart = merged.copy()
    apart[:, 5] = False  # IoU 1 and 12/16
    assert object_f1(apart, instances) == 1.0
    assert object_f1(apart, instances, iou=0.8) == pytest.approx(2 / (2 + 1 + 1))  # only the exact one matches
    extra = apart.copy()
    extra[0, 11] = True  # a stray voxel, diagonal to nothing: one false positive
    assert object_f1(extra, instances) == pytest.approx(4 / 5)


def test_object_f1_degenerate_and_3d():
    empty = np.zeros((3, 4, 5), int)
    assert object_f1(empty > 0, empty) == 1.0
    one = empty.copy()
    one[1, 2, 3] = 4
    assert object_f1(one > 0, one) == 1.0  # one voxel, found
    assert object_f1(empty > 0, one) == 0.0 and object_f1(one > 0, empty) == 0.0
    diag = empty.copy()
    diag[0, 0, 0], diag[1, 1, 1] = 1, 1  # corner-connected: one instance, one component
    assert object_f1(diag > 0, diag) == 1.0


def _f1_reference(pred, instances):
    """Loops: TP = instances with some predicted component of IoU > 0.5 (unique at that level)."""
    comps, n = ndi.label(pred, structure=FULL[pred.ndim])
    ids = [i for i in np.unique(instances) if i > 0]
    tp = sum(any(np.sum((comps == c) & (instances == i)) / np.sum((comps == c) | (instances == i)) > 0.5
                 for c in range(1, n + 1)) for i in ids)
    return 1.0 if n + len(ids) == 0 else 2 * tp / (n + len(ids))


def _split_reference(pred, instances, gap=1):
    comps = ndi.label(pred, structure=FULL[pred.ndim])[0]
    pairs = set()
    for x in np.ndindex(instances.shape):
        for d in itertools.product(range(-gap - 1, gap + 2), repeat=instances.ndim):
            y = tuple(np.add(x, d))
            if all(0 <= c < n for c, n in zip(y, instances.shape, strict=True)):
                a, b = instances[x], instances[y]
                if a and b and a != b:
                    pairs.add((min(a, b), max(a, b)))
    if not pairs:
        return None

    def main(i):
        hits = comps[(instances == i) & pred]
        return None if hits.size == 0 else int(np.argmax(np.bincount(hits)))

    return np.mean([main(a) is not None and main(b) is not None and main(a) != main(b) for a, b in pairs])


@settings(max_examples=60, deadline=None)
@given(arrays(np.int64, (6, 7), elements=st.integers(0, 3)), arrays(np.bool_, (6, 7)))
def test_object_f1_and_split_rate_match_loop_references(instances, pred):
    assert object_f1(pred, instances) == pytest.approx(_f1_reference(pred, instances))
    for gap in (0, 1):
        expected = _split_reference(pred, instances, gap)
        got = touching_split_rate(pred, instances, gap=gap)
        assert (got is None) == (expected is None)
        if expected is not None:
            assert got == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(arrays(np.int64, (5, 6), elements=st.sampled_from([0, 0, 2, 5, 9])),
       st.lists(st.tuples(st.integers(0, 4), st.integers(0, 5)), max_size=6))
def test_object_f1_and_split_rate_near_the_truth_match_loop_references(instances, flips):
    """Predictions a few flipped voxels away from the label: matches and splits happen (random masks rarely)."""
    pred = instances > 0
    for x in flips:
        pred[x] = not pred[x]
    assert object_f1(pred, instances) == pytest.approx(_f1_reference(pred, instances))
    for gap in (0, 1):
        expected, got = _split_reference(pred, instances, gap), touching_split_rate(pred, instances, gap=gap)
        assert (got is None) == (expected is None) and (expected is None or got == pytest.approx(expected))


def test_touching_split_rate_hand_computed():
    instances = _touching_blocks()
    assert touching_split_rate(instances > 0, instances) == 0.0  # merged
    apart = instances > 0
    apart[:, 5] = False
    assert touching_split_rate(apart, instances) == 1.0
    half = apart.copy()
    half[:, 6:] = False  # instance 7 undetected: the pair does not count as split
    assert touching_split_rate(half, instances) == 0.0
    three = _touching_blocks()
    three[1:5, 9:11] = 9  # 3-7 and 7-9 touch, 3-9 do not
    pred = three > 0
    pred[:, 9] = False  # 7 | 9 kept apart, 3 and 7 merged
    assert touching_split_rate(pred, three, gap=0) == 0.5
    corner = np.zeros((4, 4), int)
    corner[0, 0], corner[1, 1] = 1, 2  # touch by a corner only
    assert touching_split_rate(corner > 0, corner) == 0.0  # one 8-connected component
    apart_3d = np.zeros((3, 3, 3), int)
    apart_3d[0, 0, 0], apart_3d[2, 2, 2] = 1, 2
    assert touching_split_rate(apart_3d > 0, apart_3d, gap=0) is None  # no touching pair: not applicable
    assert touching_split_rate(np.zeros((2, 2), bool), np.zeros((2, 2), int)) is None
    assert touching_split_rate(np.zeros(instances.shape, bool), instances) == 0.0  # nothing predicted


def test_touching_split_rate_counts_pairs_across_a_one_voxel_border():
    """Annotated touching objects: two instances with a one-voxel border touch at gap=1 (the default), not at
    gap=0; predicting the label itself keeps them apart (rate 1), bridging the border merges them (rate 0)."""
    instances = np.zeros((4, 9), int)
    instances[:, :4], instances[:, 5:] = 1, 2  # column 4 is the border
    assert touching_split_rate(instances > 0, instances, gap=0) is None
    assert touching_split_rate(instances > 0, instances) == 1.0
    bridged = instances > 0
    bridged[1, 4] = True
    assert touching_split_rate(bridged, instances) == 0.0
    far = np.zeros((4, 9), int)
    far[:, :3], far[:, 5:] = 1, 2  # a border of two voxels
    assert touching_split_rate(far > 0, far) is None and touching_split_rate(far > 0, far, gap=2) == 1.0
    with pytest.raises(ValueError, match="gap: expected an int >= 0"):
        touching_split_rate(far > 0, far, gap=-1)


def test_betti0_error_and_cldice_hand_computed():
    truth = np.zeros((5, 9), bool)
    truth[2] = True
    broken = truth.copy()
    broken[2, 3], broken[2, 6] = False, False  # three pieces
    assert betti0_error(broken, truth) == 2 and betti0_error(truth, truth) == 0
    stair = np.eye(5, dtype=bool)  # a diagonal is one 8-connected component
    assert betti0_error(stair, np.ones((5, 5), bool)) == 0
    assert betti0_error(np.zeros((2, 2, 2), bool), np.ones((2, 2, 2), bool)) == 1
    half = truth.copy()
    half[2, 5:] = False  # T_prec 1, T_sens 5/9
    assert cldice_metric(half, truth) == pytest.approx(2 * (5 / 9) / (1 + 5 / 9))
    assert cldice_metric(truth, truth) == 1.0 and cldice_metric(half, truth) == cldice_metric(truth, half)
    empty = np.zeros_like(truth)
    assert cldice_metric(empty, empty) == 1.0 and cldice_metric(empty, truth) == 0.0


def test_average_precision_and_ece_hand_computed():
    # ranks: pos (P 1), neg, pos (P 2/3), pos (P 3/4), neg -> AP = (1 + 2/3 + 3/4) / 3
    score, truth = np.array([0.9, 0.8, 0.7, 0.6, 0.1]), np.array([1, 0, 1, 1, 0], bool)
    assert average_precision(score, truth) == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    assert expected_calibration_error(np.full(10, 0.25), np.arange(10) < 0) == pytest.approx(0.25)
    # two bins: (0.2 x 5, 1 positive) and (0.8 x 5, 4 positives): calibrated
    prob = np.r_[np.full(5, 0.2), np.full(5, 0.8)]
    assert expected_calibration_error(prob, np.array([1, 0, 0, 0, 0, 1, 1, 1, 1, 0], bool)) == pytest.approx(0.0)


def test_metrics_table_names_kinds_and_order():
    assert list(METRICS) == ["dice", "best_dice", "ap", "hd95", "surface_dice", "ece_raw", "ece", "object_f1",
                             "split_rate", "betti0_error", "cldice"]
    kinds = {m: info.kind for m, info in METRICS.items()}
    assert [m for m, k in kinds.items() if k == "instances"] == ["object_f1", "split_rate"]
    assert [m for m, k in kinds.items() if k == "tubular"] == ["betti0_error", "cldice"]
    assert {m for m, info in METRICS.items() if not info.higher_is_better} == {"hd95", "ece_raw", "ece",
                                                                                 "betti0_error"}
    assert all(info.label and info.doc and len(info.label) <= 16 for info in METRICS.values())
    with pytest.raises(TypeError):
        METRICS["dice"] = METRICS["ap"]


def _volume():
    truth = np.zeros((10, 12, 6), bool)
    truth[2:5, 2:6, 1:4], truth[5:8, 2:6, 1:4] = True, True
    instances = np.zeros(truth.shape, np.int32)
    instances[2:5, 2:6, 1:4], instances[5:8, 2:6, 1:4] = 1, 2  # two touching instances
    prob = np.where(truth, 0.8, 0.1)
    prob[5] = np.where(truth[5], 0.3, 0.1)  # a seam of low probability keeps them apart at 0.5
    return prob, truth, instances


@pytest.mark.parametrize("with_instances, tubular", [(False, False), (True, False), (False, True), (True, True)])
def test_volume_metrics_keys_follow_the_table_and_kind(with_instances, tubular):
    prob, truth, instances = _volume()
    row = volume_metrics(prob, np.sqrt(prob), truth, (1.0, 1.0, 2.0), instances=instances if with_instances else None,
                         tubular=tubular)
    kinds = {"all"} | ({"instances"} if with_instances else set()) | ({"tubular"} if tubular else set())
    assert list(row) == [m for m, info in METRICS.items() if info.kind in kinds]
    assert all(isinstance(v, float) and math.isfinite(v) for v in row.values())


def test_volume_metrics_values_are_the_metrics_of_prob_above_half():
    prob, truth, instances = _volume()
    raw = np.clip(prob + 0.15, 0, 1).astype(np.float16)  # the raw probabilities differ; only ece_raw sees them
    row = volume_metrics(prob.astype(np.float32), raw, truth.astype(np.uint8), (1.0, 1.0, 2.0), instances=instances,
                         tubular=True, tolerance_mm=2.0, ece_bins=5)
    pred = prob > 0.5
    assert row["dice"] == pytest.approx(dice_score(pred, truth)) and row["dice"] == pytest.approx(2 * 60 / (60 + 72))
    assert row["best_dice"] == pytest.approx(best_threshold_dice(prob, truth)[0]) and row["best_dice"] == 1.0
    assert row["ap"] == 1.0  # every positive outranks every negative
    assert row["hd95"] == pytest.approx(hd95(pred, truth, (1.0, 1.0, 2.0)))
    assert row["surface_dice"] == pytest.approx(surface_dice(pred, truth, (1.0, 1.0, 2.0), 2.0))
    assert row["ece"] == pytest.approx(expected_calibration_error(prob, truth, 5))
    assert row["ece_raw"] == pytest.approx(expected_calibration_error(raw.astype(np.float64), truth, 5))
    assert row["object_f1"] == 1.0 and row["split_rate"] == 1.0  # blocks 3 and 2 slices thick: IoU 1 and 2/3
    assert row["betti0_error"] == 1.0 and row["cldice"] == pytest.approx(cldice_metric(pred, truth))
    assert set(DICE_THRESHOLDS) >= {0.5}


def test_volume_metrics_degenerate_volumes():
    empty = np.zeros((5, 6, 4), bool)
    row = volume_metrics(np.full(empty.shape, 0.01), np.full(empty.shape, 0.2), empty, 1.0,
                         instances=np.zeros(empty.shape, int), tubular=True)
    assert row == pytest.approx({"dice": 1.0, "best_dice": 1.0, "ap": 0.0, "hd95": 0.0, "surface_dice": 1.0,
                                 "ece_raw": 0.2, "ece": 0.01, "object_f1": 1.0, "split_rate": None,
                                 "betti0_error": 0.0, "cldice": 1.0})
    full = np.ones((4, 4), bool)
    row = volume_metrics(np.full((4, 4), 0.9), np.full((4, 4), 0.9), full, (1.0, 2.0))
    assert (row["dice"], row["ap"], row["hd95"], row["surface_dice"]) == (1.0, 1.0, 0.0, 1.0)
    missed = volume_metrics(np.full((4, 4), 0.2), np.full((4, 4), 0.2), full, (1.0, 2.0))
    assert missed["hd95"] == pytest.approx(math.hypot(4, 8)) and missed["dice"] == 0.0  # nothing predicted
    one = np.zeros((4, 4), bool)
    one[1, 2] = True
    row = volume_metrics(np.where(one, 0.7, 0.0), np.where(one, 0.7, 0.0), one, (1.0, 2.0))
    assert (row["dice"], row["hd95"], row["surface_dice"]) == (1.0, 0.0, 1.0)


def test_pool_metrics_means_ignoring_none():
    rows = [{"dice": 0.5, "split_rate": None, "object_f1": 1.0, "extra": 2.0},
            {"split_rate": 0.25, "dice": 1.0},
            {"dice": 0.0, "split_rate": None, "object_f1": 0.5}]
    pooled = pool_metrics(rows)
    assert list(pooled) == ["dice", "object_f1", "split_rate", "extra"]  # METRICS order, then the rest
    assert pooled == pytest.approx({"dice": 0.5, "object_f1": 0.75, "split_rate": 0.25, "extra": 2.0})
    assert pool_metrics([{"split_rate": None}, {"split_rate": None}]) == {"split_rate": None}
    assert pool_metrics([]) == {}


@pytest.mark.parametrize("call, error, match", [
    (lambda: dice_score(np.zeros((3, 3)), np.zeros((3, 4))), ValueError, r"truth: expected pred's shape \[3, 3\]"),
    (lambda: dice_score(np.zeros(4), np.zeros(4)), ValueError, r"pred: expected a 2-D or 3-D mask"),
    (lambda: dice_score(np.zeros((2, 2)), np.full((2, 2), 0.5)), ValueError, r"truth: expected a binary mask"),
    (lambda: dice_score(np.zeros((2, 2), "U1"), np.zeros((2, 2))), TypeError, r"pred: expected a bool mask"),
    (lambda: hd95(np.ones((2, 2)), np.ones((2, 2)), (1.0, 1.0, 1.0)), ValueError, r"spacing: expected 2 values"),
    (lambda: hd95(np.ones((2, 2)), np.ones((2, 2)), (1.0, -1.0)), ValueError, r"spacing\[1\]: expected a finite"),
    (lambda: surface_dice(np.ones((2, 2)), np.ones((2, 2)), 1.0, -0.5), ValueError, r"tolerance_mm: expected"),
    (lambda: object_f1(np.ones((2, 2)), np.ones((2, 2))), TypeError, r"instances: expected an integer array"),
    (lambda: object_f1(np.ones((2, 2)), np.ones((2, 3), int)), ValueError, r"instances: expected pred's shape"),
    (lambda: object_f1(np.ones((2, 2)), -np.ones((2, 2), int)), ValueError, r"instances: expected ids >= 0"),
    (lambda: object_f1(np.ones((2, 2)), np.ones((2, 2), int), iou=1.0), ValueError, r"iou: expected a number in"),
    (lambda: touching_split_rate(np.ones((2, 2)), np.ones((2, 2), float)), TypeError, r"instances: expected"),
    (lambda: volume_metrics(np.zeros((2, 2), int), np.zeros((2, 2)), np.zeros((2, 2)), 1.0), TypeError,
     r"prob: expected floating-point probabilities"),
    (lambda: volume_metrics(np.full((2, 2), 1.5), np.zeros((2, 2)), np.zeros((2, 2)), 1.0), ValueError,
     r"prob: expected probabilities in \[0, 1\], got 4 value"),
    (lambda: volume_metrics(np.zeros((2, 2)), np.full((2, 2), np.nan), np.zeros((2, 2)), 1.0), ValueError,
     r"raw_prob: expected probabilities in \[0, 1\]"),
    (lambda: volume_metrics(np.zeros((2, 2)), np.zeros((2, 3)), np.zeros((2, 2)), 1.0), ValueError,
     r"raw_prob: expected the shape \[2, 2\], got \[2, 3\]"),
    (lambda: volume_metrics(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((3, 2)), 1.0), ValueError,
     r"truth: expected prob's shape"),
    (lambda: volume_metrics(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2)), 1.0, ece_bins=0), ValueError,
     r"ece_bins: expected an integer >= 1"),
    (lambda: volume_metrics(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2)), 1.0, tubular="yes"), TypeError,
     r"tubular: expected True or False"),
    (lambda: pool_metrics([{"dice": "0.5"}]), TypeError, r"per_volume\[0\]\['dice'\]: expected a number or None"),
    (lambda: pool_metrics([{"dice": 0.5}, {"dice": float("nan")}]), ValueError, r"per_volume\[1\]\['dice'\]"),
    (lambda: pool_metrics([0.5]), TypeError, r"per_volume\[0\]: expected a \{metric: value\} mapping"),
    (lambda: pool_metrics("dice"), TypeError, r"per_volume: expected a list"),
])
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
