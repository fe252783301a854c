"""The demo's threshold-free and best-threshold metrics, against MONAI's average precision and brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from monai.metrics import compute_average_precision

from voxweight.demo.metrics import DICE_THRESHOLDS, average_precision, best_threshold_dice, overlap_scores
from voxweight.demo.run import evaluate

# scores from a few distinct values, so that ties (several voxels with one score) are common
SCORES = st.integers(4, 60).flatmap(lambda n: st.tuples(
    arrays(np.float64, n, elements=st.sampled_from([-2.0, -0.5, 0.0, 0.25, 1.0, 3.0])),
    arrays(np.bool_, n)))


def _monai_ap(score: np.ndarray, truth: np.ndarray) -> float:
    return float(compute_average_precision(torch.as_tensor(score), torch.as_tensor(truth.astype(np.int64))))


@settings(max_examples=150, deadline=None)
@given(SCORES)
def test_average_precision_matches_monai_with_ties(case):
    """Oracle: MONAI's ``compute_average_precision`` (scikit-learn's definition, ties grouped)."""
    score, truth = case
    if truth.all() or not truth.any():
        return  # MONAI returns NaN there; the degenerate cases are tested below
    assert average_precision(score, truth) == pytest.approx(_monai_ap(score, truth), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(SCORES)
def test_average_precision_ignores_increasing_transforms_and_shape(case):
    """Property: AP depends only on the ranking (logits and their sigmoid give the same value)."""
    score, truth = case
    ap = average_precision(score, truth)
    assert 0.0 <= ap <= 1.0
    assert average_precision(1 / (1 + np.exp(-score)), truth) == pytest.approx(ap, abs=1e-12)
    assert average_precision(3 * score + 7, truth) == pytest.approx(ap, abs=1e-12)
    if len(score) % 2 == 0:
        assert average_precision(score.reshape(2, -1), truth.reshape(2, -1)) == pytest.approx(ap, abs=1e-12)


def test_average_precision_hand_computed():
    # no ties: the mean over the positives of the precision at their rank: ranks 1, 3, 4 -> (1 + 2/3 + 3/4) / 3
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.1])
    truth = np.array([1, 0, 1, 1, 0], bool)
    assert average_precision(score, truth) == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    # a perfect ranking is 1 even far below any threshold; a reversed one gives the precision at each rank
    assert average_precision(np.array([-9.0, -9.5, -20.0]), np.array([1, 1, 0], bool)) == 1.0
    assert average_precision(np.array([3.0, 2.0, 1.0]), np.array([0, 0, 1], bool)) == pytest.approx(1 / 3)
    # one tie of everything: a single point at recall 1 with precision = the foreground fraction
    assert average_precision(np.zeros(8), np.array([1, 0, 0, 0, 1, 0, 0, 0], bool)) == pytest.approx(0.25)
    assert average_precision(np.array([0.3, 0.2]), np.zeros(2, bool)) == 0.0  # no positive, as scikit-learn


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 80).flatmap(lambda n: st.tuples(
    arrays(np.float64, n, elements=st.floats(0, 1) | st.sampled_from(DICE_THRESHOLDS)), arrays(np.bool_, n))))
def test_best_threshold_dice_is_the_brute_force_maximum(case):
    """Oracle: ``overlap_scores(prob > t, truth)`` at every threshold of the grid, the first maximum."""
    prob, truth = case
    dices = [overlap_scores(prob > t, truth)[0] for t in DICE_THRESHOLDS]
    dice, threshold = best_threshold_dice(prob, truth)
    assert dice == pytest.approx(max(dices), abs=1e-12)
    assert threshold == DICE_THRESHOLDS[int(np.argmax(dices))]
    assert dice >= overlap_scores(prob > 0.5, truth)[0] - 1e-12  # 0.5 is on the grid


def test_best_threshold_dice_hand_computed_and_custom_grid():
    prob = np.array([0.45, 0.40, 0.30, 0.05])  # every probability below 0.5: Dice 0 at 0.5
    truth = np.array([1, 1, 0, 0], bool)
    assert overlap_scores(prob > 0.5, truth)[0] == 0.0
    assert best_threshold_dice(prob, truth) == (1.0, 0.3)  # > 0.30 keeps exactly the two positives
    assert best_threshold_dice(prob, truth, thresholds=(0.5, 0.2)) == pytest.approx((0.8, 0.2))  # 2*2 / (3 + 2)
    assert best_threshold_dice(np.zeros(3), np.zeros(3, bool)) == (1.0, 0.05)  # both empty, as overlap_scores


@pytest.mark.parametrize("call, match", [
    (lambda: average_precision(np.zeros(3), np.zeros(4, bool)), r"truth: expected the shape of score \[3\]"),
    (lambda: average_precision(np.array([0.1, np.nan]), np.zeros(2, bool)), r"score: expected finite values"),
    (lambda: best_threshold_dice(np.array([np.inf]), np.ones(1, bool)), r"prob: expected finite values"),
    (lambda: best_threshold_dice(np.zeros(2), np.ones(2, bool), thresholds=()), r"thresholds: expected a non-empty"),
    (lambda: best_threshold_dice(np.zeros(2), np.ones(2, bool), thresholds=(0.5, np.nan)), r"thresholds: expected"),
])
def test_metrics_reject_bad_input_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_metrics_reject_non_numeric_scores():
    with pytest.raises(TypeError, match=r"score: expected a real-valued array"):
        average_precision(np.array(["a", "b"]), np.zeros(2, bool))


def test_evaluate_reports_what_a_fixed_threshold_hides():
    """A model that ranks every voxel right with probabilities below 0.5: Dice 0 at 0.5, AP 1, best Dice 1."""
    label = np.zeros((6, 6, 4), bool)
    label[1:3, 1:4, 1:3] = True
    logits = torch.where(torch.as_tensor(label), -0.5, -3.0)[None, None]  # sigmoid(-0.5) = 0.378
    row = evaluate("shy", logits, [label], 1.0)
    assert (row.dice, row.recall, row.precision, row.boundary_dice) == (0.0, 0.0, 0.0, 0.0)
    assert row.average_precision == 1.0
    assert row.best_dice == 1.0 and 0.05 <= row.best_threshold < float(torch.sigmoid(torch.tensor(-0.5)))
    assert row.max_probability == pytest.approx(float(torch.sigmoid(torch.tensor(-0.5))))
    # with pos_weight 10 to undo, the debiased probabilities shrink; AP does not move (same ranking)
    shifted = evaluate("shy, debiased", logits, [label], 10.0)
    assert shifted.average_precision == 1.0
    assert shifted.max_probability == pytest.approx(float(torch.sigmoid(torch.tensor(-0.5 - np.log(10.0)))))
