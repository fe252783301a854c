"""balance= (class balance inside the loss, no weight map) against an explicit hand-built map (the oracle)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from voxweight import VoxelWeightedBCE, voxel_weighted_bce

FORMULAS = {
    "balanced": lambda f: (0.5 / f, 0.5 / (1 - f)),
    "inverse_frequency": lambda f: (1 / f, 1 / (1 - f)),
    "sqrt_inverse": lambda f: (f**-0.5, (1 - f) ** -0.5),
}


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 2, 5, 6, 7, generator=g, dtype=torch.float64)
    t = (torch.rand(3, 2, 5, 6, 7, generator=g) > 0.9).double()
    t[1, 0] = 0.0  # an empty volume
    t[2, 1] = 1.0  # a full volume
    return x, t


def _hand_map(t, mode, max_weight=None):
    f = t.mean(dim=(2, 3, 4), keepdim=True)
    fg, bg = FORMULAS[mode](f)
    defined = (f > 0) & (f < 1)
    fg, bg = torch.where(defined, fg, 1.0), torch.where(defined, bg, 1.0)
    if max_weight is not None:
        fg, bg = fg.clamp(max=max_weight), bg.clamp(max=max_weight)
    return bg + (fg - bg) * t


@pytest.mark.parametrize("mode", list(FORMULAS))
@pytest.mark.parametrize("reduction", ["mean", "weighted_mean", "sum", "none"])
@pytest.mark.parametrize("logits", [True, False])
def test_hard_targets_equal_explicit_map(mode, reduction, logits):
    x, t = _batch()
    inp = x if logits else torch.sigmoid(x)
    kwargs = dict(pos_weight=[2.0, 0.5], logits=logits, reduction=reduction)
    ours = voxel_weighted_bce(inp, t, balance=mode, **kwargs)
    ref = voxel_weighted_bce(inp, t, _hand_map(t, mode), **kwargs)
    torch.testing.assert_close(ours, ref)


def test_max_weight_clips_and_empty_full_volumes_get_one():
    x, t = _batch()
    ours = voxel_weighted_bce(x, t, balance="inverse_frequency", balance_max_weight=5.0, reduction="none")
    ref = voxel_weighted_bce(x, t, _hand_map(t, "inverse_frequency", 5.0), reduction="none")
    torch.testing.assert_close(ours, ref)
    plain = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    torch.testing.assert_close(ours[1, 0], plain[1, 0])
    torch.testing.assert_close(ours[2, 1], plain[2, 1])


def test_soft_targets_use_the_interpolated_weight():
    """Soft labels: (bg + (fg - bg) t) * BCE, fg/bg from the soft foreground fraction."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 4, 4, 4, generator=g, dtype=torch.float64)
    t = torch.rand(2, 1, 4, 4, 4, generator=g, dtype=torch.float64) ** 4
    fg, bg = FORMULAS["balanced"](t.mean(dim=(2, 3, 4), keepdim=True))
    s = torch.sigmoid(x)
    expected = -(bg + (fg - bg) * t) * (t * torch.log(s) + (1 - t) * torch.log1p(-s))
    torch.testing.assert_close(voxel_weighted_bce(x, t, balance="balanced", reduction="none"), expected)


def test_module_balance_equals_functional():
    x, t = _batch()
    module = VoxelWeightedBCE(balance="sqrt_inverse", reduction="weighted_mean")
    ref = voxel_weighted_bce(x, t, balance="sqrt_inverse", reduction="weighted_mean")
    torch.testing.assert_close(module(x, t), ref)
    assert "balance='sqrt_inverse'" in repr(module)


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        (dict(balance="balance"), ValueError, r"balance: expected one of .*did you mean 'balanced'"),
        (dict(balance="balanced", balance_max_weight=0.0), ValueError, r"balance_max_weight: expected a finite"),
        (dict(balance="balanced", balance_max_weight="2"), TypeError, r"balance_max_weight: expected a number"),
    ],
)
def test_bad_balance_arguments(kwargs, exc, pattern):
    x, t = _batch()
    with pytest.raises(exc, match=pattern):
        voxel_weighted_bce(x, t, **kwargs)


