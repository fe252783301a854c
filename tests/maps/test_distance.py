"""Distance transforms: hand-computed maps, scipy's EDT (with ``sampling``) as the oracle for both
backends, and a brute-force all-pairs distance on small volumes."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

import voxweight.maps.distance as dist
from voxweight.maps.distance import distance_to_foreground, distance_to_interface, signed_distance

BACKENDS = ["edt", "scipy", "auto"]


def _brute_distance_to(mask: np.ndarray, target: np.ndarray, spacing) -> np.ndarray:
    """Oracle: for each voxel, the minimum over all ``target`` voxels of the physical distance."""
    grid = np.stack(np.indices(mask.shape), -1).reshape(-1, mask.ndim) * np.asarray(spacing, dtype=np.float64)
    points = grid[target.reshape(-1)]
    if len(points) == 0:
        return np.full(mask.shape, np.inf)
    return np.sqrt(((grid[:, None, :] - points[None, :, :]) ** 2).sum(-1)).min(1).reshape(mask.shape)


def _blobs(shape, seed, density=0.03) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndi.binary_dilation(rng.random(shape) < density)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_1d_with_spacing(backend):
    """Hand-computed: voxel centres 2 mm apart."""
    out = distance_to_foreground(np.array([0, 0, 1, 0, 0, 0]), spacing=2.0, backend=backend)
    np.testing.assert_array_equal(out, [4, 2, 0, 2, 4, 6])
    assert out.dtype == np.float32


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_2d_anisotropic(backend):
    """Hand-computed: one foreground voxel at (1, 1), spacing (1, 2): d = sqrt(di^2 + (2 dj)^2)."""
    mask = np.zeros((3, 4), dtype=bool)
    mask[1, 1] = True
    expected = np.array([[np.hypot(1, 2 * abs(j - 1)) if i != 1 else 2 * abs(j - 1) for j in range(4)]
                         for i in range(3)])
    np.testing.assert_allclose(distance_to_foreground(mask, spacing=(1.0, 2.0), backend=backend), expected,
                               rtol=1e-6)


@pytest.mark.parametrize("backend", ["edt", "scipy"])
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.7, 1.3, 2.1), (3.0, 0.5, 1.0)])
def test_matches_scipy_edt_with_sampling_3d(backend, spacing):
    """Oracle: scipy.ndimage.distance_transform_edt(~mask, sampling=spacing) in float64."""
    mask = _blobs((14, 17, 11), seed=1)
    expected = ndi.distance_transform_edt(~mask, sampling=spacing)
    np.testing.assert_allclose(distance_to_foreground(mask, spacing=spacing, backend=backend), expected,
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["edt", "scipy"])
def test_matches_brute_force_2d_anisotropic(backend):
    """Oracle: all-pairs distances in numpy (independent of any EDT)."""
    mask = _blobs((9, 12), seed=2, density=0.05)
    spacing = (1.7, 0.6)
    np.testing.assert_allclose(distance_to_foreground(mask, spacing=spacing, backend=backend),
                               _brute_distance_to(mask, mask, spacing), rtol=1e-5, atol=1e-5)


def test_edt_anisotropy_follows_array_axis_order():
    """Property: reversing the spacing changes the map (the edt axis-order trap) and edt == scipy."""
    mask = _blobs((10, 12, 14), seed=3)
    spacing = (0.5, 1.0, 3.0)
    fast = distance_to_foreground(mask, spacing=spacing, backend="edt")
    np.testing.assert_allclose(fast, distance_to_foreground(mask, spacing=spacing, backend="scipy"), rtol=1e-5)
    assert np.abs(fast - distance_to_foreground(mask, spacing=spacing[::-1], backend="edt")).max() > 1.0


@pytest.mark.parametrize("backend", ["edt", "scipy"])
def test_interface_and_signed_against_scipy(backend):
    """Oracle: scipy EDT of each side, combined; sign: + outside, - inside."""
    mask = _blobs((12, 10, 9), seed=4, density=0.08)
    spacing = (1.2, 0.8, 2.5)
    inside = ndi.distance_transform_edt(mask, sampling=spacing)
    outside = ndi.distance_transform_edt(~mask, sampling=spacing)
    two_sided = distance_to_interface(mask, spacing=spacing, backend=backend)
    np.testing.assert_allclose(two_sided, np.where(mask, inside, outside), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(signed_distance(mask, spacing=spacing, backend=backend),
                               np.where(mask, -inside, outside), rtol=1e-5, atol=1e-5)
    assert two_sided.min() > 0  # interface voxels on both sides are one spacing away, never 0


def test_hand_computed_interface_1d():
    """Hand-computed: both interface voxels at distance 1 (voxel-centre convention)."""
    np.testing.assert_array_equal(distance_to_interface(np.array([0, 0, 1, 1, 1, 0])), [2, 1, 1, 2, 1, 1])
    np.testing.assert_array_equal(signed_distance(np.array([0, 0, 1, 1, 1, 0])), [2, 1, -1, -2, -1, 1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_degenerate_masks(backend):
    """Documented: no foreground -> inf; full -> 0 to the foreground, inf to the (absent) interface."""
    empty, full = np.zeros((3, 4, 5), dtype=bool), np.ones((3, 4, 5), dtype=bool)
    assert np.isposinf(distance_to_foreground(empty, backend=backend)).all()
    assert (distance_to_foreground(full, backend=backend) == 0).all()
    assert np.isposinf(distance_to_interface(empty, backend=backend)).all()
    assert np.isposinf(distance_to_interface(full, backend=backend)).all()
    assert np.isposinf(signed_distance(empty, backend=backend)).all()
    assert np.isneginf(signed_distance(full, backend=backend)).all()
    one = np.ones((1, 1, 1), dtype=np.uint8)
    assert distance_to_foreground(one, backend=backend).tolist() == [[[0.0]]]
    assert distance_to_foreground(np.zeros((0, 3)), backend=backend).shape == (0, 3)


def test_single_voxel_foreground_matches_brute_force():
    """Oracle: brute force; one foreground voxel in a 3-D volume with anisotropic spacing."""
    mask = np.zeros((5, 6, 4), dtype=np.int16)
    mask[2, 3, 1] = 7  # any non-zero value is foreground
    spacing = (2.0, 0.5, 1.5)
    np.testing.assert_allclose(distance_to_foreground(mask, spacing=spacing),
                               _brute_distance_to(mask, mask != 0, spacing), rtol=1e-6)


def test_tensor_input_and_not_mutated():
    """Property: a tensor gives the same numpy result as its array; the input is untouched."""
    mask = _blobs((8, 9, 10), seed=5)
    t = torch.as_tensor(mask.astype(np.float32))
    before = t.clone()
    out = distance_to_interface(t, spacing=(1.0, 2.0, 0.5))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_array_equal(out, distance_to_interface(mask, spacing=(1.0, 2.0, 0.5)))
    assert torch.equal(t, before)


def test_four_dims_use_scipy_under_auto():
    """Oracle: scipy EDT; edt supports 1-3 dims, so 'auto' falls back and 'edt' refuses."""
    mask = _blobs((4, 5, 3, 6), seed=6, density=0.1)
    np.testing.assert_allclose(distance_to_foreground(mask, spacing=(1, 2, 1, 0.5)),
                               ndi.distance_transform_edt(~mask, sampling=(1, 2, 1, 0.5)), rtol=1e-6)
    with pytest.raises(ValueError, match=r"backend: expected 'auto' or 'scipy' for 4 dims"):
        distance_to_foreground(mask, backend="edt")


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"mask": [0, 1]}, TypeError, r"mask: expected a numpy\.ndarray or torch\.Tensor, got list"),
    ({"mask": np.array(["a"])}, TypeError, r"mask: expected a bool, integer or floating-point array"),
    ({"mask": np.array(1)}, ValueError, r"mask: expected at least one \(spatial\) dim"),
    ({"spacing": (1.0, 2.0)}, ValueError, r"spacing: expected 3 values"),
    ({"spacing": (1.0, 0.0, 1.0)}, ValueError, r"spacing\[1\]: expected a finite number > 0"),
    ({"spacing": -1.0}, ValueError, r"spacing: expected a finite number > 0"),
    ({"backend": "sciyp"}, ValueError, r"backend: expected one of .* \(did you mean 'scipy'\?\)"),
])
def test_bad_input_names_the_argument(kwargs, error, match):
    options = {"mask": np.zeros((2, 3, 4)), **kwargs}
    mask = options.pop("mask")
    for fn in (distance_to_foreground, distance_to_interface, signed_distance):
        with pytest.raises(error, match=match):
            fn(mask, **options)


def _one_voxel(shape, value: bool) -> np.ndarray:
    mask = np.full(shape, not value)
    mask[tuple(n // 3 for n in shape)] = value
    return mask


SCIPY_SIDE_CASES = {
    "blobs 3d": (_blobs((20, 24, 18), seed=7, density=0.05), (2.0, 0.8, 0.8)),
    "blobs 3d other spacing": (_blobs((17, 13, 21), seed=8, density=0.08), (0.7, 1.3, 2.1)),
    "blobs 2d": (_blobs((70, 90), seed=9, density=0.02), (1.7, 0.6)),
    "blobs 4d": (_blobs((6, 7, 5, 8), seed=10, density=0.1), (1.0, 2.0, 1.0, 0.5)),
    "one foreground voxel": (_one_voxel((9, 10, 11), True), (2.0, 0.5, 1.5)),
    "one background voxel": (_one_voxel((9, 10, 11), False), (2.0, 0.5, 1.5)),
    "empty": (np.zeros((5, 6, 7), dtype=bool), (1.0, 2.0, 3.0)),
    "full": (np.ones((5, 6, 7), dtype=bool), (1.0, 2.0, 3.0)),
    "1x1x1 foreground": (np.ones((1, 1, 1), dtype=bool), (1.0, 1.0, 1.0)),
    "1x1x1 background": (np.zeros((1, 1, 1), dtype=bool), (1.0, 1.0, 1.0)),
    "no voxels": (np.zeros((0, 3), dtype=bool), (1.0, 1.0)),
}


def _sequential_scipy_two_sided(mask: np.ndarray, spacing) -> np.ndarray:
    """Oracle: scipy's EDT of each side, one after the other, cast to float32 and combined."""
    if mask.size == 0 or mask.all() or not mask.any():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    inside = ndi.distance_transform_edt(mask, sampling=spacing).astype(np.float32)
    outside = ndi.distance_transform_edt(~mask, sampling=spacing).astype(np.float32)
    return np.where(mask, inside, outside)


