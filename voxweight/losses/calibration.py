"""Inference-time correction of the logit bias that loss weights and training priors leave behind."""

from __future__ import annotations

from typing import Any

import torch

from voxweight._validate import as_weight_tensor, check_float_tensor, describe, look_up_option
from voxweight.checks import check_range
from voxweight.losses.align import WeightLike, align_channel
from voxweight.stats.label_stats import LabelStats

__all__ = ["ACTIVATIONS", "PriorLike", "debias_logits", "prior_tensor"]

ACTIVATIONS = ("sigmoid", "softmax")
PriorLike = WeightLike | LabelStats


def debias_logits(
    logits: torch.Tensor,
    pos_weight: WeightLike,
    *,
    channel_dim: int = 1,
    bg_weight: WeightLike | None = None,
    train_prior: PriorLike | None = None,
    deploy_prior: PriorLike | None = None,
    activation: str = "sigmoid",
) -> torch.Tensor:
    r"""Undo the shift that loss weights (and, given priors, the training prevalence) put into trained logits.

    Training with ``pos_weight`` ``r`` on data where a voxel is positive with probability ``q`` drives
    the loss-minimising logit to ``logit(q) + log r`` instead of ``logit(q)``: the model over-predicts the
    positive class by design. Subtracting ``log r`` restores calibrated probabilities on data like the
    training data. A model trained where the foreground prevalence is ``pi_train`` (e.g. crops centred on
    foreground half the time) and used where it is ``pi_deploy`` (whole volumes) also needs the prior shift
    (Saerens et al., 2002); with both priors given, per channel (``activation="sigmoid"``):

    .. math::

        \hat{x} = x - \log r - \mathrm{logit}(\pi_{train}) + \mathrm{logit}(\pi_{deploy}),
        \qquad \hat{q} = \mathrm{sigmoid}(\hat{x})

    For one softmax over the channels (``activation="softmax"``, class weights ``w_c`` given as
    ``pos_weight``) the minimiser is ``q_c \propto w_c p_c``, and a prior shift rescales ``p_c`` by
    ``pi_deploy_c / pi_train_c``: class ``c``'s logit moves by ``-\log w_c + \log(\pi_{deploy,c} /
    \pi_{train,c})`` (only ratios matter: priors need not sum to 1, and a constant shift changes nothing).

    Foreground/background weights ``w_fg`` (given as ``pos_weight``) and ``w_bg`` (given as ``bg_weight``),
    as in :func:`voxweight.class_balance_weights`, shift the logit by ``log(w_fg / w_bg)``; for both kinds
    of weighting at once pass ``pos_weight=p * w_fg``. Thresholding the raw logits at 0 is the same as
    thresholding the corrected probabilities at ``p / (1 + p)``: use whichever operating point you want.
    Priors: ``pi_train`` is the prevalence the loss saw (``voxweight.crop_prevalence`` or
    :meth:`voxweight.LabelStats.from_pipeline` of the training pipeline), ``pi_deploy`` that of the data
    the model is used on (``voxweight.scan_labels`` of whole volumes). A :class:`~voxweight.LabelStats`
    gives its voxel-level prevalence ``positives / voxels`` per class; for ``"sigmoid"`` with one channel
    fewer than its classes, class 0 (background, counted by ``update_labels``) is dropped.

    Args:
        logits: raw model outputs, floating point.
        pos_weight: the positive weight used in training (class weights for ``"softmax"``): a number, a
            sequence or ``[C]`` tensor (put on ``channel_dim``), or a tensor broadcastable with the full
            shape. Must be > 0.
        channel_dim: the channel axis of ``logits`` (1 for a batch ``[N, C, ...]``, 0 for one item).
        bg_weight: optional background weight; the effective positive weight is ``pos_weight / bg_weight``.
        train_prior: the training prevalence per channel, in (0, 1): a number, ``[C]``, a broadcastable
            tensor, or a :class:`~voxweight.LabelStats`. Given with ``deploy_prior`` or not at all.
        deploy_prior: the deployment prevalence, in the same forms.
        activation: ``"sigmoid"`` (independent channels) or ``"softmax"`` (one distribution over channels).

    Returns:
        Corrected logits, same shape, dtype and device as ``logits``. With equal priors (or none) the
        result is the weights-only correction exactly.

    Raises:
        TypeError: for non-float ``logits``, non-numeric weights or priors.
        ValueError: for weights that are not finite and > 0, priors outside (0, 1) or not finite, only one
            of the priors, a vector (or a ``LabelStats``) of the wrong length, a bad ``channel_dim`` or
            ``activation``, a scalar prior for ``"softmax"``.

    Shape:
        - logits: ``[N, C, *spatial]`` (``channel_dim=1``) or ``[C, *spatial]`` (``channel_dim=0``).
        - pos_weight, bg_weight, train_prior, deploy_prior: scalar, ``[C]``, or broadcastable with
          ``logits`` (same ndim); ``LabelStats`` priors: ``K = C`` classes (or ``C + 1``, sigmoid).
        - output: same as ``logits``.

    Example:
        >>> import torch
        >>> from voxweight import debias_logits
        >>> logits = torch.tensor([[2.0, 0.0]])  # [N=1, C=2]
        >>> debias_logits(logits, [torch.e ** 2, 1.0])
        tensor([[0., 0.]])
        >>> debias_logits(logits, 1.0, bg_weight=1 / 95)  # seed 003: background weighted 1/95
        tensor([[-2.5539, -4.5539]])
        >>> # trained on 1:1 crops (prevalence 0.5), used on volumes with 1% foreground: logit(0.01)
        >>> debias_logits(torch.zeros(1, 1), 1.0, train_prior=0.5, deploy_prior=0.01)
        tensor([[-4.5951]])
        >>> train = torch.tensor([0.5, 0.25, 0.25])  # a model that predicts the training prior ...
        >>> debias_logits(train.log()[None], 1.0, train_prior=train, deploy_prior=[0.9, 0.05, 0.05],
        ...               activation="softmax").softmax(1)  # ... predicts the deployment prior
        tensor([[0.9000, 0.0500, 0.0500]])
    """
    check_float_tensor("logits", logits)
    if isinstance(channel_dim, bool) or not isinstance(channel_dim, int):
        raise TypeError(f"channel_dim: expected an int, got {describe(channel_dim)}")
    if not -logits.ndim <= channel_dim < max(logits.ndim, 1):
        raise ValueError(f"channel_dim: expected an axis of logits with {logits.ndim} dims, got {channel_dim}")
    channel_dim %= max(logits.ndim, 1)
    activation = look_up_option("activation", activation, ACTIVATIONS)
    if (train_prior is None) != (deploy_prior is None):
        given = "train_prior" if deploy_prior is None else "deploy_prior"
        raise ValueError(f"train_prior, deploy_prior: expected both or neither, got only {given}")
    shift = _log_weight("pos_weight", pos_weight, logits, channel_dim)
    if bg_weight is not None:
        shift = shift - _log_weight("bg_weight", bg_weight, logits, channel_dim)
    out = logits - shift
    if train_prior is not None:
        out = out + _prior_shift(train_prior, deploy_prior, logits, channel_dim, activation).to(logits.dtype)
    return out


