"""MONAI transforms: the oracle is always the pure function (voxweight.class_balance_weights /
boundary_weights) called directly, plus properties (type, dtype, shape, meta, label untouched)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import RandCropByPosNegLabeld, Spacingd

import voxweight.transforms as vt
from tests.maps.map_checks import warns_few_objects
from tests.transforms.transform_checks import PIXDIM, check_against_oracle, check_pickle_round_trip
from tests.transforms.transform_checks import as_kind as _as
from voxweight.maps import boundary_weights, class_balance_weights


def _label() -> np.ndarray:
    """[1, 12, 10, 8] binary label with two separate boxes (two objects for the U-Net map)."""
    lab = np.zeros((1, 12, 10, 8), dtype=np.uint8)
    lab[0, 2:5, 2:5, 2:4] = 1
    lab[0, 7:10, 5:8, 4:7] = 1
    return lab




TRANSFORMS = {
    "class_balance": (vt.ClassBalanceWeight(mode="balanced"), lambda lab, sp: class_balance_weights(lab)),
    "unet": (vt.BoundaryWeight(mode="unet", w0=10.0, sigma=2.0),
             lambda lab, sp: boundary_weights(lab, mode="unet", w0=10.0, sigma=2.0, spacing=sp)),
    "distance": (vt.BoundaryWeight(mode="distance", w0=5.0, sigma=1.5),
                 lambda lab, sp: boundary_weights(lab, mode="distance", w0=5.0, sigma=1.5, spacing=sp)),
}


@pytest.mark.parametrize("kind", ["ndarray", "tensor", "metatensor"])
@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_array_transform_equals_pure_function_and_keeps_type(kind, name):
    """Oracle: the pure function, with spacing = MetaTensor pixdim (anisotropic) or voxel units."""
    transform, oracle = TRANSFORMS[name]
    check_against_oracle(transform, oracle, _label(), kind)


@pytest.mark.parametrize("mode", ["unet", "distance"])
def test_boundary_spacing_from_pixdim_matters_and_explicit_spacing_wins(mode):
    """Property: anisotropic pixdim changes the map; an explicit spacing overrides pixdim (oracle: pure fn)."""
    lab = _as("metatensor", _label())
    from_pixdim = vt.BoundaryWeight(mode=mode, sigma=2.0)(lab)
    isotropic = boundary_weights(_label(), mode=mode, sigma=2.0)
    assert not np.allclose(np.asarray(from_pixdim), isotropic)
    explicit = vt.BoundaryWeight(mode=mode, sigma=2.0, spacing=(1.0, 1.0, 1.0))(lab)
    np.testing.assert_allclose(np.asarray(explicit), isotropic, rtol=1e-6, atol=1e-6)


def test_tensor_keeps_device(devices):
    """Property: a tensor on any device comes back on that device, float32."""
    for device in devices:
        lab = torch.as_tensor(_label(), device=device)
        for transform in (vt.ClassBalanceWeight(), vt.BoundaryWeight(mode="distance")):
            out = transform(lab)
            assert out.device == device and out.dtype == torch.float32


@pytest.mark.cuda
def test_metatensor_on_cuda_stays_on_cuda():
    lab = _as("metatensor", _label()).cuda()
    out = vt.ClassBalanceWeight()(lab)
    assert isinstance(out, MetaTensor) and out.is_cuda
    np.testing.assert_allclose(out.cpu().numpy(), class_balance_weights(_label()), rtol=1e-6)


@pytest.mark.parametrize("kind", ["ndarray", "tensor", "metatensor"])
def test_dict_class_balance_then_unet_is_unet_paper_formula(kind):
    """Oracle: w = w_c + (boundary - 1), both computed directly (Ronneberger et al. 2015)."""
    d = {"label": _as(kind, _label())}
    out = vt.BoundaryWeightd("label", mode="unet", sigma=2.0)(vt.ClassBalanceWeightd("label")(d))
    assert set(out) == {"label", "label_weight"} and type(out["label_weight"]) is type(d["label"])
    spacing = PIXDIM if kind == "metatensor" else None
    expected = class_balance_weights(_label()) + boundary_weights(_label(), sigma=2.0, spacing=spacing) - 1
    np.testing.assert_allclose(np.asarray(out["label_weight"]), expected, rtol=1e-6, atol=1e-6)
    assert "label_weight" not in d  # the input dict is not changed


def test_dict_boundary_then_class_balance_multiplies():
    """Oracle: the other order gives boundary * class balance, computed directly."""
    d = {"label": _label()}
    out = vt.ClassBalanceWeightd("label", fg_weight=3.0, bg_weight=0.5)(vt.BoundaryWeightd("label", sigma=2.0)(d))
    expected = boundary_weights(_label(), sigma=2.0) * class_balance_weights(_label(), fg_weight=3.0, bg_weight=0.5)
    np.testing.assert_allclose(out["label_weight"], expected, rtol=1e-6)


def test_dict_several_keys_and_postfix():
    """Each key gets its own map under key + weight_postfix (oracle: the pure function per key)."""
    lab2 = np.flip(_label(), axis=1).copy()
    out = vt.ClassBalanceWeightd(["a", "b"], weight_postfix="_w")({"a": _label(), "b": lab2})
    np.testing.assert_allclose(out["a_w"], class_balance_weights(_label()))
    np.testing.assert_allclose(out["b_w"], class_balance_weights(lab2))


def test_dict_instances_passed_to_pure_function():
    """Oracle: boundary_weights(label, instances=...) for touching objects split by an instance map."""
    lab = np.zeros((1, 10, 10, 6), dtype=np.uint8)
    lab[0, 2:8, 2:8, 1:5] = 1
    inst = lab.astype(np.int32)
    inst[0, 5:8] *= 2  # two touching instances
    out = vt.BoundaryWeightd("label", sigma=2.0, instance_key="inst")({"label": lab, "inst": inst})
    expected = boundary_weights(lab, sigma=2.0, instances=inst)
    np.testing.assert_allclose(out["label_weight"], expected, rtol=1e-6, atol=1e-6)
    with warns_few_objects():  # without them: one object
        assert not np.allclose(expected, boundary_weights(lab, sigma=2.0))  # the instances matter here


def test_allow_missing_keys():
    d = {"image": np.zeros((1, 4, 4, 4))}
    assert set(vt.ClassBalanceWeightd("label", allow_missing_keys=True)(d)) == {"image"}
    assert set(vt.BoundaryWeightd("label", allow_missing_keys=True)(d)) == {"image"}
    with pytest.raises(KeyError):
        vt.ClassBalanceWeightd("label")(d)
    with pytest.raises(KeyError, match="instance_key"):
        vt.BoundaryWeightd("label", instance_key="inst")({"label": _label()})


@pytest.mark.parametrize("transform", [
    vt.ClassBalanceWeight(fg_weight=2.0, bg_weight=0.5), vt.BoundaryWeight(mode="distance", spacing=PIXDIM),
    vt.ClassBalanceWeightd("label", max_weight=4.0), vt.BoundaryWeightd("label", w0=3.0, sigma=2.0),
])
def test_pickle_round_trip(transform):
    """Property: a pickled copy (as sent to DataLoader workers) gives the same output."""
    check_pickle_round_trip(transform, _label())


def test_after_spacingd_uses_resampled_spacing():
    """Oracle: boundary_weights on the resampled label with the new pixdim; the map has the label's affine."""
    lab = MetaTensor(torch.as_tensor(_label()), affine=torch.eye(4, dtype=torch.float64))
    d = Spacingd("label", pixdim=(1.5, 1.0, 2.0), mode="nearest")({"label": lab})
    out = vt.BoundaryWeightd("label", mode="distance", sigma=2.0)(d)
    resampled = d["label"]
    assert resampled.pixdim.tolist() == pytest.approx([1.5, 1.0, 2.0])
    expected = boundary_weights(resampled.as_tensor(), mode="distance", sigma=2.0, spacing=(1.5, 1.0, 2.0))
    torch.testing.assert_close(out["label_weight"].as_tensor(), expected)
    torch.testing.assert_close(out["label_weight"].affine, resampled.affine)


