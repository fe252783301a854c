"""focal_gamma of the BCE against MONAI's FocalLoss, a float64 brute force of ``ce * (1 - p_t)^gamma`` (torchvision's
``p_t``, written out), torch's plain BCE at gamma = 0, gradcheck, extremes, fused and properties. The CE is in
test_focal_ce.py."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from monai.losses import FocalLoss

import voxweight.losses.fused as fused_module
from voxweight import VoxelWeightedBCE, voxel_weighted_bce
from voxweight.losses.focal import bce_focal_factor

GAMMAS = [0.5, 1.0, 2.0, 3.5]
BAD_GAMMAS = [(-1, ValueError), (float("nan"), ValueError), (float("inf"), ValueError), (True, TypeError),
              ("2", TypeError), (10**400, ValueError)]


def _data(shape=(2, 3, 4, 5), dtype=torch.float64, soft=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = 2 * torch.randn(shape, generator=g, dtype=torch.float64)
    t = torch.rand(shape, generator=g, dtype=torch.float64)
    return x.to(dtype), (t if soft else (t > 0.6).double()).to(dtype)


def _brute(x, t, gamma, logits=True, pos=1.0, w=1.0, mask=None, reduction="mean"):
    """Float64, by hand: l = w ce (1 - p_t)^g, ce = -(p t log s + (1 - t) log(1 - s)), 1 - p_t = s(1 - t) + (1 - s)t."""
    s = 1 / (1 + torch.exp(-x)) if logits else x
    ce = -(pos * t * torch.log(s) + (1 - t) * torch.log(1 - s))
    losses = w * ce * (s * (1 - t) + (1 - s) * t) ** gamma
    m = torch.ones_like(losses) if mask is None else mask.expand_as(losses).double()
    if reduction == "none":
        return losses * m
    denominator = {"sum": 1.0, "mean": m.sum(), "weighted_mean": (w * (1 + (pos - 1) * t) * m).sum()}[reduction]
    return (losses * m).sum() / denominator


def _view(values, ndim=4):
    return torch.tensor(values, dtype=torch.float64).reshape([1, -1] + [1] * (ndim - 2))


@pytest.mark.parametrize("gamma", GAMMAS)
def test_monai_sigmoid_focal_with_class_weight(gamma):
    """MONAI multiplies its per-class ``weight`` into every element of the channel: our class_weight. Its "mean"
    divides by N*C*S elements as ours does; its "sum" is a sum of per-(n, c) spatial means, ours times 1/S."""
    x, t = _data(dtype=torch.float32)
    cw = [0.5, 2.0, 3.0]
    spatial = 4 * 5
    for reduction, scale in (("sum", spatial), ("mean", 1), ("none", 1)):
        ref = FocalLoss(gamma=gamma, weight=cw, reduction=reduction)(x, t)
        ours = voxel_weighted_bce(x, t, class_weight=cw, focal_gamma=gamma, reduction=reduction)
        torch.testing.assert_close(ours, ref * scale, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_monai_sigmoid_alpha_is_our_pos_weight(gamma):
    """MONAI's per-class alpha weights the positives only: our pos_weight (hard targets); a scalar alpha is
    ``alpha`` on positives, ``1 - alpha`` on negatives: ``(1 - alpha) * ours(pos_weight=alpha / (1 - alpha))``."""
    x, t = _data(dtype=torch.float32, seed=1)
    alpha = [0.25, 4.0, 1.5]
    ref = FocalLoss(gamma=gamma, alpha=alpha, reduction="none")(x, t)
    ours = voxel_weighted_bce(x, t, pos_weight=alpha, focal_gamma=gamma, reduction="none")
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    ref = FocalLoss(gamma=gamma, alpha=0.25, reduction="mean")(x, t)
    ours = 0.75 * voxel_weighted_bce(x, t, pos_weight=0.25 / 0.75, focal_gamma=gamma)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_soft_targets_use_torchvision_p_t_where_monai_differs():
    """Hand-computed: x = 2, t = 0.25, gamma = 2. Ours (torchvision's p_t): 1 - p_t = s (1 - t) + (1 - s) t =
    0.69040; MONAI's exp(gamma logsigmoid(-x (2t - 1))) = sigmoid(1)^2: a different factor for a soft target."""
    x, t = torch.full((1, 1, 1), 2.0, dtype=torch.float64), torch.full((1, 1, 1), 0.25, dtype=torch.float64)
    s = 1 / (1 + math.exp(-2.0))
    miss = s * 0.75 + (1 - s) * 0.25
    ce = -(0.25 * math.log(s) + 0.75 * math.log(1 - s))
    ours = voxel_weighted_bce(x, t, focal_gamma=2.0, reduction="sum")
    assert ours.item() == pytest.approx(ce * miss**2, rel=1e-12)
    monai = FocalLoss(gamma=2.0, reduction="sum")(x, t).item()
    assert monai == pytest.approx(ce / (1 + math.exp(-1.0)) ** 2, rel=1e-6)
    assert abs(monai - ours.item()) > 0.05 * ours.item()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "weighted_mean"])
