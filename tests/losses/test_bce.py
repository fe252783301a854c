"""voxel_weighted_bce / VoxelWeightedBCE against torch's own losses (the oracle), hand-computed cases
and properties. Bad inputs are in test_losses_errors.py."""

from __future__ import annotations

import functools
import pickle

import pytest
import torch
import torch.nn.functional as F

import voxweight
from voxweight import VoxelWeightedBCE, voxel_weighted_bce

SHAPES = [(4, 3), (2, 3, 7), (2, 3, 4, 5, 6)]


def _data(shape, dtype=torch.float32, soft=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    t = torch.rand(shape, generator=g, dtype=torch.float64)
    t = (t if soft else (t > 0.7).double()).to(dtype)
    return x, t


def _channel_view(v, ndim):
    return v.reshape([1, -1] + [1] * (ndim - 2))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("soft", [False, True])
def test_unweighted_equals_torch_values_and_grads(shape, reduction, soft):
    """Oracle: F.binary_cross_entropy_with_logits, bit for bit, values and gradients."""
    x, t = _data(shape, soft=soft)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = voxel_weighted_bce(x1, t, reduction=reduction)
    ref = F.binary_cross_entropy_with_logits(x2, t, reduction=reduction)
    assert torch.equal(ours, ref)
    ours.sum().backward()
    ref.sum().backward()
    assert torch.equal(x1.grad, x2.grad)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_probabilities_equal_torch_bce(reduction):
    """Oracle: F.binary_cross_entropy with logits=False."""
    x, t = _data((2, 3, 4, 4))
    p1 = torch.sigmoid(x).requires_grad_()
    p2 = p1.detach().clone().requires_grad_()
    w = torch.rand(2, 1, 4, 4)
    ours = voxel_weighted_bce(p1, t, w, logits=False, reduction=reduction)
    ref = F.binary_cross_entropy(p2, t, weight=w.expand_as(p2), reduction=reduction)
    assert torch.equal(ours, ref)
    ours.sum().backward()
    ref.sum().backward()
    assert torch.equal(p1.grad, p2.grad)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_dtypes_match_torch(dtype):
    """Oracle: torch in the same dtype; the result keeps the input's dtype."""
    x, t = _data((2, 2, 3, 3, 3), dtype=dtype)
    w = torch.rand(2, 1, 3, 3, 3).to(dtype)
    ours = voxel_weighted_bce(x, t, w, pos_weight=[2.0, 3.0])
    ref = F.binary_cross_entropy_with_logits(
        x, t, weight=w, pos_weight=torch.tensor([2.0, 3.0], dtype=dtype).view(1, 2, 1, 1, 1))
    assert ours.dtype == dtype
    assert torch.equal(ours, ref)


def test_pos_weight_goes_on_channel_axis_not_last_axis():
    """The plain-torch pitfall: a [C] pos_weight on [N, C, D, H, W] with W == C weights W, silently."""
    x, t = _data((2, 3, 4, 5, 3))
    pw = torch.tensor([1.0, 5.0, 20.0])
    ours = voxel_weighted_bce(x, t, pos_weight=pw)
    channel_ref = F.binary_cross_entropy_with_logits(x, t, pos_weight=_channel_view(pw, 5))
    torch_pitfall = torch.nn.BCEWithLogitsLoss(pos_weight=pw)(x, t)
    assert torch.equal(ours, channel_ref)
    assert not torch.allclose(ours, torch_pitfall)


@pytest.mark.parametrize("shape", SHAPES)
def test_class_weight_equals_unreduced_loss_times_weight_mean(shape):
    """Seed 000: class weights [C] equal (loss_none * w).mean() with w on the channel axis."""
    x, t = _data(shape)
    cw = torch.tensor([1.0, 2.0, 3.0])
    expected = (F.binary_cross_entropy_with_logits(x, t, reduction="none") * _channel_view(cw, len(shape))).mean()
    torch.testing.assert_close(voxel_weighted_bce(x, t, class_weight=cw), expected)
    torch.testing.assert_close(voxel_weighted_bce(x, t, class_weight=[1.0, 2.0, 3.0]), expected)


def test_sample_weight_aligns_to_batch_where_plain_torch_fails():
    """Seed 000: a [N] weight fails in plain torch; here it goes on the batch axis."""
    x, t = _data((2, 3))
    sw = torch.tensor([0.25, 4.0])
    with pytest.raises(RuntimeError):
        torch.nn.BCEWithLogitsLoss(weight=sw)(x, t)
    expected = torch.nn.BCEWithLogitsLoss(weight=sw.unsqueeze(1))(x, t)
    torch.testing.assert_close(voxel_weighted_bce(x, t, sample_weight=sw), expected)


def test_full_shape_weights_equal_flattened():
    """Seed 000: elementwise weight and pos_weight give the same loss after flattening everything."""
    g = torch.Generator().manual_seed(2021)
    w, pw, x, t = (torch.rand(2, 3, 5, generator=g) for _ in range(4))
    ours = voxel_weighted_bce(x, t, w, pos_weight=pw)
    flat = F.binary_cross_entropy_with_logits(x.flatten(), t.flatten(), weight=w.flatten(),
                                              pos_weight=pw.flatten())
    torch.testing.assert_close(ours, flat)


def test_seed_003_rebalance_map_matches_functional_bce():
    """Seed 003: [1, 1, 60, 40, 40] probabilities, background weighted 1/95, per-voxel map."""
    torch.manual_seed(2019)
    predict = torch.rand(1, 1, 60, 40, 40)
    target = torch.bernoulli(predict)
    rebal = torch.ones_like(target) / 95.0 + (1.0 - 1.0 / 95.0) * target
    ref = F.binary_cross_entropy(predict, target, rebal)
    torch.testing.assert_close(voxel_weighted_bce(predict, target, rebal, logits=False), ref)


def test_all_weights_multiply_hand_computed():
    """Hand-computed: one element per (n, c), x = 0 so each plain BCE is log 2 (or p log 2 if t = 1)."""
    x = torch.zeros(2, 2)
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = voxel_weighted_bce(x, t, w, pos_weight=[10.0, 100.0], class_weight=[1.0, 0.5],
                             sample_weight=[1.0, 2.0], reduction="none")
    ln2 = torch.log(torch.tensor(2.0))
    expected = ln2 * torch.tensor([[1 * 10 * 1 * 1, 2 * 1 * 0.5 * 1], [3 * 1 * 1 * 2, 4 * 100 * 0.5 * 2]])
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("logits", [True, False])
def test_mask_selects_elements(logits):
    """Oracle: torch on the selected elements only (boolean indexing)."""
    x, t = _data((2, 3, 4, 4))
    inp = x if logits else torch.sigmoid(x)
    mask = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(3)) > 0.4
    full = mask.expand_as(x)
    fn = F.binary_cross_entropy_with_logits if logits else F.binary_cross_entropy
    for reduction in ("mean", "sum"):
        ours = voxel_weighted_bce(inp, t, mask=mask, logits=logits, reduction=reduction)
        torch.testing.assert_close(ours, fn(inp[full], t[full], reduction=reduction))
    none = voxel_weighted_bce(inp, t, mask=mask, logits=logits, reduction="none")
    assert torch.all(none[~full] == 0)
    torch.testing.assert_close(none[full], fn(inp[full], t[full], reduction="none"))


