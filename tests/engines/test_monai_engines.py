"""WeightedSupervisedTrainer and the shipped MONAI bundle, on synthetic NIfTI volumes.

Oracles: the voxweight loss called by hand on the batch and prediction the trainer saw (captured by event
handlers), torch's own ``binary_cross_entropy_with_logits`` with the same weight, MONAI's ``ConfigParser``
and ``python -m monai.bundle run`` on the shipped bundle.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from monai.bundle import ConfigParser
from monai.data import DataLoader, Dataset, MetaTensor
from monai.engines import IterationEvents, SupervisedTrainer
from monai.networks.nets import UNet
from monai.utils import set_determinism

import voxweight
from voxweight.engines import WeightedSupervisedTrainer, batch_loss_kwargs
from voxweight.pipelines import config_dir
from voxweight.study import find_cases, write_synthetic_study

ROI = [16, 16, 8]
BUNDLE = Path(config_dir()) / "bundle_train_boundary.yaml"


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    folder = write_synthetic_study(tmp_path_factory.mktemp("study"), "touching", 4, shape=(24, 24, 24))
    return [{"image": c["image"], "label": c["label"]} for c in find_cases(folder)]


def _loader(items):
    pipe = voxweight.load_pipeline("train_boundary", pixdim=[1.0, 1.0, 2.0], roi_size=ROI, sigma=3.0)
    return DataLoader(Dataset(items, pipe), batch_size=1, shuffle=False)


def _net():
    torch.manual_seed(0)
    return UNet(spatial_dims=3, in_channels=1, out_channels=1, channels=(4, 8), strides=(2,), num_res_units=0)


def _trainer(loader, loss, net=None, **kwargs):
    net = _net() if net is None else net
    return WeightedSupervisedTrainer(device=kwargs.pop("device", "cpu"), max_epochs=1, train_data_loader=loader,
                                     network=net, optimizer=torch.optim.Adam(net.parameters(), lr=1e-2),
                                     loss_function=loss, **kwargs)


def _record(trainer):
    """Per iteration, after MONAI's LOSS_COMPLETED: the raw batch, the prediction and the loss the trainer saw."""
    seen = []

    @trainer.on(IterationEvents.LOSS_COMPLETED)
    def _keep(engine):
        out = engine.state.output
        seen.append({"batch": engine.state.batch, "pred": out["pred"].detach().clone(),
                     "label": out["label"], "loss": out["loss"].detach().clone()})
    return seen


@pytest.mark.parametrize("options", [{}, {"decollate": False, "optim_set_to_none": True, "accumulation_steps": 2}])
def test_trainer_passes_the_batch_weight_map_to_the_loss(items, options):
    """Oracle: the loss called by hand with weight=batch['label_weight'], and torch's weighted BCE."""
    set_determinism(seed=0)
    loss = voxweight.VoxelWeightedBCE()
    trainer = _trainer(_loader(items), loss, epoch_length=2, **options)
    seen = _record(trainer)
    trainer.run()
    assert trainer.state.iteration == 2 and len(seen) == 2
    assert isinstance(trainer, SupervisedTrainer) and trainer.loss_function is loss
    for step in seen:
        weight = step["batch"]["label_weight"]
        assert weight.shape == step["label"].shape == (2, 1, *ROI)  # num_samples crops of one volume
        assert float(weight.max()) > 1.5  # the boundary bonus is there
        by_hand = loss(step["pred"], step["label"], weight=weight)
        torch.testing.assert_close(step["loss"], by_hand)
        torch.testing.assert_close(step["loss"], F.binary_cross_entropy_with_logits(step["pred"], step["label"],
                                                                                    weight=weight))
        unweighted = loss(step["pred"], step["label"])
        assert abs(float(step["loss"]) - float(unweighted)) > 1e-3 * float(unweighted)


def test_missing_weight_map_raises_a_key_error_naming_the_key(items):
    plain = voxweight.load_pipeline("inference", pixdim=[1.0, 1.0, 2.0])  # image and label, no label_weight
    loss = voxweight.VoxelWeightedBCE()
    trainer = _trainer(DataLoader(Dataset(items[:1], plain), batch_size=1), loss)
    with pytest.raises(KeyError, match=r"label_weight: expected the batch to hold 'label_weight' for the loss's "
                                       r"weight=, got keys \[.*'image', 'label'.*\]"):
        trainer.run()
    assert trainer.loss_function is loss  # restored after the failed iteration
    with pytest.raises(KeyError, match="my_mask"):
        batch_loss_kwargs({"label_weight": torch.ones(1)}, {"weight": "label_weight", "mask": "my_mask"})


def test_mask_and_extra_keys_reach_the_loss_as_plain_tensors():
    """Oracle: a recording loss gets exactly the batch's tensors (MetaTensors unwrapped), under their keywords."""
    got = []

    def loss(pred, label, weight=None, *, mask=None, skeleton=None):
        got.append({"weight": weight, "mask": mask, "skeleton": skeleton})
        return F.binary_cross_entropy_with_logits(pred, label, weight=weight * mask)

    shape = (2, 1, 8, 8, 8)
    batch = {"image": torch.randn(shape), "label": (torch.rand(shape) > 0.5).float(),
             "label_weight": MetaTensor(torch.rand(shape)), "valid": MetaTensor((torch.rand(shape) > 0.2).float()),
             "label_skeleton": torch.rand(shape)}
    net = torch.nn.Conv3d(1, 1, 3, padding=1)
    trainer = _trainer([batch], loss, net=net, mask_key="valid", loss_keys={"skeleton": "label_skeleton"})
    trainer.run()
    assert len(got) == 1
    for name, key in (("weight", "label_weight"), ("mask", "valid"), ("skeleton", "label_skeleton")):
        assert type(got[0][name]) is torch.Tensor
        torch.testing.assert_close(got[0][name], batch[key].as_tensor() if name != "skeleton" else batch[key])


