"""crop_prevalence against MONAI's own RandCropByPosNegLabeld (exact enumeration and Monte Carlo) and nnU-Net's rule.

Oracles: every centre voxel enumerated through MONAI's ``correct_crop_centers`` and ``SpatialCrop`` (exact
expectation), a Monte Carlo of ``RandCropByPosNegLabeld`` itself (5 sigma), and nnU-Net's ``get_bbox`` rule
re-derived here (enumerated, and sampled).
"""

from __future__ import annotations

import math
import warnings

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import RandCropByPosNegLabeld, SpatialCrop, SpatialPad
from monai.transforms.utils import correct_crop_centers

from voxweight.stats import LabelStats
from voxweight.stats.prevalence import crop_prevalence, format_prevalence


def blobs(shape, k, seed):
    rng = np.random.default_rng(seed)
    label = np.zeros(shape, dtype=np.uint8)
    for c in range(1, k):
        lo = [int(rng.integers(0, n - 1)) for n in shape]
        label[tuple(slice(a, a + int(rng.integers(1, 4))) for a in lo)] = c
    return label


def monai_enumerated(label, roi, pos, neg, k):
    """Exact MONAI expectation: pad as SpatialPadd, every fg/bg centre through correct_crop_centers."""
    padded = SpatialPad(roi)(torch.as_tensor(label)[None]).numpy()[0]
    fg = np.argwhere(padded != 0)
    bg = np.argwhere(padded == 0)
    p = 0.0 if len(fg) == 0 else 1.0 if len(bg) == 0 else pos / (pos + neg)
    counts, presence = np.zeros(k), np.zeros(k)
    for centres, weight in ((fg, p), (bg, 1 - p)):
        for c in centres:
            centre = correct_crop_centers(c.tolist(), roi, padded.shape)
            crop = SpatialCrop(roi_center=centre, roi_size=roi)(torch.as_tensor(padded)[None]).numpy()[0]
            assert crop.shape == tuple(roi)
            n = np.bincount(crop.ravel(), minlength=k)
            counts += weight / len(centres) * n
            presence += weight / len(centres) * (n > 0)
    return counts, presence


CASES = [  # shape, roi, classes, pos, neg
    ((9, 8, 7), (4, 5, 3), 3, 2.0, 1.0),
    ((10, 6, 5), (6, 6, 2), 2, 1.0, 1.0),  # roi as large as an axis
    ((5, 4, 6), (7, 6, 4), 3, 1.0, 3.0),  # smaller than the crop: padded
    ((12, 11), (4, 6), 4, 1.0, 0.0),  # 2-D, foreground only
]


