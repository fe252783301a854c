"""class_signed_distance: the reference one_hot2dist re-derived with scipy per class, scipy's EDT for the
level-set maps, hand-computed cases, and hypothesis properties (sign, the kervadec shift)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from voxweight.maps import class_signed_distance

BACKENDS = ["edt", "scipy", "torch"]


def one_hot2dist(seg: np.ndarray, sampling=None) -> np.ndarray:
    """Oracle: LIVIAETS/boundary-loss utils.one_hot2dist re-derived (scipy per class, dtype=float32)."""
    res = np.zeros(seg.shape, dtype=np.float32)
    for k in range(len(seg)):
        pos = seg[k].astype(bool)
        if pos.any():
            neg = ~pos
            res[k] = ndi.distance_transform_edt(neg, sampling=sampling) * neg - (
                ndi.distance_transform_edt(pos, sampling=sampling) - 1) * pos
    return res


def levelset_oracle(seg: np.ndarray, sampling=None) -> np.ndarray:
    """Oracle: +EDT outside, -EDT inside per class (scipy), 0 for a class without a boundary."""
    res = np.zeros(seg.shape, dtype=np.float32)
    for k in range(len(seg)):
        pos = seg[k].astype(bool)
        if pos.any() and not pos.all():
            res[k] = ndi.distance_transform_edt(~pos, sampling=sampling) - ndi.distance_transform_edt(pos,
                                                                                                  sampling=sampling)
    return res


def _labels(shape, classes=5, absent=(2,), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lab = ndi.median_filter(rng.integers(0, classes, shape), size=3)  # blobs, not noise
    for k in absent:
        lab[lab == k] = 0
    return lab


def _one_hot(lab: np.ndarray, classes: int) -> np.ndarray:
    return (lab[None] == np.arange(classes).reshape((-1,) + (1,) * lab.ndim)).astype(np.uint8)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spacing", [None, (2.0, 0.7, 1.3)])
def test_kervadec_equals_reference_one_hot2dist(backend, spacing):
    lab = _labels((14, 12, 10))
    ours = class_signed_distance(lab, multiclass=True, num_classes=5, spacing=spacing, convention="kervadec",
                                 backend=backend)
    ref = one_hot2dist(_one_hot(lab, 5), spacing)
    assert ours.dtype == np.float32 and ours.shape == (5, 14, 12, 10)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)
    assert not ours[2].any()  # the absent class stays all zeros, as in the reference


@pytest.mark.parametrize("backend", BACKENDS)
def test_kervadec_one_hot_channels_equal_the_reference_in_2d(backend):
    seg = _one_hot(_labels((17, 13), classes=3, absent=()), 3)
    ours = class_signed_distance(seg, spacing=(0.5, 1.5), convention="kervadec", spatial_dims=2, backend=backend)
    np.testing.assert_allclose(ours, one_hot2dist(seg, (0.5, 1.5)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spacing", [None, (2.0, 0.7, 1.3)])
def test_kervadec_class_filling_the_volume_equals_the_reference(backend, spacing):
    """The reference's value there is scipy's EDT of a mask without background: reproduced exactly."""
    seg = np.zeros((3, 6, 5, 4), dtype=np.uint8)
    seg[1] = 1  # class 1 everywhere, classes 0 and 2 absent
    ours = class_signed_distance(seg, spacing=spacing, convention="kervadec", backend=backend)
    np.testing.assert_allclose(ours, one_hot2dist(seg, spacing), rtol=1e-6, atol=1e-6)
    assert ours[1, 0, 0, 0] == pytest.approx(1 - (spacing or (1.0,))[0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spacing", [None, (1.0, 2.5, 0.6)])
def test_levelset_equals_scipy_both_sides_and_zero_without_boundary(backend, spacing):
    lab = _labels((11, 9, 12), classes=4, absent=(3,))
    seg = _one_hot(lab, 4)
    ours = class_signed_distance(lab, multiclass=True, num_classes=4, spacing=spacing, backend=backend)
    np.testing.assert_allclose(ours, levelset_oracle(seg, spacing), rtol=1e-6, atol=1e-6)
    assert np.isfinite(ours).all() and not ours[3].any()


def test_hand_computed_one_voxel_and_degenerate_volumes():
    one = np.array([0, 0, 1, 0])
    np.testing.assert_array_equal(class_signed_distance(one, spatial_dims=1), [2, 1, -1, 1])
    np.testing.assert_array_equal(class_signed_distance(one, spatial_dims=1, convention="kervadec"), [2, 1, 0, 1])
    np.testing.assert_array_equal(class_signed_distance(one, spatial_dims=1, spacing=0.5), [1, 0.5, -0.5, 0.5])
    # kervadec's "- 1" is not scaled by the spacing: the inside boundary voxel gets 1 - 0.5
    np.testing.assert_array_equal(class_signed_distance(one, spatial_dims=1, spacing=0.5, convention="kervadec"),
                                  [1, 0.5, 0.5, 0.5])
    for convention in ("levelset", "kervadec"):
        empty = class_signed_distance(np.zeros((2, 5, 5)), spatial_dims=2, convention=convention)
        assert empty.shape == (2, 5, 5) and not empty.any()
    full = class_signed_distance(np.ones((4, 3), dtype=bool), spatial_dims=2)
    assert not full.any()  # level set: no boundary, 0
    np.testing.assert_array_equal(class_signed_distance(np.ones((4,)), spatial_dims=1, convention="kervadec"),
                                  [0, -1, -2, -3])  # the reference's value (scipy's EDT with no background)


def test_zero_size_label_and_unmodified_input():
    assert class_signed_distance(np.zeros((0, 4, 4)), spatial_dims=2).shape == (0, 4, 4)
    assert class_signed_distance(np.zeros((2, 0), dtype=np.int64), multiclass=True, num_classes=3,
                                 spatial_dims=1).shape == (2, 3, 0)
    lab = _labels((6, 7, 5))
    before = lab.copy()
    class_signed_distance(lab, multiclass=True, convention="kervadec")
    np.testing.assert_array_equal(lab, before)


def test_leading_axes_are_independent_volumes_and_one_hot_equals_indices():
    labs = np.stack([_labels((8, 9, 7), seed=s) for s in range(3)])
    batch = class_signed_distance(labs, multiclass=True, num_classes=5)
    assert batch.shape == (3, 5, 8, 9, 7)
    for i, lab in enumerate(labs):
        np.testing.assert_array_equal(batch[i], class_signed_distance(lab, multiclass=True, num_classes=5))
        np.testing.assert_array_equal(batch[i], class_signed_distance(_one_hot(lab, 5)))
    default = class_signed_distance(labs, multiclass=True)  # K = max + 1
    assert default.shape[1] == labs.max() + 1


def test_tensor_in_tensor_out_on_every_backend_and_bool_labels():
    lab = _labels((7, 6, 5))
    ref = class_signed_distance(lab, multiclass=True, num_classes=5, convention="kervadec")
    for backend in BACKENDS:
        out = class_signed_distance(torch.from_numpy(lab), multiclass=True, num_classes=5, convention="kervadec",
                                    backend=backend)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6, atol=1e-6)
    for dtype in (torch.uint8, torch.uint16, torch.int32):  # NIfTI dtypes, torch's barely supported ones included
        out = class_signed_distance(torch.from_numpy(lab).to(dtype), multiclass=True, num_classes=5,
                                    convention="kervadec")
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6, atol=1e-6)
    mask = lab == 1
    np.testing.assert_array_equal(class_signed_distance(mask), class_signed_distance(mask.astype(np.float32)))
    np.testing.assert_array_equal(class_signed_distance(torch.from_numpy(mask)).numpy(), class_signed_distance(mask))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_label_stays_on_its_device_and_equals_the_reference():
    lab = _labels((12, 10, 9))
    out = class_signed_distance(torch.from_numpy(lab).cuda(), multiclass=True, num_classes=5,
                                spacing=(2.0, 0.7, 1.3), convention="kervadec")
    assert out.device.type == "cuda"
    np.testing.assert_allclose(out.cpu().numpy(), one_hot2dist(_one_hot(lab, 5), (2.0, 0.7, 1.3)),
                               rtol=1e-6, atol=1e-6)
    full = class_signed_distance(torch.ones(1, 4, 3, 2, device="cuda"), convention="kervadec")
    np.testing.assert_allclose(full.cpu().numpy(), one_hot2dist(np.ones((1, 4, 3, 2))), rtol=1e-6, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2), min_size=2, max_size=12), st.floats(0.25, 4.0))
def test_property_sign_magnitude_and_kervadec_shift(values, step):
    lab = np.array(values)
    level = class_signed_distance(lab, multiclass=True, num_classes=3, spacing=step, spatial_dims=1)
    kerv = class_signed_distance(lab, multiclass=True, num_classes=3, spacing=step, spatial_dims=1,
                                 convention="kervadec")
    for k in range(3):
        inside = lab == k
        if inside.any() and not inside.all():
            assert (level[k][inside] < 0).all() and (level[k][~inside] > 0).all()
            assert (np.abs(level[k]) >= step * (1 - 1e-6)).all()
            np.testing.assert_allclose(kerv[k], np.where(inside, level[k] + 1, level[k]), rtol=1e-6, atol=1e-6)
        elif not inside.any():
            assert not level[k].any() and not kerv[k].any()


def test_bad_input_raises_naming_the_argument():
    with pytest.raises(ValueError, match=r"label: expected a binary label"):
        class_signed_distance(np.array([0.0, 0.4, 1.0]), spatial_dims=1)
    with pytest.raises(ValueError, match=r"label: expected a binary label .*threshold"):
        class_signed_distance(torch.tensor([0.0, 0.4, 1.0]), spatial_dims=1)
    with pytest.raises(ValueError, match=r"num_classes: expected None without multiclass=True"):
        class_signed_distance(np.array([0, 1]), num_classes=2, spatial_dims=1)
    with pytest.raises(TypeError, match=r"label: expected integer class indices"):
        class_signed_distance(np.array([0.0, 1.0]), multiclass=True, spatial_dims=1)
    with pytest.raises(TypeError, match=r"label: expected integer class indices"):
        class_signed_distance(torch.tensor([0.0, 1.0]), multiclass=True, spatial_dims=1)
    with pytest.raises(ValueError, match=r"label: expected class indices in \[0, 1\]"):
        class_signed_distance(np.array([0, 2]), multiclass=True, num_classes=2, spatial_dims=1)
    with pytest.raises(ValueError, match=r"label: expected class indices in \[0, 1\]"):
        class_signed_distance(torch.tensor([0, 2]), multiclass=True, num_classes=2, spatial_dims=1)
    with pytest.raises(ValueError, match=r"label: expected class indices >= 0"):
        class_signed_distance(np.array([0, -1]), multiclass=True, spatial_dims=1)
    with pytest.raises(ValueError, match=r"convention: expected one of 'levelset', 'kervadec', got 'kervadek' "
                                         r"\(did you mean 'kervadec'\?\)"):
        class_signed_distance(np.array([0, 1]), convention="kervadek", spatial_dims=1)
    with pytest.raises(ValueError, match=r"backend: expected one of"):
        class_signed_distance(np.array([0, 1]), backend="cuda", spatial_dims=1)
    with pytest.raises(ValueError, match=r"spacing: expected 3 values"):
        class_signed_distance(np.zeros((2, 2, 2)), spacing=(1.0, 2.0))
    with pytest.raises(TypeError, match=r"multiclass: expected a bool"):
        class_signed_distance(np.zeros((2, 2, 2)), multiclass=1)
    with pytest.raises(TypeError, match=r"label: expected a numpy.ndarray or torch.Tensor"):
        class_signed_distance([0, 1], spatial_dims=1)
    with pytest.raises(ValueError, match=r"num_classes: expected an integer >= 1"):
        class_signed_distance(np.array([0, 1]), multiclass=True, num_classes=0, spatial_dims=1)
