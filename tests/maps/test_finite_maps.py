"""Every weight map is finite and >= 0 for any finite valid input, or the input is refused naming the argument.

Oracles: scipy's ``distance_transform_edt`` (the map at a sane scale: the maps depend on ``spacing / sigma``
only), hand-computed limits (``exp(-huge) = 0``, ``exp(-tiny) = 1``), the float64 formula of the class
balance, and hypothesis properties over extreme spacings, sigmas, weights and soft labels.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from voxweight.maps import (
    boundary_weights,
    class_balance_weights,
    distance_to_foreground,
    distance_to_interface,
    multiclass_balance_weights,
    signed_distance,
)

POSITIVE = st.floats(min_value=5e-324, max_value=1.7e308, allow_nan=False, allow_infinity=False)
SHAPES = st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 5))
LABELS = arrays(np.uint8, SHAPES, elements=st.integers(0, 1))


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


def scipy_distance_map(fg: np.ndarray, w0: float, sigma: float, spacing) -> np.ndarray:
    """Oracle: ``1 + w0 exp(-d^2 / (2 sigma^2))``, d from scipy's EDT on both sides (float64)."""
    if fg.all() or not fg.any():
        return np.ones(fg.shape)
    inside, outside = (ndi.distance_transform_edt(m, sampling=spacing) for m in (fg, ~fg))
    d = np.where(fg, inside, outside)
    return 1 + w0 * np.exp(-(d**2) / (2 * sigma**2))


@settings(max_examples=60, deadline=None)
@given(lab=LABELS, mode=st.sampled_from(["unet", "distance"]), w0=st.floats(0, 1e12), sigma=POSITIVE,
       spacing=st.lists(POSITIVE, min_size=3, max_size=3))
def test_boundary_map_finite_for_any_finite_spacing_and_sigma(lab, mode, w0, sigma, spacing):
    """Property: finite, >= 1 and <= 1 + w0 for every finite positive spacing and sigma (1e-323 .. 1e308)."""
    out = _quiet(boundary_weights, lab, mode=mode, w0=w0, sigma=sigma, spacing=spacing)
    assert out.dtype == np.float32 and out.shape == lab.shape
    assert np.isfinite(out).all() and out.min() >= 1.0 and out.max() <= (1 + w0) * (1 + 1e-6)


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(1e-150, 1e150), seed=st.integers(0, 2**16))
def test_distance_map_depends_on_spacing_over_sigma_only(scale, seed):
    """Oracle scipy at scale 1: scaling spacing and sigma together (by up to 1e+-150) leaves the map unchanged."""
    fg = ndi.binary_dilation(np.random.default_rng(seed).random((7, 8, 6)) < 0.05)
    spacing, sigma = np.array([0.8, 1.2, 2.0]), 1.5
    out = boundary_weights(fg, mode="distance", w0=4.0, sigma=sigma * scale, spacing=list(spacing * scale))
    np.testing.assert_allclose(out, scipy_distance_map(fg, 4.0, sigma, spacing), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["unet", "distance"])
@pytest.mark.parametrize("kwargs", [{"spacing": 1e19}, {"spacing": [1e19, 1e30, 3e19]}, {"sigma": 1e-170},
                                    {"sigma": 1e-30}, {"sigma": 5e-324}])
def test_bonus_vanishes_hand_computed(mode, kwargs):
    """Hand-computed: one voxel step is >= 1e18 sigma, exp(-1e36 / 2) = 0: all ones, finite, with a warning."""
    lab = np.zeros((1, 8, 8, 8), dtype=np.uint8)
    lab[0, 1:3, 1:3, 1:3] = lab[0, 5:7, 5:7, 5:7] = 1
    with pytest.warns(UserWarning, match=r"sigma: the bonus one voxel away is below 1e-6 w0"):
        out = boundary_weights(lab, mode=mode, **kwargs)
    np.testing.assert_array_equal(out, np.ones(lab.shape, dtype=np.float32))


