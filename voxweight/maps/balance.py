"""Foreground/background class-balance factors from a foreground fraction (pure torch, any device)."""

from __future__ import annotations

import torch

BALANCE_MODES = ("balanced", "inverse_frequency", "sqrt_inverse")


def balance_factors(fraction: torch.Tensor, mode: str, max_weight: float | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground and background weights for a foreground fraction ``f`` (elementwise, no host sync).

    ``"balanced"``: ``0.5 / f`` and ``0.5 / (1 - f)`` (the mean weight over the volume is 1, as in
    scikit-learn's "balanced"); ``"inverse_frequency"``: ``1 / f`` and ``1 / (1 - f)``;
    ``"sqrt_inverse"``: ``1 / sqrt(f)`` and ``1 / sqrt(1 - f)``. Where ``f`` is 0 or 1 (no foreground,
    or no background) both weights are 1. ``max_weight`` clips both from above.
    """
    defined = (fraction > 0) & (fraction < 1)
    f = torch.where(defined, fraction, torch.full_like(fraction, 0.5))
    if mode == "balanced":
        fg, bg = 0.5 / f, 0.5 / (1 - f)
    elif mode == "inverse_frequency":
        fg, bg = 1 / f, 1 / (1 - f)
    else:
        fg, bg = torch.rsqrt(f), torch.rsqrt(1 - f)
    one = torch.ones_like(f)
    fg, bg = torch.where(defined, fg, one), torch.where(defined, bg, one)
    if max_weight is not None:
        fg, bg = fg.clamp(max=max_weight), bg.clamp(max=max_weight)
    return fg, bg


def balance_map(target: torch.Tensor, mode: str, max_weight: float | None = None,
                spatial_dims: int | None = None) -> torch.Tensor:
    """``bg + (fg - bg) * t`` with fg/bg from the foreground fraction over the last ``spatial_dims`` axes.

    ``spatial_dims`` defaults to every axis after ``[N, C]``; each leading index gets its own fg/bg.
    """
    spatial_dims = target.ndim - 2 if spatial_dims is None else spatial_dims
    fraction = target.mean(dim=tuple(range(target.ndim - spatial_dims, target.ndim)), keepdim=True)
    fg, bg = balance_factors(fraction, mode, max_weight)
    return torch.addcmul(bg, fg - bg, target)
