"""Focal modulation (Lin et al. 2017): each element loss times ``(1 - p_t)^gamma``.

``p_t`` is the probability given to the target: for the BCE ``p_t = s t + (1 - s)(1 - t)`` with
``s = sigmoid(x)`` (defined for soft targets too, the ``p_t`` of torchvision's ``sigmoid_focal_loss``), for
the softmax cross-entropy ``q_c``, the softmax of class ``c``, in each class term. The factors are computed
so that +/-100 logits (and beyond) give finite values and finite gradients for every ``gamma >= 0``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from voxweight._validate import check_positive_number

__all__ = ["bce_focal_factor", "check_focal_gamma", "focal_ce_losses", "softmax_focal_terms"]


def check_focal_gamma(value: Any) -> float:
    """Require a finite real ``focal_gamma >= 0`` (not a bool); return it as ``float``.

    Example:
        >>> check_focal_gamma(2)
        2.0
    """
    return check_positive_number("focal_gamma", value, allow_zero=True)


def bce_focal_factor(input: torch.Tensor, target: torch.Tensor, gamma: float, logits: bool) -> torch.Tensor:
    """The BCE's focal factor ``(1 - p_t)^gamma`` with ``1 - p_t = s (1 - t) + (1 - s) t``.

    With logits, ``1 - s`` is ``sigmoid(-x)`` (no cancellation: a hard target's factor is ``sigmoid(-+x)^gamma``
    accurately). ``1 - p_t`` is clamped to the smallest normal number before the power, so that a sure
    and right prediction gets a factor of about 0 and finite gradients (``0^gamma`` with ``gamma < 1`` would give
    ``inf * 0``). It is a sum of two non-negative terms, smooth in ``t``: a target that needs a gradient and is
    exactly 0 or 1 gets the true one (a log-space form, ``logaddexp(log(1 - t) + ..., log(t) + ...)``, gives NaN).

    Shape:
        - input, target: the same shape; output: that shape.

    Example:
        >>> x, t = torch.tensor([0.0, 100.0]), torch.tensor([1.0, 1.0])
        >>> bce_focal_factor(x, t, 2.0, logits=True)  # (1 - 0.5)^2, and sure and right: about 0
        tensor([0.2500, 0.0000])
    """
    if logits:
        miss = torch.sigmoid(input) * (1 - target) + torch.sigmoid(-input) * target
    else:
        miss = input * (1 - target) + (1 - input) * target
    return miss.clamp(min=torch.finfo(miss.dtype).tiny).pow(gamma)


def softmax_focal_terms(input: torch.Tensor, gamma: float) -> torch.Tensor:
    """``-(1 - q_c)^gamma log q_c`` per class with ``q = softmax(input, dim=1)``: the focal CE's class terms.

    ``1 - q_c`` is ``-expm1(log q_c)``, clamped to the smallest normal number before the power (a class
    predicted with certainty gets a factor of about 0 and a finite gradient).

    Shape:
        - input: ``[N, C, *spatial]``; output: the same.

    Example:
        >>> softmax_focal_terms(torch.zeros(1, 2), 1.0)  # q = 0.5: 0.5 * log 2
        tensor([[0.3466, 0.3466]])
    """
    log_q = torch.log_softmax(input, dim=1)
    miss = (-torch.expm1(log_q)).clamp(min=torch.finfo(log_q.dtype).tiny)
    return -miss.pow(gamma) * log_q


def focal_ce_losses(input: torch.Tensor, target: torch.Tensor, class_weight: torch.Tensor | None,
                    label_smoothing: float, gamma: float) -> torch.Tensor:
    """The focal cross-entropy per voxel, ``sum_c a_c p_c (-(1 - q_c)^gamma log q_c)``.

    ``p`` is the one-hot of class-index targets (or the given probabilities), smoothed as torch smooths
    labels (``(1 - eps) p + eps / C``); ``a`` is ``class_weight`` (1 when None). ``gamma = 0`` is torch's
    ``cross_entropy(..., weight=a, label_smoothing=eps, reduction="none")``.

    Args:
        input: logits ``[N, C, *spatial]``.
        target: validated class indices (int64 ``[N, *spatial]``, in ``[0, C)`` where counted) or
            probabilities of ``input``'s shape and dtype.
        class_weight: ``[C]`` or None.
        label_smoothing: ``eps`` in [0, 1].
        gamma: the focal exponent, >= 0.

    Shape:
        - input: ``[N, C, *spatial]``; output: ``[N, *spatial]``.

    Example:
        >>> focal_ce_losses(torch.zeros(1, 2), torch.tensor([1]), None, 0.0, 1.0)  # 0.5 * log 2
        tensor([0.3466])
    """
    terms = softmax_focal_terms(input, gamma)
    channels = input.shape[1]
    if not target.is_floating_point() and not label_smoothing:  # one class per voxel: gather, no one-hot
        index = target.clamp(0, channels - 1)
        losses = terms.gather(1, index.unsqueeze(1)).squeeze(1)
        return losses if class_weight is None else losses * class_weight.to(losses.dtype)[index]
    p = target if target.is_floating_point() else F.one_hot(target.clamp(0, channels - 1), channels).movedim(-1, 1)
    p = p.to(terms.dtype)
    if label_smoothing:
        p = p * (1 - label_smoothing) + label_smoothing / channels
    if class_weight is not None:
        p = p * class_weight.to(terms.dtype).reshape([1, -1] + [1] * (input.ndim - 2))
    return (p * terms).sum(dim=1)
