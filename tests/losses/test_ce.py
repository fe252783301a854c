"""voxel_weighted_ce / VoxelWeightedCE against F.cross_entropy (the oracle), hand formulas and properties."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from voxweight import VoxelWeightedCE, debias_logits, voxel_weighted_ce

C = 4


def _data(n=2, spatial=(3, 4, 5), dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, C, *spatial, generator=g, dtype=dtype)
    y = torch.randint(0, C, (n, *spatial), generator=g)
    return x, y


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("spatial", [(), (7,), (3, 4, 5)])
def test_index_targets_equal_torch(reduction, spatial):
    x, y = _data(spatial=spatial)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = voxel_weighted_ce(x1, y, reduction=reduction)
    ref = F.cross_entropy(x2, y, reduction=reduction)
    torch.testing.assert_close(ours, ref)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    if spatial:
        torch.testing.assert_close(voxel_weighted_ce(x, y.unsqueeze(1), reduction=reduction), ref)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_weighted_mean_is_torch_mean_with_class_weight(smoothing):
    """Torch's "mean" with a class weight divides by sum(a[y]): that is our "weighted_mean"."""
    x, y = _data()
    a = torch.tensor([0.1, 1.0, 2.0, 5.0], dtype=torch.float64)
    ref = F.cross_entropy(x, y, weight=a, label_smoothing=smoothing)
    ours = voxel_weighted_ce(x, y, class_weight=a, label_smoothing=smoothing, reduction="weighted_mean")
    torch.testing.assert_close(ours, ref)
    per_voxel = F.cross_entropy(x, y, weight=a, label_smoothing=smoothing, reduction="none")
    mean = voxel_weighted_ce(x, y, class_weight=a, label_smoothing=smoothing)
    torch.testing.assert_close(mean, per_voxel.sum() / y.numel())


def test_ignore_index_not_counted():
    x, y = _data()
    y[0, 0] = 255
    torch.testing.assert_close(voxel_weighted_ce(x, y, ignore_index=255), F.cross_entropy(x, y, ignore_index=255))
    none = voxel_weighted_ce(x, y, ignore_index=255, reduction="none")
    assert torch.all(none[0, 0] == 0)
    a = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    ours = voxel_weighted_ce(x, y, class_weight=a, ignore_index=255, reduction="weighted_mean")
    torch.testing.assert_close(ours, F.cross_entropy(x, y, weight=a, ignore_index=255))


def test_probability_targets_use_the_same_denominators():
    """Soft targets: element losses are torch's; "weighted_mean" divides by sum_v w_v sum_c a_c p_c."""
    x, _ = _data()
    g = torch.Generator().manual_seed(5)
    p = torch.softmax(torch.randn(x.shape, generator=g, dtype=torch.float64), dim=1)
    a = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=torch.float64)
    w = torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64)
    per_voxel = F.cross_entropy(x, p, weight=a, reduction="none")
    torch.testing.assert_close(voxel_weighted_ce(x, p, class_weight=a, reduction="none"), per_voxel)
    denominator = (w * (p * a.view(1, C, 1, 1, 1)).sum(1)).sum()
    ours = voxel_weighted_ce(x, p, w, class_weight=a, reduction="weighted_mean")
    torch.testing.assert_close(ours, (per_voxel * w).sum() / denominator)
    torch.testing.assert_close(voxel_weighted_ce(x, p), F.cross_entropy(x, p))


@pytest.mark.parametrize("reduction", ["mean", "weighted_mean", "sum", "none"])
def test_index_and_one_hot_probabilities_agree(reduction):
    """Property: class indices and their one-hot probabilities give the same loss, smoothing and weights included."""
    x, y = _data()
    one_hot = F.one_hot(y, C).movedim(-1, 1).double()
    kwargs = dict(class_weight=[0.2, 1.0, 3.0, 1.5], label_smoothing=0.1, reduction=reduction,
                  sample_weight=[1.0, 2.0], weight=torch.rand(2, 1, 3, 4, 5, dtype=torch.float64))
    torch.testing.assert_close(voxel_weighted_ce(x, y, **kwargs), voxel_weighted_ce(x, one_hot, **kwargs))


def test_voxel_sample_weights_and_mask_hand_formula():
    x, y = _data()
    w = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    sw = torch.tensor([0.5, 2.0], dtype=torch.float64)
    mask = torch.rand(2, 3, 4, 5) > 0.4
    plain = F.cross_entropy(x, y, reduction="none")
    weighted = plain * w * sw.view(2, 1, 1, 1)
    ours = voxel_weighted_ce(x, y, w.unsqueeze(1), sample_weight=sw, mask=mask.unsqueeze(1), reduction="none")
    torch.testing.assert_close(ours, torch.where(mask, weighted, 0.0))
    mean = voxel_weighted_ce(x, y, w, sample_weight=sw, mask=mask)
    torch.testing.assert_close(mean, weighted[mask].sum() / mask.sum())
    denominator = (w * sw.view(2, 1, 1, 1))[mask].sum()
    wm = voxel_weighted_ce(x, y, w, sample_weight=sw, mask=mask, reduction="weighted_mean")
    torch.testing.assert_close(wm, weighted[mask].sum() / denominator)
    nothing = torch.zeros(2, 3, 4, 5, dtype=torch.bool)
    assert voxel_weighted_ce(x, y, mask=nothing).item() == 0.0


