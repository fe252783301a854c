"""weighted_sums (closed-form backward) against the plain autograd expressions, for every weight layout."""

from __future__ import annotations

import itertools

import pytest
import torch

from voxweight.losses.sums import sigmoid_weighted_sums, weighted_sums

N, C, SPATIAL = 2, 3, (4, 5, 3)
WEIGHT_SHAPES = [None, (N, 1, *SPATIAL), (N, C, *SPATIAL), (1, 1, *SPATIAL), (N, 1, 1, 5, 3), (1, C, 1, 1, 1)]


def _plain(p, t, w, squared):
    pk, tk = (p * p, t * t) if squared else (p, t)
    w = torch.ones(()) if w is None else w
    dims = list(range(2, p.ndim))
    return (w * p * t).sum(dims), (w * pk).sum(dims), (w * tk).sum(dims)


@pytest.mark.parametrize(("shape", "squared"), list(itertools.product(WEIGHT_SHAPES, [False, True])))
def test_sums_and_gradients_equal_autograd_of_the_products(shape, squared):
    g = torch.Generator().manual_seed(0)
    p = torch.rand(N, C, *SPATIAL, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.rand(N, C, *SPATIAL, generator=g, dtype=torch.float64)
    w = None if shape is None else torch.rand(shape, generator=g, dtype=torch.float64)
    ours, ref = weighted_sums(p, t, w, squared), _plain(p, t, w, squared)
    torch.testing.assert_close(ours, ref)
    coefficients = [torch.randn(N, C, generator=g, dtype=torch.float64) for _ in range(2)]
    torch.testing.assert_close(torch.autograd.grad(ours[:2], p, coefficients),
                               torch.autograd.grad(ref[:2], p, coefficients))


@pytest.mark.parametrize("squared", [False, True])
def test_gradcheck_and_gradients_to_targets_and_weights(squared):
    g = torch.Generator().manual_seed(1)
    p, t = (torch.rand(2, 2, 3, 2, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2))
    w = torch.rand(2, 1, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: weighted_sums(a, t.detach(), w.detach(), squared), (p,))
    assert torch.autograd.gradcheck(lambda a, b, c: weighted_sums(a, b, c, squared), (p, t, w))


def test_no_spatial_axes_give_the_elements_themselves():
    p, t = torch.tensor([[0.5, 1.0]]), torch.tensor([[1.0, 0.0]])
    inter, pred, ground = weighted_sums(p, t, None, squared=False)
    assert torch.equal(inter, p * t) and torch.equal(pred, p) and torch.equal(ground, t)


@pytest.mark.parametrize("shape", [(0, 2, 8), (2, 2, 0), (2, 0, 3)])
def test_empty_tensors_sum_to_zeros_of_the_right_shape(shape):
    p = torch.rand(shape, requires_grad=True)
    sums = weighted_sums(p, torch.rand(shape), torch.rand(shape[0], 1, *shape[2:]), squared=False)
    assert all(torch.equal(s, torch.zeros(shape[:2])) for s in sums)


MASK_SHAPES = [None, (N, 1, *SPATIAL), (N, C, *SPATIAL), (1, 1, 1, 5, 3)]


@pytest.mark.parametrize(("w_shape", "m_shape", "squared"),
                         list(itertools.product(WEIGHT_SHAPES[:3] + WEIGHT_SHAPES[4:], MASK_SHAPES, [False, True])))
def test_sigmoid_sums_equal_autograd_of_masked_sigmoid_products(w_shape, m_shape, squared):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(N, C, *SPATIAL, generator=g, dtype=torch.float64) * 3
    t = torch.rand(N, C, *SPATIAL, generator=g, dtype=torch.float64)
    w = None if w_shape is None else torch.rand(w_shape, generator=g, dtype=torch.float64)
    m = None if m_shape is None else torch.rand(m_shape, generator=g) > 0.3
    x_bad = x if m is None else torch.where(m, x, torch.tensor(float("nan"), dtype=x.dtype))  # masked: any value
    x_bad.requires_grad_(True)
    x.requires_grad_(True)
    ours = sigmoid_weighted_sums(x_bad, t, w, m, squared)
    p = torch.sigmoid(x)
    p, tm = (p, t) if m is None else (torch.where(m, p, 0), torch.where(m, t, 0))
    ref = _plain(p, tm, w, squared)
    torch.testing.assert_close(ours, ref)
    coefficients = [torch.randn(N, C, generator=g, dtype=torch.float64) for _ in range(2)]
    (grad,) = torch.autograd.grad(ours[:2], x_bad, coefficients)
    torch.testing.assert_close(grad, torch.autograd.grad(ref[:2], x, coefficients)[0])
