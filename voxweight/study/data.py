"""The study's datasets: synthetic ones written in the nnU-Net raw layout, any such folder read, split and loaded.

A dataset folder (Medical Segmentation Decathlon or nnU-Net raw layout) holds ``imagesTr/`` with one image per
case, named ``<name>_0000.nii.gz`` (nnU-Net, channel 0) or ``<name>.nii.gz`` (MSD), and ``labelsTr/`` with
``<name>.nii.gz``; ``.nii`` is accepted too, and hidden files (``._*``, ``.DS_Store``) are ignored. An optional
``instancesTr/<name>.nii.gz`` holds instance ids (0 the background), which the object metrics use. The study
is binary: ``label > 0`` is the foreground, and it takes one image channel.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from voxweight._validate import check_spacing, describe
from voxweight.study.synthetic import SYNTHETIC_KINDS, check_seed, synthetic_case, write_synthetic_study

__all__ = ["SYNTHETIC_KINDS", "CaseArrays", "find_cases", "load_case", "split_cases", "synthetic_case",
           "write_synthetic_study"]

_SUFFIXES = (".nii.gz", ".nii")
_CHANNEL = re.compile(r"^(?P<name>.+)_(?P<channel>\d{4})$")


class CaseArrays(NamedTuple):
    """One case's volumes in the NIfTI array axis order, with the image's spacing (mm per axis) and affine."""

    image: np.ndarray  # float32 [*spatial]
    label: np.ndarray  # bool [*spatial], label > 0
    instances: np.ndarray | None  # integer ids [*spatial], 0 the background
    spacing: tuple[float, ...]
    affine: np.ndarray  # [4, 4]


def find_cases(folder: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The labelled cases of a dataset folder (MSD or nnU-Net raw layout; see the module docstring), by name.

    An image ``<stem>`` pairs with the label ``<stem>`` (MSD) or, failing that, ``<name>_<dddd>`` with the label
    ``<name>`` (nnU-Net); a case with a channel other than ``_0000`` is refused (the study takes one channel).
    Images without a label are left out with a warning.

    Args:
        folder: the dataset folder.

    Returns:
        ``[{"name", "image", "label"[, "instances"]}, ...]`` sorted by name, paths as strings.

    Raises:
        ValueError: naming the folder, when it or its ``imagesTr/`` or ``labelsTr/`` is missing, no image has a
            label, a case has several channels or two files, or fewer than 2 cases are labelled.

    Example:
        >>> import tempfile
        >>> folder = write_synthetic_study(tempfile.mkdtemp(), "vessels", 2, shape=(16, 16, 8))
        >>> [sorted(c) for c in find_cases(folder)]
        [['image', 'label', 'name'], ['image', 'label', 'name']]
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"folder: expected a dataset folder with imagesTr/ and labelsTr/, got {str(root)!r} "
                         f"({'not a folder' if root.exists() else 'not found'})")
    if not (root / "imagesTr").is_dir():
        raise ValueError(f"folder: expected imagesTr/ (<name>_0000.nii.gz or <name>.nii.gz images) and labelsTr/ "
                         f"in {root}, got no imagesTr/")
    if not (root / "labelsTr").is_dir():
        raise ValueError(f"folder: expected labelsTr/ beside imagesTr/ with a <name>.nii.gz label per image (the "
                         f"study trains and scores on labelled cases), got a dataset folder without labels: {root}")
    images, labels = _volumes(root / "imagesTr"), _volumes(root / "labelsTr")
    instances = _volumes(root / "instancesTr") if (root / "instancesTr").is_dir() else {}
    cases: dict[str, dict[str, str]] = {}
    unlabelled = []
    for stem, path in sorted(images.items()):
        match = _CHANNEL.match(stem)
        if stem in labels:
            name = stem
        elif match and match["name"] in labels:
            name = match["name"]
            if match["channel"] != "0000":
                raise ValueError(f"folder: expected one image channel per case (<name>_0000), got {path.name} "
                                 f"in {root / 'imagesTr'}: the study takes single-channel images")
        else:
            unlabelled.append(path.name)
            continue
        cases[name] = {"name": name, "image": str(path), "label": str(labels[name])}
        if name in instances:
            cases[name]["instances"] = str(instances[name])
    if not cases:
        raise ValueError(f"folder: expected images in imagesTr/ with a label of the same name in labelsTr/, got no "
                         f"matching pair in {root}; images: {_few(images)}; labels: {_few(labels)}")
    if unlabelled:
        warnings.warn(f"{root}: {len(unlabelled)} image(s) without a label in labelsTr/ left out: "
                      f"{_few(unlabelled)}", UserWarning, stacklevel=2)
    if len(cases) < 2:
        raise ValueError(f"folder: expected at least 2 labelled cases (one to train, one to hold out), got "
                         f"{len(cases)} in {root}")
    return [cases[name] for name in sorted(cases)]


def _volumes(folder: Path) -> dict[str, Path]:
    """``{stem: path}`` of the visible ``.nii.gz`` / ``.nii`` files of ``folder``; two files of one stem are refused."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        suffix = next((s for s in _SUFFIXES if path.name.endswith(s)), None)
        if path.name.startswith(".") or suffix is None or not path.is_file():
            continue
        stem = path.name[: -len(suffix)]
        if stem in found:
            raise ValueError(f"folder: expected one file per case, got {found[stem].name} and {path.name} in {folder}")
        found[stem] = path
    return found


