"""class_balance_weights: hand-computed maps, a numpy re-implementation of the formulas as oracle,
voxweight's own in-loss ``balance`` path, and properties (mean weight 1, type/device kept, no host sync)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import voxweight
from voxweight.maps import class_balance_weights

FORMULAS = {  # oracle: (fg, bg) as functions of the foreground fraction f
    "balanced": lambda f: (0.5 / f, 0.5 / (1 - f)),
    "inverse_frequency": lambda f: (1 / f, 1 / (1 - f)),
    "sqrt_inverse": lambda f: (1 / np.sqrt(f), 1 / np.sqrt(1 - f)),
}


def _numpy_oracle(t: np.ndarray, mode: str, spatial_dims: int, max_weight=None) -> np.ndarray:
    """Oracle: the documented formulas in float64 numpy, volume by volume over the leading axes."""
    t = t.astype(np.float64)
    axes = tuple(range(t.ndim - spatial_dims, t.ndim))
    f = t.mean(axis=axes, keepdims=True)
    defined = (f > 0) & (f < 1)
    fg, bg = FORMULAS[mode](np.where(defined, f, 0.5))
    fg, bg = np.where(defined, fg, 1.0), np.where(defined, bg, 1.0)
    if max_weight is not None:
        fg, bg = np.minimum(fg, max_weight), np.minimum(bg, max_weight)
    return bg + (fg - bg) * t


@pytest.mark.parametrize(("mode", "expected"), [
    ("balanced", [2 / 3, 2 / 3, 2 / 3, 2.0]),
    ("inverse_frequency", [4 / 3, 4 / 3, 4 / 3, 4.0]),
    ("sqrt_inverse", [1 / np.sqrt(0.75)] * 3 + [2.0]),
])
def test_hand_computed_1d(mode, expected):
    """Hand-computed: f = 1/4."""
    out = class_balance_weights(np.array([0, 0, 0, 1]), mode=mode, spatial_dims=1)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_fixed_weights_with_soft_labels_hand_computed():
    """Hand-computed: w = bg + (fg - bg) t; a missing weight is 1; max_weight clips the given ones."""
    t = np.array([0.0, 0.25, 1.0], dtype=np.float32)
    np.testing.assert_allclose(class_balance_weights(t, fg_weight=3.0, bg_weight=0.5, spatial_dims=1),
                               [0.5, 1.125, 3.0], rtol=1e-6)
    np.testing.assert_allclose(class_balance_weights(t, fg_weight=3.0, spatial_dims=1), [1.0, 1.5, 3.0], rtol=1e-6)
    np.testing.assert_allclose(class_balance_weights(t, bg_weight=1 / 95, spatial_dims=1),
                               [1 / 95, 1 / 95 + 0.25 * (1 - 1 / 95), 1.0], rtol=1e-6)
    np.testing.assert_allclose(class_balance_weights(t, fg_weight=3.0, bg_weight=0.5, max_weight=2.0, spatial_dims=1),
                               [0.5, 0.875, 2.0], rtol=1e-6)


@pytest.mark.parametrize("mode", list(FORMULAS))
@pytest.mark.parametrize("max_weight", [None, 3.0])
def test_matches_numpy_oracle_on_batches_with_soft_labels(rng, mode, max_weight):
    """Oracle: the formulas in numpy; leading (batch, channel) indices each use their own fraction."""
    t = rng.random((2, 3, 5, 6, 4)) ** 4  # soft labels, small foreground fraction
    t[0, 1] = 0.0  # an empty channel
    t[1, 2] = 1.0  # a full channel
    out = class_balance_weights(t, mode=mode, max_weight=max_weight)
    np.testing.assert_allclose(out, _numpy_oracle(t, mode, 3, max_weight), rtol=2e-6)
    np.testing.assert_array_equal(out[0, 1], 1.0)
    np.testing.assert_array_equal(out[1, 2], 1.0)


def test_leading_axes_processed_independently(rng):
    """Property: the map of a stack equals the stack of the maps of each volume."""
    a = (rng.random((7, 8, 9)) < 0.1).astype(np.float32)
    b = (rng.random((7, 8, 9)) < 0.6).astype(np.float32)
    stacked = class_balance_weights(np.stack([a, b])[:, None])
    np.testing.assert_array_equal(stacked[0, 0], class_balance_weights(a))
    np.testing.assert_array_equal(stacked[1, 0], class_balance_weights(b))
    assert not np.allclose(stacked[0, 0].max(), stacked[1, 0].max())


def test_balanced_mean_weight_is_one_and_classes_weigh_the_same(rng):
    """Property: for a binary volume, mean weight 1 and total foreground weight = total background weight."""
    t = rng.random((20, 30, 10)) < 0.03
    w = class_balance_weights(t).astype(np.float64)
    assert w.mean() == pytest.approx(1.0, rel=1e-5)
    assert w[t].sum() == pytest.approx(w[~t].sum(), rel=1e-5)


@pytest.mark.parametrize("mode", list(FORMULAS))
def test_empty_and_full_volumes_give_ones(mode):
    """Documented degenerate case: no foreground or no background -> uniform weights of 1, finite."""
    for value in (0.0, 1.0):
        out = class_balance_weights(np.full((3, 4, 5), value), mode=mode)
        np.testing.assert_array_equal(out, np.ones((3, 4, 5), dtype=np.float32))
    one_voxel = class_balance_weights(torch.ones(1, 1, 1, dtype=torch.bool), mode=mode)
    assert one_voxel.tolist() == [[[1.0]]]


def test_one_foreground_voxel_is_finite_and_capped(rng):
    """Hand-computed: f = 1/1000 -> inverse frequency 1000, clipped to max_weight."""
    t = np.zeros((10, 10, 10), dtype=np.uint8)
    t[3, 4, 5] = 1
    w = class_balance_weights(t, mode="inverse_frequency")
    assert w[3, 4, 5] == pytest.approx(1000.0, rel=1e-5) and np.isfinite(w).all()
    assert class_balance_weights(t, mode="inverse_frequency", max_weight=50.0)[3, 4, 5] == 50.0


def test_torch_keeps_type_device_shape_and_matches_numpy(rng, devices):
    """Property: tensor in -> float32 tensor on the same device, same values as the ndarray path."""
    t = rng.random((2, 1, 4, 5, 6)) < 0.2
    expected = class_balance_weights(t)
    for device in devices:
        for dtype in (torch.bool, torch.uint8, torch.float64):
            label = torch.as_tensor(t, device=device).to(dtype)
            before = label.clone()
            out = class_balance_weights(label)
            assert type(out) is torch.Tensor and out.dtype == torch.float32 and out.device == label.device
            assert out.shape == label.shape
            np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=1e-6)
            assert torch.equal(label, before)


def test_numpy_label_not_mutated_and_readonly_accepted(rng):
    """Property: the label is untouched; a read-only float32 array works without a torch warning."""
    t = (rng.random((4, 4, 4)) < 0.3).astype(np.float32)
    before = t.copy()
    t.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = class_balance_weights(t)
    np.testing.assert_array_equal(t, before)
    assert isinstance(out, np.ndarray) and not np.shares_memory(out, t)


def test_runs_without_reading_data_on_meta_device():
    """Property: meta tensors have no data, so any host read (.item(), numpy) would fail: none happens."""
    out = class_balance_weights(torch.empty(2, 1, 8, 8, 8, device="meta"), mode="sqrt_inverse", max_weight=5.0)
    assert out.device.type == "meta" and out.shape == (2, 1, 8, 8, 8) and out.dtype == torch.float32


@pytest.mark.cuda
def test_cuda_batch_without_host_sync():
    """Property: torch's sync debug mode raises on any host-device synchronisation; none happens."""
    t = (torch.rand(2, 1, 16, 16, 16, device="cuda") < 0.1).float()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = class_balance_weights(t)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    np.testing.assert_allclose(out.cpu().numpy(), _numpy_oracle(t.cpu().numpy(), "balanced", 3), rtol=1e-5)