@pytest.mark.parametrize("reduction", ["mean", "weighted_mean", "sum"])
def test_empty_selection_is_zero_with_zero_grad(reduction):
    """Degenerate: everything masked out (or all weights 0) reduces to 0, never NaN."""
    x = torch.randn(1, 1, 3, 3, requires_grad=True)
    t = torch.ones(1, 1, 3, 3)
    out = voxel_weighted_bce(x, t, mask=torch.zeros(1, 1, 3, 3, dtype=torch.bool), reduction=reduction)
    out.backward()
    assert out.item() == 0.0
    assert torch.all(x.grad == 0)
    zero_w = voxel_weighted_bce(x, t, torch.zeros(1, 1, 3, 3), reduction="weighted_mean")
    assert zero_w.item() == 0.0
    assert voxel_weighted_bce(torch.zeros(0, 2, 4), torch.zeros(0, 2, 4), reduction=reduction).item() == 0.0


def test_weighted_mean_is_weighted_average():
    """Hand formula and property: sum(w l) / sum(w), invariant to scaling the weights."""
    x, t = _data((2, 3, 4, 4), soft=True)
    w = torch.rand(2, 1, 4, 4) + 0.1
    ref = (F.binary_cross_entropy_with_logits(x, t, reduction="none") * w).sum() / w.expand_as(x).sum()
    ours = voxel_weighted_bce(x, t, w, reduction="weighted_mean")
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(voxel_weighted_bce(x, t, 7.5 * w, reduction="weighted_mean"), ours)
    plain = voxel_weighted_bce(x, t, reduction="weighted_mean")
    torch.testing.assert_close(plain, F.binary_cross_entropy_with_logits(x, t))


