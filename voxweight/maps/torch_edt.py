"""Exact Euclidean distance transforms in torch: batched, anisotropic, on the tensor's device.

The ``backend="torch"`` of :mod:`voxweight.maps.distance`. The squared EDT is separable: starting from
``f = 0`` on the target voxels and ``inf`` elsewhere, one 1-D pass per spatial axis, of step ``s``,

    ``f'(i) = min_j f(j) + s^2 (i - j)^2``

leaves ``f`` the squared distance to the nearest target (exact: no approximation anywhere). The passes
are in :mod:`~voxweight.maps.edt_passes`: the first (the last axis) starts from ``0``/``inf``, so it is
the distance to the nearest target on the line, found by doubling (:func:`scan_pass`); the others take
shifted minima, one offset at a time, and drop every line that no farther voxel can lower
(:func:`axis_pass`): the work is the number of lines times their largest distance in voxels, not ``n^2``
per line. Every line of every volume of the batch goes through the same tensor ops, in chunks of
bounded memory.

The public maps compute in float32 (the result's precision; the squares of the spacing, scaled by a
power of two, stay exact enough: the tests hold them to scipy at ``rtol=1e-6``); :func:`edt_squared`
defaults to float64 (float32 on devices without it, e.g. MPS).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from voxweight._validate import look_up_option
from voxweight.maps.edt_passes import axis_pass, scan_pass

__all__ = ["edt_squared", "spacing_scale", "torch_distance"]


def spacing_scale(spacing: Sequence[float]) -> float:
    """The power of two nearest ``max(spacing)`` (in log scale): dividing by it keeps squares float-safe.

    Example:
        >>> spacing_scale((0.7, 3.0))
        4.0
    """
    return 2.0 ** round(math.log2(max(spacing)))


def _compute_dtype(device: torch.device) -> torch.dtype:
    """float64 wherever the device has it (MPS does not)."""
    return torch.float32 if device.type == "mps" else torch.float64


def edt_squared(targets: torch.Tensor, spacing: Sequence[float], tile_bytes: int | None = None,
                max_distance: float | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Squared distance from every voxel to the nearest ``True`` voxel of its volume (``inf`` if none).

    ``d^2(x) = min over targets y of sum_k (spacing[k] (x_k - y_k))^2`` over the last ``len(spacing)``
    axes; the leading axes index independent volumes, all computed together: :func:`scan_pass` along
    the last axis, then :func:`axis_pass` along each other spatial axis.

    Args:
        targets: bool tensor ``[..., *spatial]``.
        spacing: voxel size per spatial axis (positive floats, ``len(spacing) <= targets.ndim``).
        tile_bytes: memory budget of one pass's work arrays (see :func:`min_plus_pass`); None: the device's.
        max_distance: squared distances above ``max_distance^2`` are ``inf``; each axis's pass then looks only
            ``floor(max_distance / step)`` voxels away (exact: a nearer target never lies farther on one axis).
        dtype: floating dtype of the computation and result; None: float64 (float32 on devices without it).

    Returns:
        tensor of ``targets``' shape and device.

    Shape:
        - targets: ``[..., *spatial]``; output: the same.

    Example:
        >>> edt_squared(torch.tensor([[False, True, False], [False, False, False]]), (1.0,))
        tensor([[1., 0., 1.],
                [inf, inf, inf]], dtype=torch.float64)
    """
    if not isinstance(targets, torch.Tensor) or targets.dtype != torch.bool:
        raise TypeError(f"targets: expected a bool tensor, got {getattr(targets, 'dtype', type(targets).__name__)}")
    if not 1 <= len(spacing) <= targets.ndim:
        raise ValueError(f"spacing: expected 1 to targets.ndim = {targets.ndim} values, got {len(spacing)}")
    dtype = _compute_dtype(targets.device) if dtype is None else dtype
    if targets.numel() == 0:
        return torch.empty(targets.shape, dtype=dtype, device=targets.device)
    n = targets.shape[-1]
    f = scan_pass(targets.reshape(-1, n), spacing[-1], dtype).reshape(targets.shape)
    first = targets.ndim - len(spacing)
    for axis, step in zip(range(first, targets.ndim - 1), spacing[:-1], strict=True):
        band = None if max_distance is None else int(max_distance / step)
        f = axis_pass(f, axis, step, tile_bytes, band)
    return f if max_distance is None else f.masked_fill_(f > max_distance**2, math.inf)


def torch_distance(fg: torch.Tensor, spacing: Sequence[float], kind: str,
                   tile_bytes: int | None = None, max_distance: float | None = None) -> torch.Tensor:
    """The distance maps of :mod:`voxweight.maps.distance` for a batch of bool masks, in torch.

    ``kind``: ``"foreground"`` (each voxel to the nearest ``True`` voxel), ``"interface"`` (each voxel
    to the nearest voxel of the other side) or ``"signed"`` (``"interface"``, negated on ``fg``). A
    volume without the voxels to measure to gets ``inf`` (``-inf`` inside for ``"signed"``). The EDT
    runs on ``spacing / spacing_scale(spacing)`` and is scaled back (exact: a power of two).

    Args:
        fg: bool tensor ``[..., *spatial]`` with ``len(spacing)`` spatial axes.
        spacing: validated voxel size per spatial axis.
        kind: ``"foreground"``, ``"interface"`` or ``"signed"``.
        tile_bytes: memory budget of one pass's work arrays; None: the device's.
        max_distance: distances above it (physical units) are ``inf`` (``-inf`` inside for ``"signed"``).

    Returns:
        float32 tensor of ``fg``'s shape on ``fg``'s device.

    Shape:
        - fg: ``[..., *spatial]``; output: the same.

    Example:
        >>> torch_distance(torch.tensor([False, True, True, False]), (0.5,), "signed")
        tensor([ 0.5000, -0.5000, -0.5000,  0.5000])
    """
    if not isinstance(fg, torch.Tensor) or fg.dtype != torch.bool:
        raise TypeError(f"fg: expected a bool tensor, got {getattr(fg, 'dtype', type(fg).__name__)}")
    kind = look_up_option("kind", kind, ("foreground", "interface", "signed"))
    scale = spacing_scale(spacing)
    scaled = tuple(s / scale for s in spacing)
    bound = None if max_distance is None else max_distance / scale
    if kind == "foreground":
        d2 = edt_squared(fg, scaled, tile_bytes, bound, torch.float32)
    else:  # both sides in one batch: inside measures to the background, outside to the foreground
        sides = edt_squared(torch.stack((~fg, fg)), scaled, tile_bytes, bound, torch.float32)
        d2 = torch.add(sides[0], sides[1], out=sides[0])  # each side is 0 on its own targets (inf + 0 = inf)
    d = d2.sqrt_().mul_(scale)
    return torch.where(fg, -d, d) if kind == "signed" else d
