"""Count what a training pipeline yields: the label (and weight mass) of every sample, as the loss sees them.

:meth:`voxweight.LabelStats.from_pipeline` is :func:`stats_from_pipeline`; :func:`count_samples` counts one
pipeline output. Pure numpy/torch: the pipeline is any callable (a MONAI ``Compose`` included), so this
module imports no MONAI and no :mod:`voxweight.pipelines` (a layer above): load a YAML pipeline first,
with :func:`voxweight.load_pipeline`, and pass the ``Compose`` it returns.
"""

from __future__ import annotations

import copy
import os
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np
import torch

from voxweight._validate import check_flag, check_positive_int, describe, plain_tensor
from voxweight.checks import check_range
from voxweight.stats.counting import as_target_tensor, count_labels

__all__ = ["SampleCounts", "count_samples", "stats_from_pipeline"]

S = TypeVar("S")


class SampleCounts(NamedTuple):
    """The counts of one sample: ``positives`` per class, ``voxels``, ``weight_mass`` per class (or None).

    ``one_hot`` tells how the label was read: ``False`` for a ``[1, *spatial]`` map of class ids (the
    counts are exact integers), ``True`` for ``[C, *spatial]`` one-hot, multi-hot or soft channels.
    """

    positives: np.ndarray
    present: np.ndarray
    voxels: int
    weight_mass: np.ndarray | None
    one_hot: bool


def stats_from_pipeline(cls: type[S], pipeline: Callable[[Any], Any], items: Iterable[Any], *,
                        label_key: str = "label", passes: int = 1, workers: int = 1, progress: bool = True,
                        num_classes: int | None = None, seed: int | None = None) -> S:
    r"""Run ``pipeline`` over ``items`` and count the label of every sample it yields (what the loss sees).

    A pipeline that crops (``RandCropByPosNegLabeld`` with ``num_samples``) yields a list of dicts per
    item: each is one sample, counted as one image. A label ``[1, *spatial]`` holds class ids (value
    ``k`` is class ``k``, background 0 included, whole-number floats accepted, as MONAI loads them); a
    label ``[C, *spatial]`` with ``C > 1`` holds one channel per class (one-hot, multi-hot or soft, in
    [0, 1]). Where a sample also holds ``label_key + "_weight"`` (``label_weight``, as the shipped
    pipelines write it), the weight mass per class is summed as well, into ``stats.weight_mass``:

    .. math::

        \mathrm{weight\_mass}_c = \sum_{\mathrm{samples}} \sum_v w_v \, [y_v = c]
        \quad (\textstyle\sum_v w_v \, y_{v,c} \text{ for channels})

    ``weight_mass[c] / weight_mass.sum()`` is the class's share of the loss's weight, the prevalence that
    a weighted loss effectively sees. ``passes`` runs the pipeline that many times over the items (random
    crops average out). ``seed`` makes the result reproducible and independent of ``workers``: before item
    ``i`` of pass ``p`` the pipeline is reseeded with ``seed + p * len(items) + i`` through its
    ``set_random_state`` (MONAI's ``Compose``/``Randomizable``; the pipeline's state is changed). Without a
    seed the pipeline runs from its current random state in this process, and each worker process is
    reseeded from torch's per-worker seed (as MONAI's ``DataLoader`` does; numpy's and ``random``'s global
    generators too), so counts then differ between ``workers`` settings by sampling noise only.

    Args:
        cls: the class to build (``LabelStats``, when called as ``LabelStats.from_pipeline``).
        pipeline: a callable taking one item and returning a dict or a list of dicts, e.g. a MONAI
            ``Compose``, or ``voxweight.load_pipeline("train_class_balanced", roi_size=...)``.
        items: the dataset's items (e.g. ``{"image": path, "label": path}`` dicts); each run gets a
            shallow copy.
        label_key: the key of the label in each sample.
        passes: how many times to run over ``items``.
        workers: ``torch.utils.data.DataLoader`` worker processes (0 or 1: in this process).
        progress: show a tqdm progress bar (one step per item and pass).
        num_classes: number of classes ``K`` (``None``: the largest class id + 1, or the channels).
        seed: reseed the pipeline before every item, as above (``None``: do not).

    Returns:
        The counts (``cls(K)``): voxel level over every sample's voxels, one image per sample;
        ``weight_mass`` a float64 ``[K]`` when every sample has a weight, else ``None``.

    Raises:
        TypeError: for a pipeline that is not callable (a YAML name or path: load it first), a bad option,
            a pipeline output that is not a dict or a list of dicts, a label that is not an array.
        ValueError: for no items or no samples, a sample without ``label_key``, a label without a channel
            axis, class ids out of range, channels other than ``num_classes``, samples mixing class ids and
            channels, weights in some samples only or not broadcastable to the label, a seed with a
            pipeline that has no ``set_random_state``.

    Shape:
        - each sample's label: ``[1, *spatial]`` (class ids) or ``[C, *spatial]`` (channels).
        - each sample's weight: ``[1, *spatial]`` or the label's shape.
        - result counts: ``[K]``.

    Example:
        >>> import numpy as np
        >>> from voxweight.stats import LabelStats
        >>> def crops(item):  # two 2-voxel crops of a 4-voxel label; weight 1 on class 0, 3 on class 1
        ...     y = item["label"]
        ...     return [{"label": c, "label_weight": 1.0 + 2 * c} for c in (y[:, :2], y[:, 2:])]
        >>> stats = LabelStats.from_pipeline(crops, [{"label": np.array([[0, 1, 1, 1]])}], progress=False)
        >>> stats.positives, stats.voxels, stats.images, stats.weight_mass
        (array([1., 3.]), 4, 2, array([1., 9.]))
    """
    if isinstance(pipeline, str | os.PathLike):
        raise TypeError(f"pipeline: expected a callable (e.g. a MONAI Compose), got {describe(pipeline)}; "
                        f"load a YAML pipeline first: voxweight.load_pipeline({str(pipeline)!r}, ...)")
    if not callable(pipeline):
        raise TypeError(f"pipeline: expected a callable (e.g. a MONAI Compose), got {describe(pipeline)}")
    if not isinstance(label_key, str):
        raise TypeError(f"label_key: expected a str, got {describe(label_key)}")
    items = list(items)
    if not items:
        raise ValueError("items: expected at least one item, got none")
    passes = check_positive_int("passes", passes, expected="a positive int")
    workers = _check_count("workers", workers)
    progress = check_flag("progress", progress)
    if num_classes is not None:
        num_classes = check_positive_int("num_classes", num_classes, expected="a positive int")
    if seed is not None:
        seed = _check_count("seed", seed)
        if not callable(getattr(pipeline, "set_random_state", None)):
            raise ValueError(f"seed: expected a pipeline with set_random_state (a MONAI Compose), got "
                             f"{describe(pipeline)}")
    runs = _Runs(pipeline, items, passes, label_key, num_classes, seed)
    return _assemble(cls, _run(runs, workers, progress), num_classes, label_key)


