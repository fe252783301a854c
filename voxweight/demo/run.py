"""``voxweight demo``: what weighting does, measured, on NIfTI volumes built on the fly.

Writes a small imbalanced 3D dataset as NIfTI (small and touching objects, about 1.5% foreground,
anisotropic voxels), scans its label statistics and the crops' (:func:`voxweight.crop_prevalence`), and
trains the same small MONAI U-Net three times with the ``train_boundary`` YAML pipeline (pos/neg crops
1:1): plain BCE, BCE with the crops' ``pos_weight``, and BCE with the pipeline's boundary map on fixed
class weights that balance the crops, so the data is rebalanced once: by the sampler, then by weights
measured on what it yields. Reports Dice, recall, precision and boundary-region Dice at the threshold
0.5, the threshold-free average precision, the best Dice over a grid of thresholds, and the calibration
error before and after :func:`voxweight.debias_logits` (which undoes the loss weight and the sampler: the
crops' prevalence against the volumes'), and saves a figure (:mod:`~voxweight.demo.table` defines every
column).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from voxweight._validate import plain_tensor
from voxweight.demo.data import write_synthetic_dataset
from voxweight.demo.figure import save_figure
from voxweight.demo.metrics import (
    average_precision,
    best_threshold_dice,
    boundary_region,
    expected_calibration_error,
    overlap_scores,
)
from voxweight.demo.table import BAND_MM, ECE_BINS, THRESHOLD, DemoResult, format_legend, format_table
from voxweight.losses import VoxelWeightedBCE, debias_logits

__all__ = ["DemoReport", "DemoResult", "evaluate", "format_legend", "format_table", "load_test_volumes", "network",
           "plain_tensor", "run_demo"]

Progress = Callable[[str, int, int], None]


@dataclass
class DemoReport:
    """Everything the demo measured: the rows, the dataset statistics, where the files are, and notes.

    ``notes`` names each model whose probabilities never exceed the threshold 0.5 (its Dice of 0 at
    0.5 says where its probabilities lie, not that it found nothing), with its best-threshold Dice.
    """

    results: list[DemoResult]
    foreground_fraction: float
    pos_weight: float
    out_dir: Path
    figure: Path
    notes: list[str] = field(default_factory=list)
    crop_fraction: float | None = None  # the foreground fraction inside the training crops (crop_prevalence)
    crop_pos_weight: float | None = None  # the pos_weight that balances the crops


@dataclass(frozen=True)
class _Setup:
    shape: tuple[int, int, int]
    roi: tuple[int, int, int]
    n_train: int
    n_test: int
    steps: int


_SPACING = (1.0, 1.0, 2.0)
_BOUNDARY = {"w0": 5.0, "sigma": 3.0}  # the train_boundary settings, also used for the figure
_FULL = _Setup((48, 48, 24), (32, 32, 16), 8, 3, 150)
_QUICK = _Setup((32, 32, 16), (32, 32, 16), 3, 1, 12)


def run_demo(out_dir: str | Path | None = None, *, quick: bool = False, seed: int = 0,
             progress: Progress | None = None) -> DemoReport:
    """Build the dataset, train the three models and evaluate them on held-out volumes.

    Args:
        out_dir: where the NIfTI files and ``demo.png`` go (a new temporary folder if None).
        quick: a tiny run (about 25 s on 2 cores), used by the tests.
        seed: seeds the data, the initialisations, the crops and the batch order (deterministic on CPU).
        progress: optional callback ``progress(run_name, step, total_steps)``.

    Returns:
        A :class:`DemoReport`.

    Example:
        >>> report = run_demo(quick=True)
        >>> [row.name for row in report.results]
        ['plain BCE', 'pos_weight (crops)', 'class balance + boundary map']
    """
    from voxweight.stats import crop_prevalence, scan_labels

    setup = _QUICK if quick else _FULL
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="voxweight-demo-"))
    train = write_synthetic_dataset(out / "train", setup.n_train, shape=setup.shape, spacing=_SPACING, seed=seed)
    test = write_synthetic_dataset(out / "test", setup.n_test, shape=setup.shape, spacing=_SPACING,
                                   seed=seed + 1000)
    labels_files = [item["label"] for item in train]
    stats = scan_labels(labels_files, num_classes=2, progress=False)
    crops = crop_prevalence(labels_files, roi_size=setup.roi, num_classes=2)  # the pipeline's pos 1 / neg 1 crops
    pos_weight, crop_pos_weight = float(stats.pos_weight()[1]), float(crops.pos_weight()[1])
    fraction, crop_fraction = 1.0 / (1.0 + pos_weight), 1.0 / (1.0 + crop_pos_weight)
    fg, bg = (float(w) for w in crops.class_weight("balanced")[[1, 0]])  # fixed map weights: balance the crops
    runs = {  # rebalanced once: the sampler, then weights measured on the crops; every model is debiased for both
        "plain BCE": (VoxelWeightedBCE(), False, 1.0),
        "pos_weight (crops)": (VoxelWeightedBCE(pos_weight=crop_pos_weight), False, crop_pos_weight),
        "class balance + boundary map": (VoxelWeightedBCE(), True, fg / bg),
    }
    loader = _train_loader(train, setup, seed, fg, bg)
    images, labels = load_test_volumes(test)
    results, probabilities = [], {}
    for name, (loss_fn, use_map, shift) in runs.items():
        net = _train(loader, loss_fn, use_map, setup.steps, seed, progress, name)
        with torch.no_grad():
            logits = torch.cat([net(image[None]) for image in images])
        results.append(evaluate(name, logits, labels, shift, train_prior=crop_fraction, deploy_prior=fraction))
        probabilities[name] = torch.sigmoid(debias_logits(logits, shift, train_prior=crop_fraction,
                                                          deploy_prior=fraction))
    figure = save_figure(out / "demo.png", images, labels, probabilities, test[0]["label"], _SPACING, _BOUNDARY,
                         threshold=THRESHOLD)
    notes = [f"{r.name}: its highest probability is {r.max_probability:.2f}, below {THRESHOLD:g}, so it predicts "
             f"nothing at {THRESHOLD:g}; at threshold {r.best_threshold:.2f} its Dice is {r.best_dice:.3f}"
             for r in results if r.max_probability <= THRESHOLD]
    return DemoReport(results, fraction, pos_weight, out, figure, notes, crop_fraction, crop_pos_weight)


def _train_loader(items: list[dict[str, str]], setup: _Setup, seed: int, fg_weight: float, bg_weight: float
                  ) -> torch.utils.data.DataLoader:
    from monai.data import CacheDataset, DataLoader

    from voxweight.pipelines import load_pipeline

    pipeline = load_pipeline("train_boundary", pixdim=list(_SPACING), roi_size=list(setup.roi), num_samples=2,
                             fg_weight=fg_weight, bg_weight=bg_weight, **_BOUNDARY)
    pipeline.set_random_state(seed)
    dataset = CacheDataset(items, transform=pipeline, cache_rate=1.0, num_workers=0, progress=False)
    return DataLoader(dataset, batch_size=2, shuffle=True, num_workers=0,
                      generator=torch.Generator().manual_seed(seed))


def network(seed: int) -> torch.nn.Module:
    """The demo's small MONAI U-Net (3D, 1 channel in and out, 8/16/32 features), seeded.

    Example:
        >>> net = network(0)
        >>> net(torch.zeros(1, 1, 16, 16, 8)).shape
        torch.Size([1, 1, 16, 16, 8])
    """
    from monai.networks.nets import UNet

    torch.manual_seed(seed)
    return UNet(spatial_dims=3, in_channels=1, out_channels=1, channels=(8, 16, 32), strides=(2, 2),
                num_res_units=1)


def _train(loader: torch.utils.data.DataLoader, loss_fn: VoxelWeightedBCE, use_map: bool, steps: int, seed: int,
           progress: Progress | None, name: str) -> torch.nn.Module:
    net = network(seed)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    step = 0
    while step < steps:
        for batch in loader:
            logits = net(plain_tensor(batch["image"]))
            weight = plain_tensor(batch["label_weight"]) if use_map else None
            loss = loss_fn(logits, plain_tensor(batch["label"]), weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if progress is not None:
                progress(name, step, steps)
            if step == steps:
                break
    return net.eval()


def load_test_volumes(items: list[dict[str, str]], spacing: tuple[float, ...] = _SPACING
                      ) -> tuple[list[torch.Tensor], list[np.ndarray]]:
    """Images ``[1, *spatial]`` and boolean labels ``[*spatial]`` through the ``inference`` pipeline.

    Args:
        items: ``[{"image": path, "label": path}, ...]`` NIfTI files.
        spacing: the voxel size (mm) the pipeline resamples to.

    Returns:
        ``(images, labels)``, one entry per item.
    """
    from voxweight.pipelines import load_pipeline

    pipeline = load_pipeline("inference", pixdim=list(spacing))
    images, labels = [], []
    for item in items:
        out = pipeline(dict(item))
        images.append(plain_tensor(out["image"]))
        labels.append(np.asarray(out["label"])[0] > 0.5)
    return images, labels


def evaluate(name: str, logits: torch.Tensor, labels: list[np.ndarray], shift: float,
             spacing: tuple[float, ...] = _SPACING, *, train_prior: float | None = None,
             deploy_prior: float | None = None) -> DemoResult:
    """Held-out metrics of one model, from its logits and the positive weight it was trained with.

    With ``p = sigmoid(debias_logits(logits, shift, train_prior=, deploy_prior=))`` (the loss weight's shift and,
    with the priors, the sampler's: the crops' foreground fraction against the full volumes'): Dice, recall
    and precision of ``p > 0.5`` over
    all voxels, its Dice within 2 mm of the label's interface, the threshold-free average precision
    (voxels ranked by logit), the best Dice of ``p > t`` over ``t`` in 0.05, 0.10, ..., 0.95 and that
    ``t``, the highest ``p``, and the expected calibration error of ``sigmoid(logits)`` and of ``p``.
    :func:`~voxweight.demo.table.format_legend` defines each.

    Args:
        name: the row's name.
        logits: ``[V, 1, *spatial]`` for ``V`` volumes.
        labels: ``V`` boolean labels ``[*spatial]``.
        shift: the positive weight to undo (1 for an unweighted model).
        spacing: voxel size in mm, for the boundary region.
        train_prior: the foreground fraction the model was trained on (its crops'), or None.
        deploy_prior: the foreground fraction where it is used (the full volumes'), or None.

    Returns:
        A :class:`~voxweight.demo.table.DemoResult`.

    Example:
        >>> label = np.zeros((4, 4, 4), bool)
        >>> label[1:3, 1:3, 1:3] = True
        >>> logits = torch.where(torch.as_tensor(label), 5.0, -5.0)[None, None]
        >>> row = evaluate("perfect", logits, [label], 1.0)
        >>> row.dice, row.boundary_dice, row.average_precision, row.best_dice
        (1.0, 1.0, 1.0, 1.0)
    """
    raw = torch.sigmoid(logits).numpy()[:, 0]
    corrected = debias_logits(logits, shift, train_prior=train_prior, deploy_prior=deploy_prior)
    fixed = torch.sigmoid(corrected).numpy()[:, 0]
    truth = np.stack(labels)
    predicted = fixed > THRESHOLD
    dice, recall, precision = overlap_scores(predicted, truth)
    region = np.stack([boundary_region(label, BAND_MM, spacing) for label in labels])
    boundary_dice = overlap_scores(predicted[region], truth[region])[0]
    best_dice, best_threshold = best_threshold_dice(fixed, truth)
    return DemoResult(name, dice, recall, precision, boundary_dice, expected_calibration_error(raw, truth, ECE_BINS),
                      expected_calibration_error(fixed, truth, ECE_BINS),
                      average_precision(logits.double().numpy()[:, 0], truth), best_dice, best_threshold,
                      float(fixed.max()))
