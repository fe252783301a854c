"""voxel_weighted_cldice / VoxelWeightedClDice against MONAI's SoftclDiceLoss, a scipy re-derivation of the
authors' reference (jocpae/clDice), hand-computed 2-D cases, gradcheck and properties of the weights and masks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from monai.losses import SoftclDiceLoss
from monai.losses.cldice import soft_skel

from voxweight.losses.cldice import VoxelWeightedClDice, cldice_options, topology_scores, voxel_weighted_cldice
from voxweight.losses.soft_skeleton import soft_dilate, soft_erode, soft_open, soft_skeleton


def _data(shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype) * 2
    t = (torch.rand(shape, generator=g) > 0.6).to(dtype)
    w = torch.rand((shape[0], 1, *shape[2:]), generator=g, dtype=dtype) * 3
    return x, t, w


def _grad(fn, x):
    x = x.clone().requires_grad_(True)
    loss = fn(x)
    return loss.detach(), torch.autograd.grad(loss.sum(), x)[0]


# --- the authors' reference, re-derived with scipy's grey morphology (float64, numpy) ---------------------------

def _ref_erode(a):  # min over the voxel and its face neighbours; outside the volume does not count
    return ndi.grey_erosion(a, footprint=ndi.generate_binary_structure(a.ndim, 1), mode="constant", cval=np.inf)


def _ref_dilate(a):  # max over the 3^k box
    return ndi.grey_dilation(a, size=(3,) * a.ndim, mode="constant", cval=-np.inf)


def _ref_skeleton(a, iterations):
    relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
    skel = relu(a - _ref_dilate(_ref_erode(a)))
    for _ in range(iterations):
        a = _ref_erode(a)
        delta = relu(a - _ref_dilate(_ref_erode(a)))
        skel = skel + relu(delta - skel * delta)
    return skel


def _ref_skeletons(v, iterations):
    v = np.asarray(v, dtype=np.float64)
    return np.stack([np.stack([_ref_skeleton(c, iterations) for c in s]) for s in v])


def _ref_cldice(pred, true, iterations, smooth=1.0):
    """soft_cldice of the paper's code: sums over the whole batch, 1 - harmonic mean (no epsilon)."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    sp, sk = _ref_skeletons(pred, iterations), _ref_skeletons(true, iterations)
    tprec = ((sp * true).sum() + smooth) / (sp.sum() + smooth)
    tsens = ((sk * pred).sum() + smooth) / (sk.sum() + smooth)
    return 1 - 2 * tprec * tsens / (tprec + tsens)


@pytest.mark.parametrize("shape", [(2, 2, 7), (2, 1, 6, 9), (1, 2, 5, 6, 7)])
@pytest.mark.parametrize("iterations", [0, 1, 4])
def test_morphology_and_skeleton_equal_scipy_in_1d_2d_3d(shape, iterations):
    a = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(iterations))
    per = lambda f: np.stack([np.stack([f(c) for c in s]) for s in a.numpy()])  # noqa: E731
    np.testing.assert_array_equal(soft_erode(a).numpy(), per(_ref_erode))
    np.testing.assert_array_equal(soft_dilate(a).numpy(), per(_ref_dilate))
    np.testing.assert_array_equal(soft_open(a).numpy(), per(lambda c: _ref_dilate(_ref_erode(c))))
    np.testing.assert_allclose(soft_skeleton(a, iterations).numpy(), _ref_skeletons(a, iterations), atol=1e-15)
    tracked = soft_skeleton(a.clone().requires_grad_(), iterations)  # the autograd path: the same values
    np.testing.assert_allclose(tracked.detach().numpy(), _ref_skeletons(a, iterations), atol=1e-15)


@pytest.mark.parametrize("iterations", [3, 10])
@pytest.mark.parametrize("shape", [(2, 1, 12, 11), (3, 2, 6, 7, 8)])
def test_batch_true_equals_the_authors_soft_cldice(shape, iterations):
    x, t, _ = _data(shape, seed=iterations)
    p = torch.sigmoid(x)
    ours = voxel_weighted_cldice(p, t, iterations=iterations, activation=None, batch=True)
    np.testing.assert_allclose(ours.item(), _ref_cldice(p, t, iterations), rtol=1e-12)
    assert voxel_weighted_cldice(p, t, activation=None, batch=True, reduction="none").shape == (1,)


