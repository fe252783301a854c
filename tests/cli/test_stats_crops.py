"""voxweight stats --roi-size/--pos/--neg/--oversample-foreground: the crops' prevalence next to the dataset's.

Oracles: voxweight.crop_prevalence and scan_labels called directly on the same files (the CLI must print and
write exactly their numbers), and a hand count of one tiny volume."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from voxweight import crop_prevalence, scan_labels
from voxweight.cli import main
from voxweight.stats import format_prevalence


@pytest.fixture
def labels(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "labels"
    folder.mkdir()
    for i in range(3):
        label = np.zeros((12, 10, 8), dtype=np.uint8)
        x, y, z = rng.integers(2, 6, 3)
        label[x:x + 3, y:y + 2, z:z + 2] = 1
        nib.save(nib.Nifti1Image(label, np.eye(4)), str(folder / f"case{i}.nii.gz"))
    return folder


@pytest.mark.parametrize("extra", [["--pos", "2", "--neg", "1"], ["--oversample-foreground", "0.5"]])
def test_crops_table_and_json_are_the_library_numbers(labels, tmp_path, capsys, extra):
    out = tmp_path / "stats.json"
    assert main(["stats", str(labels), "--no-progress", "--roi-size", "6", "6", "4", *extra, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    files = sorted(str(p) for p in labels.iterdir())
    dataset = scan_labels(files, progress=False)
    options = {"pos": 2.0, "neg": 1.0} if "--pos" in extra else {"oversample_foreground": 0.5}
    crops = crop_prevalence(files, roi_size=[6, 6, 4], num_classes=2, **options)
    assert format_prevalence(dataset, crops) in printed and "training crops [6, 6, 4]" in printed
    payload = json.loads(out.read_text())
    np.testing.assert_allclose(payload["crops"]["positives"], crops.positives, rtol=1e-12)
    assert payload["crops"]["roi_size"] == [6, 6, 4] and payload["crops"]["voxels"] == crops.voxels
    np.testing.assert_allclose(payload["crops"]["pos_weight"], crops.pos_weight(), rtol=1e-12)
    assert payload["positives"] == dataset.positives.tolist()  # the dataset's counts are unchanged


def test_whole_volume_crop_is_the_dataset(labels, capsys):
    """Hand case: a crop as large as every volume holds the whole volume, so both prevalences are equal."""
    assert main(["stats", str(labels), "--no-progress", "--roi-size", "12", "10", "8"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("    1  ")]
    dataset_fraction, crop_fraction = float(rows[-1][1]), float(rows[-1][2])
    assert dataset_fraction == pytest.approx(12 / 960) and crop_fraction == pytest.approx(dataset_fraction)


@pytest.mark.parametrize("flag", [["--pos", "3"], ["--neg", "2"], ["--oversample-foreground", "0.3"]])
def test_crop_options_need_a_roi_size(labels, capsys, flag):
    assert main(["stats", str(labels), "--no-progress", *flag]) == 2
    assert "needs --roi-size" in capsys.readouterr().err


def test_bad_roi_size_is_a_clear_error(labels, capsys):
    assert main(["stats", str(labels), "--no-progress", "--roi-size", "6", "6"]) != 0
    assert "roi_size" in capsys.readouterr().err
