"""voxweight's nnU-Net losses against nnU-Net's own modules.

Oracles: nnU-Net's ``RobustCrossEntropyLoss`` (per voxel) times the map ``boundary_weights`` gives on each
scale's target, summed with nnU-Net's Dice and its deep-supervision weights; nnU-Net's ``DC_and_BCE_loss``
(regions); voxweight's ``skeleton_recall_loss`` / ``boundary_loss`` functionals on the same tensors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

nnunetv2 = pytest.importorskip("nnunetv2")

from nnunetv2.training.loss.compound_losses import DC_and_BCE_loss, DC_and_CE_loss  # noqa: E402
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper  # noqa: E402
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss  # noqa: E402
from nnunetv2.training.loss.robust_ce_loss import RobustCrossEntropyLoss  # noqa: E402

from voxweight.losses import BoundaryLossSchedule, boundary_loss, skeleton_recall_loss  # noqa: E402
from voxweight.maps import boundary_weights, class_signed_distance, tubed_skeleton  # noqa: E402
from voxweight.nnunet import (  # noqa: E402
    BoundaryLossDiceCE,
    BoundaryWeightedDiceCE,
    SkeletonRecallDiceCE,
    stock_parts,
)

SPACINGS = [(2.0, 1.0, 1.0), (2.0, 2.0, 2.0), (4.0, 4.0, 4.0)]
FACTORS = [4 / 7, 2 / 7, 1 / 7]


def _stock(ignore_label=None, batch_dice=False, factors=FACTORS):
    dice = {"batch_dice": batch_dice, "smooth": 1e-5, "do_bg": False, "ddp": False}
    inner = DC_and_CE_loss(dice, {}, weight_ce=1, weight_dice=1, ignore_label=ignore_label,
                           dice_class=MemoryEfficientSoftDiceLoss)
    return DeepSupervisionWrapper(inner, factors)


def _batch(seed=0, classes=3, ignore=None):
    """Outputs and targets at three scales, nnU-Net's nearest-exact downsampling of one label."""
    g = torch.Generator().manual_seed(seed)
    full = torch.zeros(2, 1, 8, 16, 16)
    full[:, :, 2:6, 2:7, 2:7] = 1
    full[:, :, 2:6, 9:14, 3:8] = 2 if classes > 2 else 1
    full[1, :, :, :, 12:] = 0
    if ignore is not None:
        full[0, :, :, 0:2, :] = ignore
    shapes = [(8, 16, 16), (8, 8, 8), (4, 4, 4)]
    targets = [torch.nn.functional.interpolate(full, size=s, mode="nearest-exact") for s in shapes]
    outputs = [torch.randn(2, classes, *s, generator=g) for s in shapes]
    return outputs, targets


def _oracle_ce(x, y, spacing, ignore=None):
    ce = RobustCrossEntropyLoss(reduction="none", ignore_index=-100 if ignore is None else ignore)
    losses = ce(x, y)  # [B, *spatial]
    ids = y[:, 0].long().numpy()
    counted = np.ones(ids.shape, bool) if ignore is None else ids != ignore
    w = boundary_weights(np.where(counted, ids, 0).astype(np.int32), spacing=spacing, multiclass=True,
                         backend="scipy")
    return (losses * torch.from_numpy(w)).sum() / max(int(counted.sum()), 1)


@pytest.mark.parametrize("ignore", [None, 3])
def test_boundary_ce_is_nnunets_ce_times_the_map_at_every_scale(ignore):
    stock = _stock(ignore_label=ignore)
    inner, factors = stock_parts(stock)
    loss = BoundaryWeightedDiceCE(inner, factors, SPACINGS, regions=False, ignore_label=ignore)
    outputs, targets = _batch(ignore=ignore)
    expected = 0
    for a, x, y, sp in zip(FACTORS, outputs, targets, SPACINGS, strict=True):
        mask = None if ignore is None else y != ignore
        dc = inner.dc(x, y if mask is None else torch.where(mask, y, 0), loss_mask=mask)
        expected = expected + a * (dc + _oracle_ce(x, y, sp, ignore))
    torch.testing.assert_close(loss(outputs, targets), expected)


def test_with_w0_zero_the_loss_is_nnunets_own():
    for ignore in (None, 3):
        stock = _stock(ignore_label=ignore, batch_dice=True)
        loss = BoundaryWeightedDiceCE(*stock_parts(stock), SPACINGS, regions=False, ignore_label=ignore, w0=0.0)
        outputs, targets = _batch(seed=1, ignore=ignore)
        torch.testing.assert_close(loss(outputs, targets), stock(outputs, targets))


def test_an_all_ignored_batch_has_no_ce_as_in_nnunet():
    stock = _stock(ignore_label=3)
    loss = BoundaryWeightedDiceCE(*stock_parts(stock), SPACINGS, regions=False, ignore_label=3)
    outputs, targets = _batch()
    targets = [torch.full_like(t, 3.0) for t in targets]
    torch.testing.assert_close(loss(outputs, targets), stock(outputs, targets))


