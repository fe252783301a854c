"""connected_components: scipy.ndimage.label with full connectivity (structure = ones((3,) * d)) as the oracle,
array for array, on random masks of several densities in 1-4 dims, batched, degenerate masks, and long
snakes and spirals that need many propagation steps; a hypothesis property over small random masks. Every
test runs both backends: the torch propagation, and the one batched scipy call (its structure and
per-volume renumbering against scipy run volume by volume)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from voxweight.maps import connected_components
from voxweight.maps.components import component_counts

BACKENDS = ("torch", "scipy")
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def scipy_labels(mask: np.ndarray, spatial_dims: int) -> np.ndarray:
    """Oracle: scipy's labelling of each volume (full connectivity), stacked back to the mask's shape."""
    spatial = mask.shape[mask.ndim - spatial_dims:]
    volumes = mask.reshape(math.prod(mask.shape[:mask.ndim - spatial_dims]), *spatial)
    out = np.zeros(volumes.shape, dtype=np.int64)
    for i, v in enumerate(volumes):
        out[i] = ndi.label(v, structure=np.ones((3,) * spatial_dims, dtype=bool))[0]
    return out.reshape(mask.shape)


def check(mask: np.ndarray, spatial_dims: int) -> torch.Tensor:
    """Both backends and ``"auto"`` give scipy's per-volume labels; returns the torch backend's."""
    expected = scipy_labels(mask, spatial_dims)
    results = {b: connected_components(torch.from_numpy(mask), spatial_dims, backend=b) for b in (*BACKENDS, "auto")}
    for got in results.values():
        assert got.dtype == torch.int64 and tuple(got.shape) == mask.shape
        np.testing.assert_array_equal(got.numpy(), expected)
    return results["torch"]


def spiral(n: int) -> np.ndarray:
    """A one-voxel-wide square spiral, arms two voxels apart: one component whose path visits ~n^2 / 2 voxels."""
    a = np.zeros((n, n), dtype=bool)
    r = c = 0
    a[0, 0] = True
    lengths = [n - 1] * 3 + [k for k in range(n - 3, 0, -2) for _ in range(2)]
    for i, length in enumerate(lengths):
        dr, dc = [(0, 1), (1, 0), (0, -1), (-1, 0)][i % 4]
        for _ in range(length):
            r, c = r + dr, c + dc
            a[r, c] = True
    return a


def snake(n: int) -> np.ndarray:
    """Rows joined alternately at the right and the left end (a boustrophedon): one long path."""
    s = np.zeros((n, n), dtype=bool)
    s[::2] = True
    for r in range(1, n, 2):
        s[r, n - 1 if (r // 2) % 2 == 0 else 0] = True
    return s


@pytest.mark.parametrize("density", [0.05, 0.3, 0.5, 0.7, 0.95])
@pytest.mark.parametrize(("shape", "spatial_dims"), [((4, 60), 1), ((3, 25, 27), 2), ((2, 11, 12, 13), 3),
                                                     ((2, 3, 9, 8, 7), 3), ((5, 6, 5, 4), 4)])
def test_random_masks_equal_scipy(shape, spatial_dims, density):
    """Oracle: scipy, each volume of the batch labelled independently (leading dims of any rank)."""
    mask = np.random.default_rng(int(density * 100) + len(shape)).random(shape) < density
    check(mask, spatial_dims)


def _corners() -> np.ndarray:
    mask = np.zeros((4, 4), dtype=bool)
    mask[0, 0] = mask[0, 3] = mask[3, 0] = mask[3, 3] = True
    return mask


DEGENERATE = {  # name: (mask, spatial_dims, components in the first volume)
    "empty": (np.zeros((2, 5, 6), dtype=bool), 2, 0),
    "full": (np.ones((2, 5, 6), dtype=bool), 2, 1),
    "one voxel": (np.pad(np.ones((1, 1, 1), dtype=bool), ((2, 1), (0, 3), (4, 0))), 3, 1),
    "corner voxels": (_corners(), 2, 4),
    "zero-size": (np.zeros((3, 0, 4), dtype=bool), 2, 0),
    "1-voxel volumes": (np.array([[[True]], [[False]]]), 2, 1),
}


@pytest.mark.parametrize("name", list(DEGENERATE))
def test_degenerate_masks(name):
    """scipy, and hand-counted: no component, one, a lone voxel, corners that touch nothing, zero-size."""
    mask, spatial_dims, components = DEGENERATE[name]
    got = check(mask, spatial_dims)
    first = got[(0,) * (mask.ndim - spatial_dims)] if got.numel() else got
    assert int(first.max()) == components if first.numel() else components == 0


@pytest.mark.parametrize("shape", ["spiral", "reversed spiral", "transposed spiral", "snake", "reversed snake"])
def test_long_paths_need_many_steps_and_still_equal_scipy(shape):
    """Oracle: scipy; a spiral of 129 x 129 is one component whose path is ~8000 voxels long."""
    mask = {"spiral": spiral(129), "reversed spiral": spiral(129)[::-1, ::-1], "transposed spiral": spiral(129).T,
            "snake": snake(101), "reversed snake": snake(101)[::-1]}[shape]
    got = check(np.ascontiguousarray(mask), 2)
    assert int(got.max()) == 1


def test_3d_helix_of_diagonal_steps_is_one_component():
    """Hand-built: a chain that moves one voxel along every axis at each step (corner contacts only)."""
    mask = np.zeros((3, 40, 40), dtype=bool)
    for i in range(40):
        mask[i % 3 if (i // 3) % 2 == 0 else 2 - i % 3, i, i] = True
    assert int(check(mask, 3).max()) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_numbering_and_counts(backend):
    """per_volume=False: scipy's ids offset by the earlier volumes' counts; component_counts: scipy's counts."""
    mask = np.random.default_rng(3).random((3, 2, 15, 16)) < 0.3
    mask[1, 0] = False  # an empty volume in the middle
    per_volume = scipy_labels(mask, 2).reshape(6, 15, 16)
    counts = per_volume.reshape(6, -1).max(1)
    offsets = np.cumsum(counts) - counts
    expected = np.where(per_volume > 0, per_volume + offsets[:, None, None], 0).reshape(mask.shape)
    got = connected_components(torch.from_numpy(mask), 2, per_volume=False, backend=backend)
    np.testing.assert_array_equal(got.numpy(), expected)
    labels = connected_components(torch.from_numpy(mask), 2, backend=backend)
    np.testing.assert_array_equal(component_counts(labels, 2).numpy(), counts.reshape(3, 2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_input_dtypes_and_layouts(backend):
    """Non-zero is foreground for int and float masks; a non-contiguous view; the mask is not modified."""
    rng = np.random.default_rng(5)
    mask = rng.random((20, 18)) < 0.4
    expected = scipy_labels(mask.T, 2)
    t = torch.from_numpy(mask)
    for variant in (t.T, t.T.to(torch.uint8) * 3, t.T.to(torch.float16) * -0.5, t.T.to(torch.bfloat16)):
        before = variant.clone()
        np.testing.assert_array_equal(connected_components(variant, 2, backend=backend).numpy(), expected)
        assert torch.equal(variant, before)


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match=r"mask: expected a real torch\.Tensor"):
        connected_components(np.ones((3, 3)), 2)
    with pytest.raises(TypeError, match=r"mask: expected a real torch\.Tensor"):
        connected_components(torch.ones(3, dtype=torch.complex64), 1)
    with pytest.raises(ValueError, match=r"spatial_dims: expected at most mask\.ndim = 2, got 3"):
        connected_components(torch.ones(3, 3), 3)
    with pytest.raises(ValueError, match="spatial_dims: expected an integer >= 1, got 0"):
        connected_components(torch.ones(3, 3), 0)
    with pytest.raises(TypeError, match="per_volume: expected a bool"):
        connected_components(torch.ones(3, 3), 2, per_volume=1)
    with pytest.raises(ValueError, match="backend"):
        connected_components(torch.ones(3, 3), 2, backend="cupy")


@settings(max_examples=40, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 3), st.integers(1, 7), st.integers(1, 7), st.integers(1, 6))),
       st.integers(1, 3))
def test_property_equals_scipy(mask, spatial_dims):
    """Property: for any mask and any split into batch and spatial dims, scipy's labels exactly."""
    check(mask, spatial_dims)


@CUDA
def test_cuda_equals_scipy_and_stays_on_device():
    mask = np.random.default_rng(7).random((3, 20, 21, 22)) < 0.35
    got = connected_components(torch.from_numpy(mask).cuda(), 3)
    assert got.device.type == "cuda" and got.dtype == torch.int64
    np.testing.assert_array_equal(got.cpu().numpy(), scipy_labels(mask, 3))
    np.testing.assert_array_equal(connected_components(torch.from_numpy(spiral(129)).cuda(), 2).cpu().numpy(),
                                  scipy_labels(spiral(129), 2))
    host = connected_components(torch.from_numpy(mask).cuda(), 3, backend="scipy")  # a host copy, back on the device
    assert host.device.type == "cuda" and torch.equal(host, got)
