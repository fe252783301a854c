"""``voxweight nnunet-path``: the folder of the voxweight nnU-Net trainers, for ``nnUNet_extTrainer``."""

from __future__ import annotations

import argparse
import shlex

__all__ = ["export_line", "register"]


def export_line(directory: str) -> str:
    """The shell line that points nnU-Net at ``directory``.

    Example:
        >>> export_line("/opt/my trainers")
        "export nnUNet_extTrainer='/opt/my trainers'"
    """
    return f"export nnUNet_extTrainer={shlex.quote(directory)}"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``nnunet-path`` sub-command."""
    parser = subparsers.add_parser(
        "nnunet-path", help="print the folder of the voxweight nnU-Net trainers (for nnUNet_extTrainer)",
        description="Print the folder holding nnUNetTrainerVoxweightBoundary, nnUNetTrainerVoxweightSkeletonRecall "
                    "and nnUNetTrainerVoxweightBoundaryLoss. nnU-Net (>= 2.8) searches the folders in "
                    "nnUNet_extTrainer for trainers it does not ship: eval \"$(voxweight nnunet-path --export)\", "
                    "then nnUNetv2_train DATASET 3d_fullres 0 -tr nnUNetTrainerVoxweightBoundary.",
    )
    parser.add_argument("--export", action="store_true",
                        help="print a shell line 'export nnUNet_extTrainer=<folder>' instead of the bare folder")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from voxweight.nnunet.paths import trainer_directory

    folder = str(trainer_directory())
    print(export_line(folder) if args.export else folder)
    return 0
