"""``voxweight preview``: three RAS slices of a label map and its weight map (over an image), saved as a figure."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["AXES", "OUTPUT_SUFFIXES", "PLANES", "foreground_centre", "register", "to_ras"]

DPI = 100
PANEL_INCHES = 4.0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``preview`` sub-command."""
    parser = subparsers.add_parser(
        "preview", help="save orthogonal slices of a label (and weight map, over an image) as a PNG",
        description="Plot the sagittal, coronal and axial slices (in RAS orientation: every volume is turned to "
                    "its closest canonical orientation from its affine; axes named, scaled by the spacing) "
                    "through the foreground's centre of mass (the volume centre when there is no foreground) of "
                    "a 3D label map, and of its weight map with a colour bar, optionally drawn over an image. "
                    "Needs no display (matplotlib Agg).",
    )
    parser.add_argument("label", metavar="LABEL", help="3D label map (.nii, .nii.gz)")
    parser.add_argument("--weights", metavar="MAP",
                        help="weight map on the label's voxel grid (e.g. from voxweight weights)")
    parser.add_argument("--image", metavar="IMAGE",
                        help="image on the label's voxel grid: the label and the map are drawn over it")
    parser.add_argument("--out", metavar="FILE", required=True,
                        help="output figure, written atomically in the format its extension names "
                             f"({', '.join(OUTPUT_SUFFIXES)})")
    parser.set_defaults(func=_run)


OUTPUT_SUFFIXES = (".pdf", ".png", ".svg")
AXES = ("L -> R", "P -> A", "I -> S")  # RAS voxel axes 0, 1, 2, in the direction of increasing index
PLANES = ("sagittal", "coronal", "axial")  # the slice across RAS axis 0, 1, 2


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from voxweight.cli.atomic import DataError, atomic_path, check_not_an_input, check_suffix, read_input

    check_not_an_input("--out", args.out, [args.label, args.weights, args.image])
    suffix = check_suffix("--out", args.out, OUTPUT_SUFFIXES)
    label, spacing = read_input(args.label, _read_label)
    volumes = {}
    for what, path in (("--weights", args.weights), ("--image", args.image)):
        if path is not None:
            volumes[what] = read_input(path, _read_volume, what)
            if volumes[what].shape != label.shape:
                raise DataError(path, f"{what}: expected the label's voxel grid {list(label.shape)} (in RAS), "
                                      f"got {list(volumes[what].shape)}")
    centre = foreground_centre(label > 0)
    figure = _plot(label, volumes.get("--weights"), volumes.get("--image"), centre, spacing)
    with atomic_path(args.out) as tmp:
        figure.savefig(tmp, dpi=DPI, format=suffix[1:])
    print(f"wrote {args.out} (RAS slices through voxel {list(centre)}; "
          f"{int(np.count_nonzero(label))} foreground voxels)")
    return 0


def to_ras(volume: Any, affine: Any, zooms: Any) -> tuple[Any, tuple[float, ...]]:
    """``volume`` turned to its closest canonical (RAS) orientation, and its voxel sizes in that order.

    The same voxels as ``nibabel.as_closest_canonical``: axes permuted and flipped following
    ``nibabel.io_orientation(affine)``, no resampling.

    Args:
        volume: a 3D array on the grid of ``affine``.
        affine: the voxel-to-world ``4 x 4`` affine.
        zooms: the voxel size along each of the three axes.

    Returns:
        ``(volume, spacing)`` in RAS axis order.

    Example:
        >>> import numpy as np
        >>> volume = np.arange(8).reshape(2, 2, 2)
        >>> ras, spacing = to_ras(volume, np.diag([-1.0, 2.0, 3.0, 1.0]), (1.0, 2.0, 3.0))  # x runs R -> L
        >>> bool((ras == volume[::-1]).all()), spacing
        (True, (1.0, 2.0, 3.0))
    """
    import nibabel as nib
    import numpy as np

    orientation = nib.io_orientation(affine)
    if np.isnan(orientation).any():  # an axis of the affine points nowhere (e.g. a zero column)
        raise ValueError(f"expected an affine whose three voxel axes each point along a world axis, got one "
                         f"nibabel cannot orient: {np.asarray(affine).tolist()}")
    transform = nib.orientations.ornt_transform(orientation, nib.orientations.axcodes2ornt("RAS"))
    spacing = [1.0, 1.0, 1.0]
    for axis, (target, _) in enumerate(transform):
        spacing[int(target)] = float(zooms[axis])
    return np.asarray(nib.orientations.apply_orientation(volume, transform)), tuple(spacing)


