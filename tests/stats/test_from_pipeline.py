"""LabelStats.from_pipeline: the counts of every sample a pipeline yields.

Oracles: the same MONAI pipeline, seeded alike, run by hand and its crops counted with ``np.bincount``;
exact totals (``num_samples x roi voxels`` per item and pass); fixed class weights, whose weight mass is
the counts times the weights; zero-weight padding of the shipped pipelines counted by hand.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, RandCropByPosNegLabeld, RandFlipd

from voxweight.pipelines import load_pipeline
from voxweight.stats import LabelStats
from voxweight.stats.from_pipeline import count_samples

ROI = (6, 6, 4)


def _volumes(n: int = 3, shape=(12, 10, 8), classes: int = 2) -> list[dict]:
    rng = np.random.default_rng(1)
    items = []
    for i in range(n):
        label = np.zeros((1, *shape), dtype=np.float32)  # MONAI loads labels as float32
        label[0, 2 + i:6 + i, 3:7, 2:5] = 1
        if classes > 2:
            label[0, 8:10, 0:2, 0:3] = 2
        items.append({"image": rng.normal(size=(1, *shape)).astype(np.float32), "label": label})
    return items


def _crop_pipeline(num_samples: int = 4) -> Compose:
    return Compose([
        RandCropByPosNegLabeld(keys=["image", "label"], label_key="label", spatial_size=ROI, pos=1, neg=1,
                               num_samples=num_samples),
        RandFlipd(keys=["image", "label"], spatial_axis=0, prob=0.5),
    ])


def _by_hand(pipeline: Compose, items: list[dict], passes: int = 1, seed: int | None = None, k: int = 2):
    positives, images_with, voxels, images = np.zeros(k), np.zeros(k), 0, 0
    for p in range(passes):
        for i, item in enumerate(items):
            if seed is not None:
                pipeline.set_random_state(seed=seed + p * len(items) + i)
            for crop in pipeline(dict(item)):
                counts = np.bincount(np.asarray(crop["label"]).astype(int).ravel(), minlength=k)
                positives += counts
                images_with += counts > 0
                voxels += counts.sum()
                images += 1
    return positives, images_with, voxels, images


def _assert_stats(stats: LabelStats, expected) -> None:
    positives, images_with, voxels, images = expected
    np.testing.assert_array_equal(stats.positives, positives)
    np.testing.assert_array_equal(stats.images_with, images_with)
    assert (stats.voxels, stats.images) == (voxels, images)


def test_equals_counting_monai_crops_by_hand_with_the_same_seed():
    items = _volumes()
    run = _crop_pipeline().set_random_state(seed=7)
    stats = LabelStats.from_pipeline(run, items, progress=False)
    _assert_stats(stats, _by_hand(_crop_pipeline().set_random_state(seed=7), items))
    assert stats.images == 12 and stats.voxels == 12 * np.prod(ROI)
    assert stats.weight_mass is None
    # pos=1, neg=1: the crops see far more foreground than the volumes do
    volume_fraction = np.mean([it["label"].mean() for it in items])
    assert stats.positives[1] / stats.voxels > 1.5 * volume_fraction


def test_passes_and_seed_reproduce_a_hand_loop_reseeded_per_item():
    items = _volumes()
    stats = LabelStats.from_pipeline(_crop_pipeline(), items, passes=3, seed=11, progress=False)
    _assert_stats(stats, _by_hand(_crop_pipeline(), items, passes=3, seed=11))
    assert stats.images == 3 * 3 * 4
    again = LabelStats.from_pipeline(_crop_pipeline(), items, passes=3, seed=11, progress=False)
    assert again == stats


def test_two_workers_equal_one_given_a_seed():
    items = _volumes()
    one = LabelStats.from_pipeline(_crop_pipeline(), items, passes=2, seed=3, workers=1, progress=False)
    two = LabelStats.from_pipeline(_crop_pipeline(), items, passes=2, seed=3, workers=2, progress=False)
    assert one == two


class _Draw:
    """A random pipeline with MONAI's ``R`` / ``set_random_state`` protocol: one label voxel of a random class."""

    def __init__(self) -> None:
        self.set_random_state(seed=0)

    def set_random_state(self, seed: int | None = None) -> _Draw:
        self.R = np.random.RandomState(seed)
        return self

    def __call__(self, item):
        return {"label": np.array([[self.R.randint(0, 1000)]])}


