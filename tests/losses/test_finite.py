"""No NaN from valid input, no bare torch error from bad input (issue section 4).

Oracles: torch's own ``binary_cross_entropy_with_logits`` / ``cross_entropy`` in float64 on the same
inputs, hand-computed balance weights (``0.5 / f`` and ``0.5 / (1 - f)``), hypothesis properties.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from voxweight import VoxelWeightedBCE, VoxelWeightedCE, debias_logits, voxel_weighted_bce, voxel_weighted_ce
from voxweight.losses.finite import saturate

LOW = [torch.float16, torch.bfloat16]


def _one_voxel(dtype, size=64):
    """One foreground voxel in a ``size^3`` crop: balanced fg weight 0.5 * size^3 (131072 for 64^3)."""
    t = torch.zeros(1, 1, size, size, size, dtype=dtype)
    t[0, 0, 3, 4, 5] = 1
    x = torch.linspace(-3, 3, size ** 3).reshape(t.shape).to(dtype)
    return x, t


def _balanced_map64(t):
    """Hand-computed balanced weights in float64: 0.5 / f on foreground, 0.5 / (1 - f) on background."""
    t = t.double()
    f = t.mean()
    return t * (0.5 / f) + (1 - t) * (0.5 / (1 - f))


def _oracle(x, t, w, reduction):
    """torch in float64 with the weights written out; weighted_mean = sum(w l) / sum(w)."""
    x, t, w = x.double().detach().requires_grad_(), t.double(), w.double()
    if reduction == "weighted_mean":
        loss = F.binary_cross_entropy_with_logits(x, t, weight=w, reduction="sum") / w.sum()
    else:
        loss = F.binary_cross_entropy_with_logits(x, t, weight=w, reduction=reduction)
    loss.sum().backward()
    return loss.detach(), x.grad


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("reduction", ["mean", "weighted_mean", "sum", "none"])
@pytest.mark.parametrize("extra", [{}, {"pos_weight": 2.0}, {"mask": True}, {"voxel_map": True}])
def test_low_precision_balance_is_finite_and_matches_float64(dtype, reduction, extra):
    """The issue's case: weight 131072 > float16's max gave NaN. Now finite, and torch-in-float64 to rounding
    (values beyond the dtype's range saturate at its largest finite value)."""
    x, t = _one_voxel(dtype)
    x.requires_grad_()
    kwargs = dict(balance="balanced", reduction=reduction)
    w = _balanced_map64(t)
    if extra.get("pos_weight"):
        kwargs["pos_weight"] = 2.0
        w = w * (1 + t.double())  # pos_weight 2 on the positive term, t binary
    if extra.get("mask"):
        kwargs["mask"] = torch.ones_like(t, dtype=torch.bool)
    if extra.get("voxel_map"):
        kwargs["weight"] = torch.ones_like(t)  # a per-voxel map: the balance map is built
    loss = voxel_weighted_bce(x, t, **kwargs)
    loss.sum().backward()
    ref, ref_grad = _oracle(x, t, w, reduction)
    top = torch.finfo(dtype).max
    assert loss.dtype == dtype and x.grad.dtype == dtype
    assert torch.isfinite(loss).all() and torch.isfinite(x.grad).all()
    tol = 1e-2 if dtype == torch.bfloat16 else 2e-3
    torch.testing.assert_close(loss.double(), ref.clamp(max=top), rtol=tol, atol=tol)
    torch.testing.assert_close(x.grad.double(), ref_grad.clamp(-top, top), rtol=tol, atol=1e-6)


@pytest.mark.parametrize("dtype", LOW)
def test_low_precision_sum_saturates_instead_of_inf(dtype):
    """A float16 sum of 262144 element losses (~181708 > 65504) is torch's inf; ours is the largest finite value."""
    x, t = _one_voxel(dtype)
    ref = F.binary_cross_entropy_with_logits(x.double(), t.double(), reduction="sum")
    assert ref > torch.finfo(torch.float16).max
    for loss in (voxel_weighted_bce(x, t, reduction="sum"),
                 voxel_weighted_ce(torch.stack([x, -x], 1)[:, :, 0], t[:, 0].long(), reduction="sum")):
        assert torch.isfinite(loss)
        if dtype == torch.float16:
            assert loss == torch.finfo(torch.float16).max
        else:  # bfloat16 holds it: torch's float64 value to bfloat16 rounding
            assert loss.double() > 1e5


@pytest.mark.parametrize("scale", [3e38, 1e38, 1e-38, 1e-44])
def test_weighted_mean_with_huge_or_tiny_weights_is_finite(scale):
    """weighted_mean is scale-invariant: weights 3e38 (NaN before) give torch-float64's sum(w l) / sum(w)."""
    torch.manual_seed(0)
    x, t = torch.randn(2, 3, 5, 5) * 4, (torch.rand(2, 3, 5, 5) > 0.7).float()
    w = torch.rand(2, 1, 5, 5) * scale
    ours = voxel_weighted_bce(x, t, w, reduction="weighted_mean")
    ref = (F.binary_cross_entropy_with_logits(x.double(), t.double(), weight=w.double(), reduction="sum")
           / w.double().expand_as(x).sum())
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=0)
    y = torch.randint(0, 3, (2, 5, 5))
    ours_ce = voxel_weighted_ce(x, y, w, class_weight=[scale, scale / 2, scale], reduction="weighted_mean")
    a = torch.tensor([scale, scale / 2, scale]).double()  # the float32 values the loss sees (denormals at 1e-44)
    per_voxel = F.cross_entropy(x.double(), y, weight=a, reduction="none") * w[:, 0].double()
    ref_ce = per_voxel.sum() / (w[:, 0].double() * a[y]).sum()
    torch.testing.assert_close(ours_ce.double(), ref_ce, rtol=1e-5, atol=0)


