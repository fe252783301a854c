"""Multi-class weight maps: multiclass_balance_weights and boundary_weights(multiclass=True).

Oracles: class counts from numpy (np.unique) with the formulas written out, class_balance_weights for
two classes, the fixed table indexed by numpy, brute-force all-pairs distances (float64, independent
of any EDT and of the 4-sigma cropping), scipy.ndimage.label per class for the U-Net objects, scipy's
EDT for the distance backends, and hand-computed 1-D cases.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

import voxweight
from tests.maps.map_checks import warns_few_objects
from voxweight import boundary_weights, class_balance_weights, multiclass_balance_weights
from voxweight.maps.distance import distance_to_other_value

MODES = ("balanced", "inverse_frequency", "sqrt_inverse")


def numpy_balance(label: np.ndarray, k: int, mode: str, spatial_dims: int) -> np.ndarray:
    """Oracle: per-volume counts with np.unique, then the documented formula, indexed by the label."""
    lead = label.shape[: label.ndim - spatial_dims]
    volumes = label.reshape(int(np.prod(lead)), -1)
    out = np.empty(volumes.shape)
    for i, v in enumerate(volumes):
        classes, counts = np.unique(v, return_counts=True)
        f = counts / v.size
        a = {"balanced": 1 / (len(classes) * f), "inverse_frequency": 1 / f, "sqrt_inverse": 1 / np.sqrt(f)}[mode]
        table = np.ones(k)
        table[classes] = a
        out[i] = table[v]
    return out.reshape(label.shape)


@pytest.mark.parametrize("mode", MODES)
def test_balance_matches_numpy_counts(mode):
    """Oracle: numpy counts per leading index; class 3 of 5 absent from every volume."""
    rng = np.random.default_rng(0)
    label = rng.choice([0, 1, 2, 4], size=(2, 3, 5, 6, 4), p=[0.7, 0.2, 0.07, 0.03])
    out = multiclass_balance_weights(label, num_classes=5, mode=mode)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == label.shape
    np.testing.assert_allclose(out, numpy_balance(label, 5, mode, 3), rtol=1e-6)


def test_balanced_mean_is_one_per_volume():
    """Property: with "balanced" the mean weight over each volume is 1, whatever classes are present."""
    label = torch.randint(0, 6, (4, 7, 8, 9))
    label[1] = label[1] % 2  # only classes 0 and 1 in volume 1
    w = multiclass_balance_weights(label, num_classes=6)
    torch.testing.assert_close(w.mean(dim=(1, 2, 3)), torch.ones(4))


@pytest.mark.parametrize("mode", MODES)
def test_two_classes_equal_class_balance_weights(mode):
    """Oracle: with K = 2 the map is class_balance_weights' (empty and full volumes included)."""
    label = torch.randint(0, 2, (4, 1, 6, 5, 4))
    label[2] = 0
    label[3] = 1
    expected = class_balance_weights(label, mode=mode)
    torch.testing.assert_close(multiclass_balance_weights(label, num_classes=2, mode=mode), expected)


def test_fixed_class_weight_and_max_weight():
    """Oracle: the table indexed by numpy; max_weight clips the table."""
    label = np.random.default_rng(1).integers(0, 4, size=(3, 5, 5))
    table = np.array([0.5, 1.0, 4.0, 9.0])
    out = multiclass_balance_weights(label, class_weight=table, spatial_dims=2)
    np.testing.assert_allclose(out, table[label])
    clipped = multiclass_balance_weights(torch.from_numpy(label), class_weight=torch.tensor(table), max_weight=2.0,
                                         spatial_dims=2)
    np.testing.assert_allclose(clipped.numpy(), np.minimum(table, 2.0)[label])


def test_max_weight_clips_frequency_weights():
    """Hand-computed: one voxel of class 1 in 10 -> 1 / 0.1 = 10, clipped to 3; class 0 gets 1 / 0.9."""
    label = np.zeros(10, dtype=np.int64)
    label[4] = 1
    out = multiclass_balance_weights(label, mode="inverse_frequency", max_weight=3.0, spatial_dims=1)
    np.testing.assert_allclose(out, np.where(label == 1, 3.0, 1 / 0.9), rtol=1e-6)


def test_degenerate_volumes():
    """One class only, one voxel and an empty volume: weights of 1 (and no NaN/inf)."""
    for mode in MODES:
        np.testing.assert_array_equal(multiclass_balance_weights(np.full((3, 3), 2), num_classes=4, mode=mode,
                                                                 spatial_dims=2), np.ones((3, 3)))
        np.testing.assert_array_equal(multiclass_balance_weights(np.array([[[1]]]), mode=mode), np.ones((1, 1, 1)))
    assert multiclass_balance_weights(np.zeros((2, 0, 3, 3), dtype=np.int64)).shape == (2, 0, 3, 3)
    assert multiclass_balance_weights(torch.zeros(0, dtype=torch.long), spatial_dims=1).shape == (0,)


