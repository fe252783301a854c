"""The interim demo: deterministic, and weighting does what the README claims on its data."""

from __future__ import annotations

import subprocess
import sys

import torch

from voxweight.cli import main
from voxweight.demo import make_volumes, run_demo


def test_volumes_are_imbalanced_binary_and_seeded():
    image, label = make_volumes(3, 24, torch.Generator().manual_seed(1))
    again, _ = make_volumes(3, 24, torch.Generator().manual_seed(1))
    assert torch.equal(image, again)
    assert set(label.unique().tolist()) <= {0.0, 1.0}
    assert 0.003 < label.mean().item() < 0.05


def test_quick_demo_is_deterministic_and_debias_restores_calibration():
    a = run_demo(quick=True, seed=3)
    b = run_demo(quick=True, seed=3)
    assert a == b
    plain, weighted, debiased = a
    assert weighted.recall > plain.recall
    # debias_logits removes most of the over-prediction that pos_weight causes.
    assert abs(debiased.calibration_gap) < abs(weighted.calibration_gap)


def test_cli_demo_prints_table(capsys):
    assert main(["demo", "--quick", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "plain BCE" in out and "debias_logits" in out and "dice" in out


def test_cli_usage_error_exits_2():
    proc = subprocess.run([sys.executable, "-m", "voxweight", "demo", "--seed", "x"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "invalid int value" in proc.stderr
