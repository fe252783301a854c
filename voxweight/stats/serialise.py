"""The JSON form of label counts: plain counts to a JSON-ready dict (or text) and back, every field validated.

:meth:`voxweight.LabelStats.to_json` and :meth:`~voxweight.LabelStats.from_json` wrap
:func:`counts_to_json` and :func:`counts_from_json`; they work on plain counts, so this module knows
nothing of the class.

Version 2 adds one optional key, ``weight_mass`` (the label-weight mass per class); a document without it
is still written as version 1, byte for byte as before, so older readers keep reading it, and refuse
(rather than silently drop) a mass they do not know. Both versions are read.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from voxweight._validate import check_positive_int, describe

__all__ = ["FORMAT", "VERSION", "VERSIONS", "counts_from_dict", "counts_from_json", "counts_to_dict", "counts_to_json"]

FORMAT = "voxweight.LabelStats"
VERSION = 2  # the newest; written only for a document with a weight_mass
VERSIONS = (1, 2)  # those read


def counts_to_dict(num_classes: int, images: int, voxels: int, positives: Any, images_with: Any,
                   skipped: Iterable[tuple[str, str]], *, weight_mass: Any = None) -> dict[str, Any]:
    """The JSON-ready dict of a set of label counts (floats round-trip exactly through ``json``).

    Args:
        num_classes: number of classes ``K``.
        images: images counted.
        voxels: voxels counted.
        positives: positive voxels per class.
        images_with: images containing each class.
        skipped: ``(path, reason)`` for each file that could not be counted.
        weight_mass: the label-weight mass per class, or ``None`` (no key, version 1).

    Returns:
        ``{"format", "version", "num_classes", "images", "voxels", "positives", "images_with",
        "skipped"}`` and, with a mass, ``"weight_mass"`` (version 2), with lists of floats for the vectors
        and ``[path, reason]`` lists for ``skipped``.

    Shape:
        - positives, images_with, weight_mass: ``[K]``.

    Example:
        >>> counts_to_dict(2, 1, 4, np.array([3.0, 1.0]), np.array([1.0, 1.0]), [])["positives"]
        [3.0, 1.0]
        >>> payload = counts_to_dict(2, 1, 4, [3.0, 1.0], [1.0, 1.0], [], weight_mass=[1.5, 4.0])
        >>> payload["version"], payload["weight_mass"]
        (2, [1.5, 4.0])
    """
    payload = {
        "format": FORMAT,
        "version": 1 if weight_mass is None else VERSION,
        "num_classes": num_classes,
        "images": images,
        "voxels": voxels,
        "positives": np.asarray(positives, dtype=np.float64).tolist(),
        "images_with": np.asarray(images_with, dtype=np.float64).tolist(),
        "skipped": [[path, reason] for path, reason in skipped],
    }
    if weight_mass is not None:
        payload["weight_mass"] = np.asarray(weight_mass, dtype=np.float64).tolist()
    return payload


def counts_from_dict(payload: Any) -> dict[str, Any]:
    """The validated fields of :func:`counts_to_dict`'s dict (as parsed back from JSON).

    Args:
        payload: the parsed JSON document.

    Returns:
        ``{"num_classes": int, "images": int, "voxels": int, "positives": float64 [K],
        "images_with": float64 [K], "skipped": list of (path, reason), "weight_mass": float64 [K] or None}``
        (``None`` without the key, as in every version-1 document).

    Raises:
        TypeError: for a ``num_classes`` that is not an int.
        ValueError: for anything else that is not such a document: another format or version, a missing
            key, a count that is not an int >= 0, a vector (``weight_mass`` included) that is not ``K``
            finite numbers >= 0, or a ``skipped`` that is not a list of ``[path, reason]`` strings.

    Shape:
        - positives, images_with, weight_mass: ``[K]``.

    Example:
        >>> fields = counts_from_dict(counts_to_dict(2, 1, 4, [3.0, 1.0], [1.0, 1.0], [("b.nii", "4D")]))
        >>> fields["positives"], fields["skipped"]
        (array([3., 1.]), [('b.nii', '4D')])
    """
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"data: expected a JSON object with format {FORMAT!r}, got {describe(payload)}")
    version = payload.get("version")
    if isinstance(version, bool) or version not in VERSIONS:
        raise ValueError(f"data: expected a version in {list(VERSIONS)}, got {version!r}")
    missing = {"num_classes", "images", "voxels", "positives", "images_with"} - payload.keys()
    if missing:
        raise ValueError(f"data: expected the keys {sorted(missing)}, got {sorted(payload)}")
    num_classes = check_positive_int("data['num_classes']", payload["num_classes"], expected="a positive int")
    fields: dict[str, Any] = {
        "num_classes": num_classes,
        "images": _count("images", payload["images"]),
        "voxels": _count("voxels", payload["voxels"]),
        "positives": _vector("positives", payload["positives"], num_classes),
        "images_with": _vector("images_with", payload["images_with"], num_classes),
    }
    mass = payload.get("weight_mass")
    fields["weight_mass"] = None if "weight_mass" not in payload else _vector("weight_mass", mass, num_classes)
    skipped = payload.get("skipped", [])
    ok = isinstance(skipped, list) and all(
        isinstance(s, list) and len(s) == 2 and all(isinstance(v, str) for v in s) for s in skipped)
    if not ok:
        raise ValueError(f"data['skipped']: expected a list of [path, reason] strings, got {skipped!r}")
    fields["skipped"] = [(path, reason) for path, reason in skipped]
    return fields


def counts_to_json(num_classes: int, images: int, voxels: int, positives: Any, images_with: Any,
                   skipped: Iterable[tuple[str, str]], *, indent: int | None = None, weight_mass: Any = None) -> str:
    """:func:`counts_to_dict`'s dict as JSON text (floats round-trip exactly).

    Args:
        num_classes: number of classes ``K``.
        images: images counted.
        voxels: voxels counted.
        positives: positive voxels per class.
        images_with: images containing each class.
        skipped: ``(path, reason)`` for each file that could not be counted.
        indent: passed to :func:`json.dumps` (``None``: one line).
        weight_mass: the label-weight mass per class, or ``None`` (version 1, no key).

    Returns:
        The JSON document.

    Shape:
        - positives, images_with, weight_mass: ``[K]``.
    """
    payload = counts_to_dict(num_classes, images, voxels, positives, images_with, skipped, weight_mass=weight_mass)
    return json.dumps(payload, indent=indent)


def counts_from_json(data: str | bytes | os.PathLike[str]) -> dict[str, Any]:
    """The validated fields of :func:`counts_to_json`'s text (``str``/``bytes``) or of a file holding it.

    Args:
        data: the JSON text, or the path of a file holding it.

    Returns:
        The fields, as :func:`counts_from_dict` returns them.

    Raises:
        TypeError: for a ``num_classes`` in the document that is not an int.
        ValueError: for text that is not JSON, or not such a document (see :func:`counts_from_dict`).

    Example:
        >>> counts_from_json(counts_to_json(2, 1, 4, [3.0, 1.0], [1.0, 1.0], []))["voxels"]
        4
    """
    if isinstance(data, os.PathLike):
        data = Path(data).read_text(encoding="utf-8")
    try:
        payload = json.loads(data)
    except (TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"data: expected LabelStats JSON text, got {describe(data)} ({err})") from None
    return counts_from_dict(payload)


def _count(name: str, value: Any) -> int:
    """Require a JSON int >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"data[{name!r}]: expected an int >= 0, got {value!r}")
    return value


def _vector(name: str, value: Any, size: int) -> np.ndarray:
    """Require a JSON list of ``size`` finite numbers >= 0; return it as float64."""
    ok = isinstance(value, list) and len(value) == size and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in value)
    if not ok:
        raise ValueError(f"data[{name!r}]: expected {size} finite numbers >= 0, got {value!r}")
    return np.asarray(value, dtype=np.float64)