def prior_tensor(name: str, prior: PriorLike, logits: torch.Tensor, channel_dim: int = 1,
                 activation: str = "sigmoid") -> torch.Tensor:
    """A prior as a checked tensor aligned with ``logits`` (float32 at least, on ``logits``' device).

    Args:
        name: the argument name errors report.
        prior: a number, a sequence, ``[C]`` or a broadcastable tensor, or a :class:`~voxweight.LabelStats`
            (its voxel-level ``positives / voxels``; class 0 dropped for ``"sigmoid"`` when it has one
            class more than ``logits`` has channels).
        logits: the logits the prior will shift.
        channel_dim: the channel axis of ``logits``.
        activation: ``"sigmoid"`` or ``"softmax"`` (which needs one prior per channel).

    Returns:
        The prior, each value finite and in (0, 1), broadcastable with ``logits``.

    Raises:
        TypeError: for a prior that is not numeric.
        ValueError: for a value outside (0, 1), a wrong length, a ``LabelStats`` without data or with the
            wrong number of classes, a scalar prior for ``"softmax"``.

    Shape:
        - output: ``[]``, ``[1, .., C, .., 1]`` or broadcastable with ``logits``.

    Example:
        >>> prior_tensor("train_prior", [0.5, 0.25], torch.zeros(2, 2, 3)).shape
        torch.Size([1, 2, 1])
    """
    like = logits.new_zeros(()).to(torch.promote_types(logits.dtype, torch.float32))
    if isinstance(prior, LabelStats):
        prior = _stats_prevalence(name, prior, logits, channel_dim, activation)
    p = as_weight_tensor(name, prior, like=like)
    if p is None:
        raise TypeError(f"{name}: expected a number, a sequence of numbers, a tensor or a LabelStats, got None")
    if activation == "softmax" and p.ndim == 0 and logits.ndim > channel_dim and logits.shape[channel_dim] > 1:
        raise ValueError(f"{name}: expected one prior per class ({logits.shape[channel_dim]}) for "
                         f"activation='softmax' (a single number shifts nothing), got {describe(prior)}")
    check_range(name, p, torch.finfo(p.dtype).tiny, 1.0 - torch.finfo(p.dtype).eps, "finite values in (0, 1)")
    return align_channel(name, p, logits.shape, channel_dim)