def _read_label(path: str) -> tuple[Any, tuple[float, ...]]:
    """A 3D label map in RAS and its spacing (an orientation the affine cannot give is this file's error)."""
    from voxweight.stats import load_label

    label, image = load_label(path)
    if label.ndim != 3:
        raise ValueError(f"expected a 3D label map, got shape {list(label.shape)}")
    return to_ras(label, image.affine, image.header.get_zooms()[:3])


def _read_volume(path: str) -> Any:
    """A 3D float32 volume in RAS (trailing axes of size 1 dropped), finite, for ``--weights``/``--image``."""
    import math
    import os

    import nibabel as nib
    import numpy as np

    image = nib.load(path)
    declared = math.prod(image.shape) * image.get_data_dtype().itemsize
    size = os.path.getsize(path)  # a gzip stream inflates at most ~1032x: more is a forged header
    if declared > (1100 * size if path.lower().endswith(".gz") else size):
        raise ValueError(f"expected a file that can hold the header's {declared} bytes of voxels, got {size} bytes "
                         f"(truncated, or a forged header)")
    volume = np.asarray(image.dataobj, dtype=np.float32)
    while volume.ndim > 3 and volume.shape[-1] == 1:
        volume = volume[..., 0]
    if volume.ndim != 3:
        raise ValueError(f"expected a 3D volume, got shape {list(volume.shape)}")
    if not np.all(np.isfinite(volume)):
        raise ValueError("expected finite values, got NaN or inf")
    return to_ras(volume, image.affine, image.header.get_zooms()[:3])[0]


def foreground_centre(mask: Any) -> tuple[int, ...]:
    """Voxel index of the centre of mass of ``mask`` (rounded), or the volume centre if it is empty.

    Example:
        >>> import numpy as np
        >>> mask = np.zeros((5, 6, 7), dtype=bool)
        >>> mask[1, 2:5, 6] = True
        >>> foreground_centre(mask), foreground_centre(np.zeros((5, 6, 7), dtype=bool))
        ((1, 3, 6), (2, 3, 3))
    """
    import numpy as np

    total = np.count_nonzero(mask)
    if total == 0:
        return tuple(n // 2 for n in mask.shape)
    centre = []
    for axis, n in enumerate(mask.shape):
        profile = mask.sum(axis=tuple(a for a in range(mask.ndim) if a != axis), dtype=np.int64)
        centre.append(int(np.floor(profile @ np.arange(n) / total + 0.5)))
    return tuple(centre)


def _plot(label: Any, weights: Any, image: Any, centre: tuple[int, ...], spacing: tuple[float, ...]) -> Any:
    """One row per volume (label, weights), three RAS planes each, over ``image`` (grey) when given."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = int(label.max()) + 1
    alpha = 1.0 if image is None else 0.55
    rows = [("label", np.ma.masked_equal(label, 0) if image is not None else label, _label_cmap(n), -0.5, n - 0.5)]
    if weights is not None:
        rows.append(("weight", weights, "magma", float(weights.min()), float(weights.max())))
    figure = Figure(figsize=(3 * PANEL_INCHES, PANEL_INCHES * len(rows)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(rows), 3, squeeze=False)
    for r, (what, volume, cmap, vmin, vmax) in enumerate(rows):
        for axis in range(3):
            kept = [a for a in range(3) if a != axis]
            ax = axes[r, axis]
            aspect = spacing[kept[1]] / spacing[kept[0]]
            if image is not None:
                ax.imshow(image.take(centre[axis], axis=axis).T, cmap="gray", origin="lower",
                          interpolation="nearest", aspect=aspect)
            plane = volume.take(centre[axis], axis=axis).T  # rows: second kept axis, columns: first
            shown = ax.imshow(plane, cmap=cmap, vmin=vmin, vmax=vmax, origin="lower", interpolation="nearest",
                              aspect=aspect, alpha=alpha)
            ax.set_title(f"{what}, {PLANES[axis]} {centre[axis]}")
            ax.set_xlabel(AXES[kept[0]])
            ax.set_ylabel(AXES[kept[1]])
        bar = figure.colorbar(shown, ax=list(axes[r]), label=what, shrink=0.8)
        if what == "label" and n <= 20:
            bar.set_ticks(range(n))
    return figure


def _label_cmap(n: int) -> Any:
    """Background black, classes 1..n-1 in distinct tab20 colours (a continuous map beyond 20 classes)."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    if n > 20:
        return colormaps["nipy_spectral"]
    tab20 = colormaps["tab20"].colors
    return ListedColormap(["black", *(tab20[0::2] + tab20[1::2])[: n - 1]], name="labels")
