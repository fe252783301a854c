"""YAML pipelines are tested like code: each one is built and run on synthetic NIfTI files through a
MONAI DataLoader with 2 workers into VoxelWeightedBCE with a backward pass. Oracles: the class-balance
formula bg + (fg - bg) * label read on the cropped, flipped outputs; the U-Net bonus being zero on
foreground and positive near objects; the header's spacing after Spacingd."""

from __future__ import annotations

import pickle
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset
from monai.transforms import Compose

import voxweight
from voxweight.pipelines import list_pipelines, load_pipeline

SMALL = {"pixdim": [1.5, 1.5, 2.0], "roi_size": [16, 16, 16], "num_samples": 2}


@pytest.fixture(scope="module")
def items(tmp_path_factory) -> list[dict[str, str]]:
    """Three 32^3 image/label NIfTI pairs, header pixdim (1, 1, 2) mm, two balls 3 mm apart per label."""
    folder = tmp_path_factory.mktemp("nifti")
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(*[np.arange(32)] * 3, indexing="ij"), axis=-1) * np.array([1.0, 1.0, 2.0])
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    out = []
    for n in range(3):
        centres = [np.array([9.0, 14.0 + n, 30.0]), np.array([22.0, 14.0 + n, 30.0])]
        label = np.zeros((32, 32, 32), dtype=np.uint8)
        for c in centres:
            label |= (np.linalg.norm(grid - c, axis=-1) < 5.0).astype(np.uint8)
        image = (100.0 * label + rng.normal(0.0, 20.0, label.shape)).astype(np.float32)
        paths = {"image": folder / f"img{n}.nii.gz", "label": folder / f"lab{n}.nii.gz"}
        nib.save(nib.Nifti1Image(image, affine), paths["image"])
        nib.save(nib.Nifti1Image(label, affine), paths["label"])
        out.append({k: str(v) for k, v in paths.items()})
    return out


def _train_step(batch: dict, loss_fn: torch.nn.Module, weight: torch.Tensor | None) -> None:
    """One forward/backward of a tiny conv net; the loss must be finite and the gradients non-zero."""
    torch.manual_seed(0)
    model = torch.nn.Conv3d(1, 1, 3, padding=1)
    loss = loss_fn(model(batch["image"]), batch["label"], weight)
    loss.backward()
    assert torch.isfinite(loss)
    assert model.weight.grad is not None and model.weight.grad.abs().sum() > 0


def _first_batch(pipe: Compose, items: list[dict[str, str]], batch_size: int = 2) -> dict:
    torch.manual_seed(0)  # MONAI's DataLoader seeds the workers' random transforms from torch's RNG
    loader = DataLoader(Dataset(items, transform=pipe), batch_size=batch_size, num_workers=2)
    return next(iter(loader))


def test_shipped_pipelines_are_listed():
    assert {"train_class_balanced", "train_boundary", "inference"} <= set(list_pipelines())
    assert voxweight.load_pipeline is load_pipeline


def test_train_class_balanced_weights_follow_label_through_crops_and_flips(items):
    """Oracle: with fixed fg/bg weights, label_weight == bg + (fg - bg) * label on every output voxel."""
    pipe = load_pipeline("train_class_balanced", fg_weight=3.0, bg_weight=0.25, flip_prob=1.0, **SMALL)
    batch = _first_batch(pipe, items)
    for key in ("image", "label", "label_weight"):
        assert batch[key].shape == (4, 1, 16, 16, 16) and batch[key].dtype == torch.float32
    torch.testing.assert_close(batch["label_weight"], 0.25 + 2.75 * batch["label"])
    assert batch["label"].sum() > 0  # pos/neg crops found foreground
    _train_step(batch, voxweight.VoxelWeightedBCE(), batch["label_weight"])


def test_train_class_balanced_default_rebalances_once(items):
    """Default: weights 1 (the pos/neg crops rebalance), 0 only on the padding the crops may add."""
    pipe = load_pipeline("train_class_balanced", **SMALL)
    d = Compose(pipe.transforms[:6])(items[0])  # load ... ClassBalanceWeightd
    torch.testing.assert_close(d["label_weight"].as_tensor(), torch.ones_like(d["label"].as_tensor()).float())


def test_train_class_balanced_per_volume_balance_on_request(items):
    """Oracle: 'balanced' on the resampled volume gives mean weight 1 before cropping (sklearn's balanced)."""
    pipe = load_pipeline("train_class_balanced", fg_weight=None, bg_weight=None, **SMALL)
    before_crop = Compose(pipe.transforms[:6])  # load ... ClassBalanceWeightd
    d = before_crop(items[0])
    assert float(d["label_weight"].mean()) == pytest.approx(1.0, rel=1e-5)
    f = float(d["label"].mean())
    expected = torch.where(d["label"] > 0, 0.5 / f, 0.5 / (1 - f))
    torch.testing.assert_close(d["label_weight"].as_tensor(), expected.as_tensor().float())


def test_train_boundary_adds_unet_bonus_on_background(items):
    """Oracle: weight == fg on foreground (no U-Net bonus there), >= bg on background, > bg near objects."""
    pipe = load_pipeline("train_boundary", fg_weight=3.0, bg_weight=0.25, sigma=3.0, w0=10.0, **SMALL)
    batch = _first_batch(pipe, items)
    w, lab = batch["label_weight"], batch["label"]
    assert w.shape == lab.shape == (4, 1, 16, 16, 16)
    torch.testing.assert_close(w[lab > 0], torch.full_like(w[lab > 0], 3.0))
    assert bool((w[lab == 0] >= 0.25 - 1e-6).all()) and float(w[lab == 0].max()) > 1.0
    _train_step(batch, voxweight.VoxelWeightedBCE(), w)