def _check_count(name: str, value: Any) -> int:
    """Require an int >= 0 (``TypeError`` for another type, ``ValueError`` below 0)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int >= 0, got {describe(value)}")
    if value < 0:
        raise ValueError(f"{name}: expected an int >= 0, got {value}")
    return value


def count_samples(output: Any, label_key: str = "label", num_classes: int | None = None) -> list[SampleCounts]:
    """The counts of each sample in one pipeline output (a dict, or a list of dicts).

    Args:
        output: what the pipeline returned for one item.
        label_key: the key of the label (its weight, if any, is under ``label_key + "_weight"``).
        num_classes: number of classes, or ``None`` to count up to the largest class id.

    Returns:
        One :class:`SampleCounts` per sample.

    Raises:
        TypeError: for an output that is not a dict or a list of dicts, a label that is not an array.
        ValueError: as :func:`stats_from_pipeline` says, for one sample.

    Shape:
        - label: ``[1, *spatial]`` or ``[C, *spatial]``; weight: ``[1, *spatial]`` or the label's shape.

    Example:
        >>> count_samples({"label": np.array([[0, 2, 2]]), "label_weight": np.array([[1.0, 0.5, 0.5]])})[0]
        SampleCounts(positives=array([1., 0., 2.]), present=array([1., 0., 1.]), voxels=3, \
weight_mass=array([1., 0., 1.]), one_hot=False)
    """
    samples = output if isinstance(output, list | tuple) else [output]
    if not all(isinstance(s, dict) for s in samples):
        raise TypeError(f"pipeline: expected each output to be a dict or a list of dicts, got {describe(output)}")
    return [_count_sample(s, label_key, num_classes) for s in samples]


def _count_sample(sample: dict, label_key: str, num_classes: int | None) -> SampleCounts:
    if label_key not in sample:
        raise ValueError(f"label_key: expected the key {label_key!r} in every sample, got keys {sorted(sample)}")
    label = _as_cpu(f"sample[{label_key!r}]", sample[label_key])
    if label.ndim < 2:
        raise ValueError(f"sample[{label_key!r}]: expected a channel-first label [1, *spatial] or [C, *spatial], "
                         f"got shape {list(label.shape)}")
    weight = sample.get(f"{label_key}_weight")
    if weight is not None:
        weight = _as_cpu(f"sample[{label_key + '_weight'!r}]", weight).to(torch.float64)
        if weight.ndim != label.ndim or any(w not in (1, s) for w, s in zip(weight.shape, label.shape, strict=True)):
            raise ValueError(f"sample[{label_key + '_weight'!r}]: expected a shape broadcastable to the label's "
                             f"{list(label.shape)}, got {list(weight.shape)}")
        check_range(f"sample[{label_key + '_weight'!r}]", weight, 0.0, np.finfo(np.float64).max, "finite values >= 0")
    if label.shape[0] == 1:
        counts = count_labels(label.numpy(), num_classes, f"sample[{label_key!r}]", allow_float=True)
        mass = None
        if weight is not None:
            ids = label.numpy().astype(np.int64).ravel()
            w = torch.broadcast_to(weight, label.shape).numpy().ravel()
            mass = np.bincount(ids, weights=w, minlength=counts.size)
        return SampleCounts(counts.astype(np.float64), (counts > 0).astype(np.float64), int(label.numel()), mass,
                            False)
    check_range(f"sample[{label_key!r}]", label, 0.0, 1.0, "channel values in [0, 1] (one-hot, multi-hot or soft)")
    if num_classes is not None and label.shape[0] != num_classes:
        raise ValueError(f"sample[{label_key!r}]: expected {num_classes} channels (num_classes), "
                         f"got shape {list(label.shape)}")
    t = label.to(torch.float64).flatten(1)
    mass = None if weight is None else (t * torch.broadcast_to(weight, label.shape).flatten(1)).sum(1).numpy()
    return SampleCounts(t.sum(1).numpy(), t.amax(1).numpy(), t.shape[1], mass, True)


def _as_cpu(name: str, x: Any) -> torch.Tensor:
    """A plain CPU tensor of ``x`` (ndarray, tensor or MetaTensor)."""
    return plain_tensor(as_target_tensor(name, x)).cpu()


class _Runs(torch.utils.data.Dataset):
    """Task ``i``: item ``i % len(items)`` of pass ``i // len(items)``, through the pipeline, counted."""

    def __init__(self, pipeline: Callable[[Any], Any], items: Sequence[Any], passes: int, label_key: str,
                 num_classes: int | None, seed: int | None) -> None:
        self.pipeline, self.items, self.passes = pipeline, items, passes
        self.label_key, self.num_classes, self.seed = label_key, num_classes, seed

    def __len__(self) -> int:
        return self.passes * len(self.items)

    def __getitem__(self, index: int) -> list[SampleCounts]:
        if self.seed is not None:
            self.pipeline.set_random_state(seed=(self.seed + index) % 2**32)
        output = self.pipeline(copy.copy(self.items[index % len(self.items)]))
        return count_samples(output, self.label_key, self.num_classes)