@pytest.mark.parametrize("kwargs", [{"sigma": 1e160}, {"sigma": 1e300}, {"spacing": 1e-300}, {"spacing": 5e-324}])
def test_bonus_saturates_hand_computed(kwargs):
    """Hand-computed: every distance is <= 1e-150 sigma, exp(-0) = 1: "distance" gives exactly 1 + w0."""
    lab = np.zeros((6, 6, 6), dtype=np.uint8)
    lab[2:4, 2:4, 2:4] = 1
    out = boundary_weights(lab, mode="distance", w0=3.0, **kwargs)
    np.testing.assert_array_equal(out, np.full(lab.shape, 4.0, dtype=np.float32))


@pytest.mark.parametrize("mode", ["unet", "distance"])
@pytest.mark.parametrize(("w0", "error"), [(1e39, ValueError), (1e13, ValueError), (float("inf"), ValueError),
                                           (float("nan"), ValueError), (-1.0, ValueError), ("10", TypeError)])
def test_w0_out_of_range_refused_naming_it(mode, w0, error):
    with pytest.raises(error, match=r"^w0: expected"):
        boundary_weights(np.zeros((4, 4, 4)), mode=mode, w0=w0)


def test_w0_at_the_bound_is_finite():
    """The largest accepted w0 (1e12) gives a finite map, whose peak is 1 + 1e12 * exp(-1/2) (hand-computed)."""
    lab = np.zeros((5, 5, 5), dtype=np.uint8)
    lab[2, 2, 2] = 1
    out = boundary_weights(lab, mode="distance", w0=1e12, sigma=1.0)
    assert np.isfinite(out).all()
    assert out[2, 2, 2] == pytest.approx(1 + 1e12 * np.exp(-0.5), rel=1e-6)


@settings(max_examples=60, deadline=None)
@given(t=arrays(np.float32, st.integers(1, 40), elements=st.sampled_from([0.0, 1.0, 1e-45, 1e-40, 1e-30, 0.5])),
       mode=st.sampled_from(["balanced", "inverse_frequency", "sqrt_inverse"]))
