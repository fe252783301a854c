"""SignedDistance / SignedDistanced: the oracle is the pure function (class_signed_distance) called directly,
the reference one_hot2dist re-derived with scipy (sampling = pixdim), and properties (type, meta, device)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from monai.transforms import Compose, RandSpatialCropd

import voxweight.transforms as vt
from tests.maps.test_signed import one_hot2dist
from tests.transforms.transform_checks import PIXDIM, check_against_oracle
from tests.transforms.transform_checks import as_kind as _as
from voxweight.maps import class_signed_distance


def _indices() -> np.ndarray:
    """[1, 10, 9, 8] class indices 0..3 (class 2 absent), two boxes."""
    lab = np.zeros((1, 10, 9, 8), dtype=np.int64)
    lab[0, 2:6, 2:5, 1:4] = 1
    lab[0, 5:9, 4:8, 3:7] = 3
    return lab


def _binary() -> np.ndarray:
    return (np.concatenate([_indices() == 1, _indices() == 3]) * 1).astype(np.uint8)


@pytest.mark.parametrize("kind", ["ndarray", "tensor", "metatensor"])
@pytest.mark.parametrize("convention", ["levelset", "kervadec"])
def test_per_channel_equals_pure_function_and_keeps_type(kind, convention):
    transform = vt.SignedDistance(convention=convention)
    check_against_oracle(transform, lambda lab, sp: class_signed_distance(lab, spacing=sp, convention=convention),
                         _binary(), kind)


@pytest.mark.parametrize("kind", ["ndarray", "tensor", "metatensor"])
def test_multiclass_kervadec_equals_reference_with_pixdim(kind):
    lab = _as(kind, _indices())
    out = vt.SignedDistance(multiclass=True, num_classes=4, convention="kervadec")(lab)
    assert type(out) is type(lab) and tuple(out.shape) == (4, 10, 9, 8)
    assert out.dtype in (np.float32, torch.float32)
    one_hot = (_indices()[0][None] == np.arange(4).reshape(4, 1, 1, 1)).astype(np.uint8)
    spacing = PIXDIM if kind == "metatensor" else None
    np.testing.assert_allclose(np.asarray(out), one_hot2dist(one_hot, spacing), rtol=1e-6, atol=1e-6)
    if kind == "metatensor":
        torch.testing.assert_close(out.affine, lab.affine)
        assert out.meta["filename_or_obj"] == "lab.nii.gz"


def test_explicit_spacing_overrides_pixdim_and_float_indices_are_read_as_classes():
    lab = _as("metatensor", _indices().astype(np.float32))  # as LoadImaged gives it
    out = vt.SignedDistance(multiclass=True, num_classes=4, spacing=(1.0, 1.0, 1.0))(lab)
    np.testing.assert_array_equal(np.asarray(out), class_signed_distance(_indices()[0], multiclass=True,
                                                                         num_classes=4))
    from_pixdim = vt.SignedDistance(multiclass=True, num_classes=4)(lab)
    assert not np.allclose(np.asarray(from_pixdim), np.asarray(out))


def test_dictionary_twin_writes_key_sdm_and_keeps_the_label():
    label = _as("metatensor", _indices())
    d = vt.SignedDistanced("label", multiclass=True, num_classes=4)({"label": label, "image": 1})
    assert set(d) == {"label", "image", "label_sdm"} and d["label"] is label
    np.testing.assert_array_equal(np.asarray(d["label_sdm"]),
                                  np.asarray(vt.SignedDistance(multiclass=True, num_classes=4)(label)))
    other = vt.SignedDistanceD(["label", "mask"], sdm_postfix="_phi", allow_missing_keys=True)(
        {"label": _binary()})
    assert set(other) == {"label", "label_phi"} and other["label_phi"].shape == _binary().shape
    assert vt.SignedDistanceDict is vt.SignedDistanced


def test_in_a_pipeline_the_map_follows_the_crop_and_pickles():
    pipeline = Compose([vt.SignedDistanced("label", multiclass=True, num_classes=4),
                        RandSpatialCropd(["label", "label_sdm"], roi_size=(6, 6, 6), random_size=False)])
    pipeline.set_random_state(3)
    out = pickle.loads(pickle.dumps(pipeline))({"label": _as("metatensor", _indices())})
    assert tuple(out["label_sdm"].shape) == (4, 6, 6, 6) and tuple(out["label"].shape) == (1, 6, 6, 6)
    inside = out["label_sdm"].as_tensor() < 0  # negative exactly on the class's voxels
    torch.testing.assert_close(inside.long().argmax(0, keepdim=True), out["label"].as_tensor().long())


def test_tensor_keeps_device(devices):
    for device in devices:
        lab = torch.as_tensor(_indices(), device=device)
        out = vt.SignedDistance(multiclass=True, num_classes=4, convention="kervadec")(lab)
        assert out.device == lab.device and out.dtype == torch.float32
        np.testing.assert_allclose(out.cpu().numpy(), vt.SignedDistance(
            multiclass=True, num_classes=4, convention="kervadec")(_indices()), rtol=1e-6, atol=1e-6)


def test_bad_input_and_options_raise():
    with pytest.raises(ValueError, match=r"convention: expected one of 'levelset', 'kervadec'"):
        vt.SignedDistance(convention="sdf")  # checked when built
    with pytest.raises(ValueError, match=r"num_classes: expected None without multiclass=True"):
        vt.SignedDistance(num_classes=3)
    with pytest.raises(ValueError, match=r"backend: expected one of"):
        vt.SignedDistanced("label", backend="gpu")
    with pytest.raises(ValueError, match=r"sdm_postfix: expected a non-empty string"):
        vt.SignedDistanced("label", sdm_postfix="")
    with pytest.raises(ValueError, match=r"img: expected one channel \[1, \*spatial\] of class indices"):
        vt.SignedDistance(multiclass=True)(_binary())
    with pytest.raises(ValueError, match=r"img: expected whole-number class indices"):
        vt.SignedDistance(multiclass=True)(np.full((1, 3, 3), 0.5))
    with pytest.raises(ValueError, match=r"label: expected a binary label"):
        vt.SignedDistance()(np.full((1, 3, 3), 0.5))
    with pytest.raises(ValueError, match=r"img: expected a channel-first array"):
        vt.SignedDistance()(np.zeros(4))
    with pytest.raises(TypeError, match=r"img: expected a numpy.ndarray or torch.Tensor"):
        vt.SignedDistance()([[0, 1]])
    with pytest.raises(KeyError):
        vt.SignedDistanced("label")({"image": np.zeros((1, 2, 2))})