@pytest.mark.parametrize("logits", [True, False])
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_brute_force_every_weight_and_reduction(reduction, logits, gamma):
    """Float64 brute force with pos/class/sample weights, a voxel map, a mask and soft targets."""
    x, t = _data(soft=True, seed=2)
    inp = x if logits else torch.sigmoid(x).clamp(0.02, 0.98)
    g = torch.Generator().manual_seed(3)
    w = torch.rand(2, 1, 4, 5, generator=g, dtype=torch.float64)
    mask = torch.rand(2, 3, 1, 5, generator=g) > 0.3
    pos, cw, sw = [3.0, 0.5, 1.0], [1.0, 2.0, 0.25], [1.5, 0.5]
    ours = voxel_weighted_bce(inp, t, w, pos_weight=pos, class_weight=cw, sample_weight=sw, mask=mask,
                              logits=logits, reduction=reduction, focal_gamma=gamma)
    full_w = w * _view(cw) * torch.tensor(sw, dtype=torch.float64).view(2, 1, 1, 1)
    ref = _brute(inp, t, gamma, logits, _view(pos), full_w, mask, reduction)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("logits", [True, False])
def test_gamma_zero_is_torch_bit_for_bit(reduction, logits):
    x, t = _data(dtype=torch.float32, soft=True)
    inp = x if logits else torch.sigmoid(x)
    pos = torch.tensor([2.0, 1.0, 0.5]).view(1, 3, 1, 1)
    ours = voxel_weighted_bce(inp, t, pos_weight=[2.0, 1.0, 0.5], focal_gamma=0.0, reduction=reduction, logits=logits)
    if logits:
        ref = F.binary_cross_entropy_with_logits(inp, t, pos_weight=pos, reduction=reduction)
    else:
        k = pos * t + (1 - t)  # torch's BCE with a pos_weight: k * BCE(s, p t / k) (eager.py's docstring)
        ref = F.binary_cross_entropy(inp, pos * t / k, weight=k, reduction=reduction)
    assert torch.equal(ours, ref)
    plain = voxel_weighted_bce(inp, t, pos_weight=[2.0, 1.0, 0.5], reduction=reduction, logits=logits)
    assert torch.equal(voxel_weighted_bce(inp, t, pos_weight=[2.0, 1.0, 0.5], focal_gamma=0, reduction=reduction,
                                          logits=logits), plain)


