"""VoxelWeightedDiceBCE / VoxelWeightedDiceCE against MONAI's DiceCELoss, DiceLoss + BCE and a float64 brute force."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from monai.losses import DeepSupervisionLoss, DiceCELoss, DiceLoss

from voxweight import DeepSupervision, VoxelWeightedDiceBCE, VoxelWeightedDiceCE, voxel_weighted_bce, voxel_weighted_ce

SHAPE = (2, 3, 5, 4, 3)


def _data(seed: int = 0, shape: tuple[int, ...] = SHAPE, dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype) * 2
    t = (torch.rand(shape, generator=g, dtype=dtype) > 0.7).to(dtype)
    y = torch.randint(0, shape[1], (shape[0], 1, *shape[2:]), generator=g)
    w = torch.rand((shape[0], 1, *shape[2:]), generator=g, dtype=dtype) * 3
    return x, t, y, w


def _value_and_grad(fn, x):
    x = x.clone().requires_grad_(True)
    loss = fn(x)
    (grad,) = torch.autograd.grad(loss, x)
    return loss.detach(), grad


def _brute_dice(p, t, w, a=None):
    """Per-(n, c) weighted soft Dice, written out in float64, mean weighted by a."""
    inter, pred, ground = (w * p * t).sum((2, 3, 4)), (w * p).sum((2, 3, 4)), (w * t).sum((2, 3, 4))
    loss = 1 - (2 * inter + 1e-5) / (pred + ground + 1e-5)
    if a is None:
        return loss.mean()
    a = a.reshape(1, -1).expand_as(loss)
    return (a * loss).sum() / a.sum()


@pytest.mark.parametrize(("include_background", "batch", "squared"), list(itertools.product([True, False], repeat=3)))
def test_dice_ce_equals_monai_dice_ce_softmax_onehot(include_background, batch, squared):
    x, _, y, _ = _data()
    kw = dict(include_background=include_background, batch=batch, lambda_dice=0.7, lambda_ce=1.3)
    ours = _value_and_grad(lambda z: VoxelWeightedDiceCE(squared=squared, **kw)(z, y), x)
    ref = DiceCELoss(softmax=True, to_onehot_y=True, squared_pred=squared, **kw)
    torch.testing.assert_close(ours, _value_and_grad(lambda z: ref(z, y), x))


@pytest.mark.parametrize("channels", [1, 3])
def test_dice_bce_equals_monai_dice_plus_torch_bce(channels):
    x, t, _, _ = _data(1, (2, channels, 5, 4, 3))
    pos = torch.arange(1.0, channels + 1, dtype=torch.float64)
    ours = _value_and_grad(lambda z: VoxelWeightedDiceBCE(pos_weight=pos, lambda_dice=0.4, batch=True)(z, t), x)
    bce = torch.nn.BCEWithLogitsLoss(pos_weight=pos.reshape(-1, 1, 1, 1))
    theirs = _value_and_grad(lambda z: 0.4 * DiceLoss(sigmoid=True, batch=True)(z, t) + bce(z, t), x)
    torch.testing.assert_close(ours, theirs)


def test_monai_dice_ce_sigmoid_uses_a_softmax_ce_when_channels_exceed_one():
    """The documented difference: MONAI's CE term under sigmoid=True is softmax CE on a multi-label target."""
    x, t, _, _ = _data(2)
    monai = DiceCELoss(sigmoid=True)(x, t)
    softmax_ce = DiceLoss(sigmoid=True)(x, t) + F.cross_entropy(x, t)
    torch.testing.assert_close(monai, softmax_ce)
    ours = VoxelWeightedDiceBCE()(x, t)
    torch.testing.assert_close(ours, DiceLoss(sigmoid=True)(x, t) + F.binary_cross_entropy_with_logits(x, t))
    assert abs(ours - monai) > 1e-2
    x1, t1 = x[:, :1], t[:, :1]  # one channel: MONAI switches to BCE, and the two agree
    torch.testing.assert_close(VoxelWeightedDiceBCE()(x1, t1), DiceCELoss(sigmoid=True)(x1, t1))


