"""The study's synthetic cases: separated blobs, touching pairs, or a vessel tree, with a 1-5% foreground.

Every case draws a target foreground fraction ``f ~ U(1.5%, 4%)`` and grows objects towards it. Blobs and
touching pairs are axis-aligned ellipsoids whose semi-axes are drawn in mm (``U(2.5, 4) * U(0.8, 1.2)`` per
axis, times ``min(1, E / 40 mm)`` with ``E`` the volume's smallest extent in mm), so they are round in physical
space whatever the spacing. Each is centred on a voxel, which makes every object one 6-connected component. An
object is kept when it fits inside the volume, keeps the foreground at most 5%, and its centre lies farther than
``R_i + R_j + max(spacing)`` from every other object's (``R`` the largest semi-axis): then no voxel of one is
a face neighbour of another's, so separated objects never touch. A touching pair is two ellipsoids whose
centres lie ``U(0.7, 0.85)`` times the sum of their radii along a random direction apart; each voxel of their
union goes to the ellipsoid with the smaller ``sum(((x - c) / a)^2)``, then the second loses every voxel next to
the first (face, edge or corner): the pair is separated by a one-voxel border of background, as annotated
touching cells are (the separation the U-Net map emphasises), and carries two instance ids. A pair is kept only
when both halves are non-empty, 6-connected and one voxel apart.
Objects stop at the target or after 400 draws (a volume too small to hold the target stays below it).

Vessels are :func:`voxweight.study.vessels.vessel_tree` (its own image) with radii ``(t / 3, t)`` voxels of
the finest axis; the tree's centre lines come from a seed drawn first, so a larger ``t`` gives a superset, and
``t`` is bisected in log space until the foreground is within a factor 1.25 of the target (on a volume so
small that the centre lines alone pass 5%, the thinnest tree is kept).

Images are ``c_k`` on object ``k`` (``c_k ~ U(0.9, 1.5)``, so touching neighbours differ a little) plus
Gaussian noise smoothed with ``sigma = 0.7`` voxels and scaled to a standard deviation of 0.6.
:func:`write_synthetic_study` writes such cases as a nnU-Net raw dataset folder.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from voxweight._validate import check_positive_int, check_spacing, describe, look_up_option
from voxweight.study.files import save_atomic
from voxweight.study.vessels import vessel_tree

__all__ = ["SYNTHETIC_KINDS", "check_seed", "check_synthetic_args", "synthetic_case", "write_synthetic_study"]

SYNTHETIC_KINDS = ("blobs", "touching", "vessels")
_FULL = np.ones((3, 3, 3), dtype=bool)  # full connectivity
_TARGET = (0.015, 0.04)  # the drawn foreground fraction's range
_MAX_FOREGROUND = 0.05
_RADIUS_MM, _ELONGATION = (2.5, 4.0), (0.8, 1.2)
_FULL_EXTENT_MM = 40.0  # smaller volumes get proportionally smaller objects
_PAIR_SHARE = 0.8  # share of the touching kind's objects drawn as pairs (the first always is)
_ATTEMPTS = 400
_CONTRAST, _NOISE = (0.9, 1.5), 0.6
_MAX_ID = np.iinfo(np.uint16).max


def check_synthetic_args(kind: Any, shape: Any, spacing: Any) -> tuple[str, tuple[int, int, int],
                                                                    tuple[float, float, float]]:
    """Validate a synthetic case's ``kind`` (with "did you mean"), ``shape`` (3 ints >= 8) and ``spacing``.

    Returns:
        ``(kind, shape, spacing)``, the shape as ints and the spacing as 3 floats (a number means isotropic).

    Raises:
        ValueError: for an unknown kind, a shape of other than 3 sizes or a size below 8, a bad spacing.
        TypeError: for a non-integer size or a spacing that is not numbers.

    Example:
        >>> check_synthetic_args("touching", [16, 16, 8], 2)
        ('touching', (16, 16, 8), (2.0, 2.0, 2.0))
        >>> check_synthetic_args("blob", (16, 16, 8), 1.0)
        Traceback (most recent call last):
        ...
        ValueError: kind: expected one of 'blobs', 'touching', 'vessels', got 'blob' (did you mean 'blobs'?)
    """
    kind = look_up_option("kind", kind, SYNTHETIC_KINDS)
    shape = tuple(shape.tolist()) if isinstance(shape, np.ndarray) else shape
    if not isinstance(shape, Sequence) or isinstance(shape, str) or len(shape) != 3:
        raise ValueError(f"shape: expected 3 sizes (a 3-D volume), got {shape!r}")
    sizes = tuple(check_positive_int(f"shape[{i}]", s) for i, s in enumerate(shape))
    if min(sizes) < 8:
        raise ValueError(f"shape: expected sizes >= 8, got {list(sizes)}")
    return kind, sizes, check_spacing("spacing", spacing, 3)  # type: ignore[return-value]


def check_seed(name: str, seed: Any) -> int:
    """Require an integer >= 0 (not a bool), the seeds :func:`numpy.random.default_rng` takes; return it as ``int``.

    Example:
        >>> check_seed("seed", np.int64(3))
        3
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"{name}: expected an integer >= 0, got {describe(seed)}")
    if seed < 0:
        raise ValueError(f"{name}: expected an integer >= 0, got {seed}")
    return int(seed)