@pytest.mark.parametrize("shape", [(2, 1, 16, 15), (3, 3, 11, 12), (2, 1, 9, 10, 11), (2, 3, 6, 7, 8)])
@pytest.mark.parametrize("iterations,smooth", [(0, 1.0), (1, 0.5), (3, 1.0), (6, 2.0)])
def test_equals_monai_soft_cldice_in_2d_and_3d_with_its_gradient(shape, iterations, smooth):
    x, t, _ = _data(shape, seed=shape[1] + iterations)
    monai = SoftclDiceLoss(iter_=iterations, smooth_nr=smooth, smooth_dr=smooth, sigmoid=True, reduction="none")
    ours = lambda z: voxel_weighted_cldice(z, t, iterations=iterations, smooth=smooth,  # noqa: E731
                                           harmonic_smooth=1e-4, reduction="none")
    (a, ga), (b, gb) = _grad(lambda z: monai(z, t), x), _grad(ours, x)
    torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-13)
    assert b.shape == (shape[0],)  # "none": one loss per sample, channels pooled as MONAI does


def test_float32_mean_and_sum_and_monai_without_its_harmonic_epsilon():
    x, t, _ = _data((2, 1, 20, 21, 22), dtype=torch.float32)
    for reduction in ("mean", "sum"):
        monai = SoftclDiceLoss(sigmoid=True, reduction=reduction)
        torch.testing.assert_close(voxel_weighted_cldice(x, t, harmonic_smooth=1e-4, reduction=reduction),
                                   monai(x, t), rtol=1e-6, atol=1e-7)
    exact = SoftclDiceLoss(sigmoid=True, smooth=1e-30)  # the paper's harmonic mean: our default h = 0
    torch.testing.assert_close(voxel_weighted_cldice(x, t), exact(x, t), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("activation", ["softmax", None])
def test_softmax_probabilities_soft_targets_and_include_background(activation):
    x, _, _ = _data((2, 3, 9, 8, 7), seed=4)
    g = torch.Generator().manual_seed(5)
    soft = torch.softmax(torch.randn(x.shape, generator=g, dtype=torch.float64), 1)  # soft labels
    inp = x if activation else torch.softmax(x, 1)
    for include in (True, False):
        monai = SoftclDiceLoss(softmax=activation == "softmax", include_background=include, smooth=1e-30)
        ours = voxel_weighted_cldice(inp, soft, activation=activation, include_background=include)
        torch.testing.assert_close(ours, monai(inp, soft), rtol=1e-12, atol=1e-12)
    labels = torch.randint(0, 3, (2, 1, 9, 8, 7), generator=g)  # class indices, class 2 absent from sample 0
    labels[0][labels[0] == 2] = 1
    monai = SoftclDiceLoss(softmax=activation == "softmax", to_onehot_y=True, smooth=1e-30)
    torch.testing.assert_close(voxel_weighted_cldice(inp, labels, activation=activation), monai(inp, labels),
                               rtol=1e-12, atol=1e-12)


def test_hand_computed_2d_cases():
    p, t = torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 3, 3)
    p[..., 0], t[..., 1, :] = 0.8, 1.0  # lines are their own skeletons: tprec 9/17, tsens 9/20
    tprec, tsens = topology_scores(p, t, None, cldice_options(activation=None))
    torch.testing.assert_close((tprec, tsens), (torch.tensor([9 / 17]), torch.tensor([9 / 20])))
    torch.testing.assert_close(voxel_weighted_cldice(p, t, activation=None), torch.tensor(19 / 37))
    block = torch.zeros(1, 1, 5, 5)
    block[..., 1:4, 1:4] = 1.0  # skeleton: the centre (one peel); p = 0.5 there: tprec 1, tsens (0.5 w + 1)/(w + 1)
    w = torch.ones(1, 1, 5, 5)
    w[..., 2, 2] = 3.0
    torch.testing.assert_close(voxel_weighted_cldice(0.5 * block, block, activation=None, iterations=1),
                               torch.tensor(1 / 7))
    torch.testing.assert_close(voxel_weighted_cldice(0.5 * block, block, w, activation=None, iterations=1),
                               torch.tensor(3 / 13))
    torch.testing.assert_close(voxel_weighted_cldice(block, block, activation=None, iterations=0), torch.tensor(0.0))


def test_gradcheck_float64_2d_and_3d_input_and_weight():
    for shape in [(2, 1, 5, 6), (1, 2, 4, 5, 4)]:
        x, t, w = _data(shape, seed=7)
        w = w.requires_grad_()
        fn = lambda z, v, y=t: voxel_weighted_cldice(z, y, v, iterations=2, smooth=0.5)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x.requires_grad_(), w), eps=1e-6, atol=1e-8)


