"""band_pass: the band-limited 1-D pass of the torch EDT against a float64 brute force over the band, along
every axis, with chunks down to one column (rows and columns split), lines of inf that the CPU skips, a
non-contiguous input, float32, and through axis_pass, which hands it every band shorter than the lines."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from voxweight.maps.band_pass import BAND_TILE_BYTES, band_pass, band_tile_budget
from voxweight.maps.edt_passes import axis_pass


def brute_band(f: np.ndarray, axis: int, step: float, band: int) -> np.ndarray:
    """Oracle: ``g_i = min over |i - j| <= band of f_j + (step (i - j))^2`` along ``axis``, float64."""
    moved = np.moveaxis(f, axis, -1)
    n = moved.shape[-1]
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    cost = np.where(np.abs(i - j) <= band, (step * (i - j)) ** 2, np.inf)
    return np.moveaxis((moved[..., None, :] + cost).min(-1), -1, axis)


def random_f(shape: tuple[int, ...], seed: int, empty: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = rng.random(shape) * 30
    f[rng.random(shape) < empty] = np.inf
    return f


@pytest.mark.parametrize("shape", [(3, 9, 64), (5, 11, 48), (2, 6, 7, 5), (13, 32), (4, 2, 3)])
@pytest.mark.parametrize("tile_bytes", [1, 600, None])
@pytest.mark.parametrize("band", [1, 2, 5])
def test_every_axis_is_the_brute_force(shape, tile_bytes, band):
    """Bit for bit the brute force (the same float64 sums), the input untouched, a contiguous result."""
    f = random_f(shape, len(shape) + band)
    x = torch.from_numpy(f)
    for axis in range(len(shape)):
        reach = min(band, shape[axis] - 1)
        if reach < 1:
            continue
        out = band_pass(x, axis, 0.83, reach, tile_bytes)
        assert out.is_contiguous() and out.dtype == x.dtype
        np.testing.assert_array_equal(out.numpy(), brute_band(f, axis, 0.83, reach))
    np.testing.assert_array_equal(x.numpy(), f)


def test_lines_of_inf_stay_inf_and_only_the_live_box_is_computed():
    """A chunk whose finite values sit in a few rows and columns: the rest is inf, the box is the brute force."""
    f = np.full((6, 20, 30), np.inf)
    f[2:4, 5, 10:13] = [[0.0, 1.0, 4.0], [2.0, 0.5, 9.0]]
    for tile_bytes in (1, 10_000, None):
        out = band_pass(torch.from_numpy(f), 1, 1.5, 4, tile_bytes).numpy()
        np.testing.assert_array_equal(out, brute_band(f, 1, 1.5, 4))
    assert torch.isinf(band_pass(torch.full((3, 8, 4), np.inf), 1, 1.0, 3)).all()


def test_non_contiguous_and_float32_inputs():
    """A transposed view (reshape copies it) and float32 (the maps' dtype) equal the brute force."""
    f = random_f((12, 10, 7), 3)
    view = torch.from_numpy(f).transpose(0, 2)
    out = band_pass(view, 1, 0.4, 3)
    np.testing.assert_array_equal(out.numpy(), brute_band(np.ascontiguousarray(view.numpy()), 1, 0.4, 3))
    f32 = torch.from_numpy(f.astype(np.float32))
    torch.testing.assert_close(band_pass(f32, 0, 0.4, 5), torch.from_numpy(brute_band(f.astype(np.float32), 0, 0.4, 5)
                                                                           .astype(np.float32)), rtol=1e-6, atol=0)


def test_axis_pass_hands_short_bands_to_it_and_keeps_full_ones():
    """axis_pass with a band below n - 1 is band_pass; a band of n - 1 or more is the full pass (same minima)."""
    f = random_f((4, 15, 9), 8)
    x = torch.from_numpy(f)
    torch.testing.assert_close(axis_pass(x, 1, 0.7, band=3), band_pass(x, 1, 0.7, 3), rtol=0, atol=0)
    np.testing.assert_array_equal(axis_pass(x, 1, 0.7, band=40).numpy(), brute_band(f, 1, 0.7, 14))


def test_budget_by_device():
    assert band_tile_budget(torch.device("cpu")) == BAND_TILE_BYTES
    assert band_tile_budget(torch.device("meta")) > BAND_TILE_BYTES


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=4), st.integers(0, 3), st.integers(1, 8),
       st.floats(0.1, 3.0), st.integers(0, 2**31 - 1), st.sampled_from([1, 64, None]))
def test_property_random_shapes(shape, axis, band, step, seed, tile_bytes):
    """Property: any shape, axis, band, step and chunking give the brute force's minima exactly."""
    axis %= len(shape)
    reach = min(band, shape[axis] - 1)
    if reach < 1:
        return
    f = random_f(tuple(shape), seed, empty=0.6)
    out = band_pass(torch.from_numpy(f), axis, step, reach, tile_bytes)
    np.testing.assert_array_equal(out.numpy(), brute_band(f, axis, step, reach))
