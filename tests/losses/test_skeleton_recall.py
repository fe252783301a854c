"""Skeleton Recall against the reference SoftSkeletonRecallLoss (MIC-DKFZ/Skeleton-Recall, re-derived below), a
hand-computed 2-D case, gradcheck in float64, weight scaling and crop properties, masks, half precision,
degenerate skeletons, reductions and the errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.morphology import dilation, skeletonize

from voxweight.losses.skeleton_recall import SkeletonRecallLoss, skeleton_recall_loss, weighted_skeleton_recall


def reference_recall(x, y, *, batch=True, smooth=1.0, loss_mask=None):
    """The reference loss as its paper and code define it: softmax, channel 0 dropped, class ids one-hot
    encoded (a skeleton of x's shape taken as one-hot), loss_mask multiplying both sums, sums over the batch
    too with batch_dice, recall = (I + smooth) / max(T + smooth, 1e-8), and the loss -mean(recall)."""
    p = torch.softmax(x, 1)[:, 1:]
    if y.ndim == x.ndim - 1:
        y = y[:, None]
    onehot = y.to(x.dtype) if y.shape == x.shape else torch.zeros_like(x).scatter(1, y.long(), 1.0)
    onehot = onehot[:, 1:]
    m = 1.0 if loss_mask is None else loss_mask.to(x.dtype)
    axes = tuple(range(2, x.ndim))
    inter, ground = (p * onehot * m).sum(axes), (onehot * m).sum(axes)
    if batch:
        inter, ground = inter.sum(0), ground.sum(0)
    return -((inter + smooth) / torch.clamp(ground + smooth, min=1e-8)).mean()


def _case(n=2, c=3, shape=(6, 7, 5), seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, *shape, generator=g, dtype=dtype)
    labels = torch.randint(0, c, (n, 1, *shape), generator=g)
    on_tube = torch.rand(n, 1, *shape, generator=g) > 0.6
    return x, torch.where(on_tube, labels, 0), g


def _tubed_skeleton(label):
    """The reference's transform: skeletonize the foreground, two dilations, the label's ids kept."""
    skel = dilation(dilation(skeletonize(label > 0).astype(np.int16)))
    return skel * label.astype(np.int16)


# --- the reference -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [True, False])
@pytest.mark.parametrize("shape", [(9, 8), (6, 7, 5)])
@pytest.mark.parametrize("masked", [False, True])
def test_equals_the_reference_plus_one(batch, shape, masked):
    x, s, g = _case(shape=shape)
    mask = torch.rand(2, 1, *shape, generator=g) > 0.3 if masked else None
    ours = skeleton_recall_loss(x, s, batch=batch, mask=mask)
    torch.testing.assert_close(ours - 1, reference_recall(x, s, batch=batch, loss_mask=mask), rtol=0, atol=1e-12)
    ids = skeleton_recall_loss(x, s[:, 0], batch=batch, mask=mask)  # [N, *spatial] ids: the same
    torch.testing.assert_close(ids, ours, rtol=0, atol=0)


def test_one_hot_skeleton_and_gradient_match_the_reference():
    x, s, _ = _case()
    onehot = torch.zeros_like(x).scatter(1, s, 1.0)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = skeleton_recall_loss(x1, onehot, batch=True, smooth=1e-5)
    ref = reference_recall(x2, s, batch=True, smooth=1e-5)
    torch.testing.assert_close(ours - 1, ref, rtol=0, atol=1e-12)
    (ours.backward(), ref.backward())
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-14)


def test_on_the_references_tubed_skeleton_of_a_vessel_label():
    label = np.zeros((2, 24, 24, 24), dtype=np.int16)
    label[0, 4:20, 10:13, 10:13] = 1  # a tube
    label[0, 11:14, 4:20, 11:14] = 2  # a crossing tube of another class
    label[1, 5:8, 5:8, 2:22] = 2
    skel = torch.from_numpy(np.stack([_tubed_skeleton(v) for v in label]))[:, None]
    assert skel.dtype == torch.int16 and set(skel.unique().tolist()) == {0, 1, 2}
    x = torch.randn(2, 3, 24, 24, 24, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for batch in (True, False):
        torch.testing.assert_close(skeleton_recall_loss(x, skel, batch=batch) - 1,
                                   reference_recall(x, skel, batch=batch), rtol=0, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(2, 4), st.integers(1, 6), st.integers(1, 6), st.booleans(),
       st.floats(1e-6, 2.0), st.integers(0, 2**16))
def test_property_reference_and_range(n, c, h, w, batch, smooth, seed):
    # smooth >= 1e-8: below, the reference's max(T + smooth, 1e-8) turns an absent class's recall to ~0 (see
    # the degenerate test), where ours is smooth / smooth = 1
    x, s, _ = _case(n, c, (h, w), seed)
    ours = skeleton_recall_loss(x, s, batch=batch, smooth=smooth)
    assert 0 <= ours.item() <= 1
    torch.testing.assert_close(ours - 1, reference_recall(x, s, batch=batch, smooth=smooth), rtol=0, atol=1e-12)


# --- hand-computed -----------------------------------------------------------------------------------------


def test_hand_computed_2d_case():
    # probabilities given (activation=None): 2 x 3 image, classes 0, 1, 2
    p1 = torch.tensor([[0.9, 0.2, 0.0], [0.5, 0.1, 0.0]], dtype=torch.float64)
    p2 = torch.tensor([[0.0, 0.7, 0.3], [0.0, 0.4, 1.0]], dtype=torch.float64)
    p = torch.stack([1 - p1 - p2, p1, p2])[None]
    s = torch.tensor([[[1, 1, 0], [0, 2, 2]]])
    w = torch.tensor([[[2.0, 1.0, 1.0], [1.0, 3.0, 1.0]]], dtype=torch.float64)[None]
    rows = skeleton_recall_loss(p, s, activation=None, smooth=0.0, reduction="none")
    # class 1 on (0,0), (0,1): (0.9 + 0.2) / 2; class 2 on (1,1), (1,2): (0.4 + 1.0) / 2
    torch.testing.assert_close(rows, torch.tensor([[1 - 1.1 / 2, 1 - 1.4 / 2]], dtype=torch.float64))
    weighted = skeleton_recall_loss(p, s, activation=None, smooth=1.0, weight=w, reduction="none")
    # class 1: (2 * 0.9 + 1 * 0.2 + 1) / (2 + 1 + 1); class 2: (3 * 0.4 + 1 * 1.0 + 1) / (3 + 1 + 1)
    torch.testing.assert_close(weighted, torch.tensor([[1 - 3.0 / 4, 1 - 3.2 / 5]], dtype=torch.float64))
    torch.testing.assert_close(skeleton_recall_loss(p, s, activation=None, smooth=1.0, weight=w),
                               weighted.mean())
    with_bg = skeleton_recall_loss(p, s, activation=None, smooth=0.0, include_background=True, reduction="none")
    # background: the id-0 voxels (0,2) and (1,0), p0 = 1 - 0.0 - 0.3 and 1 - 0.5 - 0.0
    torch.testing.assert_close(with_bg[0, 0], torch.tensor(1 - (0.7 + 0.5) / 2, dtype=torch.float64))


def test_sigmoid_scores_each_channel_on_its_own():
    x = torch.tensor([[[[0.0, 2.0, -1.0]], [[1.0, -3.0, 0.5]]]], dtype=torch.float64)  # [1, 2, 1, 3]
    s = torch.tensor([[[[1, 1, 0]], [[0, 1, 1]]]])  # multi-label: voxel 1 on both skeletons
    rows = skeleton_recall_loss(x, s, activation="sigmoid", include_background=True, smooth=0.0, reduction="none")
    sig = torch.sigmoid(x)[0, :, 0]
    expected = torch.stack([1 - (sig[0, 0] + sig[0, 1]) / 2, 1 - (sig[1, 1] + sig[1, 2]) / 2])[None]
    torch.testing.assert_close(rows, expected)


# --- gradients, weights, masks -----------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
@pytest.mark.parametrize("batch", [False, True])
def test_gradcheck_float64(activation, batch):
    x, s, g = _case(shape=(4, 3, 3))
    if activation == "sigmoid":
        s = torch.zeros_like(x).scatter(1, s, 1.0)
    w = torch.rand(2, 1, 4, 3, 3, generator=g, dtype=torch.float64) + 0.1
    m = torch.rand(2, 1, 4, 3, 3, generator=g) > 0.2
    x.requires_grad_()

    def f(x):
        return skeleton_recall_loss(x, s, activation=activation, batch=batch, weight=w, mask=m)

    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradcheck(lambda w: skeleton_recall_loss(x.detach(), s, activation=activation, weight=w),
                                    (w.clone().requires_grad_(),))


def test_weight_scaling_changes_nothing_without_smoothing():
    x, s, g = _case()
    w = torch.rand(2, 1, 6, 7, 5, generator=g, dtype=torch.float64)
    for batch in (False, True):
        a = skeleton_recall_loss(x, s, weight=w, smooth=0.0, batch=batch)
        torch.testing.assert_close(skeleton_recall_loss(x, s, weight=5 * w, smooth=0.0, batch=batch), a)
    # with smoothing, epsilon does not scale with w: the loss moves (as the class docstring says)
    assert skeleton_recall_loss(x, s, weight=5 * w) != skeleton_recall_loss(x, s, weight=w)


def test_zero_one_weight_is_a_crop():
    x, s, _ = _case(shape=(8, 8, 8))
    w = torch.zeros(1, 1, 8, 8, 8, dtype=torch.float64)
    w[..., 2:6, 1:7, 3:8] = 1
    crop = (..., slice(2, 6), slice(1, 7), slice(3, 8))
    for batch in (False, True):
        torch.testing.assert_close(skeleton_recall_loss(x, s, weight=w, batch=batch),
                                   skeleton_recall_loss(x[crop], s[crop], batch=batch))


def test_masked_logits_have_no_effect_at_any_value():
    x, s, g = _case()
    m = torch.rand(2, 1, 6, 7, 5, generator=g) > 0.4
    y = torch.where(m, x, torch.tensor([float("inf"), float("nan"), -1e30], dtype=x.dtype).reshape(1, 3, 1, 1, 1))
    x, y = x.requires_grad_(), y.requires_grad_()
    a, b = skeleton_recall_loss(x, s, mask=m), skeleton_recall_loss(y, s, mask=m)
    torch.testing.assert_close(a, b)
    (a.backward(), b.backward())
    torch.testing.assert_close(x.grad, y.grad)
    assert (y.grad[~m.expand_as(y)] == 0).all()
    # a mask is the 0/1 weight of the same voxels
    torch.testing.assert_close(a, skeleton_recall_loss(x, s, weight=m.to(x.dtype)))


def test_sample_weight_weights_the_rows_or_the_sums():
    x, s, _ = _case()
    b = torch.tensor([3.0, 1.0], dtype=torch.float64)
    rows = skeleton_recall_loss(x, s, reduction="none")
    torch.testing.assert_close(skeleton_recall_loss(x, s, sample_weight=b), (b[:, None] * rows).sum() / (2 * 4))
    with_map = skeleton_recall_loss(x, s, batch=True, weight=b.reshape(2, 1, 1, 1, 1).expand(2, 1, 6, 7, 5))
    torch.testing.assert_close(skeleton_recall_loss(x, s, batch=True, sample_weight=b), with_map)


# --- precision, degenerate skeletons, reductions ------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computes_in_float32(dtype):
    x, s, _ = _case(shape=(32, 32, 16), dtype=torch.float32)
    h = x.to(dtype).requires_grad_()
    out = skeleton_recall_loss(h, s)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), skeleton_recall_loss(h.detach().float(), s), rtol=1e-2, atol=1e-3)
    out.backward()
    assert h.grad.dtype == dtype and h.grad.isfinite().all() and h.grad.abs().sum() > 0


def test_empty_skeleton_is_a_perfect_recall():
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    empty = torch.zeros(2, 1, 5, 5, dtype=torch.long)
    for smooth in (1.0, 1e-5, 0.0):
        out = skeleton_recall_loss(x, empty, smooth=smooth)
        assert out.item() == 0
        (grad,) = torch.autograd.grad(out, x)
        assert (grad == 0).all()
    # the reference: smooth / smooth = 1 (the same, offset by 1); with smooth 0 it divides 0 by 1e-8: recall 0
    assert reference_recall(x, empty, smooth=1.0).item() == -1
    assert reference_recall(x, empty, smooth=0.0).item() == 0


def test_all_skeleton_one_voxel_and_absent_class():
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    full = torch.ones(1, 1, 4, 4, dtype=torch.long)  # every voxel on class 1's skeleton, class 2 absent
    rows = skeleton_recall_loss(x, full, smooth=0.0, reduction="none")
    torch.testing.assert_close(rows, torch.stack([1 - torch.softmax(x, 1)[0, 1].mean(), torch.tensor(0.0).double()])
                               [None])
    one = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    one[0, 0, 2, 1] = 2
    rows = skeleton_recall_loss(x, one, smooth=0.0, reduction="none")
    torch.testing.assert_close(rows[0, 1], 1 - torch.softmax(x, 1)[0, 2, 2, 1])
    perfect = torch.zeros(1, 3, 4, 4, dtype=torch.float64).scatter(1, one, 1.0)
    assert skeleton_recall_loss(perfect, one, activation=None, smooth=0.0).item() == 0


def test_reductions():
    x, s, _ = _case()
    rows = skeleton_recall_loss(x, s, reduction="none")
    assert rows.shape == (2, 2) and skeleton_recall_loss(x, s, batch=True, reduction="none").shape == (2,)
    torch.testing.assert_close(skeleton_recall_loss(x, s, reduction="sum"), rows.sum())
    torch.testing.assert_close(skeleton_recall_loss(x, s), rows.mean())
    assert skeleton_recall_loss(x, s, include_background=True, reduction="none").shape == (2, 3)


# --- the module ----------------------------------------------------------------------------------------------


def test_module_equals_the_function_and_validates_assigned_options():
    x, s, g = _case()
    w = torch.rand(2, 1, 6, 7, 5, generator=g, dtype=torch.float64)
    loss_fn = SkeletonRecallLoss(batch=True, smooth=1e-5)
    torch.testing.assert_close(loss_fn(x, s, w), skeleton_recall_loss(x, s, batch=True, smooth=1e-5, weight=w))
    seen = []
    loss_fn = SkeletonRecallLoss(weight_fn=lambda t: (seen.append(t), torch.ones_like(t, dtype=x.dtype))[1])
    torch.testing.assert_close(loss_fn(x, s), skeleton_recall_loss(x, s))
    assert seen[0] is s
    loss_fn.reduction = "none"
    assert loss_fn(x, s).shape == (2, 2)
    with pytest.raises(ValueError, match=r"reduction: .* got 'avg'"):
        loss_fn.reduction = "avg"
    assert "batch=False" in repr(loss_fn) and "weight_fn=<lambda>" in repr(loss_fn)


# --- bad input -----------------------------------------------------------------------------------------------


def test_skeleton_errors_name_the_skeleton():
    x, s, _ = _case()
    with pytest.raises(ValueError, match=r"skeleton: expected class ids in \[0, 2\] \(input has 3 channels\)"):
        skeleton_recall_loss(x, torch.full_like(s, 3))
    with pytest.raises(ValueError, match=r"skeleton: expected class ids in \[0, 2\]"):
        skeleton_recall_loss(x, -s - 1)
    with pytest.raises(ValueError, match=r"skeleton: expected the shape of input \[2, 3, 6, 7, 5\] \(or class ids"):
        skeleton_recall_loss(x, s[..., :4])
    with pytest.raises(ValueError, match=r"skeleton: expected the shape of input"):
        skeleton_recall_loss(x, s.expand(2, 2, 6, 7, 5))
    with pytest.raises(TypeError, match=r"skeleton: expected integer class ids .* \(use skeleton.long\(\)\)"):
        skeleton_recall_loss(x, s.double())
    with pytest.raises(ValueError, match=r"skeleton: expected values in \[0, 1\] \(a one-hot or soft skeleton"):
        skeleton_recall_loss(x, 2 * torch.ones_like(x))
    with pytest.raises(TypeError, match=r"skeleton: expected a torch.Tensor, got array"):
        skeleton_recall_loss(x, s.numpy())
    with pytest.raises(ValueError, match=r"skeleton: expected the shape of input \[2, 3, 6, 7, 5\], got \[2, 1"):
        skeleton_recall_loss(x, s, activation="sigmoid")  # sigmoid: one skeleton channel per input channel


def test_channel_and_option_errors():
    x, s, _ = _case()
    one = torch.randn(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"include_background: expected input with at least 2 channels for "
                                         r"activation='softmax'"):
        skeleton_recall_loss(one, torch.zeros(2, 1, 4, 4, dtype=torch.long), include_background=True)
    with pytest.raises(ValueError, match=r"input: expected input with at least 2 channels"):
        skeleton_recall_loss(one, torch.zeros(2, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"include_background: expected True for single-channel input"):
        skeleton_recall_loss(one, torch.zeros(2, 1, 4, 4), activation="sigmoid")
    with pytest.raises(ValueError, match=r"activation: .* got 'softmx' \(did you mean 'softmax'\?\)"):
        skeleton_recall_loss(x, s, activation="softmx")
    with pytest.raises(ValueError, match=r"reduction: .* got 'mena'"):
        SkeletonRecallLoss(reduction="mena")
    with pytest.raises(ValueError, match="smooth"):
        skeleton_recall_loss(x, s, smooth=-1.0)
    with pytest.raises(TypeError, match="batch"):
        skeleton_recall_loss(x, s, batch=1)
    with pytest.raises(TypeError, match=r"input: expected a floating-point tensor"):
        skeleton_recall_loss(s, s)
    with pytest.raises(ValueError, match=r"input: expected \[N, C, \*spatial\] with at least one spatial axis"):
        skeleton_recall_loss(x[:, :, 0, 0, 0], s[:, :, 0, 0, 0])


def test_weight_and_mask_errors():
    x, s, _ = _case()
    with pytest.raises(ValueError, match=r"weight: expected shape \[2, 3, 6, 7, 5\] or with some dims of size 1"):
        skeleton_recall_loss(x, s, weight=torch.ones(2, 6, 7, 5, dtype=x.dtype))
    with pytest.raises(ValueError, match=r"weight: expected finite non-negative values"):
        skeleton_recall_loss(x, s, weight=-torch.ones(2, 1, 6, 7, 5, dtype=x.dtype))
    with pytest.raises(TypeError, match=r"mask: expected a bool tensor"):
        skeleton_recall_loss(x, s, mask=torch.ones(2, 1, 6, 7, 5))
    with pytest.raises(ValueError, match=r"sample_weight: expected shape \[2\]"):
        weighted_skeleton_recall(x, s, None, SkeletonRecallLoss().options, sample_weight=[1.0, 2.0, 3.0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_equals_cpu():
    x, s, g = _case(shape=(16, 16, 8))
    w = torch.rand(2, 1, 16, 16, 8, generator=g, dtype=torch.float64)
    m = torch.rand(2, 1, 16, 16, 8, generator=g) > 0.2
    xc = x.cuda().requires_grad_()
    x = x.requires_grad_()
    out_c = skeleton_recall_loss(xc, s.cuda(), weight=w.cuda(), mask=m.cuda(), batch=True)
    out = skeleton_recall_loss(x, s, weight=w, mask=m, batch=True)
    torch.testing.assert_close(out_c.cpu(), out)
    (out_c.backward(), out.backward())
    torch.testing.assert_close(xc.grad.cpu(), x.grad)
    with pytest.raises(ValueError, match="skeleton: expected a tensor on cuda"):
        skeleton_recall_loss(xc, s)
