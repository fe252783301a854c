"""Bench case ``nnunet``: one nnU-Net training iteration with ``nnUNetTrainerVoxweightBoundary`` vs stock nnU-Net.

Both trainers are built from the same small plans (a 3-D ``PlainConvUNet`` with deep supervision, nnU-Net's
``DC_and_CE_loss``) on the CPU, with the same initial weights, and run ``train_step`` (forward, loss, backward,
clip, SGD step) on the same batch: a ``[2, 1, size^3]`` image and touching objects as labels, downsampled to
every deep-supervision scale as nnU-Net's data pipeline does. The voxweight step adds the boundary map of each
scale's target (U-Net mode, ``edt`` on the CPU). Target: ratio <= 1.15. Needs nnunetv2 (``voxweight[nnunet]``).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from voxweight.bench.harness import BenchConfig, BenchResult, time_paired

__all__ = ["bench_nnunet", "tiny_plans"]

_FOLDERS = ("nnUNet_results", "nnUNet_preprocessed")


def tiny_plans(size: int) -> dict[str, Any]:
    """nnU-Net plans for one ``3d_fullres`` configuration: patch ``size^3``, 3 stages of 16/32/64 features.

    Example:
        >>> tiny_plans(16)["configurations"]["3d_fullres"]["patch_size"]
        [16, 16, 16]
    """
    arch = {"n_stages": 3, "features_per_stage": [16, 32, 64], "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [[3, 3, 3]] * 3, "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
            "n_conv_per_stage": [2, 2, 2], "n_conv_per_stage_decoder": [2, 2], "conv_bias": True,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d", "norm_op_kwargs": {"eps": 1e-5, "affine": True},
            "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True}}
    config = {"data_identifier": "nnUNetPlans_3d_fullres", "preprocessor_name": "DefaultPreprocessor",
              "batch_size": 2, "patch_size": [size] * 3, "median_image_size_in_voxels": [size] * 3,
              "spacing": [1.0, 1.0, 1.0], "normalization_schemes": ["ZScoreNormalization"],
              "use_mask_for_norm": [False], "batch_dice": False,
              "architecture": {"network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                               "arch_kwargs": arch, "_kw_requires_import": ["conv_op", "norm_op", "dropout_op",
                                                                            "nonlin"]}}
    return {"dataset_name": "Dataset999_VoxweightBench", "plans_name": "nnUNetPlans",
            "original_median_spacing_after_transp": [1.0] * 3, "original_median_shape_after_transp": [size] * 3,
            "image_reader_writer": "SimpleITKIO", "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
            "configurations": {"3d_fullres": config}, "experiment_planner_used": "ExperimentPlanner",
            "label_manager": "LabelManager", "foreground_intensity_properties_per_channel": {}}


def _trainer(cls: type, size: int) -> Any:
    """An initialised trainer of ``cls`` on the CPU from :func:`tiny_plans`, seeded weights."""
    import torch

    dataset = {"channel_names": {"0": "synthetic"}, "labels": {"background": 0, "foreground": 1},
               "numTraining": 1, "file_ending": ".nii.gz"}
    torch.manual_seed(0)
    trainer = cls({**tiny_plans(size), "continue_training": False}, "3d_fullres", 0, dataset, torch.device("cpu"))
    trainer.initialize()
    return trainer


def _batch(size: int) -> dict[str, Any]:
    """A fixed image and touching-blob labels, the labels at every scale (nearest-exact, as nnU-Net)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(1)
    label = torch.zeros(2, 1, size, size, size)
    h = size // 2
    label[:, :, 2:h, 2:h, 2:-2] = 1
    label[:, :, h:-2, 2:-2, 2:h] = 1  # touches the first box: one component
    data = label + 0.5 * torch.randn(2, 1, size, size, size, generator=g)
    scales = [size, size // 2]  # 3 stages: 2 deep-supervision outputs
    return {"data": data, "target": [F.interpolate(label, size=(s,) * 3, mode="nearest-exact") for s in scales]}


def bench_nnunet(config: BenchConfig) -> list[BenchResult]:
    """``train_step`` of ``nnUNetTrainerVoxweightBoundary`` vs ``nnUNetTrainer`` on one batch (target <= 1.15).

    Raises:
        ImportError: without nnunetv2 >= 2.8 (the message names ``pip install 'voxweight[nnunet]'``).
    """
    from voxweight.nnunet.paths import check_nnunet

    check_nnunet()
    saved = {k: os.environ.get(k) for k in _FOLDERS}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            timing, e = _timed(config, tmp)
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    note = "PlainConvUNet 16/32/64, batch 2, 2 deep-supervision scales; unet map w0=10, sigma=5 on the CPU"
    return [BenchResult.timed(f"nnU-Net train_step [2,1,{e}^3]", "nnUNetTrainer (stock Dice + CE)", timing, 1.15,
                              note)]


def _timed(config: BenchConfig, tmp: str) -> tuple[Any, int]:
    """Both trainers built with nnU-Net's folders in ``tmp`` (2.8 reads them when used), and their timing."""
    from pathlib import Path

    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    from voxweight.nnunet.paths import trainer_directory

    os.environ.update(nnUNet_results=tmp, nnUNet_preprocessed=tmp)  # the trainers write their logs there
    data = Path(tmp) / "Dataset999_VoxweightBench" / "nnUNetPlans_3d_fullres"
    data.mkdir(parents=True)
    (data / "case.npz").touch()  # initialize() only reads the file ending (no data is loaded)
    folder = str(trainer_directory())
    ours = recursive_find_python_class(folder, "nnUNetTrainerVoxweightBoundary", None, base_folder=folder,
                                       cleanup_imports_from_base_folder=True)
    e = min(64, max(16, config.size // 4 * 4))
    stock, voxweight = _trainer(nnUNetTrainer, e), _trainer(ours, e)
    batch = _batch(e)
    return time_paired(lambda: stock.train_step(batch), lambda: voxweight.train_step(batch), config.repeats), e
