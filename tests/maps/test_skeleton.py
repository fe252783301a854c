"""tubed_skeleton: the reference SkeletonTransform re-derived with scikit-image (equality on random vessel trees,
2D and 3D, binary and multi-class), skimage's own dilations for other radii, a brute-force Euclidean tube for
spacing, hand-computed degenerate cases, and hypothesis properties (skeleton in tube in label, monotone in radius)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.morphology import dilation, skeletonize

from voxweight.demo.vessels import vessel_tree
from voxweight.maps.skeleton import tubed_skeleton


def reference_skeleton_transform(seg: np.ndarray, do_tube: bool = True) -> np.ndarray:
    """Oracle: MIC-DKFZ/Skeleton-Recall SkeletonTransform.apply re-derived ([1, *spatial] -> int16, channel 0 only)."""
    binary = seg > 0
    out = np.zeros_like(binary, dtype=np.int16)
    if binary[0].sum() != 0:
        skel = (skeletonize(binary[0]) > 0).astype(np.int16)
        if do_tube:
            skel = dilation(dilation(skel))
        skel *= seg[0].astype(np.int16)
        out[0] = skel
    return out


def multiclass_tree(shape, seed: int, branches: int = 9) -> np.ndarray:
    """A vessel tree split into 3 touching classes: at its median along axis 1, and a ball of class 3."""
    _, label = vessel_tree(shape, 1.0, np.random.default_rng(seed), branches=branches)
    where = np.argwhere(label)
    classes = np.where(np.indices(shape)[1] < np.median(where[:, 1]), 1, 2).astype(np.uint8)
    centre = where[len(where) // 3]
    ball = np.linalg.norm(np.indices(shape) - centre.reshape((-1,) + (1,) * len(shape)), axis=0) < 6
    classes[ball] = 3
    return label * classes


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("shape", [(48, 40, 36), (64, 56)])
def test_default_equals_reference_on_multiclass_vessel_trees(shape, seed):
    seg = multiclass_tree(shape, seed)[None]
    assert len(np.unique(seg)) == 4  # background and three classes present
    ours = tubed_skeleton(seg, multiclass=True, spatial_dims=len(shape))
    np.testing.assert_array_equal(ours, reference_skeleton_transform(seg))
    assert ours.dtype == seg.dtype and ours.any()


@pytest.mark.parametrize("seed", range(3))
def test_default_equals_reference_on_binary_trees_touching_the_border(seed):
    _, label = vessel_tree((40, 32, 32), (0.8, 0.8, 1.5), np.random.default_rng(10 + seed), branches=12)
    label[:, :, -3:] = 1  # a slab on the border: the crop must not change the thinning there
    seg = label[None]
    np.testing.assert_array_equal(tubed_skeleton(seg), reference_skeleton_transform(seg))


def test_random_blobs_2d_and_3d_equal_reference():
    rng = np.random.default_rng(7)
    for i in range(40):
        nd = 2 + i % 2
        shape = tuple(rng.integers(3, 16, nd))
        smooth = ndi.gaussian_filter(rng.normal(size=shape), 1.0)
        seg = ((smooth > np.quantile(smooth, rng.uniform(0.2, 0.95))) * rng.integers(1, 4, shape)).astype(np.int32)
        ours = tubed_skeleton(seg[None], multiclass=True, spatial_dims=nd)
        np.testing.assert_array_equal(ours, reference_skeleton_transform(seg[None]), err_msg=f"case {i}")


@pytest.mark.parametrize("radius", [0, 1, 3])
def test_tube_radius_counts_cross_dilations(radius):
    """Oracle: skimage's skeleton dilated `radius` times with skimage's default (cross) footprint, times the label."""
    seg = multiclass_tree((40, 40, 32), seed=4)
    tube = skeletonize(seg > 0).astype(np.int16)
    for _ in range(radius):
        tube = dilation(tube)
    np.testing.assert_array_equal(tubed_skeleton(seg, tube_radius=radius, multiclass=True), tube * seg)


def brute_force_tube(seg: np.ndarray, radius: float, spacing: tuple[float, ...]) -> np.ndarray:
    """Oracle: every foreground voxel within `radius` (physical) of a skeleton voxel, by all pairwise distances."""
    skel = np.argwhere(skeletonize(seg > 0)) * np.array(spacing)
    fg = np.argwhere(seg > 0)
    d = np.linalg.norm(fg[:, None, :] * np.array(spacing) - skel[None], axis=-1).min(axis=1)
    out = np.zeros_like(seg)
    keep = fg[d <= radius + 1e-9]
    out[tuple(keep.T)] = seg[tuple(keep.T)]
    return out


@pytest.mark.parametrize(("radius", "spacing"), [(1.6, (1.0, 1.0, 1.0)), (2.0, (0.7, 1.0, 2.0)), (1.0, (0.5, 0.5, 3.0)),
                                                 (0.0, (1.0, 2.0, 3.0))])
def test_spacing_gives_a_round_tube_of_physical_radius(radius, spacing):
    seg = multiclass_tree((28, 28, 24), seed=2, branches=5)
    ours = tubed_skeleton(seg, tube_radius=radius, spacing=spacing, multiclass=True)
    np.testing.assert_array_equal(ours, brute_force_tube(seg, radius, spacing))


def test_euclidean_radius_one_in_voxels_is_one_cross_dilation():
    """Hand-derived: the voxels within Euclidean distance 1 of a voxel are the cross."""
    seg = multiclass_tree((32, 32, 24), seed=1)
    np.testing.assert_array_equal(tubed_skeleton(seg, tube_radius=1.0, spacing=1.0, multiclass=True),
                                  tubed_skeleton(seg, tube_radius=1, multiclass=True))


def test_degenerate_labels():
    empty = np.zeros((1, 6, 6, 6), dtype=np.uint8)
    np.testing.assert_array_equal(tubed_skeleton(empty), empty)
    dot = empty.copy()
    dot[0, 0, 5, 2] = 1  # one voxel, on the border
    np.testing.assert_array_equal(tubed_skeleton(dot), dot)
    line = np.zeros((9, 9, 9), dtype=np.uint8)
    line[4, 1:8, 4] = 3  # thinner than the tube: the tube is the line itself
    np.testing.assert_array_equal(tubed_skeleton(line, multiclass=True), line)
    np.testing.assert_array_equal(tubed_skeleton(line, tube_radius=2.5, spacing=1, multiclass=True), line)
    full = np.ones((1, 7, 7, 7), dtype=np.uint8)  # all foreground: whatever skeletonize does, as the reference
    np.testing.assert_array_equal(tubed_skeleton(full), reference_skeleton_transform(full))
    zero_size = np.zeros((0, 4, 4, 4), dtype=np.uint8)
    assert tubed_skeleton(zero_size).shape == (0, 4, 4, 4)


def test_class_absent_and_class_ids_kept():
    seg = multiclass_tree((32, 32, 24), seed=3)
    seg[seg == 2] = 5  # sparse ids: 0, 1, 3, 5 (2 absent)
    out = tubed_skeleton(seg, multiclass=True)
    assert set(np.unique(out).tolist()) <= {0, 1, 3, 5} and 5 in out
    np.testing.assert_array_equal(out[out > 0], seg[out > 0])


def test_leading_dims_are_independent_volumes():
    a, b = multiclass_tree((24, 24, 20), seed=5), multiclass_tree((24, 24, 20), seed=6)
    batch = np.stack([np.stack([a, b]), np.stack([b, np.zeros_like(a)])])  # [2, 2, *spatial]
    out = tubed_skeleton(batch, multiclass=True)
    for i, j in np.ndindex(2, 2):
        np.testing.assert_array_equal(out[i, j], tubed_skeleton(batch[i, j], multiclass=True))


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.int64, torch.float32, torch.float16, torch.bfloat16])
def test_torch_in_torch_out_same_dtype(dtype):
    _, label = vessel_tree((24, 24, 24), 1.0, np.random.default_rng(0), branches=5)
    t = torch.from_numpy(label).to(dtype)
    before = t.clone()
    out = tubed_skeleton(t)
    assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.device == t.device
    torch.testing.assert_close(t, before)  # not modified
    np.testing.assert_array_equal(out.float().numpy(), reference_skeleton_transform(label[None])[0])


@pytest.mark.parametrize("dtype", [np.bool_, np.float32, np.float16, np.uint16])
def test_numpy_dtype_kept(dtype):
    label = np.zeros((10, 12), dtype=dtype)
    label[3:7, 2:10] = 1
    out = tubed_skeleton(label, spatial_dims=2)
    assert isinstance(out, np.ndarray) and out.dtype == dtype
    np.testing.assert_array_equal(out.astype(np.int16), reference_skeleton_transform(label[None].astype(np.uint8))[0])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_label_comes_back_on_its_device():
    seg = multiclass_tree((32, 32, 24), seed=0)
    out = tubed_skeleton(torch.from_numpy(seg).cuda(), multiclass=True)
    assert out.device.type == "cuda" and out.dtype == torch.uint8
    np.testing.assert_array_equal(out.cpu().numpy(), tubed_skeleton(seg, multiclass=True))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 3), st.integers(0, 3))
def test_skeleton_in_tube_in_label_and_monotone_in_radius(seed, nd, radius):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(4, 14, nd))
    seg = ((ndi.gaussian_filter(rng.normal(size=shape), 1.0) > 0.1) * rng.integers(1, 3, shape)).astype(np.uint8)
    thin = tubed_skeleton(seg, tube_radius=radius, multiclass=True, spatial_dims=nd)
    thick = tubed_skeleton(seg, tube_radius=radius + 1, multiclass=True, spatial_dims=nd)
    skel = tubed_skeleton(seg, tube_radius=0, multiclass=True, spatial_dims=nd)
    assert np.all((skel > 0) <= (thin > 0)) and np.all((thin > 0) <= (thick > 0)) and np.all((thick > 0) <= (seg > 0))
    np.testing.assert_array_equal(thick[thick > 0], seg[thick > 0])


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"tube_radius": -1}, ValueError, r"tube_radius: expected an integer >= 0, got -1"),
    ({"tube_radius": -0.5, "spacing": 1.0}, ValueError, r"tube_radius: expected a finite number >= 0"),
    ({"tube_radius": 1.5}, TypeError, r"tube_radius: expected an integer >= 0 .* give spacing"),
    ({"tube_radius": True}, TypeError, r"tube_radius: expected an integer"),
    ({"spacing": (1.0, 2.0)}, ValueError, r"spacing: expected 3 values"),
    ({"spacing": 0.0}, ValueError, r"spacing: expected a finite number > 0"),
    ({"multiclass": 1}, TypeError, r"multiclass: expected a bool"),
    ({"spatial_dims": 1}, ValueError, r"spatial_dims: expected 2 or 3"),
    ({"spatial_dims": 4}, ValueError, r"spatial_dims: expected 2 or 3"),
])
def test_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        tubed_skeleton(np.zeros((1, 4, 4, 4, 4), dtype=np.uint8), **kwargs)


def test_bad_labels():
    binary = r"label: expected a binary label \(values 0 and 1\) without multiclass=True"
    with pytest.raises(ValueError, match=binary + r", got 1 voxels with other values, e\.g\. 2; pass multiclass"):
        tubed_skeleton(np.array([[[0, 1, 2]]]))
    with pytest.raises(ValueError, match=binary + r", .* e\.g\. nan"):
        tubed_skeleton(np.array([[[0, 1, np.nan]]]))
    with pytest.raises(ValueError, match=r"label: expected a binary label"):
        tubed_skeleton(torch.full((3, 3, 3), 0.5))
    with pytest.raises(TypeError, match=r"label: expected integer class indices .* got dtype float32"):
        tubed_skeleton(np.zeros((3, 3, 3), dtype=np.float32), multiclass=True)
    with pytest.raises(ValueError, match=r"label: expected class indices >= 0 .* got minimum -1"):
        tubed_skeleton(-np.ones((3, 3, 3), dtype=np.int64), multiclass=True)
    with pytest.raises(TypeError, match=r"label: expected a numpy.ndarray or torch.Tensor"):
        tubed_skeleton([[0, 1], [1, 0]], spatial_dims=2)
    with pytest.raises(ValueError, match=r"label: expected at least 3 dims"):
        tubed_skeleton(np.zeros((4, 4)))