def _bits(a: np.ndarray) -> np.ndarray:
    assert a.dtype == np.float32
    return a.view(np.uint32)


@pytest.mark.parametrize("case", list(SCIPY_SIDE_CASES))
def test_scipy_two_threads_match_sequential_bit_for_bit(case, monkeypatch):
    """Oracle: sequential scipy EDTs; the threaded sides give the same bits (signed: sign flip inside)."""
    mask, spacing = SCIPY_SIDE_CASES[case]
    monkeypatch.setattr(dist, "SCIPY_THREADED_MIN_VOXELS", 0)  # thread even the tiny cases
    expected = _sequential_scipy_two_sided(mask, spacing)
    expected_signed = np.where(mask, -expected, expected)
    for threads in (1, 2, 3):
        two_sided = distance_to_interface(mask, spacing=spacing, backend="scipy", threads=threads)
        signed = signed_distance(mask, spacing=spacing, backend="scipy", threads=threads)
        np.testing.assert_array_equal(_bits(two_sided), _bits(expected), err_msg=f"threads={threads}")
        np.testing.assert_array_equal(_bits(signed), _bits(expected_signed), err_msg=f"threads={threads}")


def _record_scipy_sides(monkeypatch, barrier: threading.Barrier | None = None) -> list[int]:
    """Wrap the per-side scipy distance: record the thread of each call (and meet at ``barrier``)."""
    calls: list[int] = []
    inner = dist.distance_inside

    def recording(region, spacing, backend, threads=1):
        calls.append(threading.get_ident())
        if barrier is not None:
            barrier.wait()  # both sides must be in flight at once, else this times out
        return inner(region, spacing, backend, threads)

    monkeypatch.setattr(dist, "distance_inside", recording)
    return calls


