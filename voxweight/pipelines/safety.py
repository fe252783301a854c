"""The safe mode of pipeline files: refuse, before anything is built, every item that could run code.

MONAI's bundle syntax is a programming language: ``_target_`` imports and calls any Python callable,
``"$..."`` strings are ``eval``-ed, ``_requires_`` / ``_mode_`` / ``_disabled_`` change what runs, ``%``
macros read other files, and ``LoadImage(reader=...)`` / ``SaveImage(writer=...)`` import and call any
dotted name. A pipeline file is shared like data, so by default :func:`check_safe` walks the whole
config with MONAI's own ``ReferenceResolver.iter_subconfigs`` / ``ConfigComponent`` / ``ConfigExpression``
and raises ``ValueError`` naming the key path of the first refused item, before MONAI instantiates or
evaluates anything. ``@`` references stay allowed: they only move values that are checked where they stand.
"""

from __future__ import annotations

import re
from pydoc import locate
from typing import TYPE_CHECKING, Any

from voxweight._validate import check_positive_int, check_spacing

if TYPE_CHECKING:
    from collections.abc import Collection

    from monai.bundle import ConfigParser

__all__ = ["SAFE_EXPRESSIONS", "SAFE_TARGET_PREFIXES", "check_safe", "check_shape_settings"]

