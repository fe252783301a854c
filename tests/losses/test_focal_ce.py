"""focal_gamma of the cross-entropy against MONAI's softmax FocalLoss, a float64 brute force of
``sum_c a_c p_c (-(1 - q_c)^gamma log q_c)``, torch's cross-entropy at gamma = 0, gradcheck, extremes and
properties. The BCE is in test_focal.py."""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from monai.losses import FocalLoss

from voxweight import VoxelWeightedCE, voxel_weighted_ce

C = 3
GAMMAS = [0.5, 1.0, 2.0, 3.5]
BAD_GAMMAS = [(-1, ValueError), (float("nan"), ValueError), (float("inf"), ValueError), (True, TypeError),
              ("2", TypeError), (10**400, ValueError)]


def _data(spatial=(4, 5), dtype=torch.float64, seed=0, n=2):
    g = torch.Generator().manual_seed(seed)
    x = 2 * torch.randn(n, C, *spatial, generator=g, dtype=torch.float64)
    y = torch.randint(0, C, (n, *spatial), generator=g)
    p = torch.softmax(torch.randn(n, C, *spatial, generator=g, dtype=torch.float64), dim=1)
    return x.to(dtype), y, p.to(dtype)


def _brute(x, target, gamma, a=None, eps=0.0, w=None, counted=None, reduction="mean"):
    """Float64, by hand: l = w sum_c a_c p'_c (-(1 - q_c)^g log q_c), p' = (1 - eps) p + eps / C, q = softmax."""
    e = torch.exp(x - x.amax(dim=1, keepdim=True))
    q = e / e.sum(dim=1, keepdim=True)
    index = not target.is_floating_point()
    p = F.one_hot(target.clamp(0, C - 1), C).movedim(-1, 1).double() if index else target
    av = torch.ones(C, dtype=torch.float64) if a is None else torch.tensor(a, dtype=torch.float64)
    av = av.reshape([1, C] + [1] * (x.ndim - 2))
    losses = -(av * ((1 - eps) * p + eps / C) * (1 - q) ** gamma * torch.log(q)).sum(dim=1)
    w = torch.ones_like(losses) if w is None else w.expand_as(losses)
    m = torch.ones_like(losses) if counted is None else counted.double()
    if reduction == "none":
        return losses * w * m
    denominator = {"sum": 1.0, "mean": m.sum(), "weighted_mean": (w * (av * p).sum(dim=1) * m).sum()}[reduction]
    return (losses * w * m).sum() / denominator


