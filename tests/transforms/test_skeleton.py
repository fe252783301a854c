"""TubedSkeleton / TubedSkeletond: the oracles are the pure function (tubed_skeleton) called directly and the
reference SkeletonTransform re-derived with scikit-image; properties: type, dtype, meta, device, crop alignment."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from monai.transforms import Compose, RandSpatialCropd

from tests.maps.test_skeleton import multiclass_tree, reference_skeleton_transform
from tests.transforms.transform_checks import PIXDIM
from tests.transforms.transform_checks import as_kind as _as
from voxweight.maps.skeleton import tubed_skeleton
from voxweight.transforms.skeleton import TubedSkeleton, TubedSkeletonD, TubedSkeletond, TubedSkeletonDict


def _tree() -> np.ndarray:
    """[1, 32, 28, 24] class ids 0..3 on a vessel tree."""
    return multiclass_tree((32, 28, 24), seed=8, branches=7)[None].astype(np.int64)


@pytest.mark.parametrize("kind", ["ndarray", "tensor", "metatensor"])
def test_default_is_the_reference_and_keeps_type_dtype_and_meta(kind):
    binary = (_tree() > 0).astype(np.float32)  # LoadImaged's float label
    lab = _as(kind, binary)
    out = TubedSkeleton()(lab)
    assert type(out) is type(lab) and out.dtype == lab.dtype and tuple(out.shape) == tuple(lab.shape)
    np.testing.assert_array_equal(np.asarray(out), reference_skeleton_transform(binary))
    np.testing.assert_array_equal(np.asarray(lab), binary)  # label not modified
    if kind == "metatensor":
        torch.testing.assert_close(out.affine, lab.affine)
        assert out.meta["filename_or_obj"] == "lab.nii.gz"


@pytest.mark.parametrize("kind", ["ndarray", "tensor", "metatensor"])
def test_multiclass_float_ids_carry_their_class(kind):
    lab = _as(kind, _tree().astype(np.float32))
    out = TubedSkeleton(multiclass=True, tube_radius=1)(lab)
    assert out.dtype == lab.dtype
    np.testing.assert_array_equal(np.asarray(out), tubed_skeleton(_tree(), tube_radius=1, multiclass=True))
    assert set(np.unique(np.asarray(out)).tolist()) == {0.0, 1.0, 2.0, 3.0}


def test_pixdim_spacing_reads_the_affine_and_explicit_spacing_wins():
    lab = _as("metatensor", _tree())
    out = TubedSkeleton(multiclass=True, tube_radius=2.5, spacing="pixdim")(lab)
    np.testing.assert_array_equal(np.asarray(out), tubed_skeleton(_tree(), tube_radius=2.5, spacing=PIXDIM,
                                                                  multiclass=True))
    explicit = TubedSkeleton(multiclass=True, tube_radius=2.5, spacing=(1.0, 1.0, 1.0))(lab)
    np.testing.assert_array_equal(np.asarray(explicit), tubed_skeleton(_tree(), tube_radius=2.5, spacing=1.0,
                                                                       multiclass=True))
    assert not np.array_equal(np.asarray(out), np.asarray(explicit))
    default = TubedSkeleton(multiclass=True)(lab)  # None: voxels, whatever the affine says
    np.testing.assert_array_equal(np.asarray(default), reference_skeleton_transform(_tree()))


def test_two_d_images_and_several_channels():
    lab = multiclass_tree((40, 36), seed=1, branches=5)
    two = np.stack([lab, (lab > 0).astype(lab.dtype)])
    out = TubedSkeleton(multiclass=True)(two)
    np.testing.assert_array_equal(out, tubed_skeleton(two, multiclass=True, spatial_dims=2))
    np.testing.assert_array_equal(out[:1], reference_skeleton_transform(lab[None]))


def test_options_fail_when_built():
    with pytest.raises(ValueError, match=r"tube_radius: expected an integer >= 0, got -1"):
        TubedSkeleton(tube_radius=-1)
    with pytest.raises(TypeError, match=r"tube_radius: expected an integer >= 0"):
        TubedSkeleton(tube_radius=1.5)
    with pytest.raises(ValueError, match=r"spacing: expected one of 'pixdim', got 'pixdims' \(did you mean"):
        TubedSkeleton(spacing="pixdims")
    with pytest.raises(ValueError, match=r"tube_radius: expected a finite number >= 0"):
        TubedSkeletond("label", tube_radius=-2.0, spacing="pixdim")
    with pytest.raises(TypeError, match=r"multiclass: expected a bool"):
        TubedSkeleton(multiclass="yes")
    with pytest.raises(ValueError, match=r"skeleton_postfix: expected a non-empty string"):
        TubedSkeletond("label", skeleton_postfix="")


def test_bad_images():
    with pytest.raises(TypeError, match=r"img: expected a MetaTensor .* for spacing='pixdim'"):
        TubedSkeleton(spacing="pixdim", tube_radius=1.0)(np.zeros((1, 4, 4, 4)))
    with pytest.raises(ValueError, match=r"img: expected a channel-first array .* 2 or 3 spatial axes"):
        TubedSkeleton()(np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"img: expected whole-number class ids"):
        TubedSkeleton(multiclass=True)(torch.full((1, 3, 3, 3), 1.5))
    with pytest.raises(ValueError, match=r"label: expected a binary label"):
        TubedSkeleton()(_tree())
    with pytest.raises(TypeError, match=r"img: expected a numpy.ndarray or torch.Tensor"):
        TubedSkeleton()([[[0]]])


def test_dictionary_twin_writes_key_skeleton_and_aliases():
    label = _as("metatensor", _tree())
    d = TubedSkeletond("label", multiclass=True)({"label": label, "image": 1})
    assert set(d) == {"label", "image", "label_skeleton"} and d["label"] is label
    np.testing.assert_array_equal(np.asarray(d["label_skeleton"]), reference_skeleton_transform(_tree()))
    other = TubedSkeletonD(["label", "mask"], multiclass=True, skeleton_postfix="_skel", allow_missing_keys=True)(
        {"label": _tree()})
    assert set(other) == {"label", "label_skel"}
    assert TubedSkeletonDict is TubedSkeletond is TubedSkeletonD


def test_in_a_pipeline_the_skeleton_follows_the_crop_and_pickles():
    pipeline = Compose([TubedSkeletond("label", multiclass=True),
                        RandSpatialCropd(["label", "label_skeleton"], roi_size=(16, 16, 16), random_size=False)])
    pipeline.set_random_state(3)
    out = pickle.loads(pickle.dumps(pipeline))({"label": _as("metatensor", _tree())})
    lab, skel = np.asarray(out["label"]), np.asarray(out["label_skeleton"])
    assert skel.shape == lab.shape == (1, 16, 16, 16)
    assert skel.any()
    np.testing.assert_array_equal(skel[skel > 0], lab[skel > 0])  # on the label, with its class ids


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_metatensor_stays_on_its_device():
    lab = _as("metatensor", _tree()).cuda()
    out = TubedSkeleton(multiclass=True)(lab)
    assert out.device.type == "cuda" and type(out) is type(lab)
    np.testing.assert_array_equal(out.cpu().numpy(), reference_skeleton_transform(_tree()))
