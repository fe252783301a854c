"""boundary_loss / BoundaryLoss against the reference SurfaceLoss re-derived (einsum of probabilities and
distance maps, mean), maps from the re-derived one_hot2dist, gradcheck in float64, cropping as the oracle of
0/1 weights and masks, and BoundaryLossSchedule against the paper's and the reference's schedules iterated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.maps.test_signed import one_hot2dist
from voxweight.losses import BoundaryLoss, BoundaryLossSchedule, VoxelWeightedDiceCE, boundary_loss

SHAPE = (2, 3, 6, 5, 4)


def _data(seed=0, shape=SHAPE, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype) * 2
    sdm = torch.randn(shape, generator=g, dtype=dtype) * 3
    w = torch.rand((shape[0], 1, *shape[2:]), generator=g, dtype=dtype) * 2
    return x, sdm, w


def surface_loss(probs: torch.Tensor, dist_maps: torch.Tensor, idc: list[int]) -> torch.Tensor:
    """Oracle: LIVIAETS/boundary-loss losses.SurfaceLoss re-derived (einsum over the selected classes, mean)."""
    pc, dc = probs[:, idc], dist_maps[:, idc]
    return torch.einsum("bk...,bk...->bk...", pc, dc).mean()


def _value_and_grad(fn, x):
    x = x.clone().requires_grad_(True)
    loss = fn(x)
    return loss.detach(), torch.autograd.grad(loss, x)[0]


@pytest.mark.parametrize("include_background", [False, True])
def test_softmax_equals_reference_surface_loss_values_and_gradients(include_background):
    x, sdm, _ = _data(1)
    idc = [0, 1, 2] if include_background else [1, 2]
    ours = _value_and_grad(lambda z: boundary_loss(z, sdm, include_background=include_background), x)
    ref = _value_and_grad(lambda z: surface_loss(torch.softmax(z, 1), sdm, idc), x)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_sigmoid_and_given_probabilities_equal_the_reference():
    x, sdm, _ = _data(2)
    ours = boundary_loss(x, sdm, activation="sigmoid")
    torch.testing.assert_close(ours, surface_loss(torch.sigmoid(x), sdm, [1, 2]), rtol=1e-12, atol=1e-12)
    p = torch.softmax(x, 1)
    for activation in ("none", None):
        torch.testing.assert_close(boundary_loss(p, sdm, activation=activation, include_background=True),
                                   surface_loss(p, sdm, [0, 1, 2]), rtol=1e-12, atol=1e-12)


def test_end_to_end_with_reference_maps_from_labels():
    """sdm from class_signed_distance(kervadec) of a label batch: the reference pipeline's loss."""
    from voxweight.maps import class_signed_distance

    g = torch.Generator().manual_seed(3)
    y = torch.randint(0, 3, (2, 8, 7, 6), generator=g)
    y[1][y[1] == 2] = 0  # class 2 absent from the second sample
    x = torch.randn(2, 3, 8, 7, 6, generator=g)
    sdm = class_signed_distance(y, multiclass=True, num_classes=3, convention="kervadec", spacing=(2.0, 1.0, 0.5))
    one_hot = torch.nn.functional.one_hot(y, 3).movedim(-1, 1).numpy()
    ref_maps = torch.from_numpy(np.stack([one_hot2dist(s, (2.0, 1.0, 0.5)) for s in one_hot]))
    torch.testing.assert_close(sdm, ref_maps, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(boundary_loss(x, sdm), surface_loss(torch.softmax(x, 1), ref_maps, [1, 2]),
                               rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_gradcheck_float64_with_weight_and_mask(activation):
    x, sdm, w = _data(4, shape=(2, 3, 3, 4))
    m = torch.rand(2, 3, 3, 4, generator=torch.Generator().manual_seed(5)) > 0.3
    for reduction in ("mean", "weighted_mean", "sum"):
        assert torch.autograd.gradcheck(lambda z, r=reduction: boundary_loss(z, sdm, activation=activation, weight=w,
                                                                            mask=m, reduction=r),
                                        (x.clone().requires_grad_(True),))


def test_zero_one_weight_and_mask_equal_cropping():
    x, sdm, _ = _data(6)
    box = (slice(None), slice(None), slice(1, 4), slice(0, 3), slice(2, 4))
    w = torch.zeros(2, 1, 6, 5, 4, dtype=torch.float64)
    w[box] = 1
    crop = boundary_loss(x[box], sdm[box])
    torch.testing.assert_close(boundary_loss(x, sdm, weight=w, reduction="weighted_mean"), crop)
    torch.testing.assert_close(boundary_loss(x, sdm, mask=w.bool()), crop)
    torch.testing.assert_close(boundary_loss(x, sdm, weight=w, reduction="sum"), boundary_loss(x[box], sdm[box],
                                                                                               reduction="sum"))


def test_masked_logits_have_no_effect_and_reductions_say_what_they_divide_by():
    x, sdm, w = _data(7)
    m = torch.rand(2, 1, 6, 5, 4, generator=torch.Generator().manual_seed(8)) > 0.4
    garbage = torch.where(m, x, torch.tensor(float("inf"), dtype=x.dtype))
    value, grad = _value_and_grad(lambda z: boundary_loss(z, sdm, mask=m), garbage)
    torch.testing.assert_close(value, boundary_loss(x, sdm, mask=m))
    assert torch.isfinite(grad).all() and not grad[(~m).expand_as(grad)].any()
    none = boundary_loss(x, sdm, weight=w, reduction="none")
    assert none.shape == (2, 2, 6, 5, 4)
    torch.testing.assert_close(none, torch.softmax(x, 1)[:, 1:] * sdm[:, 1:] * w)
    torch.testing.assert_close(boundary_loss(x, sdm, weight=w, reduction="sum"), none.sum())
    torch.testing.assert_close(boundary_loss(x, sdm, weight=w), none.sum() / none.numel())
    torch.testing.assert_close(boundary_loss(x, sdm, weight=w, reduction="weighted_mean"),
                               none.sum() / w.expand_as(none).sum())
    per_channel = torch.rand(2, 3, 6, 5, 4, generator=torch.Generator().manual_seed(9), dtype=x.dtype)
    torch.testing.assert_close(boundary_loss(x, sdm, weight=per_channel, reduction="none"),
                               torch.softmax(x, 1)[:, 1:] * sdm[:, 1:] * per_channel[:, 1:])  # channel 0 dropped


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(dtype):
    x, sdm, w = _data(9, dtype=torch.float32)
    xh = x.to(dtype).requires_grad_(True)
    out = boundary_loss(xh, sdm.to(dtype), weight=w.to(dtype))
    out.backward()
    assert out.dtype == dtype and torch.isfinite(out) and torch.isfinite(xh.grad).all()
    ref = boundary_loss(xh.detach().float(), sdm.to(dtype).float(), weight=w.to(dtype).float())
    torch.testing.assert_close(out.float(), ref, rtol=1e-2, atol=1e-2)
    big = torch.full((1, 2, 64, 64), 6e4, dtype=torch.float32)  # the sum exceeds float16: saturates, not inf
    assert boundary_loss(torch.zeros(1, 2, 64, 64, dtype=torch.float16), big.half(), reduction="sum").isfinite()


def test_degenerate_cases_defined():
    x, _, _ = _data(10)
    absent = torch.zeros(SHAPE, dtype=torch.float64)  # a class absent everywhere: its map is 0, nothing to add
    assert boundary_loss(x, absent).item() == 0.0
    full = torch.zeros(1, 2, 1, 3, dtype=torch.float64)
    full[:, 1] = -1.0  # class 1 everywhere (a reference-style map): the loss is lowest at p = 1
    assert boundary_loss(torch.tensor([[[[-9.0] * 3], [[9.0] * 3]]], dtype=torch.float64), full) < -0.99
    one = torch.zeros(1, 2, 1, 1, 1)
    assert boundary_loss(one, one).item() == 0.0  # one voxel
    empty = torch.zeros(2, 3, 0, 4)
    assert boundary_loss(empty, empty).item() == 0.0  # zero elements: 0, not NaN
    m = torch.zeros(2, 1, 6, 5, 4, dtype=torch.bool)
    assert boundary_loss(x, _data(10)[1], mask=m).item() == 0.0  # everything masked out


def test_module_equals_functional_and_validates_options_when_assigned():
    x, sdm, w = _data(11)
    loss_fn = BoundaryLoss(activation="sigmoid", include_background=True, reduction="sum")
    torch.testing.assert_close(loss_fn(x, sdm, w), boundary_loss(x, sdm, activation="sigmoid",
                                                                 include_background=True, weight=w, reduction="sum"))
    assert "activation='sigmoid'" in repr(loss_fn)
    with pytest.raises(ValueError, match=r"reduction: expected one of"):
        loss_fn.reduction = "avg"
    with pytest.raises(ValueError, match=r"activation: expected one of 'softmax', 'sigmoid', 'none', got 'tanh'"):
        BoundaryLoss(activation="tanh")


def test_bad_input_raises_naming_the_argument():
    x, sdm, _ = _data(12)
    with pytest.raises(ValueError, match=r"sdm: expected the shape of input \[2, 3, 6, 5, 4\] .*got \[2, 2, 6, 5, 4\]"):
        boundary_loss(x, sdm[:, 1:])
    for bad in (float("inf"), float("nan")):
        s = sdm.clone()
        s[0, 1, 2, 2, 2] = bad
        with pytest.raises(ValueError, match=r"sdm: expected finite values"):
            boundary_loss(x, s)
    with pytest.raises(TypeError, match=r"sdm: expected a floating-point tensor"):
        boundary_loss(x, sdm.long())
    with pytest.raises(TypeError, match=r"sdm: expected a torch.Tensor"):
        boundary_loss(x, sdm.numpy())
    with pytest.raises(ValueError, match=r"activation: expected one of .*did you mean 'softmax'"):
        boundary_loss(x, sdm, activation="softmx")
    with pytest.raises(ValueError, match=r"include_background: expected True for single-channel input"):
        boundary_loss(x[:, :1], sdm[:, :1], activation="sigmoid")
    with pytest.raises(ValueError, match=r"input: expected probabilities in \[0, 1\]"):
        boundary_loss(x, sdm, activation="none")
    with pytest.raises(ValueError, match=r"input: expected \[N, C, \*spatial\]"):
        boundary_loss(x[0, 0, 0], sdm[0, 0, 0])
    with pytest.raises(ValueError, match=r"weight: expected shape"):
        boundary_loss(x, sdm, weight=torch.ones(2, 6, 5, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"mask: expected a bool tensor"):
        boundary_loss(x, sdm, mask=torch.ones(2, 1, 6, 5, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_equals_cpu_and_sdm_on_another_device_raises():
    x, sdm, w = _data(13)
    torch.testing.assert_close(boundary_loss(x.cuda(), sdm.cuda(), weight=w.cuda()).cpu(),
                               boundary_loss(x, sdm, weight=w))
    with pytest.raises(ValueError, match=r"sdm: expected a tensor on cuda"):
        boundary_loss(x.cuda(), sdm)


def test_schedule_rebalance_is_the_papers():
    """Oracle: alpha from 1, minus 0.01 per epoch, clipped to [0.01, 1] (the reference's Keras port); b = 1 - a."""
    schedule, alpha = BoundaryLossSchedule(), 1.0
    for epoch in range(150):
        a, b = schedule.weights()
        assert a == pytest.approx(alpha, abs=1e-12) and b == pytest.approx(1 - alpha, abs=1e-12)
        assert schedule.weights(epoch) == (a, b)
        schedule.step()
        alpha = float(np.clip(alpha - 0.01, 0.01, 1))
    assert schedule.weights(99) == pytest.approx((0.01, 0.99)) and schedule.weights(10**6) == (0.01, 0.99)


def test_schedule_steal_is_the_references_steal_weight():
    """Oracle: scheduler.StealWeight(to_steal=0.01) applied after each epoch to weights starting at (1, 0.01)."""
    schedule, weights = BoundaryLossSchedule(mode="steal", floor=0.1), [1.0, 0.01]
    for epoch in range(200):
        assert schedule.weights(epoch) == pytest.approx(tuple(weights), abs=1e-12)
        weights = [max(0.1, weights[0] - 0.01), weights[1] + 0.01]
    assert schedule.weights(500) == pytest.approx((0.1, 5.01))


def test_schedule_combines_losses_steps_and_round_trips_its_state():
    x = torch.randn(2, 3, 5, 4, requires_grad=True)
    y = torch.randint(0, 3, (2, 1, 5, 4))
    sdm = torch.randn(2, 3, 5, 4)
    region = VoxelWeightedDiceCE()
    schedule = BoundaryLossSchedule(start=0.9, step=0.1, floor=0.2)
    for _ in range(3):
        schedule.step()
    a, b = schedule.weights()
    assert (a, b) == pytest.approx((0.6, 0.4))
    total = schedule(region(x, y), boundary_loss(x, sdm))
    torch.testing.assert_close(total, a * region(x, y) + b * boundary_loss(x, sdm))
    total.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    restored = BoundaryLossSchedule(mode="steal")
    restored.load_state_dict(schedule.state_dict())
    assert restored.epoch == 3 and restored.weights() == schedule.weights() and restored.mode == "rebalance"
    assert "epoch=3" in repr(restored)


def test_schedule_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"start: expected a region weight in \(0, 1\]"):
        BoundaryLossSchedule(start=1.5)
    with pytest.raises(ValueError, match=r"floor: expected a value in \[0, start=0.5\]"):
        BoundaryLossSchedule(start=0.5, floor=0.6)
    with pytest.raises(ValueError, match=r"step: expected a finite number >= 0"):
        BoundaryLossSchedule(step=-0.01)
    with pytest.raises(ValueError, match=r"boundary_start: expected None for mode='rebalance'"):
        BoundaryLossSchedule(boundary_start=0.1)
    with pytest.raises(ValueError, match=r"mode: expected one of 'rebalance', 'steal'"):
        BoundaryLossSchedule(mode="linear")
    with pytest.raises(TypeError, match=r"epoch: expected an integer >= 0"):
        BoundaryLossSchedule().weights(1.5)
    with pytest.raises(TypeError, match=r"epoch: expected an integer >= 0"):
        BoundaryLossSchedule().weights(True)
    with pytest.raises(ValueError, match=r"epoch: expected an integer >= 0, got -1"):
        BoundaryLossSchedule().weights(-1)
    assert BoundaryLossSchedule().weights(np.int64(20)) == pytest.approx((0.8, 0.2))