def _stats_prevalence(name: str, stats: LabelStats, logits: torch.Tensor, channel_dim: int,
                      activation: str) -> torch.Tensor:
    """The voxel-level prevalence of each class of ``stats``, matched to the channels of ``logits``."""
    channels = logits.shape[channel_dim] if logits.ndim > channel_dim else 1
    if stats.voxels == 0:
        raise ValueError(f"{name}: expected a LabelStats with counts, got one with no data")
    prevalence = torch.as_tensor(stats.positives / stats.voxels, dtype=torch.float64)
    if activation == "sigmoid" and stats.num_classes == channels + 1:
        prevalence = prevalence[1:]  # class 0 is the background the network has no channel for
    elif stats.num_classes != channels:
        also = f" (or {channels + 1} with background, for sigmoid)" if activation == "sigmoid" else ""
        raise ValueError(f"{name}: expected a LabelStats with num_classes={channels}{also}, the channels of "
                         f"logits with shape {list(logits.shape)}, got num_classes={stats.num_classes}")
    return prevalence.to(logits.device)


def _prior_shift(train: Any, deploy: Any, logits: torch.Tensor, channel_dim: int,
                 activation: str) -> torch.Tensor:
    """``logit(deploy) - logit(train)`` (sigmoid) or ``log(deploy / train)`` (softmax), float32 at least."""
    p_train = prior_tensor("train_prior", train, logits, channel_dim, activation)
    p_deploy = prior_tensor("deploy_prior", deploy, logits, channel_dim, activation)
    if activation == "softmax":
        return torch.log(p_deploy) - torch.log(p_train)
    return torch.logit(p_deploy) - torch.logit(p_train)


def _log_weight(name: str, value: WeightLike, logits: torch.Tensor, channel_dim: int) -> torch.Tensor:
    if value is None:
        raise TypeError(f"{name}: expected a number, a sequence of numbers or a tensor, got None")
    w = as_weight_tensor(name, value, like=logits)
    check_range(name, w, torch.finfo(w.dtype).tiny, torch.finfo(w.dtype).max, "finite values > 0")
    return torch.log(align_channel(name, w, logits.shape, channel_dim))
