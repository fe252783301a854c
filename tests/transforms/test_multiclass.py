"""MONAI transforms with ``multiclass=True``. Oracles: the pure functions (voxweight.multiclass_balance_weights,
boundary_weights(multiclass=True)) called directly, hand-computed 1-D maps, torch's own cross-entropy, and
properties (type, dtype, shape, meta, label untouched, pickled copy gives the same output)."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, RandCropByPosNegLabeld

import voxweight
import voxweight.transforms as vt
from tests.maps.map_checks import warns_few_objects
from tests.transforms.transform_checks import PIXDIM, check_against_oracle, check_pickle_round_trip
from tests.transforms.transform_checks import as_kind as _as
from voxweight.maps import boundary_weights, multiclass_balance_weights

K = 4


def _label() -> np.ndarray:
    """[1, 12, 10, 8] class indices: classes 1 and 2 touching, class 3 apart, background 0."""
    lab = np.zeros((1, 12, 10, 8), dtype=np.int64)
    lab[0, 2:5, 2:6, 2:5] = 1
    lab[0, 5:8, 2:6, 2:5] = 2  # touches class 1 along axis 0
    lab[0, 9:11, 6:9, 4:7] = 3
    return lab




TRANSFORMS = {
    "balance": (vt.ClassBalanceWeight(multiclass=True, num_classes=K),
                lambda lab, sp: multiclass_balance_weights(lab, num_classes=K)),
    "balance_fixed": (vt.ClassBalanceWeight(multiclass=True, class_weight=[0.1, 1.0, 2.0, 3.0], max_weight=2.5),
                      lambda lab, sp: multiclass_balance_weights(lab, class_weight=[0.1, 1.0, 2.0, 3.0],
                                                                 max_weight=2.5)),
    "sqrt_inverse": (vt.ClassBalanceWeight(multiclass=True, mode="sqrt_inverse"),
                     lambda lab, sp: multiclass_balance_weights(lab, mode="sqrt_inverse")),
    "unet": (vt.BoundaryWeight(mode="unet", w0=10.0, sigma=2.0, multiclass=True),
             lambda lab, sp: boundary_weights(lab, w0=10.0, sigma=2.0, spacing=sp, multiclass=True)),
    "distance": (vt.BoundaryWeight(mode="distance", w0=5.0, sigma=1.5, multiclass=True),
                 lambda lab, sp: boundary_weights(lab, mode="distance", w0=5.0, sigma=1.5, spacing=sp,
                                                  multiclass=True)),
}


@pytest.mark.parametrize("kind", ["ndarray", "tensor", "metatensor"])
@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_array_transform_equals_pure_function_and_keeps_type(kind, name):
    """Oracle: the pure function on the int label, with spacing = MetaTensor pixdim (anisotropic) or voxels."""
    transform, oracle = TRANSFORMS[name]
    check_against_oracle(transform, oracle, _label(), kind)


@pytest.mark.parametrize("kind", ["ndarray", "tensor", "metatensor"])
def test_hand_computed_1d_maps(kind):
    """Hand-computed: balanced a_c = 1 / (K_present f_c); bonus w0 exp(-d^2 / 2 sigma^2), d to another class."""
    lab = _as(kind, np.array([[0, 0, 0, 0, 1, 1, 2, 2]]))
    if kind == "metatensor":  # 1-D spacing 1 from a 2x2 affine
        lab = MetaTensor(lab.as_tensor(), affine=torch.eye(2, dtype=torch.float64))
    balance = vt.ClassBalanceWeight(multiclass=True, num_classes=3)(lab)
    expected = [1 / (3 * 0.5)] * 4 + [1 / (3 * 0.25)] * 4
    np.testing.assert_allclose(np.asarray(balance)[0], expected, rtol=1e-6)
    bonus = vt.BoundaryWeight(mode="distance", w0=2.0, sigma=1.0, multiclass=True)(lab)
    d = [4, 3, 2, 1, 1, 1, 1, 2]  # voxel centres to the nearest voxel of another class
    expected = [1 + 2 * math.exp(-di**2 / 2) for di in d]
    np.testing.assert_allclose(np.asarray(bonus)[0], expected, rtol=1e-5)


def test_multiclass_interface_gets_a_bonus_the_binary_map_misses():
    """Property: the 1|2 interface is a boundary with multiclass=True, not for the binary map of label > 0."""
    lab = _label()
    multi = vt.BoundaryWeight(mode="distance", sigma=1.0, multiclass=True)(lab)
    binary = vt.BoundaryWeight(mode="distance", sigma=1.0)((lab > 0).astype(np.uint8))
    interface = (0, 4, 3, 3)  # class 1 voxel next to class 2, two voxels from the background
    assert multi[interface] > binary[interface] + 1.0


@pytest.mark.parametrize("kind", ["ndarray", "tensor", "metatensor"])
def test_float_class_indices_as_from_loadimaged_equal_int(kind):
    """Oracle: the int label's map; a float32 label holding whole numbers (LoadImaged's dtype) reads the same."""
    for transform, _ in TRANSFORMS.values():
        from_float = transform(_as(kind, _label().astype(np.float32)))
        from_int = transform(_as(kind, _label()))
        np.testing.assert_array_equal(np.asarray(from_float), np.asarray(from_int))


@pytest.mark.cuda
def test_cuda_float_metatensor_stays_on_cuda():
    """Oracle: the pure functions on the CPU int label, with the MetaTensor's pixdim."""
    lab = _as("metatensor", _label().astype(np.float32)).cuda()
    for name in ("balance", "distance"):
        transform, oracle = TRANSFORMS[name]
        out = transform(lab)
        assert isinstance(out, MetaTensor) and out.is_cuda and out.dtype == torch.float32
        np.testing.assert_allclose(out.cpu().numpy(), oracle(_label(), PIXDIM), rtol=1e-6, atol=1e-6)