def test_balance_needs_spatial_axes():
    with pytest.raises(ValueError, match=r"balance: expected input with spatial axes"):
        voxel_weighted_bce(torch.zeros(4, 3), torch.zeros(4, 3), balance="balanced")


# The map-free eager path (logits, no pos_weight, no mask, per-(n, c) weights): same values and gradients
# as the explicit map, and the map is never built.


def _grad(fn, x):
    x = x.detach().clone().requires_grad_()
    loss = fn(x)
    loss.backward()
    return loss.detach(), x.grad


@pytest.fixture
def no_map(monkeypatch):
    """Fail if the loss builds the balance map (the map-free path must not)."""
    import voxweight.losses.eager as bce

    def refuse(*args, **kwargs):
        raise AssertionError("the balance map was built")

    monkeypatch.setattr(bce, "balance_map", refuse)


@pytest.mark.parametrize("mode", list(FORMULAS))
@pytest.mark.parametrize("reduction", ["mean", "weighted_mean", "sum"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_map_free_path_equals_explicit_map(mode, reduction, dtype, no_map):
    x, t = _batch()
    x, t = x.to(dtype), t.to(dtype)
    kwargs = dict(class_weight=[2.0, 0.5], sample_weight=[1.0, 3.0, 0.25], reduction=reduction)
    ours, grad = _grad(lambda xi: voxel_weighted_bce(xi, t, balance=mode, **kwargs), x)
    hand = _hand_map(t.double(), mode).to(dtype) * torch.tensor([2.0, 0.5], dtype=dtype).view(1, 2, 1, 1, 1)
    hand = hand * torch.tensor([1.0, 3.0, 0.25], dtype=dtype).view(3, 1, 1, 1, 1)
    expected_sum = lambda xi: F.binary_cross_entropy_with_logits(xi, t, weight=hand, reduction="sum")  # noqa: E731
    denominator = {"mean": x.numel(), "sum": 1.0, "weighted_mean": hand.sum()}[reduction]
    ref, ref_grad = _grad(lambda xi: expected_sum(xi) / denominator, x)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(grad, ref_grad)


def test_map_free_path_soft_labels_degenerate_volumes_and_one_voxel(no_map):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 1, 3, 4, 5, generator=g, dtype=torch.float64)
    t = torch.rand(4, 1, 3, 4, 5, generator=g, dtype=torch.float64) ** 3  # soft labels
    t[1] = 0.0  # empty foreground: both weights 1
    t[2] = 1.0  # all foreground: both weights 1
    ours, grad = _grad(lambda xi: voxel_weighted_bce(xi, t, balance="inverse_frequency", balance_max_weight=4.0), x)
    hand = _hand_map(t, "inverse_frequency", 4.0)
    ref, ref_grad = _grad(lambda xi: F.binary_cross_entropy_with_logits(xi, t, weight=hand), x)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(grad, ref_grad)
    one = torch.tensor([[[[2.5]]]], dtype=torch.float64)
    for label in (0.0, 1.0):
        target = torch.full_like(one, label)
        value = voxel_weighted_bce(one, target, balance="balanced")
        torch.testing.assert_close(value, F.binary_cross_entropy_with_logits(one, target))


def test_map_free_path_all_zero_weights_give_zero_not_nan(no_map):
    x, t = _batch()
    loss, grad = _grad(lambda xi: voxel_weighted_bce(xi, t, balance="balanced", class_weight=0.0,
                                                     reduction="weighted_mean"), x)
    assert loss.item() == 0.0
    assert torch.equal(grad, torch.zeros_like(grad))


def test_map_free_path_gradcheck_gradgradcheck_and_retained_graph(no_map):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 2, 3, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(2, 2, 3, 3, 2, generator=g) > 0.6).double()
    fn = lambda xi: voxel_weighted_bce(xi, t, balance="balanced", reduction="weighted_mean")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))
    loss = fn(x)
    first = torch.autograd.grad(loss, x, retain_graph=True)[0]
    second = torch.autograd.grad(loss, x)[0]  # the first gradient's buffer must not be written again
    torch.testing.assert_close(first, second)
    assert first.data_ptr() != second.data_ptr()