def _reseed_worker(worker_id: int) -> None:
    """DataLoader worker start: give the worker's copy of the pipeline (and numpy, random) its own state."""
    runs = torch.utils.data.get_worker_info().dataset
    if runs.seed is None:
        seed = torch.initial_seed() % 2**32  # torch's per-worker seed: base seed + worker id
        np.random.seed(seed)
        random.seed(seed)
        if callable(getattr(runs.pipeline, "set_random_state", None)):
            runs.pipeline.set_random_state(seed=seed)


def _keep(batch: Any) -> Any:
    return batch


def _run(runs: _Runs, workers: int, progress: bool) -> list[SampleCounts]:
    """Every sample's counts, in task order, from this process or ``workers`` DataLoader workers."""
    from tqdm.auto import tqdm

    if workers <= 1:
        stream: Iterable[list[SampleCounts]] = (runs[i] for i in range(len(runs)))
    else:
        stream = torch.utils.data.DataLoader(runs, batch_size=None, shuffle=False, num_workers=workers,
                                             collate_fn=_keep, worker_init_fn=_reseed_worker)
    found: list[SampleCounts] = []
    for counts in tqdm(stream, total=len(runs), unit="item", desc="counting pipeline samples", disable=not progress):
        found += counts
    return found


def _assemble(cls: type[S], found: list[SampleCounts], num_classes: int | None, label_key: str) -> S:
    """One ``cls`` of every sample's counts (class-id counts padded to ``K``)."""
    if not found:
        raise ValueError("pipeline: expected at least one sample, got an empty output for every item")
    if len({c.one_hot for c in found}) > 1:
        raise ValueError(f"sample[{label_key!r}]: expected every label as class ids [1, *spatial] or every "
                         f"label as channels [C, *spatial], got both")
    weighted = {c.weight_mass is not None for c in found}
    if len(weighted) > 1:
        raise ValueError(f"sample[{label_key + '_weight'!r}]: expected a weight in every sample or in none, "
                         f"got it in {sum(c.weight_mass is not None for c in found)} of {len(found)}")
    k = num_classes if num_classes is not None else max(c.positives.size for c in found)
    if found[0].one_hot and len({c.positives.size for c in found}) > 1:
        raise ValueError(f"sample[{label_key!r}]: expected the same channels in every sample, got "
                         f"{sorted({c.positives.size for c in found})}")
    stats = cls(k)
    stats.weight_mass = np.zeros(k, dtype=np.float64) if weighted == {True} else None
    for c in found:
        stats.positives += np.pad(c.positives, (0, k - c.positives.size))
        stats.images_with += np.pad(c.present, (0, k - c.present.size))
        stats.voxels += c.voxels
        stats.images += 1
        if stats.weight_mass is not None:
            stats.weight_mass += np.pad(c.weight_mass, (0, k - c.weight_mass.size))
    return stats
