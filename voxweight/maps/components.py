"""Connected-component labelling in torch, on the tensor's device, batched over leading dims (no host copy).

Full connectivity: two foreground voxels are neighbours when every coordinate differs by at most 1
(8 neighbours in 2-D, 26 in 3-D, ``3^d - 1`` in ``d`` dims), as ``scipy.ndimage.label`` with
``structure=np.ones((3,) * d)``.

Method: iterated min-label propagation on the ``F`` foreground voxels, numbered ``0..F-1`` in raster
order; each starts as its own parent. Each round writes the parents into the grid (the sentinel ``F``
on the background), takes every voxel's minimum over its ``3^d`` box (separable: a shifted minimum pair
per axis), hooks each voxel's parent to that minimum (``scatter_reduce`` ``amin``) and jumps pointers
(``parent = parent[parent]``), so that long chains (snakes, spirals) collapse in a few rounds. A parent
only decreases and always names a voxel of the same component, so at the fixed point every voxel points
to its component's first voxel in raster order. Those roots are then numbered ``1..K`` per volume in
order (a cumulative sum), so the result equals scipy's exactly. The fixed point is checked every
``CHECK_EVERY`` rounds (one host sync each); int32 parents where the grid allows (half the memory traffic).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.ndimage as ndi
import torch

from voxweight._validate import check_flag, check_positive_int, describe, look_up_option

__all__ = ["CHECK_EVERY", "HOST_DEVICES", "component_counts", "connected_components"]

CHECK_EVERY = 2  # rounds between two convergence checks (each a host-device sync)
HOST_DEVICES = ("cpu",)  # device types whose tensors backend="auto" labels with scipy (their memory is the host's)


def connected_components(mask: torch.Tensor, spatial_dims: int, *, per_volume: bool = True,
                         backend: str = "auto") -> torch.Tensor:
    """Label the connected components of each volume of ``mask``, full connectivity, ids ``1..K`` per volume.

    Components are numbered in the raster (C) order of their first voxel, each volume from 1, background 0:
    the same array as ``scipy.ndimage.label(m, structure=np.ones((3,) * spatial_dims))`` for each volume
    ``m``. ``backend="torch"`` runs on ``mask``'s device with torch ops only (the only host syncs are the
    convergence checks); ``"scipy"`` labels a host copy with ``scipy.ndimage.label`` (one call for the whole
    batch, a structure that joins no two volumes); ``"auto"`` takes scipy for a CPU tensor (no copy, and
    several times faster than the propagation there: ``HOST_DEVICES``), torch on any other device.

    Args:
        mask: tensor ``[..., *spatial]``, non-zero is foreground (bool, integer or float).
        spatial_dims: number of trailing spatial axes (1 or more); leading axes index independent volumes.
        per_volume: number each volume from 1; False numbers the components ``1..K`` over the whole batch
            (volume after volume, each in raster order), so that ids never repeat across volumes.
        backend: ``"auto"``, ``"torch"`` or ``"scipy"``; the same ids either way.

    Returns:
        int64 tensor of ``mask``'s shape on its device: 0 on the background, ``1..K`` on the ``K`` components.

    Raises:
        TypeError: for a ``mask`` that is not a tensor (or is complex), or a non-integer ``spatial_dims``.
        ValueError: for ``spatial_dims`` outside ``[1, mask.ndim]``.

    Shape:
        - mask: ``[..., *spatial]``; output: the same.

    Example:
        >>> connected_components(torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 1, 0]]), 2)  # diagonal: joined
        tensor([[1, 0, 0],
                [0, 1, 0],
                [0, 0, 0],
                [2, 2, 0]])
        >>> connected_components(torch.tensor([[1, 0, 1], [0, 1, 1]]), 1)  # two 1-D volumes
        tensor([[1, 0, 2],
                [0, 1, 1]])
        >>> connected_components(torch.tensor([[1, 0, 1], [0, 1, 1]]), 1, per_volume=False)
        tensor([[1, 0, 2],
                [0, 3, 3]])
    """
    fg = _foreground(mask, spatial_dims)
    per_volume = check_flag("per_volume", per_volume, expected="a bool")
    backend = look_up_option("backend", backend, ("auto", "torch", "scipy"))
    if fg.numel() == 0:
        return torch.zeros(fg.shape, dtype=torch.int64, device=fg.device)
    if backend == "scipy" or (backend == "auto" and fg.device.type in HOST_DEVICES):
        return _scipy_labels(fg, spatial_dims, per_volume)
    where, parent = _converge(fg, spatial_dims)
    return _renumber(fg, where, parent, spatial_dims if per_volume else fg.ndim)


def component_counts(labels: torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """Number of components per volume of a :func:`connected_components` result (its largest id).

    Args:
        labels: int64 ids ``[..., *spatial]`` numbered ``1..K`` per volume (0 background).
        spatial_dims: number of trailing spatial axes.

    Returns:
        int64 tensor ``[...]`` (the leading shape) on ``labels``' device; 0 for an empty volume.

    Shape:
        - labels: ``[..., *spatial]``; output: ``[...]``.

    Example:
        >>> component_counts(connected_components(torch.tensor([[1, 0, 1], [0, 0, 0]]), 1), 1)
        tensor([2, 0])
    """
    lead = labels.shape[:labels.ndim - spatial_dims]
    if labels.numel() == 0:
        return torch.zeros(lead, dtype=torch.int64, device=labels.device)
    return labels.reshape(*lead, -1).amax(dim=-1)


def _foreground(mask: Any, spatial_dims: Any) -> torch.Tensor:
    """``mask != 0`` as a bool tensor, after the type and ``spatial_dims`` checks."""
    if not isinstance(mask, torch.Tensor) or mask.is_complex():
        raise TypeError(f"mask: expected a real torch.Tensor [..., *spatial], got {describe(mask)}")
    spatial_dims = check_positive_int("spatial_dims", spatial_dims)
    if spatial_dims > mask.ndim:
        raise ValueError(f"spatial_dims: expected at most mask.ndim = {mask.ndim}, got {spatial_dims}")
    return (mask.detach() if mask.dtype == torch.bool else mask.detach() != 0).contiguous()


def _scipy_labels(fg: torch.Tensor, spatial_dims: int, per_volume: bool) -> torch.Tensor:
    """:func:`connected_components` by one ``scipy.ndimage.label`` call over the batch (raster order throughout).

    The structure is full within a volume and empty across the leading axes, so volumes never join; its
    ids run ``1..K`` over the batch in raster order, and each volume's are shifted down by the ids before it.
    """
    lead = fg.ndim - spatial_dims
    structure = np.zeros((3,) * fg.ndim, dtype=bool)
    structure[(1,) * lead] = True  # the middle slice of every leading axis: a full 3^d box
    labels = torch.from_numpy(ndi.label(fg.cpu().numpy(), structure=structure, output=np.int64)[0])
    if per_volume and lead:
        flat = labels.view(-1, math.prod(fg.shape[lead:]))
        before = torch.cummax(flat.amax(1), 0).values.roll(1)  # ids of the earlier volumes
        before[0] = 0
        flat.sub_(torch.where(flat > 0, before[:, None], 0))
    return labels.to(fg.device)


def _box_min(ids: torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """Minimum over the ``3^d`` box of every voxel (separable: a shifted minimum pair per spatial axis)."""
    out = ids
    for axis in range(ids.ndim - spatial_dims, ids.ndim):
        n = ids.shape[axis]
        if n < 2:
            continue
        src = out
        out = src.clone()
        lo, hi = out.narrow(axis, 0, n - 1), out.narrow(axis, 1, n - 1)
        torch.minimum(lo, src.narrow(axis, 1, n - 1), out=lo)  # from the next voxel along the axis
        torch.minimum(hi, src.narrow(axis, 0, n - 1), out=hi)  # from the previous one
    return out


def _converge(fg: torch.Tensor, spatial_dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground positions (flat, raster order) and, for each, the position index of its component's root.

    Works on the ``F`` foreground voxels: ``parent[i]`` is the index (into ``where``) of a voxel of the same
    component, at most ``i``; only the ``3^d`` box minimum goes over the whole grid, which holds ``parent``
    on the foreground and the sentinel ``F`` elsewhere.
    """
    where = torch.nonzero(fg.view(-1)).view(-1)
    count = where.numel()
    dtype = torch.int32 if fg.numel() < 2**31 else torch.int64  # int32: half the memory traffic
    parent = torch.arange(count, dtype=dtype, device=fg.device)
    grid = torch.full(fg.shape, count, dtype=dtype, device=fg.device)  # count: the background sentinel
    rounds = 0
    while True:
        before = parent.clone() if rounds % CHECK_EVERY == 0 else None
        grid.view(-1).index_copy_(0, where, parent)
        low = _box_min(grid, spatial_dims).view(-1).index_select(0, where)  # smallest neighbour, itself included
        parent = parent.scatter_reduce(0, parent.long(), low, reduce="amin")  # hook each parent to that minimum
        torch.minimum(parent, low, out=parent)
        for _ in range(2):  # pointer jumping: a parent's parent
            parent = parent.index_select(0, parent)
        rounds += 1
        if before is not None and torch.equal(before, parent):
            return where, parent


