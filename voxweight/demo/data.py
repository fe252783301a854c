"""Built-in synthetic data for the demo: small, touching objects in noisy, anisotropic NIfTI volumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

__all__ = ["synthetic_volume", "write_synthetic_dataset"]


def synthetic_volume(shape: tuple[int, int, int], spacing: tuple[float, float, float], rng: np.random.Generator,
                     n_objects: int = 8, n_touching: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """One noisy image and its binary label: small ellipsoids, some in touching pairs.

    Radii are drawn in millimetres (2.5-4 mm), so objects are round in physical space whatever the
    voxel ``spacing``. Touching pairs share a boundary, which plain BCE tends to merge.

    Returns:
        ``(image float32, label uint8)``, both of ``shape``.

    Example:
        >>> import numpy as np
        >>> image, label = synthetic_volume((48, 48, 24), (1.0, 1.0, 2.0), np.random.default_rng(0))
        >>> image.shape, label.dtype.name, bool(0.005 < label.mean() < 0.05)
        ((48, 48, 24), 'uint8', True)
    """
    grid = np.stack(np.meshgrid(*[np.arange(s) * sp for s, sp in zip(shape, spacing, strict=True)],
                                indexing="ij"), axis=-1)
    extent = np.array(shape) * np.array(spacing)
    label = np.zeros(shape, dtype=bool)
    for i in range(n_objects):
        radius = rng.uniform(2.5, 4.0)
        centre = rng.uniform(radius + 2, extent - radius - 2)
        label |= np.linalg.norm(grid - centre, axis=-1) <= radius
        if i < n_touching:  # a second object touching the first
            direction = rng.normal(size=3)
            other = rng.uniform(2.5, 4.0)
            centre2 = np.clip(centre + direction / np.linalg.norm(direction) * (radius + other), other + 1,
                              extent - other - 1)
            label |= np.linalg.norm(grid - centre2, axis=-1) <= other
    noise = ndimage.gaussian_filter(rng.normal(size=shape), sigma=0.7)
    image = 1.2 * label + noise / noise.std() * 0.6
    return image.astype(np.float32), label.astype(np.uint8)


def write_synthetic_dataset(out_dir: str | Path, n: int, *, shape: tuple[int, int, int] = (48, 48, 24),
                            spacing: tuple[float, float, float] = (1.0, 1.0, 2.0), seed: int = 0,
                            prefix: str = "case") -> list[dict[str, str]]:
    """Write ``n`` image/label pairs as ``.nii.gz`` (with ``spacing`` in the header) and list them.

    Returns:
        MONAI-style items ``[{"image": path, "label": path}, ...]``.

    Example:
        >>> import tempfile
        >>> items = write_synthetic_dataset(tempfile.mkdtemp(), 1, shape=(16, 16, 8))
        >>> sorted(items[0])
        ['image', 'label']
    """
    import nibabel as nib

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    affine = np.diag([*spacing, 1.0])
    items = []
    for i in range(n):
        image, label = synthetic_volume(shape, spacing, rng)
        paths = {"image": out / f"{prefix}{i:03d}_image.nii.gz", "label": out / f"{prefix}{i:03d}_label.nii.gz"}
        nib.save(nib.Nifti1Image(image, affine), paths["image"])
        nib.save(nib.Nifti1Image(label, affine), paths["label"])
        items.append({k: str(v) for k, v in paths.items()})
    return items
