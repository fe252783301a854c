"""Synthetic vessel trees: branching tubes on a noisy background, as arrays or NIfTI pairs, 2D or 3D.

:func:`vessel_tree` grows a binary tree of curved branches from a root near the first axis's low face:
each branch is a polyline of a few jittered steps, and splits in two at its end until ``branches`` have
grown. The radius falls geometrically with the generation, from ``radius[1]`` at the root to ``radius[0]``
at the last generation. Radii count voxels of the finest axis (a radius ``r`` is ``r * min(spacing)`` in
physical units), and the tubes are round in physical space: on a grid with thick slices a thin vessel may be
one voxel thick across them.

Every tube is the union of balls centred on the voxels of a centre line that moves one axis at a time (a
6-connected path in 3D, 4-connected in 2D). A ball centred on a voxel is connected in that sense and holds its
centre, so each tree is one connected component (``scipy.ndimage.label``'s default connectivity) by
construction. The image is the label, brighter, plus smoothed Gaussian noise. Everything is drawn from
``rng``, so a seed gives the same tree.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import ndimage

from voxweight._validate import check_positive_int, check_positive_number, check_spacing, describe
from voxweight.maps.distance import distance_to_foreground

__all__ = ["vessel_tree"]

_STEPS = 3  # polyline steps per branch
_CONTRAST, _NOISE = 1.2, 0.6  # vessel brightness over the background, noise standard deviation


def vessel_tree(shape: tuple[int, ...], spacing: float | tuple[float, ...], rng: np.random.Generator, *,
                radius: tuple[float, float] = (1.0, 4.0), branches: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """One noisy image and the binary label of one connected, branching vessel tree.

    Args:
        shape: the spatial shape, 2 or 3 sizes, each at least 8.
        spacing: voxel size per axis (or one number for all); the tubes are round in these units.
        rng: the random generator every draw comes from.
        radius: ``(thinnest, thickest)`` radius in voxels of the finest axis, ``0 < thinnest <= thickest``.
        branches: how many branches grow (the root is the first; each branch splits in two).

    Returns:
        ``(image float32, label uint8)``, both of ``shape``; the label is 1 on the tree.

    Raises:
        TypeError: for a non-integer ``shape`` entry or ``branches``, or a ``radius`` that is not a pair.
        ValueError: for a ``shape`` of other than 2 or 3 sizes >= 8, bad ``spacing``, or radii out of order.

    Shape:
        - image, label: ``shape``.

    Example:
        >>> image, label = vessel_tree((32, 32, 32), 1.0, np.random.default_rng(0), branches=7)
        >>> image.dtype.name, label.dtype.name, ndimage.label(label)[1]
        ('float32', 'uint8', 1)
    """
    shape, steps, (thin, thick) = _check_args(shape, spacing, radius)
    branches = check_positive_int("branches", branches)
    generations = _grow(shape, rng, branches)
    depth = max(g for g, _ in generations)
    label = np.zeros(shape, dtype=bool)
    for generation in range(depth + 1):
        centres = np.zeros(shape, dtype=bool)
        for g, path in generations:
            if g == generation:
                centres[tuple(path.T)] = True
        r = thick * (thin / thick) ** (generation / depth) if depth else thick
        label |= distance_to_foreground(centres, spacing=steps) <= r * min(steps) * (1 + 1e-6)
    noise = ndimage.gaussian_filter(rng.normal(size=shape), sigma=0.7)
    image = _CONTRAST * label + noise / noise.std() * _NOISE
    return image.astype(np.float32), label.astype(np.uint8)


def _check_args(shape: object, spacing: object, radius: object) -> tuple[tuple[int, ...], tuple[float, ...],
                                                                          tuple[float, float]]:
    if not isinstance(shape, tuple | list) or len(shape) not in (2, 3):
        raise ValueError(f"shape: expected 2 or 3 sizes, got {shape!r}")
    sizes = tuple(check_positive_int(f"shape[{i}]", s) for i, s in enumerate(shape))
    if min(sizes) < 8:
        raise ValueError(f"shape: expected sizes >= 8 (room for a tree), got {list(sizes)}")
    if not isinstance(radius, tuple | list) or len(radius) != 2:
        raise TypeError(f"radius: expected a pair (thinnest, thickest), got {describe(radius)}")
    thin, thick = (check_positive_number(f"radius[{i}]", r) for i, r in enumerate(radius))
    if thin > thick:
        raise ValueError(f"radius: expected thinnest <= thickest, got {tuple(radius)}")
    return sizes, check_spacing("spacing", spacing, len(sizes)), (thin, thick)


def _grow(shape: tuple[int, ...], rng: np.random.Generator, branches: int) -> list[tuple[int, np.ndarray]]:
    """``(generation, centre-line voxels [k, ndim])`` of each branch, grown breadth first from the root."""
    size = np.array(shape, dtype=float)
    root = size * rng.uniform(0.3, 0.7, len(shape))
    root[0] = 0.1 * size[0]
    heading = np.zeros(len(shape))
    heading[0] = 1.0
    queue, grown = [(root, heading, 0)], []
    while queue and len(grown) < branches:
        start, heading, generation = queue.pop(0)
        length = rng.uniform(0.25, 0.4) * size.min() * 0.85 ** generation
        points = [start]
        for _ in range(_STEPS):
            heading = _unit(heading + rng.normal(0.0, 0.25, len(shape)))
            points.append(np.clip(points[-1] + heading * length / _STEPS, 0, size - 1))
        grown.append((generation, _path(np.array(points))))
        for _ in range(2):
            queue.append((points[-1], _unit(heading + rng.normal(0.0, 0.8, len(shape))), generation + 1))
    return grown


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else np.eye(len(v))[0]


def _path(points: np.ndarray) -> np.ndarray:
    """The voxels along a polyline, consecutive ones differing by 1 along a single axis."""
    samples = [points[:1]]
    for a, b in itertools.pairwise(points):
        n = max(2, math.ceil(4 * float(np.abs(b - a).max())) + 1)
        samples.append(a + (b - a) * np.linspace(0.0, 1.0, n)[1:, None])
    voxels = np.rint(np.concatenate(samples)).astype(np.int64)
    path = [voxels[0]]
    for v in voxels[1:]:
        for axis in np.flatnonzero(v != path[-1]):  # one axis at a time
            step = path[-1].copy()
            step[axis] = v[axis]
            path.append(step)
    return np.array(path)
