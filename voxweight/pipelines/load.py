"""Find, read, check and build a pipeline file: ``load_pipeline`` and ``list_pipelines``."""

from __future__ import annotations

import importlib.resources
import os
import re
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxweight._validate import check_flag, describe, look_up_option
from voxweight.pipelines.safety import check_safe, check_shape_settings

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from monai.transforms import Compose

BUNDLE_PREFIX = "bundle_"  # shipped YAML files that are MONAI bundles (whole training configs), not pipelines

__all__ = ["BUNDLE_PREFIX", "PIPELINE_KEY", "bundle_path", "config_dir", "list_pipelines", "load_pipeline"]

PIPELINE_KEY = "pipeline"
_SUFFIXES = (".yaml", ".yml", ".json")
_MONAI_FAILURE = re.compile(r"Failed to instantiate component '([^']+)'")


def config_dir() -> Traversable:
    """The folder of shipped YAML files: the installed package, else the source checkout's ``transforms/``.

    Returns:
        ``voxweight.pipeline_configs`` of the wheel, or the top-level ``transforms/`` folder of a checkout.

    Raises:
        FileNotFoundError: if neither holds YAML files.

    Example:
        >>> (config_dir() / "train_boundary.yaml").is_file()
        True
    """
    try:
        folder = importlib.resources.files("voxweight.pipeline_configs")
    except (ModuleNotFoundError, TypeError):  # editable install: the nested package-dir mapping is not resolved
        folder = None
    if folder is not None and folder.is_dir():
        return folder
    package = Path(__file__).resolve().parents[1]  # voxweight/
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
    return sorted(p.name[: -len(".yaml")] for p in config_dir().iterdir()
                  if p.name.endswith(".yaml") and not p.name.startswith(BUNDLE_PREFIX))


def bundle_path(name: str = "train_boundary") -> Path:
    """The shipped MONAI bundle config ``bundle_<name>.yaml``, for ``python -m monai.bundle run --config_file``.

    Bundles are whole training configs (network, trainer, evaluator) run by MONAI as trusted code; they are not
    pipelines (:func:`list_pipelines` leaves them out). Shipped: ``train_boundary`` (the ``train_boundary``
    pipeline's weight map reaching the loss through :class:`voxweight.engines.WeightedSupervisedTrainer`).

    Raises:
        ValueError: for a name without a shipped bundle, listing those there are.

    Example:
        >>> bundle_path().name
        'bundle_train_boundary.yaml'
    """
    path = Path(str(config_dir() / f"{BUNDLE_PREFIX}{name}.yaml"))
    if not path.is_file():
        names = sorted(p.name[len(BUNDLE_PREFIX):-len(".yaml")] for p in config_dir().iterdir()
                       if p.name.startswith(BUNDLE_PREFIX) and p.name.endswith(".yaml"))
        raise ValueError(f"name: expected one of the shipped bundles {names}, got {name!r}")
    return path


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
    return stack.enter_context(importlib.resources.as_file(config_dir() / f"{name}.yaml"))


def _read(path: Path) -> dict:
    """The file's content (YAML's safe loader, or JSON), which must be a mapping with a ``pipeline`` key."""
    from monai.bundle import ConfigParser

    try:
        content = ConfigParser.load_config_file(path)
    except Exception as err:  # yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError, MONAI's suffix check
        raise ValueError(f"name_or_path: expected a YAML/JSON file ({', '.join(_SUFFIXES)}), got {path} "
                         f"that does not parse: {type(err).__name__}: {err}") from None
    if not isinstance(content, dict) or PIPELINE_KEY not in content:
        got = f"keys {sorted(map(str, content))}" if isinstance(content, dict) else describe(content)
        raise ValueError(f"name_or_path: expected a config with a top-level {PIPELINE_KEY!r} key (a mapping of "
                         f"settings and the pipeline), got {got} in {path}")
    return content


def _user_error(err: RuntimeError, path: Path) -> tuple[Exception, Exception] | None:
    """The ``ValueError`` / ``TypeError`` that MONAI wrapped in "Failed to instantiate", and its original."""
    component, cause = None, err
    while isinstance(cause, RuntimeError) and cause.__cause__ is not None:
        found = _MONAI_FAILURE.search(str(cause))
        component = found.group(1) if found else component
        cause = cause.__cause__
    if not isinstance(cause, ValueError | TypeError):
        return None
    where = f" (building {component} from {path})" if component else f" (building {path})"
    return (TypeError if isinstance(cause, TypeError) else ValueError)(f"{cause}{where}"), cause