def synthetic_case(kind: str, shape: Sequence[int], spacing: float | Sequence[float], rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One synthetic case: a noisy image, its binary label and (blobs, touching) its instance ids.

    See the module docstring for how objects are drawn and placed.

    Args:
        kind: ``"blobs"`` (separated ellipsoids), ``"touching"`` (mostly touching pairs) or ``"vessels"``.
        shape: 3 sizes, each at least 8.
        spacing: voxel size per axis in mm (or one number for all).
        rng: every draw comes from it, so a seeded generator gives the same case.

    Returns:
        ``(image float32, label uint8 0/1, instances uint16 | None)``; ``instances`` is 0 on the background and
        ``1..K`` on the objects (None for vessels); ``label == (instances > 0)``.

    Raises:
        ValueError, TypeError: as :func:`check_synthetic_args`.

    Shape:
        - image, label, instances: ``shape``.

    Example:
        >>> image, label, instances = synthetic_case("touching", (32, 32, 16), (1.0, 1.0, 2.0),
        ...                                          np.random.default_rng(0))
        >>> image.dtype.name, label.dtype.name, instances.dtype.name, bool(0.01 <= label.mean() <= 0.05)
        ('float32', 'uint8', 'uint16', True)
    """
    kind, sizes, steps = check_synthetic_args(kind, shape, spacing)
    target = rng.uniform(*_TARGET)
    if kind == "vessels":
        image, label = _vessels(sizes, steps, rng, target)
        return image, label, None
    instances = _objects(sizes, steps, rng, target, pairs=kind == "touching")
    contrast = np.concatenate([[0.0], rng.uniform(*_CONTRAST, int(instances.max()))])
    noise = ndimage.gaussian_filter(rng.normal(size=sizes), sigma=0.7)
    image = contrast[instances] + noise / noise.std() * _NOISE
    return image.astype(np.float32), (instances > 0).astype(np.uint8), instances


def _vessels(shape: tuple[int, ...], spacing: tuple[float, ...], rng: np.random.Generator, target: float
             ) -> tuple[np.ndarray, np.ndarray]:
    seed = int(rng.integers(2**32))
    lo, hi = math.log(0.3), math.log(max(shape) / 4)
    for _ in range(12):
        t = math.exp((lo + hi) / 2)
        image, label = vessel_tree(shape, spacing, np.random.default_rng(seed), radius=(t / 3, t))
        ratio = label.mean() / target
        if 0.8 <= ratio <= 1.25:
            break
        lo, hi = (lo, math.log(t)) if ratio > 1 else (math.log(t), hi)
    return image, label


def _objects(shape: tuple[int, ...], spacing: tuple[float, ...], rng: np.random.Generator, target: float, *,
             pairs: bool) -> np.ndarray:
    """Instance ids ``uint16`` of separated ellipsoids or pairs, grown until the foreground reaches ``target``."""
    instances = np.zeros(shape, dtype=np.uint16)
    placed: list[tuple[np.ndarray, float]] = []  # (centre mm, largest semi-axis mm)
    scale = min(1.0, min(s * p for s, p in zip(shape, spacing, strict=True)) / _FULL_EXTENT_MM)
    gap, budget, filled = max(spacing), _MAX_FOREGROUND * instances.size, 0
    for _ in range(_ATTEMPTS):
        if filled >= target * instances.size or len(placed) + 2 > _MAX_ID:
            break
        pair = pairs and (not placed or rng.uniform() < _PAIR_SHARE)
        group = _draw_group(shape, spacing, rng, scale, pair)
        if group is None or filled + sum(int(m.sum()) for _, m, _, _ in group) > budget:
            continue
        if any(np.linalg.norm(c - d) <= r + s + gap for _, _, c, r in group for d, s in placed):
            continue
        for box, mask, centre, radius in group:
            instances[box][mask] = len(placed) + 1
            placed.append((centre, radius))
            filled += int(mask.sum())
    return instances


Group = list[tuple[tuple[slice, ...], np.ndarray, np.ndarray, float]]  # (box, mask in the box, centre mm, radius mm)


def _draw_group(shape: tuple[int, ...], spacing: tuple[float, ...], rng: np.random.Generator, scale: float,
                pair: bool) -> Group | None:
    """One ellipsoid, or a touching pair; None when it does not fit in the volume or the pair does not touch."""
    steps = np.asarray(spacing)
    axes = [rng.uniform(*_RADIUS_MM) * scale * rng.uniform(*_ELONGATION, 3) for _ in range(1 + pair)]
    margin = np.ceil(axes[0] / steps).astype(int)
    if (2 * margin >= np.array(shape)).any():
        return None
    first = np.array([rng.integers(m, s - m) for m, s in zip(margin, shape, strict=True)])
    centres = [first]
    if pair:
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        reach = sum(1.0 / math.sqrt(float(np.sum(u**2 / a**2))) for a in axes)  # each ellipsoid's extent along u
        centres.append(np.rint(first + rng.uniform(0.7, 0.85) * reach * u / steps).astype(int))
    low = np.min([c - np.ceil(a / steps) for c, a in zip(centres, axes, strict=True)], axis=0).astype(int)
    high = np.max([c + np.ceil(a / steps) for c, a in zip(centres, axes, strict=True)], axis=0).astype(int)
    if (low < 0).any() or (high >= np.array(shape)).any():
        return None
    box = tuple(slice(lo, hi + 1) for lo, hi in zip(low, high, strict=True))
    grid = np.indices(tuple(high - low + 1)).transpose(1, 2, 3, 0)
    q = np.stack([np.sum(((grid + low - c) * steps / a) ** 2, axis=-1) for c, a in zip(centres, axes, strict=True)])
    inside = q.min(axis=0) <= 1.0
    masks = [inside & (q.argmin(axis=0) == k) for k in range(len(centres))]
    if pair:  # the annotators' border: the second loses its voxels next to the first (full connectivity)
        masks[1] &= ~ndimage.binary_dilation(masks[0], structure=_FULL)
    if pair and not _touching_pair(*masks):
        return None
    return [(box, m, c * steps, float(a.max())) for m, c, a in zip(masks, centres, axes, strict=True)]


def _touching_pair(a: np.ndarray, b: np.ndarray) -> bool:
    """Both non-empty, each one 6-connected component, and one voxel apart: a one-voxel border between them."""
    return (ndimage.label(a)[1] == 1 and ndimage.label(b)[1] == 1
            and bool((ndimage.binary_dilation(a, structure=_FULL, iterations=2) & b).any()))


def write_synthetic_study(out_dir: str | os.PathLike[str], kind: str, n: int, *,
                          shape: Sequence[int] = (48, 48, 24), spacing: float | Sequence[float] = (1.0, 1.0, 2.0),
                          seed: int = 0) -> Path:
    """Write ``n`` synthetic cases of ``kind`` as a nnU-Net raw dataset folder and return the folder.

    Case ``i`` is :func:`~voxweight.study.synthetic.synthetic_case` drawn from ``np.random.default_rng(seed)``
    (the cases in turn): ``imagesTr/case_{i:03d}_0000.nii.gz`` (float32), ``labelsTr/case_{i:03d}.nii.gz``
    (uint8 0/1) and, for blobs and touching, ``instancesTr/case_{i:03d}.nii.gz`` (uint16 ids, touching objects
    separate), with the affine ``diag(*spacing, 1)``, plus a ``dataset.json``. Each file is written to a hidden
    temporary name in its folder and renamed, so a reader never sees half a file. Files of an earlier, larger
    dataset in the folder are not removed.

    Args:
        out_dir: the dataset folder (created if missing).
        kind: one of :data:`SYNTHETIC_KINDS`.
        n: the number of cases, at least 1.
        shape: 3 sizes per volume, each at least 8.
        spacing: voxel size per axis in mm.
        seed: the seed of every draw (the same seed writes the same arrays).

    Returns:
        ``Path(out_dir)``.

    Raises:
        ValueError, TypeError: for an unknown kind (with "did you mean"), ``n < 1``, a bad shape or spacing.

    Example:
        >>> import tempfile
        >>> folder = write_synthetic_study(tempfile.mkdtemp(), "touching", 2, shape=(16, 16, 8))
        >>> sorted(p.name for p in (folder / "instancesTr").iterdir())
        ['case_000.nii.gz', 'case_001.nii.gz']
    """
    import nibabel as nib

    kind, sizes, steps = check_synthetic_args(kind, shape, spacing)
    count, seed = check_positive_int("n", n), check_seed("seed", seed)
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    affine = np.diag([*steps, 1.0])
    for i in range(count):
        image, label, instances = synthetic_case(kind, sizes, steps, rng)
        arrays = {"imagesTr": image, "labelsTr": label, "instancesTr": instances}
        for folder, array in arrays.items():
            if array is not None:
                name = f"case_{i:03d}_0000.nii.gz" if folder == "imagesTr" else f"case_{i:03d}.nii.gz"
                nifti = nib.Nifti1Image(array, affine)
                nifti.header.set_xyzt_units("mm")
                save_atomic(out / folder / name, lambda path, img=nifti: nib.save(img, path))
    meta = {"channel_names": {"0": "synthetic"}, "labels": {"background": 0, "foreground": 1},
            "numTraining": count, "file_ending": ".nii.gz", "voxweight_synthetic": kind, "seed": seed}
    save_atomic(out / "dataset.json", lambda path: Path(path).write_text(json.dumps(meta, indent=2) + "\n"))
    return out
