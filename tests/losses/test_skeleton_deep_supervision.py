"""Skeleton Recall in compound use and under DeepSupervision: max pooling against torch's max_pool and scipy's
connected components, DeepSupervision against hand-written sums over pre-resampled scales, and the compound
against the reference trainer's DC_SkelREC_and_CE_loss (MIC-DKFZ/Skeleton-Recall, re-derived below)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from voxweight import VoxelWeightedBCE, VoxelWeightedDiceCE
from voxweight.losses.deep_supervision import DeepSupervision, scale_weights_for
from voxweight.losses.resample import downsample
from voxweight.losses.skeleton_compound import DiceCESkeletonRecall
from voxweight.losses.skeleton_recall import SkeletonRecallLoss, skeleton_recall_loss

from .test_skeleton_recall import reference_recall

SIZES = [(8, 8, 8), (4, 4, 4), (2, 2, 2)]


def _data(n=2, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    outputs = [torch.randn(n, c, *s, generator=g, dtype=torch.float64, requires_grad=True) for s in SIZES]
    target = torch.randint(0, c, (n, 1, 8, 8, 8), generator=g)
    skeleton = torch.where(torch.rand(n, 1, 8, 8, 8, generator=g) > 0.8, target, 0)
    weight = torch.rand(n, 1, 8, 8, 8, generator=g, dtype=torch.float64) + 0.5
    mask = torch.ones(n, 1, 8, 8, 8, dtype=torch.bool)
    mask[0, :, :3] = False  # a slab: the coarsest scale keeps half of sample 0
    return outputs, target, skeleton, weight, mask


def reference_trainer_loss(x, y, skel, *, batch, weight_srec=1.0, ignore=None):
    """DC_SkelREC_and_CE_loss as the reference trainer builds it: CE + memory-efficient soft Dice (softmax, no
    background, smoothing 1e-5, floor 1e-8) + weight_srec * soft skeleton recall; an ignore label masks both
    overlap terms (its voxels set to class 0) and is ignored by the CE."""
    mask = None if ignore is None else y != ignore
    y_dice = y if mask is None else torch.where(mask, y, 0)
    skel = skel if mask is None else torch.where(mask, skel, 0)
    p = torch.softmax(x, 1)[:, 1:]
    onehot = torch.zeros_like(x).scatter(1, y_dice.long(), 1.0)[:, 1:]
    m = 1.0 if mask is None else mask.to(x.dtype)
    axes = tuple(range(2, x.ndim))
    inter, pred, ground = (p * onehot * m).sum(axes), (p * m).sum(axes), (onehot * m).sum(axes)
    if batch:
        inter, pred, ground = inter.sum(0), pred.sum(0), ground.sum(0)
    dc = -((2 * inter + 1e-5) / torch.clamp(ground + pred + 1e-5, min=1e-8)).mean()
    ce = F.cross_entropy(x, y[:, 0].long(), ignore_index=-100 if ignore is None else ignore)
    srec = reference_recall(x, skel, batch=batch, smooth=1e-5, loss_mask=mask)
    return ce + dc + weight_srec * srec


# --- max pooling keeps thin structures -----------------------------------------------------------------------


@pytest.mark.parametrize("factors", [(2, 2, 2), (4, 2, 1), (8, 4, 2)])
def test_max_is_torch_max_pool_for_every_dtype(factors):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 16, 8, 4, generator=g)
    torch.testing.assert_close(downsample(x, factors, "max"), F.max_pool3d(x, factors), rtol=0, atol=0)
    ids = torch.randint(0, 4, (2, 1, 16, 8, 4), generator=g, dtype=torch.int16)
    out = downsample(ids, factors, "max")
    assert out.dtype == torch.int16
    torch.testing.assert_close(out.float(), F.max_pool3d(ids.float(), factors), rtol=0, atol=0)
    on = torch.rand(2, 1, 16, 8, 4, generator=g) > 0.9
    assert torch.equal(downsample(on, factors, "max"), F.max_pool3d(on.float(), factors) > 0)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from([(2, 2, 2), (4, 4, 4), (2, 4, 1)]))
def test_max_pooling_keeps_every_skeleton_voxel_and_connectivity(seed, factors):
    # a 26-connected random walk (a one-voxel-thick skeleton) stays one component at the coarse scale
    rng = np.random.default_rng(seed)
    fine = np.zeros((16, 16, 16), dtype=bool)
    pos = rng.integers(0, 16, 3)
    for _ in range(40):
        fine[tuple(pos)] = True
        pos = np.clip(pos + rng.integers(-1, 2, 3), 0, 15)
    coarse = downsample(torch.from_numpy(fine)[None, None], factors, "max")[0, 0].numpy()
    for v in np.argwhere(fine):
        assert coarse[tuple(v // np.array(factors))]
    assert ndimage.label(coarse, np.ones((3, 3, 3)))[1] == ndimage.label(fine, np.ones((3, 3, 3)))[1] == 1


def test_nearest_loses_a_thin_tube_that_max_keeps():
    skeleton = torch.zeros(1, 1, 8, 8, 8, dtype=torch.long)
    skeleton[0, 0, 0, 0, :] = 1  # a one-voxel line on the border: nearest samples voxel 1 of each pair
    x = torch.zeros(1, 2, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    for mode, signal in (("nearest", False), ("max", True)):
        coarse = downsample(skeleton, [2, 2, 2], mode)
        assert bool(coarse.any()) is signal
        (grad,) = torch.autograd.grad(skeleton_recall_loss(x, coarse), x)
        assert bool(grad.abs().sum() > 0) is signal


# --- DeepSupervision ---------------------------------------------------------------------------------------


def test_recall_under_deep_supervision_is_the_sum_over_max_pooled_scales():
    outputs, _, skeleton, weight, mask = _data()
    onehot = torch.zeros(2, 3, 8, 8, 8, dtype=torch.float64).scatter(1, skeleton, 1.0)
    loss = SkeletonRecallLoss(batch=True)
    ours = DeepSupervision(loss, target_mode="max")(outputs, onehot, weight, mask=mask)
    expected = 0
    for s, x, f in zip(scale_weights_for("nnunet", 3), outputs, [1, 2, 4], strict=True):
        if s:
            expected = expected + s * loss(x, F.max_pool3d(onehot, f) if f > 1 else onehot,
                                           F.avg_pool3d(weight, f) if f > 1 else weight,
                                           mask=mask if f == 1 else -F.max_pool3d(-mask.double(), f) > 0)
    torch.testing.assert_close(ours, expected)


def test_compound_under_deep_supervision_gets_the_skeleton_at_each_scale():
    outputs, target, skeleton, weight, mask = _data()
    loss = DiceCESkeletonRecall.nnunet(weight_srec=2.0)
    ours = DeepSupervision(loss, [0.5, 0.3, 0.2])(outputs, target, weight, mask=mask, skeleton=skeleton)
    expected = 0
    for s, x, f in zip([0.5, 0.3, 0.2], outputs, [1, 2, 4], strict=True):
        t = target if f == 1 else F.interpolate(target.double(), scale_factor=1 / f, mode="nearest-exact").long()
        sk = skeleton if f == 1 else F.max_pool3d(skeleton.double(), f).long()
        w = weight if f == 1 else F.avg_pool3d(weight, f)
        m = mask if f == 1 else -F.max_pool3d(-mask.double(), f) > 0
        expected = expected + s * (loss.dice_ce(x, t, w, mask=m) + 2.0 * loss.srec(x, sk, w, mask=m))
    torch.testing.assert_close(ours, expected)
    ours.backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in outputs)


def test_skeleton_hook_errors_and_unchanged_behaviour_without_it():
    outputs, target, skeleton, _, _ = _data()
    bce = DeepSupervision(VoxelWeightedBCE())
    soft = torch.rand(2, 3, 8, 8, 8, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"skeleton: expected None for a loss whose forward takes no skeleton "
                                        r"\(VoxelWeightedBCE\)"):
        bce(outputs, soft, skeleton=skeleton)
    ds = DeepSupervision(DiceCESkeletonRecall())
    with pytest.raises(ValueError, match=r"skeleton: expected the target's spatial size \[8, 8, 8\]"):
        ds(outputs, target, skeleton=skeleton[..., :4])
    with pytest.raises(TypeError, match=r"skeleton: expected a floating-point skeleton with skeleton_mode='area'"):
        DeepSupervision(DiceCESkeletonRecall(), skeleton_mode="area")(outputs, target, skeleton=skeleton)
    with pytest.raises(ValueError, match=r"skeleton_mode: .* got 'maks' \(did you mean 'max'\?\)"):
        DeepSupervision(DiceCESkeletonRecall(), skeleton_mode="maks")
    with pytest.raises(TypeError, match="skeleton"):  # the compound needs its skeleton
        ds(outputs, target)
    assert "skeleton_mode='max'" in repr(ds)
    binary = (soft > 0.5).double()  # no skeleton: the wrapped loss is called as before, without the keyword
    expected = sum(s * VoxelWeightedBCE()(x, F.interpolate(binary, scale_factor=1 / f, mode="nearest-exact"))
                   for s, x, f in zip(scale_weights_for("nnunet", 3), outputs, [1, 2, 4], strict=True) if s)
    torch.testing.assert_close(bce(outputs, binary), expected)


# --- the compound ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("ignore", [None, 7])
def test_nnunet_compound_equals_the_reference_trainers_loss_plus_offsets(batch, ignore):
    outputs, target, skeleton, _, _ = _data()
    x = outputs[0]
    if ignore is not None:
        target = target.clone()
        target[:, :, :2] = ignore
        skeleton = torch.where(target == ignore, ignore, skeleton)  # a skeleton computed on the ignore label
    ours = DiceCESkeletonRecall.nnunet(batch=batch, weight_srec=0.5)
    if ignore is not None:
        ours = DiceCESkeletonRecall(VoxelWeightedDiceCE(include_background=False, batch=batch, smooth_nr=1e-5,
                                                        smooth_dr=1e-5, ignore_index=ignore),
                                    ours.srec, weight_srec=0.5)
    ref = reference_trainer_loss(x, target, skeleton, batch=batch, weight_srec=0.5, ignore=ignore)
    torch.testing.assert_close(ours(x, target, skeleton=skeleton) - 1 - 0.5, ref, rtol=0, atol=1e-12)


def test_one_voxel_map_feeds_the_terms_weight_terms_names():
    outputs, target, skeleton, weight, mask = _data()
    x, b = outputs[0], torch.tensor([2.0, 1.0], dtype=torch.float64)
    loss = DiceCESkeletonRecall(weight_srec=3.0)
    dice_ce, srec = loss.dice_ce, loss.srec
    torch.testing.assert_close(loss(x, target[:, 0], weight[:, 0], skeleton=skeleton, mask=mask, sample_weight=b),
                               dice_ce(x, target, weight, mask=mask, sample_weight=b)
                               + 3.0 * srec(x, skeleton, weight, mask=mask, sample_weight=b))
    loss.weight_terms = ("dice_ce",)
    torch.testing.assert_close(loss(x, target, weight, skeleton=skeleton),
                               dice_ce(x, target, weight) + 3.0 * srec(x, skeleton))
    built = DiceCESkeletonRecall(weight_fn=lambda t: 1.0 + (t > 0).double())
    torch.testing.assert_close(built(x, target, skeleton=skeleton), loss.dice_ce(x, target, 1.0 + (target > 0))
                               + srec(x, skeleton, 1.0 + (target > 0)))
    loss.weight_srec = 0.0  # the recall term is skipped: its skeleton is not even read
    torch.testing.assert_close(loss(x, target, weight, skeleton=torch.full_like(skeleton, 99)),
                               dice_ce(x, target, weight))


def test_compound_gradcheck_float64():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 3, (2, 1, 3, 4), generator=g)
    w = torch.rand(2, 1, 3, 4, generator=g, dtype=torch.float64)
    loss = DiceCESkeletonRecall.nnunet(batch=True)
    assert torch.autograd.gradcheck(lambda x: loss(x, y, w, skeleton=y), (x,))


def test_compound_errors():
    with pytest.raises(ValueError, match=r"srec: expected a SkeletonRecallLoss with activation='softmax'"):
        DiceCESkeletonRecall(srec=SkeletonRecallLoss(activation="sigmoid", include_background=True))
    with pytest.raises(TypeError, match=r"dice_ce: expected a VoxelWeightedDiceCE"):
        DiceCESkeletonRecall(dice_ce=SkeletonRecallLoss())
    with pytest.raises(ValueError, match=r"weight_terms: .* got 'sreq' \(did you mean 'srec'\?\)"):
        DiceCESkeletonRecall(weight_terms=("dice_ce", "sreq"))
    with pytest.raises(ValueError, match="weight_srec"):
        DiceCESkeletonRecall(weight_srec=-1.0)
    outputs, target, skeleton, _, _ = _data()
    with pytest.raises(ValueError, match=r"skeleton: expected class ids in \[0, 2\]"):
        DiceCESkeletonRecall()(outputs[0], target, skeleton=skeleton + 3)
    assert "weight_srec=1.0" in repr(DiceCESkeletonRecall()) and "SkeletonRecallLoss" in repr(DiceCESkeletonRecall())
