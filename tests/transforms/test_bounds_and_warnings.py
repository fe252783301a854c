"""The transforms keep the maps' promises: finite maps from absurd NIfTI headers, sparse huge class ids,
empty labels, and one warning per call for a U-Net map with fewer than two objects (none at construction).

Oracles: nibabel (the header's pixdim, written and read back), hand-computed limits, numpy's ``np.unique``
for the class counts, scipy's ``ndimage.label`` for the object count.
"""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from monai.transforms import LoadImage

import voxweight.transforms as vt
from tests.transforms.transform_checks import as_kind


def _one_blob() -> np.ndarray:
    lab = np.zeros((1, 9, 9, 9), dtype=np.uint8)
    lab[0, 2:6, 2:6, 3:5] = 1
    return lab


@pytest.mark.parametrize("kwargs", [{}, {"mode": "distance"}, {"multiclass": True}, {"sigma": 0.01},
                                    {"spacing": [1e19, 1e19, 1e19]}])
def test_building_a_boundary_transform_does_not_warn(kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vt.BoundaryWeight(**kwargs)
        vt.BoundaryWeightd("label", **kwargs)


@pytest.mark.parametrize("kind", ["ndarray", "tensor", "metatensor"])
def test_unet_single_object_warns_once_per_call(kind):
    lab = _one_blob()
    assert ndi.label(lab[0], structure=np.ones((3, 3, 3)))[1] == 1  # oracle: one object
    transform, twin = vt.BoundaryWeight(sigma=2.0), vt.BoundaryWeightd("label", sigma=2.0)
    for call in (lambda: transform(as_kind(kind, lab)), lambda: twin({"label": as_kind(kind, lab)})):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            call()
        messages = [str(w.message) for w in record if issubclass(w.category, UserWarning)]
        assert len(messages) == 1 and "found 1 object;" in messages[0] and "instances=" in messages[0]


def test_unet_instance_key_separates_and_does_not_warn():
    lab = np.zeros((1, 10, 10, 10), dtype=np.uint8)
    lab[0, 2:5, 2:5, 2:8] = 1  # one component
    inst = np.zeros(lab.shape, dtype=np.int64)
    inst[0, 2:5, 2:5, 2:5], inst[0, 2:5, 2:5, 5:8] = 1, 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = vt.BoundaryWeightd("label", sigma=2.0, instance_key="inst")({"label": lab, "inst": inst})
    assert out["label_weight"].max() > 1.5


@pytest.mark.parametrize("mode", ["unet", "distance"])
def test_nifti_header_with_absurd_pixdim_gives_a_finite_map(tmp_path, mode):
    """nibabel writes pixdim 1e19 (as a corrupt header may hold); LoadImage -> MetaTensor -> a finite all-ones
    map (hand-computed: one voxel is 2e18 sigma, exp(-2e36) = 0), with the sigma warning."""
    lab = np.zeros((8, 8, 8), dtype=np.uint8)
    lab[1:3, 1:3, 1:3] = lab[5:7, 5:7, 5:7] = 1
    path = tmp_path / "lab.nii.gz"
    nib.save(nib.Nifti1Image(lab, np.diag([1e19, 1e19, 1e19, 1.0])), path)
    assert nib.load(path).header.get_zooms() == pytest.approx((1e19,) * 3)  # oracle: the header
    img = LoadImage(image_only=True, ensure_channel_first=True)(str(path))
    with pytest.warns(UserWarning, match=r"sigma: the bonus one voxel away"):
        out = vt.BoundaryWeight(mode=mode, sigma=5.0)(img)
    np.testing.assert_array_equal(out.as_tensor().numpy(), np.ones((1, 8, 8, 8), dtype=np.float32))


@pytest.mark.parametrize("kind", ["ndarray", "tensor", "metatensor"])
def test_multiclass_huge_ids_from_a_float_label(kind):
    """LoadImaged gives float32: 3e9 is a whole number there. Oracle: np.unique counts, "balanced"."""
    lab = np.zeros((1, 6, 6, 6), dtype=np.float32)
    lab[0, 0, 0, :4] = 3e9
    out = vt.ClassBalanceWeight(multiclass=True)(as_kind(kind, lab))
    _, inverse, counts = np.unique(lab, return_inverse=True, return_counts=True)
    expected = (1 / (2 * counts / lab.size))[inverse.reshape(lab.shape)]
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-6)


@pytest.mark.parametrize(("cls", "kwargs", "name"), [
    (vt.BoundaryWeight, {"w0": 1e39}, "w0"),
    (vt.ClassBalanceWeight, {"fg_weight": 1e39}, "fg_weight"),
    (vt.ClassBalanceWeight, {"bg_weight": 1e13}, "bg_weight"),
    (vt.ClassBalanceWeight, {"multiclass": True, "class_weight": [1.0, 1e39]}, "class_weight"),
])
def test_huge_weights_refused_at_construction(cls, kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}: expected"):
        cls(**kwargs)


@pytest.mark.parametrize("kind", ["ndarray", "tensor", "metatensor"])
def test_zero_size_label_gives_an_empty_map(kind):
    lab = np.zeros((1, 0, 4, 4), dtype=np.float32)
    for transform in (vt.ClassBalanceWeight(), vt.ClassBalanceWeight(multiclass=True), vt.BoundaryWeight(),
                      vt.BoundaryWeight(mode="distance")):
        out = transform(as_kind(kind, lab))
        assert type(out) is type(as_kind(kind, lab)) and tuple(out.shape) == (1, 0, 4, 4)
        assert out.dtype in (np.float32, torch.float32)