@pytest.mark.parametrize("gamma", GAMMAS)
def test_monai_softmax_focal_with_class_weight(gamma):
    """MONAI's class-c term with one-hot targets is ``weight_c (-(1 - q_c)^g log q_c)``: ours with class_weight,
    summed over its channel axis. Its "sum" sums per-(n, c) spatial means (ours / S); its "mean" divides by
    N*C*S elements where ours divides by N*S voxels (ours / C); its per-class alpha is the same class weight."""
    x, y, _ = _data(dtype=torch.float32)
    cw = [0.5, 2.0, 3.0]
    spatial = 4 * 5
    for reduction, relation in (("none", lambda r: r.sum(dim=1)), ("sum", lambda r: r * spatial),
                                ("mean", lambda r: r * C)):
        ref = FocalLoss(gamma=gamma, weight=cw, reduction=reduction, use_softmax=True, to_onehot_y=True)(
            x, y.unsqueeze(1))
        ours = voxel_weighted_ce(x, y, class_weight=cw, focal_gamma=gamma, reduction=reduction)
        torch.testing.assert_close(ours, relation(ref), rtol=1e-5, atol=1e-6)
    ref = FocalLoss(gamma=gamma, alpha=cw, reduction="none", use_softmax=True, to_onehot_y=True)(x, y.unsqueeze(1))
    ours = voxel_weighted_ce(x, y, class_weight=cw, focal_gamma=gamma, reduction="none")
    torch.testing.assert_close(ours, ref.sum(dim=1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_monai_ignore_index_mean_counts_kept_voxels(gamma):
    """With ignore_index, MONAI's "mean" divides by the kept voxels (not times C): our "mean" exactly."""
    x, y, _ = _data(dtype=torch.float32, seed=1)
    y[0, :2] = 7
    ref = FocalLoss(gamma=gamma, weight=[1.0, 2.0, 0.5], use_softmax=True, to_onehot_y=True, ignore_index=7)(
        x, y.unsqueeze(1))
    ours = voxel_weighted_ce(x, y, class_weight=[1.0, 2.0, 0.5], ignore_index=7, focal_gamma=gamma)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "weighted_mean"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("kind", ["index", "probabilities"])
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_brute_force_every_option_and_reduction(reduction, smoothing, kind, gamma):
    """Float64 brute force: class weights, a voxel map, sample weights, a mask, ignore_index (index targets)."""
    x, y, p = _data(seed=2)
    g = torch.Generator().manual_seed(3)
    w = torch.rand(2, 1, 5, generator=g, dtype=torch.float64)
    mask = torch.rand(2, 4, 5, generator=g) > 0.25
    a, sw = [0.5, 2.0, 3.0], [1.5, 0.25]
    if kind == "index":
        y[1, 0] = 255
        target, counted, ignore = y, mask & (y != 255), 255
    else:
        target, counted, ignore = p, mask, None
    ours = voxel_weighted_ce(x, target, w, class_weight=a, sample_weight=sw, mask=mask, ignore_index=ignore,
                             label_smoothing=smoothing, reduction=reduction, focal_gamma=gamma)
    full_w = w * torch.tensor(sw, dtype=torch.float64).view(2, 1, 1)
    ref = _brute(x, target, gamma, a, smoothing, full_w, counted, reduction)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("kind", ["index", "probabilities"])
def test_gamma_zero_is_torch_bit_for_bit(smoothing, kind):
    x, y, p = _data(dtype=torch.float32, seed=4)
    target = y if kind == "index" else p
    a = torch.tensor([0.5, 2.0, 3.0])
    ours = voxel_weighted_ce(x, target, class_weight=a, label_smoothing=smoothing, reduction="none", focal_gamma=0.0)
    assert torch.equal(ours, F.cross_entropy(x, target, weight=a, label_smoothing=smoothing, reduction="none"))
    for reduction in ("mean", "sum", "weighted_mean"):
        kwargs = dict(class_weight=a, label_smoothing=smoothing, reduction=reduction)
        plain = voxel_weighted_ce(x, target, **kwargs)
        assert torch.equal(voxel_weighted_ce(x, target, focal_gamma=0, **kwargs), plain)
    if kind == "index":  # torch's "mean" with a class weight divides by sum a[y]: our "weighted_mean"
        ours = voxel_weighted_ce(x, y, class_weight=a, label_smoothing=smoothing, reduction="weighted_mean",
                                 focal_gamma=0.0)
        torch.testing.assert_close(ours, F.cross_entropy(x, y, weight=a, label_smoothing=smoothing))


@pytest.mark.parametrize("kind", ["index", "probabilities"])
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_gradcheck_float64(kind, gamma):
    x, y, p = _data(spatial=(3, 2), seed=5)
    y[0, 0, 0] = 255
    index = kind == "index"
    w = torch.rand(2, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(6))

    def fn(i):
        return voxel_weighted_ce(i, y if index else p, w, class_weight=[1.0, 3.0, 0.5], sample_weight=[1.0, 2.0],
                                 mask=w > 0.1, ignore_index=255 if index else None, label_smoothing=0.1,
                                 reduction="weighted_mean", focal_gamma=gamma)

    assert torch.autograd.gradcheck(fn, (x.requires_grad_(),))


@pytest.mark.parametrize("value", [100.0, 1e4])
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_saturated_logits_are_finite(value, gamma):
    """Logits (+v, -v, -v): class 0 sure and right gives about 0; class 1 sure and wrong gives the full 2v."""
    x = torch.tensor([[[value, value], [-value, -value], [-value, -value]]], requires_grad=True)
    y = torch.tensor([[0, 1]])
    loss = voxel_weighted_ce(x, y, focal_gamma=gamma, reduction="none")
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(x.grad).all()
    torch.testing.assert_close(loss, torch.tensor([[0.0, 2 * value]]), rtol=1e-6, atol=1e-30)
    torch.testing.assert_close(x.grad, torch.tensor([[[0.0, 1.0], [0.0, -1.0], [0.0, 0.0]]]), rtol=1e-6, atol=1e-30)
    x.grad = None
    smoothed = voxel_weighted_ce(x, y, focal_gamma=gamma, label_smoothing=0.1, class_weight=[1.0, 5.0, 2.0])
    smoothed.backward()
    assert torch.isfinite(smoothed) and torch.isfinite(x.grad).all()


def test_module_equals_functional_repr_assignment_and_state_dict():
    x, y, _ = _data(dtype=torch.float32, seed=7)
    y[0, 0] = 255
    kwargs = dict(ignore_index=255, label_smoothing=0.1, reduction="weighted_mean")
    module = VoxelWeightedCE(class_weight=[0.5, 1.0, 4.0], focal_gamma=2, **kwargs)
    ref = voxel_weighted_ce(x, y, class_weight=[0.5, 1.0, 4.0], focal_gamma=2.0, **kwargs)
    assert torch.equal(module(x, y), ref)
    assert "focal_gamma=2.0" in repr(module) and "focal_gamma" not in repr(VoxelWeightedCE())
    with pytest.raises(ValueError, match=r"focal_gamma: expected a finite number >= 0, got -1"):
        module.focal_gamma = -1
    assert module.focal_gamma == 2.0
    other = VoxelWeightedCE(class_weight=[1.0, 1.0, 1.0], focal_gamma=2.0, **kwargs)
    other.load_state_dict(module.state_dict())
    for clone in (other, pickle.loads(pickle.dumps(module))):
        assert torch.equal(clone(x, y), ref)
    module.focal_gamma = 0.5
    assert torch.equal(module(x, y), voxel_weighted_ce(x, y, class_weight=[0.5, 1.0, 4.0], focal_gamma=0.5, **kwargs))


@pytest.mark.parametrize(("gamma", "error"), BAD_GAMMAS, ids=["-1", "nan", "inf", "True", "str", "10**400"])
def test_bad_gamma_names_focal_gamma(gamma, error):
    x, y, _ = _data()
    with pytest.raises(error, match=r"^focal_gamma: expected"):
        voxel_weighted_ce(x, y, focal_gamma=gamma)
    with pytest.raises(error, match=r"^focal_gamma: expected"):
        VoxelWeightedCE(focal_gamma=gamma)
    module = VoxelWeightedCE(focal_gamma=1.0)
    with pytest.raises(error, match=r"^focal_gamma: expected"):
        module.focal_gamma = gamma
    assert module.focal_gamma == 1.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.1, 30.0), gammas=st.tuples(st.floats(0, 6), st.floats(0, 6)),
       probabilities=st.booleans(), smoothing=st.sampled_from([0.0, 0.3]))