@settings(max_examples=40, deadline=None)
@given(exponent=st.floats(-44, 38.5), pos_exponent=st.floats(0, 36), seed=st.integers(0, 2**16))
def test_weighted_mean_property_any_finite_weight_scale(exponent, pos_exponent, seed):
    """Property: for any finite float32 weight and pos_weight scales (3e38 * 3e38 gave NaN), weighted_mean is
    finite and equals torch-float64's sum(l) / sum(w (1 + (p - 1) t))."""
    g = torch.Generator().manual_seed(seed)
    scale = min(10.0 ** exponent, float(torch.finfo(torch.float32).max) / 2)
    x = (torch.rand(1, 2, 6, generator=g) - 0.5) * 12  # |x| <= 6: p * softplus(-x) stays below float32's max
    t = torch.rand(1, 2, 6, generator=g)
    w = (torch.rand(1, 2, 6, generator=g) + 0.5) * scale
    if not (w > 0).all():
        return  # float32 underflow to 0: not this property's business
    pos_weight = [3.0, 10.0 ** pos_exponent]
    ours = voxel_weighted_bce(x, t, w, reduction="weighted_mean", pos_weight=pos_weight)
    pos = torch.tensor(pos_weight).double().view(1, 2, 1)
    e = w.double() * (1 + (pos - 1) * t.double())
    ref = F.binary_cross_entropy_with_logits(x.double(), t.double(), weight=w.double(), pos_weight=pos,
                                             reduction="sum") / e.sum()
    assert torch.isfinite(ours)
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("mode", ["balanced", "inverse_frequency", "sqrt_inverse"])
def test_tiny_balance_max_weight(dtype, mode):
    """balance_max_weight=1e-44 (inf before): every weight is clipped to it, so weighted_mean is the plain
    mean (torch's own) and mean/sum are tiny and finite."""
    x, t = _one_voxel(dtype, size=8)
    plain = F.binary_cross_entropy_with_logits(x.double(), t.double())
    wm = voxel_weighted_bce(x, t, balance=mode, balance_max_weight=1e-44, reduction="weighted_mean")
    torch.testing.assert_close(wm.double(), plain, rtol=2e-3 if dtype == torch.float16 else 1e-5, atol=0)
    for reduction in ("mean", "sum"):
        out = voxel_weighted_bce(x, t, balance=mode, balance_max_weight=1e-44, reduction=reduction)
        assert torch.isfinite(out) and 0 <= out.double() <= 1e-44 * 2 * x.numel()


