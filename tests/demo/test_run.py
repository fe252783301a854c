"""voxweight demo: its data, its metrics against brute-force oracles, and a quick seeded end-to-end run."""

from __future__ import annotations

import itertools
import subprocess
import sys

import matplotlib.image
import nibabel as nib
import numpy as np
import pytest

from voxweight.cli import main
from voxweight.demo.data import synthetic_volume, write_synthetic_dataset
from voxweight.demo.metrics import boundary_region, expected_calibration_error, overlap_scores
from voxweight.demo.run import run_demo


def test_synthetic_volumes_are_imbalanced_seeded_and_anisotropic(tmp_path):
    image, label = synthetic_volume((48, 48, 24), (1.0, 1.0, 2.0), np.random.default_rng(1))
    again, _ = synthetic_volume((48, 48, 24), (1.0, 1.0, 2.0), np.random.default_rng(1))
    assert np.array_equal(image, again)
    assert 0.005 < label.mean() < 0.04
    items = write_synthetic_dataset(tmp_path, 2, shape=(16, 16, 8), spacing=(0.8, 0.8, 2.5))
    header = nib.load(items[1]["label"]).header
    assert header.get_zooms() == pytest.approx((0.8, 0.8, 2.5))
    assert np.asarray(nib.load(items[1]["label"]).dataobj).dtype == np.uint8


def test_boundary_region_matches_brute_force():
    """Oracle: for every voxel, the distance to the nearest voxel of the other class, by enumeration."""
    rng = np.random.default_rng(0)
    label = rng.random((7, 6, 5)) > 0.7
    spacing = (1.0, 1.5, 2.0)
    coords = np.array(list(itertools.product(*[range(s) for s in label.shape]))) * spacing
    flat = label.ravel()
    dist = np.array([np.min(np.linalg.norm(coords[flat != flat[i]] - coords[i], axis=1)) for i in range(len(flat))])
    for band in (1.0, 1.5, 2.5):
        assert np.array_equal(boundary_region(label, band, spacing).ravel(), dist <= band)
    assert not boundary_region(np.zeros((3, 3), bool), 5.0, (1.0, 1.0)).any()


def test_overlap_and_calibration_hand_computed():
    assert overlap_scores(np.zeros(4, bool), np.zeros(4, bool)) == (1.0, 1.0, 1.0)
    assert overlap_scores(np.zeros(4, bool), np.array([0, 1, 0, 0], bool)) == (0.0, 0.0, 0.0)
    dice, recall, precision = overlap_scores(np.array([1, 1, 1, 0], bool), np.array([1, 0, 0, 0], bool))
    assert (dice, recall, precision) == pytest.approx((0.5, 1.0, 1 / 3))
    prob = np.array([0.05, 0.15, 0.95, 0.95])
    truth = np.array([0, 0, 1, 0])
    # bins: [0.0, 0.1) -> |0.05 - 0|, [0.1, 0.2) -> |0.15 - 0|, [0.9, 1.0] -> |1.9 - 1|; divided by 4
    assert expected_calibration_error(prob, truth) == pytest.approx((0.05 + 0.15 + 0.9) / 4)


@pytest.mark.slow
def test_quick_demo_is_deterministic_and_writes_a_figure(tmp_path):
    a = run_demo(tmp_path / "a", quick=True, seed=3)
    b = run_demo(tmp_path / "b", quick=True, seed=3)
    assert a.results == b.results
    assert [r.name for r in a.results] == ["plain BCE", "pos_weight (crops)", "class balance + boundary map"]
    assert 0.005 < a.foreground_fraction < 0.05
    assert a.pos_weight == pytest.approx((1 - a.foreground_fraction) / a.foreground_fraction)
    # quick: the crop is the whole volume, so the crops' prevalence is the volumes' (hand case of crop_prevalence)
    assert a.crop_fraction == pytest.approx(a.foreground_fraction, rel=1e-9)
    assert a.crop_pos_weight == pytest.approx((1 - a.crop_fraction) / a.crop_fraction)
    picture = matplotlib.image.imread(a.figure)
    assert picture.shape[0] > 100 and picture.shape[1] > 500 and picture.std() > 0.05
    for r in a.results:
        assert 0 <= r.dice <= 1 and 0 <= r.ece_raw <= 1 and 0 <= r.ece_debiased <= 1
        assert 0 <= r.average_precision <= 1 and 0 < r.max_probability < 1
        assert r.dice - 1e-12 <= r.best_dice <= 1 and 0.05 <= r.best_threshold <= 0.95  # 0.5 is on the grid
    # a note for exactly the models whose probabilities never pass 0.5
    assert len(a.notes) == sum(r.max_probability <= 0.5 for r in a.results) and a.notes == b.notes


def test_cli_demo_is_the_study_quick_path(tmp_path, capsys):
    """``voxweight demo`` runs a short study of the four demo recipes on synthetic touching objects."""
    from voxweight.cli.demo import DEMO_RECIPES
    from voxweight.study.metrics import METRICS

    assert main(["demo", "--quick", "--seed", "1", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("metric"))
    assert header.split()[1:] == list(DEMO_RECIPES)
    for name, info in METRICS.items():
        assert (info.label in out) == (info.kind in ("all", "instances")), name
    assert "pos/neg 1:1 crops" in out and "one seed is noisy" in out
    assert (tmp_path / "study.png").is_file() and list((tmp_path / "predictions").rglob("*.nii.gz"))


def test_cli_usage_error_exits_2():
    proc = subprocess.run([sys.executable, "-m", "voxweight", "demo", "--seed", "x"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "invalid int value" in proc.stderr
