"""``run_study``: every recipe, every seed, one held-out split per seed, the same budget: a :class:`StudyResult`.

For each seed ``s``: the cases are split by ``s`` (:func:`~voxweight.study.data.split_cases`); the training
labels give the full volumes' foreground fraction and, with :func:`voxweight.crop_prevalence`, the pos/neg
crops' (what the recipes balance and what the debiasing undoes); then every recipe trains the same seeded
network on the same seeded batches (:mod:`~voxweight.study.train`) and is scored on the held-out volumes
(:mod:`~voxweight.study.evaluate`). ``bce`` is always run: it is the baseline every recipe is compared with.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voxweight._validate import check_flag, check_positive_int, check_positive_number
from voxweight.study.data import CaseArrays, find_cases, load_case, split_cases
from voxweight.study.evaluate import evaluate_network
from voxweight.study.files import save_atomic
from voxweight.study.recipes import DEFAULT_RECIPES, Recipe, RecipeContext, get_recipes
from voxweight.study.result import StudyResult
from voxweight.study.train import CropSampler, train_recipe

__all__ = ["DEFAULT_ROI", "DEFAULT_STEPS", "run_study", "study_context"]

DEFAULT_STEPS = 400
DEFAULT_ROI = (32, 32, 16)
Progress = Callable[[str, int, int], None]


def study_context(train: Sequence[CaseArrays], roi_size: Sequence[int], steps: int) -> RecipeContext:
    """What a recipe may know: the first training case's spacing, the crops' and the volumes' foreground fraction.

    Example:
        >>> label = np.zeros((8, 8, 8), bool); label[:2] = True
        >>> case = CaseArrays(np.zeros((8, 8, 8), np.float32), label, None, (1.0, 1.0, 2.0), np.eye(4))
        >>> ctx = study_context([case], (8, 8, 8), 10)
        >>> ctx.dataset_prior, ctx.crop_prior
        (0.25, 0.25)
    """
    from voxweight.stats import crop_prevalence

    labels = [c.label.astype(np.uint8) for c in train]
    fg = sum(int(label.sum()) for label in labels)
    total = sum(label.size for label in labels)
    crops = crop_prevalence(labels, roi_size=tuple(roi_size), num_classes=2)
    crop_prior = float(crops.positives[1] / crops.positives.sum())
    clip = 1e-6  # a prior of exactly 0 or 1 has no logit
    return RecipeContext(tuple(train[0].spacing), min(max(crop_prior, clip), 1 - clip),
                         min(max(fg / total, clip), 1 - clip), steps)


def run_study(items: str | os.PathLike[str] | Sequence[dict[str, str]], recipes: Sequence[str] | None = None, *,
              seeds: int | Sequence[int] = 3, steps: int = DEFAULT_STEPS, roi_size: Sequence[int] = DEFAULT_ROI,
              batch_size: int = 2, device: str | torch.device = "cpu", out_dir: str | os.PathLike[str] | None = None,
              tolerance_mm: float = 1.0, test_fraction: float = 0.25, tubular: bool | None = None,
              progress: Progress | None = None) -> StudyResult:
    """Train and score every recipe for every seed on held-out volumes; see the module docstring.

    Args:
        items: a dataset folder (``imagesTr/`` + ``labelsTr/``) or its cases (:func:`~voxweight.study.data.find_cases`).
        recipes: recipe names (:data:`~voxweight.study.recipes.RECIPES`); None: the defaults. ``bce`` is added first.
        seeds: how many seeds (0, 1, ...) or the seeds themselves.
        steps: optimiser steps per run.
        roi_size: the training crop and sliding window, 3 sizes.
        batch_size: crops per step.
        device: where to train and infer.
        out_dir: where to keep the predictions (``predictions/<recipe>/seed<s>/<case>.nii.gz``, the images' affines)
            and ``study.png``; None: nothing is written.
        tolerance_mm: the surface Dice tolerance.
        test_fraction: the held-out share of the cases.
        tubular: report Betti-0 and clDice; None: when a tubular recipe is run.
        progress: called as ``progress(run_name, step, steps)``.

    Returns:
        A :class:`~voxweight.study.result.StudyResult` (its ``metadata`` holds the settings and the time taken).

    Raises:
        ValueError: for an unknown recipe (with "did you mean"), a bad folder, bad counts or sizes.
    """
    start = time.perf_counter()
    chosen = _recipes(recipes)
    seed_list = _seeds(seeds)
    steps, batch_size = check_positive_int("steps", steps), check_positive_int("batch_size", batch_size)
    roi = _roi(roi_size)
    tolerance_mm = check_positive_number("tolerance_mm", tolerance_mm, allow_zero=True)
    tubular = any(r.data == "tubular" for r in chosen) if tubular is None else check_flag("tubular", tubular)
    device = _device(device)
    cases = find_cases(items) if isinstance(items, str | os.PathLike) else list(items)
    cache: dict[str, CaseArrays] = {}
    scores: dict[str, dict[str, list[float | None]]] = {r.name: {} for r in chosen}
    shown: dict[str, np.ndarray] = {}
    priors: list[dict[str, float]] = []  # the foreground fraction of the training volumes and crops, per seed
    for k, seed in enumerate(seed_list):
        train, test = split_cases(cases, seed, test_fraction=test_fraction)
        train_arrays = [_load(c, cache) for c in train]
        test_arrays = [_load(c, cache) for c in test]
        context = study_context(train_arrays, roi, steps)
        priors.append({"seed": seed, "volumes": context.dataset_prior, "crops": context.crop_prior})
        volumes = [(c.image, c.label, c.instances) for c in train_arrays]
        for recipe in chosen:
            name = f"{recipe.name} seed {seed}"
            report = None if progress is None else (lambda i, n, name=name: progress(name, i, n))
            net = train_recipe(recipe, context, CropSampler(volumes, roi, batch_size, seed), steps=steps, seed=seed,
                               device=device, progress=report)
            ev = evaluate_network(net, test_arrays, roi, shift=float(recipe.shift(context)),
                                  train_prior=context.crop_prior, deploy_prior=context.dataset_prior, device=device,
                                  tubular=tubular, tolerance_mm=tolerance_mm)
            for metric, value in ev.metrics.items():
                scores[recipe.name].setdefault(metric, [None] * k).append(value)
            for values in scores[recipe.name].values():
                values.extend([None] * (k + 1 - len(values)))
            if out_dir is not None:
                _save_predictions(Path(out_dir), recipe.name, seed, test, test_arrays, ev.probabilities)
            if k == 0:  # the figure: the first seed's first held-out volume
                shown_case, shown[recipe.name] = test_arrays[0], ev.probabilities[0]
    metadata = {"cases": len(cases), "steps": steps, "roi_size": list(roi), "batch_size": batch_size,
                "device": str(device), "tolerance_mm": tolerance_mm, "test_fraction": test_fraction,
                "torch_threads": torch.get_num_threads(), "priors": priors,
                "seconds": round(time.perf_counter() - start, 1)}
    result = StudyResult([r.name for r in chosen], seed_list, scores, "bce", metadata)
    if out_dir is not None:
        from voxweight.study.figure import save_study_figure

        save_study_figure(Path(out_dir) / "study.png", result, shown_case.image, shown_case.label, shown)
    return result


def _recipes(names: Sequence[str] | None) -> list[Recipe]:
    names = list(DEFAULT_RECIPES if names is None else names)
    return get_recipes(names if "bce" in names else ["bce", *names])


def _seeds(seeds: Any) -> list[int]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        return list(range(check_positive_int("seeds", seeds)))
    if not isinstance(seeds, Sequence) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"seeds: expected a positive int or a non-empty sequence of ints, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: expected distinct seeds, got {list(seeds)}")
    return list(seeds)


def _roi(roi_size: Any) -> tuple[int, int, int]:
    roi = tuple(roi_size) if isinstance(roi_size, Sequence) else (roi_size,) * 3
    if len(roi) != 3 or not all(isinstance(r, int) and not isinstance(r, bool) and r >= 4 for r in roi):
        raise ValueError(f"roi_size: expected 3 ints >= 4, got {roi_size!r}")
    return roi  # type: ignore[return-value]


def _device(device: Any) -> torch.device:
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device: expected 'cpu', 'cuda', 'cuda:N' or a torch.device, got {device!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: expected a device this machine has, got {str(device)!r} (no CUDA device)")
    return device


def _load(case: dict[str, str], cache: dict[str, CaseArrays]) -> CaseArrays:
    if case["name"] not in cache:
        cache[case["name"]] = load_case(case)
    return cache[case["name"]]


def _save_predictions(out: Path, recipe: str, seed: int, cases: Sequence[dict[str, str]],
                      arrays: Sequence[CaseArrays], probabilities: Sequence[np.ndarray]) -> None:
    import nibabel as nib

    for case, array, prob in zip(cases, arrays, probabilities, strict=True):
        image = nib.Nifti1Image((prob > 0.5).astype(np.uint8), array.affine)
        save_atomic(out / "predictions" / recipe / f"seed{seed}" / f"{case['name']}.nii.gz",
                    lambda tmp, image=image: nib.save(image, tmp))
