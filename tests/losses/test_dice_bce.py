"""The joint Dice + BCE sums (one sigmoid, one gradient buffer) against the two terms computed apart."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from voxweight import VoxelWeightedBCE, VoxelWeightedDice, VoxelWeightedDiceBCE
from voxweight.losses.dice_bce import dice_bce_sums
from voxweight.losses.sums import plain_sums

N, C, SPATIAL = 2, 3, (4, 5, 3)


def _reference(x, t, w_dice, w_bce, m, pos, squared):
    xm = x if m is None else torch.where(m, x, 0.0)
    s = torch.sigmoid(xm)
    keep = torch.ones(()) if m is None else m.double()
    wd = (1 if w_dice is None else w_dice) * keep * torch.ones_like(x)
    wb = (1 if w_bce is None else w_bce) * keep
    inter, pred, ground = plain_sums(s, t, wd, squared)
    q = None if pos is None else pos.reshape(1, -1, 1, 1, 1)
    element = F.binary_cross_entropy_with_logits(xm, t, pos_weight=q, reduction="none")
    return inter, pred, ground, (wb * element).sum((2, 3, 4))


@pytest.mark.parametrize(("w_shape", "same_map", "masked", "pos", "squared"), list(itertools.product(
    [None, (N, 1, *SPATIAL), (N, C, *SPATIAL)], [True, False], [False, True], [False, True], [False, True])))
def test_sums_and_gradient_equal_autograd_of_the_two_terms(w_shape, same_map, masked, pos, squared):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, C, *SPATIAL, generator=g, dtype=torch.float64) * 3
    t = torch.rand(N, C, *SPATIAL, generator=g, dtype=torch.float64)
    w_dice = None if w_shape is None else torch.rand(w_shape, generator=g, dtype=torch.float64)
    w_bce = w_dice if same_map else torch.rand(N, 1, *SPATIAL, generator=g, dtype=torch.float64)
    m = torch.rand(N, 1, *SPATIAL, generator=g) > 0.3 if masked else None
    q = torch.rand(C, generator=g, dtype=torch.float64) * 3 if pos else None
    ours_x, ref_x = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    nan = torch.tensor(float("nan"), dtype=x.dtype)
    ours = dice_bce_sums(ours_x if m is None else torch.where(m, ours_x, nan), t, w_dice, w_bce, m, q, squared)
    ref = _reference(ref_x, t, w_dice, w_bce, m, q, squared)
    torch.testing.assert_close(ours, ref)
    coefficients = [torch.randn(N, C, generator=g, dtype=torch.float64) for _ in range(3)]
    picks = [0, 1, 3]
    grad = torch.autograd.grad([ours[i] for i in picks], ours_x, coefficients)
    torch.testing.assert_close(grad, torch.autograd.grad([ref[i] for i in picks], ref_x, coefficients))


OPTIONS = [
    dict(),
    dict(pos_weight=[2.0, 1.0, 4.0], class_weight=[1.0, 0.5, 2.0], bce_reduction="sum"),
    dict(include_background=False, batch=True, squared=True, weight_terms=("bce",)),
    dict(weight_terms=("dice",), generalized="sudre", lambda_dice=0.3, reduction="sum"),
    dict(alpha=0.3, beta=0.7, lambda_bce=2.0, pos_weight=3.0),
]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("masked", [False, True])
def test_the_compound_equals_its_two_modules_apart(options, masked):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, C, *SPATIAL, generator=g, dtype=torch.float64) * 2
    t = (torch.rand(N, C, *SPATIAL, generator=g) > 0.6).double()
    w = torch.rand(N, 1, *SPATIAL, generator=g, dtype=torch.float64) * 4
    m = torch.rand(N, 1, *SPATIAL, generator=g) > 0.2 if masked else None
    b = torch.tensor([1.0, 2.5], dtype=torch.float64)
    kw = dict(options)
    lambdas = kw.pop("lambda_dice", 1.0), kw.pop("lambda_bce", 1.0)
    terms = kw.pop("weight_terms", ("dice", "bce"))
    bce_kw = {k: kw.pop(k) for k in ("pos_weight", "bce_reduction") if k in kw}
    dice = VoxelWeightedDice(kw.get("class_weight"), **{k: v for k, v in kw.items() if k != "class_weight"})
    bce = VoxelWeightedBCE(bce_kw.get("pos_weight"), kw.get("class_weight"),
                           reduction=bce_kw.get("bce_reduction", "mean"))
    compound = VoxelWeightedDiceBCE(**options)

    def apart(z):
        return (lambdas[0] * dice(z, t, w if "dice" in terms else None, sample_weight=b, mask=m)
                + lambdas[1] * bce(z, t, w if "bce" in terms else None, sample_weight=b, mask=m))

    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ours, ref = compound(x1, t, w, sample_weight=b, mask=m), apart(x2)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, x1), torch.autograd.grad(ref, x2))


def test_float32_extreme_logits_are_finite_and_match_the_terms_apart():
    x = torch.tensor([[[-1e4, -100.0, 0.0, 100.0, 1e4]]], requires_grad=True)
    t = torch.tensor([[[0.0, 1.0, 0.5, 0.0, 1.0]]])
    loss = VoxelWeightedDiceBCE(pos_weight=[3.0])(x, t)
    (grad,) = torch.autograd.grad(loss, x)
    x2 = x.detach().clone().requires_grad_(True)
    ref = VoxelWeightedDice()(x2, t) + VoxelWeightedBCE(pos_weight=[3.0])(x2, t)
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(grad, torch.autograd.grad(ref, x2)[0])
    assert grad.isfinite().all()


@pytest.mark.parametrize("shape", [(0, 3, 4, 5, 3), (2, 3, 0, 5, 3)])
def test_empty_batches_and_volumes_equal_the_terms_apart(shape):
    x = torch.zeros(shape, requires_grad=True)
    t = torch.zeros(shape)
    w = torch.ones(shape[0], 1, *shape[2:])
    for kw in (dict(), dict(batch=True)):
        ours = VoxelWeightedDiceBCE(**kw)(x, t, w, mask=w > 0)
        ref = VoxelWeightedDice(**kw)(x, t, w, mask=w > 0) + VoxelWeightedBCE()(x, t, w, mask=w > 0)
        assert torch.equal(ours, ref) and ours.isfinite()
        (grad,) = torch.autograd.grad(ours, x)
        assert grad.shape == x.shape
