"""Argument checks of the distance maps (:mod:`voxweight.maps.distance`): mask, spacing, backend, threads."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from voxweight._validate import check_positive_int, check_spacing, describe, look_up_option

try:  # optional at run time: scipy is the fallback
    import edt as _edt
except ImportError:  # pragma: no cover - edt is a declared dependency
    _edt = None

__all__ = ["DISTANCE_BACKENDS", "prepare_distance_args", "resolve_backend"]

DISTANCE_BACKENDS = ("auto", "edt", "scipy", "torch")


def prepare_distance_args(mask: Any, spacing: Any, backend: Any, threads: Any, spatial_dims: Any
                          ) -> tuple[np.ndarray | torch.Tensor, tuple[float, ...], str, int]:
    """Validate a distance map's arguments; return the foreground, spacing, backend and threads.

    The foreground is ``mask != 0``: a bool tensor (on ``mask``'s device) for ``"torch"``, else a
    C-contiguous bool ndarray. ``spacing`` has ``spatial_dims`` values (default: ``mask.ndim``) in
    ``[1e-30, 1e30]``, within a factor 1e18 of each other.

    Raises:
        TypeError: for a mask that is not an ndarray/tensor of bool, integer or float dtype, or a
            non-integer ``spatial_dims`` or ``threads``.
        ValueError: for a 0-d mask, ``spatial_dims`` outside ``[1, mask.ndim]``, bad ``spacing``,
            ``backend`` or ``threads``.

    Shape:
        - mask: ``[..., *spatial]``; the foreground: the same.

    Example:
        >>> prepare_distance_args(np.array([0, 2]), 0.5, "scipy", 1, None)
        (array([False,  True]), (0.5,), 'scipy', 1)
    """
    if isinstance(mask, torch.Tensor):
        if mask.is_complex():
            raise TypeError(f"mask: expected a bool, integer or floating-point tensor, got dtype {mask.dtype}")
        fg = mask.detach() != 0
    elif isinstance(mask, np.ndarray):
        if mask.dtype.kind not in "biuf":
            raise TypeError(f"mask: expected a bool, integer or floating-point array, got dtype {mask.dtype}")
        fg = mask != 0
    else:
        raise TypeError(f"mask: expected a numpy.ndarray or torch.Tensor, got {describe(mask)}")
    if fg.ndim == 0:
        raise ValueError("mask: expected at least one (spatial) dim, got a 0-d array")
    spatial_dims = fg.ndim if spatial_dims is None else check_positive_int("spatial_dims", spatial_dims)
    if spatial_dims > fg.ndim:
        raise ValueError(f"spatial_dims: expected at most mask.ndim = {fg.ndim}, got {spatial_dims}")
    spacing = check_spacing("spacing", spacing, spatial_dims)
    if not 1e-30 <= min(spacing) <= max(spacing) <= min(1e30, 1e18 * min(spacing)):
        raise ValueError(f"spacing: expected values in [1e-30, 1e30] within a factor 1e18 of each other (the "
                         f"distances are float32), got {list(spacing)}")
    threads = check_positive_int("threads", threads)
    on_device = isinstance(fg, torch.Tensor) and fg.device.type != "cpu"
    backend = resolve_backend(backend, spatial_dims, on_device=on_device)
    if backend == "torch":
        return (fg if isinstance(fg, torch.Tensor) else torch.from_numpy(fg)), spacing, backend, threads
    return np.ascontiguousarray(fg.cpu().numpy() if isinstance(fg, torch.Tensor) else fg), spacing, backend, threads


def resolve_backend(backend: Any, ndim: int, *, on_device: bool = False) -> str:
    """``"edt"``, ``"scipy"`` or ``"torch"`` for ``backend`` (one of ``DISTANCE_BACKENDS``) and ``ndim`` spatial dims.

    ``"auto"`` is ``"torch"`` ``on_device`` (a tensor off the CPU), else ``"edt"`` for 1 to 3 dims, else ``"scipy"``.

    Raises:
        ValueError: for an unknown backend, or ``"edt"`` where it cannot run (not installed, > 3 dims).

    Example:
        >>> resolve_backend("scipy", 4), resolve_backend("auto", 3, on_device=True)
        ('scipy', 'torch')
    """
    backend = look_up_option("backend", backend, DISTANCE_BACKENDS)
    if backend == "auto":
        if on_device:
            return "torch"
        return "edt" if _edt is not None and 1 <= ndim <= 3 else "scipy"
    if backend == "edt" and _edt is None:  # pragma: no cover - edt is a declared dependency
        raise ValueError("backend: expected 'auto' or 'scipy' ('edt' needs the edt package: pip install edt), "
                         "got 'edt'")
    if backend == "edt" and not 1 <= ndim <= 3:
        raise ValueError(f"backend: expected 'auto' or 'scipy' for {ndim} dims ('edt' supports 1 to 3), got 'edt'")
    return backend