@pytest.mark.parametrize(("shape", "roi", "k", "pos", "neg"), CASES)
def test_monai_mode_equals_enumeration_through_monai(shape, roi, k, pos, neg):
    label = blobs(shape, k, seed=sum(shape))
    stats = crop_prevalence([label], roi_size=roi, pos=pos, neg=neg, num_classes=k)
    counts, presence = monai_enumerated(label, roi, pos, neg, k)
    np.testing.assert_allclose(stats.positives, counts, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(stats.images_with, presence, rtol=1e-10, atol=1e-10)
    assert stats.voxels == math.prod(roi) and stats.images == 1


@pytest.mark.parametrize("kind", ["empty", "full", "one voxel"])
@pytest.mark.parametrize("few", [16, 0])
def test_monai_degenerate_volumes(kind, few, monkeypatch):
    """No foreground (MONAI samples background only), all foreground, a single voxel; both class paths."""
    from voxweight.stats import crop_counts

    monkeypatch.setattr(crop_counts, "FEW_CLASSES", few)
    label = np.zeros((7, 6, 5), dtype=np.int16)
    if kind == "full":
        label[:] = 2
    elif kind == "one voxel":
        label[6, 0, 4] = 1
    stats = crop_prevalence(label, roi_size=(3, 4, 2), num_classes=3)
    counts, presence = monai_enumerated(label, (3, 4, 2), 1.0, 1.0, 3)
    np.testing.assert_allclose(stats.positives, counts, atol=1e-12)
    np.testing.assert_allclose(stats.images_with, presence, atol=1e-12)
    if kind == "empty":
        assert stats.positives.tolist() == [24.0, 0.0, 0.0]
    if kind == "full":
        assert stats.positives.tolist() == [0.0, 0.0, 24.0]


def test_monai_mode_matches_randcropbyposneglabeld_monte_carlo():
    """Thousands of MONAI crops: mean class counts and presence within 5 standard errors."""
    label = blobs((11, 10, 9), 3, seed=3)
    roi, n = (5, 4, 6), 6000
    crop = RandCropByPosNegLabeld(keys="label", label_key="label", spatial_size=roi, pos=1, neg=2, num_samples=n)
    crop.set_random_state(0)
    samples = crop({"label": torch.as_tensor(label)[None]})
    counts = np.stack([np.bincount(s["label"].numpy().ravel(), minlength=3) for s in samples])
    stats = crop_prevalence([label], roi_size=roi, pos=1, neg=2)
    for values, expected in ((counts, stats.positives), (counts > 0, stats.images_with)):
        error = values.std(axis=0) / math.sqrt(n) + 1e-12
        assert np.all(np.abs(values.mean(axis=0) - expected) <= 5 * error)
    assert stats.positives[1] > 0 and stats.positives[2] > 0


def nnunet_bbox_starts(shape, roi, voxel):
    """Re-derived get_bbox (need_to_pad only where the volume is smaller): random range, or forced start."""
    lbs, ubs = [], []
    for n, s in zip(shape, roi, strict=True):
        pad = max(0, s - n)
        lbs.append(-pad // 2)
        ubs.append(n + pad // 2 + pad % 2 - s)
    if voxel is None:
        return lbs, ubs
    return [max(lb, v - s // 2) for lb, v, s in zip(lbs, voxel, roi, strict=True)]


def crop_counts(label, start, roi, k):
    """Voxels per class in [start, start + roi), outside the volume counted as background."""
    inside = tuple(slice(max(a, 0), min(a + s, n)) for a, s, n in zip(start, roi, label.shape, strict=True))
    n = np.bincount(label[inside].ravel(), minlength=k)
    n[0] += math.prod(roi) - label[inside].size
    return n


def nnunet_enumerated(label, roi, forced, k):
    lbs, ubs = nnunet_bbox_starts(label.shape, roi, None)
    grid = [range(a, b + 1) for a, b in zip(lbs, ubs, strict=True)]
    starts = np.array(np.meshgrid(*grid, indexing="ij")).reshape(len(roi), -1).T
    random = np.mean([crop_counts(label, t, roi, k) for t in starts], axis=0)
    classes = [c for c in range(1, k) if (label == c).any()]
    if not classes:
        return random
    pushed = np.mean([np.mean([crop_counts(label, nnunet_bbox_starts(label.shape, roi, v), roi, k)
                               for v in np.argwhere(label == c)], axis=0) for c in classes], axis=0)
    return forced * pushed + (1 - forced) * random


@pytest.mark.parametrize(("shape", "roi"), [((9, 8, 7), (4, 5, 3)), ((5, 9, 6), (7, 4, 6)), ((10, 7), (3, 8))])
@pytest.mark.parametrize("forced", [0.0, 0.33, 1.0])
def test_nnunet_mode_equals_its_rule_enumerated(shape, roi, forced):
    label = blobs(shape, 4, seed=len(shape) + roi[0])
    stats = crop_prevalence([label, np.zeros(shape, np.uint8)], roi_size=roi, oversample_foreground=forced,
                            num_classes=4)
    expected = nnunet_enumerated(label, roi, forced, 4) + nnunet_enumerated(np.zeros(shape, np.uint8), roi, forced, 4)
    np.testing.assert_allclose(stats.positives, expected, rtol=1e-10, atol=1e-10)
    assert stats.voxels == 2 * math.prod(roi) and stats.images == 2


def test_nnunet_mode_matches_a_monte_carlo_of_get_bbox(rng):
    label = blobs((8, 9, 7), 3, seed=11)
    roi, n, forced = (4, 6, 5), 4000, 0.4
    classes = [c for c in (1, 2) if (label == c).any()]
    samples = []
    for _ in range(n):
        if rng.uniform() < forced:
            voxels = np.argwhere(label == classes[rng.integers(len(classes))])
            start = nnunet_bbox_starts(label.shape, roi, voxels[rng.integers(len(voxels))])
        else:
            lbs, ubs = nnunet_bbox_starts(label.shape, roi, None)
            start = [rng.integers(a, b + 1) for a, b in zip(lbs, ubs, strict=True)]
        samples.append(crop_counts(label, start, roi, 3))
    samples = np.array(samples)
    stats = crop_prevalence([label], roi_size=roi, oversample_foreground=forced)
    assert np.all(np.abs(samples.mean(axis=0) - stats.positives) <= 5 * samples.std(axis=0) / math.sqrt(n))


def test_files_equal_arrays_and_volumes_weigh_equally(tmp_path):
    arrays = [blobs((9, 8, 7), 3, 1), blobs((12, 10, 6), 3, 2), blobs((6, 5, 4), 3, 3)]
    for i, (a, dtype) in enumerate(zip(arrays, (np.uint8, np.int16, np.float32), strict=True)):
        nib.save(nib.Nifti1Image(a.astype(dtype), np.eye(4)), str(tmp_path / f"{i}.nii.gz"))
    from_files = crop_prevalence(tmp_path, roi_size=(5, 5, 5), pos=3, neg=1)
    from_arrays = crop_prevalence([torch.as_tensor(a) for a in arrays], roi_size=(5, 5, 5), pos=3, neg=1)
    np.testing.assert_allclose(from_files.positives, from_arrays.positives, rtol=1e-12)
    singles = [crop_prevalence([a], roi_size=5, pos=3, neg=1) for a in arrays]
    np.testing.assert_allclose(from_arrays.positives, sum(s.positives for s in singles), rtol=1e-12)
    assert from_arrays.voxels == 3 * 125 and from_arrays.images == 3
    total = from_arrays.positives.sum()
    np.testing.assert_allclose(from_arrays.pos_weight().numpy(), (total - from_arrays.positives)
                               / from_arrays.positives, rtol=1e-5)


def test_spacing_crops_the_same_millimetres(tmp_path):
    """A file at 2 mm cropped 8 voxels at 1 mm = its own 4-voxel crops, counts scaled by 2^3."""
    label = blobs((10, 9, 8), 3, 5)
    nib.save(nib.Nifti1Image(label, np.diag([2.0, 2.0, 2.0, 1.0])), str(tmp_path / "a.nii.gz"))
    stats = crop_prevalence(tmp_path / "a.nii.gz", roi_size=8, spacing=1.0)
    native = crop_prevalence([label], roi_size=4)
    np.testing.assert_allclose(stats.positives, native.positives * 8, rtol=1e-12)
    assert stats.voxels == 512
    same = crop_prevalence([label], roi_size=4, spacing=(1.0, 1.0, 1.0))  # arrays: already at spacing
    np.testing.assert_allclose(same.positives, native.positives, rtol=1e-12)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"roi_size": (4, 4)}, ValueError, "roi_size: expected one crop size per spatial axis"),
    ({"roi_size": (4, 0, 4)}, ValueError, r"roi_size\[1\]: expected a crop size >= 1"),
    ({"roi_size": (4,)}, ValueError, "roi_size: expected 2 or 3"),
    ({"roi_size": "4"}, TypeError, "roi_size: expected an int"),
    ({"roi_size": 4, "pos": -1}, ValueError, "pos: expected a finite number >= 0"),
    ({"roi_size": 4, "pos": 0, "neg": 0}, ValueError, "pos, neg: expected at least one"),
    ({"roi_size": 4, "oversample_foreground": 1.5}, ValueError, r"oversample_foreground: expected a fraction"),
    ({"roi_size": 4, "oversample_foreground": -0.1}, ValueError, "oversample_foreground: expected"),
    ({"roi_size": 4, "oversample_foreground": 0.3, "pos": 2}, ValueError, "oversample_foreground: expected pos"),
    ({"roi_size": 4, "num_classes": 2}, ValueError, r"labels\[0\]: expected class indices >= 0 and < num_classes"),
    ({"roi_size": 4, "spacing": (1, 2)}, ValueError, "spacing: expected 3 values"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        crop_prevalence([blobs((6, 6, 6), 3, 0)], **kwargs)


def test_bad_labels_are_named():
    with pytest.raises(ValueError, match="whole-number"):
        crop_prevalence([np.full((4, 4), 0.5)], roi_size=2)
    with pytest.raises(ValueError, match=r"labels\[0\]: expected class indices >= 0"):
        crop_prevalence([np.full((4, 4), -1)], roi_size=2)
    with pytest.raises(TypeError, match=r"labels\[1\]: expected a label map"):
        crop_prevalence([np.zeros((4, 4), int), "x.nii"], roi_size=2)
    with pytest.raises(ValueError, match="labels: expected at least one"):
        crop_prevalence([], roi_size=2)


def test_format_prevalence_shows_both_and_checks_its_arguments():
    data = LabelStats(2)
    data.add_counts(np.array([999, 1]))
    crops = crop_prevalence([np.pad(np.ones((1, 1), np.uint8), ((0, 9), (0, 9)))], roi_size=4)
    text = format_prevalence(data, crops)
    lines = text.splitlines()
    assert len(lines) == 3 and "dataset prevalence" in lines[0]
    assert lines[2].split()[1] == "0.001000"
    assert float(lines[2].split()[2]) == pytest.approx(crops.positives[1] / 16, abs=1e-6)
    assert float(lines[2].split()[3]) == pytest.approx(999.0)
    with pytest.raises(ValueError, match="crops: expected num_classes=2"):
        format_prevalence(data, LabelStats(3))
    with pytest.raises(TypeError, match="dataset: expected a LabelStats"):
        format_prevalence({}, crops)


def test_no_warning_and_json_round_trip():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats = crop_prevalence([blobs((7, 7, 7), 3, 9)], roi_size=3)
    assert LabelStats.from_json(stats.to_json()) == stats


def brute_expectations(label, weights, roi, k):
    """Every start enumerated: sum_t W(t) C_k(t) and sum_t W(t) [C_k(t) > 0], crops cut out one by one."""
    counts, presence = np.zeros(k), np.zeros(k)
    for start in np.ndindex(*weights.shape):
        n = np.bincount(label[tuple(slice(a, a + s) for a, s in zip(start, roi, strict=True))].ravel(), minlength=k)
        counts += weights[start] * n
        presence += weights[start] * (n > 0)
    return counts, presence


@pytest.mark.parametrize(("shape", "roi"), [((13, 9, 11), (4, 7, 2)), ((8, 12, 10), (8, 3, 9)), ((15, 6), (2, 5))])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("few", [16, 0])
def test_box_sums_equal_brute_force_on_random_labels(shape, roi, order, few, rng, monkeypatch):
    """Random labels of 7 classes, random start weights, both memory orders; the classes stacked over the
    labelled box (``FEW_CLASSES = 16``) and each in its own box (0)."""
    from voxweight.stats import crop_counts

    monkeypatch.setattr(crop_counts, "FEW_CLASSES", few)
    label = np.asarray(rng.integers(0, 7, shape), dtype=np.uint8, order=order)
    label[label == 5] = 0  # one class absent
    weights = rng.uniform(size=tuple(n - s + 1 for n, s in zip(shape, roi, strict=True)))
    weights /= weights.sum()
    counts, presence = crop_counts.crop_expectations(label, weights, roi, 6, 8)
    expected_counts, expected_presence = brute_expectations(label, weights, roi, 8)
    np.testing.assert_allclose(counts, expected_counts, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(presence, expected_presence, rtol=1e-12, atol=1e-12)
    assert counts[5] == 0 and presence[5] == 0 and counts[7] == 0


@pytest.mark.parametrize(("shape", "roi"), [((13, 9, 11), (4, 7, 2)), ((8, 12, 10), (8, 3, 9)), ((15, 6), (2, 5)),
                                           ((20, 18, 16), (12, 12, 8))])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("pos_ratio", [0.0, 0.3, 1.0])
def test_monai_grouped_weights_equal_the_full_start_grid(shape, roi, order, pos_ratio, rng):
    """W pooled straight onto the window groups gives the brute force of W on every start (both orders)."""
    from voxweight.stats.crop_counts import monai_crop_expectations
    from voxweight.stats.crop_windows import monai_start_weights

    label = np.zeros(shape, dtype=np.uint8, order=order)
    inner = tuple(slice(n // 4, n - n // 3) for n in shape)  # labels in a box: groups of starts share windows
    label[inner] = rng.integers(0, 4, label[inner].shape)
    counts, presence = monai_crop_expectations(label, roi, pos_ratio, 3, 5)
    expected = brute_expectations(label, monai_start_weights(label, roi, pos_ratio), roi, 5)
    np.testing.assert_allclose(counts, expected[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(presence, expected[1], rtol=1e-12, atol=1e-12)


def test_fortran_volume_equals_its_c_copy_in_both_modes(rng):
    label = blobs((12, 10, 9), 4, seed=4)
    fortran = np.asfortranarray(label)
    for kwargs in ({"pos": 2.0, "neg": 1.0}, {"oversample_foreground": 0.4}):
        a = crop_prevalence([label], roi_size=(5, 4, 6), **kwargs)
        b = crop_prevalence([fortran], roi_size=(5, 4, 6), **kwargs)
        np.testing.assert_allclose(a.positives, b.positives, rtol=1e-12)
        np.testing.assert_allclose(a.images_with, b.images_with, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
def test_read_label_volume_equals_nibabels_load(tmp_path, dtype, rng):
    from voxweight.stats.nifti import SLAB_VOXELS, read_label_volume

    data = rng.integers(0, 300 if dtype != np.uint8 else 5, (70, 60, 130)).astype(dtype)  # several slabs
    assert data.size > 2 * SLAB_VOXELS
    image = nib.Nifti1Image(data, np.eye(4))
    if dtype == np.int16:
        image.header.set_slope_inter(2.0, 1.0)  # scaled: stored values 2 v + 1
    nib.save(image, str(tmp_path / "a.nii.gz"))
    labels, _ = read_label_volume(str(tmp_path / "a.nii.gz"))
    expected = np.asanyarray(nib.load(str(tmp_path / "a.nii.gz")).dataobj)
    assert np.array_equal(labels, expected) and labels.dtype.kind == "u" and labels.flags.f_contiguous
    assert labels.dtype == np.min_scalar_type(int(expected.max()))


def test_read_label_volume_rejects_negative_and_fractional(tmp_path):
    from voxweight.stats.nifti import read_label_volume

    for name, data in (("neg.nii.gz", np.full((3, 3, 3), -1, np.int16)), ("frac.nii.gz", np.full((3, 3), 0.5))):
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / name))
    with pytest.raises(ValueError, match=r"neg\.nii\.gz: expected labels >= 0"):
        read_label_volume(str(tmp_path / "neg.nii.gz"))
    with pytest.raises(ValueError, match="whole-number"):
        read_label_volume(str(tmp_path / "frac.nii.gz"))


@pytest.mark.parametrize(("shape", "size", "starts", "bound"), [
    ((3, 5, 40), 9, 32, 200),  # the row product (float32, exact)
    ((3, 5, 40), 9, 32, 1 << 22),  # bound * size >= 2**24: the turned running sums
    ((2, 300), 50, 251, 7),  # more than 128 windows: running sums along the rows
    ((4, 6, 7), 7, 1, 255),  # one window as wide as the row
])
def test_window_sums_along_rows_equal_direct_sums(shape, size, starts, bound, rng):
    """Every path of ``window_sums`` on the contiguous axis gives the direct window sums, in an unsigned dtype."""
    from voxweight.stats.crop_windows import window_sums

    x = rng.integers(0, bound + 1, shape).astype(np.uint32 if bound > 255 else np.uint8)
    x.flat[0] = bound  # the largest value present
    out = window_sums(x, x.ndim - 1, size, starts, bound)
    expected = np.stack([x[..., t:t + size].sum(axis=-1, dtype=np.uint64) for t in range(starts)], axis=-1)
    assert out.dtype.kind == "u" and out.shape == expected.shape
    np.testing.assert_array_equal(out.astype(np.uint64), expected)