@pytest.mark.parametrize("terms", [("dice", "bce"), ("dice",), ("bce",), ()])
def test_weighted_dice_bce_brute_force(terms):
    x, t, _, w = _data(3)
    a, pos = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64), torch.tensor([3.0, 1.0, 2.0], dtype=torch.float64)
    m = torch.rand(w.shape, generator=torch.Generator().manual_seed(9)) > 0.3
    loss_fn = VoxelWeightedDiceBCE(pos, a, lambda_dice=0.6, lambda_bce=1.5, weight_terms=terms,
                                   bce_reduction="weighted_mean")
    ours = loss_fn(x, t, w if terms else None, mask=m)
    p, wm = torch.sigmoid(x), m.double()
    wd = wm * (w if "dice" in terms else 1)
    wb = (wm * (w if "bce" in terms else 1)).expand_as(x) * a.reshape(1, -1, 1, 1, 1)
    pw = pos.reshape(1, -1, 1, 1, 1)
    element = -(pw * t * torch.log(p) + (1 - t) * torch.log1p(-p))
    bce = (wb * element).sum() / (wb * (1 + (pw - 1) * t)).sum()  # a weighted mean: pos_weight counts too
    torch.testing.assert_close(ours, 0.6 * _brute_dice(p, t, wd, a) + 1.5 * bce)


def test_weighted_dice_ce_brute_force_with_sample_weight():
    x, _, y, w = _data(4)
    a, b = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64), torch.tensor([1.0, 3.0], dtype=torch.float64)
    ours = VoxelWeightedDiceCE(a, include_background=False, ce_reduction="sum")(x, y, w[:, 0], sample_weight=b)
    onehot = F.one_hot(y[:, 0], 3).movedim(-1, 1).double()
    q = torch.softmax(x, 1)
    dice = _brute_dice(q[:, 1:], onehot[:, 1:], w, None)
    per = 1 - (2 * (w * q * onehot).sum((2, 3, 4)) + 1e-5) / ((w * q).sum((2, 3, 4)) + (w * onehot).sum((2, 3, 4))
                                                           + 1e-5)
    rows = (a[1:].reshape(1, -1) * b.reshape(-1, 1))
    dice = (rows * per[:, 1:]).sum() / rows.sum()
    ce = (-(onehot * torch.log(q)).sum(1) * a[y[:, 0]] * w[:, 0] * b.reshape(-1, 1, 1, 1)).sum()
    torch.testing.assert_close(ours, dice + ce)


def test_ignore_index_equals_monai_on_the_cropped_volume():
    x, _, y, _ = _data(5)
    y = y.clone()
    y[:, :, :2] = 255  # two unlabelled slices
    ours = _value_and_grad(lambda z: VoxelWeightedDiceCE(ignore_index=255)(z, y), x)
    ref = DiceCELoss(softmax=True, to_onehot_y=True)
    theirs = _value_and_grad(lambda z: ref(z[:, :, 2:], y[:, :, 2:]), x)
    torch.testing.assert_close(ours[0], theirs[0])
    torch.testing.assert_close(ours[1][:, :, 2:], theirs[1][:, :, 2:])
    assert torch.count_nonzero(ours[1][:, :, :2]) == 0


@pytest.mark.parametrize("cls", [VoxelWeightedDiceBCE, VoxelWeightedDiceCE])
def test_a_zero_one_weight_is_a_crop(cls):
    x, t, y, w = _data(6)
    target = t if cls is VoxelWeightedDiceBCE else y
    keep = torch.zeros_like(w)
    keep[:, :, 1:4] = 1
    kw = {"bce_reduction" if cls is VoxelWeightedDiceBCE else "ce_reduction": "weighted_mean"}
    torch.testing.assert_close(cls(**kw)(x, target, keep), cls(**kw)(x[:, :, 1:4], target[:, :, 1:4]))
    torch.testing.assert_close(cls(**kw)(x, target, 5 * keep), cls(**kw)(x, target, keep))  # scale-invariant