def load_pipeline(name_or_path: str | os.PathLike, *, trusted: bool = False, **overrides: Any) -> Compose:
    """Build a MONAI ``Compose`` from a shipped pipeline name or a bundle-syntax YAML/JSON file.

    The file must be a mapping with a top-level ``pipeline`` key (a ``Compose`` or a list of
    transforms); its other top-level keys are settings, and ``overrides`` replace them before the
    pipeline is built (plain values or ``"@key"`` references). Shipped pipelines:
    ``train_class_balanced``, ``train_boundary``, ``train_tubular`` and ``inference`` (see
    :func:`list_pipelines`), for items ``{"image": path, "label": path}``; the first two add
    ``"label_weight"``, ``train_tubular`` adds ``"label_skeleton"`` (Skeleton Recall's tubed skeleton).

    **Safe mode (default).** A pipeline file is data, so it may not run code: ``_target_`` names only
    Transform classes of ``monai.transforms`` (full path or MONAI's short name, ``Compose`` included) and
    ``voxweight.transforms`` (full path); ``"$"`` expressions only torch / numpy dtypes
    (``"$torch.float32"``, see ``voxweight.pipelines.safety.SAFE_EXPRESSIONS``); ``reader`` / ``writer``
    only ``monai.data`` class names; ``_requires_``, ``_mode_``, ``_disabled_`` and every other special
    key, and ``%`` macros, are refused. Files and override values are checked alike, before anything is
    instantiated or evaluated.

    **trusted=True** gives full MONAI bundle semantics. Warning: the file then runs any Python code it
    names (``_target_: os.system``, ``"$__import__('os')..."``) with your permissions, while loading. Use
    it only for files you wrote or trust as you would trust a Python script.

    Args:
        name_or_path: a shipped name (e.g. ``"train_boundary"``), or a path (``os.PathLike``, or a
            string with a ``/`` or ending in ``.yaml``/``.yml``/``.json``).
        trusted: allow arbitrary code from the file (see the warning above). Default False.
        **overrides: top-level settings to replace, e.g. ``roi_size=[64, 64, 64]``, ``sigma=3.0``.

    Returns:
        The instantiated ``monai.transforms.Compose``.

    Raises:
        ValueError: for an unknown pipeline name or override key (listing the valid ones, with a "did you
            mean"); a file that does not parse or is not a mapping with a top-level ``pipeline`` key (empty,
            a list, a scalar), naming the file; in safe mode an item that could run code, naming its key
            path (``pipeline#transforms#3#_target_``); a ``pixdim`` / ``roi_size`` setting that is not a
            number or 3 positive values; a bad setting, with the transform's own message
            (``sigma: expected a finite number > 0, got -1.0 (building ...)``).
        FileNotFoundError: for a path that is not a file.
        TypeError: if ``pipeline`` does not build a ``Compose`` or a list of transforms, or ``trusted`` is
            not a bool.

    Example:
        >>> pipe = load_pipeline("train_boundary", roi_size=[16, 16, 16], sigma=3.0)
        >>> type(pipe).__name__
        'Compose'
        >>> load_pipeline("train_boundary", w0={"_target_": "os.system", "command": "echo hi"})
        Traceback (most recent call last):
        ...
        ValueError: w0#_target_: this _target_ is refused in safe mode ...
    """
    from monai.bundle import ConfigParser
    from monai.transforms import Compose

    check_flag("trusted", trusted)
    with ExitStack() as stack:
        path = _locate(name_or_path, stack)
        settings = _read(path)
    parser = ConfigParser(settings)
    valid = sorted(k for k in settings if k != PIPELINE_KEY and not str(k).startswith("_"))
    for key, value in overrides.items():
        if not valid:
            raise ValueError(f"overrides: expected none ({path} has no top-level settings), got {key!r}")
        look_up_option("overrides", key, valid)
        parser[key] = value
    if not trusted:
        check_safe(parser, str(path), overridden=overrides)
    check_shape_settings(parser.get(), str(path))
    try:
        built = parser.get_parsed_content(PIPELINE_KEY)
    except RuntimeError as err:
        found = _user_error(err, path)
        if found is None:
            raise
        raise found[0] from found[1]  # the transform's own message on top, not the RuntimeError wrapping it
    if isinstance(built, list | tuple):
        built = Compose(list(built))
    if not isinstance(built, Compose):
        raise TypeError(f"{PIPELINE_KEY}: expected a monai.transforms.Compose or a list of transforms in {path}, "
                        f"got {describe(built)}")
    return built