SAFE_TARGET_PREFIXES = ("monai.transforms.", "voxweight.transforms.")
_TORCH_DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64")
_NUMPY_DTYPES = ("bool_", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64")
# The only "$" expressions safe mode evaluates: attribute look-ups of dtypes, nothing called.
SAFE_EXPRESSIONS = frozenset([f"$torch.{d}" for d in _TORCH_DTYPES]
                             + [f"${m}.{d}" for m in ("np", "numpy") for d in _NUMPY_DTYPES])
_TARGET = "_target_"
_SPECIAL = re.compile(r"^_\w+_$")
_NAMED_CALLABLE_ARGS = ("reader", "writer")  # MONAI's LoadImage / SaveImage import and call these by name
_MAX_ITEMS, _MAX_DEPTH = 100_000, 64  # YAML aliases can make a small file an endless or recursive tree
_TRUST = ("pass trusted=True only for a file you trust: it then has full MONAI bundle semantics "
          "(any Python code runs)")


def _refuse(source: str, path: str, what: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"{path}: {what} is refused in safe mode (expected {expected}), got {value!r} in {source}; "
                      f"{_TRUST}")


def _check_target(parser: ConfigParser, target: Any, path: str, source: str) -> None:
    """``target`` must name a ``monai.transforms`` / ``voxweight.transforms`` Transform class (or Compose)."""
    from monai.transforms import Transform

    expected = ("a MONAI transform (monai.transforms.X or its short name such as LoadImaged), "
                "a voxweight transform (voxweight.transforms.X) or Compose")
    full = target
    if isinstance(target, str) and target and "." not in target:  # MONAI's short names, as MONAI resolves them
        module = parser.locator.get_component_module_name(target)
        module = module[0] if isinstance(module, list) else module
        full = f"{module}.{target}" if module else target
    if not isinstance(full, str) or not full.startswith(SAFE_TARGET_PREFIXES):
        raise _refuse(source, path, "this _target_", target, expected)  # refused before any import
    try:
        obj = locate(full)  # imports only inside monai.transforms / voxweight.transforms
    except Exception:  # pydoc.ErrorDuringImport: a MONAI module whose optional dependency is missing
        obj = None
    module_name = getattr(obj, "__module__", "") or ""
    if not (isinstance(obj, type) and issubclass(obj, Transform)
            and module_name.startswith(tuple(p.rstrip(".") for p in SAFE_TARGET_PREFIXES))):
        raise _refuse(source, path, "this _target_", target, expected)


def _check_named_callables(node: dict, path: str, source: str) -> None:
    """``reader=`` / ``writer=`` strings must name a class of ``monai.data`` (MONAI would import anything else)."""
    import monai.data

    for arg in _NAMED_CALLABLE_ARGS:
        values = node.get(arg)
        for i, value in enumerate(values if isinstance(values, list | tuple) else [values]):
            if value is None or isinstance(value, dict):
                continue  # a dict is walked (and its _target_ checked) like any other item
            if not (isinstance(value, str) and isinstance(getattr(monai.data, value, None), type)):
                where = f"{path}#{arg}" + (f"#{i}" if isinstance(values, list | tuple) else "")
                raise _refuse(source, where, f"this {arg}", value, "a monai.data class name such as NibabelReader")


def _check_string(value: str, path: str, source: str) -> None:
    from monai.bundle.config_item import ConfigExpression
    from monai.bundle.utils import MACRO_KEY

    if ConfigExpression.is_expression(value) and value.strip() not in SAFE_EXPRESSIONS:
        raise _refuse(source, path, "a '$' expression", value, f"one of {sorted(SAFE_EXPRESSIONS)}")
    if value.startswith(MACRO_KEY):
        raise _refuse(source, path, "a '%' macro", value, "no macros: copy the content into the file")


def _walk(parser: ConfigParser, node: Any, id_: str, source: str, seen: list[int]) -> None:
    from monai.bundle.config_item import ConfigComponent
    from monai.bundle.utils import ID_SEP_KEY

    path = id_.replace(ID_SEP_KEY, "#")
    seen[0] += 1
    if seen[0] > _MAX_ITEMS or path.count("#") >= _MAX_DEPTH:
        raise ValueError(f"{path or 'config'}: expected a config of at most {_MAX_ITEMS} items nested at most "
                         f"{_MAX_DEPTH} deep, got more in {source} (YAML aliases repeating or nesting themselves?)")
    if isinstance(node, str):
        _check_string(node, path, source)
    if isinstance(node, dict):
        for key in node:
            if isinstance(key, str) and _SPECIAL.match(key) and key != _TARGET:
                raise _refuse(source, f"{path}#{key}" if path else key, "the special key", key,
                              "no special key but _target_")
        if ConfigComponent.is_instantiable(node):
            _check_target(parser, node[_TARGET], f"{path}#{_TARGET}" if path else _TARGET, source)
            _check_named_callables(node, path, source)
    if isinstance(node, dict | list):
        for _, sub_id, value in parser.ref_resolver.iter_subconfigs(id=id_, config=node):
            _walk(parser, value, sub_id, source, seen)


def check_safe(parser: ConfigParser, source: str, overridden: Collection[str] = ()) -> None:
    """Refuse every item of ``parser``'s config that could run code; nothing is instantiated or evaluated.

    Allowed: ``_target_`` naming a Transform class of ``monai.transforms`` (full path or MONAI's short name)
    or ``voxweight.transforms`` (full path), ``Compose`` included; ``"$..."`` strings in
    :data:`SAFE_EXPRESSIONS` (torch / numpy dtypes, e.g. ``"$torch.float32"``); ``"@..."`` references;
    ``reader`` / ``writer`` naming a ``monai.data`` class; plain data. Refused: every other ``_target_``,
    ``"$"`` expression and special key (``_requires_``, ``_mode_``, ``_disabled_``, ``_desc_``, ...), and
    ``"%"`` macros, at any depth: top-level settings, lists, arguments and override values alike; and
    trees of more than 100,000 items or 64 levels (YAML aliases can expand a small file without end).

    Args:
        parser: a ``monai.bundle.ConfigParser`` holding the config (overrides already applied).
        source: the file, for messages.
        overridden: the top-level keys given as overrides, for messages.

    Raises:
        ValueError: naming the key path of the refused item, e.g. ``pipeline#transforms#3#_target_``.

    Example:
        >>> from monai.bundle import ConfigParser
        >>> check_safe(ConfigParser({"pipeline": [{"_target_": "LoadImaged", "keys": "image"}]}), "demo")
        >>> check_safe(ConfigParser({"pipeline": [{"_target_": "os.system", "command": "ls"}]}), "demo")
        Traceback (most recent call last):
        ...
        ValueError: pipeline#0#_target_: this _target_ is refused in safe mode ...
    """
    import monai.transforms  # noqa: F401  (MONAI's short names resolve among the imported monai modules)

    try:
        _walk(parser, parser.get(), "", source, [0])
    except ValueError as err:
        top = str(err).split(":", 1)[0].split("#", 1)[0]
        if top in overridden:
            raise ValueError(f"{err} (given as the override {top}=...)") from None
        raise


def check_shape_settings(settings: dict, source: str) -> None:
    """Check the top-level ``pixdim`` (mm) and ``roi_size`` (voxels) settings, where they are literal values.

    Both are per spatial axis of a 3D volume: a number (isotropic) or 3 values, positive. MONAI would pad
    or truncate a wrong-length ``pixdim`` silently and fail on a wrong ``roi_size`` only while cropping.

    Args:
        settings: the top-level config (overrides applied).
        source: the file, for messages.

    Raises:
        ValueError, TypeError: naming the setting and the file.

    Example:
        >>> check_shape_settings({"pixdim": [1.5, 1.5, 2.0], "roi_size": 64}, "demo")
        >>> check_shape_settings({"roi_size": [64, 64]}, "demo")
        Traceback (most recent call last):
        ...
        ValueError: roi_size: expected 3 values (one per spatial axis), got 2: [64, 64] (in demo)
    """
    for key in ("pixdim", "roi_size"):
        value = settings.get(key)
        if value is None or isinstance(value, str):  # unset, or a reference / expression resolved by MONAI
            continue
        try:
            if key == "pixdim":
                check_spacing(key, value, 3)
            elif isinstance(value, list | tuple):
                if len(value) != 3:
                    raise ValueError(f"{key}: expected 3 values (one per spatial axis), got {len(value)}: "
                                     f"{list(value)}")
                for i, v in enumerate(value):
                    check_positive_int(f"{key}[{i}]", v)
            else:
                check_positive_int(key, value)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{err} (in {source})") from None
