"""crop_prevalence against the ground truth it predicts: LabelStats.from_pipeline over the shipped training
pipeline (MONAI's own SpatialPadd + RandCropByPosNegLabeld on NIfTI files), within sampling error."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from voxweight import LabelStats, crop_prevalence, load_pipeline, scan_labels


def _volumes(tmp_path):
    rng = np.random.default_rng(11)
    items = []
    for i, shape in enumerate([(20, 18, 12), (16, 16, 10), (9, 20, 12)]):  # the last is thinner than the crop
        label = np.zeros(shape, dtype=np.uint8)
        for _ in range(2):  # two small objects (the pipeline's map is binary)
            x, y, z = (rng.integers(0, s - 3) for s in shape)
            label[x:x + 3, y:y + 3, z:z + 2] = 1
        image = rng.normal(size=shape).astype(np.float32)
        paths = {k: str(tmp_path / f"{k}{i}.nii.gz") for k in ("image", "label")}
        nib.save(nib.Nifti1Image(image, np.eye(4)), paths["image"])
        nib.save(nib.Nifti1Image(label, np.eye(4)), paths["label"])
        items.append(paths)
    return items


@pytest.mark.parametrize(("pos", "neg"), [(1, 1), (3, 1)])
def test_crop_prevalence_is_what_the_shipped_pipeline_yields(tmp_path, pos, neg):
    items = _volumes(tmp_path)
    roi = [10, 12, 8]
    pipe = load_pipeline("train_class_balanced", pixdim=[1.0, 1.0, 1.0], roi_size=roi, num_samples=4, pos=pos,
                         neg=neg, flip_prob=0.0, intensity_prob=0.0)
    seen = LabelStats.from_pipeline(pipe, items, passes=150, progress=False, num_classes=2, seed=0)
    expected = crop_prevalence([i["label"] for i in items], roi_size=roi, pos=pos, neg=neg, num_classes=2)
    crop_voxels = float(np.prod(roi))
    assert seen.voxels == seen.images * crop_voxels and expected.voxels == len(items) * crop_voxels
    fraction = seen.positives / seen.voxels
    predicted = expected.positives / expected.voxels
    # a crop's class fraction lies in [0, a], a = the most voxels of the class any volume holds / crop voxels:
    # its variance is at most p (a - p) (Bhatia-Davis); 5 standard errors of the mean over the samples
    most = np.max([np.bincount(np.asarray(nib.load(i["label"]).dataobj).ravel(), minlength=2) for i in items], 0)
    top = np.minimum(1.0, most / crop_voxels)
    bound = 5 * np.sqrt(predicted * np.maximum(top - predicted, 0) / seen.images) + 1e-9
    assert (np.abs(fraction - predicted) <= bound).all(), (fraction, predicted, bound)
    data = scan_labels([i["label"] for i in items], num_classes=2, progress=False)
    assert (np.abs(data.positives / data.voxels - fraction)[1:] > bound[1:]).all()  # the volumes' would fail
    present = seen.images_with / seen.images
    np.testing.assert_array_less(np.abs(present - expected.images_with / expected.images),
                                 5 * np.sqrt(0.25 / seen.images))
