"""What the benchmark cases share: separated and nested balls, the spacing and the bonus.

Separated balls are a countable set of objects (the U-Net maps); nested balls are label files with five classes
(the scan and prevalence cases).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["DTYPES", "NUM_CLASSES", "SIGMA", "SPACING", "W0", "nested_balls", "separated_balls", "write_nested_balls"]

SPACING = (2.0, 0.8, 0.8)  # anisotropic, as in a thick-slice CT (axis order of the array)
W0, SIGMA = 10.0, 5.0  # the boundary maps' bonus height and width
NUM_CLASSES = 5  # the label files of the scan and prevalence cases
DTYPES = (np.uint8, np.int16, np.uint8, np.float32)  # their on-disk dtypes


def separated_balls(size: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` balls with ids 1..count in a ``size^3`` volume, at least two voxels apart (26-connectivity).

    The cube is cut into ``n^3 >= count`` cells; each ball lies inside one cell's interior (the cell
    minus a one-voxel rim), so no two balls touch, even diagonally, and each is one connected object.
    """
    n = math.ceil(round(count ** (1 / 3), 9))
    if n > size // 3:  # cells of 3 voxels or more: a one-voxel interior inside a one-voxel rim
        raise ValueError(f"instances: expected at most {(size // 3) ** 3} objects for size {size}, got {count}")
    edges = [round(i * size / n) for i in range(n + 1)]  # consecutive edges >= size // n >= 3 apart
    rng = np.random.default_rng(seed)
    objects = np.zeros((size,) * 3, dtype=np.int32)
    for k, cell in enumerate(rng.choice(n**3, size=count, replace=False), start=1):
        box = tuple(slice(edges[i] + 1, edges[i + 1] - 1) for i in np.unravel_index(cell, (n,) * 3))
        extent = np.array([s.stop - s.start for s in box], dtype=np.float64)
        centre = (extent - 1) / 2 + rng.uniform(-0.15, 0.15, 3) * extent
        radius = rng.uniform(0.25, 0.5) * extent.min()
        grid = np.ogrid[tuple(slice(0, int(e)) for e in extent)]
        ball = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= radius**2
        ball[tuple(np.clip(np.round(centre).astype(int), 0, extent.astype(int) - 1))] = True  # never empty
        objects[box][ball] = k
    return objects


def nested_balls(size: int, seed: int) -> np.ndarray:
    """A ``size^3`` uint8 label map: a random ball of class 1 holding balls of classes 2-4, rest 0."""
    rng = np.random.default_rng(seed)
    grid = np.ogrid[tuple(slice(0, size) for _ in range(3))]
    labels = np.zeros((size,) * 3, dtype=np.uint8)
    center, radius = rng.uniform(0.35, 0.65, 3) * size, rng.uniform(0.25, 0.4) * size
    for k in range(1, NUM_CLASSES):
        inside = sum((g - c) ** 2 for g, c in zip(grid, center, strict=True)) <= radius**2
        labels[inside] = k
        center = center + rng.uniform(-0.3, 0.3, 3) * radius
        radius *= rng.uniform(0.4, 0.6)
    return labels


def write_nested_balls(folder: str | Path, size: int) -> list[str]:
    """One ``.nii.gz`` of :func:`nested_balls` per dtype of ``DTYPES`` in ``folder`` (seeds 0, 1, ...); their paths.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     [Path(p).name for p in write_nested_balls(folder, 8)][:2]
        ['label_0.nii.gz', 'label_1.nii.gz']
    """
    import nibabel as nib

    paths = []
    for i, dtype in enumerate(DTYPES):
        path = str(Path(folder) / f"label_{i}.nii.gz")
        nib.save(nib.Nifti1Image(nested_balls(size, i).astype(dtype), np.eye(4)), path)
        paths.append(path)
    return paths
