"""Pipelines as data: MONAI bundle-syntax YAML files built into a ``monai.transforms.Compose``.

The shipped pipelines live in the top-level ``transforms/`` folder of the source tree and in the
``voxweight.pipeline_configs`` package of the wheel. Each file has top-level settings (``pixdim``,
``roi_size``, ``sigma``, ...) referenced with ``@`` and a ``pipeline`` key holding the transforms.
MONAI is imported inside the functions, so ``import voxweight`` stays light.
"""

from __future__ import annotations

import importlib.resources
import os
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxweight._validate import describe, look_up_option

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from monai.transforms import Compose

__all__ = ["PIPELINE_KEY", "list_pipelines", "load_pipeline"]

PIPELINE_KEY = "pipeline"
_SUFFIXES = (".yaml", ".yml", ".json")


def _config_dir() -> Traversable:
    """The folder of shipped YAML files: the installed package, else the source checkout's ``transforms/``."""
    try:
        folder = importlib.resources.files("voxweight.pipeline_configs")
    except (ModuleNotFoundError, TypeError):  # editable install: the nested package-dir mapping is not resolved
        folder = None
    if folder is not None and folder.is_dir():
        return folder
    package = Path(__file__).resolve().parent
    for candidate in (package / "pipeline_configs", package.parent / "transforms"):
        if candidate.is_dir() and any(candidate.glob("*.yaml")):
            return candidate
    raise FileNotFoundError(f"voxweight pipelines: expected the shipped YAML folder, got none at "
                            f"{package / 'pipeline_configs'} or {package.parent / 'transforms'}")


def list_pipelines() -> list[str]:
    """Names of the pipelines shipped with voxweight, for :func:`load_pipeline`.

    Returns:
        Sorted names (file names without ``.yaml``).

    Example:
        >>> "train_boundary" in list_pipelines()
        True
    """
    return sorted(p.name[: -len(".yaml")] for p in _config_dir().iterdir() if p.name.endswith(".yaml"))


def _is_path(name_or_path: Any) -> bool:
    if isinstance(name_or_path, os.PathLike):
        return True
    if not isinstance(name_or_path, str):
        raise TypeError(f"name_or_path: expected a pipeline name or a path, got {describe(name_or_path)}")
    return name_or_path.endswith(_SUFFIXES) or "/" in name_or_path or os.sep in name_or_path


def _locate(name_or_path: Any, stack: ExitStack) -> Path:
    """A real file path for a shipped name or a user path."""
    if _is_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"name_or_path: expected an existing YAML/JSON file or one of the shipped "
                                    f"pipelines {list_pipelines()} by name, got {str(name_or_path)!r}")
        return path
    try:
        name = look_up_option("name_or_path", name_or_path, list_pipelines())
    except ValueError as err:
        raise ValueError(f"{err}; or pass the path of a YAML/JSON file") from None
    return stack.enter_context(importlib.resources.as_file(_config_dir() / f"{name}.yaml"))


def load_pipeline(name_or_path: str | os.PathLike, **overrides: Any) -> Compose:
    """Build a MONAI ``Compose`` from a shipped pipeline name or a bundle-syntax YAML/JSON file.

    The file must have a top-level ``pipeline`` key (a ``Compose`` or a list of transforms); its other
    top-level keys are settings, and ``overrides`` replace them before the pipeline is built (values
    may be anything the bundle syntax accepts, including ``"@key"`` references). Shipped pipelines:
    ``train_class_balanced``, ``train_boundary`` and ``inference`` (see :func:`list_pipelines`), for
    items ``{"image": path, "label": path}``; the training ones add ``"label_weight"``.

    Args:
        name_or_path: a shipped name (e.g. ``"train_boundary"``), or a path (``os.PathLike``, or a
            string with a ``/`` or ending in ``.yaml``/``.yml``/``.json``).
        **overrides: top-level settings to replace, e.g. ``roi_size=[64, 64, 64]``, ``sigma=3.0``.

    Returns:
        The instantiated ``monai.transforms.Compose``.

    Raises:
        ValueError: for an unknown pipeline name or override key (listing the valid ones, with a
            "did you mean"), or a file without a top-level ``pipeline`` key.
        FileNotFoundError: for a path that is not a file.
        TypeError: if ``pipeline`` does not build a ``Compose`` or a list of transforms.

    Example:
        >>> pipe = load_pipeline("train_boundary", roi_size=[16, 16, 16], sigma=3.0)
        >>> type(pipe).__name__
        'Compose'
    """
    from monai.bundle import ConfigParser
    from monai.transforms import Compose

    parser = ConfigParser()
    with ExitStack() as stack:
        path = _locate(name_or_path, stack)
        parser.read_config(path)
    settings = parser.get()
    if not isinstance(settings, dict) or PIPELINE_KEY not in settings:
        keys = sorted(settings) if isinstance(settings, dict) else describe(settings)
        raise ValueError(f"name_or_path: expected a config with a top-level {PIPELINE_KEY!r} key, got {keys} "
                         f"in {path}")
    valid = sorted(k for k in settings if k != PIPELINE_KEY and not str(k).startswith("_"))
    for key, value in overrides.items():
        if not valid:
            raise ValueError(f"overrides: expected none ({path} has no top-level settings), got {key!r}")
        look_up_option("overrides", key, valid)
        parser[key] = value
    built = parser.get_parsed_content(PIPELINE_KEY)
    if isinstance(built, list | tuple):
        built = Compose(list(built))
    if not isinstance(built, Compose):
        raise TypeError(f"{PIPELINE_KEY}: expected a monai.transforms.Compose or a list of transforms in {path}, "
                        f"got {describe(built)}")
    return built
