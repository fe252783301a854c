"""hausdorff_dt_loss / HausdorffDTLoss against MONAI's HausdorffDTLoss, scipy's EDT and a float64 brute force."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from monai.losses import HausdorffDTLoss as MonaiHausdorff

from voxweight.losses.hausdorff import (
    FRAGMENTED,
    HausdorffDTLoss,
    boundary_distances,
    fastest_backend,
    hausdorff_dt_loss,
)

SHAPE = (2, 3, 10, 9, 8)


def _data(seed=0, shape=SHAPE):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    t = (torch.rand(shape, generator=g) > 0.6).double()
    y = torch.randint(0, shape[1], (shape[0], 1, *shape[2:]), generator=g)
    w = torch.rand((shape[0], 1, *shape[2:]), generator=g, dtype=torch.float64) * 3
    return x, t, y, w


def _value_and_grad(fn, x):
    x = x.clone().requires_grad_(True)
    loss = fn(x)
    return loss.detach(), torch.autograd.grad(loss, x)[0]


def _field(mask: np.ndarray, spacing) -> np.ndarray:
    """Oracle: scipy's EDT of each side, 0 for a volume without a boundary (MONAI's convention)."""
    if not mask.any() or mask.all():
        return np.zeros(mask.shape)
    return ndi.distance_transform_edt(mask, sampling=spacing) + ndi.distance_transform_edt(~mask, sampling=spacing)


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.5])
@pytest.mark.parametrize("shape", [SHAPE, (2, 2, 12, 11)])
def test_sigmoid_equals_monai_values_and_gradients(alpha, shape):
    x, t, _, _ = _data(1, shape)
    ours = _value_and_grad(lambda z: hausdorff_dt_loss(z, t, alpha=alpha), x)
    ref = MonaiHausdorff(sigmoid=True, alpha=alpha, include_background=True)
    torch.testing.assert_close(ours, _value_and_grad(lambda z: ref(z, t), x), rtol=1e-6, atol=1e-9)


def test_softmax_index_targets_equal_monai_to_onehot():
    x, _, y, _ = _data(2)
    ours = _value_and_grad(lambda z: hausdorff_dt_loss(z, y, activation="softmax"), x)
    ref = MonaiHausdorff(softmax=True, to_onehot_y=True, include_background=True)
    torch.testing.assert_close(ours, _value_and_grad(lambda z: ref(z, y), x), rtol=1e-6, atol=1e-9)


def test_weighted_anisotropic_brute_force_every_reduction():
    x, t, _, w = _data(3)
    spacing = (2.0, 0.7, 1.3)
    m = torch.rand(w.shape, generator=torch.Generator().manual_seed(4)) > 0.2
    p = torch.sigmoid(torch.where(m, x, 0.0))
    pf, tf = ((p > 0.5) & m).numpy(), ((t > 0.5) & m).numpy()
    d = np.zeros(x.shape)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            d[n, c] = _field(pf[n, c], spacing) ** 2 + _field(tf[n, c], spacing) ** 2
    element = (p - t) ** 2 * torch.from_numpy(d) * w * m
    count, weight_sum = m.expand_as(x).sum(), (w * m).expand_as(x).sum()
    expected = {"sum": element.sum(), "mean": element.sum() / count, "weighted_mean": element.sum() / weight_sum}
    for reduction, value in expected.items():
        ours = hausdorff_dt_loss(x, t, weight=w, mask=m, spacing=spacing, reduction=reduction)
        torch.testing.assert_close(ours, value, rtol=1e-6, atol=1e-9)  # the distances are float32
    torch.testing.assert_close(hausdorff_dt_loss(x, t, weight=w, mask=m, spacing=spacing, reduction="none"),
                               element, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("value", [-1e4, 0.0, 1e4, float("nan")])
def test_masked_logits_have_no_effect_at_any_value(value):
    x, t, _, w = _data(5)
    m = torch.ones(w.shape, dtype=torch.bool)
    m[:, :, :3] = False
    x2 = torch.where(m, x, torch.tensor(value, dtype=x.dtype))
    loss, grad = _value_and_grad(lambda z: hausdorff_dt_loss(z, t, weight=w, mask=m), x2)
    torch.testing.assert_close(loss, hausdorff_dt_loss(x, t, weight=w, mask=m))
    assert grad.isfinite().all() and torch.count_nonzero(grad[:, :, :3]) == 0


@pytest.mark.parametrize(("x_value", "t_value"), [(100.0, 0.0), (-100.0, 1.0), (100.0, 1.0), (-100.0, 0.0)])
def test_empty_and_full_volumes_have_no_distance_and_stay_finite(x_value, t_value):
    x = torch.full((1, 1, 4, 4, 4), x_value, requires_grad=True)
    t = torch.full((1, 1, 4, 4, 4), t_value)
    loss = hausdorff_dt_loss(x, t)
    (grad,) = torch.autograd.grad(loss, x)
    assert loss == 0 and grad.isfinite().all()  # no boundary anywhere: d = 0, as MONAI
    torch.testing.assert_close(loss, MonaiHausdorff(sigmoid=True, include_background=True)(x, t).to(loss.dtype))


def test_gradcheck_module_equals_functional_and_half_precision():
    x, t, _, w = _data(6, (1, 2, 5, 4, 3))
    assert torch.autograd.gradcheck(lambda z: hausdorff_dt_loss(z, t, weight=w), (x.clone().requires_grad_(True),))
    loss_fn = HausdorffDTLoss(alpha=1.5, weight_fn=lambda target: 1 + target)
    torch.testing.assert_close(loss_fn(x, t), hausdorff_dt_loss(x, t, alpha=1.5, weight=1 + t))
    assert "alpha=1.5" in repr(loss_fn)
    half = hausdorff_dt_loss(x.half(), t.half())
    assert half.dtype == torch.float16 and half.isfinite()
    torch.testing.assert_close(half.double(), hausdorff_dt_loss(x.half().double(), t), rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(alpha=0.0), ValueError, "alpha"),
    (dict(alpha=-1.0), ValueError, "alpha"),
    (dict(alpha=float("nan")), ValueError, "alpha"),
    (dict(alpha="2"), TypeError, "alpha"),
    (dict(activation="sigmod"), ValueError, r"activation: .*did you mean 'sigmoid'"),
    (dict(reduction="avg"), ValueError, "reduction"),
])
def test_bad_options_name_the_argument(kwargs, error, match):
    x, t, _, _ = _data(7)
    with pytest.raises(error, match=match):
        hausdorff_dt_loss(x, t, **kwargs)
    with pytest.raises(error, match=match):
        HausdorffDTLoss(**kwargs)


def test_bad_tensors_name_the_argument():
    x, t, _, w = _data(8)
    with pytest.raises(ValueError, match="input: expected"):
        hausdorff_dt_loss(x[:, :, 0, 0, 0], t[:, :, 0, 0, 0])
    with pytest.raises(ValueError, match="target"):
        hausdorff_dt_loss(x, t[:, :, :5])
    with pytest.raises(ValueError, match="weight"):
        hausdorff_dt_loss(x, t, weight=w[:, :, :5])
    with pytest.raises(TypeError, match="mask"):
        hausdorff_dt_loss(x, t, mask=w)


@pytest.mark.parametrize("smooth", [0.0, 3.0])
def test_backend_choice_changes_no_distance(smooth):
    """Oracle: scipy's EDT of each side; a fragmented mask (noise, on torch) and a smooth one (on edt) give
    the same two-sided distances whichever backend fastest_backend picks."""
    rng = np.random.default_rng(int(smooth))
    field = rng.random((2, 1, 20, 18, 16))
    if smooth:
        field = ndi.gaussian_filter(field, (0, 0, smooth, smooth, smooth))
    mask = torch.from_numpy(field > np.median(field))
    changes = (mask[..., 1:] != mask[..., :-1]).float().mean().item()
    assert fastest_backend(mask) == ("torch" if changes > FRAGMENTED else "auto")
    assert (changes > FRAGMENTED) == (smooth == 0.0)
    spacing = (1.5, 0.7, 1.0)
    expected = np.stack([[np.where(v, ndi.distance_transform_edt(v, sampling=spacing),
                                   ndi.distance_transform_edt(~v, sampling=spacing)) for v in s] for s in mask.numpy()])
    np.testing.assert_allclose(boundary_distances(mask, spacing).numpy(), expected, rtol=1e-6)