@settings(max_examples=20, deadline=None)
@given(scale=st.floats(1e-30, 1e38), seed=st.integers(0, 100))
def test_weight_scaling_invariance_property(scale, seed):
    """With smooth = 0 the ratios do not change when every weight is scaled by one constant; never NaN."""
    x, t, w = _data((2, 1, 7, 8), seed=seed, dtype=torch.float32)
    base = voxel_weighted_cldice(x, t, w, smooth=0.0, reduction="none")
    scaled = voxel_weighted_cldice(x, t, w * np.float32(scale), smooth=0.0, reduction="none")
    assert torch.isfinite(scaled).all()
    torch.testing.assert_close(scaled, base, rtol=1e-5, atol=1e-6)


def test_unit_weight_is_no_weight_and_the_weight_enters_every_sum():
    x, t, w = _data((2, 2, 8, 9), seed=8)
    torch.testing.assert_close(voxel_weighted_cldice(x, t, torch.ones_like(w)), voxel_weighted_cldice(x, t))
    p = torch.sigmoid(x)
    sp, sk = _ref_skeletons(p, 3), _ref_skeletons(t, 3)
    wn, pn, tn = w.numpy(), p.numpy(), t.numpy()
    tprec = ((wn * sp * tn).sum((1, 2, 3)) + 1) / ((wn * sp).sum((1, 2, 3)) + 1)
    tsens = ((wn * sk * pn).sum((1, 2, 3)) + 1) / ((wn * sk).sum((1, 2, 3)) + 1)
    expected = 1 - 2 * tprec * tsens / (tprec + tsens)
    np.testing.assert_allclose(voxel_weighted_cldice(x, t, w, reduction="none").numpy(), expected, rtol=1e-12)


def test_mask_excludes_after_the_activation():
    x, t, _ = _data((2, 1, 9, 10), seed=9)
    m = torch.ones(2, 1, 9, 10, dtype=torch.bool)
    m[..., 2:5, 3:8] = False
    loss, grad = _grad(lambda z: voxel_weighted_cldice(z, t, mask=m), x)
    wild = torch.where(m, x, torch.tensor([float("inf"), -1e30, float("nan")]).repeat(30)[:90].reshape(9, 10))
    loss2, grad2 = _grad(lambda z: voxel_weighted_cldice(z, t, mask=m), wild)
    torch.testing.assert_close(loss2, loss)  # masked logits (even inf or NaN) have no effect
    assert torch.isfinite(grad2).all() and (grad2[~m] == 0).all() and (grad[~m] == 0).all()
    p = torch.sigmoid(x) * m  # the definition: masked voxels are background of both maps
    torch.testing.assert_close(loss, SoftclDiceLoss(smooth=1e-30)(p, t * m), rtol=1e-12, atol=1e-12)
    none = torch.zeros_like(m)
    assert voxel_weighted_cldice(x, t, mask=none).item() == 0.0  # nothing counted: the smoothed ratios are 1


def test_degenerate_volumes_are_defined():
    z, one = torch.zeros(1, 1, 6, 6, 6), torch.ones(1, 1, 6, 6, 6)
    assert voxel_weighted_cldice(z, z, activation=None).item() == 0.0  # empty target and prediction
    assert voxel_weighted_cldice(one, one, activation=None).item() == 0.0  # all ones: empty skeletons
    assert soft_skeleton(one).sum() == 0
    dot = torch.zeros(1, 1, 6, 6, 6)
    dot[..., 2, 3, 4] = 1.0
    torch.testing.assert_close(soft_skeleton(dot), dot)  # one voxel is its own skeleton
    assert voxel_weighted_cldice(dot, dot, activation=None).item() == pytest.approx(0.0, abs=1e-7)
    tprec, tsens = topology_scores(dot, z, None, cldice_options(activation=None, smooth=0.0))
    assert (tprec.item(), tsens.item()) == (0.0, 1.0)  # all predicted skeleton is wrong; nothing to find
    assert voxel_weighted_cldice(dot, z, activation=None, smooth=0.0).item() == 1.0
    off = torch.roll(dot, 2, dims=-1)  # both skeletons miss: tprec = tsens = 0, the harmonic mean 0, not NaN
    assert voxel_weighted_cldice(dot, off, activation=None, smooth=0.0).item() == 1.0
    assert voxel_weighted_cldice(z[..., :0], z[..., :0]).item() == 0.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computes_in_float32(dtype):
    x, t, w = _data((2, 1, 10, 11, 9), seed=10, dtype=torch.float32)
    xh = x.to(dtype).requires_grad_()
    out = voxel_weighted_cldice(xh, t.to(dtype), w.to(dtype))
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), voxel_weighted_cldice(xh.float(), t, w.to(dtype).float()),
                               rtol=1e-2, atol=1e-3)
    out.backward()
    assert xh.grad.dtype == dtype and torch.isfinite(xh.grad.float()).all()


