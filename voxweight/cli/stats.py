"""``voxweight stats``: per-class counts of NIfTI label maps -> pos_weight and class weights."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["format_table", "register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``stats`` sub-command."""
    parser = subparsers.add_parser(
        "stats", help="count classes in label files and print pos_weight and class weights",
        description="Scan NIfTI label maps (value k = class k, background 0 included) and print, per class, "
                    "its voxels, voxel fraction, images containing it, pos_weight (negatives / positives, "
                    "voxel level) and balanced class weight (voxels / (K * class voxels)). Unreadable files "
                    "are skipped and listed unless --strict.",
    )
    parser.add_argument("labels", nargs="+", metavar="LABELS",
                        help="label files (.nii, .nii.gz) or directories holding them")
    parser.add_argument("--num-classes", type=int, metavar="K",
                        help="number of classes (default: largest label + 1)")
    parser.add_argument("--workers", type=int, default=1, metavar="W", help="reader processes (default 1)")
    parser.add_argument("--json", metavar="OUT",
                        help="write the counts (LabelStats.from_json reads them) and weights as JSON, atomically")
    parser.add_argument("--strict", action="store_true", help="stop at the first unreadable file")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import json
    import warnings

    from voxweight.cli.atomic import atomic_write_text
    from voxweight.stats import scan_labels

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="scan_labels: skipped", category=UserWarning)
        stats = scan_labels(args.labels, num_classes=args.num_classes, workers=args.workers,
                            progress=not args.no_progress, strict=args.strict)
    print(format_table(stats))
    for path, reason in stats.skipped:
        print(f"voxweight stats: skipped {path}: {reason}", file=sys.stderr)
    if args.json:
        payload = json.loads(stats.to_json())
        payload.update(_weights(stats))
        atomic_write_text(args.json, json.dumps(payload, indent=2) + "\n")
    return 0


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
