"""End to end: nnU-Net's real planning CLI, training loop and predictor with each voxweight trainer, on the CPU.

The run happens in a subprocess (``e2e_run.py``) because nnunetv2 reads its folder variables when imported.
Oracles: the files nnU-Net writes (final checkpoint with the trainer's name, a NIfTI prediction with the input's
affine and shape, labels of the dataset), the class nnU-Net's own external search returns, the schedule's
weights seen by the train steps of two epochs.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nnunetv2")

HERE = Path(__file__).resolve().parent
LOSSES = {"nnUNetTrainerVoxweightBoundary": "BoundaryWeightedDiceCE",
          "nnUNetTrainerVoxweightSkeletonRecall": "SkeletonRecallDiceCE",
          "nnUNetTrainerVoxweightBoundaryLoss": "BoundaryLossDiceCE"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("nnunet_e2e")
    proc = subprocess.run([sys.executable, str(HERE / "e2e_run.py"), str(work)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    lines = [json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines() if line.startswith("VOXWEIGHT_E2E")]
    return {r["trainer"]: r for r in lines}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_each_trainer_trains_checkpoints_and_predicts(runs, name):
    r = runs[name]
    assert r["found"] == name and r["loss"] == LOSSES[name]
    assert r["checkpoint"] and r["checkpoint_trainer"] == name + "Tiny"
    assert math.isfinite(r["train_loss"])
    assert r["same_affine"] and r["same_shape"]
    assert set(r["labels"]) <= {0, 1}


@pytest.mark.slow
def test_the_boundary_loss_schedule_moves_per_epoch_inside_nnunets_loop(runs):
    seen = runs["nnUNetTrainerVoxweightBoundaryLoss"]["schedule"]
    assert seen == [[0, 1.0, 0.0], [0, 1.0, 0.0], [1, 0.99, pytest.approx(0.01)], [1, 0.99, pytest.approx(0.01)]]
