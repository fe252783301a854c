"""The trainer folder as nnU-Net sees it, the start-up checks, the install check and ``voxweight nnunet-path``.

Oracles: nnU-Net's own external-trainer search (``recursive_find_python_class`` as
``recursive_find_trainer_class_by_name`` calls it for ``nnUNet_extTrainer``); the installed nnunetv2 metadata;
the folder on disk; nnU-Net's ``nnUNetv2_train`` CLI where timm (hence torchvision) imports.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from types import SimpleNamespace as NS

import pytest

pytest.importorskip("nnunetv2")

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

from voxweight.cli import build_parser
from voxweight.cli.nnunet_path import register
from voxweight.nnunet import check_nnunet, skeleton_recall_loss, trainer_directory
from voxweight.nnunet.build import boundary_weighted_loss, scale_spacings

NAMES = ["nnUNetTrainerVoxweightBoundary", "nnUNetTrainerVoxweightBoundaryLoss", "nnUNetTrainerVoxweightSkeletonRecall"]


def _search(name):
    folder = str(trainer_directory())
    return recursive_find_python_class(folder, name, None, base_folder=folder, cleanup_imports_from_base_folder=True)


@pytest.mark.parametrize("name", NAMES)
def test_nnunets_external_search_finds_every_trainer_by_name(name):
    cls = _search(name)
    assert cls is not None and cls.__name__ == name and issubclass(cls, nnUNetTrainer)
    assert name not in sys.modules  # nnU-Net's cleanup removed the top-level module again
    assert cls.__dict__["_build_loss"] is not nnUNetTrainer._build_loss


def test_the_folder_holds_only_trainer_modules():
    files = sorted(p.name for p in trainer_directory().iterdir() if p.suffix == ".py")
    assert files == [n + ".py" for n in NAMES]
    assert not (trainer_directory() / "__init__.py").exists()
    assert _search("nnUNetTrainerDoesNotExist") is None


def test_check_nnunet_reports_the_installed_version():
    assert check_nnunet() == importlib.metadata.version("nnunetv2")


def test_check_nnunet_names_the_install_line_when_missing_or_old(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.5.1")
    with pytest.raises(ImportError, match=r"got 2\.5\.1.*voxweight\[nnunet\].*Use it in nnU-Net and MONAI"):
        check_nnunet()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"got none installed.*voxweight\[nnunet\]"):
        check_nnunet()


def _fake_trainer(regions=False, unit="mm", scales=([1.0, 1.0, 1.0], [1.0, 0.5, 0.5])):
    return NS(label_manager=NS(has_regions=regions, ignore_label=None), voxweight_sigma_unit=unit,
              configuration_manager=NS(spacing=[3.0, 0.5, 0.5], batch_dice=True),
              _get_deep_supervision_scales=lambda: None if scales is None else [list(s) for s in scales],
              voxweight_weight_srec=1.0, voxweight_tube_radius=2, voxweight_mode="unet", voxweight_w0=10.0,
              voxweight_sigma=5.0, voxweight_ce_reduction="mean", voxweight_backend="auto")


def test_spacings_follow_the_plans_and_the_scales():
    assert scale_spacings(_fake_trainer()) == [(3.0, 0.5, 0.5), (3.0, 1.0, 1.0)]
    assert scale_spacings(_fake_trainer(unit="voxel", scales=None)) == [(1.0, 1.0, 1.0)]
    with pytest.raises(ValueError, match="voxweight_sigma_unit"):
        scale_spacings(_fake_trainer(unit="inch"))


def test_start_up_refuses_what_cannot_work():
    with pytest.raises(ValueError, match=r"region-based.*Skeleton Recall"):
        skeleton_recall_loss(_fake_trainer(regions=True), object())
    with pytest.raises(ValueError, match="_build_loss: expected nnU-Net's DC_and_CE_loss"):
        boundary_weighted_loss(_fake_trainer(), NS(loss=object(), weight_factors=None))
    trainer = _fake_trainer(scales=None)
    trainer.voxweight_mode = "unett"
    stock = NS(dc=None, weight_ce=1, weight_dice=1)
    with pytest.raises(ValueError, match=r"mode.*unet"):
        boundary_weighted_loss(trainer, stock)


def test_nnunet_path_prints_the_folder_and_the_export_line(capsys):
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    for argv, expected in ((["nnunet-path"], str(trainer_directory())),
                           (["nnunet-path", "--export"], f"export nnUNet_extTrainer={trainer_directory()}")):
        args = parser.parse_args(argv)
        assert args.func(args) == 0
        assert capsys.readouterr().out.strip() == expected
    assert build_parser() is not None


TINY = '''
from voxweight.nnunet import trainer_directory
from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

_d = str(trainer_directory())
_base = recursive_find_python_class(_d, "nnUNetTrainerVoxweightBoundary", None, base_folder=_d,
                                    cleanup_imports_from_base_folder=True)


class nnUNetTrainerVoxweightBoundaryCLITiny(_base):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.num_epochs, self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = 1, 2, 1
'''


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("timm") is None,
                    reason="nnunetv2 2.8's trainer resolver imports its Primus trainers, which need timm and so "
                           "torchvision; without them nnUNetv2_train resolves no external trainer")
def test_nnunetv2_train_cli_resolves_the_trainers_from_nnunet_exttrainer(tmp_path):
    import timm  # noqa: F401  (fails here, not in nnU-Net, when torchvision does not match torch)

    from voxweight.study import write_synthetic_study

    write_synthetic_study(tmp_path / "raw" / "Dataset902_VoxweightCLI", "touching", 4, shape=(24, 24, 24))
    extra = tmp_path / "ext"
    extra.mkdir()
    (extra / "tiny_cli_trainer.py").write_text(TINY)
    env = {**os.environ, "nnUNet_raw": str(tmp_path / "raw"), "nnUNet_preprocessed": str(tmp_path / "pre"),
           "nnUNet_results": str(tmp_path / "res"), "nnUNet_compile": "f",
           "nnUNet_extTrainer": os.pathsep.join([str(trainer_directory()), str(extra)])}
    from tests.nnunet.e2e_run import console_command

    subprocess.run([*console_command("nnUNetv2_plan_and_preprocess"), "-d", "902", "-c", "3d_fullres", "-np", "1"],
                   env=env, check=True, capture_output=True)
    code = ("from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name as f; "
            "print(f('nnUNetTrainerVoxweightSkeletonRecall').__name__)")
    found = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert found.stdout.strip().splitlines()[-1] == "nnUNetTrainerVoxweightSkeletonRecall"
    proc = subprocess.run([*console_command("nnUNetv2_train"), "902", "3d_fullres", "all", "-tr",
                           "nnUNetTrainerVoxweightBoundaryCLITiny", "-device", "cpu"], env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = tmp_path / "res" / "Dataset902_VoxweightCLI" / ("nnUNetTrainerVoxweightBoundaryCLITiny__nnUNetPlans__"
                                                          "3d_fullres")
    assert (run / "fold_all" / "checkpoint_final.pth").is_file()
