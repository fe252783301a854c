"""``voxweight bench``: time voxweight's operations against their baselines on this machine."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` sub-command."""
    from voxweight.bench.registry import CASES, GPU_CASES

    names = ", ".join(f"{name} (GPU)" if name in GPU_CASES else name for name in CASES)
    parser = subparsers.add_parser(
        "bench", help="time each operation next to its baseline (ratios measured in one run)",
        description="Run each voxweight operation interleaved with its baseline (torch, MONAI, scipy, nibabel) "
                    "and print median times, ratios (the median of each interleaved pair's ratio) and targets.",
    )
    parser.add_argument("--size", type=int, default=128, help="edge of the cubic test volumes (default 128)")
    parser.add_argument("--instances", type=int, default=20, help="objects in the U-Net map case (default 20)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per operation (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default="cpu",
                        help="torch device for the loss cases (default cpu; 'cuda' adds the roofline case)")
    parser.add_argument("--cases", nargs="+", metavar="CASE",
                        help=f"run only these cases: {names}")
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON (atomically)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import json
    import platform

    import torch

    from voxweight.bench import BenchConfig, format_results, run_bench
    from voxweight.cli.atomic import atomic_write_text

    for name in ("size", "instances", "repeats", "threads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name}: expected a positive integer, got {getattr(args, name)}")
    config = BenchConfig(args.size, args.instances, args.repeats, args.threads, args.device)
    machine = f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)"
    print(f"voxweight bench on {machine}, size {args.size}^3, {args.repeats} repeats")
    results = run_bench(config, cases=args.cases, progress=lambda name: print(f"  running {name} ..."))
    print(format_results(results))
    if args.json:
        payload = {"machine": machine, "config": vars(config), "results": [r.to_dict() for r in results]}
        atomic_write_text(args.json, json.dumps(payload, indent=2))
    return 0
