"""Per-class weights from counts (pure numpy -> float32 torch): pos_weight and class weights.

Shared by :func:`voxweight.stats.pos_weight_from_counts` and :class:`voxweight.LabelStats`. Every
formula divides by a per-class count, so each one applies the same policy to a class with a zero count.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from voxweight.checks import check_positive_number, describe, look_up_option

ABSENT_POLICIES = ("raise", "skip")
CLASS_WEIGHT_MODES = ("balanced", "inverse_frequency", "effective_number")


def as_counts(name: str, value: Any) -> np.ndarray:
    """A finite, non-negative float64 count vector (a scalar becomes a 1-vector)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, bool | str) or value is None:
        raise TypeError(f"{name}: expected a number or a sequence of counts, got {describe(value)}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number or a sequence of counts, got {describe(value)}") from None
    if array.ndim > 1:
        raise ValueError(f"{name}: expected a scalar or one count per class (1-D), got shape {list(array.shape)}")
    array = array.reshape(-1)
    if array.size == 0:
        raise ValueError(f"{name}: expected at least one class, got an empty sequence")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name}: expected finite counts >= 0, got {array.tolist()}")
    return array


def counts_and_total(positives: Any, total: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``positives`` (``[C]``) against ``total`` (scalar or ``[C]``); return both as ``[C]``."""
    pos = as_counts("positives", positives)
    tot = as_counts("total", total)
    if tot.size not in (1, pos.size):
        raise ValueError(f"total: expected a scalar or {pos.size} values (one per class), got {tot.size}")
    tot = np.broadcast_to(tot, pos.shape)
    # Soft counts are float64 sums of values <= 1: allow the last-bit rounding, nothing more.
    bad = pos > tot * (1 + 1e-12)
    if np.any(bad):
        c = int(np.flatnonzero(bad)[0])
        raise ValueError(f"positives: expected counts <= total, got {pos[c]:g} > {tot[c]:g} for class {c}")
    return np.minimum(pos, tot), tot


def check_policy(absent: Any, max_weight: Any) -> tuple[str, float | None]:
    """Validated ``(absent, max_weight)``: a known policy and a finite cap > 0 (or None)."""
    absent = look_up_option("absent", absent, ABSENT_POLICIES)
    if max_weight is not None:
        max_weight = check_positive_number("max_weight", max_weight)
    return absent, max_weight


def apply_policy(weights: np.ndarray, missing: np.ndarray, *, absent: str, max_weight: float | None,
                 what: str) -> torch.Tensor:
    """Resolve classes with a zero count (``missing``), clip at ``max_weight``, return float32 ``[C]``.

    ``absent="skip"`` gives such a class weight 1 (neutral); otherwise ``max_weight`` caps its infinite
    weight; with neither, a ``ValueError`` names the class.
    """
    if np.any(missing):
        if absent == "skip":
            weights = np.where(missing, 1.0, weights)
        elif max_weight is None:
            classes = np.flatnonzero(missing).tolist()
            label = "class" if len(classes) == 1 else "classes"
            raise ValueError(
                f"{what}: expected every class to occur at least once, got none for {label} "
                f"{', '.join(map(str, classes))} (the weight would be infinite); pass max_weight= to cap it "
                f"or absent='skip' to give it weight 1"
            )
        else:
            weights = np.where(missing, max_weight, weights)
    if max_weight is not None:
        weights = np.minimum(weights, max_weight)
    return torch.as_tensor(weights, dtype=torch.float32)


def pos_weight_array(pos: np.ndarray, tot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(total - positives) / positives`` where defined, and the mask of classes with no positives."""
    missing = pos == 0
    safe = np.where(missing, 1.0, pos)
    return np.where(missing, math.inf, (tot - pos) / safe), missing


def class_weight_array(counts: np.ndarray, total: float, mode: str, beta: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Class weights for ``mode`` where defined, and the mask of classes with a zero count."""
    missing = counts == 0
    safe = np.where(missing, 1.0, counts)
    k = counts.size
    if mode == "balanced":
        weights = total / (k * safe)
    elif mode == "inverse_frequency":
        weights = total / safe
    else:
        # (1 - beta) / (1 - beta^n), computed stably; beta = 0 gives 1 for every present class.
        log_beta = math.log(beta) if beta > 0 else -math.inf
        weights = (1.0 - beta) / -np.expm1(safe * log_beta)
        present = ~missing
        if np.any(present):
            weights = weights * (np.count_nonzero(present) / weights[present].sum())
    return np.where(missing, math.inf, weights), missing


def check_beta(beta: Any) -> float:
    """Require ``beta`` in [0, 1) for the effective-number weights."""
    if isinstance(beta, bool) or not isinstance(beta, int | float | np.integer | np.floating):
        raise TypeError(f"beta: expected a number in [0, 1), got {describe(beta)}")
    beta = float(beta)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta: expected a number in [0, 1), got {beta!r}")
    return beta