def test_map_free_path_channels_last_input_and_bool_target(no_map):
    x, t = _batch()
    x = x.float().contiguous(memory_format=torch.channels_last_3d)
    ours, grad = _grad(lambda xi: voxel_weighted_bce(xi, t.bool(), balance="sqrt_inverse"), x)
    ref, ref_grad = _grad(lambda xi: F.binary_cross_entropy_with_logits(xi, t.float(), weight=_hand_map(
        t, "sqrt_inverse").float()), x)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(grad, ref_grad)


@pytest.mark.parametrize("kwargs", [dict(pos_weight=2.0), dict(mask=True), dict(reduction="none"),
                                    dict(weight="map"), dict(logits=False)])
def test_other_balance_calls_build_the_map(kwargs, monkeypatch):
    """Oracle for the dispatch: everything the map-free path does not cover still builds the map."""
    import voxweight.losses.eager as bce

    calls = []
    real = bce.balance_map
    monkeypatch.setattr(bce, "balance_map", lambda *a, **k: calls.append(1) or real(*a, **k))
    x, t = _batch()
    if kwargs.get("mask"):
        kwargs = dict(mask=t > -1)
    if kwargs.get("weight"):
        kwargs = dict(weight=torch.rand_like(x))
    if kwargs.get("logits") is False:
        x = torch.sigmoid(x)
    voxel_weighted_bce(x, t, balance="balanced", **kwargs)
    assert calls == [1]


def test_both_gradient_scalings_agree():
    """The CPU per-slice scaling and the broadcast one used on GPUs compute the same ``out * (1 + r t)``."""
    from voxweight.losses.balanced import _scale_by_target

    g = torch.Generator().manual_seed(5)
    out = torch.randn(3, 2, 4, 5, 6, generator=g)
    t = torch.rand(3, 2, 4, 5, 6, generator=g)
    ratio = torch.tensor([[1.5, 0.0], [-0.5, 7.0], [2.0, 3.0]]).view(3, 2, 1, 1, 1)
    expected = out * (1 + ratio * t)
    for per_slice in (True, False):
        got = out.clone()
        _scale_by_target(got, t, ratio, per_slice)
        torch.testing.assert_close(got, expected)


@pytest.mark.cuda
def test_map_free_path_on_cuda_matches_cpu_without_host_sync():
    x, t = _batch()
    x, t = x.float(), t.float()
    ref, ref_grad = _grad(lambda xi: voxel_weighted_bce(xi, t, balance="balanced", class_weight=[2.0, 0.5]), x)
    xc, tc, cw = x.cuda(), t.cuda(), torch.tensor([2.0, 0.5], device="cuda")
    voxel_weighted_bce(xc, tc, balance="balanced", class_weight=cw)  # warm-up (lazy CUDA initialisation)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss, grad = _grad(lambda xi: voxel_weighted_bce(xi, tc, balance="balanced", class_weight=cw), xc)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(loss.cpu(), ref)
    torch.testing.assert_close(grad.cpu(), ref_grad)


@pytest.mark.parametrize("reduction", ["sum", "weighted_mean"])
def test_map_free_path_extreme_logits_stay_finite_and_accurate(reduction, no_map):
    """Oracle: torch with the explicit map (loss in float64); saturated logits give no inf or NaN."""
    values = torch.tensor([-1e4, -200.0, -30.0, -15.0, -1.0, 0.0, 1.0, 15.0, 30.0, 200.0, 1e4])
    x = values.repeat(2, 1, 2, 1).view(2, 1, 2, 1, -1).float()
    t = torch.zeros_like(x)
    t[:, :, 0] = 1.0
    hand = _hand_map(t.double(), "balanced")
    loss, grad = _grad(lambda xi: voxel_weighted_bce(xi, t, balance="balanced", reduction=reduction), x)
    ref = voxel_weighted_bce(x.double(), t.double(), hand, reduction=reduction)
    ref_grad = _grad(lambda xi: voxel_weighted_bce(xi, t, hand.float(), reduction=reduction), x)[1]
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    torch.testing.assert_close(loss.double(), ref, rtol=1e-6, atol=0.0)
    torch.testing.assert_close(grad, ref_grad)  # float32 sigmoid near 1 limits both alike
