"""``voxweight preview``: three orthogonal slices of a label map and its weight map, saved as a PNG."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["foreground_centre", "register"]

DPI = 100
PANEL_INCHES = 4.0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``preview`` sub-command."""
    parser = subparsers.add_parser(
        "preview", help="save orthogonal mid-slices of a label (and weight map) as a PNG",
        description="Plot three orthogonal slices (in voxel order, scaled by the header spacing) through the "
                    "foreground's centre of mass (the volume centre when there is no foreground) of a 3D "
                    "label map, and of its weight map with a colour bar. Needs no display (matplotlib Agg).",
    )
    parser.add_argument("label", metavar="LABEL", help="3D label map (.nii, .nii.gz)")
    parser.add_argument("--weights", metavar="MAP",
                        help="weight map with the label's shape (e.g. from voxweight weights)")
    parser.add_argument("--out", metavar="PNG", required=True, help="output image, written atomically")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from voxweight.cli.atomic import atomic_path
    from voxweight.stats import load_label

    label, image = load_label(args.label)
    if label.ndim != 3:
        raise ValueError(f"{args.label}: expected a 3D label map, got shape {list(label.shape)}")
    spacing = tuple(float(z) for z in image.header.get_zooms()[:3])
    weights = None if args.weights is None else _load_weights(args.weights, label.shape)
    centre = foreground_centre(label > 0)
    figure = _plot(label, weights, centre, spacing)
    with atomic_path(args.out) as tmp:
        figure.savefig(tmp, dpi=DPI, format="png")
    print(f"wrote {args.out} (slices through voxel {list(centre)}; {int(np.count_nonzero(label))} foreground voxels)")
    return 0


def _load_weights(path: str, shape: tuple[int, ...]) -> Any:
    import nibabel as nib
    import numpy as np

    weights = np.asarray(nib.load(path).dataobj, dtype=np.float32)
    while weights.ndim > 3 and weights.shape[-1] == 1:
        weights = weights[..., 0]
    if weights.shape != shape:
        raise ValueError(f"--weights: expected the label's shape {list(shape)}, got {list(weights.shape)} in {path}")
    if not np.all(np.isfinite(weights)):
        raise ValueError(f"--weights: expected finite values, got NaN or inf in {path}")
    return weights


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


def _plot(label: Any, weights: Any, centre: tuple[int, ...], spacing: tuple[float, ...]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = int(label.max()) + 1
    rows = [("label", label, _label_cmap(n), -0.5, n - 0.5)]
    if weights is not None:
        rows.append(("weight", weights, "magma", float(weights.min()), float(weights.max())))
    figure = Figure(figsize=(3 * PANEL_INCHES, PANEL_INCHES * len(rows)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(rows), 3, squeeze=False)
    names = ("x", "y", "z")
    for r, (what, volume, cmap, vmin, vmax) in enumerate(rows):
        for axis in range(3):
            kept = [a for a in range(3) if a != axis]
            plane = volume.take(centre[axis], axis=axis).T  # rows: second kept axis, columns: first
            ax = axes[r, axis]
            shown = ax.imshow(plane, cmap=cmap, vmin=vmin, vmax=vmax, origin="lower", interpolation="nearest",
                              aspect=spacing[kept[1]] / spacing[kept[0]])
            ax.set_title(f"{what}, {names[axis]} = {centre[axis]}")
            ax.set_xlabel(names[kept[0]])
            ax.set_ylabel(names[kept[1]])
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