def test_scipy_sides_run_concurrently_with_two_threads(monkeypatch):
    """Property: with 2 threads the two sides run at the same time, one of them off the calling thread."""
    mask, spacing = SCIPY_SIDE_CASES["blobs 3d"]
    assert mask.size >= dist.SCIPY_THREADED_MIN_VOXELS
    calls = _record_scipy_sides(monkeypatch, threading.Barrier(2, timeout=10))
    out = distance_to_interface(mask, spacing=spacing, backend="scipy", threads=2)
    assert len(calls) == 2 and threading.get_ident() in calls and len(set(calls)) == 2
    np.testing.assert_array_equal(_bits(out), _bits(_sequential_scipy_two_sided(mask, spacing)))


@pytest.mark.parametrize(("threads", "shape"), [
    (1, (20, 24, 18)),  # one thread allowed: sequential
    (2, (8, 8, 8)),  # below SCIPY_THREADED_MIN_VOXELS: a thread would cost more than it saves
])
def test_scipy_sides_stay_on_the_calling_thread(threads, shape, monkeypatch):
    """Property: one thread, or a tiny mask, computes both sides on the calling thread."""
    mask = _blobs(shape, seed=11, density=0.05)
    assert mask.any() and not mask.all()
    calls = _record_scipy_sides(monkeypatch)
    signed_distance(mask, spacing=(2.0, 0.8, 0.8), backend="scipy", threads=threads)
    assert calls == [threading.get_ident()] * 2