def test_batch_loss_kwargs_moves_with_the_trainer_arguments():
    batch = {"label_weight": MetaTensor(torch.ones(1, 1, 2, 2, 2))}
    out = batch_loss_kwargs(batch, {"weight": "label_weight"}, device="cpu", to_kwargs={"dtype": torch.float64})
    assert type(out["weight"]) is torch.Tensor and out["weight"].dtype == torch.float64
    with pytest.raises(TypeError, match=r"batchdata: expected a dict batch holding \['label_weight'\].*got tuple"):
        batch_loss_kwargs((torch.ones(1), torch.ones(1)), {"weight": "label_weight"})
    with pytest.raises(TypeError, match=r"label_weight: expected a tensor in the batch .*got list"):
        batch_loss_kwargs({"label_weight": [1.0]}, {"weight": "label_weight"})


def test_bad_arguments_are_refused_naming_them():
    net = torch.nn.Conv3d(1, 1, 1)
    with pytest.raises(TypeError, match=r"loss_function: expected a loss that takes the keywords \['weight'\].*"
                                        r"BCEWithLogitsLoss"):
        _trainer([], torch.nn.BCEWithLogitsLoss(), net=net)
    with pytest.raises(TypeError, match=r"loss_function: .*\['mask'\]"):
        _trainer([], lambda pred, label, weight=None: pred.mean(), net=net, mask_key="valid")
    with pytest.raises(TypeError, match="weight_key: expected a batch key"):
        _trainer([], voxweight.VoxelWeightedBCE(), net=net, weight_key="")
    with pytest.raises(TypeError, match="loss_keys: expected a mapping"):
        _trainer([], voxweight.VoxelWeightedBCE(), net=net, loss_keys=["label_skeleton"])
    with pytest.raises(ValueError, match=r"loss_keys: expected keywords other than .*\['weight'\]"):
        _trainer([], voxweight.VoxelWeightedBCE(), net=net, loss_keys={"weight": "w"})
    with pytest.raises(ValueError, match="expected at least one batch key"):
        _trainer([], voxweight.VoxelWeightedBCE(), net=net, weight_key=None)
    with pytest.raises(ValueError, match="iteration_update: expected None"):
        _trainer([], voxweight.VoxelWeightedBCE(), net=net, iteration_update=lambda engine, batch: None)
    with pytest.raises(TypeError, match="max_epoch"):  # MONAI's own check of an unknown keyword
        _trainer([], voxweight.VoxelWeightedBCE(), net=net, max_epoch=3)


def test_bundle_parses_to_the_weighted_trainer(items, tmp_path):
    folder = Path(items[0]["image"]).parents[1]
    parser = ConfigParser()
    parser.read_config(BUNDLE)
    parser.update({"dataset_dir": str(folder), "roi_size": ROI, "output_dir": str(tmp_path), "num_workers": 0})
    assert parser.get_parsed_content("train_items") == find_cases(folder)[:3]
    assert parser.get_parsed_content("val_items") == find_cases(folder)[3:]
    trainer = parser.get_parsed_content("trainer")
    assert type(trainer) is WeightedSupervisedTrainer and trainer is parser.get_parsed_content("train#trainer")
    assert trainer.loss_keys == {"weight": "label_weight"}
    assert isinstance(trainer.loss_function, voxweight.VoxelWeightedBCE)


def test_bundle_runs_from_the_command_line(items, tmp_path):
    """``python -m monai.bundle run`` on the shipped file: trains, validates, writes checkpoints and a log."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(BUNDLE),
           "--train_items", repr(items[:3]), "--val_items", repr(items[3:]), "--max_epochs", "1",
           "--roi_size", repr(ROI), "--pixdim", "[1.0, 1.0, 2.0]", "--output_dir", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    final = torch.load(out / "models" / "model_final.pt", weights_only=True)
    assert set(final) == {"model", "optimizer"}
    assert (out / "models" / "model.pt").is_file()
    log = (out / "log.txt").read_text()
    assert "train_loss" in log and "val_mean_dice" in log


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_trainer_on_cuda_with_amp_moves_the_map_and_matches_the_loss_under_autocast(items):
    set_determinism(seed=0)
    loss = voxweight.VoxelWeightedBCE()
    net = _net().cuda()
    trainer = _trainer(_loader(items), loss, net=net, device=torch.device("cuda"), amp=True, non_blocking=True,
                       epoch_length=1)
    seen = _record(trainer)
    trainer.run()
    step = seen[0]
    weight = step["batch"]["label_weight"].cuda()
    with torch.autocast("cuda"):
        by_hand = loss(step["pred"], step["label"], weight=weight)
    assert step["pred"].is_cuda and torch.isfinite(step["loss"])
    torch.testing.assert_close(step["loss"], by_hand)