def test_weighted_mean_counts_pos_weight_per_element():
    """Hard targets: each element's plain BCE carries weight w * p**t; the mean divides by their sum."""
    x, t = _data((3, 2, 5))
    w = torch.rand(3, 2, 5) + 0.5
    pw = torch.tensor([4.0, 0.5])
    omega = w * torch.where(t > 0, _channel_view(pw, 3), torch.ones(()))
    plain = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    ref = (omega * plain).sum() / omega.sum()
    torch.testing.assert_close(voxel_weighted_bce(x, t, w, pos_weight=pw, reduction="weighted_mean"), ref)
    scaled = voxel_weighted_bce(x, t, 3 * w, pos_weight=pw * 1.0, reduction="weighted_mean")
    torch.testing.assert_close(scaled, ref)


@pytest.mark.parametrize("soft", [False, True])
def test_pos_weight_with_probabilities_matches_logits_mode(soft):
    """Oracle: the same loss through logits (torch's pos_weight) and through probabilities."""
    x, t = _data((2, 3, 6), dtype=torch.float64, soft=soft)
    pw = torch.tensor([0.0, 2.0, 30.0], dtype=torch.float64)
    w = torch.rand(2, 3, 6, dtype=torch.float64)
    for reduction in ("none", "mean", "weighted_mean"):
        a = voxel_weighted_bce(x, t, w, pos_weight=pw, reduction=reduction)
        b = voxel_weighted_bce(torch.sigmoid(x), t, w, pos_weight=pw, logits=False, reduction=reduction)
        torch.testing.assert_close(a, b)


def test_saturated_inputs_stay_finite():
    """+/-100 logits and exact 0/1 probabilities: finite losses and gradients (torch clamps logs at -100)."""
    x = torch.tensor([[100.0, -100.0, 100.0, -100.0]]).requires_grad_()
    t = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    loss = voxel_weighted_bce(x, t, pos_weight=1e3, reduction="sum")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    torch.testing.assert_close(loss, torch.tensor(100.0 + 1e3 * 100.0), rtol=1e-4, atol=1e-3)
    p = torch.tensor([[1.0, 0.0, 1.0, 0.0]]).requires_grad_()
    loss_p = voxel_weighted_bce(p, t, pos_weight=[5.0, 5.0, 5.0, 5.0], logits=False, reduction="sum")
    loss_p.backward()
    assert torch.isfinite(loss_p) and torch.isfinite(p.grad).all()
    torch.testing.assert_close(loss_p, torch.tensor(100.0 + 5 * 100.0))


