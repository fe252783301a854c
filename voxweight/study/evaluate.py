"""Held-out evaluation of one trained network: sliding-window logits on full volumes, debiased, then metrics.

The network was trained on pos/neg crops, so its probabilities carry the crops' foreground fraction and the
recipe's loss-weight ratio ``r``; :func:`voxweight.debias_logits` undoes both
(``logit - log r - logit(pi_crops) + logit(pi_volumes)``) before any metric thresholds at 0.5. The metrics
are :func:`voxweight.study.metrics.volume_metrics` per volume, pooled by their mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from voxweight.losses import debias_logits
from voxweight.study.data import CaseArrays
from voxweight.study.metrics import pool_metrics, volume_metrics
from voxweight.study.train import normalise

__all__ = ["Evaluation", "evaluate_network", "predict_logits"]

OVERLAP = 0.25  # sliding-window overlap


class Evaluation(NamedTuple):
    """Pooled metrics of one run and the debiased probabilities of each held-out volume."""

    metrics: dict[str, float | None]
    probabilities: list[np.ndarray]


def predict_logits(net: torch.nn.Module, image: np.ndarray, roi_size: Sequence[int], device: torch.device
                   ) -> torch.Tensor:
    """Logits ``[1, 1, *spatial]`` (CPU) of a whole volume by MONAI's sliding-window inference.

    Example:
        >>> from voxweight.study.train import study_network
        >>> predict_logits(study_network(0), np.zeros((10, 9, 6)), (8, 8, 4), torch.device("cpu")).shape
        torch.Size([1, 1, 10, 9, 6])
    """
    from monai.inferers import sliding_window_inference

    x = torch.from_numpy(normalise(image))[None, None].to(device)
    with torch.no_grad():
        out = sliding_window_inference(x, list(roi_size), sw_batch_size=2, predictor=net, overlap=OVERLAP)
    return torch.as_tensor(out).float().cpu()


def evaluate_network(net: torch.nn.Module, cases: Sequence[CaseArrays], roi_size: Sequence[int], *, shift: float,
                     train_prior: float, deploy_prior: float, device: torch.device, tubular: bool = False,
                     tolerance_mm: float = 1.0) -> Evaluation:
    """Every metric of the held-out ``cases``, after the sampler- and weight-aware debiasing.

    Args:
        net: the trained network.
        cases: held-out volumes (:func:`voxweight.study.data.load_case`).
        roi_size: the sliding window (the training crop size).
        shift: the loss-weight ratio ``r`` of the recipe.
        train_prior: foreground fraction the network was trained on (the crops').
        deploy_prior: foreground fraction of full volumes.
        device: where the network runs.
        tubular: also report the tubular metrics (Betti-0 error, clDice).
        tolerance_mm: the surface Dice tolerance.

    Returns:
        An :class:`Evaluation`.
    """
    rows, probabilities = [], []
    for case in cases:
        logits = predict_logits(net, case.image, roi_size, device)
        fixed = debias_logits(logits, shift, train_prior=train_prior, deploy_prior=deploy_prior)
        prob = torch.sigmoid(fixed).numpy()[0, 0]
        raw = torch.sigmoid(logits).numpy()[0, 0]
        rows.append(volume_metrics(prob, raw, case.label, case.spacing, instances=case.instances, tubular=tubular,
                                   tolerance_mm=tolerance_mm))
        probabilities.append(prob)
    return Evaluation(pool_metrics(rows), probabilities)
