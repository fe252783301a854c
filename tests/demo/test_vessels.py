"""Synthetic vessel trees: one connected component per tree (scipy's label), radii checked with scipy's EDT on the
skeleton (scikit-image), determinism per seed, the NIfTI files' header and contents, and bad arguments."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import scipy.ndimage as ndi
from skimage.morphology import skeletonize

from voxweight.demo.vessels import vessel_tree, write_vessel_dataset


@pytest.mark.parametrize(("shape", "spacing"), [((48, 40, 32), 1.0), ((40, 40, 20), (1.0, 1.0, 2.5)),
                                                ((64, 48), (0.5, 0.7))])
@pytest.mark.parametrize("seed", range(4))
def test_each_tree_is_one_connected_component(shape, spacing, seed):
    image, label = vessel_tree(shape, spacing, np.random.default_rng(seed))
    assert label.dtype == np.uint8 and image.dtype == np.float32 and image.shape == label.shape == shape
    assert set(np.unique(label).tolist()) == {0, 1}
    assert ndi.label(label)[1] == 1  # 6-connected in 3D, 4-connected in 2D
    assert 0.001 < label.mean() < 0.3
    assert np.isfinite(image).all() and image[label > 0].mean() > image[label == 0].mean() + 0.5  # vessels bright


@pytest.mark.parametrize(("radius", "spacing"), [((1.0, 1.0), 1.0), ((3.0, 3.0), 1.0), ((1.0, 4.0), 1.0),
                                                 ((2.0, 2.0), (0.5, 0.5, 0.5))])
def test_radius_range_via_the_edt(radius, spacing):
    """Oracle: scipy's EDT (in voxels of the finest axis) on the tree: no thicker than the thickest radius (plus
    the voxel rounding), and on its skeleton the typical depth is the radius."""
    _, label = vessel_tree((64, 56, 48), spacing, np.random.default_rng(3), radius=radius, branches=7)
    steps = np.broadcast_to(np.asarray(spacing, dtype=float), (3,))
    depth = ndi.distance_transform_edt(label, sampling=steps) / steps.min()
    assert radius[1] <= depth.max() <= radius[1] + 1.5
    if radius[0] == radius[1]:
        assert radius[0] <= np.median(depth[skeletonize(label > 0)]) <= radius[0] + 1.0


def test_thick_slices_keep_the_tree_connected():
    _, label = vessel_tree((40, 40, 16), (0.6, 0.6, 3.0), np.random.default_rng(5), radius=(1.0, 2.0))
    assert ndi.label(label)[1] == 1


def test_deterministic_per_seed_and_different_across_seeds():
    a = vessel_tree((32, 32, 32), 1.0, np.random.default_rng(11))
    b = vessel_tree((32, 32, 32), 1.0, np.random.default_rng(11))
    c = vessel_tree((32, 32, 32), 1.0, np.random.default_rng(12))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_more_branches_more_vessel():
    few = vessel_tree((48, 48, 48), 1.0, np.random.default_rng(0), branches=1)[1]
    many = vessel_tree((48, 48, 48), 1.0, np.random.default_rng(0), branches=15)[1]
    assert few.sum() < many.sum() and ndi.label(few)[1] == 1


def test_write_vessel_dataset_writes_nifti_pairs_with_the_spacing(tmp_path):
    items = write_vessel_dataset(tmp_path / "v", 2, shape=(24, 24, 16), spacing=(0.8, 0.8, 2.0), seed=4, branches=5)
    assert [sorted(i) for i in items] == [["image", "label"]] * 2
    again = write_vessel_dataset(tmp_path / "w", 2, shape=(24, 24, 16), spacing=(0.8, 0.8, 2.0), seed=4, branches=5)
    expected = vessel_tree((24, 24, 16), (0.8, 0.8, 2.0), np.random.default_rng(4), branches=5)
    for key, array in zip(("image", "label"), expected, strict=True):
        written = nib.load(items[0][key])
        assert written.header.get_zooms() == pytest.approx((0.8, 0.8, 2.0))
        np.testing.assert_array_equal(np.asarray(written.dataobj), array)
        np.testing.assert_array_equal(np.asarray(nib.load(again[1][key]).dataobj),
                                      np.asarray(nib.load(items[1][key]).dataobj))
    assert np.asarray(nib.load(items[1]["label"]).dataobj).dtype == np.uint8


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"shape": (32,)}, ValueError, r"shape: expected 2 or 3 sizes"),
    ({"shape": (32, 4)}, ValueError, r"shape: expected sizes >= 8"),
    ({"shape": (32, 32.0)}, TypeError, r"shape\[1\]: expected an integer"),
    ({"spacing": (1.0, 2.0)}, ValueError, r"spacing: expected 3 values"),
    ({"radius": (4.0, 1.0)}, ValueError, r"radius: expected thinnest <= thickest"),
    ({"radius": (0.0, 1.0)}, ValueError, r"radius\[0\]: expected a finite number > 0"),
    ({"radius": 2.0}, TypeError, r"radius: expected a pair"),
    ({"branches": 0}, ValueError, r"branches: expected an integer >= 1"),
])
def test_bad_arguments(kwargs, error, match):
    args = {"shape": (32, 32, 32), "spacing": 1.0, **kwargs}
    with pytest.raises(error, match=match):
        vessel_tree(args.pop("shape"), args.pop("spacing"), np.random.default_rng(0), **args)
