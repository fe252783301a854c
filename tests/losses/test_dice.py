"""voxel_weighted_dice / VoxelWeightedDice against MONAI's Dice losses, a float64 brute force and properties."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from monai.losses import DiceLoss, GeneralizedDiceLoss, TverskyLoss

from voxweight.losses.dice import VoxelWeightedDice, voxel_weighted_dice

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


@pytest.mark.parametrize(("include_background", "batch", "squared"), list(itertools.product([True, False], repeat=3)))
def test_sigmoid_equals_monai_dice(include_background, batch, squared):
    x, t, _, _ = _data()
    ours = _value_and_grad(lambda z: voxel_weighted_dice(z, t, include_background=include_background, batch=batch,
                                                        squared=squared, smooth_nr=1e-3, smooth_dr=2e-3), x)
    ref = DiceLoss(sigmoid=True, include_background=include_background, batch=batch, squared_pred=squared,
                   smooth_nr=1e-3, smooth_dr=2e-3)
    theirs = _value_and_grad(lambda z: ref(z, t), x)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize(("include_background", "batch", "channel_axis"),
                         list(itertools.product([True, False], [True, False], [True, False])))
def test_softmax_index_target_equals_monai_to_onehot(include_background, batch, channel_axis):
    x, _, y, _ = _data(1)
    target = y if channel_axis else y[:, 0]
    ours = _value_and_grad(lambda z: voxel_weighted_dice(z, target, activation="softmax",
                                                        include_background=include_background, batch=batch), x)
    ref = DiceLoss(softmax=True, to_onehot_y=True, include_background=include_background, batch=batch)
    theirs = _value_and_grad(lambda z: ref(z, y), x)
    torch.testing.assert_close(ours, theirs)


def test_softmax_probability_target_and_no_activation_equal_monai():
    x, _, y, _ = _data(2)
    onehot = torch.nn.functional.one_hot(y[:, 0], 3).movedim(-1, 1).double()
    ref = DiceLoss(softmax=True)(x, onehot)
    torch.testing.assert_close(voxel_weighted_dice(x, onehot, activation="softmax"), ref)
    probs = torch.softmax(x, 1)
    torch.testing.assert_close(voxel_weighted_dice(probs, y, activation=None), DiceLoss(to_onehot_y=True)(probs, y))


@pytest.mark.parametrize(("activation", "batch", "include_background"),
                         list(itertools.product(["sigmoid", "softmax"], [True, False], [True, False])))
def test_generalized_equals_monai(activation, batch, include_background):
    x, t, y, _ = _data(3)
    t[0, 1] = 0  # a class absent from a sample: MONAI's max-weight rule
    y[1][y[1] == 2] = 0
    target = t if activation == "sigmoid" else y
    ours = _value_and_grad(lambda z: voxel_weighted_dice(z, target, activation=activation, generalized="sudre",
                                                        batch=batch, include_background=include_background), x)
    ref = GeneralizedDiceLoss(sigmoid=activation == "sigmoid", softmax=activation == "softmax",
                              to_onehot_y=activation == "softmax", batch=batch, include_background=include_background)
    theirs = _value_and_grad(lambda z: ref(z, target), x)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize(("activation", "batch"), list(itertools.product(["sigmoid", "softmax"], [True, False])))
def test_tversky_equals_monai(activation, batch):
    x, t, y, _ = _data(4)
    target = t if activation == "sigmoid" else y
    ours = _value_and_grad(lambda z: voxel_weighted_dice(z, target, activation=activation, alpha=0.3, beta=0.7,
                                                        batch=batch), x)
    ref = TverskyLoss(sigmoid=activation == "sigmoid", softmax=activation == "softmax",
                      to_onehot_y=activation == "softmax", alpha=0.3, beta=0.7, batch=batch)
    theirs = _value_and_grad(lambda z: ref(z, target), x)
    torch.testing.assert_close(ours, theirs)


def _brute(x, t, w, m, a, b, *, alpha=0.5, beta=0.5, squared=False, s_nr=1e-5, s_dr=1e-5, reduction="mean"):
    """Per-(n, c) losses by explicit loops over samples and channels, in float64."""
    n_samples, channels = x.shape[:2]
    p = torch.sigmoid(x)
    losses = torch.zeros(n_samples, channels, dtype=torch.float64)
    for n, c in itertools.product(range(n_samples), range(channels)):
        keep = m[n, 0].flatten()
        pv, tv, wv = p[n, c].flatten()[keep], t[n, c].flatten()[keep], w[n, 0].flatten()[keep]
        inter = (wv * pv * tv).sum()
        k = 2 if squared else 1
        if (alpha, beta) == (0.5, 0.5):
            losses[n, c] = 1 - (2 * inter + s_nr) / ((wv * pv**k).sum() + (wv * tv**k).sum() + s_dr)
        else:
            fp, fn = (wv * pv * (1 - tv)).sum(), (wv * (1 - pv) * tv).sum()
            losses[n, c] = 1 - (inter + s_nr) / (inter + alpha * fp + beta * fn + s_dr)
    factor = a.reshape(1, -1) * b.reshape(-1, 1)
    if reduction == "none":
        return factor * losses
    if reduction == "sum":
        return (factor * losses).sum()
    return (factor * losses).sum() / factor.sum()


@pytest.mark.parametrize(("reduction", "tversky", "squared"),
                         [("mean", False, False), ("sum", False, True), ("none", False, False), ("mean", True, False)])
def test_weighted_equals_float64_brute_force(reduction, tversky, squared):
    x, t, _, w = _data(5)
    m = torch.rand(w.shape, generator=torch.Generator().manual_seed(9)) > 0.3
    a, b = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64), torch.tensor([3.0, 1.0], dtype=torch.float64)
    ab = {"alpha": 0.2, "beta": 0.9} if tversky else {}
    ours = voxel_weighted_dice(x, t, w, class_weight=a, sample_weight=b, mask=m, squared=squared,
                               reduction=reduction, **ab)
    torch.testing.assert_close(ours, _brute(x, t, w, m, a, b, squared=squared, reduction=reduction, **ab))


def test_batch_dice_sums_over_the_batch_with_sample_weight_inside():
    x, t, _, w = _data(6)
    b = torch.tensor([2.0, 0.5], dtype=torch.float64)
    p = torch.sigmoid(x)
    wb = w * b.reshape(-1, 1, 1, 1, 1)
    dims = [0, 2, 3, 4]
    ref = 1 - (2 * (wb * p * t).sum(dims) + 1e-5) / ((wb * p).sum(dims) + (wb * t).sum(dims) + 1e-5)
    torch.testing.assert_close(voxel_weighted_dice(x, t, w, sample_weight=b, batch=True, reduction="none"), ref)


def test_nnunet_soft_dice_batch_dice_without_background_hand_computed():
    # nnU-Net's SoftDiceLoss(batch_dice=True, do_bg=False, smooth=1): dc = (2 tp + 1) / (2 tp + fp + fn + 1), and
    # 2 tp + fp + fn = P + T. Foreground channel: tp = 0.8 + 0.6 = 1.4, P = 1.6, T = 3 -> dc = 3.8 / 5.6.
    p = torch.tensor([[[0.2, 0.8], [0.8, 0.2]], [[0.4, 1.0], [0.6, 0.0]]])  # [N=2, C=2, 2 voxels]
    y = torch.tensor([[1, 0], [1, 1]])  # class indices [N, 2 voxels]
    loss = voxel_weighted_dice(p, y, activation=None, batch=True, include_background=False, smooth_nr=1.0,
                               smooth_dr=1.0, reduction="none")
    torch.testing.assert_close(loss, torch.tensor([1 - 3.8 / 5.6]))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), tversky=st.booleans(), batch=st.booleans())
def test_property_losses_in_unit_interval_and_sum_is_sum_of_none(seed, tversky, batch):
    x, t, _, w = _data(seed, shape=(2, 2, 3, 3))
    ab = {"alpha": 0.7, "beta": 0.3} if tversky else {}
    kw = {"class_weight": [1.0, 3.0], "sample_weight": [0.5, 2.0], "batch": batch, **ab}
    none = voxel_weighted_dice(x * 5, t, w, reduction="none", **kw)
    plain = voxel_weighted_dice(x * 5, t, w, reduction="none", batch=batch, **ab)
    assert ((plain >= 0) & (plain <= 1)).all()
    torch.testing.assert_close(voxel_weighted_dice(x * 5, t, w, reduction="sum", **kw), none.sum())


def test_scaling_the_weight_leaves_dice_unchanged():
    x, t, _, w = _data(7)
    for kw in ({}, {"generalized": "sudre"}, {"alpha": 0.1, "beta": 0.9}, {"batch": True}):
        base = voxel_weighted_dice(x, t, w, smooth_nr=0.0, smooth_dr=0.0, **kw)
        torch.testing.assert_close(voxel_weighted_dice(x, t, w * 1234.5, smooth_nr=0.0, smooth_dr=0.0, **kw), base)


def test_zero_one_weight_equals_cropping():
    x, t, y, _ = _data(8)
    w = torch.ones(1, 1, 1, 1, 3, dtype=torch.float64)
    w[..., 2] = 0
    for kw, target in (({}, t), ({"activation": "softmax", "include_background": False}, y),
                       ({"generalized": "sudre", "batch": True}, t)):
        cropped = voxel_weighted_dice(x[..., :2], target[..., :2], **kw)
        torch.testing.assert_close(voxel_weighted_dice(x, target, w, **kw), cropped)


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_masked_logits_have_no_effect_at_any_value(activation):
    x, t, y, _ = _data(9)
    target = t if activation == "sigmoid" else y
    m = torch.ones(SHAPE[0], 1, *SHAPE[2:], dtype=torch.bool)
    m[:, :, :2] = False
    base_value, base_grad = _value_and_grad(lambda z: voxel_weighted_dice(z, target, mask=m, activation=activation), x)
    for value in (-1e4, 0.0, 1e4, 1e30):
        wild = x.clone()
        wild[:, :, :2] = value
        v, g = _value_and_grad(lambda z: voxel_weighted_dice(z, target, mask=m, activation=activation), wild)
        torch.testing.assert_close(v, base_value)
        torch.testing.assert_close(g, base_grad)
        assert g[:, :, :2].abs().max() == 0


@pytest.mark.parametrize("kw", [{}, {"activation": "softmax"}, {"alpha": 0.3, "beta": 0.6}, {"squared": True},
                                {"generalized": "sudre"}, {"batch": True, "include_background": False}])
def test_gradcheck_float64(kw):
    x, t, y, w = _data(10, shape=(2, 3, 3, 2))
    target = y if kw.get("activation") == "softmax" else t
    m = torch.rand(w.shape, generator=torch.Generator().manual_seed(1)) > 0.2
    a = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    x = x.requires_grad_(True)
    w = w.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda z, v: voxel_weighted_dice(z, target, v, class_weight=a, sample_weight=[1.0, 2.0], mask=m, **kw),
        (x, w))


@pytest.mark.parametrize("kw", [{}, {"generalized": "sudre"}, {"alpha": 0.0, "beta": 0.0}, {"squared": True},
                                {"smooth_nr": 0.0, "smooth_dr": 0.0}, {"activation": "softmax"}])
@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_extreme_logits_and_empty_or_full_targets_are_finite(kw, fill):
    x = torch.tensor([-100.0, 100.0]).repeat(2, 3, 4, 2).requires_grad_(True)
    t = torch.full(x.shape, fill)
    if kw.get("activation") == "softmax":
        t = torch.zeros(2, 4, 4, dtype=torch.long) + int(fill)
    for target, weight in ((t, None), (t, torch.zeros(2, 1, 4, 4))):
        loss = voxel_weighted_dice(x, target, weight, **kw)
        (grad,) = torch.autograd.grad(loss, x)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
        assert -1e-4 <= loss.item() <= 1.0


def test_empty_prediction_and_target_without_smoothing_score_perfect():
    x, t = torch.full((1, 2, 8), -1e4), torch.zeros(1, 2, 8)
    assert voxel_weighted_dice(x, t, smooth_nr=0.0, smooth_dr=0.0).item() == 0.0
    assert voxel_weighted_dice(x[:0], t[:0]).item() == 0.0  # empty batch: 0, not NaN


def test_half_precision_is_finite_and_close_to_float32():
    x, t, _, w = _data(11, shape=(1, 2, 64, 64, 32), dtype=torch.float32)
    ref = voxel_weighted_dice(x, t, w * 100)
    half = voxel_weighted_dice(x.half(), t.half(), (w * 100).half())
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), ref, atol=2e-3, rtol=2e-3)


def test_module_equals_functional_and_state_dict_round_trip():
    x, _, y, w = _data(12)
    kw = {"activation": "softmax", "include_background": False, "batch": True, "reduction": "sum"}
    module = VoxelWeightedDice([1.0, 2.0, 3.0], **kw)
    expected = voxel_weighted_dice(x, y, w, class_weight=[1.0, 2.0, 3.0], mask=w > 1, **kw)
    torch.testing.assert_close(module(x.float(), y, w.float(), mask=w > 1), expected.float())
    other = VoxelWeightedDice([0.0, 0.0, 0.0], **kw)
    other.load_state_dict(module.state_dict())
    torch.testing.assert_close(other.class_weight, torch.tensor([1.0, 2.0, 3.0]))
    torch.testing.assert_close(other(x.float(), y, w.float(), mask=w > 1), expected.float())
    maps = VoxelWeightedDice(weight_fn=lambda target: 1 + 4 * target)
    _, t, _, _ = _data(12)
    torch.testing.assert_close(maps(x, t), voxel_weighted_dice(x, t, 1 + 4 * t))
    assert "activation='softmax'" in repr(module) and "class_weight=[3]" in repr(module)


def test_options_are_validated_when_assigned():
    module = VoxelWeightedDice()
    module.alpha = 0.2
    assert module.options.alpha == 0.2
    message = r"generalized: expected one of 'sudre', got 'sudr' \(did you mean 'sudre'\?\)"
    with pytest.raises(ValueError, match=message):
        module.generalized = "sudr"


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda x, t: voxel_weighted_dice(x, t, activation="sigmod"), ValueError, r"activation: .*did you mean 'sigmoid'"),
    (lambda x, t: voxel_weighted_dice(x, t, generalized="sudree"), ValueError, r"generalized: .*did you mean 'sudre'"),
    (lambda x, t: voxel_weighted_dice(x, t, reduction="weighted_mean"), ValueError, r"reduction: expected one of"),
    (lambda x, t: voxel_weighted_dice(x, t, alpha=-0.1, beta=0.2), ValueError, r"alpha: expected a finite number >= 0"),
    (lambda x, t: voxel_weighted_dice(x, t, beta=float("nan")), ValueError, r"beta: expected a finite number >= 0"),
    (lambda x, t: voxel_weighted_dice(x, t, smooth_dr=10**400), ValueError, r"smooth_dr: expected a finite number"),
    (lambda x, t: voxel_weighted_dice(x, t, batch=1), TypeError, r"batch: expected True or False"),
    (lambda x, t: voxel_weighted_dice(x, t, alpha=0.3, squared=True), ValueError, r"squared: expected the default"),
    (lambda x, t: voxel_weighted_dice(x, t, class_weight=[1.0, 2.0]), ValueError,
     r"class_weight: expected one value per channel \(3"),
    (lambda x, t: voxel_weighted_dice(x, t, sample_weight=[1.0]), ValueError, r"sample_weight: expected shape \[2\]"),
    (lambda x, t: voxel_weighted_dice(x, t, torch.ones(2, 5, 4, 3)), ValueError, r"weight: expected shape"),
    (lambda x, t: voxel_weighted_dice(x, t, torch.ones(2, 1, 5, 4, 3) * -1), ValueError, r"weight: expected finite"),
    (lambda x, t: voxel_weighted_dice(x, t, mask=torch.ones(2, 1, 5, 4, 3)), TypeError, r"mask: expected a bool"),
    (lambda x, t: voxel_weighted_dice(x, t[:, :1]), ValueError, r"target: expected the shape of input"),
    (lambda x, t: voxel_weighted_dice(x, t * 2), ValueError, r"target: expected values in \[0, 1\]"),
    (lambda x, t: voxel_weighted_dice(x, t[:, :1], activation="softmax"), TypeError,
     r"target: expected integer class indices"),
    (lambda x, t: voxel_weighted_dice(x, (t[:, :1] * 3).long(), activation="softmax"), ValueError,
     r"target: expected class indices in \[0, 2\]"),
    (lambda x, t: voxel_weighted_dice(x, t, activation=None), ValueError, r"input: expected probabilities"),
    (lambda x, t: voxel_weighted_dice(x[:, :1], t[:, :1], activation="softmax"), ValueError,
     r"activation: expected input with at least 2 channels"),
    (lambda x, t: voxel_weighted_dice(x[:, :1], t[:, :1], include_background=False), ValueError,
     r"include_background: expected True for single-channel input"),
    (lambda x, t: voxel_weighted_dice(x.long(), t), TypeError, r"input: expected a floating-point tensor"),
    (lambda x, t: voxel_weighted_dice(x[0, 0, 0, 0], t), ValueError, r"input: expected shape \[N, C, \*spatial\]"),
    (lambda x, t: VoxelWeightedDice(weight_fn=3), TypeError, r"weight_fn: expected a callable"),
])
def test_bad_input_errors_name_the_argument(call, error, message):
    x, t, _, _ = _data(13, dtype=torch.float32)
    with pytest.raises(error, match=message):
        call(x, t)