def test_degenerate_one_class_and_absent_class():
    """Property: a volume of one class gets all ones; an absent class (3 of K=4) changes nothing (pure fn)."""
    zeros = np.zeros((1, 4, 4, 4), dtype=np.int64)
    for transform in (vt.ClassBalanceWeight(multiclass=True, num_classes=K), vt.BoundaryWeight(multiclass=True),
                      vt.BoundaryWeight(mode="distance", multiclass=True)):
        unet = isinstance(transform, vt.BoundaryWeight) and transform.mode == "unet"
        with warns_few_objects(unet):
            np.testing.assert_array_equal(transform(zeros), np.ones((1, 4, 4, 4), np.float32))
    lab = np.minimum(_label(), 2)
    np.testing.assert_allclose(vt.ClassBalanceWeight(multiclass=True, num_classes=K)(lab),
                               multiclass_balance_weights(lab, num_classes=3), rtol=1e-6)


@pytest.mark.parametrize("kind", ["ndarray", "tensor", "metatensor"])
def test_dict_balance_then_boundary_is_balance_plus_bonus(kind):
    """Oracle: w = w_c + (boundary - 1), both pure functions (the U-Net paper's composition)."""
    d = {"label": _as(kind, _label())}
    balance = vt.ClassBalanceWeightd("label", multiclass=True, num_classes=K)
    out = vt.BoundaryWeightd("label", sigma=2.0, multiclass=True)(balance(d))
    assert set(out) == {"label", "label_weight"} and type(out["label_weight"]) is type(d["label"])
    spacing = PIXDIM if kind == "metatensor" else None
    expected = (multiclass_balance_weights(_label(), num_classes=K)
                + boundary_weights(_label(), sigma=2.0, spacing=spacing, multiclass=True) - 1)
    np.testing.assert_allclose(np.asarray(out["label_weight"]), expected, rtol=1e-6, atol=1e-6)
    assert "label_weight" not in d


def test_dict_boundary_then_balance_multiplies():
    """Oracle: the other order gives boundary * class balance, computed directly."""
    cw = [0.5, 1.0, 2.0, 4.0]
    d = vt.BoundaryWeightd("label", mode="distance", multiclass=True)({"label": _label()})
    out = vt.ClassBalanceWeightd("label", multiclass=True, class_weight=cw)(d)
    expected = (boundary_weights(_label(), mode="distance", multiclass=True)
                * multiclass_balance_weights(_label(), class_weight=cw))
    np.testing.assert_allclose(out["label_weight"], expected, rtol=1e-6)


@pytest.mark.parametrize("transform", [
    vt.ClassBalanceWeight(multiclass=True, num_classes=K, max_weight=3.0),
    vt.BoundaryWeight(mode="distance", multiclass=True),
    vt.ClassBalanceWeightd("label", multiclass=True, class_weight=(1.0, 2.0, 3.0, 4.0)),
    vt.BoundaryWeightd("label", w0=3.0, sigma=2.0, multiclass=True),
])
def test_pickle_round_trip(transform):
    """Property: a pickled copy (as sent to DataLoader workers) gives the same output."""
    check_pickle_round_trip(transform, _label())