@pytest.mark.parametrize("logits", [True, False])
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_gradcheck_float64(logits, gamma):
    x, t = _data((2, 2, 3, 3), soft=True, seed=4)
    inp = (x if logits else torch.sigmoid(x).clamp(0.05, 0.95)).requires_grad_()
    w = torch.rand(2, 1, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    mask = w > 0.2

    def fn(i):
        return voxel_weighted_bce(i, t, w, pos_weight=[2.0, 0.5], class_weight=[1.0, 3.0], sample_weight=[1.0, 2.0],
                                  mask=mask, logits=logits, reduction="weighted_mean", focal_gamma=gamma)

    assert torch.autograd.gradcheck(fn, (inp,))


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_target_gradient_at_hard_targets_is_the_formula(gamma):
    """A target that needs a gradient (distillation) and is exactly 0 or 1: the gradient is the float64
    brute force's (autograd through ``ce * (s (1 - t) + (1 - s) t)^g``), never NaN."""
    x, t = _data((2, 2, 5), seed=6)
    t[0, 0, :2] = torch.tensor([0.3, 0.9])
    for logits in (True, False):
        inp = x if logits else torch.sigmoid(x)
        t1, t2 = t.clone().requires_grad_(), t.clone().requires_grad_()
        voxel_weighted_bce(inp, t1, logits=logits, reduction="sum", focal_gamma=gamma).backward()
        _brute(inp, t2, gamma, logits, reduction="sum").backward()
        torch.testing.assert_close(t1.grad, t2.grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("value", [100.0, 1e4])
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_saturated_logits_are_finite(value, gamma):
    """Confident and right: the factor underflows to about 0; confident and wrong: the full loss |x|, slope 1."""
    x = torch.tensor([[[value, -value, -value, value]]], requires_grad=True)
    t = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
    loss = voxel_weighted_bce(x, t, focal_gamma=gamma, reduction="none")
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(x.grad).all()
    torch.testing.assert_close(loss, torch.tensor([[[0.0, 0.0, value, value]]]), rtol=1e-6, atol=1e-30)
    torch.testing.assert_close(x.grad, torch.tensor([[[0.0, 0.0, -1.0, 1.0]]]), rtol=1e-6, atol=1e-30)
    factor = bce_focal_factor(x.detach(), t, gamma, logits=True)
    assert (factor[..., :2] < 1e-15).all() and torch.equal(factor[..., 2:], torch.ones(1, 1, 2))
    p = torch.sigmoid(x.detach()).requires_grad_()  # exactly 0 and 1: torch clamps log at -100
    loss_p = voxel_weighted_bce(p, t, logits=False, focal_gamma=gamma, reduction="none")
    loss_p.sum().backward()
    assert torch.isfinite(p.grad).all()
    torch.testing.assert_close(loss_p, torch.tensor([[[0.0, 0.0, 100.0, 100.0]]]))


def _fused_case():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 2, 6, 6, 6, generator=g)
    t = (torch.rand(2, 2, 6, 6, 6, generator=g) > 0.8).float()
    return x, t, torch.rand(2, 2, 6, 6, 6, generator=g) > 0.3


def _value_and_grad(fused, **kwargs):
    x, t, _ = _fused_case()
    x.requires_grad_()
    loss = voxel_weighted_bce(x, t, fused=fused, **kwargs)
    loss.backward()
    return loss.detach(), x.grad


@pytest.mark.slow
@pytest.mark.parametrize("kwargs", [{}, dict(balance="balanced"), dict(pos_weight=[3.0, 0.5], mask=_fused_case()[2])],
                         ids=["plain", "balance", "pos_weight-mask"])
def test_fused_matches_eager(kwargs):
    if fused_module.compile_failed():
        pytest.skip("torch.compile is unavailable here")
    ref, ref_grad = _value_and_grad(False, focal_gamma=2.0, **kwargs)
    out, grad = _value_and_grad(True, focal_gamma=2.0, **kwargs)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-9)
    assert not fused_module.compile_failed()
    if not kwargs:  # gamma = 0 through the compiled kernel: torch's plain BCE, to rounding
        zero, zero_grad = _value_and_grad(True, focal_gamma=0.0)
        x, t, _ = _fused_case()
        x.requires_grad_()
        ref = F.binary_cross_entropy_with_logits(x, t)
        ref.backward()
        torch.testing.assert_close(zero, ref.detach(), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(zero_grad, x.grad, rtol=1e-5, atol=1e-9)


def test_module_equals_functional_repr_assignment_and_state_dict():
    x, t = _data(dtype=torch.float32, soft=True)
    kwargs = dict(pos_weight=[2.0, 1.0, 3.0], class_weight=[1.0, 0.5, 2.0])
    module = VoxelWeightedBCE(focal_gamma=2, reduction="weighted_mean", **kwargs)
    ref = voxel_weighted_bce(x, t, focal_gamma=2.0, reduction="weighted_mean", **kwargs)
    assert torch.equal(module(x, t), ref)
    assert "focal_gamma=2.0" in repr(module) and "focal_gamma" not in repr(VoxelWeightedBCE())
    with pytest.raises(ValueError, match=r"focal_gamma: expected a finite number >= 0, got -1"):
        module.focal_gamma = -1
    assert module.focal_gamma == 2.0
    other = VoxelWeightedBCE(focal_gamma=2.0, reduction="weighted_mean", pos_weight=[1.0] * 3, class_weight=[1.0] * 3)
    other.load_state_dict(module.state_dict())
    for clone in (other, pickle.loads(pickle.dumps(module))):
        assert torch.equal(clone(x, t), ref)
    module.focal_gamma = 0.5
    assert torch.equal(module(x, t), voxel_weighted_bce(x, t, focal_gamma=0.5, reduction="weighted_mean", **kwargs))


@pytest.mark.parametrize(("gamma", "error"), BAD_GAMMAS, ids=["-1", "nan", "inf", "True", "str", "10**400"])
def test_bad_gamma_names_focal_gamma(gamma, error):
    x, t = _data()
    with pytest.raises(error, match=r"^focal_gamma: expected"):
        voxel_weighted_bce(x, t, focal_gamma=gamma)
    with pytest.raises(error, match=r"^focal_gamma: expected"):
        VoxelWeightedBCE(focal_gamma=gamma)
    module = VoxelWeightedBCE(fused=True)
    with pytest.raises(error, match=r"^focal_gamma: expected"):
        module.focal_gamma = gamma
    assert module.focal_gamma == 0.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.1, 30.0), gammas=st.tuples(st.floats(0, 6), st.floats(0, 6)),
       logits=st.booleans())
