"""LabelStats and pos_weight_from_counts: the seeds' numbers, numpy/torch oracles, degenerate cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from voxweight import LabelStats, pos_weight_from_counts

SEED_004 = [614, 947, 1628, 2743, 663]


def multi_hot(counts: list[int], n: int) -> np.ndarray:
    """[n, C] targets in which class c is positive in exactly counts[c] samples (staggered rows)."""
    target = np.zeros((n, len(counts)), dtype=bool)
    for c, k in enumerate(counts):
        target[(np.arange(k) * 7 + c) % n, c] = True
    assert target.sum(0).tolist() == counts
    return target


def test_seed_000_pos_weight_hand_computed():
    out = pos_weight_from_counts([600, 550, 200, 100], 1000)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([400 / 600, 450 / 550, 4.0, 9.0]))
    assert out.tolist() == pytest.approx([0.667, 0.818, 4, 9], abs=5e-4)


def test_seed_004_image_level_presence_counts():
    stats = LabelStats(5)
    target = multi_hot(SEED_004, 6595)
    stats.update(target[:3000])
    stats.update(torch.from_numpy(target[3000:]))
    assert stats.images == 6595 and stats.images_with.tolist() == SEED_004
    out = stats.pos_weight(level="image")
    torch.testing.assert_close(out, torch.tensor([(6595 - c) / c for c in SEED_004]))
    # The seed's numbers, as posted (truncated to two decimals: 5932 / 663 = 8.947).
    assert out.tolist() == pytest.approx([9.74, 5.96, 3.05, 1.40, 8.94], abs=0.01)
    # [N, C] targets: the voxel level is the same count.
    torch.testing.assert_close(stats.pos_weight(level="voxel"), stats.pos_weight(level="image"))


def test_100_positives_300_negatives_give_3():
    assert pos_weight_from_counts(100, 400).tolist() == [3.0]
    stats = LabelStats(1)
    stats.update(np.r_[np.ones(100), np.zeros(300)].reshape(400, 1))
    assert stats.pos_weight().tolist() == [3.0]


def test_update_matches_numpy_sums(rng):
    target = rng.random((3, 4, 5, 6, 7)) < [[[[[0.5]]], [[[0.1]]], [[[0.02]]], [[[0.0]]]]]
    stats = LabelStats(4)
    stats.update(target)
    assert stats.positives.tolist() == target.sum(axis=(0, 2, 3, 4)).tolist()
    assert stats.images_with.tolist() == target.any(axis=(2, 3, 4)).sum(0).tolist()
    assert (stats.voxels, stats.images) == (3 * 5 * 6 * 7, 3)


def test_update_labels_matches_bincount_and_one_hot(rng):
    labels = rng.integers(0, 4, size=(2, 9, 8, 7))
    labels[1][labels[1] == 3] = 0  # class 3 absent from the second image
    by_map, by_onehot = LabelStats(4), LabelStats(4)
    for item in labels:
        by_map.update_labels(item.astype(np.uint8))
    by_onehot.update(F.one_hot(torch.from_numpy(labels), 4).permute(0, 4, 1, 2, 3))
    assert by_map.positives.tolist() == np.bincount(labels.ravel(), minlength=4).tolist()
    assert by_map.images_with.tolist() == [2, 2, 2, 1]
    assert by_map == by_onehot


def test_update_labels_channel_axis_and_torch_input(rng):
    labels = rng.integers(0, 3, size=(6, 5))
    a, b, c = LabelStats(3), LabelStats(3), LabelStats(3)
    a.update_labels(labels)
    b.update_labels(labels[None])
    c.update_labels(torch.from_numpy(labels).to(torch.int16))
    assert a == b == c
    assert a.positives[0] == np.count_nonzero(labels == 0)  # background is a class


def test_soft_targets_count_fractionally(rng):
    soft = torch.from_numpy(rng.random((2, 3, 4, 4))).float()
    stats = LabelStats(3)
    stats.update(soft)
    expected_pos = soft.double().sum((0, 2, 3))
    np.testing.assert_allclose(stats.positives, expected_pos.numpy(), rtol=1e-12)
    np.testing.assert_allclose(stats.images_with, soft.double().amax((2, 3)).sum(0).numpy(), rtol=1e-12)
    expected_pw = ((32 - expected_pos) / expected_pos).float()
    torch.testing.assert_close(stats.pos_weight(), expected_pw)


def test_merge_equals_one_pass(rng):
    labels = rng.integers(0, 5, size=(6, 4, 4, 4))
    whole, left, right = LabelStats(5), LabelStats(5), LabelStats(5)
    for i, item in enumerate(labels):
        whole.update_labels(item)
        (left if i % 2 else right).update_labels(item)
    assert right.merge(left) is right
    assert right == whole
    with pytest.raises(ValueError, match=r"other: expected num_classes=5, got 4"):
        whole.merge(LabelStats(4))
    with pytest.raises(TypeError, match="other: expected a LabelStats"):
        whole.merge({"positives": [1]})


def test_json_round_trip_is_bit_exact(rng, tmp_path):
    stats = LabelStats(3)
    stats.update(rng.random((2, 3, 5)))
    stats.skipped.append(("bad.nii.gz", "EOFError: truncated"))
    text = stats.to_json(indent=2)
    back = LabelStats.from_json(text)
    assert back == stats and back.positives.tobytes() == stats.positives.tobytes()
    (tmp_path / "s.json").write_text(text)
    assert LabelStats.from_json(tmp_path / "s.json") == stats
    for bad in ("{", '{"format": "other"}', text.replace('"voxels": 10', '"voxels": -1')):
        with pytest.raises(ValueError, match="data"):
            LabelStats.from_json(bad)


def test_absent_class_raises_naming_it_unless_a_policy_is_chosen():
    stats = LabelStats(3)
    stats.update_labels(np.array([0, 0, 0, 1]))
    with pytest.raises(ValueError, match=r"none for class 2 .*max_weight=.*absent='skip'"):
        stats.pos_weight()
    assert stats.pos_weight(absent="skip").tolist() == [pytest.approx(1 / 3), 3.0, 1.0]
    assert stats.pos_weight(max_weight=2.0).tolist() == [pytest.approx(1 / 3), 2.0, 2.0]
    with pytest.raises(ValueError, match=r"none for classes 1, 2"):
        pos_weight_from_counts([5, 0, 0], 10)
    with pytest.raises(ValueError, match="class 2"):
        stats.class_weight()


def test_class_present_everywhere_gets_zero_pos_weight():
    assert pos_weight_from_counts([10, 3], 10).tolist() == [0.0, pytest.approx(7 / 3)]


def test_class_weight_modes_against_formulas():
    stats = LabelStats(3)
    stats.update_labels(np.repeat([0, 1, 2], [70, 20, 10]))
    n, counts = 100, np.array([70, 20, 10])
    torch.testing.assert_close(stats.class_weight("balanced"), torch.tensor(n / (3 * counts), dtype=torch.float32))
    torch.testing.assert_close(stats.class_weight("inverse_frequency"), torch.tensor(n / counts, dtype=torch.float32))
    beta = 0.9
    raw = np.array([(1 - beta) / (1 - beta ** int(k)) for k in counts])  # Cui et al. 2019, Python floats
    effective = stats.class_weight("effective_number", beta=beta)
    torch.testing.assert_close(effective, torch.tensor(raw * 3 / raw.sum(), dtype=torch.float32))
    assert float(effective.sum()) == pytest.approx(3.0)
    assert stats.class_weight("effective_number", beta=0.0).tolist() == [1.0, 1.0, 1.0]  # beta = 0: uniform
    # Voxel-scale counts saturate: beta^n underflows and every weight tends to 1.
    assert pos_weight_from_counts([1], 2).tolist() == [1.0]
    big = LabelStats(2)
    big.add_counts(np.array([10**9, 10**6]))
    assert big.class_weight("effective_number").tolist() == pytest.approx([1.0, 1.0])


def test_image_level_of_segmentation_targets(rng):
    stats = LabelStats(2)
    stats.update_labels(np.zeros((4, 4), dtype=np.int64))
    stats.update_labels(np.eye(4, dtype=np.int64))
    # Background is in both images, class 1 in one: image-level pos_weight 0 and 1.
    assert stats.pos_weight(level="image").tolist() == [0.0, 1.0]
    assert stats.pos_weight(level="voxel").tolist() == [pytest.approx(4 / 28), 7.0]


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda s: s.update(np.zeros((2, 3, 4))), ValueError, r"target: expected shape \[N, 2, \*spatial\]"),
    (lambda s: s.update(np.full((1, 2, 3), 1.5)), ValueError, r"target: expected values in \[0, 1\]"),
    (lambda s: s.update([[0, 1]]), TypeError, "target: expected a numpy array or torch tensor"),
    (lambda s: s.update(np.zeros((1, 2, 0))), ValueError, "at least one voxel"),
    (lambda s: s.update_labels(np.zeros(3, dtype=np.float32)), TypeError, "label_map: expected an integer"),
    (lambda s: s.update_labels(np.array([0, 2])), ValueError, r"label_map: expected class indices in \[0, 1\]"),
    (lambda s: s.update_labels(np.array([-1, 0])), ValueError, "label_map: expected class indices >= 0"),
    (lambda s: s.update_labels(np.zeros((0, 3), dtype=int)), ValueError, "at least one voxel"),
    (lambda s: s.pos_weight(), ValueError, "got no data"),
    (lambda s: s.class_weight("balance"), ValueError, "did you mean 'balanced'"),
    (lambda s: s.class_weight(beta=1.0), ValueError, r"beta: expected a number in \[0, 1\)"),
    (lambda s: s.pos_weight(level="images"), ValueError, "did you mean 'image'"),
    (lambda s: s.pos_weight(absent="ignore"), ValueError, "absent: expected one of"),
    (lambda s: s.pos_weight(max_weight=0), ValueError, "max_weight: expected a finite number > 0"),
])
def test_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call(LabelStats(2))


@pytest.mark.parametrize(("positives", "total", "match"), [
    ([5, 11], 10, r"positives: expected counts <= total, got 11 > 10 for class 1"),
    ([5, -1], 10, "positives: expected finite counts >= 0"),
    ([5, math.nan], 10, "positives: expected finite counts >= 0"),
    ([1, 2], [3, 4, 5], "total: expected a scalar or 2 values"),
    ([], 3, "positives: expected at least one class"),
])
def test_pos_weight_from_counts_rejects_bad_counts(positives, total, match):
    with pytest.raises(ValueError, match=match):
        pos_weight_from_counts(positives, total)


def test_num_classes_validation():
    with pytest.raises(ValueError, match="num_classes: expected a positive int, got 0"):
        LabelStats(0)
    with pytest.raises(TypeError, match="num_classes: expected a positive int"):
        LabelStats(2.0)


def test_weights_plug_into_voxel_weighted_bce():
    import voxweight

    stats = LabelStats(2)
    stats.update(np.array([[1, 0], [0, 0], [0, 1], [0, 0]]))
    logits, target = torch.zeros(4, 2), torch.tensor([[1.0, 0], [0, 0], [0, 1], [0, 0]])
    ours = voxweight.voxel_weighted_bce(logits, target, pos_weight=stats.pos_weight())
    reference = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0, 3.0]))(logits, target)
    torch.testing.assert_close(ours, reference)


@pytest.mark.cuda
def test_update_labels_on_cuda_matches_cpu(rng):
    labels = torch.from_numpy(rng.integers(0, 3, size=(5, 6, 7)))
    cpu, gpu = LabelStats(3), LabelStats(3)
    cpu.update_labels(labels)
    gpu.update_labels(labels.cuda())
    gpu.update(F.one_hot(labels.cuda(), 3).permute(3, 0, 1, 2)[None])
    cpu.update(F.one_hot(labels, 3).permute(3, 0, 1, 2)[None])
    assert cpu == gpu
