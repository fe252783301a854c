"""The band-limited 1-D pass of the torch EDT: every offset up to the band, three vector ops each.

``g(i) = min over |o| <= band of f(i + o) + (step o)^2`` along one axis, on the tensor's own layout
``[outer, n, inner]`` (no transpose: a shift along the axis is a slice of whole ``inner`` rows). The
lines are padded with ``band`` values of ``inf`` on each side, so both directions of one offset are one
``minimum`` of two equally long slices, then one ``add`` of the offset's cost and one ``minimum`` into the
result. Work arrays stay within :func:`band_tile_budget` (also the full passes' budget: chunks of ``outer``
rows, and of ``inner`` columns when one row is larger). On the CPU each chunk first shrinks to the rows and
columns that hold a finite value (a line of ``inf`` stays ``inf``): after the first pass of a compact
object's window most lines are empty. Off the CPU nothing is read back: no host synchronisation.
"""

from __future__ import annotations

import math

import torch

__all__ = ["BAND_DEVICE_TILE_BYTES", "BAND_TILE_BYTES", "band_pass", "band_tile_budget"]

BAND_TILE_BYTES = 8 * 2**20  # one chunk's work arrays on the CPU (within L3; 2 MiB chunks measured slower)
BAND_DEVICE_TILE_BYTES = 256 * 2**20  # the same off the CPU (fewer kernel launches)


def band_tile_budget(device: torch.device) -> int:
    """The default work-array budget of one :func:`band_pass` chunk on ``device``.

    Example:
        >>> band_tile_budget(torch.device("cpu")) == BAND_TILE_BYTES
        True
    """
    return BAND_TILE_BYTES if device.type == "cpu" else BAND_DEVICE_TILE_BYTES


def band_pass(f: torch.Tensor, axis: int, step: float, band: int, tile_bytes: int | None = None) -> torch.Tensor:
    """``g = min over |o| <= band of f_{i+o} + (step o)^2`` along ``axis`` of ``f``, every other axis independent.

    Exact: the same minima as :func:`~voxweight.maps.edt_passes.axis_pass` with ``band``, over every
    offset (no early exit, so no host sync off the CPU).

    Args:
        f: floating tensor of squared distances (``inf`` where unknown).
        axis: the axis of the pass (non-negative).
        step: voxel size along the axis (> 0).
        band: the largest offset ``|o|`` (``>= 1``, at most ``n - 1``).
        tile_bytes: memory budget of one chunk's three work arrays; None: :func:`band_tile_budget` of the device.

    Returns:
        a new contiguous tensor of ``f``'s shape.

    Shape:
        - f: any, ``f.shape[axis] = n``; output: the same.

    Example:
        >>> band_pass(torch.tensor([[0.0, float("inf"), float("inf"), float("inf")]]), 1, 1.0, 2, 2**20)
        tensor([[0., 1., 4., inf]])
    """
    shape = f.shape
    n = shape[axis]
    tile_bytes = band_tile_budget(f.device) if tile_bytes is None else tile_bytes
    outer, inner = math.prod(shape[:axis]), math.prod(shape[axis + 1:])
    src = f.reshape(outer, n, inner)
    out = torch.empty((outer, n, inner), dtype=f.dtype, device=f.device)
    costs = (step * torch.arange(1, band + 1, dtype=torch.float64)).square_().to(device=f.device, dtype=f.dtype)
    per_column = 3 * (n + 2 * band) * f.element_size()  # bytes of one column of one row in the work arrays
    width = max(1, min(inner, tile_bytes // per_column))
    rows = max(1, tile_bytes // (per_column * width))
    for r0 in range(0, outer, rows):
        for c0 in range(0, inner, width):
            part = (slice(r0, r0 + rows), slice(None), slice(c0, c0 + width))
            _chunk(src[part], out[part], costs, band)
    return out.view(shape)


def _chunk(src: torch.Tensor, out: torch.Tensor, costs: torch.Tensor, band: int) -> None:
    """:func:`band_pass` of one chunk ``[rows, n, columns]`` of ``src`` into the same chunk of ``out``."""
    out.copy_(src)
    if src.device.type == "cpu":  # only the rows and columns with a finite value: the rest stays inf
        live = src.amin(1) < math.inf  # [rows, columns]
        rows, columns = live.any(1).nonzero().view(-1), live.any(0).nonzero().view(-1)
        if rows.numel() == 0:
            return
        box = (slice(int(rows[0]), int(rows[-1]) + 1), slice(None), slice(int(columns[0]), int(columns[-1]) + 1))
        src, out = src[box], out[box]
    m, n, w = src.shape
    padded = torch.full((m, n + 2 * band, w), math.inf, dtype=src.dtype, device=src.device)
    padded[:, band:band + n] = src
    work = out if out.is_contiguous() else out.contiguous()  # out holds src by now
    tmp = torch.empty_like(work)
    for o in range(1, band + 1):
        torch.minimum(padded[:, band + o:band + o + n], padded[:, band - o:band - o + n], out=tmp)
        torch.minimum(work, tmp.add_(costs[o - 1]), out=work)
    if work is not out:
        out.copy_(work)