def test_num_classes_defaults_to_max_plus_one_and_types():
    """Oracle: numpy_balance with K = max + 1; tensor in -> float32 tensor, bool labels are classes 0/1."""
    label = torch.tensor([[0, 2, 2, 1, 2]], dtype=torch.uint8)
    out = multiclass_balance_weights(label, spatial_dims=1)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), numpy_balance(label.numpy(), 3, "balanced", 1), rtol=1e-6)
    mask = np.array([True, False, False, False])
    np.testing.assert_allclose(multiclass_balance_weights(mask, spatial_dims=1), [2.0, 2 / 3, 2 / 3, 2 / 3], rtol=1e-6)


def test_input_not_modified_and_read_only_array():
    label = np.array([0, 1, 1, 2])
    label.setflags(write=False)
    out = multiclass_balance_weights(label, spatial_dims=1)
    out[:] = 0
    np.testing.assert_array_equal(label, [0, 1, 1, 2])


@pytest.mark.parametrize(("kwargs", "label", "error", "match"), [
    ({}, np.array([0.0, 1.0]), TypeError, r"label: expected integer class indices .*got dtype float64"),
    ({}, torch.tensor([0.0, 1.0]), TypeError, r"label: expected integer class indices .*got dtype torch.float32"),
    ({}, np.array([0, -1]), ValueError, r"label: expected class indices in \[0, 0\].*got values in \[-1, 0\]"),
    ({"num_classes": 2}, np.array([0, 2]), ValueError, r"label: expected class indices in \[0, 1\] \(num_classes=2\)"),
    ({"num_classes": 0}, np.array([0]), ValueError, r"num_classes: expected an integer >= 1 or None, got 0"),
    ({"num_classes": 2.0}, np.array([0]), TypeError, r"num_classes: expected an integer >= 1 or None, got float"),
    ({"class_weight": [1.0, 2.0]}, np.array([0, 2]), ValueError, r"label: expected class indices in \[0, 1\]"),
    ({"class_weight": [1.0, 2.0], "num_classes": 3}, np.array([0]), ValueError,
     r"class_weight: expected num_classes=3 values, got 2"),
    ({"class_weight": [1.0, -2.0]}, np.array([0]), ValueError, r"class_weight: expected finite non-negative"),
    ({"class_weight": [[1.0]]}, np.array([0]), ValueError, r"class_weight: expected a 1-D sequence"),
    ({"class_weight": "heavy"}, np.array([0]), TypeError, r"class_weight: expected a number"),
    ({"mode": "balance"}, np.array([0]), ValueError, r"mode: expected one of .*did you mean 'balanced'"),
    ({"max_weight": 0.0}, np.array([0]), ValueError, r"max_weight: expected a finite number > 0"),
    ({"spatial_dims": 2}, np.array([0]), ValueError, r"label: expected at least 2 dims"),
    ({}, [0, 1], TypeError, r"label: expected a numpy.ndarray or torch.Tensor"),
])
def test_balance_bad_input(kwargs, label, error, match):
    with pytest.raises(error, match=match):
        multiclass_balance_weights(label, **({"spatial_dims": 1} | kwargs))


def test_value_checks_off_clamps_out_of_range_indices():
    """With value checks off a bad index is clamped into [0, K): a defined map, no crash, no NaN."""
    with voxweight.value_checks("off"):
        out = multiclass_balance_weights(torch.tensor([0, 0, 5, -3]), num_classes=2, spatial_dims=1)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, multiclass_balance_weights(torch.tensor([0, 0, 1, 0]), num_classes=2,
                                                               spatial_dims=1))


@pytest.mark.cuda
def test_balance_on_cuda_matches_cpu_without_sync():
    """Oracle: the CPU result; with num_classes given, no host-device synchronisation (sync debug mode)."""
    label = torch.randint(0, 4, (2, 16, 16, 16))
    expected = multiclass_balance_weights(label, num_classes=4)
    gpu = label.cuda()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = multiclass_balance_weights(gpu, num_classes=4)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.device == gpu.device
    torch.testing.assert_close(out.cpu(), expected)


# ----------------------------------------------------------------------------------------- boundary maps


def _coords(shape, spacing) -> np.ndarray:
    return np.stack(np.indices(shape), -1).reshape(-1, len(shape)) * np.asarray(spacing, dtype=np.float64)


