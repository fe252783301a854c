"""``voxweight weights``: a float32 voxel weight map for a NIfTI label map, same affine and header."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``weights`` sub-command."""
    parser = subparsers.add_parser(
        "weights", help="write a voxel weight map (class balance and/or boundary emphasis) for a label file",
        description="Build a float32 weight map for a 2D/3D label map (foreground = label > 0) and save it with "
                    "the label's affine and header. --class-balance weights foreground and background voxels, "
                    "--boundary adds a bonus near object borders using the header spacing; with both, "
                    "w = class_weight + (boundary - 1).",
    )
    parser.add_argument("label", metavar="LABEL", help="label map (.nii, .nii.gz)")
    parser.add_argument("out", metavar="OUT", help="output weight map (.nii.gz or .nii), written atomically")
    parser.add_argument("--class-balance", action="store_true",
                        help="weight foreground and background so that each has half the total weight "
                             "(0.5 / fraction, 'balanced')")
    parser.add_argument("--boundary", choices=("unet", "distance"),
                        help="boundary emphasis: U-Net's w0*exp(-(d1+d2)^2/(2 sigma^2)) between objects, or "
                             "w0*exp(-d^2/(2 sigma^2)) on both sides of the foreground's surface")
    parser.add_argument("--sigma", type=float, metavar="S",
                        help="boundary width in the header's units, usually mm (default 5)")
    parser.add_argument("--w0", type=float, metavar="W", help="height of the boundary bonus (default 10)")
    parser.set_defaults(func=_run, parser=parser)


def _run(args: argparse.Namespace) -> int:
    if not (args.class_balance or args.boundary):
        args.parser.error("expected --class-balance and/or --boundary, got neither (the map would be all ones)")
    if args.boundary is None and (args.sigma is not None or args.w0 is not None):
        args.parser.error("--sigma and --w0 need --boundary")
    from voxweight.cli.atomic import atomic_path
    from voxweight.stats import load_label

    label, image = load_label(args.label)
    spacing = tuple(float(z) for z in image.header.get_zooms()[:label.ndim])
    weights = _build_weights(label, spacing, class_balance=args.class_balance, boundary=args.boundary,
                            sigma=args.sigma, w0=args.w0)
    with atomic_path(args.out) as tmp:
        _save_like(weights, image, tmp)
    print(f"wrote {args.out}: shape {list(weights.shape)}, weights in [{weights.min():.4g}, {weights.max():.4g}], "
          f"mean {weights.mean(dtype='float64'):.4g}")
    return 0


def _build_weights(label: Any, spacing: tuple[float, ...], *, class_balance: bool, boundary: str | None,
                  sigma: float | None, w0: float | None) -> Any:
    """``w_c`` (class balance, else 1) plus the boundary bonus ``boundary - 1``, as float32.

    The foreground is ``label > 0`` (every class), so the class balance is foreground vs background and
    the U-Net objects are the connected components of the foreground; ``spacing`` is in the header's
    units, like ``sigma``.
    """
    import numpy as np

    from voxweight.maps import boundary_weights, class_balance_weights

    dims, foreground = label.ndim, label > 0
    weights = np.ones(label.shape, dtype=np.float32)
    if class_balance:
        weights = class_balance_weights(foreground, spatial_dims=dims)
    if boundary is not None:
        options = {k: v for k, v in (("sigma", sigma), ("w0", w0)) if v is not None}
        bonus = boundary_weights(foreground, mode=boundary, spacing=spacing, spatial_dims=dims, **options) - 1
        weights = weights + bonus
    return np.asarray(weights, dtype=np.float32)


def _save_like(weights: Any, image: Any, path: Any) -> None:
    import nibabel as nib
    import numpy as np

    header = image.header.copy()
    header.set_data_dtype(np.float32)
    out = nib.Nifti1Image(weights.reshape(weights.shape + (1,) * (len(image.shape) - weights.ndim)),
                          image.affine, header)
    out.header.set_slope_inter(1.0, 0.0)
    out.header["descrip"] = b"voxweight weight map"
    nib.save(out, str(path))