def test_two_workers_without_a_seed_keep_the_totals_and_draw_distinct_samples():
    """Unseeded, each worker is reseeded from torch's worker seed: its copy does not replay the parent's draws."""
    torch.manual_seed(0)
    two = LabelStats.from_pipeline(_Draw(), [{}] * 2, workers=2, num_classes=1000, progress=False)
    assert (two.images, two.voxels) == (2, 2)
    assert two.positives.max() == 1  # two distinct classes: the workers drew independently
    torch.manual_seed(0)
    again = LabelStats.from_pipeline(_Draw(), [{}] * 2, workers=2, num_classes=1000, progress=False)
    assert again == two  # reproducible under torch.manual_seed
    one = LabelStats.from_pipeline(_Draw(), [{}] * 2, workers=1, num_classes=1000, progress=False)
    expected = np.random.RandomState(0).randint(0, 1000, size=2)  # in-process: the pipeline's own sequence
    np.testing.assert_array_equal(np.flatnonzero(one.positives), np.sort(expected))
    np.random.seed(0)  # a plain callable on numpy's global generator: each worker's copy is reseeded too
    plain = LabelStats.from_pipeline(lambda it: {"label": np.array([[np.random.randint(1000)]])}, [{}] * 2,
                                     workers=2, num_classes=1000, progress=False)
    assert plain.positives.max() == 1


def test_labels_as_tensor_metatensor_and_one_hot_agree():
    items = _volumes(classes=3)
    ids = LabelStats.from_pipeline(lambda it: {"label": it["label"]}, items, progress=False)
    meta = LabelStats.from_pipeline(lambda it: {"label": MetaTensor(torch.from_numpy(it["label"]))}, items,
                                    progress=False)
    one_hot = LabelStats.from_pipeline(
        lambda it: {"label": torch.nn.functional.one_hot(torch.from_numpy(it["label"][0]).long(), 3)
                    .movedim(-1, 0).float()}, items, progress=False)
    assert ids == meta == one_hot
    np.testing.assert_array_equal(ids.positives, sum(np.bincount(it["label"].astype(int).ravel(), minlength=3)
                                                     for it in items))


def test_soft_channels_count_fractionally():
    label = np.array([[[0.25, 1.0]], [[0.75, 0.0]]])  # [C=2, 1, 2]
    stats = LabelStats.from_pipeline(lambda it: it, [{"label": label}], progress=False)
    np.testing.assert_allclose(stats.positives, [1.25, 0.75])
    np.testing.assert_array_equal(stats.images_with, [1.0, 0.75])
    assert stats.voxels == 2


def test_weight_mass_per_class_with_fixed_weights():
    items = _volumes()

    def weighted(item):
        crops = _crop_pipeline()(item)
        return [{**c, "label_weight": torch.as_tensor(np.where(np.asarray(c["label"]) > 0, 5.0, 0.5))} for c in crops]

    stats = LabelStats.from_pipeline(weighted, items, seed=None, progress=False)
    np.testing.assert_allclose(stats.weight_mass, stats.positives * [0.5, 5.0])


def test_count_samples_broadcasts_a_one_channel_weight_over_channels():
    label = np.stack([np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 1.0]])])  # [2, 1, 3]
    (counts,) = count_samples({"label": label, "label_weight": np.array([[[2.0, 1.0, 3.0]]])})
    np.testing.assert_array_equal(counts.weight_mass, [2.0, 4.0])
    assert counts.one_hot and counts.voxels == 3


def _write_items(folder, shapes) -> list[dict[str, str]]:
    rng = np.random.default_rng(0)
    items = []
    for n, shape in enumerate(shapes):
        label = np.zeros(shape, dtype=np.uint8)
        label[2:6, 3:7, 1:4] = 1
        image = (100.0 * label + rng.normal(0.0, 20.0, shape)).astype(np.float32)
        paths = {"image": folder / f"img{n}.nii.gz", "label": folder / f"lab{n}.nii.gz"}
        nib.save(nib.Nifti1Image(image, np.eye(4)), paths["image"])
        nib.save(nib.Nifti1Image(label, np.eye(4)), paths["label"])
        items.append({k: str(v) for k, v in paths.items()})
    return items


def test_shipped_class_balanced_pipeline_on_nifti(tmp_path):
    """Whole crops of roi voxels; fixed weights give mass = counts x weight; padding weighs 0."""
    items = _write_items(tmp_path, [(16, 14, 10), (12, 12, 6)])  # the second is padded along z (6 < 8)
    roi = [8, 8, 8]
    pipe = load_pipeline("train_class_balanced", roi_size=roi, num_samples=3, pixdim=[1.0, 1.0, 1.0],
                         fg_weight=4.0, bg_weight=1.0)
    stats = LabelStats.from_pipeline(pipe, items, passes=2, seed=0, progress=False)
    assert stats.images == 2 * 2 * 3 and stats.voxels == stats.images * 512
    assert stats.positives.sum() == stats.voxels and np.all(stats.positives == np.round(stats.positives))
    padded = 2 * 3 * 8 * 8 * (8 - 6)  # per crop of the second volume: 8 x 8 x 2 zero-weight voxels
    np.testing.assert_allclose(stats.weight_mass, [stats.positives[0] - padded, 4.0 * stats.positives[1]])
    assert LabelStats.from_pipeline(pipe, items, passes=2, seed=0, workers=2, progress=False) == stats