@pytest.mark.parametrize("mode", list(FORMULAS))
def test_same_as_in_loss_balance(rng, mode):
    """Oracle: voxel_weighted_bce(..., balance=mode) is documented as weight=class_balance_weights(target)."""
    target = torch.as_tensor(rng.random((2, 2, 4, 5, 3)) < 0.2, dtype=torch.float32)
    logits = torch.as_tensor(rng.normal(size=(2, 2, 4, 5, 3)), dtype=torch.float32)
    in_loss = voxweight.voxel_weighted_bce(logits, target, balance=mode, balance_max_weight=4.0)
    with_map = voxweight.voxel_weighted_bce(logits, target,
                                            weight=class_balance_weights(target, mode=mode, max_weight=4.0))
    torch.testing.assert_close(in_loss, with_map)


def test_values_outside_unit_interval_rejected_unless_checks_off():
    """Property: labels are checked to lie in [0, 1] (NaN fails) unless value checks are off."""
    for bad in (np.array([0.0, 2.0]), np.array([0.0, np.nan]), torch.tensor([-1, 0])):
        with pytest.raises(ValueError, match=r"label: expected values in \[0, 1\]"):
            class_balance_weights(bad, spatial_dims=1)
    with voxweight.value_checks("off"):
        class_balance_weights(np.array([0.0, 2.0]), fg_weight=2.0, spatial_dims=1)


@pytest.mark.parametrize(("label", "kwargs", "error", "match"), [
    ([0, 1], {}, TypeError, r"label: expected a numpy\.ndarray or torch\.Tensor"),
    (np.zeros((4, 4)), {}, ValueError, r"label: expected at least 3 dims .* got shape \[4, 4\]"),
    (np.zeros(4, dtype=complex), {"spatial_dims": 1}, TypeError, r"label: expected a bool, integer or floating"),
    (np.zeros((4, 4)), {"spatial_dims": 0}, ValueError, r"spatial_dims: expected an integer >= 1"),
    (np.zeros((4, 4)), {"spatial_dims": 2.0}, TypeError, r"spatial_dims: expected an integer >= 1"),
    (np.zeros((2, 2, 2)), {"mode": "balance"}, ValueError, r"mode: expected one of .*did you mean 'balanced'"),
    (np.zeros((2, 2, 2)), {"fg_weight": -1.0}, ValueError, r"fg_weight: expected a finite number >= 0, got -1.0"),
    (np.zeros((2, 2, 2)), {"bg_weight": float("nan")}, ValueError, r"bg_weight: expected a finite number >= 0"),
    (np.zeros((2, 2, 2)), {"bg_weight": "1"}, TypeError, r"bg_weight: expected a number"),
    (np.zeros((2, 2, 2)), {"max_weight": 0.0}, ValueError, r"max_weight: expected a finite number > 0"),
])
def test_bad_input_names_the_argument(label, kwargs, error, match):
    with pytest.raises(error, match=match):
        class_balance_weights(label, **kwargs)
