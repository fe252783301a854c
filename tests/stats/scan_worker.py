"""The ranks of tests/stats/test_scan_distributed.py (importable by spawned processes).

A rank runs, in order, every case it is given: a ``scan_labels`` call (its paths and options, which may
differ by rank) or a ``voxweight stats`` command line, and records what came back (the stats as JSON, or
the error), the warnings, the files it read itself and, for the command, its exit code and output.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch.distributed as dist

from voxweight import scan_labels
from voxweight.cli import main
from voxweight.stats import scan

WORLD = 2


def _scan(paths: Any, options: dict[str, Any]) -> dict[str, Any]:
    try:
        return {"stats": scan_labels(paths, progress=False, **options).to_json()}
    except (ValueError, TypeError, OSError) as err:
        return {"error": f"{type(err).__name__}: {err}"}


def _command(argv: list[str]) -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def run(rank: int, init_file: str, out_dir: str, cases: dict[str, list[tuple[str, Any, dict[str, Any]]]]) -> None:
    """One rank: ``cases[name][rank]`` is ``("scan", paths, options)`` or ``("cli", argv, {})``."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=60))
    read: list[str] = []
    count = scan.stream_label_counts

    def recording(path: str, *args: Any) -> Any:
        read.append(path)
        return count(path, *args)

    scan.stream_label_counts = recording  # workers=1: the files are read in this process
    try:
        results: dict[str, Any] = {}
        for name, per_rank in cases.items():
            kind, what, options = per_rank[rank]
            read.clear()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = _scan(what, options) if kind == "scan" else _command(what)
            result["read"] = list(read)
            result["warnings"] = [str(w.message) for w in caught if w.category is UserWarning]
            results[name] = result
        results["initialised_after"] = dist.is_initialized()  # the command left the test's group alone
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(results))
    finally:
        scan.stream_label_counts = count
        dist.destroy_process_group()