@pytest.mark.parametrize(("name", "options"), [("train_boundary", {"boundary_mode": "distance"}),
                                               ("train_tubular", {})])
def test_other_shipped_training_pipelines_give_whole_crops(tmp_path, name, options):
    items = _write_items(tmp_path, [(16, 16, 12)])
    pipe = load_pipeline(name, roi_size=[8, 8, 8], num_samples=2, pixdim=[1.0, 1.0, 1.0], **options)
    stats = LabelStats.from_pipeline(pipe, items, seed=0, progress=False)
    assert (stats.images, stats.voxels, stats.positives.sum()) == (2, 1024, 1024)
    assert (stats.weight_mass is not None) == (name == "train_boundary")


def test_from_json_round_trip_keeps_the_counts():
    stats = LabelStats.from_pipeline(_crop_pipeline(), _volumes(), seed=0, progress=False)
    assert LabelStats.from_json(stats.to_json()) == stats


def test_degenerate_samples():
    empty = {"label": np.zeros((1, 2, 2))}
    full = {"label": np.ones((1, 2, 2))}
    stats = LabelStats.from_pipeline(lambda it: it, [empty, full], progress=False)
    np.testing.assert_array_equal(stats.positives, [4, 4])
    np.testing.assert_array_equal(stats.images_with, [1, 1])
    only_bg = LabelStats.from_pipeline(lambda it: it, [empty], num_classes=2, progress=False)
    np.testing.assert_array_equal(only_bg.positives, [4, 0])
    boolean = LabelStats.from_pipeline(lambda it: it, [{"label": np.array([[True, False, True]])}], progress=False)
    np.testing.assert_array_equal(boolean.positives, [1, 2])
    one_voxel = LabelStats.from_pipeline(lambda it: it, [{"label": np.array([[3]])}], progress=False)
    np.testing.assert_array_equal(one_voxel.positives, [0, 0, 0, 1])
    skip_item = LabelStats.from_pipeline(lambda it: [] if it["label"].sum() == 0 else it, [empty, full],
                                         progress=False)  # an item may yield no sample
    assert skip_item.images == 1 and skip_item.positives.tolist() == [0, 4]


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"pipeline": "train_class_balanced"}, TypeError, r"load_pipeline\('train_class_balanced'"),
    ({"pipeline": 3}, TypeError, "pipeline: expected a callable"),
    ({"items": []}, ValueError, "items: expected at least one item"),
    ({"passes": 0}, ValueError, "passes"),
    ({"workers": -1}, ValueError, "workers: expected an int >= 0"),
    ({"workers": "2"}, TypeError, "workers: expected an int >= 0"),
    ({"label_key": "seg"}, ValueError, "label_key: expected the key 'seg'"),
    ({"num_classes": 1}, ValueError, "label"),
    ({"seed": 1}, ValueError, "seed: expected a pipeline with set_random_state"),
    ({"seed": -1}, ValueError, "seed: expected an int >= 0"),
])
def test_bad_arguments(kwargs, error, match):
    args = {"pipeline": lambda it: it, "items": [{"label": np.array([[0, 1]])}], "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        LabelStats.from_pipeline(args.pop("pipeline"), args.pop("items"), **args)


@pytest.mark.parametrize(("outputs", "error", "match"), [
    ([3], TypeError, "expected each output to be a dict"),
    ([{"label": np.array([0, 1])}], ValueError, r"channel-first label"),
    ([{"label": "a"}], TypeError, r"sample\['label'\]"),
    ([{"label": np.array([[0, 1]])}, {"label": np.array([[[1.0, 0.0]], [[0.0, 1.0]]])}], ValueError, "got both"),
    ([{"label": np.array([[0, 1]]), "label_weight": np.ones((1, 2))}, {"label": np.array([[0, 1]])}],
     ValueError, "in every sample or in none"),
    ([{"label": np.array([[0, 1]]), "label_weight": np.ones((1, 3))}], ValueError, "broadcastable"),
    ([{"label": np.array([[0, 1]]), "label_weight": np.array([[1.0, -1.0]])}], ValueError, "finite values >= 0"),
    ([{"label": np.array([[0, 1]]), "label_weight": np.array([[1.0, np.nan]])}], ValueError, "label_weight"),
    ([{"label": np.array([[0.5, 1]])}], ValueError, "label"),
    ([{"label": np.array([[[1.5, 0.0]], [[0.0, 1.0]]])}], ValueError, r"in \[0, 1\]"),
    ([], ValueError, "at least one sample"),
])
def test_bad_samples(outputs, error, match):
    with pytest.raises(error, match=match):
        LabelStats.from_pipeline(lambda i: outputs[i] if outputs else [], range(max(len(outputs), 1)), progress=False)