def _min_dist(grid: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.sqrt(((grid[:, None, :] - points[None, :, :]) ** 2).sum(-1)).min(1)


def brute_other_class(classes: np.ndarray, spacing) -> np.ndarray:
    """Oracle: all pairwise distances from each voxel to the voxels of the other classes (float64)."""
    grid, flat = _coords(classes.shape, spacing), classes.reshape(-1)
    d = np.full(flat.shape, np.inf)
    for c in np.unique(flat):
        if (flat != c).any():
            d[flat == c] = _min_dist(grid[flat == c], grid[flat != c])
    return d.reshape(classes.shape)


def brute_unet(objects: np.ndarray, w0: float, sigma: float, spacing) -> np.ndarray:
    """Oracle: all pairwise distances, per-object minimum, two smallest by sorting (float64)."""
    grid, flat = _coords(objects.shape, spacing), objects.reshape(-1)
    ids = [k for k in np.unique(flat) if k > 0]
    if len(ids) < 2:
        return np.ones(objects.shape)
    per_object = np.sort(np.stack([_min_dist(grid, grid[flat == k]) for k in ids]), axis=0)
    bonus = w0 * np.exp(-((per_object[0] + per_object[1]) ** 2) / (2 * sigma**2))
    return 1 + np.where(flat == 0, bonus, 0.0).reshape(objects.shape)


def _classes(shape, seed, k=4) -> np.ndarray:
    """Blobs of classes 1..k-1 on background 0, some touching each other."""
    rng = np.random.default_rng(seed)
    seeds = np.where(rng.random(shape) < 0.04, rng.integers(1, k, shape), 0)
    return ndi.grey_dilation(seeds, size=(2,) * len(shape)).astype(np.int64)


def _per_class_objects(classes: np.ndarray) -> np.ndarray:
    """Oracle objects: scipy.ndimage.label (full connectivity) of each class, ids made distinct."""
    objects, offset = np.zeros(classes.shape, dtype=np.int64), 0
    for c in np.unique(classes[classes > 0]):
        comp, n = ndi.label(classes == c, structure=np.ones((3,) * classes.ndim, dtype=bool))
        objects[comp > 0] = comp[comp > 0] + offset
        offset += n
    return objects


@pytest.mark.parametrize("sigma", [1.0, 3.0, 50.0])
@pytest.mark.parametrize(("shape", "spacing", "seed"), [((14, 15), (1.0, 1.0), 0), ((12, 11), (0.6, 1.9), 1),
                                                         ((8, 9, 7), (1.5, 0.7, 2.0), 2)])
def test_multiclass_distance_matches_brute_force(shape, spacing, seed, sigma):
    """Oracle: brute-force distance to the nearest voxel of another class; exact where the bonus matters."""
    classes = _classes(shape, seed)
    assert len(np.unique(classes)) == 4
    out = boundary_weights(classes, mode="distance", w0=10.0, sigma=sigma, spacing=spacing, spatial_dims=len(shape),
                           multiclass=True)
    expected = 1 + 10.0 * np.exp(-brute_other_class(classes, spacing) ** 2 / (2 * sigma**2))
    np.testing.assert_allclose(out, expected, atol=1e-3 * 10.0)
    exact = expected - 1 > 10.0 * np.exp(-8)
    np.testing.assert_allclose(out[exact], expected[exact], rtol=1e-5)


@pytest.mark.parametrize("sigma", [1.0, 50.0])
@pytest.mark.parametrize(("shape", "spacing", "seed"), [((14, 15), (1.0, 1.0), 3), ((8, 9, 7), (1.5, 0.7, 2.0), 4)])
def test_multiclass_unet_matches_brute_force_over_per_class_components(shape, spacing, seed, sigma):
    """Oracle: brute-force U-Net map over the components of each class (scipy.ndimage.label per class)."""
    classes = _classes(shape, seed)
    objects = _per_class_objects(classes)
    out = boundary_weights(classes, w0=10.0, sigma=sigma, spacing=spacing, spatial_dims=len(shape), multiclass=True)
    expected = brute_unet(objects, 10.0, sigma, spacing)
    np.testing.assert_allclose(out, expected, atol=1e-3 * 10.0)
    exact = expected - 1 > 10.0 * np.exp(-8)
    np.testing.assert_allclose(out[exact], expected[exact], rtol=1e-5)


def test_touching_objects_of_different_classes_are_separated():
    """Hand-computed 1-D: [1, 2, 0, 0, 1]; binary sees objects {0,1} and {4}, multi-class {0}, {1}, {4}."""
    label = np.array([1, 2, 0, 0, 1])
    out = boundary_weights(label, w0=2.0, sigma=1.0, spatial_dims=1, multiclass=True)
    # voxel 2: d1 = 1 (class 2), d2 = 2 (voxel 4 / voxel 0); voxel 3: d1 = 1 (voxel 4), d2 = 2 (voxel 1)
    np.testing.assert_allclose(out, [1, 1, 1 + 2 * np.exp(-4.5), 1 + 2 * np.exp(-4.5), 1], rtol=1e-6)
    binary = boundary_weights((label > 0).astype(np.uint8), w0=2.0, sigma=1.0, spatial_dims=1)
    np.testing.assert_allclose(binary, [1, 1, 1 + 2 * np.exp(-4.5), 1 + 2 * np.exp(-4.5), 1], rtol=1e-6)
    two = np.array([1, 1, 2, 2, 0, 0])  # binary: one object -> all ones; multi-class: two objects
    with warns_few_objects():
        assert np.all(boundary_weights((two > 0).astype(np.uint8), w0=2.0, sigma=1.0, spatial_dims=1) == 1)
    d1, d2 = np.array([1.0, 2.0]), np.array([3.0, 4.0])  # voxels 4, 5: to class 2 and to class 1
    np.testing.assert_allclose(boundary_weights(two, w0=2.0, sigma=1.0, spatial_dims=1, multiclass=True)[4:],
                               1 + 2 * np.exp(-((d1 + d2) ** 2) / 2), rtol=1e-6)


@pytest.mark.parametrize("mode", ["unet", "distance"])
def test_binary_label_gives_the_binary_map(mode):
    """Property: on a 0/1 label, multiclass=True equals the binary map (leading axes, tensor round trip)."""
    label = torch.from_numpy(_classes((2, 12, 13), 5, k=2))
    binary = boundary_weights(label, mode=mode, sigma=2.0, spatial_dims=2)
    multi = boundary_weights(label, mode=mode, sigma=2.0, spatial_dims=2, multiclass=True)
    assert isinstance(multi, torch.Tensor) and multi.shape == label.shape
    torch.testing.assert_close(multi, binary)


@pytest.mark.parametrize("mode", ["unet", "distance"])
def test_multiclass_degenerate_volumes(mode):
    """One class everywhere, background only, and a single voxel: all ones."""
    for label in (np.full((5, 6), 3), np.zeros((5, 6), dtype=np.int64), np.array([[2]])):
        with warns_few_objects(mode == "unet"):
            np.testing.assert_array_equal(boundary_weights(label, mode=mode, spatial_dims=2, multiclass=True),
                                          np.ones(label.shape))


def test_multiclass_unet_with_instances():
    """With instances the ids are the objects; the multi-class label is validated and must match them."""
    label = np.array([1, 2, 0, 0, 1])
    instances = np.array([1, 1, 0, 0, 2])  # classes 1 and 2 in one instance
    out = boundary_weights(label, w0=2.0, sigma=1.0, spatial_dims=1, multiclass=True, instances=instances)
    np.testing.assert_allclose(out, brute_unet(instances, 2.0, 1.0, (1.0,)), rtol=1e-6)


@pytest.mark.parametrize("backend", ["edt", "scipy"])
def test_distance_to_other_value_backends_match_scipy_per_class(backend):
    """Oracle: scipy's EDT of each class mask, read on that class (anisotropic, large class ids)."""
    classes = _classes((9, 10, 11), 6) * 300  # ids up to 900 need uint16 in edt
    spacing = (2.0, 0.7, 1.3)
    expected = np.zeros(classes.shape)
    for c in np.unique(classes):
        expected[classes == c] = ndi.distance_transform_edt(classes == c, sampling=spacing)[classes == c]
    np.testing.assert_allclose(distance_to_other_value(classes, spacing, backend), expected, rtol=1e-5)
    assert np.isinf(distance_to_other_value(np.full((3, 3), 7), (1.0, 1.0), backend)).all()


@pytest.mark.parametrize(("kwargs", "label", "error", "match"), [
    ({"multiclass": True}, np.array([0.0, 1.0, 2.0]), TypeError, r"label: expected integer class indices"),
    ({"multiclass": True}, torch.tensor([0.0, 1.0]), TypeError, r"label: expected integer class indices"),
    ({"multiclass": True}, np.array([0, -1, 2]), ValueError, r"label: expected class indices >= 0.*got minimum -1"),
    ({"multiclass": 1}, np.array([0, 1]), TypeError, r"multiclass: expected a bool, got int 1"),
    ({}, np.array([0, 1, 2]), ValueError, r"label: expected a binary label"),
    ({"multiclass": True, "mode": "distance", "instances": np.array([0, 1, 1])}, np.array([0, 1, 2]), ValueError,
     r"instances: expected None for mode='distance'"),
])
def test_multiclass_boundary_bad_input(kwargs, label, error, match):
    with pytest.raises(error, match=match):
        boundary_weights(label, spatial_dims=1, **kwargs)
