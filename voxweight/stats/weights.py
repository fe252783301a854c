r"""Per-class weights from counts (pure numpy -> float32 torch): ``pos_weight`` and class weights.

:func:`pos_weight_from_counts` is the entry point; the helpers are shared with :class:`voxweight.LabelStats`.
Every formula divides by a per-class count: each applies the same policy (:func:`apply_policy`) to a zero.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from voxweight._validate import check_positive_number, describe, look_up_option

__all__ = ["ABSENT_POLICIES", "CLASS_WEIGHT_MODES", "apply_policy", "as_counts", "check_beta", "check_policy",
           "class_weight_array", "counts_and_total", "pos_weight_array", "pos_weight_from_counts"]

ABSENT_POLICIES = ("raise", "skip")
CLASS_WEIGHT_MODES = ("balanced", "inverse_frequency", "effective_number")


def pos_weight_from_counts(positives: Any, total: Any, *, max_weight: float | None = None,
                           absent: str = "raise") -> torch.Tensor:
    r"""``pos_weight`` per class: negatives / positives, ready for :func:`voxweight.voxel_weighted_bce`.

    .. math::

        p_c = \frac{T_c - P_c}{P_c}

    with ``P_c`` the positives of class ``c`` and ``T_c`` the total (voxels or images). The loss then acts
    as if each class had as many positives as negatives (PyTorch's ``BCEWithLogitsLoss`` recipe).

    Degenerate cases: a class with no positives has no defined weight. By default that raises; with
    ``max_weight`` it gets ``max_weight`` (every weight is also clipped there); with ``absent="skip"`` it
    gets 1, the neutral weight: its targets are all 0 in these counts, so ``pos_weight`` changes nothing
    for it, and 1 (rather than 0) keeps its positives counted if they appear later. A class that is
    positive everywhere gets 0: there are no negatives to balance.

    Args:
        positives: positives per class (numbers >= 0; fractional for soft targets).
        total: the total it was counted over: a number, or one per class.
        max_weight: optional cap (> 0) on every weight, also the weight of an absent class.
        absent: ``"raise"`` (default) or ``"skip"``: what to do with a class that has no positives.

    Returns:
        A float32 tensor with one weight per class.

    Raises:
        TypeError: for non-numeric counts.
        ValueError: for negative or non-finite counts, ``positives > total``, mismatched lengths, a bad
            ``max_weight`` or ``absent``, and (``absent="raise"`` without ``max_weight``) a class with no
            positives, named in the message.

    Shape:
        - positives: ``[C]`` (or a scalar for one class).
        - total: scalar or ``[C]``.
        - output: ``[C]``.

    Example:
        >>> from voxweight.stats import pos_weight_from_counts
        >>> pos_weight_from_counts([600, 550, 200, 100], 1000)  # seed 000
        tensor([0.6667, 0.8182, 4.0000, 9.0000])
        >>> pos_weight_from_counts(100, 400)  # 100 positives, 300 negatives
        tensor([3.])
        >>> pos_weight_from_counts([0, 10], 100, absent="skip")
        tensor([1., 9.])
    """
    absent, max_weight = check_policy(absent, max_weight)
    pos, tot = counts_and_total(positives, total)
    weights, missing = pos_weight_array(pos, tot)
    return apply_policy(weights, missing, absent=absent, max_weight=max_weight, what="pos_weight")


def as_counts(name: str, value: Any) -> np.ndarray:
    """A finite, non-negative float64 count vector (a scalar becomes a 1-vector).

    Args:
        name: the argument's name, for messages.
        value: a number, a sequence, an array or a tensor of counts.

    Returns:
        float64 ``[C]``.

    Raises:
        TypeError: for a non-numeric value.
        ValueError: for more than one dimension, no element, or a negative or non-finite count.

    Example:
        >>> as_counts("positives", 3), as_counts("positives", [1, 2.5])
        (array([3.]), array([1. , 2.5]))
    """
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
    """Validate ``positives`` against ``total`` (see :func:`as_counts`); return both per class.

    Positives may exceed the total by the float64 rounding of soft sums (relative ``1e-12``), then are clipped.

    Args:
        positives: positives per class.
        total: a total for every class, or one per class.

    Returns:
        ``(positives, total)``, float64 ``[C]`` each.

    Raises:
        TypeError: for non-numeric counts.
        ValueError: for bad counts, a ``total`` of another length, or positives above the total.

    Example:
        >>> counts_and_total([1, 2], 4)
        (array([1., 2.]), array([4., 4.]))
    """
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
    """Validate the policy for a class with a zero count.

    Args:
        absent: one of :data:`ABSENT_POLICIES`.
        max_weight: a finite cap > 0, or ``None``.

    Returns:
        ``(absent, max_weight)``, the cap as ``float``.

    Raises:
        TypeError: for a non-numeric ``max_weight``.
        ValueError: for an unknown ``absent`` or a cap that is not finite and > 0.
    """
    absent = look_up_option("absent", absent, ABSENT_POLICIES)
    if max_weight is not None:
        max_weight = check_positive_number("max_weight", max_weight)
    return absent, max_weight


def apply_policy(weights: np.ndarray, missing: np.ndarray, *, absent: str, max_weight: float | None,
                 what: str) -> torch.Tensor:
    """Resolve the classes with a zero count (``missing``), clip at ``max_weight``, return float32.

    ``absent="skip"`` gives such a class weight 1; else ``max_weight`` caps it; with neither, it raises.

    Args:
        weights: weights per class (``inf`` where missing).
        missing: True for each class with a zero count.
        absent: ``"raise"`` or ``"skip"`` (already validated, see :func:`check_policy`).
        max_weight: optional cap on every weight.
        what: the name the message gives the weights (``"pos_weight"``, ``"class_weight"``).

    Returns:
        float32 ``[C]``.

    Raises:
        ValueError: for a missing class under ``absent="raise"`` without ``max_weight``.

    Shape:
        - weights, missing, output: ``[C]``.

    Example:
        >>> apply_policy(np.array([np.inf, 9.0]), np.array([True, False]), absent="raise", max_weight=5.0,
        ...              what="pos_weight")
        tensor([5., 5.])
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
    r"""``pos_weight`` :math:`p_c = (T_c - P_c) / P_c` where defined, ``inf`` where there are no positives.

    Args:
        pos: positives per class ``P``.
        tot: total per class ``T``.

    Returns:
        ``(weights, missing)``: float64 weights and the mask of classes with no positives.

    Shape:
        - pos, tot, weights, missing: ``[C]``.

    Example:
        >>> pos_weight_array(np.array([0.0, 1.0]), np.array([4.0, 4.0]))
        (array([inf,  3.]), array([ True, False]))
    """
    missing = pos == 0
    safe = np.where(missing, 1.0, pos)
    return np.where(missing, math.inf, (tot - pos) / safe), missing


def class_weight_array(counts: np.ndarray, total: float, mode: str, beta: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    r"""Class weights for ``mode`` where defined, ``inf`` where a class has a zero count.

    With ``n_c`` the count of class ``c``, ``n`` the total and ``K`` classes: ``"balanced"``
    :math:`n / (K n_c)`, ``"inverse_frequency"`` :math:`n / n_c`, ``"effective_number"``
    :math:`(1 - \beta) / (1 - \beta^{n_c})` normalised to sum to the number of present classes.

    Args:
        counts: count per class.
        total: the total they were counted over.
        mode: one of :data:`CLASS_WEIGHT_MODES` (already validated).
        beta: the effective-number ``beta`` in [0, 1) (see :func:`check_beta`).

    Returns:
        ``(weights, missing)``: float64 weights and the mask of classes with a zero count.

    Shape:
        - counts, weights, missing: ``[K]``.

    Example:
        >>> class_weight_array(np.array([3.0, 1.0]), 4.0, "balanced", 0.999)
        (array([0.66666667, 2.        ]), array([False, False]))
    """
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
    """Require ``beta`` in [0, 1) for the effective-number weights.

    Args:
        beta: the value to check.

    Returns:
        ``float(beta)``.

    Raises:
        TypeError: for a non-number.
        ValueError: for a number outside [0, 1).
    """
    if isinstance(beta, bool) or not isinstance(beta, int | float | np.integer | np.floating):
        raise TypeError(f"beta: expected a number in [0, 1), got {describe(beta)}")
    beta = float(beta)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta: expected a number in [0, 1), got {beta!r}")
    return beta
