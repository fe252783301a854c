"""The ``voxweight`` command line: a thin layer over the library.

Each sub-command lives in its own module of this package and exposes ``register(subparsers)``,
which adds its parser and sets ``func(args) -> int``. Heavy modules are imported inside ``func``.
Exit codes: 0 success, 1 data error (``error: <file>: <reason>``), 2 usage error (argparse's, an output
that is an input, a format the command cannot write). A closed stdout (``| head``) ends quietly.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

# Sub-command modules, in the order ``--help`` lists them.
_COMMANDS = ("demo", "study", "bench", "stats", "weights", "preview", "nnunet_path")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every sub-command registered."""
    from voxweight import __version__

    parser = argparse.ArgumentParser(
        prog="voxweight",
        description="Voxel weight maps and a weighted BCE for class-imbalanced 3D segmentation.",
    )
    parser.add_argument("--version", action="version", version=f"voxweight {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        importlib.import_module(f"voxweight.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 data error, 2 usage error).

    Example:
        >>> from voxweight.cli import main
        >>> main(["--version"])  # doctest: +SKIP
        voxweight 0.1.0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    from voxweight.cli.atomic import DataError, UsageError, quiet_broken_pipe

    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except UsageError as err:
        print(f"voxweight {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return quiet_broken_pipe()
    except (DataError, ValueError, TypeError, OSError) as err:
        print(f"voxweight {args.command}: error: {err}", file=sys.stderr)
        return 1
