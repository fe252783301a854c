"""The boundary bonuses of :mod:`~voxweight.maps.bonus` for a batch of volumes, in torch on its device.

Same maps as the numpy path, to float32 precision: the same formulas, distances in units of ``sigma``
(:func:`~voxweight.maps.bonus.relative_spacing`) and the same crops, each object's bounding box (the
non-zero voxels' box for ``"distance"``) dilated by ``MARGIN_SIGMAS`` (4 sigma), with distances ``inf``
outside it. The distances come from the band-limited torch EDT (:func:`~voxweight.maps.torch_edt.torch_distance`
with ``max_distance=BAND_SIGMAS``): exact up to ``BAND_SIGMAS`` (5.68 sigma), ``inf`` beyond, where the
bonus is below ``exp(-BAND_SIGMAS^2 / 2) = 1e-7`` times ``w0`` either way. (A band of 4 sigma would not
do: inside the dilated boxes the numpy path keeps distances up to ``4 sqrt(d)`` sigma, whose bonus reaches
``exp(-8) w0``.)

Objects (``"unet"``) are numbered ``1..K`` over the whole batch; their boxes are computed on the device
and read back in one sync. Objects whose windows have similar shapes share one EDT call (a stack of
windows padded to a common shape, at most :func:`batch_voxels` voxels), and the running two-smallest
update then writes each object's own window only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from voxweight.maps.bonus import MARGIN_SIGMAS, relative_spacing
from voxweight.maps.components import connected_components
from voxweight.maps.torch_edt import torch_distance

__all__ = [
    "BAND_SIGMAS",
    "DEVICE_BATCH_VOXELS",
    "EDT_BATCH_VOXELS",
    "batch_objects",
    "batch_voxels",
    "object_boxes",
    "torch_distance_bonus",
    "torch_unet_bonus",
]

BAND_SIGMAS = math.sqrt(2 * math.log(1e7))  # 5.68: beyond it the bonus is below 1e-7 w0
EDT_BATCH_VOXELS = 2**20  # voxels of one stacked EDT call on the CPU (float32 work arrays of 4 MiB)
DEVICE_BATCH_VOXELS = 2**26  # the same off the CPU: fewer, larger calls (kernel launches and syncs dominate)
PADDING_WASTE = 1.25  # a group's padded windows hold at most this many times the voxels of its own windows

Box = tuple[int, int, tuple[int, ...], tuple[int, ...]]  # id, volume, first and last voxel per spatial axis


def batch_voxels(device: torch.device) -> int:
    """Voxels of one stacked EDT call on ``device``: ``EDT_BATCH_VOXELS`` on the CPU, else ``DEVICE_BATCH_VOXELS``.

    Example:
        >>> batch_voxels(torch.device("cpu")) == EDT_BATCH_VOXELS
        True
    """
    return EDT_BATCH_VOXELS if device.type == "cpu" else DEVICE_BATCH_VOXELS


def batch_objects(volumes: torch.Tensor, spatial_dims: int, *, instances: bool, multiclass: bool) -> torch.Tensor:
    """Objects of every volume, numbered ``1..K`` over the whole batch (0 = background).

    Instance ids (``instances``: each distinct id of a volume is one object, sparse ids allowed), else each
    connected component (full connectivity) of each class > 0 (``multiclass``), else of the mask.

    Args:
        volumes: instance ids, class indices or a bool mask, ``[V, *spatial]``.
        spatial_dims: number of spatial axes.
        instances: ``volumes`` holds instance ids.
        multiclass: ``volumes`` holds class indices.

    Returns:
        int64 object ids, ``volumes``' shape and device.

    Example:
        >>> batch_objects(torch.tensor([[1, 0, 1], [1, 1, 0]]), 1, instances=False, multiclass=False)
        tensor([[1, 0, 2],
                [3, 3, 0]])
    """
    if instances:
        return _instance_objects(volumes)
    if not multiclass:
        return connected_components(volumes, spatial_dims, per_volume=False)
    objects = torch.zeros(volumes.shape, dtype=torch.int64, device=volumes.device)
    classes = [c for c in torch.unique(volumes).tolist() if c > 0]
    step = max(1, 16 * batch_voxels(volumes.device) // max(volumes.numel(), 1))
    total = torch.zeros((), dtype=torch.int64, device=volumes.device)
    for i in range(0, len(classes), step):
        chosen = torch.tensor(classes[i:i + step], dtype=volumes.dtype, device=volumes.device)
        masks = volumes.unsqueeze(0) == chosen.view(-1, *(1,) * volumes.ndim)  # [classes, V, *spatial]
        parts = connected_components(masks, spatial_dims, per_volume=False)  # ids 1..n over the chunk
        objects += torch.where(parts > 0, parts + total, 0).sum(0)  # the classes are disjoint
        total = total + parts.amax()
    return objects


def _instance_objects(ids: torch.Tensor) -> torch.Tensor:
    """Distinct (volume, id > 0) pairs numbered ``1..K`` (two ``torch.unique`` sorts, two scalar syncs)."""
    values, inverse = torch.unique(ids, return_inverse=True)
    inverse = inverse + int(values[0] != 0)  # 0 stays the background, ids become 1..U
    volume = torch.arange(ids.shape[0], device=ids.device).view(-1, *(1,) * (ids.ndim - 1))
    key = torch.where(inverse > 0, volume * (values.numel() + 1) + inverse, 0)
    keys, objects = torch.unique(key, return_inverse=True)
    return objects + int(keys[0] != 0)


def object_boxes(objects: torch.Tensor) -> list[Box]:
    """Id, volume and bounding box (first and last voxel per spatial axis) of each object present, by id.

    Computed on the device from the foreground voxels, then read back in one sync (``K`` boxes, ``K``
    the largest id; ids absent from ``objects`` are left out).

    Shape:
        - objects: ``[V, *spatial]`` int64 ids ``>= 0`` (0 = background), each id within one volume.

    Example:
        >>> object_boxes(torch.tensor([[0, 1, 1], [3, 0, 3]]))
        [(1, 0, (1,), (2,)), (3, 1, (0,), (2,))]
    """
    where = torch.nonzero(objects.view(-1)).view(-1)
    if where.numel() == 0:
        return []
    ids = objects.view(-1).index_select(0, where)
    k = int(ids.max())
    lows, highs, rest = [], [], where
    for n in reversed(objects.shape):  # coordinates from the last axis to the first
        coord = rest % n
        rest = torch.div(rest, n, rounding_mode="floor")
        lows.append(torch.full((k + 1,), n, device=objects.device, dtype=torch.int64).scatter_reduce(
            0, ids, coord, reduce="amin"))
        highs.append(torch.full((k + 1,), -1, device=objects.device, dtype=torch.int64).scatter_reduce(
            0, ids, coord, reduce="amax"))
    table = torch.stack(lows[::-1] + highs[::-1], dim=1)[1:].tolist()
    dims = objects.ndim
    return [(k, row[0], tuple(row[1:dims]), tuple(row[dims + 1:]))
            for k, row in enumerate(table, start=1) if row[dims] >= 0]


def torch_unet_bonus(objects: torch.Tensor, w0: float, sigma: float, spacing: Sequence[float],
                     boxes: list[Box] | None = None) -> torch.Tensor:
    """``w0 exp(-(d1 + d2)^2 / (2 sigma^2))`` on the background of each volume, 0 on objects (torch, batched).

    ``d1``, ``d2``: distances to the nearest and second-nearest object of the voxel's volume, each
    object's measured in its own window (its box dilated by 4 sigma; ``inf`` outside) up to
    ``BAND_SIGMAS``, kept by a running two-smallest update. A volume with fewer than two objects gets 0.

    Args:
        objects: int64 ids numbered ``1..K`` over the batch (:func:`batch_objects`), ``[V, *spatial]``.
        w0: height of the bonus.
        sigma: width of the bonus, in ``spacing`` units.
        spacing: voxel size per spatial axis.
        boxes: ``object_boxes(objects)`` if already computed (saves a pass and a sync), else None.

    Returns:
        float32 bonus of ``objects``' shape and device.

    Shape:
        - objects: ``[V, *spatial]``; output: the same.

    Example:
        >>> torch_unet_bonus(torch.tensor([[1, 0, 0, 2]]), 1.0, 1.0, (1.0,))  # d1 + d2 = 3 between
        tensor([[0.0000, 0.0111, 0.0111, 0.0000]])
    """
    boxes = object_boxes(objects) if boxes is None else boxes
    per_volume = [0] * objects.shape[0]
    for _, v, _, _ in boxes:
        per_volume[v] += 1
    boxes = [box for box in boxes if per_volume[box[1]] >= 2]  # alone in its volume: d2 = inf, no bonus
    if not boxes or w0 == 0:
        return torch.zeros(objects.shape, dtype=torch.float32, device=objects.device)
    rel = relative_spacing(sigma, spacing)
    items = [(k, v, _window(lo, hi, rel, objects.shape[1:])) for k, v, lo, hi in boxes]
    d1 = torch.full(objects.shape, math.inf, dtype=torch.float32, device=objects.device)
    d2 = torch.full_like(d1, math.inf)
    for group in _groups(items, batch_voxels(objects.device)):
        size = tuple(max(w[i].stop - w[i].start for _, _, w in group) for i in range(len(rel)))
        starts = [tuple(min(s.start, n - m) for s, n, m in zip(w, objects.shape[1:], size, strict=True))
                  for _, _, w in group]
        targets = torch.stack([objects[(v, *(slice(a, a + m) for a, m in zip(st, size, strict=True)))] == k
                               for (k, v, _), st in zip(group, starts, strict=True)])
        dk = torch_distance(targets, rel, "foreground", max_distance=BAND_SIGMAS)
        for i, ((_, v, w), st) in enumerate(zip(group, starts, strict=True)):
            own = dk[(i, *(slice(s.start - a, s.stop - a) for s, a in zip(w, st, strict=True)))]
            near, second = d1[(v, *w)], d2[(v, *w)]  # views: updated in place
            torch.minimum(second, torch.maximum(near, own), out=second)
            torch.minimum(near, own, out=near)
    bonus = d1.add_(d2).square_().mul_(-0.5).exp_().mul_(w0)  # inf -> exp(-inf) = 0
    return bonus.masked_fill_(objects != 0, 0.0)


def _window(lo: tuple[int, ...], hi: tuple[int, ...], rel: tuple[float, ...], shape: Sequence[int]
            ) -> tuple[slice, ...]:
    """The box ``lo..hi`` dilated by ``ceil(MARGIN_SIGMAS / rel[i])`` voxels per axis, clipped to ``shape``."""
    margin = [math.ceil(MARGIN_SIGMAS / s) for s in rel]
    return tuple(slice(max(0, a - m), min(n, b + 1 + m)) for a, b, m, n in zip(lo, hi, margin, shape, strict=True))


def _groups(items: list[tuple[int, int, tuple[slice, ...]]], budget: int
            ) -> list[list[tuple[int, int, tuple[slice, ...]]]]:
    """Objects ``(id, volume, window)`` in groups whose windows, padded to a common shape, waste little."""
    def dims(w: tuple[slice, ...]) -> tuple[int, ...]:
        return tuple(s.stop - s.start for s in w)

    groups: list[list[tuple[int, int, tuple[slice, ...]]]] = []
    common: tuple[int, ...] = ()
    own = 0
    for item in sorted(items, key=lambda it: -math.prod(dims(it[2]))):
        size = dims(item[2])
        if groups:
            grown = tuple(max(a, b) for a, b in zip(common, size, strict=True))
            padded = (len(groups[-1]) + 1) * math.prod(grown)
            if padded <= budget and padded <= PADDING_WASTE * (own + math.prod(size)):
                groups[-1].append(item)
                common, own = grown, own + math.prod(size)
                continue
        groups.append([item])
        common, own = size, math.prod(size)
    return groups


def torch_distance_bonus(values: torch.Tensor, w0: float, sigma: float, spacing: Sequence[float]) -> torch.Tensor:
    """``w0 exp(-d^2 / (2 sigma^2))``, ``d`` the distance to the nearest voxel of another value (torch, batched).

    ``values`` is a bool mask (``d``: the two-sided distance to the interface) or class indices
    (interfaces between any two classes). Measured inside each volume's window (the non-zero voxels'
    box dilated by 4 sigma; 0 outside) up to ``BAND_SIGMAS``; the EDT runs once on the union of the
    windows of all volumes. No interface in a volume: 0 there.

    Args:
        values: bool mask or int64 class indices, ``[V, *spatial]``.
        w0: height of the bonus.
        sigma: width of the bonus, in ``spacing`` units.
        spacing: voxel size per spatial axis.

    Returns:
        float32 bonus of ``values``' shape and device.

    Shape:
        - values: ``[V, *spatial]``; output: the same.

    Example:
        >>> torch_distance_bonus(torch.tensor([[0, 0, 1, 1]]), 1.0, 1.0, (1.0,))  # d = 2, 1, 1, 2
        tensor([[0.1353, 0.6065, 0.6065, 0.1353]])
    """
    out = torch.zeros(values.shape, dtype=torch.float32, device=values.device)
    if w0 == 0 or values.numel() == 0:
        return out
    rel = relative_spacing(sigma, spacing)
    boxes = object_boxes((values != 0).to(torch.int64) * (1 + torch.arange(values.shape[0], device=values.device)
                                                          ).view(-1, *(1,) * len(rel)))
    if not boxes:
        return out
    windows = [(v, _window(lo, hi, rel, values.shape[1:])) for _, v, lo, hi in boxes]
    union = tuple(slice(min(w[i].start for _, w in windows), max(w[i].stop for _, w in windows))
                  for i in range(len(rel)))
    d = _distance_to_other_value(values[(slice(None), *union)], rel)
    bonus = d.square_().mul_(-0.5).exp_().mul_(w0)
    for v, w in windows:
        out[(v, *w)] = bonus[(v, *(slice(s.start - u.start, s.stop - u.start) for s, u in zip(w, union, strict=True)))]
    return out


def _distance_to_other_value(values: torch.Tensor, rel: tuple[float, ...]) -> torch.Tensor:
    """Each voxel's distance to the nearest voxel of its volume holding another value, up to ``BAND_SIGMAS``."""
    if values.dtype == torch.bool:
        return torch_distance(values, rel, "interface", max_distance=BAND_SIGMAS)
    d = torch.full(values.shape, math.inf, dtype=torch.float32, device=values.device)
    classes = torch.unique(values).tolist()
    step = max(1, batch_voxels(values.device) // max(values.numel(), 1))
    for i in range(0, len(classes), step):
        chosen = torch.tensor(classes[i:i + step], dtype=values.dtype, device=values.device)
        same = values.unsqueeze(0) == chosen.view(-1, *(1,) * values.ndim)  # [classes, V, *spatial]
        dc = torch_distance(~same, rel, "foreground", max_distance=BAND_SIGMAS)
        d = torch.where(same, dc, d.unsqueeze(0)).amin(0)  # each voxel belongs to exactly one class
    return d
