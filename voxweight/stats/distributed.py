"""Summing label counts over the ranks of a ``torch.distributed`` group (one collective per kind of count).

:meth:`voxweight.LabelStats.all_reduce` wraps :func:`all_reduce_counts`, which works on plain counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["all_reduce_counts"]


def all_reduce_counts(num_classes: int, voxels: int, images: int, positives: np.ndarray, images_with: np.ndarray,
                      skipped: Sequence[tuple[str, str]], group: Any = None
                      ) -> tuple[int, int, np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Sum label counts over the ranks of ``group`` (a collective: every rank must call it).

    Ranks first agree on ``num_classes`` (a MAX reduction of ``K`` and ``-K``), so a mismatch raises the
    same error on every rank instead of hanging one. Counts then travel as one int64 tensor
    ``[voxels, images]`` and one float64 tensor ``[positives, images_with]`` (on the current CUDA device
    for NCCL, on CPU otherwise); the skipped files are gathered as objects, in rank order.

    Args:
        num_classes: number of classes ``K`` (the same on every rank).
        voxels: voxels counted on this rank.
        images: images counted on this rank.
        positives: positive voxels per class on this rank.
        images_with: images containing each class on this rank.
        skipped: ``(path, reason)`` of the files this rank could not count.
        group: the process group (``None``: the default group).

    Returns:
        ``(voxels, images, positives, images_with, skipped)`` summed over the ranks: new arrays and a new
        list, the inputs are left as they were.

    Raises:
        RuntimeError: if no process group is initialised.
        ValueError: on every rank, if ranks disagree on ``num_classes``.

    Shape:
        - positives, images_with: ``[K]`` (inputs and outputs).

    Example:
        >>> import torch.distributed as dist
        >>> dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
        >>> all_reduce_counts(2, 4, 1, np.array([3.0, 1.0]), np.array([1.0, 1.0]), [])
        (4, 1, array([3., 1.]), array([1., 1.]), [])
        >>> dist.destroy_process_group()
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("all_reduce: expected an initialised torch.distributed process group "
                           "(call torch.distributed.init_process_group first), got none")
    device = torch.device("cpu")
    if dist.get_backend(group) == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    k = torch.tensor([num_classes, -num_classes], dtype=torch.int64, device=device)
    dist.all_reduce(k, op=dist.ReduceOp.MAX, group=group)
    k_max, k_min = int(k[0]), -int(k[1])
    if k_max != k_min:
        raise ValueError(f"num_classes: expected the same value on every rank, got values from {k_min} to {k_max}; "
                         f"pass the same num_classes to scan_labels/LabelStats on every rank")
    ints = torch.tensor([voxels, images], dtype=torch.int64, device=device)
    floats = torch.from_numpy(np.concatenate([positives, images_with]).astype(np.float64, copy=False)).to(device)
    dist.all_reduce(ints, group=group)
    dist.all_reduce(floats, group=group)
    gathered: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(gathered, list(skipped), group=group)
    sums = floats.cpu().numpy()
    total_voxels, total_images = (int(v) for v in ints.cpu())
    all_skipped = [tuple(item) for part in gathered for item in part]
    return total_voxels, total_images, sums[:num_classes].copy(), sums[num_classes:].copy(), all_skipped