def test_module_matches_the_functional_and_validates_its_options():
    x, t, w = _data((2, 1, 8, 8), seed=11)
    loss_fn = VoxelWeightedClDice(iterations=2, smooth=0.5, weight_fn=lambda y: 1 + 4 * y)
    torch.testing.assert_close(loss_fn(x, t), voxel_weighted_cldice(x, t, 1 + 4 * t, iterations=2, smooth=0.5))
    torch.testing.assert_close(loss_fn(x, t, w), voxel_weighted_cldice(x, t, w, iterations=2, smooth=0.5))
    loss_fn.reduction = "none"
    assert loss_fn(x, t).shape == (2,) and "iterations=2" in repr(loss_fn) and "weight_fn=" in repr(loss_fn)
    with pytest.raises(ValueError, match="iterations: expected an integer >= 0"):
        loss_fn.iterations = -1


def _bad(**kwargs):
    x, t = torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    args = {"input": x, "target": t, **kwargs}
    return voxel_weighted_cldice(args.pop("input"), args.pop("target"), **args)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"iterations": -1}, ValueError, "iterations: expected an integer >= 0"),
    ({"iterations": 1.5}, TypeError, "iterations: expected an integer"),
    ({"iterations": True}, TypeError, "iterations"),
    ({"target": torch.zeros(2, 1, 4, 5)}, ValueError, r"target: expected the shape of input \[2, 1, 4, 4\]"),
    ({"target": torch.zeros(2, 4, 4)}, ValueError, r"target.unsqueeze\(1\)"),
    ({"target": torch.full((2, 1, 4, 4), 2.0)}, ValueError, "target: expected values in"),
    ({"weight": torch.ones(2, 1, 4, 3)}, ValueError, "weight: expected shape"),
    ({"weight": -torch.ones(2, 1, 4, 4)}, ValueError, "weight: expected finite non-negative"),
    ({"weight": 2.0}, TypeError, "weight"),
    ({"mask": torch.ones(2, 1, 4, 4)}, TypeError, "mask: expected a bool tensor"),
    ({"mask": torch.ones(3, 1, 4, 4, dtype=torch.bool)}, ValueError, "mask"),
    ({"include_background": False}, ValueError, "include_background: expected True for single-channel"),
    ({"activation": "softmax"}, ValueError, "activation: expected input with at least 2 channels"),
    ({"activation": "relu"}, ValueError, "activation"),
    ({"reduction": "weighted_mean"}, ValueError, "reduction"),
    ({"smooth": -1.0}, ValueError, "smooth"),
    ({"harmonic_smooth": float("nan")}, ValueError, "harmonic_smooth"),
    ({"batch": 1}, TypeError, "batch"),
    ({"input": torch.zeros(2, 4)}, ValueError, r"input: expected \[N, C, \*spatial\]"),
    ({"input": torch.zeros(2, 1, 4, 4, dtype=torch.long)}, TypeError, "input"),
    ({"input": torch.full((2, 1, 4, 4), 1.5), "activation": None}, ValueError, "input: expected probabilities"),
])
def test_bad_input_raises_naming_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        _bad(**kwargs)


def test_soft_skeleton_rejects_bad_input_and_keeps_monai_values():
    with pytest.raises(ValueError, match="iterations"):
        soft_skeleton(torch.zeros(1, 1, 4), -2)
    with pytest.raises(ValueError, match=r"x: expected \[N, C, \*spatial\]"):
        soft_erode(torch.zeros(4))
    a = torch.rand(2, 2, 7, 8, 9, generator=torch.Generator().manual_seed(12))
    assert torch.equal(soft_skeleton(a, 3), soft_skel(a, 3))  # bit for bit


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_the_cpu():
    x, t, w = _data((2, 2, 12, 13, 14), seed=13, dtype=torch.float32)
    cpu, gcpu = _grad(lambda z: voxel_weighted_cldice(z, t, w), x)
    dev, gdev = _grad(lambda z: voxel_weighted_cldice(z, t.cuda(), w.cuda()), x.cuda())
    torch.testing.assert_close(dev.cpu(), cpu, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gdev.cpu(), gcpu, rtol=1e-4, atol=1e-7)