def test_train_boundary_map_before_crop_is_unet_formula_in_mm(items):
    """Oracle: class_balance_weights + boundary_weights(spacing=pixdim) - 1 on the resampled label (per-volume
    balance asked for with null weights; by default the class weights are 1, tested below)."""
    pipe = load_pipeline("train_boundary", pixdim=[1.5, 1.5, 2.5], sigma=3.0, fg_weight=None, bg_weight=None)
    d = Compose(pipe.transforms[:7])(items[0])  # load ... ClassBalanceWeightd, BoundaryWeightd
    lab = d["label"].as_tensor()
    bonus = voxweight.boundary_weights(lab, sigma=3.0, spacing=(1.5, 1.5, 2.5)) - 1
    torch.testing.assert_close(d["label_weight"].as_tensor(), voxweight.class_balance_weights(lab) + bonus)
    assert float(bonus.max()) > 1.0  # the two balls are close enough for a visible bonus


def test_train_boundary_default_is_the_bonus_on_weights_one(items):
    """Oracle: 1 + boundary_weights(spacing=pixdim) - 1 on the resampled label: the crops rebalance, not the map."""
    pipe = load_pipeline("train_boundary", pixdim=[1.5, 1.5, 2.5], sigma=3.0)
    d = Compose(pipe.transforms[:7])(items[0])
    lab = d["label"].as_tensor()
    torch.testing.assert_close(d["label_weight"].as_tensor(), voxweight.boundary_weights(lab, sigma=3.0,
                                                                                         spacing=(1.5, 1.5, 2.5)))


def test_train_boundary_with_w0_zero_is_class_balance(items):
    """Oracle: w0 = 0 leaves exactly the class-balance map (override of a top-level key reaches the transform)."""
    pipe = load_pipeline("train_boundary", fg_weight=2.0, bg_weight=0.5, w0=0.0, **SMALL)
    batch = _first_batch(pipe, items)
    torch.testing.assert_close(batch["label_weight"], 0.5 + 1.5 * batch["label"])


def test_inference_pipeline_resamples_and_feeds_on_device_weights(items):
    """Oracle: the header's (1, 1, 2) mm becomes the requested pixdim; a label is optional."""
    pipe = load_pipeline("inference", pixdim=[2.0, 2.0, 2.0])
    one = pipe(items[0])
    assert one["image"].pixdim.tolist() == pytest.approx([2.0, 2.0, 2.0])
    assert one["image"].shape == one["label"].shape == (1, 16, 16, 32)
    assert set(pipe({"image": items[0]["image"]})) == {"image"}
    batch = _first_batch(pipe, items)
    loss_fn = voxweight.VoxelWeightedBCE(weight_fn=voxweight.class_balance_weights)
    _train_step(batch, loss_fn, None)


def test_loaded_pipeline_pickles():
    """Property: the whole Compose survives pickling (DataLoader workers with spawn)."""
    for name in list_pipelines():
        pipe = load_pipeline(name)
        copy = pickle.loads(pickle.dumps(pipe))
        assert [type(t) for t in copy.transforms] == [type(t) for t in pipe.transforms]


def test_user_yaml_path_with_list_pipeline_and_override(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("fg: 4.0\npipeline:\n  - _target_: voxweight.transforms.ClassBalanceWeightd\n"
                    "    keys: label\n    fg_weight: '@fg'\n    bg_weight: 1.0\n")
    pipe = load_pipeline(path, fg=5.0)
    out = pipe({"label": np.array([[0, 1]])})
    np.testing.assert_allclose(out["label_weight"], [[1.0, 5.0]])
    assert isinstance(load_pipeline(str(path)), Compose)


def test_unknown_override_lists_valid_keys_with_hint():
    with pytest.raises(ValueError, match=r"overrides: expected one of .*'roi_size'.*got 'sigmaa' "
                                         r"\(did you mean 'sigma'\?\)"):
        load_pipeline("train_boundary", sigmaa=2.0)
    with pytest.raises(ValueError, match="overrides: expected one of"):
        load_pipeline("train_class_balanced", pipeline=[])


def test_unknown_name_lists_shipped_pipelines_with_hint():
    with pytest.raises(ValueError, match=r"name_or_path: expected one of 'inference', .*got 'train_boundry' "
                                         r"\(did you mean 'train_boundary'\?\)"):
        load_pipeline("train_boundry")
    with pytest.raises(TypeError, match="name_or_path: expected a pipeline name or a path"):
        load_pipeline(3)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="name_or_path: expected an existing YAML/JSON file"):
        load_pipeline(tmp_path / "missing.yaml")
    path = tmp_path / "no_pipeline.yaml"
    path.write_text("pixdim: [1, 1, 1]\n")
    with pytest.raises(ValueError, match="top-level 'pipeline' key"):
        load_pipeline(path)
    path.write_text("pipeline:\n  _target_: voxweight.transforms.ClassBalanceWeight\n")
    with pytest.raises(TypeError, match=r"expected a monai\.transforms\.Compose or a list of transforms"):
        load_pipeline(path)


def test_shipped_yaml_uses_full_paths_for_voxweight_classes():
    """Property: every voxweight _target_ is a full dotted path, and the files live where the wheel maps them."""
    from voxweight.pipelines import _config_dir

    for name in list_pipelines():
        text = (_config_dir() / f"{name}.yaml").read_text()
        for line in text.splitlines():
            if "_target_:" in line and "Weight" in line:
                assert "voxweight.transforms." in line, line


def test_import_voxweight_does_not_import_monai():
    code = "import sys, voxweight; assert 'monai' not in sys.modules, 'monai imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
