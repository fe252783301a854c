"""``voxweight stats``: per-class counts of NIfTI label maps -> pos_weight and class weights."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["format_table", "register", "summary"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``stats`` sub-command."""
    parser = subparsers.add_parser(
        "stats", help="count classes in label files and print pos_weight and class weights",
        description="Scan NIfTI label maps (value k = class k, background 0 included) and print, per class, "
                    "its voxels, voxel fraction, images containing it, pos_weight (negatives / positives, "
                    "voxel level) and balanced class weight (voxels / (K * class voxels)). Unreadable files "
                    "are skipped and listed (stderr, and the JSON), and make the exit code 1 unless --allow-skipped; "
                    "--strict stops at the first one. Under torchrun (torchrun --nproc-per-node N -m voxweight "
                    "stats ...) each rank counts its share of the files and rank 0 alone prints and writes the "
                    "same output as one process. With --roi-size it also prints the prevalence inside the training "
                    "crops (RandCropByPosNegLabeld's --pos/--neg, or nnU-Net's --oversample-foreground) and the "
                    "weights that balance them.",
    )
    parser.add_argument("labels", nargs="+", metavar="LABELS",
                        help="label files (.nii, .nii.gz) or directories holding them")
    parser.add_argument("--num-classes", type=int, metavar="K",
                        help="number of classes (default: largest label + 1)")
    parser.add_argument("--workers", type=int, default=1, metavar="W", help="reader processes (default 1)")
    parser.add_argument("--json", metavar="OUT",
                        help="write the counts (LabelStats.from_json reads them) and weights as JSON, atomically")
    parser.add_argument("--strict", action="store_true", help="stop at the first unreadable file")
    parser.add_argument("--allow-skipped", action="store_true",
                        help="exit 0 even when files were skipped (they are still listed)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    crops = parser.add_argument_group("what the loss sees in training crops (voxweight.crop_prevalence)")
    crops.add_argument("--roi-size", type=int, nargs="+", metavar="N",
                       help="crop size in voxels (one per axis): also print the crops' prevalence and weights")
    crops.add_argument("--pos", type=float, default=1.0, help="RandCropByPosNegLabeld's pos (default 1)")
    crops.add_argument("--neg", type=float, default=1.0, help="RandCropByPosNegLabeld's neg (default 1)")
    crops.add_argument("--oversample-foreground", type=float, metavar="F",
                       help="nnU-Net's rule instead: this fraction of crops forced to hold foreground")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    """Under torchrun: join the ranks (gloo) for the scan; rank 0 reports, the others stay quiet."""
    from voxweight.cli.atomic import DataError, UsageError
    from voxweight.stats.distributed import torchrun_process_group

    with torchrun_process_group("gloo") as (rank, _):
        try:
            return _stats(args, rank)
        except UsageError:
            if rank == 0:
                raise
            return 2
        except (DataError, ValueError, TypeError, OSError):  # raised on every rank: rank 0 prints it
            if rank == 0:
                raise
            return 1


def _stats(args: argparse.Namespace, rank: int) -> int:
    import json
    import warnings

    from voxweight.cli.atomic import DataError, atomic_write_text, check_not_an_input, quiet_broken_pipe
    from voxweight.stats import list_label_files, scan_labels

    files = list_label_files(args.labels)
    check_not_an_input("--json", args.json, files)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="scan_labels: skipped", category=UserWarning)
        try:
            stats = scan_labels(files, num_classes=args.num_classes, workers=args.workers,
                                progress=not args.no_progress, strict=args.strict)
        except ValueError as err:
            first = f"(first: {files[0]}: "
            if len(files) == 1 and first in str(err):  # the only file is unreadable: name it first
                raise DataError(files[0], str(err).split(first, 1)[1].removesuffix(")")) from None
            raise
    code = 1 if stats.skipped and not args.allow_skipped else 0
    if rank != 0:  # every rank holds the same stats (and exit code); rank 0 alone writes and prints
        return code
    crops = _crops(args, files, stats)
    if args.json:
        payload = json.loads(stats.to_json())
        payload.update(_weights(stats))
        if crops is not None:
            payload["crops"] = {**json.loads(crops.to_json()), **_weights(crops), "roi_size": args.roi_size,
                                "pos": args.pos, "neg": args.neg, "oversample_foreground": args.oversample_foreground}
        atomic_write_text(args.json, json.dumps(payload, indent=2) + "\n")
    for path, reason in stats.skipped:
        print(f"voxweight stats: skipped {path}: {reason}", file=sys.stderr)
    try:
        print(format_table(stats))
        if crops is not None:
            from voxweight.stats import format_prevalence

            print(f"\ntraining crops {args.roi_size}, " + (f"oversample_foreground {args.oversample_foreground:g}"
                  if args.oversample_foreground is not None else f"pos {args.pos:g} / neg {args.neg:g}") +
                  " (expected counts; the crops' weights balance what the loss sees):")
            print(format_prevalence(stats, crops))
        print(summary(len(files), len(stats.skipped), allowed=args.allow_skipped))
        sys.stdout.flush()
    except BrokenPipeError:  # `voxweight stats ... | head`: the reader has what it wanted
        quiet_broken_pipe()
    return code


