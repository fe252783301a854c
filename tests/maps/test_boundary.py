"""boundary_weights: hand-computed 1-D maps, a brute-force all-pairs U-Net / distance map as oracle
(independent of any EDT and of the 4-sigma cropping), scipy's EDT with ``sampling``, and properties."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from tests.maps.map_checks import warns_few_objects
from voxweight.maps import boundary_weights

FULL = {2: np.ones((3, 3), dtype=bool), 3: np.ones((3, 3, 3), dtype=bool)}


def _coords(shape, spacing) -> np.ndarray:
    return np.stack(np.indices(shape), -1).reshape(-1, len(shape)) * np.asarray(spacing, dtype=np.float64)


def _min_dist(grid: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.sqrt(((grid[:, None, :] - points[None, :, :]) ** 2).sum(-1)).min(1)


def brute_unet(objects: np.ndarray, w0: float, sigma: float, spacing) -> np.ndarray:
    """Oracle: all pairwise voxel distances, per object minimum, two smallest by sorting (float64)."""
    grid = _coords(objects.shape, spacing)
    ids = [k for k in np.unique(objects) if k > 0]
    if len(ids) < 2:
        return np.ones(objects.shape)
    per_object = np.sort(np.stack([_min_dist(grid, grid[objects.reshape(-1) == k]) for k in ids]), axis=0)
    bonus = w0 * np.exp(-((per_object[0] + per_object[1]) ** 2) / (2 * sigma**2))
    return 1 + np.where(objects.reshape(-1) == 0, bonus, 0.0).reshape(objects.shape)


def brute_distance(fg: np.ndarray, w0: float, sigma: float, spacing) -> np.ndarray:
    """Oracle: all pairwise distances to the voxels of the other class (float64)."""
    if fg.all() or not fg.any():
        return np.ones(fg.shape)
    grid, flat = _coords(fg.shape, spacing), fg.reshape(-1)
    d = np.where(flat, _min_dist(grid, grid[~flat]), _min_dist(grid, grid[flat]))
    return 1 + w0 * np.exp(-(d**2) / (2 * sigma**2)).reshape(fg.shape)


def _blobs(shape, seed, density=0.02) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndi.binary_dilation(rng.random(shape) < density).astype(np.uint8)


def test_hand_computed_unet_1d():
    """Hand-computed: objects at 0, 2, 5; voxel 1 has d = (1, 1), voxels 3 and 4 have d = (1, 2)."""
    w = boundary_weights(np.array([1, 0, 1, 0, 0, 1]), w0=2.0, sigma=1.0, spatial_dims=1)
    b2, b3 = 1 + 2 * np.exp(-2.0), 1 + 2 * np.exp(-4.5)
    np.testing.assert_allclose(w, [1, b2, 1, b3, b3, 1], rtol=1e-6)


def test_hand_computed_distance_1d_with_spacing():
    """Hand-computed: voxel-centre distances [2, 1, 1, 1, 1] x spacing 0.5 on both sides."""
    w = boundary_weights(np.array([0, 0, 1, 1, 0]), mode="distance", w0=3.0, sigma=2.0, spacing=0.5, spatial_dims=1)
    d = 0.5 * np.array([2.0, 1, 1, 1, 1])
    np.testing.assert_allclose(w, 1 + 3 * np.exp(-(d**2) / 8), rtol=1e-6)


@pytest.mark.parametrize("sigma", [1.0, 4.0, 50.0])
@pytest.mark.parametrize(("shape", "spacing", "seed"), [((14, 17), (1.0, 1.0), 0), ((13, 11), (0.6, 1.9), 5),
                                                         ((8, 9, 7), (1.5, 0.7, 2.0), 2)])
def test_unet_matches_brute_force(shape, spacing, seed, sigma):
    """Oracle: brute-force U-Net map over full-connectivity components (scipy.ndimage.label)."""
    fg = _blobs(shape, seed)
    objects, n = ndi.label(fg, structure=FULL[len(shape)])
    assert n >= 3
    out = boundary_weights(fg, w0=10.0, sigma=sigma, spacing=spacing, spatial_dims=len(shape))
    expected = brute_unet(objects, 10.0, sigma, spacing)
    np.testing.assert_allclose(out, expected, atol=1e-3 * 10.0)
    exact = expected - 1 > 10.0 * np.exp(-8)  # where all contributing distances are within the 4-sigma boxes
    np.testing.assert_allclose(out[exact], expected[exact], rtol=1e-5)
    if sigma == 50.0:  # the boxes cover the whole volume: exact everywhere
        np.testing.assert_allclose(out, expected, rtol=1e-5)


@pytest.mark.parametrize("sigma", [0.8, 3.0, 50.0])
@pytest.mark.parametrize(("shape", "spacing", "seed"), [((15, 12), (1.0, 1.0), 3), ((9, 10, 8), (2.0, 0.5, 1.2), 4)])
def test_distance_mode_matches_brute_force(shape, spacing, seed, sigma):
    """Oracle: brute-force two-sided distance map (exact up to float32 where above 1e-3 w0)."""
    fg = _blobs(shape, seed, density=0.01)
    out = boundary_weights(fg, mode="distance", w0=5.0, sigma=sigma, spacing=spacing, spatial_dims=len(shape))
    expected = brute_distance(fg.astype(bool), 5.0, sigma, spacing)
    np.testing.assert_allclose(out, expected, atol=1e-3 * 5.0)
    exact = expected - 1 > 5.0 * np.exp(-8)
    np.testing.assert_allclose(out[exact], expected[exact], rtol=1e-5)


def test_distance_mode_matches_scipy_edt_with_anisotropic_spacing():
    """Oracle: scipy EDT with sampling on each side; anisotropy changes the map."""
    fg = _blobs((24, 20, 16), seed=5, density=0.004).astype(bool)
    spacing = (0.8, 1.2, 2.5)
    inside, outside = (ndi.distance_transform_edt(m, sampling=spacing) for m in (fg, ~fg))
    d = np.where(fg, inside, outside)
    out = boundary_weights(fg, mode="distance", w0=4.0, sigma=2.0, spacing=spacing)
    np.testing.assert_allclose(out, 1 + 4.0 * np.exp(-(d**2) / 8.0), atol=4e-3, rtol=1e-5)
    assert np.abs(out - boundary_weights(fg, mode="distance", w0=4.0, sigma=2.0)).max() > 0.5


def test_unet_cropping_against_naive_full_volume_scipy(rng):
    """Oracle: naive U-Net map with one full-volume scipy EDT per object; within 1e-3 w0 everywhere."""
    fg = np.zeros((40, 36, 30), dtype=np.uint8)
    for c in rng.integers(3, 27, (15, 3)):
        fg[c[0] - 2:c[0] + 2, c[1] - 2:c[1] + 3, c[2] - 1:c[2] + 2] = 1
    spacing, sigma, w0 = (1.0, 0.8, 1.5), 2.0, 10.0
    objects, n = ndi.label(fg, structure=FULL[3])
    per_object = np.sort([ndi.distance_transform_edt(objects != k, sampling=spacing) for k in range(1, n + 1)], 0)
    naive = 1 + np.where(fg == 0, w0 * np.exp(-((per_object[0] + per_object[1]) ** 2) / (2 * sigma**2)), 0)
    out = boundary_weights(fg, w0=w0, sigma=sigma, spacing=spacing)
    assert n >= 5 and naive.max() > 2
    np.testing.assert_allclose(out, naive, atol=1e-3 * w0)
    near = per_object[1] < 4 * sigma
    np.testing.assert_allclose(out[near], naive[near], rtol=1e-5)


@pytest.mark.parametrize("mode", ["unet", "distance"])
def test_degenerate_volumes(mode):
    """Documented: empty and full -> ones; a one-voxel volume -> one; one object -> ones for 'unet'."""
    for lab in (np.zeros((5, 6, 7)), np.ones((5, 6, 7)), np.ones((1, 1, 1)), np.zeros((1, 1, 1))):
        with warns_few_objects(mode == "unet"):  # "unet": 0 or 1 object, said in a UserWarning
            out = boundary_weights(lab, mode=mode)
        np.testing.assert_array_equal(out, np.ones(lab.shape, dtype=np.float32))
    one = np.zeros((9, 9, 9), dtype=bool)
    one[3:6, 2:7, 4] = True
    with warns_few_objects(mode == "unet"):
        out = boundary_weights(one, mode=mode, sigma=1.5)
    if mode == "unet":  # a single object: nothing to separate, d2 = inf, bonus 0
        np.testing.assert_array_equal(out, np.ones(one.shape, dtype=np.float32))
    else:  # oracle: brute force
        np.testing.assert_allclose(out, brute_distance(one, 10.0, 1.5, (1, 1, 1)), atol=1e-2, rtol=1e-5)
    assert np.isfinite(out).all() and out.min() >= 1


def test_single_voxel_foreground_distance_mode_hand_computed():
    """Hand-computed: the voxel itself and its 6 face neighbours are 1 away: bonus w0 exp(-1 / (2 sigma^2))."""
    lab = np.zeros((5, 5, 5), dtype=np.uint8)
    lab[2, 2, 2] = 1
    out = boundary_weights(lab, mode="distance", w0=2.0, sigma=1.0)
    assert out[2, 2, 2] == pytest.approx(1 + 2 * np.exp(-0.5)) and out[2, 2, 3] == pytest.approx(1 + 2 * np.exp(-0.5))
    assert out[3, 3, 3] == pytest.approx(1 + 2 * np.exp(-1.5), rel=1e-6)


def test_touching_objects_connectivity_and_instances():
    """Full connectivity (documented): a diagonal contact makes one object (all ones); an instance
    map splits touching objects, and then the map equals the brute force over the instances."""
    diagonal = np.zeros((8, 8), dtype=np.uint8)
    diagonal[1:4, 1:4] = diagonal[4:7, 4:7] = 1
    with warns_few_objects():
        np.testing.assert_array_equal(boundary_weights(diagonal, sigma=2.0, spatial_dims=2), 1.0)
    apart = diagonal.copy()
    apart[4:7, 4:7] = 0
    apart[5:8, 5:8] = 1  # one voxel gap along the diagonal: two objects
    np.testing.assert_allclose(boundary_weights(apart, sigma=2.0, spatial_dims=2),
                               brute_unet(ndi.label(apart, FULL[2])[0], 10.0, 2.0, (1, 1)), rtol=1e-5)
    lab = np.zeros((10, 12), dtype=np.uint8)
    lab[2:8, 2:10] = 1
    inst = lab.astype(np.int32)
    inst[2:8, 6:10] = 5  # two face-touching instances, ids 1 and 5
    out = boundary_weights(lab, sigma=2.0, instances=inst, spatial_dims=2)
    np.testing.assert_allclose(out, brute_unet(inst, 10.0, 2.0, (1, 1)), rtol=1e-5)
    with warns_few_objects():
        assert out.max() > 2 and np.array_equal(boundary_weights(lab, sigma=2.0, spatial_dims=2), np.ones_like(out))


def test_instances_options():
    """Oracle: brute force over ids; shared spatial instance map; huge sparse ids; an id in two pieces."""
    lab = np.zeros((2, 9, 10), dtype=np.uint8)
    lab[:, 1:4, 1:4] = lab[:, 5:8, 6:9] = lab[:, 6:8, 1:3] = 1
    inst = np.zeros((9, 10), dtype=np.int64)
    inst[1:4, 1:4], inst[5:8, 6:9], inst[6:8, 1:3] = 7, 10**12, 7  # id 7 has two pieces
    out = boundary_weights(lab, sigma=3.0, instances=inst, spatial_dims=2)
    expected = brute_unet(inst, 10.0, 3.0, (1, 1))
    np.testing.assert_allclose(out[0], expected, rtol=1e-5)
    np.testing.assert_allclose(out[1], expected, rtol=1e-5)
    separate = boundary_weights(lab[0], sigma=3.0, spatial_dims=2)  # three components without instances
    assert not np.allclose(separate, out[0])
    full = np.ones((6, 5), dtype=np.uint8)  # no background, three huge ids: no voxel gets a bonus
    thirds = np.repeat(10**12 + np.arange(3), 2)[:, None] * np.ones((1, 5), dtype=np.int64)
    np.testing.assert_array_equal(boundary_weights(full, instances=thirds, spatial_dims=2), 1.0)


def test_leading_axes_processed_independently():
    """Property: a [2, 2, *spatial] stack gives the maps of its four volumes computed one by one."""
    vols = [_blobs((10, 11, 9), seed=s) for s in range(4)]
    stacked = np.stack(vols).reshape(2, 2, 10, 11, 9)
    for mode in ("unet", "distance"):
        out = boundary_weights(stacked, mode=mode, sigma=2.0, spacing=(1.0, 2.0, 1.5))
        for i, vol in enumerate(vols):
            np.testing.assert_array_equal(out.reshape(4, 10, 11, 9)[i],
                                          boundary_weights(vol, mode=mode, sigma=2.0, spacing=(1.0, 2.0, 1.5)))


@pytest.mark.parametrize("mode", ["unet", "distance"])
def test_types_devices_and_label_not_mutated(mode, devices):
    """Property: ndarray -> float32 ndarray, tensor -> float32 tensor on its device; same values; inputs intact."""
    lab = _blobs((2, 8, 9, 10), seed=7)
    before = lab.copy()
    expected = boundary_weights(lab, mode=mode, sigma=2.0)
    assert isinstance(expected, np.ndarray) and expected.dtype == np.float32 and expected.shape == lab.shape
    np.testing.assert_array_equal(lab, before)
    for device in devices:
        for dtype in (torch.bool, torch.float32, torch.int64):
            t = torch.as_tensor(lab, device=device).to(dtype)
            out = boundary_weights(t, mode=mode, sigma=2.0)
            assert type(out) is torch.Tensor and out.dtype == torch.float32 and out.device == t.device
            np.testing.assert_array_equal(out.cpu().numpy(), expected)
            assert torch.equal(t.cpu(), torch.as_tensor(before).to(dtype))


LAB = np.zeros((4, 5, 6), dtype=np.uint8)


@pytest.mark.parametrize(("label", "kwargs", "error", "match"), [
    ([0, 1], {}, TypeError, r"label: expected a numpy\.ndarray or torch\.Tensor"),
    (np.zeros((4, 5)), {}, ValueError, r"label: expected at least 3 dims .* got shape \[4, 5\]"),
    (np.array([[[0, 2]]]), {}, ValueError, r"label: expected a binary label .* e\.g\. 2"),
    (np.array([[[0.0, 0.5]]]), {}, ValueError, r"label: expected a binary label"),
    (LAB, {"sigma": 0.0}, ValueError, r"sigma: expected a finite number > 0, got 0.0"),
    (LAB, {"sigma": -2.0}, ValueError, r"sigma: expected a finite number > 0"),
    (LAB, {"w0": -1.0}, ValueError, r"w0: expected a finite number >= 0"),
    (LAB, {"spacing": (1.0, 1.0)}, ValueError, r"spacing: expected 3 values \(one per spatial axis\), got 2"),
    (LAB, {"spacing": (1.0, -1.0, 1.0)}, ValueError, r"spacing\[1\]: expected a finite number > 0"),
    (LAB, {"mode": "unte"}, ValueError, r"mode: expected one of 'unet', 'distance', got 'unte' \(did you mean 'unet'"),
    (LAB, {"mode": "distance", "instances": LAB}, ValueError, r"instances: expected None for mode='distance'"),
    (LAB, {"instances": LAB[0]}, ValueError, r"instances: expected shape \[4, 5, 6\] .* got \[5, 6\]"),
    (LAB, {"instances": LAB.astype(float)}, TypeError, r"instances: expected integer instance ids"),
    (LAB, {"instances": [0]}, TypeError, r"instances: expected a numpy\.ndarray or torch\.Tensor"),
    (LAB, {"instances": np.full((4, 5, 6), -1)}, ValueError, r"instances: expected ids >= 0"),
    (LAB, {"instances": np.ones((4, 5, 6), dtype=int)}, ValueError, r"instances: expected ids > 0 exactly where"),
    (np.full((4, 5, 6), -1.0), {"instances": LAB}, ValueError, r"label: expected values >= 0"),
    (LAB, {"spatial_dims": 0}, ValueError, r"spatial_dims: expected an integer >= 1"),
])
def test_bad_input_names_the_argument(label, kwargs, error, match):
    with pytest.raises(error, match=match):
        boundary_weights(label, **kwargs)
