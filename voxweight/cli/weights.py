"""``voxweight weights``: a float32 voxel weight map for a NIfTI label map, same affine and header."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

__all__ = ["OUTPUT_SUFFIXES", "count_objects", "register"]

OUTPUT_SUFFIXES = (".nii", ".nii.gz")
BALANCE_MODES = ("balanced", "inverse_frequency", "sqrt_inverse")  # voxweight.maps.BALANCE_MODES (not imported here)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``weights`` sub-command."""
    parser = subparsers.add_parser(
        "weights", help="write a voxel weight map (class balance and/or boundary emphasis) for a label file",
        description="Build a float32 weight map for a 2D/3D label map (foreground = label > 0, or every class "
                    "with --multiclass) and save it with the label's affine and header. --class-balance weights "
                    "the classes, --boundary adds a bonus near object borders using the header spacing (or "
                    "--spacing); with both, w = class_weight + (boundary - 1).",
    )
    parser.add_argument("label", metavar="LABEL", help="label map (.nii, .nii.gz)")
    parser.add_argument("out", metavar="OUT", help="output weight map (.nii.gz or .nii), written atomically")
    balance = parser.add_argument_group("class balance")
    balance.add_argument("--class-balance", action="store_true",
                         help="weight the classes from the label's own frequencies (--balance-mode) or with fixed "
                              "--fg-weight/--bg-weight")
    balance.add_argument("--balance-mode", choices=BALANCE_MODES,
                         help="balanced: 0.5 / fraction (mean weight 1, the default); inverse_frequency: "
                              "1 / fraction; sqrt_inverse: 1 / sqrt(fraction)")
    balance.add_argument("--fg-weight", type=float, metavar="A", help="fixed foreground weight (binary labels)")
    balance.add_argument("--bg-weight", type=float, metavar="B", help="fixed background weight (binary labels)")
    balance.add_argument("--max-weight", type=float, metavar="M", help="upper bound of the class weights")
    bonus = parser.add_argument_group("boundary emphasis")
    bonus.add_argument("--boundary", choices=("unet", "distance"),
                       help="U-Net's w0*exp(-(d1+d2)^2/(2 sigma^2)) between objects, or "
                            "w0*exp(-d^2/(2 sigma^2)) on both sides of the foreground's surface")
    bonus.add_argument("--sigma", type=float, metavar="S",
                       help="boundary width in the spacing's units, usually mm (default 5)")
    bonus.add_argument("--w0", type=float, metavar="W", help="height of the boundary bonus (default 10)")
    bonus.add_argument("--instances", metavar="FILE",
                       help="instance map (integer ids, 0 = background) whose ids are the U-Net objects, so that "
                            "touching objects are separated (--boundary unet)")
    parser.add_argument("--multiclass", action="store_true",
                        help="read the label as class indices: per-class balance weights, boundaries between any "
                             "two classes, each component of each class an object")
    parser.add_argument("--spacing", type=float, nargs="+", metavar="MM",
                        help="voxel size per axis (one value for all), instead of the header's")
    parser.set_defaults(func=_run, parser=parser)


def _check_usage(args: argparse.Namespace) -> None:
    """Refuse option combinations that would be ignored (argparse's exit code 2)."""
    error = args.parser.error
    if not (args.class_balance or args.boundary):
        error("expected --class-balance and/or --boundary, got neither (the map would be all ones)")
    if args.boundary is None and (args.sigma is not None or args.w0 is not None or args.instances is not None):
        error("--sigma, --w0 and --instances need --boundary")
    if args.instances is not None and args.boundary != "unet":
        error("--instances: expected --boundary unet (instances split the U-Net's objects), got --boundary distance")
    if not args.class_balance and any(v is not None for v in (args.balance_mode, args.fg_weight, args.bg_weight,
                                                               args.max_weight)):
        error("--balance-mode, --fg-weight, --bg-weight and --max-weight need --class-balance")
    if (args.fg_weight is not None or args.bg_weight is not None) and (args.multiclass or args.balance_mode):
        error("--fg-weight/--bg-weight: expected binary class balance without --balance-mode or --multiclass, "
              "got both")


def _run(args: argparse.Namespace) -> int:
    _check_usage(args)
    from voxweight.cli.atomic import DataError, check_not_an_input, check_suffix, read_input
    from voxweight.stats import load_label

    check_not_an_input("OUT", args.out, [args.label, args.instances])
    check_suffix("OUT", args.out, OUTPUT_SUFFIXES)
    label, image = read_input(args.label, load_label)
    spacing = _spacing(args, label.ndim, image)
    instances = None
    if args.instances is not None:
        instances, _ = read_input(args.instances, load_label, "--instances")
        if instances.shape != label.shape:
            raise DataError(args.instances, f"--instances: expected the label's shape {list(label.shape)}, got "
                                            f"{list(instances.shape)}")
    weights, notes = _build_weights(args, label, spacing, instances)
    if not weights.size or not bool(((weights >= 0) & (weights < math.inf)).all()):
        raise DataError(args.label, "expected a finite weight map, got inf or NaN (lower --max-weight or --w0)")
    from voxweight.cli.atomic import atomic_path

    with atomic_path(args.out) as tmp:
        _save_like(weights, image, tmp)
    for note in notes:
        print(note)
    print(f"wrote {args.out}: shape {list(weights.shape)}, weights in [{weights.min():.4g}, {weights.max():.4g}], "
          f"mean {weights.mean(dtype='float64'):.4g}")
    return 0