@pytest.mark.parametrize("cls", [VoxelWeightedDiceBCE, VoxelWeightedDiceCE])
@pytest.mark.parametrize("value", [-1e4, 0.0, 1e4])
def test_masked_logits_have_no_effect_at_any_value(cls, value):
    x, t, y, w = _data(7)
    target = t if cls is VoxelWeightedDiceBCE else y
    m = torch.ones_like(w, dtype=torch.bool)
    m[:, :, 0] = False
    x2 = x.clone()
    x2[:, :, 0] = value
    loss, grad = _value_and_grad(lambda z: cls()(z, target, w, mask=m), x2)
    torch.testing.assert_close(loss, cls()(x, target, w, mask=m))
    assert torch.count_nonzero(grad[:, :, 0]) == 0 and grad.isfinite().all()


def test_terms_and_focal_reach_the_sub_losses():
    x, t, y, w = _data(8)
    d = DiceLoss(sigmoid=True)(x, t)
    torch.testing.assert_close(VoxelWeightedDiceBCE(lambda_dice=0.0, focal_gamma=2.0)(x, t, w),
                               voxel_weighted_bce(x, t, w, focal_gamma=2.0))
    torch.testing.assert_close(VoxelWeightedDiceBCE(lambda_bce=0.0)(x, t), d)
    torch.testing.assert_close(VoxelWeightedDiceCE(lambda_dice=0.0, focal_gamma=1.5, label_smoothing=0.1)(x, y, w),
                               voxel_weighted_ce(x, y, w, focal_gamma=1.5, label_smoothing=0.1))


def test_weight_fn_builds_the_map_for_both_terms():
    x, t, _, _ = _data(9)
    fn = lambda target: 1 + 4 * target  # noqa: E731
    torch.testing.assert_close(VoxelWeightedDiceBCE(weight_fn=fn)(x, t), VoxelWeightedDiceBCE()(x, t, fn(t)))


@pytest.mark.parametrize(("x_value", "t_value"), [(100.0, 0.0), (-100.0, 1.0), (100.0, 1.0), (-100.0, 0.0)])
def test_extreme_logits_and_empty_or_full_targets_are_finite(x_value, t_value):
    x = torch.full((1, 2, 3, 3, 3), x_value, requires_grad=True)
    t = torch.full((1, 2, 3, 3, 3), t_value)
    for loss in (VoxelWeightedDiceBCE(fused=False)(x, t, t + 1), VoxelWeightedDiceCE()(x, t.long()[:, 0])):
        (grad,) = torch.autograd.grad(loss, x)
        assert loss.isfinite() and grad.isfinite().all()


def test_gradcheck_float64():
    x, t, y, w = _data(10, (1, 2, 3, 2, 2))
    x = x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: VoxelWeightedDiceBCE(focal_gamma=0.5)(z, t, w), (x,))
    assert torch.autograd.gradcheck(lambda z: VoxelWeightedDiceCE(focal_gamma=2.0, batch=True)(z, y, w), (x,))


def test_state_dict_round_trip_keeps_both_terms_weights():
    x, t, _, w = _data(11)
    loss_fn = VoxelWeightedDiceBCE([1.0, 2.0, 3.0], [0.5, 1.0, 1.5])
    clone = VoxelWeightedDiceBCE([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    clone.load_state_dict(loss_fn.state_dict())
    assert set(loss_fn.state_dict()) == {"dice.class_weight", "bce.pos_weight", "bce.class_weight"}
    torch.testing.assert_close(clone(x.float(), t.float(), w.float()), loss_fn(x.float(), t.float(), w.float()))
    loss_fn.lambda_bce = 2.0
    assert loss_fn.options.lambda_bce == 2.0 and "lambda_bce=2.0" in repr(loss_fn)


def test_deep_supervision_wraps_the_compound_like_monai():
    x, t, _, _ = _data(12, (2, 1, 8, 8, 8))
    outputs = [x, x[:, :, ::2, ::2, ::2].clone()]
    ours = DeepSupervision(VoxelWeightedDiceBCE(), "monai")(outputs, t)
    theirs = DeepSupervisionLoss(DiceCELoss(sigmoid=True))(outputs, t)  # float32: MONAI sums into a float32 0
    torch.testing.assert_close(ours.float(), theirs)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_finite_and_close_to_float32(dtype):
    x, t, y, w = _data(13, dtype=torch.float32)
    for loss_fn, target in ((VoxelWeightedDiceBCE(), t), (VoxelWeightedDiceCE(), y)):
        low = loss_fn(x.to(dtype), target, w.to(dtype))
        assert low.dtype == dtype and low.isfinite()
        torch.testing.assert_close(low.float(), loss_fn(x, target, w), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(lambda_dice=-1.0), ValueError, "lambda_dice"),
    (dict(lambda_dice=0.0, lambda_bce=0.0), ValueError, r"lambda_dice, lambda_bce: expected at least one > 0"),
    (dict(lambda_bce="1"), TypeError, "lambda_bce"),
    (dict(weight_terms=("dice", "bec")), ValueError, r"weight_terms: .*did you mean 'bce'"),
    (dict(weight_terms=3), TypeError, "weight_terms: expected a sequence"),
    (dict(reduction="none"), ValueError, r"reduction: expected one of 'mean', 'sum'"),
    (dict(bce_reduction="none"), ValueError, r"bce_reduction: expected one of 'mean', 'sum', 'weighted_mean'"),
    (dict(focal_gamma=-2.0), ValueError, "focal_gamma"),
])
def test_bad_options_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        VoxelWeightedDiceBCE(**kwargs)


