"""Inference-time correction of the logit bias that positive/class weighting leaves behind."""

from __future__ import annotations

import torch

from voxweight._validate import as_weight_tensor, check_float_tensor, describe
from voxweight.checks import check_range
from voxweight.losses.align import WeightLike, align_channel

__all__ = ["debias_logits"]


def debias_logits(
    logits: torch.Tensor,
    pos_weight: WeightLike,
    *,
    channel_dim: int = 1,
    bg_weight: WeightLike | None = None,
) -> torch.Tensor:
    r"""Undo the prior shift that ``pos_weight`` (or fg/bg class balancing) puts into trained logits.

    Training with ``pos_weight`` ``p`` on data where a voxel is positive with probability ``q`` drives
    the loss-minimising logit to ``logit(q) + log p`` instead of ``logit(q)``: the model over-predicts the
    positive class by design. Subtracting ``log p`` restores calibrated probabilities:

    .. math::

        \hat{x} = x - \log p, \qquad \hat{q} = \mathrm{sigmoid}(\hat{x})

    Foreground/background weights ``w_fg`` (given as ``pos_weight``) and ``w_bg`` (given as ``bg_weight``),
    as in :func:`voxweight.class_balance_weights`, shift the logit by ``log(w_fg / w_bg)``; for both kinds
    of weighting at once pass ``pos_weight=p * w_fg``. Thresholding the raw logits at 0 is the same as
    thresholding the corrected probabilities at ``p / (1 + p)``: use whichever operating point you want.

    Args:
        logits: raw model outputs, floating point.
        pos_weight: the positive weight used in training: a number, a sequence or ``[C]`` tensor (put on
            ``channel_dim``), or a tensor broadcastable with the full shape. Must be > 0.
        channel_dim: the channel axis of ``logits`` (1 for a batch ``[N, C, ...]``, 0 for one item).
        bg_weight: optional background weight; the effective positive weight is ``pos_weight / bg_weight``.

    Returns:
        Corrected logits, same shape, dtype and device as ``logits``.

    Raises:
        TypeError: for non-float ``logits`` or non-numeric weights.
        ValueError: for weights that are not finite and > 0, a vector of the wrong length, a bad ``channel_dim``.

    Shape:
        - logits: ``[N, C, *spatial]`` (``channel_dim=1``) or ``[C, *spatial]`` (``channel_dim=0``).
        - pos_weight, bg_weight: scalar, ``[C]``, or broadcastable with ``logits`` (same ndim).
        - output: same as ``logits``.

    Example:
        >>> import torch
        >>> from voxweight import debias_logits
        >>> logits = torch.tensor([[2.0, 0.0]])  # [N=1, C=2]
        >>> debias_logits(logits, [torch.e ** 2, 1.0])
        tensor([[0., 0.]])
        >>> debias_logits(logits, 1.0, bg_weight=1 / 95)  # seed 003: background weighted 1/95
        tensor([[-2.5539, -4.5539]])
    """
    check_float_tensor("logits", logits)
    if isinstance(channel_dim, bool) or not isinstance(channel_dim, int):
        raise TypeError(f"channel_dim: expected an int, got {describe(channel_dim)}")
    if not -logits.ndim <= channel_dim < max(logits.ndim, 1):
        raise ValueError(f"channel_dim: expected an axis of logits with {logits.ndim} dims, got {channel_dim}")
    channel_dim %= max(logits.ndim, 1)
    shift = _log_weight("pos_weight", pos_weight, logits, channel_dim)
    if bg_weight is not None:
        shift = shift - _log_weight("bg_weight", bg_weight, logits, channel_dim)
    return logits - shift


def _log_weight(name: str, value: WeightLike, logits: torch.Tensor, channel_dim: int) -> torch.Tensor:
    if value is None:
        raise TypeError(f"{name}: expected a number, a sequence of numbers or a tensor, got None")
    w = as_weight_tensor(name, value, like=logits)
    check_range(name, w, torch.finfo(w.dtype).tiny, torch.finfo(w.dtype).max, "finite values > 0")
    return torch.log(align_channel(name, w, logits.shape, channel_dim))
