"""The thin-structure metrics and the tubular study.

Oracles: hand-computed 2D and 3D cases (lines whose skeleton is the line itself, so every ratio is a count);
scikit-image's ``measure.label`` (full connectivity) for the component counts; hypothesis properties (symmetry,
range, identity); for the study, the first step's losses recomputed from the initial network with MONAI's
``SoftclDiceLoss`` and a Skeleton Recall written out by hand, and the held-out metrics recomputed from the
trained networks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from monai.losses import SoftclDiceLoss
from skimage.measure import label as sk_label
from skimage.morphology import skeletonize

from voxweight.demo.tubular import (
    CLDICE_ALPHA,
    TUBULAR_VARIANTS,
    TubularScores,
    betti0_error,
    cldice_metric,
    dice_metric,
    run_tubular_study,
    tubular_data,
    tubular_network,
)
from voxweight.demo.vessels import vessel_tree
from voxweight.losses.compound import VoxelWeightedDiceCE
from voxweight.maps.skeleton import tubed_skeleton


def _line(n: int = 10, shape: tuple[int, ...] = (5, 12)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[(2,) * (len(shape) - 1) + (slice(1, 1 + n),)] = True
    return mask


def test_lines_are_their_own_skeletons():
    """The premise of the hand-computed cases below: scikit-image leaves a one-voxel line as it is."""
    for mask in (_line(), _line(6), _line(10, (5, 5, 12))):
        np.testing.assert_array_equal(skeletonize(mask), mask)


def test_a_line_broken_in_two():
    truth = _line()
    pred = truth.copy()
    pred[2, 6] = False  # 9 of the 10 pixels, in two pieces
    assert betti0_error(pred, truth) == 1
    assert cldice_metric(pred, truth) == pytest.approx(2 * 1 * 0.9 / 1.9)  # T_prec = 9/9, T_sens = 9/10
    assert dice_metric(pred, truth) == pytest.approx(18 / 19)


def test_partial_and_spurious_cases_by_hand():
    truth = _line()
    assert cldice_metric(_line(6), truth) == pytest.approx(2 * 0.6 / 1.6)  # T_prec = 1, T_sens = 6/10
    spurious = truth.copy()
    spurious[4, 1:6] = True  # a second, disjoint line of 5: T_prec = 10/15, T_sens = 1
    assert cldice_metric(spurious, truth) == pytest.approx(2 * (2 / 3) / (5 / 3))
    assert betti0_error(spurious, truth) == 1
    truth3, pred3 = _line(10, (5, 5, 12)), _line(6, (5, 5, 12))  # the same in 3D (Lee's method)
    assert cldice_metric(pred3, truth3) == pytest.approx(0.75)
    assert cldice_metric(truth3, pred3) == pytest.approx(0.75)


def test_identical_disjoint_and_empty_masks():
    _, tree = vessel_tree((32, 32, 24), (0.8, 0.8, 1.6), np.random.default_rng(0), branches=7)
    assert cldice_metric(tree, tree) == 1.0 and betti0_error(tree, tree) == 0 and dice_metric(tree, tree) == 1.0
    other = ~ndi.binary_dilation(tree)  # everything at least one voxel away from the tree
    assert other.any() and not (other & (tree > 0)).any()
    assert cldice_metric(other, tree) == 0.0 and dice_metric(other, tree) == 0.0
    empty = np.zeros((6, 6), bool)
    assert cldice_metric(empty, empty) == 1.0 and dice_metric(empty, empty) == 1.0 and betti0_error(empty, empty) == 0
    assert cldice_metric(_line(3, (6, 6)), empty) == 0.0 == cldice_metric(empty, _line(3, (6, 6)))
    assert betti0_error(empty, _line(3, (6, 6))) == 1
    one = np.zeros((5, 5, 5), bool)
    one[2, 2, 2] = True  # one voxel: its own skeleton
    assert cldice_metric(one, one) == 1.0 and betti0_error(one, np.zeros_like(one)) == 1


def test_a_block_thinned_to_nothing_is_its_own_skeleton():
    """scikit-image's Lee thinning leaves nothing of a solid 4^3 cube: the metric then uses the mask itself."""
    cube = np.zeros((8, 8, 8), bool)
    cube[2:6, 2:6, 2:6] = True
    assert not skeletonize(cube).any()
    assert cldice_metric(cube, cube) == 1.0
    line = np.zeros_like(cube)
    line[2:6, 3, 3] = True  # 4 voxels through the cube, their own skeleton
    np.testing.assert_array_equal(skeletonize(line), line)
    # T_prec = |line & cube| / |line| = 1, T_sens = |S(cube) & line| / |S(cube)| = 4 / 64 with S(cube) = cube
    assert cldice_metric(line, cube) == pytest.approx(2 * (1 / 16) / (1 + 1 / 16))