def test_bad_inputs_name_the_argument():
    x, t, y, w = _data(14)
    with pytest.raises(ValueError, match=r"weight: expected None with weight_terms=\(\)"):
        VoxelWeightedDiceBCE(weight_terms=())(x, t, w)
    with pytest.raises(ValueError, match="ignore_index: expected None with probability targets"):
        VoxelWeightedDiceCE(ignore_index=0)(x, t)
    with pytest.raises(ValueError, match="class_weight: expected one value per"):
        VoxelWeightedDiceCE([1.0, 2.0])(x, y)
    with pytest.raises(ValueError, match="ce_reduction"):
        VoxelWeightedDiceCE(ce_reduction="avg")
    with pytest.raises(TypeError, match="mask"):
        VoxelWeightedDiceCE(ignore_index=255)(x, y, mask=w)


@pytest.mark.slow
def test_fused_dice_bce_equals_eager_values_and_gradients():
    x, t, _, w = _data(15, dtype=torch.float32)
    m = torch.rand(w.shape, generator=torch.Generator().manual_seed(3)) > 0.2
    kw = dict(pos_weight=[2.0, 1.0, 3.0], class_weight=[1.0, 0.5, 2.0], bce_reduction="weighted_mean")
    eager = _value_and_grad(lambda z: VoxelWeightedDiceBCE(**kw)(z, t, w, mask=m), x)
    fused = _value_and_grad(lambda z: VoxelWeightedDiceBCE(fused=True, **kw)(z, t, w, mask=m), x)
    torch.testing.assert_close(fused, eager, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [VoxelWeightedDiceBCE, VoxelWeightedDiceCE])
def test_sync_without_a_process_group_changes_nothing(cls):
    x, t, y, w = _data(16)
    target = t if cls is VoxelWeightedDiceBCE else y
    synced = cls(sync=True)
    assert synced.dice.sync and getattr(synced, synced.second).sync
    assert torch.equal(synced(x, target, w), cls()(x, target, w))


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_focal_compounds_equal_monai_dice_focal(gamma):
    """MONAI's DiceFocalLoss(sigmoid=True) is our focal DiceBCE; with softmax=True its focal term stays a sigmoid
    focal BCE on the one-hot target (documented difference): ours is the softmax focal CE."""
    from monai.losses import DiceFocalLoss

    x, t, y, _ = _data(17)
    ours = _value_and_grad(lambda z: VoxelWeightedDiceBCE(focal_gamma=gamma)(z, t), x)
    theirs = _value_and_grad(lambda z: DiceFocalLoss(sigmoid=True, gamma=gamma)(z, t), x)
    torch.testing.assert_close(ours, theirs)
    onehot = F.one_hot(y[:, 0], 3).movedim(-1, 1).double()
    monai_softmax = DiceFocalLoss(softmax=True, to_onehot_y=True, gamma=gamma)(x, y)
    as_ours = VoxelWeightedDiceCE(lambda_ce=0.0)(x, y) + voxel_weighted_bce(x, onehot, focal_gamma=gamma)
    torch.testing.assert_close(monai_softmax, as_ours)
    assert abs(VoxelWeightedDiceCE(focal_gamma=gamma)(x, y) - monai_softmax) > 1e-2