def _few(names: Any, limit: int = 5) -> str:
    names = sorted(str(n) for n in names)
    return (", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")) or "none"


def split_cases(cases: Sequence[Any], seed: int, *, test_fraction: float = 0.25) -> tuple[list[Any], list[Any]]:
    """A seeded train/test split: ``max(1, round(test_fraction * n))`` cases held out, at least 1 left to train.

    The held-out cases are the first of ``np.random.default_rng(seed).permutation(n)``; both parts keep the
    cases' order. ``cases`` is not modified.

    Args:
        cases: at least 2 cases (any items, e.g. :func:`find_cases`'s).
        seed: an integer >= 0; the same seed gives the same split.
        test_fraction: the held-out share, in ``(0, 1)``.

    Returns:
        ``(train, test)``, disjoint lists covering ``cases``.

    Raises:
        ValueError: for fewer than 2 cases, a negative seed or a fraction outside ``(0, 1)``.
        TypeError: for a non-sequence ``cases``, a non-integer seed or a non-number fraction.

    Example:
        >>> split_cases(["a", "b", "c", "d"], 0)
        (['a', 'b', 'd'], ['c'])
    """
    if not isinstance(cases, Sequence) or isinstance(cases, str | bytes):
        raise TypeError(f"cases: expected a sequence of cases, got {describe(cases)}")
    if len(cases) < 2:
        raise ValueError(f"cases: expected at least 2 cases (one to train, one to hold out), got {len(cases)}")
    seed = check_seed("seed", seed)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, int | float | np.integer | np.floating):
        raise TypeError(f"test_fraction: expected a number in (0, 1), got {describe(test_fraction)}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    n = len(cases)
    held = min(n - 1, max(1, round(float(test_fraction) * n)))
    order = np.random.default_rng(seed).permutation(n)
    test = set(order[:held].tolist())
    return [c for i, c in enumerate(cases) if i not in test], [c for i, c in enumerate(cases) if i in test]


def load_case(case: Mapping[str, str]) -> CaseArrays:
    """Read a case's image, label and (when listed) instances with nibabel; see :class:`CaseArrays`.

    A trailing axis of size 1 (``[X, Y, Z, 1]``) is dropped; ``label > 0`` is the foreground; the spacing is the
    image header's zooms.

    Args:
        case: ``{"image": path, "label": path}``, optionally ``"instances": path`` (as :func:`find_cases` gives).

    Returns:
        A :class:`CaseArrays`.

    Raises:
        ValueError: for a volume that is not 3-D, shapes that differ, non-finite image values, non-integer or
            negative instance ids, or a header whose zooms are not positive; each names the file.
        TypeError: for a ``case`` that is not a mapping with ``image`` and ``label``.

    Shape:
        - image, label, instances: ``[X, Y, Z]``; affine: ``[4, 4]``.

    Example:
        >>> import tempfile
        >>> folder = write_synthetic_study(tempfile.mkdtemp(), "blobs", 2, shape=(16, 16, 8))
        >>> case = load_case(find_cases(folder)[0])
        >>> case.image.dtype.name, case.label.dtype.name, case.instances.shape, case.spacing
        ('float32', 'bool', (16, 16, 8), (1.0, 1.0, 2.0))
    """
    import nibabel as nib

    if not isinstance(case, Mapping) or "image" not in case or "label" not in case:
        raise TypeError(f"case: expected a mapping with 'image' and 'label' paths, got {describe(case)}")
    image_file = nib.load(case["image"])
    image = _volume("image", case["image"], np.asanyarray(image_file.dataobj)).astype(np.float32)
    if not np.isfinite(image).all():
        raise ValueError(f"image: expected finite values, got NaN or infinity in {case['image']}")
    label = _volume("label", case["label"], np.asanyarray(nib.load(case["label"]).dataobj), like=image) > 0
    instances = None
    if case.get("instances") is not None:
        instances = _instances(case["instances"], np.asanyarray(nib.load(case["instances"]).dataobj), image)
    try:
        spacing = check_spacing("spacing", [float(z) for z in image_file.header.get_zooms()[:3]], 3)
    except ValueError as e:
        raise ValueError(f"{e} (the zooms of {case['image']})") from None
    return CaseArrays(image, label, instances, spacing, np.asarray(image_file.affine, dtype=np.float64))


def _volume(name: str, path: str, array: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    """``array`` with trailing axes of size 1 dropped, checked 3-D and (with ``like``) of ``like``'s shape."""
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise ValueError(f"{name}: expected a 3-D volume (one channel), got shape {list(array.shape)} in {path}")
    if like is not None and array.shape != like.shape:
        raise ValueError(f"{name}: expected the image's shape {list(like.shape)}, got {list(array.shape)} in {path}")
    return array


def _instances(path: str, array: np.ndarray, image: np.ndarray) -> np.ndarray:
    array = _volume("instances", path, array, like=image)
    if not np.issubdtype(array.dtype, np.integer):
        if not (np.isfinite(array).all() and (array == np.round(array)).all()):
            raise ValueError(f"instances: expected integer ids, got non-integer values in {path}")
        array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise ValueError(f"instances: expected ids >= 0 (0 the background), got {array.min()} in {path}")
    return array