def test_the_map_moves_the_loss_and_sigma_follows_the_spacing():
    outputs, targets = _batch(seed=2)
    inner, factors = stock_parts(_stock())
    plain = BoundaryWeightedDiceCE(inner, factors, SPACINGS, regions=False, ignore_label=None, w0=0.0)
    mm = BoundaryWeightedDiceCE(inner, factors, SPACINGS, regions=False, ignore_label=None)
    coarse = BoundaryWeightedDiceCE(inner, factors, [tuple(4 * s for s in sp) for sp in SPACINGS], regions=False,
                                    ignore_label=None)
    values = [f(outputs, targets).item() for f in (plain, mm, coarse)]
    assert values[1] > values[0] and values[1] != pytest.approx(values[2])


@pytest.mark.parametrize("ignore", [False, True])
def test_regions_weighted_bce_equals_nnunets_dc_and_bce_with_unit_weights(ignore):
    g = torch.Generator().manual_seed(3)
    dice = {"batch_dice": False, "do_bg": True, "smooth": 1e-5, "ddp": False}
    inner = DC_and_BCE_loss({}, dice, use_ignore_label=ignore, dice_class=MemoryEfficientSoftDiceLoss)
    y = (torch.rand(2, 2 + ignore, 6, 6, 6, generator=g) > 0.6).float()
    x = torch.randn(2, 2, 6, 6, 6, generator=g)
    loss = BoundaryWeightedDiceCE(inner, None, [(1.0, 1.0, 1.0)], regions=True, ignore_label=9 if ignore else None,
                                  w0=0.0)
    torch.testing.assert_close(loss(x, y), inner(x, y))
    weighted = BoundaryWeightedDiceCE(inner, None, [(1.0, 1.0, 1.0)], regions=True,
                                      ignore_label=9 if ignore else None, mode="distance", w0=5.0, sigma=1.0)
    regions = y[:, :2].bool()
    w = torch.from_numpy(boundary_weights(regions.numpy(), mode="distance", w0=5.0, sigma=1.0))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(x, regions.float(), reduction="none") * w
    mask = (1 - y[:, -1:]) if ignore else torch.ones(2, 1, 6, 6, 6)
    ce = (bce * mask).sum() / (mask.sum() if ignore else bce.numel())
    dc = inner.dc(x, regions, loss_mask=mask.bool() if ignore else None)
    torch.testing.assert_close(weighted(x, y), ce + dc)


@pytest.mark.parametrize("ignore", [None, 3])
def test_skeleton_recall_term_equals_voxweights_functional_on_the_same_tensors(ignore):
    stock = _stock(ignore_label=ignore, batch_dice=True)
    inner, factors = stock_parts(stock)
    loss = SkeletonRecallDiceCE(inner, factors, SPACINGS, regions=False, ignore_label=ignore, weight_srec=2.0,
                                batch=True)
    outputs, targets = _batch(seed=4, ignore=ignore)
    ids = targets[0].long()
    kept = torch.ones_like(ids, dtype=torch.bool) if ignore is None else ids != ignore
    skeleton = tubed_skeleton(torch.where(kept, ids, 0).numpy(), multiclass=True)  # the reference's tube
    expected = 0
    for a, x, y in zip(FACTORS, outputs, targets, strict=True):
        s = torch.nn.functional.interpolate(torch.from_numpy(skeleton).float(), size=y.shape[2:],
                                            mode="nearest-exact").long()
        mask = None if ignore is None else y != ignore
        srec = skeleton_recall_loss(x, s, batch=True, smooth=1e-5, mask=mask)
        expected = expected + a * (inner(x, y) + 2.0 * srec)
    torch.testing.assert_close(loss(outputs, targets), expected)


def test_skeleton_recall_refuses_regions():
    with pytest.raises(ValueError, match="regions"):
        SkeletonRecallDiceCE(torch.nn.Identity(), None, [(1.0, 1.0, 1.0)], regions=True, ignore_label=None)


def test_boundary_loss_term_follows_the_schedule_per_epoch():
    stock = _stock()
    inner, factors = stock_parts(stock)
    schedule = BoundaryLossSchedule(step=0.25)
    loss = BoundaryLossDiceCE(inner, factors, SPACINGS, regions=False, ignore_label=None, schedule=schedule)
    outputs, targets = _batch(seed=5)
    values = []
    for epoch in range(3):
        schedule.epoch = epoch
        a, b = schedule.weights()
        expected = 0
        for f, x, y, sp in zip(FACTORS, outputs, targets, SPACINGS, strict=True):
            phi = torch.from_numpy(class_signed_distance(y[:, 0].long().numpy(), num_classes=3, multiclass=True,
                                                         spacing=sp))
            expected = expected + f * (a * inner(x, y) + b * boundary_loss(x, phi))
        values.append(loss(outputs, targets))
        torch.testing.assert_close(values[-1], expected)
    assert values[0] != values[1] != values[2]
    torch.testing.assert_close(values[0], stock(outputs, targets))  # epoch 0: a = 1, b = 0
