"""Label counts over the ranks of a ``torch.distributed`` group: sums, shards, and torchrun's process group.

:meth:`voxweight.LabelStats.all_reduce` wraps :func:`all_reduce_counts`, which works on plain counts;
:func:`voxweight.scan_labels` splits its files by :func:`shard_rank` and agrees with the other ranks through
:func:`all_gather_objects`; ``voxweight stats`` joins torchrun's ranks with :func:`torchrun_process_group`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["TORCHRUN_ENV", "all_gather_objects", "all_reduce_counts", "all_reduce_weight_mass", "shard_rank",
           "torchrun_process_group"]

# The variables torchrun (and torch.distributed.launch) set for each rank it starts.
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR")


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
    device = _device(group)
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


def all_reduce_weight_mass(num_classes: int, images: int, weight_mass: np.ndarray | None, group: Any = None
                           ) -> np.ndarray | None:
    r"""Sum the label-weight mass per class over the ranks of ``group`` (a collective: every rank must call it).

    .. math::

        \mathrm{weight\_mass}_c = \sum_{\mathrm{ranks}\ r} \mathrm{weight\_mass}_{r,c}

    Ranks agree first (a MAX reduction of two flags: "has a mass", "has none but counted images"), so
    the outcome is the same on every rank: ``None`` when no rank has a mass, the sum when every rank that
    counted images has one (a rank without a mass that counted no image adds zero), else a ``ValueError``
    on every rank. Call it with ``num_classes`` agreed (:func:`all_reduce_counts` checks it).

    Args:
        num_classes: number of classes ``K`` (the same on every rank).
        images: images counted on this rank.
        weight_mass: this rank's mass per class, or ``None``.
        group: the process group (``None``: the default group).

    Returns:
        A new float64 ``[K]`` sum, or ``None``; the input is left as it was.

    Raises:
        RuntimeError: if no process group is initialised.
        ValueError: on every rank, if a rank has a mass and another, which counted images, has none.

    Shape:
        - weight_mass: ``[K]`` (input and output).

    Example:
        >>> import torch.distributed as dist
        >>> dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
        >>> all_reduce_weight_mass(2, 1, np.array([1.5, 4.0])), all_reduce_weight_mass(2, 1, None)
        (array([1.5, 4. ]), None)
        >>> dist.destroy_process_group()
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("all_reduce: expected an initialised torch.distributed process group "
                           "(call torch.distributed.init_process_group first), got none")
    device = _device(group)
    flags = torch.tensor([weight_mass is not None, weight_mass is None and images > 0], dtype=torch.int64,
                         device=device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX, group=group)
    some_have, some_lack = (bool(v) for v in flags.cpu())
    if some_have and some_lack:
        raise ValueError("weight_mass: expected one on every rank that counted images or on none, got one on some "
                         "ranks only; count every rank's samples with from_pipeline and a weight map")
    if not some_have:
        return None
    local = np.zeros(num_classes) if weight_mass is None else np.asarray(weight_mass, dtype=np.float64)
    total = torch.from_numpy(local.copy()).to(device)
    dist.all_reduce(total, group=group)
    return total.cpu().numpy()


def _device(group: Any) -> torch.device:
    """Where a collective's tensors go: the current CUDA device for NCCL, else the CPU."""
    import torch.distributed as dist

    if dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def shard_rank(shard: bool | None) -> tuple[int, int]:
    """``(rank, world_size)`` of this process for a scan split by rank; ``(0, 1)`` for a scan alone.

    Args:
        shard: ``None`` splits when a default process group is initialised, ``True`` requires one,
            ``False`` never splits.

    Returns:
        The rank and world size of the default group, or ``(0, 1)``.

    Raises:
        ValueError: for ``shard=True`` without an initialised process group.

    Example:
        >>> shard_rank(None), shard_rank(False)  # no process group here
        ((0, 1), (0, 1))
    """
    import torch.distributed as dist

    initialised = dist.is_available() and dist.is_initialized()
    if shard is False or (shard is None and not initialised):
        return 0, 1
    if not initialised:
        raise ValueError("shard: expected an initialised torch.distributed process group for shard=True "
                         "(call torch.distributed.init_process_group first, or launch with torchrun), got none; "
                         "pass shard=None to scan alone when there is none")
    return dist.get_rank(), dist.get_world_size()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order: a collective of the default group.

    Args:
        obj: this rank's contribution.

    Returns:
        ``[obj of rank 0, obj of rank 1, ...]``, the same list on every rank.

    Example:
        >>> import torch.distributed as dist
        >>> dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
        >>> all_gather_objects({"files": 3})
        [{'files': 3}]
        >>> dist.destroy_process_group()
    """
    import torch.distributed as dist

    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


@contextlib.contextmanager
def torchrun_process_group(backend: str = "gloo") -> Iterator[tuple[int, int]]:
    """Join the ranks torchrun started for the duration of a block; ``(rank, world_size)`` inside it.

    When this process was started by torchrun (``RANK``, ``WORLD_SIZE`` and ``MASTER_ADDR`` are set) and
    no process group exists yet, the default group is initialised from that environment (``env://``) and
    destroyed when the block ends, however it ends. An existing group is used as it is (and left alone);
    without torchrun's variables nothing is initialised and the block runs as rank 0 of 1.

    Args:
        backend: the backend of a group this function initialises (``"gloo"``: counts travel on CPU).

    Yields:
        This process's rank and the world size.

    Example:
        >>> with torchrun_process_group() as (rank, world):  # not under torchrun: alone
        ...     rank, world
        (0, 1)
    """
    import torch.distributed as dist

    if not dist.is_available():
        yield 0, 1
        return
    if dist.is_initialized():
        yield dist.get_rank(), dist.get_world_size()
        return
    if not all(name in os.environ for name in TORCHRUN_ENV):
        yield 0, 1
        return
    dist.init_process_group(backend, init_method="env://")
    try:
        yield dist.get_rank(), dist.get_world_size()
    finally:
        dist.destroy_process_group()