def test_property_focal_below_plain_and_non_increasing_in_gamma(seed, scale, gammas, probabilities, smoothing):
    """For any logits and targets: 0 <= focal <= plain per voxel, and larger gamma, smaller loss."""
    x, y, p = _data(spatial=(6,), seed=seed)
    target = p if probabilities else y
    low, high = sorted(gammas)
    kwargs = dict(class_weight=[0.5, 2.0, 1.0], label_smoothing=smoothing, reduction="none")
    plain = voxel_weighted_ce(scale * x, target, **kwargs)
    focal_low = voxel_weighted_ce(scale * x, target, focal_gamma=low, **kwargs)
    focal_high = voxel_weighted_ce(scale * x, target, focal_gamma=high, **kwargs)
    slack = 1e-12
    assert (focal_high >= 0).all()
    assert (focal_low <= plain * (1 + slack) + slack).all()
    assert (focal_high <= focal_low * (1 + slack) + slack).all()


@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)])
@pytest.mark.parametrize("reduction", ["mean", "weighted_mean", "none"])
def test_half_precision_is_finite_and_close_to_float32(dtype, rtol, reduction):
    x, y, _ = _data(spatial=(4, 4, 4), dtype=torch.float32, seed=8)
    x[0, :, 0, 0, 0] = torch.tensor([100.0, -100.0, 0.0])
    x[0, :, 0, 0, 1] = torch.tensor([-1e4, 1e4, 0.0])
    kwargs = dict(class_weight=[0.5, 2.0, 1.0], label_smoothing=0.1, reduction=reduction, focal_gamma=2.0)
    half = voxel_weighted_ce(x.to(dtype), y, **kwargs)
    ref = voxel_weighted_ce(x.to(dtype).float(), y, **kwargs)
    assert half.dtype == dtype and torch.isfinite(half).all()
    torch.testing.assert_close(half.float(), ref, rtol=rtol, atol=1e-3 if reduction == "none" else 0)