def _spacing(args: argparse.Namespace, ndim: int, image: Any) -> tuple[float, ...]:
    """``--spacing`` (one value, or one per axis), else the header's zooms; checked finite and > 0."""
    from voxweight.cli.atomic import DataError

    if args.spacing is not None:
        if len(args.spacing) not in (1, ndim):
            args.parser.error(f"--spacing: expected 1 or {ndim} values (the label is {ndim}D), "
                              f"got {len(args.spacing)}")
        values = tuple(args.spacing) * (ndim if len(args.spacing) == 1 else 1)
        if not all(math.isfinite(v) and v > 0 for v in values):
            args.parser.error(f"--spacing: expected finite numbers > 0, got {list(args.spacing)}")
        return values
    values = tuple(float(z) for z in image.header.get_zooms()[:ndim])
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise DataError(args.label, f"expected voxel sizes > 0 in the header, got {list(values)} (pass --spacing)")
    return values


def _build_weights(args: argparse.Namespace, label: Any, spacing: tuple[float, ...], instances: Any
                   ) -> tuple[Any, list[str]]:
    """``w_c`` (class balance, else 1) plus the boundary bonus ``boundary - 1``, as float32, and notes to print.

    Without ``--multiclass`` the foreground is ``label > 0`` (every class), so the class balance is
    foreground vs background and the U-Net objects are the connected components of the foreground.
    """
    import warnings

    import numpy as np

    from voxweight.cli.atomic import DataError, data_errors
    from voxweight.maps import boundary_weights, class_balance_weights, multiclass_balance_weights

    dims, fg = label.ndim, label > 0
    target = label if args.multiclass else fg
    notes: list[str] = []
    weights = np.ones(label.shape, dtype=np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if args.class_balance and args.multiclass:
                weights = multiclass_balance_weights(label, mode=args.balance_mode or "balanced",
                                                     max_weight=args.max_weight, spatial_dims=dims)
            elif args.class_balance:
                weights = class_balance_weights(fg, fg_weight=args.fg_weight, bg_weight=args.bg_weight,
                                                mode=args.balance_mode or "balanced", max_weight=args.max_weight,
                                                spatial_dims=dims)
            if args.boundary is not None:
                options = {k: v for k, v in (("sigma", args.sigma), ("w0", args.w0)) if v is not None}
                _check_sigma(args, options.get("sigma", 5.0), spacing)
                if args.boundary == "unet":
                    notes.append(_objects_note(count_objects(target, instances, multiclass=args.multiclass),
                                               instances is not None, args.multiclass, dims))
                bonus = boundary_weights(target, mode=args.boundary, spacing=spacing, spatial_dims=dims,
                                         instances=instances, multiclass=args.multiclass, **options) - 1
                weights = weights + bonus
        except (ValueError, TypeError) as err:
            if str(err).split(":")[0] in {"sigma", "w0", "max_weight", "fg_weight", "bg_weight"}:
                raise  # an option's own message (``sigma: expected a finite number > 0, got -1.0``)
            raise DataError(args.label, str(err)) from None
        except data_errors() as err:
            raise DataError(args.label, f"{type(err).__name__}: {err}") from None
    for warning in caught:
        print(f"voxweight weights: warning: {warning.message}", file=sys.stderr)
    return np.asarray(weights, dtype=np.float32), notes


def _check_sigma(args: argparse.Namespace, sigma: float, spacing: tuple[float, ...]) -> None:
    """A ``sigma`` whose 4-sigma margin overflows the voxel grid is a data error of this label, said before work."""
    from voxweight.cli.atomic import DataError

    if math.isfinite(sigma) and sigma > 0 and not all(math.isfinite(4 * sigma / s) for s in spacing):
        raise DataError(args.label, f"--sigma {sigma:g}: expected a width whose 4-sigma margin is a finite number "
                                    f"of voxels at spacing {list(spacing)}, got an overflow")


def count_objects(label: Any, instances: Any = None, *, multiclass: bool = False) -> int:
    """The objects the U-Net map separates: instance ids, else connected components (of each class).

    Args:
        label: the binary foreground (or, with ``multiclass``, class indices).
        instances: an instance map (integer ids, 0 = background), or None.
        multiclass: count each class's components separately (touching classes are different objects).

    Returns:
        The number of objects (full connectivity: 8 neighbours in 2D, 26 in 3D).

    Example:
        >>> import numpy as np
        >>> mask = np.zeros((4, 4, 4), dtype=bool)
        >>> mask[0, 0, 0] = mask[1, 1, 1] = mask[3, 3, 3] = True  # a diagonal pair and one voxel
        >>> count_objects(mask), count_objects(mask, np.where(mask, np.arange(1, 65).reshape(4, 4, 4), 0))
        (2, 3)
    """
    import numpy as np

    from voxweight.maps.bonus import count_objects as count
    from voxweight.maps.bonus import unet_objects

    volume = np.asarray(instances) if instances is not None else np.asarray(label)
    if instances is None and not multiclass:
        volume = volume > 0
    return count(unet_objects(volume, instances=instances is not None, multiclass=multiclass))


def _objects_note(count: int, from_instances: bool, multiclass: bool, dims: int) -> str:
    connected = f"{3 ** dims - 1}-connected components"  # full connectivity: 26 in 3D, 8 in 2D
    kind = ("instance ids" if from_instances else
            f"{connected} of each class" if multiclass else f"{connected} of label > 0")
    note = f"objects: {count} ({kind})"
    if count < 2:
        note += ": fewer than two, so the U-Net bonus is 0 everywhere (nothing to separate)"
    return note


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
