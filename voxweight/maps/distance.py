"""Euclidean distance transforms of binary masks, in physical units, on ``edt``, scipy or torch.

Three backends compute the same exact Euclidean distance transform (EDT) between voxel centres:

* ``"edt"``: the `edt <https://pypi.org/project/edt/>`_ package (LGPL-3.0, imported as a library),
  about ten times faster than scipy; 1 to 3 spatial dims. Its ``anisotropy`` follows the array's axis
  order for the C-contiguous arrays it is given here.
* ``"scipy"``: ``scipy.ndimage.distance_transform_edt(..., sampling=spacing)``, any number of dims;
  the fallback and the reference the tests hold the others to (float32 tolerance).
* ``"torch"``: :mod:`voxweight.maps.torch_edt`, exact separable min-plus passes on the tensor's device
  (a numpy mask runs on the CPU), every volume of a batch at once.

``"auto"`` picks ``"torch"`` for a tensor off the CPU, else ``"edt"`` when it is installed and there are
1 to 3 spatial dims, else ``"scipy"``. The result is a tensor on the mask's device for a tensor on
``"torch"``, numpy otherwise. The last ``spatial_dims`` axes of ``mask`` are spatial (default: all);
leading axes index independent volumes (``edt`` and scipy take them one by one). Distances are in the
units of ``spacing`` (voxels if None). When the voxels to measure to do not exist in a volume (no
foreground, or no interface), its distances are ``inf``, as in ``edt``: callers decide what that means
(the weight maps turn it into a bonus of 0). The EDT runs on the spacing divided by a power of two near
its largest value, then scales back (exact), so ``spacing`` may be anything in ``[1e-30, 1e30]`` whose
values are within a factor 1e18.

Threads (``threads=``, ``voxweight bench --threads``): ``edt`` gets them as ``parallel=``; on
``"scipy"``, whose EDT releases the GIL, a two-sided map (:func:`distance_to_interface`,
:func:`signed_distance`) computes its two sides in two threads when more than one is allowed and the
mask has at least ``SCIPY_THREADED_MIN_VOXELS`` voxels (below that, starting a thread costs more than it
saves). Each side is the same scipy call either way, so the maps are identical bit for bit; the two
sides' scipy work arrays (about 60 bytes per voxel each) are then alive at the same time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.ndimage as ndi
import torch

from voxweight._validate import check_positive_number
from voxweight.maps.distance_checks import DISTANCE_BACKENDS, prepare_distance_args, resolve_backend
from voxweight.maps.torch_edt import spacing_scale, torch_distance

try:  # optional at run time: scipy is the fallback
    import edt as _edt
except ImportError:  # pragma: no cover - edt is a declared dependency
    _edt = None

__all__ = [
    "DISTANCE_BACKENDS",
    "SCIPY_THREADED_MIN_VOXELS",
    "distance_both_sides",
    "distance_inside",
    "distance_to_foreground",
    "distance_to_interface",
    "distance_to_other_value",
    "resolve_backend",
    "signed_distance",
]

Spacing = float | Sequence[float] | None
Map = np.ndarray | torch.Tensor

SCIPY_THREADED_MIN_VOXELS = 16**3  # smaller masks: thread start-up (~0.1 ms) >= one side's scipy EDT


def distance_to_foreground(mask: Map, *, spacing: Spacing = None, backend: str = "auto", threads: int = 1,
                           spatial_dims: int | None = None, max_distance: float | None = None) -> Map:
    """Distance from every voxel to the nearest foreground voxel (``mask != 0``) of its volume.

    ``d(x) = min over foreground y of ||(x - y) * spacing||``: 0 on the foreground, the distance between
    voxel centres elsewhere (a background voxel touching the foreground along axis ``i`` gets
    ``spacing[i]``). A volume without foreground gives ``inf`` everywhere.

    Args:
        mask: binary mask (bool, integer or float; non-zero is foreground).
        spacing: voxel size per spatial axis (``spatial_dims`` numbers, or one for all); None means 1.
        backend: ``"auto"``, ``"edt"``, ``"scipy"`` or ``"torch"`` (see the module docstring).
        threads: threads for the computation (``edt``'s ``parallel=``; see the module docstring).
        spatial_dims: number of trailing spatial axes; None (default) means every axis.
        max_distance: distances above it (physical units, > 0) are reported as ``inf`` (``-inf`` inside for the
            signed map); with ``"torch"`` each pass then looks only that far (``O(voxels x band)``).

    Returns:
        float32 map of ``mask``'s shape: a tensor on ``mask``'s device for a tensor on ``"torch"``, else numpy.

    Raises:
        TypeError: if ``mask`` is not an ndarray/tensor of bool, integer or float dtype, or ``spatial_dims``
            is not an integer.
        ValueError: for a 0-d mask, ``spatial_dims`` outside ``[1, mask.ndim]``, bad ``spacing``, an unknown
            ``backend``, ``"edt"`` on more than 3 spatial dims, or ``threads < 1``.

    Shape:
        - mask: ``[..., *spatial]`` (1 or more spatial dims); output: the same.

    Example:
        >>> distance_to_foreground(np.array([0, 0, 1, 0]), spacing=2.0)
        array([4., 2., 0., 2.], dtype=float32)
        >>> distance_to_foreground(torch.tensor([[0, 1, 0], [0, 0, 0]]), backend="torch", spatial_dims=1)
        tensor([[1., 0., 1.],
                [inf, inf, inf]])
    """
    return _run("foreground", mask, spacing, backend, threads, spatial_dims, max_distance)


def distance_to_interface(mask: Map, *, spacing: Spacing = None, backend: str = "auto", threads: int = 1,
                          spatial_dims: int | None = None, max_distance: float | None = None) -> Map:
    """Two-sided distance to the foreground/background interface, ``>= 0`` on both sides.

    A background voxel gets its distance to the nearest foreground voxel, a foreground voxel its
    distance to the nearest background voxel (voxel centres, so voxels on either side of the interface
    get the spacing along the contact axis, never 0). Without an interface (empty or full volume) the
    distance is ``inf`` everywhere in that volume.

    Args:
        mask: binary mask (non-zero is foreground).
        spacing: voxel size per spatial axis (or one number); None means 1.
        backend: ``"auto"``, ``"edt"``, ``"scipy"`` or ``"torch"``.
        threads: threads for the computation (1 or more; see the module docstring).
        spatial_dims: number of trailing spatial axes; None (default) means every axis.
        max_distance: distances above it (physical units, > 0) are reported as ``inf`` (``-inf`` inside for the
            signed map); with ``"torch"`` each pass then looks only that far (``O(voxels x band)``).

    Returns:
        float32 map of ``mask``'s shape (a tensor on its device for a tensor on ``"torch"``, else numpy).

    Raises:
        TypeError: if ``mask`` is not an ndarray/tensor of bool, integer or float dtype.
        ValueError: for a 0-d mask, bad ``spatial_dims``, ``spacing``, ``backend`` or ``threads``.

    Shape:
        - mask: ``[..., *spatial]``; output: the same.

    Example:
        >>> distance_to_interface(np.array([0, 0, 1, 1, 1]))
        array([2., 1., 1., 2., 3.], dtype=float32)
    """
    return _run("interface", mask, spacing, backend, threads, spatial_dims, max_distance)


def signed_distance(mask: Map, *, spacing: Spacing = None, backend: str = "auto", threads: int = 1,
                    spatial_dims: int | None = None, max_distance: float | None = None) -> Map:
    """Signed distance to the interface: positive outside the foreground, negative inside.

    ``s = distance_to_interface(mask)`` on the background and ``-distance_to_interface(mask)`` on the
    foreground (the level-set convention, as in Kervadec et al.'s boundary loss). An empty volume gives
    ``+inf`` everywhere, a full one ``-inf``.

    Args:
        mask: binary mask (non-zero is foreground).
        spacing: voxel size per spatial axis (or one number); None means 1.
        backend: ``"auto"``, ``"edt"``, ``"scipy"`` or ``"torch"``.
        threads: threads for the computation (1 or more; see the module docstring).
        spatial_dims: number of trailing spatial axes; None (default) means every axis.
        max_distance: distances above it (physical units, > 0) are reported as ``inf`` (``-inf`` inside for the
            signed map); with ``"torch"`` each pass then looks only that far (``O(voxels x band)``).

    Returns:
        float32 map of ``mask``'s shape (a tensor on its device for a tensor on ``"torch"``, else numpy).

    Raises:
        TypeError: if ``mask`` is not an ndarray/tensor of bool, integer or float dtype.
        ValueError: for a 0-d mask, bad ``spatial_dims``, ``spacing``, ``backend`` or ``threads``.

    Shape:
        - mask: ``[..., *spatial]``; output: the same.

    Example:
        >>> signed_distance(np.array([0, 1, 1, 1, 0]), spacing=0.5)
        array([ 0.5, -0.5, -1. , -0.5,  0.5], dtype=float32)
    """
    return _run("signed", mask, spacing, backend, threads, spatial_dims, max_distance)


def _run(kind: str, mask: Any, spacing: Any, backend: Any, threads: Any, spatial_dims: Any, bound: Any) -> Map:
    """Validate, then compute the ``kind`` map (``"foreground"``, ``"interface"``, ``"signed"``) on ``backend``."""
    fg, spacing, backend, threads = prepare_distance_args(mask, spacing, backend, threads, spatial_dims)
    bound = None if bound is None else check_positive_number("max_distance", bound)
    if backend == "torch":
        d = torch_distance(fg, spacing, kind, max_distance=bound)
        return d if isinstance(mask, torch.Tensor) else d.numpy()
    d = _scaled(distance_inside, ~fg, spacing, backend, threads) if kind == "foreground" else \
        _scaled(distance_both_sides, fg, spacing, backend, threads)
    if bound is not None:
        d[d > bound] = np.inf
    if kind == "signed":
        np.negative(d, out=d, where=fg)
    return d


def _scaled(compute: Callable[..., np.ndarray], fg: np.ndarray, spacing: tuple[float, ...], backend: str,
            threads: int) -> np.ndarray:
    """``compute(v, spacing / 2^k) * 2^k`` for each volume ``v`` of ``fg`` (``2^k`` near ``max(spacing)``)."""
    scale, spatial = spacing_scale(spacing), fg.shape[fg.ndim - len(spacing):]
    step = tuple(x / scale for x in spacing)
    volumes = fg.reshape(math.prod(fg.shape[:fg.ndim - len(spacing)]), *spatial)
    if len(volumes) == 1:  # one volume: no copy
        d = compute(volumes[0], step, backend, threads)
    else:
        d = np.empty(volumes.shape, dtype=np.float32)
        for i, volume in enumerate(volumes):  # edt and scipy take one volume per call
            d[i] = compute(volume, step, backend, threads)
    return np.multiply(d, np.float32(scale), out=d).reshape(fg.shape)


def distance_inside(region: np.ndarray, spacing: tuple[float, ...], backend: str, threads: int = 1) -> np.ndarray:
    """Distance from each True voxel of ``region`` to the nearest False voxel (0 on False; inf if none).

    ``spacing`` and ``backend`` as validated by the public functions (a tuple per axis, ``"edt"``,
    ``"scipy"`` or ``"torch"``, which runs on the CPU here); ``threads`` goes to ``edt`` (scipy's EDT is
    single-threaded).

    Shape:
        - region: ``[*spatial]`` bool; output: the same, float32.

    Example:
        >>> distance_inside(np.array([True, True, False]), (1.0,), "scipy")
        array([2., 1., 0.], dtype=float32)
    """
    if region.size == 0 or region.all():
        return np.full(region.shape, np.inf, dtype=np.float32)
    if backend == "edt":
        return _edt_call(np.ascontiguousarray(region).view(np.uint8), spacing, threads)
    if backend == "torch":
        return torch_distance(torch.from_numpy(~region), spacing, "foreground").numpy()
    return ndi.distance_transform_edt(region, sampling=spacing).astype(np.float32, copy=False)


def distance_both_sides(fg: np.ndarray, spacing: tuple[float, ...], backend: str, threads: int = 1) -> np.ndarray:
    """Foreground voxels: distance to the nearest background voxel; background: to the nearest foreground.

    Arguments as for :func:`distance_inside`; no interface (empty or full ``fg``) gives ``inf``.

    Shape:
        - fg: ``[*spatial]`` bool; output: the same, float32.
    """
    if fg.size == 0 or fg.all() or not fg.any():
        return np.full(fg.shape, np.inf, dtype=np.float32)
    if backend == "edt":  # one multi-label call: labels 1 and 2 each measure to the other
        return _edt_call(np.ascontiguousarray(fg).view(np.uint8) + np.uint8(1), spacing, threads)
    if backend == "torch":
        return torch_distance(torch.from_numpy(np.ascontiguousarray(fg)), spacing, "interface").numpy()
    inside, outside = _scipy_both_sides(fg, spacing, threads)
    return np.where(fg, inside, outside)


def _scipy_both_sides(fg: np.ndarray, spacing: tuple[float, ...], threads: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances (scipy) inside ``fg`` (to the background) and inside ``~fg`` (to the foreground).

    With more than one thread allowed (``threads``) and a mask of at least
    ``SCIPY_THREADED_MIN_VOXELS`` voxels, the background side runs in a worker thread while this thread
    computes the foreground side (scipy's EDT releases the GIL); otherwise one after the other. Both
    paths make the same calls, so the results are identical.
    """
    background = ~fg
    if threads <= 1 or fg.size < SCIPY_THREADED_MIN_VOXELS:
        return distance_inside(fg, spacing, "scipy"), distance_inside(background, spacing, "scipy")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="voxweight-edt") as pool:
        outside = pool.submit(distance_inside, background, spacing, "scipy")
        inside = distance_inside(fg, spacing, "scipy")
        return inside, outside.result()


def distance_to_other_value(values: np.ndarray, spacing: tuple[float, ...], backend: str, threads: int = 1
                            ) -> np.ndarray:
    """Each voxel's distance to the nearest voxel holding a different value (non-negative ints or bools).

    For a bool array this is :func:`distance_both_sides`; all values equal (no interface) gives ``inf``.
    Arguments as for :func:`distance_inside`.

    Shape:
        - values: ``[*spatial]`` integer or bool; output: the same, float32.

    Example:
        >>> distance_to_other_value(np.array([1, 1, 2, 0]), (1.0,), "scipy")
        array([2., 1., 1., 1.], dtype=float32)
    """
    if values.dtype == bool:
        return distance_both_sides(values, spacing, backend, threads)
    if values.size == 0 or bool((values == values.flat[0]).all()):
        return np.full(values.shape, np.inf, dtype=np.float32)
    if backend == "edt":  # one multi-label call: each value measures to every other (0 shifted to 1)
        dtype = np.min_scalar_type(int(values.max()) + 1)
        return _edt_call(np.ascontiguousarray(values, dtype=dtype) + dtype.type(1), spacing, threads)
    out = np.empty(values.shape, dtype=np.float32)
    for value in np.unique(values):
        region = values == value
        out[region] = distance_inside(region, spacing, backend, threads)[region]
    return out


def _edt_call(labels: np.ndarray, spacing: tuple[float, ...], threads: int) -> np.ndarray:
    """``edt.edt`` on a C-contiguous unsigned-integer label array (anisotropy in array-axis order)."""
    anisotropy = spacing[0] if labels.ndim == 1 else spacing
    out = _edt.edt(labels, anisotropy=anisotropy, black_border=False, parallel=threads)
    return np.asarray(out, dtype=np.float32).reshape(labels.shape)