@pytest.mark.parametrize(("make", "error", "match"), [
    (lambda: vt.ClassBalanceWeight(multiclass=True, fg_weight=2.0), ValueError,
     r"fg_weight: expected None with multiclass=True .*class_weight.* got float 2\.0"),
    (lambda: vt.ClassBalanceWeightd("label", multiclass=True, bg_weight=0.5), ValueError,
     "bg_weight: expected None with multiclass=True"),
    (lambda: vt.ClassBalanceWeight(class_weight=[1.0, 2.0]), ValueError,
     "class_weight: expected None with multiclass=False"),
    (lambda: vt.ClassBalanceWeightd("label", num_classes=3), ValueError,
     "num_classes: expected None with multiclass=False"),
    (lambda: vt.ClassBalanceWeight(multiclass="yes"), TypeError, "multiclass: expected a bool"),
    (lambda: vt.BoundaryWeightd("label", multiclass=1), TypeError, "multiclass: expected a bool"),
    (lambda: vt.ClassBalanceWeight(multiclass=True, num_classes=0), ValueError, "num_classes: expected an integer"),
    (lambda: vt.ClassBalanceWeight(multiclass=True, num_classes=3, class_weight=[1.0, 2.0]), ValueError,
     "class_weight: expected num_classes=3 values"),
    (lambda: vt.ClassBalanceWeight(multiclass=True, class_weight=[1.0, -2.0]), ValueError, "class_weight"),
    (lambda: vt.ClassBalanceWeight(multiclass=True, mode="balanse"), ValueError, "did you mean"),
    (lambda: vt.BoundaryWeight(multiclass=True, sigma=0.0), ValueError, "sigma: expected"),
])
def test_bad_options_fail_at_construction(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_labels_fail_with_the_argument_named():
    with pytest.raises(ValueError, match=r"img: expected one channel \[1, \*spatial\] .* got shape \[2, 4, 4\]"):
        vt.ClassBalanceWeight(multiclass=True)(np.zeros((2, 4, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="img: expected one channel"):
        vt.BoundaryWeight(multiclass=True)(torch.zeros(3, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"img: expected whole-number class indices .* got fractional"):
        vt.ClassBalanceWeight(multiclass=True)(np.array([[0.0, 0.5, 1.0]]))
    with pytest.raises(ValueError, match="img: expected whole-number class indices"):
        vt.BoundaryWeight(multiclass=True)(torch.tensor([[0.0, 1.5]]))
    with pytest.raises(ValueError, match=r"label: expected class indices in \[0, 3\]"):
        vt.ClassBalanceWeight(multiclass=True, num_classes=K)(np.array([[0, 1, 4]]))
    with pytest.raises(ValueError, match="label: expected class indices >= 0"):
        vt.BoundaryWeight(multiclass=True)(np.array([[0, -1, 1]]))


def test_nifti_pipeline_into_voxel_weighted_ce(tmp_path):
    """MONAI pipeline on a 3-class NIfTI (pixdim 1, 1, 2). Oracles: the pure functions on the loaded label
    with the header's spacing (before the crop), the uncropped map read at the crop's voxels, and torch's
    cross-entropy: mean of w * F.cross_entropy(reduction="none"); finite loss and non-zero grads."""
    grid = np.stack(np.meshgrid(*[np.arange(24)] * 3, indexing="ij"), axis=-1) * np.array([1.0, 1.0, 2.0])
    label = np.zeros((24, 24, 24), dtype=np.uint8)
    label[np.linalg.norm(grid - [8.0, 12.0, 24.0], axis=-1) < 5.0] = 1
    label[np.linalg.norm(grid - [16.0, 12.0, 24.0], axis=-1) < 4.0] = 2  # touches class 1
    image = (50.0 * label + np.random.default_rng(0).normal(0.0, 10.0, label.shape)).astype(np.float32)
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    paths = {"image": tmp_path / "img.nii.gz", "label": tmp_path / "lab.nii.gz"}
    nib.save(nib.Nifti1Image(image, affine), paths["image"])
    nib.save(nib.Nifti1Image(label, affine), paths["label"])
    keys = ["image", "label"]
    weighted = Compose([LoadImaged(keys), EnsureChannelFirstd(keys),
                        vt.ClassBalanceWeightd("label", multiclass=True, num_classes=3),
                        vt.BoundaryWeightd("label", sigma=2.0, multiclass=True)])({k: str(v) for k, v in paths.items()})
    loaded = weighted["label"]
    assert loaded.dtype == torch.float32 and loaded.pixdim.tolist() == pytest.approx([1.0, 1.0, 2.0])
    expected = (multiclass_balance_weights(label[None], num_classes=3)
                + boundary_weights(label[None], sigma=2.0, spacing=(1.0, 1.0, 2.0), multiclass=True) - 1)
    np.testing.assert_allclose(weighted["label_weight"].numpy(), expected, rtol=1e-5, atol=1e-5)
    weighted["coords"] = MetaTensor(torch.stack(torch.meshgrid(*[torch.arange(24)] * 3, indexing="ij")),
                                    affine=loaded.affine)
    crop = RandCropByPosNegLabeld(["image", "label", "label_weight", "coords"], "label", spatial_size=(12, 12, 8),
                                  pos=1, neg=1, num_samples=2)
    crop.set_random_state(0)
    samples = crop(weighted)
    for s in samples:
        i, j, k = s["coords"].as_tensor().long()
        torch.testing.assert_close(s["label_weight"].as_tensor()[0], torch.from_numpy(expected[0][i, j, k]))
    x, y, w = (torch.stack([s[key].as_tensor() for s in samples]) for key in ("image", "label", "label_weight"))
    torch.manual_seed(0)
    model = torch.nn.Conv3d(1, 3, 3, padding=1)
    logits = model(x)
    loss = voxweight.VoxelWeightedCE()(logits, y.long(), w)
    loss.backward()
    assert torch.isfinite(loss)
    assert model.weight.grad is not None and model.weight.grad.abs().sum() > 0
    reference = (w[:, 0] * F.cross_entropy(logits.detach(), y[:, 0].long(), reduction="none")).mean()
    torch.testing.assert_close(loss.detach(), reference)
