"""Boundary bonuses of one binary, instance or class-index volume, computed where they matter (numpy only).

Both bonuses decay like ``exp(-r^2 / (2 sigma^2))``. Beyond ``r = MARGIN_SIGMAS * sigma`` (4 sigma) that
factor is below ``exp(-8) = 3.4e-4``, so distances are only computed inside bounding boxes dilated by
that margin (per axis, in voxels: ``ceil(4 sigma / spacing[i])``); outside them the bonus is set to 0.
The maps are exact wherever every distance that enters the formula is below the margin, and within
``exp(-8) * w0 < 1e-3 * w0`` of the exact map everywhere else.

Distances are measured in units of ``sigma`` (the spacing divided by ``sigma``, clamped into
``[RATIO_MIN, RATIO_MAX]``), so that any finite spacing and sigma give a finite map: beyond
``RATIO_MAX`` one voxel step puts the bonus at ``exp(-RATIO_MAX^2 / 2) = 0`` either way, below
``RATIO_MIN`` the bonus of 1e5 voxel steps is ``w0`` to float32 precision either way.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.ndimage as ndi

from voxweight.maps.distance import distance_inside, distance_to_other_value

MARGIN_SIGMAS = 4.0
RATIO_MIN = 1e-10  # spacing / sigma: below it, 1e5 steps give exp(-5e-11) == 1 in float32
RATIO_MAX = 100.0  # spacing / sigma: above it, one step gives exp(-5000) == 0


def objects_from_mask(fg: np.ndarray) -> np.ndarray:
    """Connected components of ``fg`` with full connectivity (8 in 2-D, 26 in 3-D), numbered from 1.

    Example:
        >>> objects_from_mask(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 1, 0]], bool))  # diagonal: one object
        array([[1, 0, 0],
               [0, 1, 0],
               [0, 0, 0],
               [2, 2, 0]], dtype=int32)
    """
    objects, _ = ndi.label(fg, structure=np.ones((3,) * fg.ndim, dtype=bool))
    return objects


def objects_from_instances(instances: np.ndarray) -> np.ndarray:
    """Instance ids as an integer array for ``find_objects`` (sparse huge ids renumbered 1..K, 0 kept).

    Example:
        >>> objects_from_instances(np.array([0, 7, 10**9, 7]))
        array([0, 1, 2, 1])
    """
    if instances.size and int(instances.max()) > instances.size:
        _, inverse = np.unique(instances, return_inverse=True)
        inverse = inverse.reshape(instances.shape)
        return inverse if instances.min() == 0 else inverse + 1  # keep 0 for the background
    return np.asarray(instances, dtype=np.intp)


def objects_from_classes(classes: np.ndarray) -> np.ndarray:
    """Objects of a class-index volume: each connected component (full connectivity) of each class > 0.

    Touching components of different classes are different objects. Numbered from 1, class by class.

    Example:
        >>> objects_from_classes(np.array([1, 1, 2, 0, 1]))  # classes 1 and 2 touch: three objects
        array([1, 1, 3, 0, 2])
    """
    classes = objects_from_instances(classes)  # find_objects needs small non-negative ids
    objects = np.zeros(classes.shape, dtype=np.intp)
    count = 0
    for c, box in enumerate(ndi.find_objects(classes), start=1):
        if box is None:
            continue
        components = objects_from_mask(classes[box] == c)
        inside = components > 0
        objects[box][inside] = components[inside] + count
        count += int(components.max())
    return objects


def unet_bonus(objects: np.ndarray, w0: float, sigma: float, spacing: tuple[float, ...], backend: str,
               threads: int = 1) -> np.ndarray:
    """``w0 exp(-(d1 + d2)^2 / (2 sigma^2))`` on the background (``objects == 0``), 0 on objects.

    ``d1``, ``d2``: distances to the nearest and second-nearest object, kept with a running
    two-smallest update over the objects, each measured inside its own dilated bounding box (``inf``
    outside it). With fewer than two objects, ``d2 = inf`` everywhere and the bonus is 0.

    Args:
        objects: object ids (0 = background), ``[*spatial]``.
        w0: height of the bonus.
        sigma: width of the bonus, in ``spacing`` units.
        spacing: voxel size per axis.
        backend: ``"edt"`` or ``"scipy"``.
        threads: threads for ``edt`` (and scipy's two sides).

    Example:
        >>> unet_bonus(np.array([1, 0, 0, 2]), 1.0, 1.0, (1.0,), "scipy").round(4)  # d1 + d2 = 3 between
        array([0.    , 0.0111, 0.0111, 0.    ], dtype=float32)
    """
    present = [(k + 1, box) for k, box in enumerate(ndi.find_objects(objects)) if box is not None]
    if len(present) < 2 or w0 == 0:
        return np.zeros(objects.shape, dtype=np.float32)
    spacing = relative_spacing(sigma, spacing)
    margin = _margin(spacing)
    d1 = np.full(objects.shape, np.inf, dtype=np.float32)
    d2 = np.full(objects.shape, np.inf, dtype=np.float32)
    for k, box in present:
        crop = _dilate(box, margin, objects.shape)
        dk = distance_inside(objects[crop] != k, spacing, backend, threads)
        v1, v2 = d1[crop], d2[crop]  # views: updated in place
        np.minimum(v2, np.maximum(v1, dk), out=v2)
        np.minimum(v1, dk, out=v1)
    bonus = np.add(d1, d2, out=d1)  # in place, whole arrays: faster than masked indexing; inf -> exp(-inf) = 0
    np.multiply(bonus, bonus, out=bonus)
    np.multiply(bonus, np.float32(-0.5), out=bonus)
    np.exp(bonus, out=bonus)
    np.multiply(bonus, np.float32(w0), out=bonus)
    bonus[objects != 0] = 0.0
    return bonus


def distance_bonus(fg: np.ndarray, w0: float, sigma: float, spacing: tuple[float, ...], backend: str,
                   threads: int = 1) -> np.ndarray:
    """``w0 exp(-d^2 / (2 sigma^2))`` everywhere, ``d`` the distance to the nearest voxel of another value.

    ``fg`` is a bool mask (``d`` is then the two-sided distance to the interface) or non-negative class
    indices (interfaces between any two classes, background included). Measured inside the non-zero
    voxels' bounding box dilated by the margin: that box holds every non-zero voxel and, within the
    margin, the nearest voxel of another value of every voxel in it, so distances inside it are exact.
    No interface (a single value everywhere) gives a bonus of 0.

    Args:
        fg: bool mask or class indices, ``[*spatial]``.
        w0: height of the bonus.
        sigma: width of the bonus, in ``spacing`` units.
        spacing: voxel size per axis.
        backend: ``"edt"`` or ``"scipy"``.
        threads: threads for ``edt`` (and scipy's two sides).

    Example:
        >>> distance_bonus(np.array([0, 0, 1, 1]), 1.0, 1.0, (1.0,), "scipy").round(4)  # d = 2, 1, 1, 2
        array([0.1353, 0.6065, 0.6065, 0.1353], dtype=float32)
    """
    bonus = np.zeros(fg.shape, dtype=np.float32)
    if w0 == 0 or fg.size == 0 or bool((fg == fg.flat[0]).all()):
        return bonus
    (box,) = ndi.find_objects((fg != 0).view(np.uint8))
    spacing = relative_spacing(sigma, spacing)
    crop = _dilate(box, _margin(spacing), fg.shape)
    d = distance_to_other_value(np.ascontiguousarray(fg[crop]), spacing, backend, threads)
    bonus[crop] = np.float32(w0) * np.exp(d * d * np.float32(-0.5))
    return bonus


def unet_objects(volume: np.ndarray, *, instances: bool, multiclass: bool) -> np.ndarray:
    """The objects a U-Net map separates: instance ids, else each class's components, else the mask's.

    Args:
        volume: instance ids (``instances``), class indices (``multiclass``) or a binary mask, ``[*spatial]``.
        instances: ``volume`` holds instance ids.
        multiclass: ``volume`` holds class indices (touching classes are different objects).

    Example:
        >>> unet_objects(np.array([1, 1, 0, 1]), instances=False, multiclass=False)
        array([1, 1, 0, 2], dtype=int32)
    """
    if instances:
        return objects_from_instances(volume)
    return objects_from_classes(volume) if multiclass else objects_from_mask(volume)


def count_objects(objects: np.ndarray) -> int:
    """Number of distinct object ids > 0 in ``objects`` (as numbered by the ``objects_from_*`` functions).

    Example:
        >>> count_objects(np.array([0, 1, 1, 0, 3]))
        2
    """
    return sum(box is not None for box in ndi.find_objects(objects)) if objects.size else 0


def relative_spacing(sigma: float, spacing: tuple[float, ...]) -> tuple[float, ...]:
    """``spacing / sigma`` per axis, clamped into ``[RATIO_MIN, RATIO_MAX]`` (distances in units of sigma).

    The bonuses depend on distances only through ``d / sigma``, and the clamp leaves them unchanged in
    float32 (see the module docstring), while every distance transform stays finite.

    Example:
        >>> relative_spacing(2.0, (1.0, 1e30, 1e-300))
        (0.5, 100.0, 1e-10)
    """
    return tuple(min(max(s / sigma, RATIO_MIN), RATIO_MAX) for s in spacing)


def _margin(spacing: tuple[float, ...]) -> tuple[int, ...]:
    return tuple(math.ceil(MARGIN_SIGMAS / s) for s in spacing)


def _dilate(box: tuple[slice, ...], margin: tuple[int, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(max(0, b.start - m), min(n, b.stop + m)) for b, m, n in zip(box, margin, shape, strict=True))