@pytest.mark.parametrize("soft", [False, True])
def test_gradcheck_float64(soft):
    x, y = _data(spatial=(2, 3))
    target = torch.softmax(torch.randn(x.shape, dtype=torch.float64), 1) if soft else y
    w = torch.rand(2, 2, 3, dtype=torch.float64)

    def fn(inp):
        return voxel_weighted_ce(inp, target, w, class_weight=[1.0, 2.0, 0.5, 1.0], sample_weight=[1.0, 3.0],
                                 label_smoothing=0.1, reduction="weighted_mean")

    assert torch.autograd.gradcheck(fn, (x.requires_grad_(),))


def test_module_equals_functional_state_dict_and_weight_fn():
    x, y = _data()
    module = VoxelWeightedCE(class_weight=[1.0, 2.0, 3.0, 4.0], reduction="weighted_mean",
                             weight_fn=lambda t: 1.0 + (t > 0).double())
    ref = voxel_weighted_ce(x, y, 1.0 + (y > 0).double(), class_weight=[1.0, 2.0, 3.0, 4.0],
                            reduction="weighted_mean")
    torch.testing.assert_close(module(x, y), ref)
    other = VoxelWeightedCE(class_weight=[1.0, 1.0, 1.0, 1.0], reduction="weighted_mean")
    other.load_state_dict(module.state_dict())
    torch.testing.assert_close(other(x, y, 1.0 + (y > 0).double()), ref)
    assert "class_weight=[4]" in repr(module)


def test_debias_logits_undoes_class_weight_prior_shift():
    """Softmax regression trained with class weights over-predicts weighted classes; debiased, it matches."""
    g = torch.Generator().manual_seed(0)
    freq = torch.tensor([0.90, 0.07, 0.03], dtype=torch.float64)
    y = torch.multinomial(freq, 60_000, replacement=True, generator=g)
    a = 1.0 / torch.bincount(y, minlength=3).double()
    bias = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = voxel_weighted_ce(bias.expand(len(y), 3), y, class_weight=a, reduction="weighted_mean")
        loss.backward()
        return loss

    opt.step(closure)
    raw = torch.softmax(bias.detach(), 0)
    corrected = torch.softmax(debias_logits(bias.detach()[None], a), 1)[0]
    empirical = torch.bincount(y, minlength=3).double() / len(y)
    assert (raw - empirical).abs().max() > 0.3  # balanced weights push every class towards 1/3
    torch.testing.assert_close(corrected, empirical, atol=1e-4, rtol=0)


ERRORS = [
    (dict(target=torch.zeros(2, 3, 4, 5)), TypeError, r"target: expected integer class indices, or float"),
    (dict(target=torch.zeros(2, 3, 4, 5, dtype=torch.bool)), TypeError, r"target: expected integer class"),
    (dict(target=torch.full((2, 3, 4, 5), 4)), ValueError, r"target: expected class indices in \[0, 3\]"),
    (dict(target=torch.full((2, 3, 4, 5), -1)), ValueError, r"target: expected class indices"),
    (dict(target=torch.zeros(2, 3, 4, 6, dtype=torch.long)), ValueError, r"target: expected class indices of shape"),
    (dict(class_weight=[1.0, 2.0]), ValueError, r"class_weight: expected one value per class \(4"),
    (dict(class_weight=[1.0, -2.0, 1.0, 1.0]), ValueError, r"class_weight: expected finite non-negative"),
    (dict(sample_weight=[1.0]), ValueError, r"sample_weight: expected shape \[2\]"),
    (dict(weight=torch.ones(2, 4, 3, 4, 5)), ValueError, r"weight: expected shape \[2, 3, 4, 5\]"),
    (dict(weight=torch.full((2, 3, 4, 5), float("nan"))), ValueError, r"weight: expected finite"),
    (dict(mask=torch.ones(2, 3, 4, 5)), TypeError, r"mask: expected a bool tensor"),
    (dict(label_smoothing=1.5), ValueError, r"label_smoothing: expected a number in \[0, 1\]"),
    (dict(reduction="weighted-mean"), ValueError, r"did you mean 'weighted_mean'"),
    (dict(ignore_index="255"), TypeError, r"ignore_index: expected an int or None"),
    (dict(input=torch.zeros(2, 4, 3, 4, 5, dtype=torch.long)), TypeError, r"input: expected a floating-point"),
]


@pytest.mark.parametrize(("kwargs", "exc", "pattern"), ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_bad_input_raises(kwargs, exc, pattern):
    args = dict(input=torch.zeros(2, C, 3, 4, 5), target=torch.zeros(2, 3, 4, 5, dtype=torch.long))
    args.update(kwargs)
    with pytest.raises(exc, match=pattern):
        voxel_weighted_ce(args.pop("input"), args.pop("target"), args.pop("weight", None), **args)


def test_ignore_index_with_probabilities_is_refused():
    with pytest.raises(ValueError, match=r"ignore_index: expected None with probability targets"):
        voxel_weighted_ce(torch.zeros(1, 2, 3), torch.full((1, 2, 3), 0.5), ignore_index=0)