def test_weight_cropped_with_label_by_randcropbyposneglabeld():
    """Oracle: the uncropped map read at the crop's voxel coordinates (cropped alongside as a 'coords' key)."""
    lab = _as("metatensor", _label())
    d = vt.BoundaryWeightd("label", sigma=2.0)(vt.ClassBalanceWeightd("label")({"label": lab}))
    full = d["label_weight"].as_tensor()[0]
    d["coords"] = MetaTensor(torch.stack(torch.meshgrid(*[torch.arange(s) for s in full.shape], indexing="ij")),
                             affine=lab.affine)
    crop = RandCropByPosNegLabeld(["label", "label_weight", "coords"], "label", spatial_size=(5, 4, 3),
                                  pos=1, neg=1, num_samples=6)
    crop.set_random_state(0)
    samples = crop(d)
    assert len(samples) == 6
    for s in samples:
        i, j, k = s["coords"].as_tensor().long()
        assert s["label_weight"].shape == s["label"].shape == (1, 5, 4, 3)
        torch.testing.assert_close(s["label_weight"].as_tensor()[0], full[i, j, k])
        torch.testing.assert_close(s["label"].as_tensor()[0], lab.as_tensor()[0][i, j, k])


def test_aliases_and_all():
    assert vt.ClassBalanceWeightD is vt.ClassBalanceWeightDict is vt.ClassBalanceWeightd
    assert vt.BoundaryWeightD is vt.BoundaryWeightDict is vt.BoundaryWeightd
    assert vt.__all__ == sorted(vt.__all__)
    assert all(hasattr(vt, name) for name in vt.__all__)


def test_bad_input_errors_name_the_argument():
    with pytest.raises(TypeError, match=r"img: expected a numpy\.ndarray or torch\.Tensor"):
        vt.ClassBalanceWeight()([[0, 1]])
    with pytest.raises(ValueError, match=r"img: expected a channel-first array .* got shape \[4\]"):
        vt.BoundaryWeight()(np.zeros(4))
    with pytest.raises(ValueError, match="weight_postfix"):
        vt.ClassBalanceWeightd("label", weight_postfix="")
    with pytest.raises(ValueError, match="label_weight: expected an existing weight map of shape"):
        vt.ClassBalanceWeightd("label")({"label": _label(), "label_weight": np.ones((1, 3))})


def test_bad_options_fail_when_the_transform_is_built():
    """Options are checked by the pure functions at construction, not later in a DataLoader worker."""
    with pytest.raises(ValueError, match="did you mean 'balanced'"):
        vt.ClassBalanceWeightd("label", mode="balancd")
    with pytest.raises(ValueError, match="did you mean 'unet'"):
        vt.BoundaryWeightd("label", mode="unett")
    with pytest.raises(ValueError, match="sigma"):
        vt.BoundaryWeight(sigma=0.0)
    with pytest.raises(ValueError, match="spacing"):
        vt.BoundaryWeight(spacing=(1.0, -1.0, 1.0))
    with pytest.raises(ValueError, match="spacing"):
        vt.BoundaryWeight(spacing=(1.0, 1.0))(_label())  # 2 values for 3 spatial axes
