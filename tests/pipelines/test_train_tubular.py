"""The train_tubular pipeline, tested like code: built in safe mode and run on synthetic vessel-tree NIfTI pairs
(nibabel, in tmp_path) through a MONAI DataLoader. Oracles: the resampled label's tubed skeleton computed directly
(tubed_skeleton, the reference SkeletonTransform by default) before the crops; after the crops and flips the skeleton
lies on the label with its class ids; the header's spacing after Spacingd."""

from __future__ import annotations

import pickle

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset
from monai.transforms import Compose

from voxweight.demo.vessels import write_vessel_dataset
from voxweight.maps.skeleton import tubed_skeleton
from voxweight.pipelines import list_pipelines, load_pipeline
from voxweight.transforms.skeleton import TubedSkeletond

SMALL = {"pixdim": [1.0, 1.0, 1.0], "roi_size": [20, 20, 20], "num_samples": 2}
KEYS = ("image", "label", "label_skeleton")


@pytest.fixture(scope="module")
def items(tmp_path_factory) -> list[dict[str, str]]:
    """Two 36x36x24 vessel trees, header pixdim (0.8, 0.8, 1.5) mm; the second with classes 1 and 2."""
    folder = tmp_path_factory.mktemp("vessels")
    out = write_vessel_dataset(folder, 2, shape=(36, 36, 24), spacing=(0.8, 0.8, 1.5), seed=2, branches=7)
    lab = nib.load(out[1]["label"])
    data = np.asarray(lab.dataobj).copy()
    data[np.indices(data.shape)[1] >= np.median(np.argwhere(data)[:, 1])] *= 2  # class 2 on half of the tree
    nib.save(nib.Nifti1Image(data, lab.affine), out[1]["label"])
    return out


def test_listed_and_built_from_the_shipped_file():
    assert "train_tubular" in list_pipelines()
    pipe = load_pipeline("train_tubular")
    assert isinstance(pipe, Compose)
    skeleton = [t for t in pipe.transforms if isinstance(t, TubedSkeletond)]
    assert len(skeleton) == 1 and skeleton[0].transform.tube_radius == 2 and skeleton[0].transform.spacing is None
    assert [type(t) for t in pickle.loads(pickle.dumps(pipe)).transforms] == [type(t) for t in pipe.transforms]


def test_skeleton_before_the_crops_is_the_resampled_labels_tubed_skeleton(items):
    pipe = load_pipeline("train_tubular", **SMALL)
    before_crop = Compose(pipe.transforms[:6])  # load ... TubedSkeletond
    for n, item in enumerate(items):
        d = before_crop(item)
        assert float(d["label"].max()) == n + 1  # binary, then classes 1 and 2
        assert d["label"].pixdim.tolist() == pytest.approx([1.0, 1.0, 1.0])
        lab = d["label"].as_tensor()
        expected = tubed_skeleton(lab.long(), multiclass=True).to(lab.dtype)
        torch.testing.assert_close(d["label_skeleton"].as_tensor(), expected)
        torch.testing.assert_close(d["label_skeleton"].affine, d["label"].affine)
        assert float(d["label_skeleton"].sum()) > 0


def test_crops_and_flips_keep_image_label_and_skeleton_aligned(items):
    pipe = load_pipeline("train_tubular", flip_prob=1.0, **SMALL)
    torch.manual_seed(0)  # MONAI's DataLoader seeds the workers' random transforms from torch's RNG
    batch = next(iter(DataLoader(Dataset(items, transform=pipe), batch_size=2, num_workers=2)))
    for key in KEYS:
        assert batch[key].shape == (4, 1, 20, 20, 20) and batch[key].dtype == torch.float32
    lab, skel = batch["label"], batch["label_skeleton"]
    assert float(skel.sum()) > 0 and set(torch.unique(skel).tolist()) <= {0.0, 1.0, 2.0}
    torch.testing.assert_close(skel[skel > 0], lab[skel > 0])  # the skeleton lies on the label, with its ids
    assert float((skel > 0).sum()) < float((lab > 0).sum())  # thinner than the label
    image = batch["image"]
    assert float(image[lab > 0].mean()) > float(image[lab == 0].mean())  # the image moved with the label


def test_physical_tube_radius_override(items):
    pipe = load_pipeline("train_tubular", skeleton_spacing="pixdim", tube_radius=1.5, **SMALL)
    d = Compose(pipe.transforms[:6])(items[0])
    lab = d["label"].as_tensor()
    expected = tubed_skeleton(lab.long(), tube_radius=1.5, spacing=(1.0, 1.0, 1.0), multiclass=True)
    torch.testing.assert_close(d["label_skeleton"].as_tensor(), expected.to(lab.dtype))


def test_bad_tube_radius_names_the_setting():
    with pytest.raises(ValueError, match=r"tube_radius: expected an integer >= 0, got -1 \(building"):
        load_pipeline("train_tubular", tube_radius=-1)