@pytest.mark.parametrize(("call", "name"), [
    (lambda: voxel_weighted_bce(torch.zeros(1, 1, 2), torch.ones(1, 1, 2), pos_weight=10**400), "pos_weight"),
    (lambda: voxel_weighted_bce(torch.zeros(1, 1, 2), torch.ones(1, 1, 2), class_weight=[10**400]), "class_weight"),
    (lambda: voxel_weighted_bce(torch.zeros(1, 1, 2), torch.ones(1, 1, 2), sample_weight=[-10**400]),
     "sample_weight"),
    (lambda: VoxelWeightedBCE(pos_weight=10**400), "pos_weight"),
    (lambda: VoxelWeightedCE(class_weight=[1, 10**400]), "class_weight"),
    (lambda: debias_logits(torch.zeros(1, 2), 10**400), "pos_weight"),
    (lambda: voxel_weighted_bce(torch.zeros(1, 1, 2), torch.ones(1, 1, 2), balance="balanced",
                                balance_max_weight=10**400), "balance_max_weight"),
    (lambda: VoxelWeightedBCE(balance="balanced", balance_max_weight=10**400), "balance_max_weight"),
    (lambda: voxel_weighted_ce(torch.zeros(1, 2, 3), torch.zeros(1, 3, dtype=torch.long), ignore_index=2**70),
     "ignore_index"),
    (lambda: VoxelWeightedCE(ignore_index=-2**63 - 1), "ignore_index"),
    (lambda: VoxelWeightedCE(label_smoothing=10**400), "label_smoothing"),
])
def test_numbers_beyond_float64_or_int64_name_the_argument(call, name):
    """Oracle: the message (OverflowError before)."""
    with pytest.raises(ValueError, match=rf"^{name}: expected"):
        call()


def test_int64_extremes_of_ignore_index_are_accepted():
    """The int64 range itself is fine: torch's cross_entropy with the same ignore_index is the oracle."""
    x, y = torch.randn(2, 3, 4, dtype=torch.float64), torch.randint(0, 3, (2, 4))
    for index in (2**63 - 1, -2**63):
        ours = voxel_weighted_ce(x, y, ignore_index=index)
        assert torch.equal(ours, F.cross_entropy(x, y, ignore_index=index))


@pytest.mark.parametrize("shape", [(), (3,)])
@pytest.mark.parametrize("kwargs", [dict(pos_weight=[1.0, 2.0, 3.0]), dict(class_weight=[2.0]),
                                    dict(pos_weight=torch.ones(3)), dict(class_weight=torch.ones(1))])
def test_low_dim_input_with_per_class_weights_says_what_was_expected(shape, kwargs):
    """IndexError before; now a ValueError naming the argument and asking for [N, C, *spatial]."""
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=rf"^{name}: expected a number \(0-d\) .*\[N, C, \*spatial\]"):
        voxel_weighted_bce(torch.zeros(shape), torch.ones(shape), **kwargs)


def test_zero_dim_input_with_sample_weight_vector_says_what_was_expected():
    with pytest.raises(ValueError, match=r"^sample_weight: expected a number \(0-d\) for a 0-d input"):
        voxel_weighted_bce(torch.tensor(0.5), torch.tensor(1.0), sample_weight=[2.0])


@pytest.mark.parametrize("shape", [(), (3,)])
def test_low_dim_input_with_scalar_weights_matches_torch(shape):
    """Numbers still apply to everything: torch with the same scalars is the oracle."""
    x, t = torch.linspace(-1, 1, 3)[: (3 if shape else 1)].reshape(shape), torch.ones(shape)
    ours = voxel_weighted_bce(x, t, pos_weight=3.0, class_weight=2.0, sample_weight=0.5)
    ref = F.binary_cross_entropy_with_logits(x, t, weight=torch.tensor(1.0), pos_weight=torch.tensor(3.0)) * 2 * 0.5
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.uint16, torch.uint32, torch.uint64, torch.int16, torch.int32])
def test_ce_accepts_every_integer_label_dtype(dtype):
    """torch.from_numpy gives uint16/uint32/uint64 for common NIfTI labels (NotImplementedError before).
    Oracle: torch's cross_entropy on int64 indices, in float64."""
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    y = torch.randint(0, 4, (2, 3, 3))
    y[0, 0, 0] = 3
    ours = voxel_weighted_ce(x, y.to(dtype), class_weight=[1.0, 2.0, 0.5, 4.0], ignore_index=3,
                             reduction="weighted_mean")
    ref = F.cross_entropy(x, y, weight=torch.tensor([1.0, 2.0, 0.5, 4.0], dtype=torch.float64), ignore_index=3)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=0)


