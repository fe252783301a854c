"""LabelStats plumbing: JSON (de)serialisation and the torch.distributed reduction."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from voxweight.checks import describe

if TYPE_CHECKING:
    from voxweight.stats.label_stats import LabelStats

FORMAT = "voxweight.LabelStats"
VERSION = 1


def check_num_classes(name: str, value: Any) -> int:
    """Require an int >= 1 (not a bool); return it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name}: expected a positive int, got {describe(value)}")
    if value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value}")
    return int(value)


def stats_to_dict(stats: LabelStats) -> dict[str, Any]:
    """The JSON-ready dict of a LabelStats."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "num_classes": stats.num_classes,
        "images": stats.images,
        "voxels": stats.voxels,
        "positives": stats.positives.tolist(),
        "images_with": stats.images_with.tolist(),
        "skipped": [[path, reason] for path, reason in stats.skipped],
    }


def stats_from_dict(cls: type[LabelStats], payload: Any) -> LabelStats:
    """A LabelStats from :func:`stats_to_dict`'s dict, every field validated."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"data: expected a JSON object with format {FORMAT!r}, got {describe(payload)}")
    if payload.get("version") != VERSION:
        raise ValueError(f"data: expected version {VERSION}, got {payload.get('version')!r}")
    missing = {"num_classes", "images", "voxels", "positives", "images_with"} - payload.keys()
    if missing:
        raise ValueError(f"data: expected the keys {sorted(missing)}, got {sorted(payload)}")
    stats = cls(check_num_classes("data['num_classes']", payload["num_classes"]))
    stats.images = _count("images", payload["images"])
    stats.voxels = _count("voxels", payload["voxels"])
    stats.positives = _vector("positives", payload["positives"], stats.num_classes)
    stats.images_with = _vector("images_with", payload["images_with"], stats.num_classes)
    skipped = payload.get("skipped", [])
    ok = isinstance(skipped, list) and all(
        isinstance(s, list) and len(s) == 2 and all(isinstance(v, str) for v in s) for s in skipped)
    if not ok:
        raise ValueError(f"data['skipped']: expected a list of [path, reason] strings, got {skipped!r}")
    stats.skipped = [(path, reason) for path, reason in skipped]
    return stats


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"data[{name!r}]: expected an int >= 0, got {value!r}")
    return value


def _vector(name: str, value: Any, size: int) -> np.ndarray:
    ok = isinstance(value, list) and len(value) == size and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in value)
    if not ok:
        raise ValueError(f"data[{name!r}]: expected {size} finite numbers >= 0, got {value!r}")
    return np.asarray(value, dtype=np.float64)


def dist_all_reduce(stats: LabelStats, group: Any) -> None:
    """Sum ``stats`` over the ranks of ``group`` in place (a collective: every rank must call it)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("all_reduce: expected an initialised torch.distributed process group "
                           "(call torch.distributed.init_process_group first), got none")
    device = torch.device("cpu")
    if dist.get_backend(group) == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    k = torch.tensor([stats.num_classes, -stats.num_classes], dtype=torch.int64, device=device)
    dist.all_reduce(k, op=dist.ReduceOp.MAX, group=group)
    k_max, k_min = int(k[0]), -int(k[1])
    if k_max != k_min:
        raise ValueError(f"num_classes: expected the same value on every rank, got values from {k_min} to {k_max}; "
                         f"pass the same num_classes to scan_labels/LabelStats on every rank")
    ints = torch.tensor([stats.voxels, stats.images], dtype=torch.int64, device=device)
    floats = torch.from_numpy(np.concatenate([stats.positives, stats.images_with])).to(device)
    dist.all_reduce(ints, group=group)
    dist.all_reduce(floats, group=group)
    gathered: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(gathered, list(stats.skipped), group=group)
    sums = floats.cpu().numpy()
    stats.voxels, stats.images = (int(v) for v in ints.cpu())
    stats.positives = sums[:stats.num_classes].copy()
    stats.images_with = sums[stats.num_classes:].copy()
    stats.skipped = [tuple(item) for part in gathered for item in part]