def test_full_connectivity_counts_diagonal_steps_as_one_piece():
    diagonal = np.eye(4, dtype=bool)  # 8-connected, four 4-connected pieces
    assert betti0_error(diagonal, _line(1, (4, 4))) == 0
    corner = np.zeros((3, 3, 3), bool)
    corner[0, 0, 0] = corner[1, 1, 1] = True  # touching at a corner only: one piece with 26-connectivity
    one_voxel = np.zeros((3, 3, 3), bool)
    one_voxel[1, 1, 1] = True
    assert betti0_error(corner, one_voxel) == 0
    assert betti0_error(corner, one_voxel) != abs(sk_label(corner, connectivity=1, return_num=True)[1] - 1)


def test_a_skeleton_keeps_the_components_of_its_tree():
    """Lee's thinning preserves topology, so the tree and its skeleton have the same 26-connected components."""
    _, tree = vessel_tree((40, 40, 24), (0.8, 0.8, 1.6), np.random.default_rng(2))
    skeleton = skeletonize(tree > 0)
    assert betti0_error(skeleton, tree) == 0
    # T_prec = 1 (the skeleton lies in the tree); T_sens = |S(tree) & skeleton| / |S(tree)| = 1 (S(skeleton) = skeleton)
    np.testing.assert_array_equal(skeletonize(skeleton), skeleton)
    assert cldice_metric(skeleton, tree) == 1.0


MASKS_2D = st.tuples(arrays(np.bool_, (6, 7)), arrays(np.bool_, (6, 7)))
MASKS_3D = st.tuples(arrays(np.bool_, (4, 5, 4)), arrays(np.bool_, (4, 5, 4)))


@settings(max_examples=60, deadline=None)
@given(st.one_of(MASKS_2D, MASKS_3D))
def test_properties_of_the_metrics(masks):
    """Symmetry (swapping the masks swaps T_prec and T_sens), range, identity; counts against scikit-image."""
    a, b = masks
    assert cldice_metric(a, b) == pytest.approx(cldice_metric(b, a), abs=1e-12)
    assert 0.0 <= cldice_metric(a, b) <= 1.0 and 0.0 <= dice_metric(a, b) <= 1.0
    assert cldice_metric(a, a) == 1.0 and betti0_error(a, a) == 0 and dice_metric(a, a) == 1.0
    counts = [sk_label(m, connectivity=m.ndim, return_num=True)[1] for m in (a, b)]
    assert betti0_error(a, b) == betti0_error(b, a) == abs(counts[0] - counts[1])
    assert cldice_metric(torch.from_numpy(a), torch.from_numpy(b).int()) == cldice_metric(a, b)


@pytest.mark.parametrize(("pred", "truth", "match"), [
    (np.zeros((4, 4)), np.zeros((4, 5)), "truth: expected pred's shape"),
    (np.full((4, 4), 2), np.zeros((4, 4)), "pred: expected a 2D or 3D binary mask"),
    (np.zeros((4, 4)), np.full((4, 4), 0.5), "truth: expected a 2D or 3D binary mask"),
    (np.zeros(4), np.zeros(4), "pred: expected a 2D or 3D binary mask"),
    (np.zeros((2, 2, 2, 2)), np.zeros((2, 2, 2, 2)), "pred: expected a 2D or 3D binary mask"),
    (np.array([["a"]]), np.zeros((1, 1)), "pred: expected a 2D or 3D binary mask"),
    (np.full((3, 3), np.nan), np.zeros((3, 3)), "pred: expected"),
])
@pytest.mark.parametrize("metric", [cldice_metric, betti0_error, dice_metric])
def test_bad_masks_raise(metric, pred, truth, match):
    with pytest.raises(ValueError, match=match):
        metric(pred, truth)


def test_tubular_data_is_the_trees_of_the_generator():
    """Oracle: ``vessel_tree`` from the same generator, z-scored, and ``tubed_skeleton`` of each label."""
    shape, spacing = (16, 16, 16), (0.8, 0.8, 1.6)
    data = tubular_data(2, shape, spacing, np.random.default_rng(4))
    rng = np.random.default_rng(4)
    for i in range(2):
        image, label = vessel_tree(shape, spacing, rng)
        np.testing.assert_allclose(data.images[i, 0].numpy(), (image - image.mean()) / image.std(), atol=1e-5)
        np.testing.assert_array_equal(data.labels[i, 0].numpy(), label)
        np.testing.assert_array_equal(data.skeletons[i, 0].numpy(), tubed_skeleton(label))
    assert data.images.dtype == torch.float32 and data.labels.dtype == data.skeletons.dtype == torch.int64


SHAPE, SPACING = (24, 24, 16), (0.8, 0.8, 1.6)


@pytest.fixture(scope="module")
def report():
    return run_tubular_study(seeds=(0,), train=2, val=2, epochs=2, shape=SHAPE, spacing=SPACING)