def _renumber(fg: torch.Tensor, where: torch.Tensor, parent: torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """Ids ``1..K`` per volume in raster order of each component's first voxel (its root), 0 on the background.

    ``spatial_dims = fg.ndim`` numbers them over the whole batch instead.
    """
    voxels = math.prod(fg.shape[fg.ndim - spatial_dims:])
    roots = parent == torch.arange(parent.numel(), dtype=parent.dtype, device=parent.device)
    order = torch.cumsum(roots, dim=0)  # 1..K over the whole batch, in raster order
    if spatial_dims == fg.ndim:
        return torch.zeros(fg.numel(), dtype=torch.int64, device=fg.device).index_copy_(
            0, where, order.index_select(0, parent.to(torch.int64))).view(fg.shape)
    volume = torch.div(where, voxels, rounding_mode="floor")
    per_volume = torch.zeros(math.prod(fg.shape) // max(voxels, 1), dtype=torch.int64, device=fg.device)
    per_volume.scatter_add_(0, volume, roots.to(torch.int64))
    offset = torch.cumsum(per_volume, dim=0) - per_volume  # roots in the earlier volumes
    ids = (order - offset.index_select(0, volume)).index_select(0, parent.to(torch.int64))
    out = torch.zeros(fg.numel(), dtype=torch.int64, device=fg.device)
    return out.index_copy_(0, where, ids).view(fg.shape)
