"""Synthetic vessel-tree datasets for the demo: NIfTI image/label pairs from :func:`vessel_tree`.

:func:`vessel_tree` (branching tubes on a noisy background, one connected component per tree, round in
physical space) lives in :mod:`voxweight.study.vessels`, which the study's synthetic data also draws on; it
is re-exported here, where the demo and its tests have always found it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voxweight._validate import check_positive_int, check_spacing
from voxweight.study.vessels import vessel_tree

__all__ = ["vessel_tree", "write_vessel_dataset"]


def write_vessel_dataset(out_dir: str | Path, n: int, *, shape: tuple[int, ...] = (64, 64, 48),
                         spacing: tuple[float, ...] = (0.8, 0.8, 1.0), seed: int = 0, prefix: str = "vessel",
                         radius: tuple[float, float] = (1.0, 4.0), branches: int = 15) -> list[dict[str, str]]:
    """Write ``n`` vessel-tree image/label pairs as ``.nii.gz`` (``spacing`` in the header) and list them.

    Args:
        out_dir: the folder (created if missing).
        n: the number of pairs.
        shape: the spatial shape of each volume (3 sizes for NIfTI volumes; 2 writes 2D images).
        spacing: voxel size per axis, mm.
        seed: seed of the generator all trees come from (the same seed writes the same files' contents).
        prefix: file-name prefix (``{prefix}{i:03d}_image.nii.gz``, ``..._label.nii.gz``).
        radius: ``(thinnest, thickest)`` vessel radius, as :func:`vessel_tree`.
        branches: branches per tree, as :func:`vessel_tree`.

    Returns:
        MONAI-style items ``[{"image": path, "label": path}, ...]``.

    Example:
        >>> import tempfile
        >>> items = write_vessel_dataset(tempfile.mkdtemp(), 1, shape=(16, 16, 16), branches=3)
        >>> sorted(items[0])
        ['image', 'label']
    """
    import nibabel as nib

    count = check_positive_int("n", n)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    steps = check_spacing("spacing", spacing, len(shape))
    affine = np.diag([*steps, *([1.0] * (4 - len(steps)))])
    items = []
    for i in range(count):
        image, label = vessel_tree(shape, steps, rng, radius=radius, branches=branches)
        paths = {"image": out / f"{prefix}{i:03d}_image.nii.gz", "label": out / f"{prefix}{i:03d}_label.nii.gz"}
        nib.save(nib.Nifti1Image(image, affine), paths["image"])
        nib.save(nib.Nifti1Image(label, affine), paths["label"])
        items.append({k: str(v) for k, v in paths.items()})
    return items