def test_the_report_has_every_variant_once_per_seed_and_finite_scores(report):
    assert report.seeds == (0,) and tuple(report.scores) == TUBULAR_VARIANTS
    assert report.setup["steps_per_epoch"] == 1 and report.seconds > 0
    for variant in TUBULAR_VARIANTS:
        (scores,) = report.scores[variant]
        assert isinstance(scores, TubularScores) and all(math.isfinite(x) for x in scores)
        assert 0 <= scores.dice <= 1 and 0 <= scores.cldice <= 1 and scores.betti0_error >= 0
        assert report.means[variant] == scores  # one seed: the mean is that seed's scores
        assert len(report.losses[variant][0]) == 2 and all(math.isfinite(x) for x in report.losses[variant][0])
    table = report.format_table()
    assert all(v in table for v in TUBULAR_VARIANTS) and "clDice" in table and "Betti-0 error" in table


def test_every_variant_starts_from_the_same_weights_and_ends_elsewhere(report):
    start = tubular_network(0).state_dict()
    finals = []
    for variant in TUBULAR_VARIANTS:
        (initial,) = report.initial[variant]
        assert all(torch.equal(initial[k], start[k]) for k in start)
        finals.append(torch.cat([p.detach().flatten() for p in report.nets[variant][0].parameters()]))
    flat_start = torch.cat([p.detach().flatten() for p in tubular_network(0).parameters()])
    assert all(not torch.equal(f, flat_start) for f in finals)
    assert not torch.equal(finals[0], finals[1]) and not torch.equal(finals[0], finals[2])
    assert not torch.equal(finals[1], finals[2])


def test_the_first_step_uses_each_variants_loss(report):
    """Oracle: the first step's loss recomputed from ``tubular_network(0)`` on the whole training set (2 volumes,
    batch 2: the first batch is all of it, and every term is a mean over samples, so its order does not matter):
    Dice + CE; plus 1 - mean recall of the tubed skeleton (written out); plus alpha times MONAI's clDice."""
    data = tubular_data(2, SHAPE, SPACING, np.random.default_rng(0))
    with torch.no_grad():
        logits = tubular_network(0)(data.images)
    dice_ce = VoxelWeightedDiceCE(include_background=False)(logits, data.labels)
    fg, skel = torch.softmax(logits, 1)[:, 1:], (data.skeletons == 1).float()
    recall = ((fg * skel).sum((1, 2, 3, 4)) + 1) / (skel.sum((1, 2, 3, 4)) + 1)
    # MONAI adds smooth=1e-4 (> 0 required) to the harmonic mean's denominator, the study 0: a ~1e-5 difference
    monai_cldice = SoftclDiceLoss(iter_=3, smooth_nr=1.0, smooth_dr=1.0, smooth=1e-4)(fg, data.labels.float())
    first = {v: report.losses[v][0][0] for v in TUBULAR_VARIANTS}
    assert first["dice_ce"] == pytest.approx(float(dice_ce), rel=1e-5)
    assert first["dice_ce_skelrec"] == pytest.approx(float(dice_ce + 1 - recall.mean()), rel=1e-5)
    assert first["dice_ce_cldice"] == pytest.approx(float(dice_ce + CLDICE_ALPHA * monai_cldice), abs=1e-4)


def test_the_scores_are_the_metrics_of_the_trained_networks(report):
    rng = np.random.default_rng(0)
    tubular_data(2, SHAPE, SPACING, rng)  # the training trees come first
    held_out = tubular_data(2, SHAPE, SPACING, rng)
    truth = held_out.labels[:, 0].numpy() == 1
    for variant in TUBULAR_VARIANTS:
        with torch.no_grad():
            pred = report.nets[variant][0](held_out.images).argmax(1).numpy() == 1
        expected = [np.mean([f(p, t) for p, t in zip(pred, truth, strict=True)])
                    for f in (dice_metric, cldice_metric, betti0_error)]
        assert report.scores[variant][0] == pytest.approx(expected, abs=1e-6)


def test_the_study_is_deterministic_per_seed(report):
    again = run_tubular_study(seeds=(0,), train=2, val=2, epochs=2, shape=SHAPE, spacing=SPACING)
    assert again.losses == report.losses and again.scores == report.scores


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"seeds": ()}, TypeError, "seeds: expected a non-empty sequence"),
    ({"seeds": (0.5,)}, TypeError, "seeds: expected"),
    ({"shape": (24, 24, 18)}, ValueError, "shape: expected 3 integers >= 8, multiples of 4"),
    ({"shape": (24, 24)}, ValueError, "shape: expected 3 integers"),
    ({"epochs": 0}, ValueError, "epochs"),
    ({"train": 1.5}, TypeError, "train"),
    ({"lr": 0.0}, ValueError, "lr"),
    ({"spacing": (1.0, -1.0, 1.0)}, ValueError, "spacing"),
])
def test_bad_study_arguments_raise(kwargs, error, match):
    args = {"seeds": (0,), "train": 1, "val": 1, "epochs": 1, "shape": (16, 16, 16), **kwargs}
    with pytest.raises(error, match=match):
        run_tubular_study(**args)
