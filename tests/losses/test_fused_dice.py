"""The compiled sigmoid-Dice kernels (fused_dice.sigmoid_sums) against the eager sums of torch.sigmoid."""

from __future__ import annotations

import pytest
import torch

from voxweight.losses import fused_dice
from voxweight.losses.fused_dice import sigmoid_sums
from voxweight.losses.sums import plain_sums

SHAPE = (2, 3, 6, 5, 4)


def _data(seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(SHAPE, generator=g, dtype=dtype) * 3
    t = torch.rand(SHAPE, generator=g, dtype=dtype)
    w = torch.rand((2, 1, *SHAPE[2:]), generator=g, dtype=dtype) * 4
    m = torch.rand((2, 1, *SHAPE[2:]), generator=g) > 0.2
    return x, t, w, m


def _reference(x, t, w, m, squared):
    p = torch.sigmoid(x)
    if m is not None:
        p, t = torch.where(m, p, 0), torch.where(m, t, 0)
    return plain_sums(p, t, w, squared)


def _sums_and_grad(fn, x, coefficients):
    x = x.clone().requires_grad_(True)
    sums = fn(x)
    (grad,) = torch.autograd.grad(sums[:2], x, coefficients)
    return [s.detach() for s in sums], grad


@pytest.mark.slow
@pytest.mark.parametrize(("weighted", "masked", "squared"), [(True, True, False), (False, False, False),
                                                        (True, False, True)])  # each one a compilation
def test_fused_equals_eager_sigmoid_sums(weighted, masked, squared):
    x, t, w, m = _data()
    w, m = (w if weighted else None), (m if masked else None)
    coefficients = [torch.randn(2, 3, generator=torch.Generator().manual_seed(1)) for _ in range(2)]
    ours = _sums_and_grad(lambda z: sigmoid_sums(z, t, w, m, squared, fused=True), x, coefficients)
    if fused_dice._failed:
        pytest.skip("torch.compile is unavailable here; the eager path is what runs")
    ref = _sums_and_grad(lambda z: _reference(z, t, w, m, squared), x, coefficients)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("squared", [False, True])
def test_eager_path_equals_the_reference_and_masked_logits_do_nothing(squared):
    x, t, w, m = _data(2, torch.float64)
    x2 = torch.where(m, x, torch.tensor(1e4, dtype=x.dtype))
    coefficients = [torch.randn(2, 3, dtype=torch.float64) for _ in range(2)]
    ours = _sums_and_grad(lambda z: sigmoid_sums(z, t, w, m, squared, fused=False), x2, coefficients)
    ref = _sums_and_grad(lambda z: _reference(z, t, w, m, squared), x, coefficients)
    torch.testing.assert_close(ours, ref)
    assert torch.count_nonzero(ours[1] * ~m) == 0


@pytest.mark.slow
def test_double_backward_through_the_fused_kernel_is_the_eager_one():
    x, t, w, m = _data(3, torch.float64)
    x = x.requires_grad_(True)
    out = sigmoid_sums(x, t, w, m, False, fused=True)
    (grad,) = torch.autograd.grad(out[0].sum() + out[1].pow(2).sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(grad.sum(), x)
    ref = _reference(x, t, w, m, False)
    (grad_ref,) = torch.autograd.grad(ref[0].sum() + ref[1].pow(2).sum(), x, create_graph=True)
    (second_ref,) = torch.autograd.grad(grad_ref.sum(), x)
    torch.testing.assert_close((grad, second), (grad_ref, second_ref))


def test_targets_needing_a_gradient_take_the_eager_path():
    x, t, w, m = _data(4, torch.float64)
    t = t.requires_grad_(True)
    inter, _, ground = sigmoid_sums(x, t, w, m, True, fused=True)
    (grad,) = torch.autograd.grad(inter.sum() + ground.sum(), t)
    s = torch.where(m, torch.sigmoid(x), 0)
    torch.testing.assert_close(grad, (w * s + 2 * w * t) * m)


@pytest.mark.slow
def test_fused_module_equals_eager_with_every_weight_and_a_per_channel_mask():
    from voxweight import VoxelWeightedDice

    x, t, w, _ = _data(5)
    m = torch.rand(SHAPE, generator=torch.Generator().manual_seed(6)) > 0.3  # one mask per channel
    kw = dict(class_weight=[1.0, 2.0, 3.0], include_background=False, batch=True)
    results = []
    for fused in (True, False):
        z = x.clone().requires_grad_(True)
        loss = VoxelWeightedDice(fused=fused, **kw)(z, t, w, sample_weight=[1.0, 2.0], mask=m)
        loss.backward()
        results.append((loss.detach(), z.grad))
    torch.testing.assert_close(results[0], results[1], rtol=1e-5, atol=1e-6)