def _crops(args: argparse.Namespace, files: list[str], stats: Any) -> Any:
    """The crops' expected counts (:func:`voxweight.crop_prevalence`) over the counted files, or None."""
    if args.roi_size is None:
        for flag, value, default in (("--pos", args.pos, 1.0), ("--neg", args.neg, 1.0),
                                     ("--oversample-foreground", args.oversample_foreground, None)):
            if value != default:
                from voxweight.cli.atomic import UsageError

                raise UsageError(f"{flag}: needs --roi-size (the crop size), got {flag} {value:g} without it")
        return None
    from voxweight.stats import crop_prevalence

    skipped = {path for path, _ in stats.skipped}
    return crop_prevalence([f for f in files if f not in skipped], roi_size=args.roi_size, pos=args.pos,
                           neg=args.neg, num_classes=stats.num_classes,
                           oversample_foreground=args.oversample_foreground)


def summary(files: int, skipped: int, *, allowed: bool = False) -> str:
    """The line after the table: how many files were counted and how many skipped (and what that means).

    Example:
        >>> summary(3, 0)
        'counted 3 of 3 files, skipped 0'
        >>> summary(3, 1)
        'counted 2 of 3 files, skipped 1 (each named on stderr; exit code 1, --allow-skipped accepts them)'
    """
    line = f"counted {files - skipped} of {files} files, skipped {skipped}"
    if skipped:
        line += " (each named on stderr" + ("; allowed by --allow-skipped)" if allowed else
                                    "; exit code 1, --allow-skipped accepts them)")
    return line


def _weights(stats: Any) -> dict[str, list[float | None]]:
    """Voxel-level pos_weight and balanced class weight per class; ``None`` for a class never seen."""
    absent = stats.positives == 0
    pos = stats.pos_weight(absent="skip").tolist()
    balanced = stats.class_weight("balanced", absent="skip").tolist()
    return {
        "pos_weight": [None if a else w for a, w in zip(absent, pos, strict=True)],
        "class_weight_balanced": [None if a else w for a, w in zip(absent, balanced, strict=True)],
    }


def format_table(stats: Any) -> str:
    """The per-class table ``voxweight stats`` prints for a :class:`voxweight.LabelStats`.

    Example:
        >>> import numpy as np
        >>> from voxweight import LabelStats
        >>> from voxweight.cli.stats import format_table
        >>> stats = LabelStats(3)
        >>> stats.update_labels(np.array([0, 0, 0, 1]))
        >>> print(format_table(stats))
        1 image, 4 voxels, 3 classes (class 0 is background in label maps)
        class  voxels  fraction  images  pos_weight  class_weight
            0       3  0.750000       1      0.3333        0.4444
            1       1  0.250000       1      3.0000        1.3333
            2       0  0.000000       0      absent        absent
    """
    weights = _weights(stats)
    header = ("class", "voxels", "fraction", "images", "pos_weight", "class_weight")
    rows = []
    for c in range(stats.num_classes):
        pos, cw = weights["pos_weight"][c], weights["class_weight_balanced"][c]
        rows.append((str(c), _count(stats.positives[c]), f"{stats.positives[c] / stats.voxels:.6f}",
                     _count(stats.images_with[c]), "absent" if pos is None else f"{pos:.4f}",
                     "absent" if cw is None else f"{cw:.4f}"))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    images = f"{stats.images} image{'s' if stats.images != 1 else ''}"
    title = f"{images}, {stats.voxels:,} voxels, {stats.num_classes} classes (class 0 is background in label maps)"
    return "\n".join([title, *lines])


def _count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