def test_property_focal_below_plain_and_non_increasing_in_gamma(seed, scale, gammas, logits):
    """For any logits and soft targets in [0, 1]: 0 <= focal <= plain elementwise, and larger gamma, smaller loss."""
    x, t = _data((2, 2, 7), soft=True, seed=seed)
    t[0, 0, :3] = torch.tensor([0.0, 1.0, 0.5])
    inp = scale * x if logits else torch.sigmoid(scale * x)
    low, high = sorted(gammas)
    kwargs = dict(pos_weight=[2.0, 0.5], logits=logits, reduction="none")
    plain = voxel_weighted_bce(inp, t, **kwargs)
    focal_low = voxel_weighted_bce(inp, t, focal_gamma=low, **kwargs)
    focal_high = voxel_weighted_bce(inp, t, focal_gamma=high, **kwargs)
    slack = 1e-12
    assert (focal_high >= 0).all()
    assert (focal_low <= plain * (1 + slack) + slack).all()
    assert (focal_high <= focal_low * (1 + slack) + slack).all()


@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_half_precision_is_finite_and_close_to_float32(dtype, rtol, reduction):
    x, t = _data((2, 2, 4, 4, 4), dtype=torch.float32, soft=True, seed=8)
    x[0, 0, 0, 0, :2] = torch.tensor([100.0, -1e4])
    half = voxel_weighted_bce(x.to(dtype), t.to(dtype), pos_weight=[3.0, 1.0], focal_gamma=2.0, reduction=reduction)
    ref = voxel_weighted_bce(x.to(dtype).float(), t.to(dtype).float(), pos_weight=[3.0, 1.0], focal_gamma=2.0,
                             reduction=reduction)
    assert half.dtype == dtype and torch.isfinite(half).all()
    torch.testing.assert_close(half.float(), ref, rtol=rtol, atol=1e-3 if reduction == "none" else 0)