def test_class_balance_finite_for_tiny_soft_fractions(t, mode):
    """Property + float64 oracle: a denormal foreground fraction gives finite weights (factors capped at 1e12)."""
    out = class_balance_weights(t, mode=mode, spatial_dims=1)
    assert np.isfinite(out).all() and out.min() >= 0
    f = float(np.mean(t, dtype=np.float32))
    if 0 < f < 1:
        fg, bg = {"balanced": (0.5 / f, 0.5 / (1 - f)), "inverse_frequency": (1 / f, 1 / (1 - f)),
                  "sqrt_inverse": (f**-0.5, (1 - f) ** -0.5)}[mode]
        fg, bg = min(fg, 1e12), min(bg, 1e12)
    else:
        fg = bg = 1.0
    np.testing.assert_allclose(out, bg + (fg - bg) * t.astype(np.float64), rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(fg=st.floats(0, 1e12), bg=st.floats(0, 1e12), t=arrays(np.float32, 5, elements=st.floats(0, 1, width=32)))
def test_fixed_class_weights_finite(fg, bg, t):
    """Property: fixed weights up to the bound give finite maps >= 0, equal to the formula in float64."""
    out = class_balance_weights(t, fg_weight=fg, bg_weight=bg, spatial_dims=1)
    assert np.isfinite(out).all() and out.min() >= 0
    np.testing.assert_allclose(out, bg + (fg - bg) * t.astype(np.float64), rtol=1e-5, atol=1e-6 * max(fg, bg) + 1e-37)


@pytest.mark.parametrize("name", ["fg_weight", "bg_weight"])
@pytest.mark.parametrize("value", [1e39, 1e13, float("inf")])
def test_huge_fixed_weights_refused_naming_them(name, value):
    with pytest.raises(ValueError, match=rf"^{name}: expected"):
        class_balance_weights(np.zeros((4, 4, 4)), **{name: value})


def test_huge_max_weight_is_no_clip():
    """Oracle: the map without max_weight (max_weight=1e39 used to overflow float32 inside torch's clamp)."""
    t = np.zeros((4, 4, 4), dtype=np.float32)
    t[0, 0, :3] = 1
    for kwargs in ({}, {"fg_weight": 5.0}):
        np.testing.assert_array_equal(class_balance_weights(t, max_weight=1e39, **kwargs),
                                      class_balance_weights(t, **kwargs))


@pytest.mark.parametrize("value", [[1.0, 1e39], [1.0, 1e13]])
def test_huge_class_weight_refused_naming_it(value):
    with pytest.raises(ValueError, match=r"^class_weight: expected"):
        multiclass_balance_weights(np.array([0, 1]), class_weight=value, spatial_dims=1)


@pytest.mark.parametrize("shape", [(0, 4, 4), (1, 0, 4, 4), (0, 2, 3, 4)])
@pytest.mark.parametrize("kind", ["ndarray", "tensor"])
def test_zero_size_label_gives_an_empty_map(shape, kind):
    """Documented degenerate case: a zero-size label gives an empty float32 map of its shape, no warning."""
    lab = np.zeros(shape, dtype=np.int64)
    lab = lab if kind == "ndarray" else torch.from_numpy(lab)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outs = [boundary_weights(lab, mode="unet"), boundary_weights(lab, mode="distance"),
                boundary_weights(lab, mode="distance", multiclass=True), class_balance_weights(lab),
                multiclass_balance_weights(lab), multiclass_balance_weights(lab, num_classes=3)]
    for out in outs:
        assert type(out) is type(lab) and tuple(out.shape) == shape and out.dtype in (np.float32, torch.float32)


@settings(max_examples=40, deadline=None)
@given(exponent=st.floats(-12, 29), ratios=st.lists(st.floats(1e-17, 1.0), min_size=3, max_size=3),
       backend=st.sampled_from(["edt", "scipy"]), seed=st.integers(0, 2**16))
def test_distances_finite_and_right_at_any_accepted_spacing(exponent, ratios, backend, seed):
    """Oracle scipy in float64 on the spacing divided by its largest value, scaled back: no NaN, no false inf
    (spacing 1e19 used to give inf on edt, 1e30 NaN)."""
    fg = np.random.default_rng(seed).random((6, 5, 4)) < 0.1
    fg[0, 0, 0] = True
    spacing = [10.0**exponent * r for r in ratios]
    unit = max(spacing)
    expected = ndi.distance_transform_edt(~fg, sampling=[s / unit for s in spacing]) * unit
    out = distance_to_foreground(fg, spacing=spacing, backend=backend)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5 * unit)
    both = distance_to_interface(fg, spacing=spacing, backend=backend)
    signed = signed_distance(fg, spacing=spacing, backend=backend)
    assert np.isfinite(both).all() and (both > 0).all() and np.array_equal(np.abs(signed), both)


@pytest.mark.parametrize("spacing", [1e31, 1e-31, [1.0, 1e-19, 1.0], [1e20, 1.0, 1.0]])
@pytest.mark.parametrize("fn", [distance_to_foreground, distance_to_interface, signed_distance])
def test_distance_spacing_out_of_float32_range_refused(fn, spacing):
    with pytest.raises(ValueError, match=r"^spacing: expected values in \[1e-30, 1e30\] within a factor 1e18"):
        fn(np.eye(3)[None].repeat(3, 0), spacing=spacing)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_balance_factors_stay_finite_in_every_float_dtype(dtype):
    """Oracle: the float64 formula 0.5 / f, clamped to the dtype's largest finite value (and 1e12)."""
    from voxweight.maps import balance_factors

    fraction = torch.tensor([1e-7, 1e-3, 0.3, 0.0, 1.0], dtype=dtype)
    fg, bg = balance_factors(fraction, "balanced")
    f64 = fraction.double()
    cap = min(1e12, torch.finfo(dtype).max)
    expected = torch.where((f64 > 0) & (f64 < 1), (0.5 / f64.clamp(min=1e-300)).clamp(max=cap), torch.ones_like(f64))
    assert fg.dtype == dtype and torch.isfinite(fg).all() and torch.isfinite(bg).all()
    torch.testing.assert_close(fg.double(), expected, rtol=1e-2, atol=0)