@pytest.mark.parametrize("logits", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "weighted_mean", "sum", "none"])
def test_gradcheck_float64(logits, reduction):
    """torch.autograd.gradcheck with every kind of weight and a mask."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64, generator=g)
    inp = (x if logits else torch.sigmoid(x).clamp(0.05, 0.95)).requires_grad_()
    t = torch.rand(2, 2, 3, 3, dtype=torch.float64, generator=g)
    w = torch.rand(2, 1, 3, 3, dtype=torch.float64, generator=g)
    mask = torch.rand(1, 2, 3, 3, generator=g) > 0.3

    def fn(i):
        return voxel_weighted_bce(i, t, w, pos_weight=[2.0, 0.5], class_weight=[1.0, 3.0],
                                  sample_weight=[1.0, 2.0], mask=mask, logits=logits, reduction=reduction)

    assert torch.autograd.gradcheck(fn, (inp,))


def test_module_equals_functional_and_does_not_mutate():
    x, t = _data((2, 3, 4, 4, 4))
    w = torch.rand(2, 1, 4, 4, 4)
    module = VoxelWeightedBCE(pos_weight=[1.0, 2.0, 3.0], class_weight=torch.tensor([0.5, 1.0, 2.0]),
                              reduction="weighted_mean")
    before = {k: v.clone() for k, v in module.state_dict().items()}
    ours = module(x, t, w, sample_weight=[1.0, 3.0])
    ref = voxel_weighted_bce(x, t, w, pos_weight=[1.0, 2.0, 3.0], class_weight=[0.5, 1.0, 2.0],
                             sample_weight=[1.0, 3.0], reduction="weighted_mean")
    torch.testing.assert_close(ours, ref)
    after = module.state_dict()
    assert before.keys() == after.keys() == {"pos_weight", "class_weight"}
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_module_state_dict_round_trip_and_to():
    a = VoxelWeightedBCE(pos_weight=[9.0, 4.0], class_weight=[1.0, 2.0])
    b = VoxelWeightedBCE(pos_weight=[1.0, 1.0], class_weight=[1.0, 1.0])
    b.load_state_dict(a.state_dict())
    x, t = _data((2, 2, 3))
    assert torch.equal(a(x, t), b(x, t))
    b64 = b.to(torch.float64)
    assert b64.pos_weight.dtype == torch.float64
    torch.testing.assert_close(b64(x.double(), t.double()), a(x, t).double())
    clone = pickle.loads(pickle.dumps(a))
    assert torch.equal(clone(x, t), a(x, t))
    assert "pos_weight=[2]" in repr(a)


def test_module_weight_fn_builds_map_when_none_given():
    """weight_fn is called on the target (without grad) only when forward gets no weight."""
    calls = []

    def fg_times_ten(target):
        calls.append(target.requires_grad)
        return 1 + 9 * target

    x, t = _data((2, 1, 4, 4))
    module = VoxelWeightedBCE(weight_fn=fg_times_ten)
    torch.testing.assert_close(module(x, t), voxel_weighted_bce(x, t, 1 + 9 * t))
    explicit = torch.rand(2, 1, 4, 4)
    torch.testing.assert_close(module(x, t, explicit), voxel_weighted_bce(x, t, explicit))
    assert len(calls) == 1
    assert pickle.loads(pickle.dumps(VoxelWeightedBCE(weight_fn=functools.partial(torch.clamp, min=1.0))))


def test_int_and_bool_targets_match_float():
    x, t = _data((2, 3, 4))
    ref = voxel_weighted_bce(x, t)
    assert torch.equal(voxel_weighted_bce(x, t.bool()), ref)
    assert torch.equal(voxel_weighted_bce(x, t.to(torch.uint8)), ref)


def test_value_checks_off_skips_range_checks():
    x = torch.zeros(1, 1, 2)
    t = torch.tensor([[[0.0, 2.0]]])
    with pytest.raises(ValueError, match="target"):
        voxel_weighted_bce(x, t)
    with voxweight.value_checks("off"):
        assert torch.isfinite(voxel_weighted_bce(x, t))
    with voxweight.value_checks("sync"), pytest.raises(ValueError, match="target"):
        voxel_weighted_bce(x, t)


@pytest.mark.cuda
def test_cuda_parity_and_no_host_sync():
    """On CUDA: same values as on CPU, and the default checks never synchronise with the host."""
    x, t = _data((2, 3, 8, 8, 8))
    w = torch.rand(2, 1, 8, 8, 8)
    mask = torch.rand(2, 1, 8, 8, 8) > 0.5
    kwargs = dict(pos_weight=torch.tensor([1.0, 2.0, 3.0]), class_weight=torch.tensor([1.0, 1.0, 2.0]),
                  sample_weight=torch.tensor([1.0, 2.0]))
    for reduction in ("mean", "weighted_mean"):
        cpu = voxel_weighted_bce(x, t, w, mask=mask, reduction=reduction, **kwargs)
        cuda_kwargs = {k: v.cuda() for k, v in kwargs.items()}
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            gpu = voxel_weighted_bce(x.cuda(), t.cuda(), w.cuda(), mask=mask.cuda(), reduction=reduction,
                                     **cuda_kwargs)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        torch.testing.assert_close(gpu.cpu(), cpu)
