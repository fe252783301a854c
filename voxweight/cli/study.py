"""``voxweight study``: which weighting helps on your data (or a synthetic set), measured across seeds."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

__all__ = ["register"]

SYNTHETIC_CASES = 8  # cases of a --synthetic dataset
SYNTHETIC_SHAPE = (48, 48, 24)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``study`` sub-command."""
    parser = subparsers.add_parser(
        "study", help="compare weighting recipes on your NIfTI dataset across seeds, on held-out volumes",
        description="Train the same MONAI U-Net with each recipe (loss + maps + calibration, --recipes help lists "
                    "them) on pos/neg crops of the training cases, for several seeds (each seed its own held-out "
                    "split, initialisation and batches, the same for every recipe), and report on the held-out "
                    "volumes (sliding-window inference): Dice at 0.5 after the sampler-aware debiasing, best-"
                    "threshold Dice, average precision, HD95, surface Dice, calibration error, object F1 and "
                    "split rate (instance data), Betti-0 error and clDice (tubular data), as mean ± sd over seeds "
                    "with each recipe's paired difference from bce and whether it is beyond the seed noise.",
    )
    parser.add_argument("data", nargs="?", metavar="DATA",
                        help="dataset folder with imagesTr/ and labelsTr/ (MSD / nnU-Net raw layout)")
    parser.add_argument("--synthetic", metavar="KIND", help="a built-in synthetic set instead: blobs, touching or "
                        "vessels (instance maps for blobs and touching)")
    parser.add_argument("--recipes", nargs="+", metavar="NAME", help="recipes to compare ('help' lists them; bce, "
                        "the baseline, is always run)")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    parser.add_argument("--steps", type=int, help="optimiser steps per run (default 400)")
    parser.add_argument("--roi-size", type=int, nargs=3, metavar="N", help="training crop and sliding window "
                        "(default 32 32 16)")
    parser.add_argument("--tubular", action="store_true", help="thin structures: also report Betti-0 error and clDice "
                        "and default to the tubular recipes (implied by --synthetic vessels)")
    parser.add_argument("--tolerance", type=float, default=1.0, metavar="MM", help="surface Dice tolerance in mm")
    parser.add_argument("--out", metavar="DIR", help="keep the predictions (NIfTI, the images' affines) and "
                        "study.png here (default: a new temporary folder)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--json", metavar="OUT", help="write the result as JSON (atomically, at the end)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from voxweight.cli.atomic import UsageError, check_not_an_input, check_suffix

    if args.recipes == ["help"]:
        from voxweight.study.recipes import recipe_help

        print(recipe_help())
        return 0
    if (args.data is None) == (args.synthetic is None):
        raise UsageError("expected a DATA folder or --synthetic KIND (one of them)")
    if args.json is not None:
        check_suffix("--json", args.json, (".json",))
        check_not_an_input("--json", args.json, [args.data])
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="voxweight-study-"))
    data = args.data if args.data is not None else _synthetic(args.synthetic, out)
    result = _study(args, data, out)
    print(result.format_table())
    print(f"{len(result.seeds)} seed(s), {result.metadata['steps']} steps per run, {result.metadata['seconds']:.0f} s; "
          f"figure: {out / 'study.png'}; predictions: {out / 'predictions'}")
    if len(result.seeds) == 1:
        print("one seed is noisy: voxweight study --seeds 3 (or more) measures whether a difference is real")
    if args.json is not None:
        result.save_json(args.json)
    return 0


def _synthetic(kind: str, out: Path) -> Path:
    from voxweight.study.data import write_synthetic_study

    return write_synthetic_study(out / f"synthetic_{kind}", kind, SYNTHETIC_CASES, shape=SYNTHETIC_SHAPE)


def _study(args: argparse.Namespace, data: str | Path, out: Path):
    from voxweight.cli.progress import run_bars
    from voxweight.study.recipes import TUBULAR_RECIPES
    from voxweight.study.run import DEFAULT_ROI, DEFAULT_STEPS, run_study

    tubular = args.tubular or args.synthetic == "vessels"
    recipes = args.recipes if args.recipes or not tubular else list(TUBULAR_RECIPES)
    with run_bars(not args.no_progress) as progress:
        return run_study(data, recipes, seeds=args.seeds, steps=args.steps or DEFAULT_STEPS,
                         roi_size=tuple(args.roi_size) if args.roi_size else DEFAULT_ROI, device=args.device,
                         out_dir=out, tolerance_mm=args.tolerance, tubular=tubular or None, progress=progress)