def test_ce_uint_labels_out_of_range_are_named():
    y = torch.tensor([[0, 1, 2**63 + 5]], dtype=torch.uint64)  # wraps negative in int64: still out of range
    with pytest.raises(ValueError, match=r"^target: expected class indices in \[0, 1\]"):
        voxel_weighted_ce(torch.zeros(1, 2, 3), y)
    with pytest.raises(ValueError, match=r"^target: expected class indices in \[0, 1\]"):
        voxel_weighted_ce(torch.zeros(1, 2, 3), torch.tensor([[0, 1, 7]], dtype=torch.uint16))


def test_buffers_keep_the_dtype_they_were_given():
    """A float64 tensor stays float64 (float32 before); numbers and lists stay float32; .double()/.float() convert."""
    w64 = torch.tensor([3.0, 0.25], dtype=torch.float64)
    loss_fn = VoxelWeightedBCE(pos_weight=w64, class_weight=torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert loss_fn.pos_weight.dtype == loss_fn.class_weight.dtype == torch.float64
    assert VoxelWeightedBCE(pos_weight=[3.0, 0.25]).pos_weight.dtype == torch.float32
    assert VoxelWeightedBCE(pos_weight=2).pos_weight.dtype == torch.float32
    assert VoxelWeightedBCE(pos_weight=torch.tensor([3, 1])).pos_weight.dtype == torch.float32  # integer tensor
    assert VoxelWeightedBCE(pos_weight=[3.0]).double().pos_weight.dtype == torch.float64
    assert loss_fn.float().pos_weight.dtype == torch.float32
    assert VoxelWeightedCE(class_weight=w64).class_weight.dtype == torch.float64


def test_float64_module_matches_torch_module_exactly():
    """Oracle: torch's own BCEWithLogitsLoss / CrossEntropyLoss with the same float64 weights (a float32 buffer
    lost ~1e-7 against them)."""
    torch.manual_seed(1)
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    t = (torch.rand_like(x) > 0.8).double()
    pw = torch.tensor([1 / 3, 7.1], dtype=torch.float64)
    ours = VoxelWeightedBCE(pos_weight=pw)(x, t)
    ref = torch.nn.BCEWithLogitsLoss(pos_weight=pw.view(1, 2, 1, 1))(x, t)
    assert torch.equal(ours, ref)
    y = torch.randint(0, 2, (2, 5, 5))
    ours_ce = VoxelWeightedCE(class_weight=pw, reduction="weighted_mean")(x, y)
    ref_ce = torch.nn.CrossEntropyLoss(weight=pw)(x, y)
    torch.testing.assert_close(ours_ce, ref_ce, rtol=1e-14, atol=0)


def test_saturate_gradient_is_straight_through_and_double_differentiable():
    """Oracle: gradcheck/gradgradcheck in float64; the cast clamps values but passes gradients."""
    x = torch.tensor([1.0, 2.0, 7e4, -7e4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: saturate(v, torch.float64) ** 2, (x[:2].detach().requires_grad_(),))
    assert torch.autograd.gradgradcheck(lambda v: saturate(v, torch.float64) ** 3, (x[:2].detach().requires_grad_(),))
    out = saturate(x, torch.float16)
    assert out.tolist() == [1.0, 2.0, 65504.0, -65504.0]
    out.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 1.0]
    assert torch.isnan(saturate(torch.tensor([float("nan")]), torch.float16)).all()  # NaN is not hidden


@pytest.mark.parametrize("weight", [None, 3e38])
def test_weighted_mean_with_pos_weight_at_float32_max(weight):
    """pos_weight 3e38 (with a 3e38 map too: NaN before): every plain loss is log 2, so is their weighted mean."""
    x, t = torch.zeros(1, 2, 8), (torch.arange(16).reshape(1, 2, 8) % 3 == 0).float()
    w = None if weight is None else torch.full((1, 1, 8), weight)
    out = voxel_weighted_bce(x, t, w, pos_weight=[3e38, 1.0], reduction="weighted_mean")
    torch.testing.assert_close(out, torch.tensor(2.0).log())
