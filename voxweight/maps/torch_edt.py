"""Exact Euclidean distance transforms in torch: batched, anisotropic, on the tensor's device.

The ``backend="torch"`` of :mod:`voxweight.maps.distance`. The squared EDT is separable: starting from
``f = 0`` on the target voxels and ``inf`` elsewhere, one 1-D pass per spatial axis, of step ``s``,

    ``f'(i) = min_j f(j) + s^2 (i - j)^2``

leaves ``f`` the squared distance to the nearest target (exact: every pass is a brute-force min-plus
product, no approximation). Every line of every volume of the batch goes through the same tensor ops.
The min-plus tiles ``[lines, positions, n]`` are chunked to at most ``EDT_TILE_BYTES``, so memory stays
bounded whatever the volume (never an ``n x n`` tile per line of a whole volume at once). The work is
``O(n)`` per voxel and axis: exact and simple rather than the linear-time lower envelope, which is
sequential and suits CPUs better (the ``edt``/scipy backends).

Computation is in float64 (float32 on devices without it, e.g. MPS); the result is float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from voxweight._validate import look_up_option

__all__ = ["EDT_TILE_BYTES", "edt_squared", "min_plus_pass", "spacing_scale", "torch_distance"]

EDT_TILE_BYTES = 64 * 2**20  # the largest [lines, positions, n] min-plus tile one pass allocates


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


def min_plus_pass(f: torch.Tensor, step: float, tile_bytes: int = EDT_TILE_BYTES, band: int | None = None
                  ) -> torch.Tensor:
    """One exact 1-D pass of the squared EDT along the last axis of ``f``.

    ``g[l, i] = min_j f[l, j] + (step * (i - j))^2``, computed on tiles of at most ``tile_bytes``
    (output positions are chunked, then lines).

    Args:
        f: floating tensor of squared distances (``inf`` where unknown), lines on the first axis.
        step: voxel size along the axis (> 0).
        tile_bytes: memory budget of one min-plus tile.
        band: only ``|i - j| <= band`` (a band-limited pass: ``2 band + 1`` shifted minima, ``O(n band)``
            work and no tile); None or a band of ``n`` or more: every ``j``.

    Shape:
        - f: ``[lines, n]``; output: the same.

    Example:
        >>> min_plus_pass(torch.tensor([[float("inf"), 0.0, float("inf"), float("inf")]]), 2.0)
        tensor([[ 4.,  0.,  4., 16.]])
    """
    if f.ndim != 2 or not f.is_floating_point():
        raise ValueError(f"f: expected a floating-point tensor [lines, n], got {f.dtype} of shape {list(f.shape)}")
    lines, n = f.shape
    if band is not None and 2 * band + 1 < n:
        return _banded_pass(f, step, band)
    out = torch.empty_like(f)
    if f.numel() == 0:
        return out
    rows = max(1, tile_bytes // (n * f.element_size()))  # (line, position) pairs per tile
    chunk = min(n, rows)
    line_chunk = max(1, rows // chunk)
    pos = torch.arange(n, device=f.device, dtype=f.dtype)
    for c0 in range(0, n, chunk):
        w = ((pos[c0:c0 + chunk, None] - pos[None, :]) * step).square()  # [chunk, n]
        for l0 in range(0, lines, line_chunk):
            tile = f[l0:l0 + line_chunk, None, :] + w  # [line_chunk, chunk, n]
            out[l0:l0 + line_chunk, c0:c0 + chunk] = tile.amin(dim=-1)
    return out


def _banded_pass(f: torch.Tensor, step: float, band: int) -> torch.Tensor:
    """``min over |o| <= band`` of ``f[:, i + o] + (step o)^2``, one shifted minimum per offset."""
    out = f.clone()
    n = f.shape[1]
    for o in range(1, band + 1):
        cost = (step * o) ** 2
        torch.minimum(out[:, : n - o], f[:, o:] + cost, out=out[:, : n - o])  # from the right neighbour o away
        torch.minimum(out[:, o:], f[:, : n - o] + cost, out=out[:, o:])  # from the left
    return out


def edt_squared(targets: torch.Tensor, spacing: Sequence[float], tile_bytes: int = EDT_TILE_BYTES,
                max_distance: float | None = None) -> torch.Tensor:
    """Squared distance from every voxel to the nearest ``True`` voxel of its volume (``inf`` if none).

    ``d^2(x) = min over targets y of sum_k (spacing[k] (x_k - y_k))^2`` over the last ``len(spacing)``
    axes; the leading axes index independent volumes, all computed together.

    Args:
        targets: bool tensor ``[..., *spatial]``.
        spacing: voxel size per spatial axis (positive floats, ``len(spacing) <= targets.ndim``).
        tile_bytes: memory budget of one min-plus tile (see :func:`min_plus_pass`).
        max_distance: squared distances above ``max_distance^2`` are ``inf``; each axis's pass then looks only
            ``floor(max_distance / step)`` voxels away (exact: a nearer target never lies farther on one axis).

    Returns:
        float64 tensor (float32 on devices without float64) of ``targets``' shape, on its device.

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
    dtype = _compute_dtype(targets.device)
    f = torch.full(targets.shape, math.inf, dtype=dtype, device=targets.device).masked_fill_(targets, 0.0)
    if f.numel() == 0:
        return f
    first = targets.ndim - len(spacing)
    for axis, step in zip(range(first, targets.ndim), spacing, strict=True):
        moved = f.movedim(axis, -1)
        band = None if max_distance is None else int(max_distance / step)
        g = min_plus_pass(moved.reshape(-1, moved.shape[-1]), step, tile_bytes, band)
        f = g.reshape(moved.shape).movedim(-1, axis)
    return f if max_distance is None else f.masked_fill_(f > max_distance**2, math.inf)


def torch_distance(fg: torch.Tensor, spacing: Sequence[float], kind: str,
                   tile_bytes: int = EDT_TILE_BYTES, max_distance: float | None = None) -> torch.Tensor:
    """The distance maps of :mod:`voxweight.maps.distance` for a batch of bool masks, in torch.

    ``kind``: ``"foreground"`` (each voxel to the nearest ``True`` voxel), ``"interface"`` (each voxel
    to the nearest voxel of the other side) or ``"signed"`` (``"interface"``, negated on ``fg``). A
    volume without the voxels to measure to gets ``inf`` (``-inf`` inside for ``"signed"``). The EDT
    runs on ``spacing / spacing_scale(spacing)`` and is scaled back (exact: a power of two).

    Args:
        fg: bool tensor ``[..., *spatial]`` with ``len(spacing)`` spatial axes.
        spacing: validated voxel size per spatial axis.
        kind: ``"foreground"``, ``"interface"`` or ``"signed"``.
        tile_bytes: memory budget of one min-plus tile.
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
        d2 = edt_squared(fg, scaled, tile_bytes, bound)
    else:  # both sides in one batch: inside measures to the background, outside to the foreground
        sides = edt_squared(torch.stack((~fg, fg)), scaled, tile_bytes, bound)
        d2 = torch.where(fg, sides[0], sides[1])
    d = d2.sqrt_().to(torch.float32).mul_(scale)
    return torch.where(fg, -d, d) if kind == "signed" else d
