"""End-to-end run of the voxweight nnU-Net trainers, in a process whose nnU-Net paths point at a temp folder.

Usage: ``python e2e_run.py WORKDIR [TRAINER ...]``. nnunetv2 reads ``nnUNet_raw``/``_preprocessed``/``_results``
when imported, so they are set here before any nnU-Net import. Steps: a synthetic touching-objects dataset in
nnU-Net's raw layout, ``nnUNetv2_plan_and_preprocess`` (the CLI), then per trainer: the class found by name
with nnU-Net's own external-trainer search, a subclass with a tiny schedule trained with ``run_training()``
on the CPU, and one image predicted through ``nnUNetPredictor``. Prints one JSON line per trainer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TRAINERS = ["nnUNetTrainerVoxweightBoundary", "nnUNetTrainerVoxweightSkeletonRecall",
                            "nnUNetTrainerVoxweightBoundaryLoss"]
DATASET = "Dataset901_VoxweightTouching"


def console_command(name: str) -> list[str]:
    """``name``'s console script run by this interpreter from its entry point (wherever pip put the script)."""
    code = ("import sys; from importlib.metadata import entry_points; "
            f"ep = next(iter(entry_points(group='console_scripts', name={name!r}))); "
            f"sys.argv[0] = {name!r}; sys.exit(ep.load()())")
    return [sys.executable, "-c", code]


def prepare(work: Path) -> None:
    from voxweight.study import write_synthetic_study

    if (work / "preprocessed" / DATASET / "nnUNetPlans.json").is_file():
        return
    write_synthetic_study(work / "raw" / DATASET, "touching", 4, shape=(24, 24, 24))
    subprocess.run([*console_command("nnUNetv2_plan_and_preprocess"), "-d", "901", "-c", "3d_fullres", "-np", "1",
                    "--verify_dataset_integrity"],
                   check=True, capture_output=True, env=os.environ.copy())


def tiny(cls: type) -> type:
    """A subclass with 1 epoch (2 with a schedule, to see it move) of 2 iterations, recording the schedule."""
    def __init__(self, plans, configuration, fold, dataset_json, device):
        cls.__init__(self, plans, configuration, fold, dataset_json, device)
        self.num_epochs = 2 if hasattr(cls, "voxweight_schedule_step") else 1
        self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = 2, 1
        self.voxweight_seen = []

    def train_step(self, batch):
        schedule = getattr(self.loss, "schedule", None)
        self.voxweight_seen.append(None if schedule is None else [self.current_epoch, *schedule.weights()])
        return cls.train_step(self, batch)

    return type(f"{cls.__name__}Tiny", (cls,), {"__init__": __init__, "train_step": train_step})


def train_and_predict(work: Path, name: str) -> dict:
    import nibabel as nib
    import numpy as np
    import torch
    from batchgenerators.utilities.file_and_folder_operations import load_json
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    from voxweight.nnunet import trainer_directory

    folder = str(trainer_directory())
    cls = recursive_find_python_class(folder, name, None, base_folder=folder, cleanup_imports_from_base_folder=True)
    pre = work / "preprocessed" / DATASET
    plans = {**load_json(str(pre / "nnUNetPlans.json")), "continue_training": False}  # as run_training.py sets
    trainer = tiny(cls)(plans, "3d_fullres", "all", load_json(str(pre / "dataset.json")), torch.device("cpu"))
    trainer.run_training()
    final = Path(trainer.output_folder) / "checkpoint_final.pth"
    checkpoint = torch.load(final, map_location="cpu", weights_only=False)
    predictor = nnUNetPredictor(tile_step_size=0.5, use_mirroring=False, perform_everything_on_device=False,
                                device=torch.device("cpu"), allow_tqdm=False)
    # what initialize_from_trained_model_folder does, without the by-name resolver: the class builds the network
    network = cls.build_network_architecture(trainer.plans_manager, trainer.configuration_manager,
                                             trainer.num_input_channels, trainer.label_manager.num_segmentation_heads,
                                             enable_deep_supervision=False)
    predictor.manual_initialization(network, trainer.plans_manager, trainer.configuration_manager,
                                    [checkpoint["network_weights"]], trainer.dataset_json, checkpoint["trainer_name"],
                                    trainer.inference_allowed_mirroring_axes)
    image = work / "raw" / DATASET / "imagesTr" / "case_000_0000.nii.gz"
    out = work / "pred" / name
    out.parent.mkdir(exist_ok=True)
    predictor.predict_from_files_sequential([[str(image)]], [str(out)], save_probabilities=False, overwrite=True)
    src, pred = nib.load(str(image)), nib.load(str(out) + ".nii.gz")
    return {"trainer": name, "found": cls.__name__, "loss": type(trainer.loss).__name__,
            "checkpoint": final.is_file(), "checkpoint_trainer": checkpoint["trainer_name"],
            "train_loss": float(trainer.logger.get_value("train_losses", step=-1)),
            "same_affine": bool(np.allclose(src.affine, pred.affine)), "same_shape": src.shape == pred.shape,
            "schedule": trainer.voxweight_seen, "labels": sorted(int(v) for v in np.unique(np.asarray(pred.dataobj)))}


def main(work: Path, names: list[str]) -> None:
    """Set nnU-Net's folders (before it is imported), plan and preprocess, then train and predict each trainer."""
    os.environ.update(nnUNet_raw=str(work / "raw"), nnUNet_preprocessed=str(work / "preprocessed"),
                      nnUNet_results=str(work / "results"), nnUNet_compile="f")
    prepare(work)
    os.environ.update(nnUNet_n_proc_DA="0")  # after planning (which sets torch's threads from it): no worker processes
    for trainer_name in names:
        print("VOXWEIGHT_E2E " + json.dumps(train_and_predict(work, trainer_name)), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:] or TRAINERS)
