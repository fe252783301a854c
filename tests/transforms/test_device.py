"""The MONAI transforms keep a label on its device: BoundaryWeight(d) with backend="torch" (the path "auto" takes
on a GPU) equals the host path (oracle: boundary_weights with "edt"); ClassBalanceWeight(d) never converts a
tensor to numpy (every host conversion patched to raise); CUDA labels stay on CUDA (skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

import voxweight.transforms as vt
from tests.maps.map_checks import refuse_host_copies
from tests.transforms.transform_checks import PIXDIM, as_kind
from voxweight.maps import boundary_weights, class_balance_weights, multiclass_balance_weights

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _label() -> np.ndarray:
    """[2, 12, 10, 8]: two channels, each with two separate boxes (two objects for the U-Net map)."""
    lab = np.zeros((2, 12, 10, 8), dtype=np.uint8)
    lab[:, 2:5, 2:5, 2:4] = 1
    lab[0, 7:10, 5:8, 4:7] = 1
    lab[1, 8:11, 1:4, 5:8] = 1
    return lab


def _classes() -> np.ndarray:
    lab = _label()[:1].astype(np.int64)
    lab[0, 7:10, 5:8, 4:7] = 2
    return lab


@pytest.mark.parametrize("multiclass", [False, True])
@pytest.mark.parametrize("mode", ["unet", "distance"])
@pytest.mark.parametrize("kind", ["tensor", "metatensor"])
def test_boundary_weight_torch_backend_equals_host_path_without_host_copy(kind, mode, multiclass, monkeypatch):
    """Oracle: boundary_weights on the host (edt) with the MetaTensor's pixdim as spacing; meta kept."""
    label = _classes() if multiclass else _label()
    spacing = PIXDIM if kind == "metatensor" else None
    expected = boundary_weights(label, mode=mode, w0=8.0, sigma=2.0, spacing=spacing, spatial_dims=3,
                                multiclass=multiclass, backend="edt")
    lab = as_kind(kind, label.astype(np.float32) if multiclass else label)  # LoadImaged gives float classes
    transform = vt.BoundaryWeight(mode=mode, w0=8.0, sigma=2.0, multiclass=multiclass, backend="torch")
    refuse_host_copies(monkeypatch)
    out = transform(lab)
    monkeypatch.undo()
    assert type(out) is type(lab) and out.dtype == torch.float32
    np.testing.assert_allclose(out.as_subclass(torch.Tensor).numpy(), expected, rtol=1e-5, atol=8e-6)
    if kind == "metatensor":
        torch.testing.assert_close(out.affine, lab.affine)
        assert out.meta["filename_or_obj"] == "lab.nii.gz"


def test_boundary_weightd_backend_with_instances_and_composition(monkeypatch):
    """Oracle: the host path's map plus the bonus added onto an existing map; instances from another key."""
    label = _label()[:1]
    inst = label.astype(np.int64)
    inst[0, 7:10, 5:8, 4:7] *= 2
    inst[0, 2:5, 2:5, 3] *= 3  # one box split into two touching instances
    expected = boundary_weights(label, w0=6.0, sigma=1.5, spacing=PIXDIM, instances=inst, backend="edt")
    data = {"label": as_kind("metatensor", label), "inst": torch.from_numpy(inst),
            "label_weight": torch.full(label.shape, 2.0)}
    transform = vt.BoundaryWeightd("label", w0=6.0, sigma=1.5, instance_key="inst", backend="torch")
    refuse_host_copies(monkeypatch)
    out = transform(data)["label_weight"]
    monkeypatch.undo()
    np.testing.assert_allclose(np.asarray(out), expected + 1.0, rtol=1e-5, atol=6e-6)
    assert (expected > 1.5).any()


def test_backend_option_is_checked_when_the_transform_is_built():
    with pytest.raises(ValueError, match="backend: expected one of 'auto', 'edt', 'scipy', 'torch', got 'gpu'"):
        vt.BoundaryWeight(backend="gpu")
    with pytest.raises(ValueError, match="backend: expected one of"):
        vt.BoundaryWeightd("label", backend="Torch")
    assert vt.BoundaryWeight.backend == vt.BoundaryWeightd.backend  # MONAI's class attribute is untouched


@pytest.mark.parametrize("kind", ["tensor", "metatensor"])
def test_class_balance_weight_stays_in_torch(kind, monkeypatch):
    """Oracle: the pure functions on the same label; no host conversion happens for tensors."""
    label, classes = _label().astype(np.float32), _classes()
    want = class_balance_weights(label)
    want_multi = multiclass_balance_weights(classes, num_classes=3)
    lab, lab_multi = as_kind(kind, label), as_kind(kind, classes.astype(np.float32))
    binary, multi, twin = (vt.ClassBalanceWeight(), vt.ClassBalanceWeight(multiclass=True, num_classes=3),
                           vt.ClassBalanceWeightd("label"))  # built on a tiny ndarray: before the patch
    refuse_host_copies(monkeypatch)
    out, out_multi, outd = binary(lab), multi(lab_multi), twin({"label": lab})["label_weight"]
    monkeypatch.undo()
    for got, expected in ((out, want), (out_multi, want_multi), (outd, want)):
        assert type(got) is type(lab) and got.dtype == torch.float32
        np.testing.assert_allclose(got.as_subclass(torch.Tensor).numpy(), expected, rtol=1e-6)


@CUDA
@pytest.mark.parametrize("mode", ["unet", "distance"])
def test_cuda_label_stays_on_cuda_in_every_transform(mode):
    """"auto" runs the torch path on the GPU; the maps equal the host path's and stay on CUDA (MetaTensor too)."""
    affine = torch.diag(torch.tensor([*PIXDIM, 1.0], dtype=torch.float64))
    lab = MetaTensor(torch.from_numpy(_label()).cuda(), affine=affine)
    expected = boundary_weights(_label(), mode=mode, sigma=2.0, spacing=PIXDIM, backend="edt")
    out = vt.BoundaryWeight(mode=mode, sigma=2.0)(lab)
    assert isinstance(out, MetaTensor) and out.device.type == "cuda"
    np.testing.assert_allclose(out.as_tensor().cpu().numpy(), expected, rtol=1e-5, atol=1e-5)
    data = vt.ClassBalanceWeightd("label")({"label": lab})
    data = vt.BoundaryWeightd("label", mode=mode, sigma=2.0)(data)
    assert data["label_weight"].device.type == "cuda"
    multi = MetaTensor(torch.from_numpy(_classes()).float().cuda(), affine=affine)
    assert vt.BoundaryWeight(mode=mode, sigma=2.0, multiclass=True)(multi).device.type == "cuda"
    assert vt.ClassBalanceWeight(multiclass=True, num_classes=3)(multi).device.type == "cuda"
